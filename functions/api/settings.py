"""The read API function's environment (functions/shared/settings.py)."""

from functions.shared.settings import FunctionSettings, resource


class ApiSettings(FunctionSettings):
    consent_table: str = resource("table", "consent")
    profiles_table: str = resource("table", "profiles")
    deliveries_table: str = resource("table", "deliveries")
    identity_table: str = resource("table", "identity")
    consented_stream: str = resource("stream", "consented")
    archive_bucket: str = resource("bucket", "archive")
    archive_results_bucket: str = resource("bucket", "archive-results")  # Athena writes there
