"""The webhook function's environment (functions/shared/settings.py)."""

from functions.shared.settings import FunctionSettings, resource


class WebhookSettings(FunctionSettings):
    deliveries_table: str = resource("table", "deliveries")
    activations_queue: str = resource("queue", "activations")
    dead_letter_queue: str = resource("queue", "activations-dlq")
    failed_events_bucket: str = resource("bucket", "failed-events")
