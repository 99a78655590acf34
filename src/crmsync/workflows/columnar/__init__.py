"""The columnar evaluation engine: workflows over Arrow batches of the store, each rule
vectorised (polars); the per-deal engine for what does not vectorise (`run.evaluate_columnar`)."""
