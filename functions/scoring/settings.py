"""The scoring function's environment (functions/shared/settings.py)."""

from pydantic import Field

from functions.shared.settings import ProfileStepSettings, env_var, resource


class ScoringSettings(ProfileStepSettings):
    activations_queue: str = resource("queue", "activations")
    # The model registry (docs/models.md); empty: the bundled models only.
    models_bucket: str = Field(default="", validation_alias=env_var("bucket", "models"))
    # How stale a model pointer may be: each container re-reads it at most this often.
    model_pointer_ttl_s: float = Field(
        default=60.0, ge=0, le=3600, validation_alias="BEACON_MODEL_POINTER_TTL_S"
    )
