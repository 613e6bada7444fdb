"""The profile export function's environment (functions/shared/settings.py)."""

from pydantic import Field

from functions.shared.settings import FunctionSettings, resource


class ExportsSettings(FunctionSettings):
    profiles_table: str = resource("table", "profiles")
    identity_table: str = resource("table", "identity")
    exports_bucket: str = resource("bucket", "exports")
    # Not resources: the parallel Scan's segments, and the key prefix in the bucket.
    scan_segments: int = Field(default=4, ge=1, le=64, validation_alias="BEACON_EXPORT_SEGMENTS")
    prefix: str = Field(default="", max_length=200, validation_alias="BEACON_EXPORT_PREFIX")
