"""The identity function's environment (functions/shared/settings.py)."""

from functions.shared.settings import FunctionSettings, resource


class IdentitySettings(FunctionSettings):
    resolved_stream: str = resource("stream", "resolved")
    identity_table: str = resource("table", "identity")
    counters_table: str = resource("table", "counters")
    failed_events_bucket: str = resource("bucket", "failed-events")
