"""The consent function's environment, validated on the first invocation (cold start)."""

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class ConsentSettings(BaseSettings):
    model_config = SettingsConfigDict(frozen=True, extra="ignore")

    consented_stream: str = Field(validation_alias="BEACON_STREAM_CONSENTED", min_length=1)
    consent_table: str = Field(validation_alias="BEACON_TABLE_CONSENT", min_length=1)
    counters_table: str = Field(validation_alias="BEACON_TABLE_COUNTERS", min_length=1)
    failed_events_bucket: str = Field(validation_alias="BEACON_BUCKET_FAILED_EVENTS", min_length=1)
    config_file: str = Field(default="beacon.yaml", validation_alias="BEACON_CONFIG_FILE")
