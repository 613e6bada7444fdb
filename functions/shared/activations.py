"""What the webhook step consumes from the `activations` queue.

An activation is one segment or score change of one profile, ready to be pushed
to the journey platforms. `id` is stable across re-sends of the same change, so
it doubles as the Standard Webhooks `webhook-id` a receiver deduplicates on.
Snake_case JSON (no camelCase aliases): it is what generic webhooks receive.
"""

from __future__ import annotations

from typing import Any, Literal, get_args

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

ActivationType = Literal["segment.entered", "segment.exited", "score.crossed"]
ACTIVATION_TYPES: tuple[ActivationType, ...] = get_args(ActivationType)
SEGMENT_TYPES: frozenset[str] = frozenset({"segment.entered", "segment.exited"})


class Activation(BaseModel):
    # Unknown fields are ignored, not refused: a newer producer must not send every
    # message of an older webhook function to the dead-letter queue.
    model_config = ConfigDict(frozen=True, extra="ignore")

    id: str = Field(min_length=1, description="stable id of this change; the webhook-id")
    type: ActivationType
    profile_id: str = Field(min_length=1)
    segment_id: str | None = None
    model: str | None = None
    threshold: str | None = None
    score: float | None = None
    at: AwareDatetime
    held_out: bool = False
    # The member's treatment in a segment with variants: what the platform should send.
    variant: str | None = None
    user_id: str | None = None
    email: str | None = None
    traits: dict[str, Any] = Field(default_factory=dict)
    consent: dict[str, bool] = Field(default_factory=dict)
    # The person's current top-N item ids and persona (the scoring step's), passed on
    # by the presets that ask for them (docs/recommendations.md).
    recommendations: list[str] | None = Field(default=None, max_length=10)
    persona: str | None = Field(default=None, max_length=100)
    # Each channel's time-decayed share of the person's recent sessions (a `touches`
    # computed trait, docs/attribution.md): which channels bring them.
    channels: dict[str, float] | None = Field(default=None, max_length=20)

    @model_validator(mode="after")
    def _fields_of_kind(self) -> Activation:
        if self.type in SEGMENT_TYPES and not self.segment_id:
            raise ValueError(f"{self.type} needs segment_id")
        if self.type == "score.crossed" and (
            not self.model or self.threshold is None or self.score is None
        ):
            raise ValueError("score.crossed needs model, threshold and score")
        return self

    def payload(self) -> dict[str, Any]:
        """The activation as JSON-ready data (fields that are null left out)."""
        return self.model_dump(mode="json", exclude_none=True)


def activation_json(activation: Activation) -> bytes:
    return activation.model_dump_json(exclude_none=True).encode("utf-8")


def parse_activation(data: bytes | str) -> Activation:
    return Activation.model_validate_json(data)
