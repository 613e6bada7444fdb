"""The scoring function's environment, validated on the first invocation (cold start)."""

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class ScoringSettings(BaseSettings):
    model_config = SettingsConfigDict(frozen=True, extra="ignore")

    profiles_table: str = Field(validation_alias="BEACON_TABLE_PROFILES", min_length=1)
    counters_table: str = Field(validation_alias="BEACON_TABLE_COUNTERS", min_length=1)
    activations_queue: str = Field(validation_alias="BEACON_QUEUE_ACTIVATIONS", min_length=1)
    failed_events_bucket: str = Field(validation_alias="BEACON_BUCKET_FAILED_EVENTS", min_length=1)
    config_file: str = Field(default="beacon.yaml", validation_alias="BEACON_CONFIG_FILE")
