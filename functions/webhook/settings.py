"""The webhook function's environment (functions/shared/settings.py)."""

from pydantic import Field

from functions.shared.settings import FunctionSettings, resource


class WebhookSettings(FunctionSettings):
    deliveries_table: str = resource("table", "deliveries")
    activations_queue: str = resource("queue", "activations")
    dead_letter_queue: str = resource("queue", "activations-dlq")
    failed_events_bucket: str = resource("bucket", "failed-events")
    # Set by the local stack only: destinations go to its sinks at this base URL over
    # plain http on loopback. Never set in a deployed function.
    local_gateway: str | None = Field(default=None, validation_alias="BEACON_LOCAL_GATEWAY")
