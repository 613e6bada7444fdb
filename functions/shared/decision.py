"""What a web page or app may be told about a person: the decision item.

The touchpoint (`GET /v1/personalize`) answers from one small item per profile
(`pk = profile#<id>`, `sk = decision` in the profiles table) instead of the profile
itself, so a request costs one read of a few hundred bytes, and the function that
answers the public write key never decodes a profile. The steps that own the data
write it with the profile, in the same write, and only when its content changed:
the segments step (segments, traits, consent) and the scoring step (score bands).

Versioned (`v`): a reader refuses a body it does not know rather than guess.
`recommendations` (item ids with scores) and `persona` (a name) come from the
scoring step's entries in the profile's scores (docs/recommendations.md);
`experiments` (experiment name -> variant) is a slot for a later issue. See
docs/personalize.md.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from functions.shared.personalize_config import NEVER_TOLD
from functions.shared.profile_limits import MAX_ITEM_ID_CHARS

if TYPE_CHECKING:
    from functions.shared.config import BeaconConfig

DECISION_VERSION = 1
MAX_RECOMMENDATIONS = 10  # the decision item stays a few hundred bytes
MAX_PERSONA_CHARS = 100
# The scoring step's entries in a profile's scores that are not models' probabilities.
RECOMMENDATIONS = "recommendations"  # {"items": [[item id, score]], "model_version"}
PERSONA = "persona"  # {"name", "id", "model_version"}
MAX_LIST_ITEMS = 20  # a list trait (viewed categories) tells its first 20 values
Scalar = str | int | float | bool

# Values that look like contact data are never told, whatever trait holds them
# (a visitor may type an email address into a "first name" field).
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
# Seven or more digits in a run (separators allowed) anywhere in the text: a phone.
_PHONE = re.compile(r"(?:\+?\d[\s().\-/]*){7,}")


@dataclass(frozen=True)
class Recommendation:
    """A product recommendation (issue 17 fills these in the scoring step)."""

    item_id: str
    score: float


@dataclass(frozen=True)
class Decision:
    personalized: bool
    segments: tuple[str, ...] = ()
    traits: Mapping[str, Any] = field(default_factory=dict)  # allow-listed, computed included
    scores: Mapping[str, str] = field(default_factory=dict)  # model -> band name
    recommendations: tuple[Recommendation, ...] = ()
    persona: str | None = None
    experiments: Mapping[str, str] = field(default_factory=dict)  # experiment -> variant

    def body(self) -> str:
        """The stored form: compact, sorted JSON (equal decisions, equal bytes)."""
        return json.dumps(
            {
                "v": DECISION_VERSION,
                "personalized": self.personalized,
                "segments": list(self.segments),
                "traits": dict(self.traits),
                "scores": dict(self.scores),
                "recommendations": [
                    {"item_id": r.item_id, "score": r.score} for r in self.recommendations
                ],
                "persona": self.persona,
                "experiments": dict(self.experiments),
            },
            sort_keys=True,
            separators=(",", ":"),
            allow_nan=False,
        )

    @property
    def digest(self) -> str:
        """What the profile item remembers of its decision, to write only a change."""
        return hashlib.sha256(self.body().encode()).hexdigest()[:16]

    @classmethod
    def from_body(cls, text: str) -> Decision:
        data = json.loads(text)
        if not isinstance(data, dict) or data.get("v") != DECISION_VERSION:
            raise ValueError(f"decision body of unknown version {data.get('v')!r}")
        return cls(
            personalized=bool(data["personalized"]),
            segments=tuple(str(s) for s in data.get("segments", ())),
            traits=dict(data.get("traits") or {}),
            scores={str(k): str(v) for k, v in (data.get("scores") or {}).items()},
            recommendations=tuple(
                Recommendation(str(r["item_id"]), float(r["score"]))
                for r in data.get("recommendations") or ()
            ),
            persona=data.get("persona"),
            experiments={str(k): str(v) for k, v in (data.get("experiments") or {}).items()},
        )


NOT_PERSONALIZED = Decision(personalized=False)


@dataclass(frozen=True)
class StoredDecision:
    """A decision item as read: a decision, or the marker of a merged-away profile
    (`merged_into`: read the survivor's) or of an erased one (an unknown visitor)."""

    decision: Decision | None
    merged_into: str | None = None
    erased: bool = False


@dataclass(frozen=True)
class DecisionRules:
    """What the configuration lets a page see (beacon.yaml `personalize`)."""

    required_consent: tuple[str, ...] = ("personalization",)
    opt_out: bool = False  # consent.default: a category never decided counts as granted
    segments: frozenset[str] | None = None  # None: every segment
    traits: tuple[str, ...] = ()
    computed_traits: tuple[str, ...] = ()
    max_value_chars: int = 200

    @classmethod
    def from_config(cls, config: BeaconConfig) -> DecisionRules:
        told = config.personalize
        return cls(
            required_consent=told.required_consent,
            opt_out=config.consent.default == "opt-out",
            segments=frozenset(told.segments) if told.segments is not None else None,
            traits=told.traits,
            computed_traits=told.computed_traits,
            max_value_chars=told.max_value_chars,
        )

    def consented(self, consent: Mapping[str, bool]) -> bool:
        """Every required category granted (or, opt-out, never refused)."""
        return all(consent.get(c, self.opt_out) is True for c in self.required_consent)

    def segment_told(self, segment_id: str) -> bool:
        return self.segments is None or segment_id in self.segments

    def trait_told(self, name: str) -> bool:
        if name.lower() in NEVER_TOLD:
            return False
        return name in self.traits or name in self.computed_traits

    def told_value(self, value: Any) -> Any:
        """`value` as a page may see it, or None: scalars (text cut, contact data
        dropped), lists of them, and flat objects of them (a cart's quantity)."""
        if isinstance(value, Mapping):
            flat = {str(k): self._scalar(v) for k, v in list(value.items())[:MAX_LIST_ITEMS]}
            kept = {k: v for k, v in flat.items() if v is not None and k.lower() not in NEVER_TOLD}
            return kept or None
        if isinstance(value, list | tuple):
            items = [self._scalar(v) for v in value[:MAX_LIST_ITEMS]]
            return [v for v in items if v is not None] or None
        return self._scalar(value)

    def _scalar(self, value: Any) -> Scalar | None:
        if isinstance(value, bool):
            return value
        if isinstance(value, int | float):
            return value if math.isfinite(value) and abs(value) <= 1e15 else None
        if isinstance(value, str):
            text = value[: self.max_value_chars]
            if _EMAIL.search(text) or _PHONE.search(text):
                return None
            return text
        return None


def recommended(scores: Mapping[str, Any]) -> tuple[Recommendation, ...]:
    """The profile's top-N as stored by the scoring step (bounded again: it is read
    back from storage, and an item id was a client's once)."""
    entry = scores.get(RECOMMENDATIONS)
    raw = entry.get("items") if isinstance(entry, Mapping) else None
    out = []
    for pair in raw[:MAX_RECOMMENDATIONS] if isinstance(raw, list) else []:
        if (
            isinstance(pair, list | tuple)
            and len(pair) == 2
            and isinstance(pair[0], str)
            and 0 < len(pair[0]) <= MAX_ITEM_ID_CHARS
            and isinstance(pair[1], int | float)
            and math.isfinite(pair[1])
        ):
            out.append(Recommendation(pair[0], float(pair[1])))
    return tuple(out)


def persona_of(scores: Mapping[str, Any]) -> str | None:
    entry = scores.get(PERSONA)
    name = entry.get("name") if isinstance(entry, Mapping) else None
    return name[:MAX_PERSONA_CHARS] if isinstance(name, str) and name else None


def told_extras(scores: Mapping[str, Any]) -> dict[str, Any]:
    """What an activation carries of the recommendations and persona (if any)."""
    out: dict[str, Any] = {}
    top = recommended(scores)
    if RECOMMENDATIONS in scores:
        out["recommendations"] = [r.item_id for r in top]
    persona = persona_of(scores)
    if persona is not None:
        out["persona"] = persona
    return out


def decision_from(
    *,
    traits: Mapping[str, Any],
    computed: Mapping[str, Any],
    memberships: Mapping[str, bool],
    consent: Mapping[str, bool],
    scores: Mapping[str, Any],
    rules: DecisionRules,
    experiments: Mapping[str, tuple[str, str]] | None = None,
) -> Decision:
    """The decision for a profile's current view. `memberships` maps each segment the
    person is in to whether they are held out of it (a held-out member is treated as
    a non-member, as activations treat them). `experiments`: experiment -> (its
    segment, the person's arm); a page is told the arm only of experiments on
    segments it may be told of. Without the required consent, nothing the person
    did is used: the decision is the not-personalized one."""
    if not rules.consented(consent):
        return NOT_PERSONALIZED
    told: dict[str, Any] = {}
    for names, source in ((rules.traits, traits), (rules.computed_traits, computed)):
        for name in names:
            if name in source and rules.trait_told(name):
                value = rules.told_value(source[name])
                if value is not None:
                    told[name] = value
    bands = {
        str(model): str(score["band"])
        for model, score in scores.items()
        if isinstance(score, Mapping)
        and isinstance(score.get("band"), str)
        and model not in (RECOMMENDATIONS, PERSONA)
    }
    return Decision(
        personalized=True,
        segments=tuple(
            sorted(
                s for s, held_out in memberships.items() if not held_out and rules.segment_told(s)
            )
        ),
        traits=told,
        scores=dict(sorted(bands.items())),
        experiments={
            name: arm
            for name, (segment, arm) in sorted((experiments or {}).items())
            if rules.segment_told(segment)
        },
        recommendations=recommended(scores),
        persona=persona_of(scores),
    )
