"""The columnar evaluation engine: workflows over Arrow batches of the store, rule by rule vectorised
(polars), the per-deal engine for what does not vectorise. See `run.evaluate_columnar`."""
