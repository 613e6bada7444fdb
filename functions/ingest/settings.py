"""The ingest function's environment (functions/shared/settings.py)."""

from functions.shared.settings import FunctionSettings, resource


class IngestSettings(FunctionSettings):
    events_stream: str = resource("stream", "events")
    failed_events_bucket: str = resource("bucket", "failed-events")
