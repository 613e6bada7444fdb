"""The segments function's environment (functions/shared/settings.py)."""

from pydantic import Field

from functions.shared.settings import ProfileStepSettings, resource


class SegmentsSettings(ProfileStepSettings):
    changes_stream: str = resource("stream", "profile-changes")
    # Not a resource: how many due profiles one sweep takes at most.
    sweep_limit: int = Field(default=500, ge=1, validation_alias="BEACON_SWEEP_LIMIT")
