"""What the identity step writes to the `resolved` stream, keyed by profile id.

Two kinds of record, told apart by `kind`: an event attributed to a profile,
and a merge telling later steps to fold the loser's state into the survivor
exactly once (`mergeId` is stable, so a re-sent merge is recognised).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, TypeAdapter
from pydantic.alias_generators import to_camel

from functions.shared.events import CanonicalEvent


class _Wire(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, frozen=True)


class ResolvedEvent(_Wire):
    kind: Literal["event"] = "event"
    profile_id: str
    event: CanonicalEvent


class ProfileMerged(_Wire):
    kind: Literal["profile.merged"] = "profile.merged"
    merge_id: str
    survivor: str
    loser: str
    at: AwareDatetime
    rule: Literal["deterministic", "probabilistic", "manual"]
    score: float | None = None
    identifiers: list[str] = Field(default_factory=list)  # what moved to the survivor
    message_id: str | None = None  # the event that caused it


ResolvedRecord = Annotated[ResolvedEvent | ProfileMerged, Field(discriminator="kind")]
RESOLVED_RECORD: TypeAdapter[ResolvedEvent | ProfileMerged] = TypeAdapter(ResolvedRecord)


def record_json(record: ResolvedEvent | ProfileMerged) -> bytes:
    return record.model_dump_json(by_alias=True, exclude_none=True).encode("utf-8")


def parse_record(data: bytes) -> ResolvedEvent | ProfileMerged:
    return RESOLVED_RECORD.validate_json(data)
