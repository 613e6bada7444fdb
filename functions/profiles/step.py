"""What the two steps that write profiles (segments, scoring) hold in common.

Both read a batch's profiles once, change them, and write each one once,
conditional on the version read, through the same ports. A write that lost a race
(`conflict`: the sweep, or the other step, wrote the profile meanwhile) is read and
done again; a storage refusal (`refused`: throttling) fails only that profile's
records. The handlers build both from the same wiring
(`functions/shared/profile_handler.py`).
"""

from __future__ import annotations

from dataclasses import dataclass

from functions.shared.decision import DecisionRules
from functions.shared.ports import ProfilesPort
from functions.shared.stream_batch import StreamStep


@dataclass(kw_only=True)
class ProfileStep(StreamStep):
    profiles: ProfilesPort
    conflict: tuple[type[Exception], ...]  # a lost race: the profile is read and done again
    refused: tuple[type[Exception], ...]  # storage errors that fail a profile's records
    # What a page may be told (beacon.yaml `personalize`): with it, each write carries
    # the profile's decision item when that changed; None writes none (tests, tools).
    decisions: DecisionRules | None = None
