"""The consent function's environment (functions/shared/settings.py)."""

from functions.shared.settings import FunctionSettings, resource


class ConsentSettings(FunctionSettings):
    consented_stream: str = resource("stream", "consented")
    consent_table: str = resource("table", "consent")
    counters_table: str = resource("table", "counters")
    failed_events_bucket: str = resource("bucket", "failed-events")
