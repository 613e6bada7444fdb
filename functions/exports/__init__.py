"""Bulk exports (docs/exports.md): every profile as Parquet rows for a warehouse, and a
segment's members as the upload files of ad platforms (Google Customer Match, Meta
Custom Audiences).

Pure logic: the profiles come in pages from a reader (the paginated Scan of
`functions/shared/dal/profiles_store.py`), the identifiers from the identity graph,
and the files go to a sink (`sinks.py` locally, `functions/shared/dal/export_sink.py`
on S3). The scheduled function (`handler.py`) and `beacon export` share all of it.
"""
