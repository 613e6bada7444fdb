"""Admin commands that travel the pipeline in order with the events.

A reviewer's decision to link two profiles is put on the `consented` stream
so that the identity step — the graph's only writer — performs the merge and
emits the `profile.merged` record like any other.
"""

from __future__ import annotations

from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict
from pydantic.alias_generators import to_camel


class LinkProfiles(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, frozen=True)

    kind: Literal["identity.link"] = "identity.link"
    command_id: str
    a: str
    b: str
    at: AwareDatetime

    def to_json(self) -> bytes:
        return self.model_dump_json(by_alias=True).encode("utf-8")
