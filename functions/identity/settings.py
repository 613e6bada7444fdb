"""The identity function's environment, validated on the first invocation (cold start)."""

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class IdentitySettings(BaseSettings):
    model_config = SettingsConfigDict(frozen=True, extra="ignore")

    resolved_stream: str = Field(validation_alias="BEACON_STREAM_RESOLVED", min_length=1)
    identity_table: str = Field(validation_alias="BEACON_TABLE_IDENTITY", min_length=1)
    counters_table: str = Field(validation_alias="BEACON_TABLE_COUNTERS", min_length=1)
    failed_events_bucket: str = Field(validation_alias="BEACON_BUCKET_FAILED_EVENTS", min_length=1)
    config_file: str = Field(default="beacon.yaml", validation_alias="BEACON_CONFIG_FILE")
