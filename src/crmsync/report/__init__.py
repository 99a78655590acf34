"""The pipeline review report: figures computed from the store, drawn as one HTML file.

`document` holds the report's plain shape (sections of charts and tables with their numbers);
`figures` computes the numbers as pure functions; the renderers turn a document into HTML,
CSV or JSON without computing anything themselves.
"""
