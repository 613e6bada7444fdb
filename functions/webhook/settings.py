"""The webhook function's environment, validated on the first invocation (cold start)."""

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class WebhookSettings(BaseSettings):
    model_config = SettingsConfigDict(frozen=True, extra="ignore")

    deliveries_table: str = Field(validation_alias="BEACON_TABLE_DELIVERIES", min_length=1)
    activations_queue: str = Field(validation_alias="BEACON_QUEUE_ACTIVATIONS", min_length=1)
    dead_letter_queue: str = Field(validation_alias="BEACON_QUEUE_ACTIVATIONS_DLQ", min_length=1)
    failed_events_bucket: str = Field(validation_alias="BEACON_BUCKET_FAILED_EVENTS", min_length=1)
    config_file: str = Field(default="beacon.yaml", validation_alias="BEACON_CONFIG_FILE")
    # Set by the local stack only: destinations go to its sinks at this base URL over
    # plain http on loopback. Never set in a deployed function.
    local_gateway: str | None = Field(default=None, validation_alias="BEACON_LOCAL_GATEWAY")
