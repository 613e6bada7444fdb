"""The ingest function's environment, validated on the first invocation (cold start)."""

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class IngestSettings(BaseSettings):
    model_config = SettingsConfigDict(frozen=True, extra="ignore")

    # Names set by the stack (and the local runtime) from the wiring table.
    events_stream: str = Field(validation_alias="BEACON_STREAM_EVENTS", min_length=1)
    failed_events_bucket: str = Field(validation_alias="BEACON_BUCKET_FAILED_EVENTS", min_length=1)
    config_file: str = Field(default="beacon.yaml", validation_alias="BEACON_CONFIG_FILE")
