"""What the segments step writes to `profile-changes`, keyed by profile id.

One record per profile per write that changed its traits, computed traits or
memberships. Consumers (the scoring step) re-read the profile for its current
state; the record says what changed and carries the segment enter/exit
changes, each with an id that is stable across a retry of the same write.

Delivery is at least once: the record is written to the stream *before* the
profile item (so a crash in between re-sends it, never loses it). A record
whose write then lost a race was never committed; the profile keeps the ids
of the changes it committed (`recent_changes`), so a consumer forwards a change
only if the profile it reads lists its id.
"""

from __future__ import annotations

import hashlib
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

ChangeCause = Literal["events", "merge", "sweep", "scores", "backfill"]
Part = Literal["traits", "computed", "segments", "consent", "scores"]


class _Wire(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, frozen=True)


class SegmentChange(_Wire):
    id: str  # stable for the same write: the webhook step's idempotency key
    type: Literal["segment.entered", "segment.exited"]
    segment_id: str
    at: AwareDatetime
    held_out: bool = False
    variant: str | None = None  # the member's treatment, for a segment with variants


class ProfileChanged(_Wire):
    kind: Literal["profile.changed"] = "profile.changed"
    change_id: str
    profile_id: str
    version: int  # the profile item's version this write produces
    at: AwareDatetime
    cause: ChangeCause
    changed: list[Part] = Field(default_factory=list)
    segments: list[SegmentChange] = Field(default_factory=list)
    merged_from: list[str] = Field(default_factory=list)


def change_id(profile_id: str, version: int, what: str = "") -> str:
    """The same write of the same profile always announces the same ids."""
    digest = hashlib.sha256(f"{profile_id}\n{version}\n{what}".encode()).hexdigest()
    return digest[:24]


def segment_change_id(profile_id: str, version: int, kind: str, segment_id: str) -> str:
    """The id of one enter/exit change, whichever step's write made it."""
    return change_id(profile_id, version, f"{kind}:{segment_id}")


def change_json(record: ProfileChanged) -> bytes:
    return record.model_dump_json(by_alias=True, exclude_none=True).encode("utf-8")


def parse_change(data: bytes) -> ProfileChanged:
    return ProfileChanged.model_validate_json(data)
