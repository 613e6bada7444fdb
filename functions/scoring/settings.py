"""The scoring function's environment (functions/shared/settings.py)."""

from pydantic import Field

from functions.shared.settings import ProfileStepSettings, resource


class ScoringSettings(ProfileStepSettings):
    activations_queue: str = resource("queue", "activations")
    # The model registry (docs/models.md): no pointer there, the bundled models run.
    models_bucket: str = resource("bucket", "models")
    # How stale a model pointer may be: each container re-reads it at most this often.
    model_pointer_ttl_s: float = Field(
        default=60.0, ge=0, le=3600, validation_alias="BEACON_MODEL_POINTER_TTL_S"
    )
