"""The scoring function's environment (functions/shared/settings.py)."""

from functions.shared.settings import ProfileStepSettings, resource


class ScoringSettings(ProfileStepSettings):
    activations_queue: str = resource("queue", "activations")
