"""Multi-touch attribution over people's touch paths: pure logic (docs/attribution.md).

Computed offline from the event archive (`beacon attribution`, through
`models/touches.py`), never in a Lambda. Input: per person, their touches (a
session start: time, channel, campaign) and conversions (time, revenue), each
oldest first. A conversion's path is the person's touches in its lookback
window, after their previous conversion and no later than the conversion
itself: a touch is credited to one conversion at most. A conversion with no
touch in its path is credited to `NO_TOUCH`, so every model's conversions and
revenue add up to the same totals.

Rule-based models weigh the touches of each path:

- first: all to the first touch; last: all to the last;
- linear: equally;
- time_decay: 2^(-age / half-life), age = conversion time - touch time, normalised;
- position: 40 % first, 40 % last, 20 % shared by the middle ones (one touch: 100 %,
  two: 50/50).

The data-driven model, markov, is a first-order Markov chain over the paths'
keys (channels or campaigns) with start, conversion and null states, built from
the converting paths and the non-converting ones (each person's touches after
their last conversion, in the window). A key's removal effect is the share of
the chain's conversion probability lost when the key's state is removed (its
visits go to null); total conversions and revenue are shared in proportion to
the removal effects.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import pairwise

MODELS = ("first", "last", "linear", "time_decay", "position", "markov")
RULE_MODELS = MODELS[:-1]
NO_TOUCH = "(none)"
NO_CAMPAIGN = "(no campaign)"
DEFAULT_HALF_LIFE = timedelta(days=7)
DEFAULT_LOOKBACK = timedelta(days=30)
# The chain's own states; a key's state is "k:" + the key (a campaign may be called anything).
_START, _CONVERSION, _NULL = "start", "conversion", "null"


@dataclass(frozen=True)
class Touch:
    at: datetime
    channel: str
    campaign: str | None = None


@dataclass(frozen=True)
class Conversion:
    at: datetime
    revenue: float = 0.0


@dataclass(frozen=True)
class Person:
    """One person's touches and conversions (any order: sorted here)."""

    id: str
    touches: Sequence[Touch]
    conversions: Sequence[Conversion]


@dataclass(frozen=True)
class Path:
    """The touches credited with one conversion (conversion None: a path that did
    not convert, used by the Markov model only)."""

    touches: tuple[Touch, ...]
    conversion: Conversion | None


@dataclass
class Credit:
    """Conversions and revenue credited to one key by one model."""

    conversions: float = 0.0
    revenue: float = 0.0


@dataclass
class Attribution:
    """Per model, per key (channel or campaign): the credit."""

    by: str
    totals: Credit = field(default_factory=Credit)
    models: dict[str, dict[str, Credit]] = field(default_factory=dict)

    def keys(self) -> list[str]:
        found = {key for credits in self.models.values() for key in credits}
        return sorted(found)


def paths_of(
    person: Person, lookback: timedelta = DEFAULT_LOOKBACK, since: datetime | None = None
) -> list[Path]:
    """One path per conversion, then (if any touch is left after the last
    conversion, and at or after `since`, the analysis window's start) a
    non-converting path."""
    touches = sorted(person.touches, key=lambda t: t.at)
    conversions = sorted(person.conversions, key=lambda c: c.at)
    paths: list[Path] = []
    previous: datetime | None = None
    for conversion in conversions:
        window_start = conversion.at - lookback
        chosen = tuple(
            t
            for t in touches
            if t.at <= conversion.at
            and t.at >= window_start
            and (previous is None or t.at > previous)
        )
        paths.append(Path(chosen, conversion))
        previous = conversion.at
    rest = tuple(
        t
        for t in touches
        if (previous is None or t.at > previous) and (since is None or t.at >= since)
    )
    if rest:
        paths.append(Path(rest, None))
    return paths


def weights(model: str, path: Path, half_life: timedelta = DEFAULT_HALF_LIFE) -> list[float]:
    """Each touch's share of a converting path's credit under a rule-based model."""
    n = len(path.touches)
    if n == 0:
        return []
    if model == "first":
        return [1.0] + [0.0] * (n - 1)
    if model == "last":
        return [0.0] * (n - 1) + [1.0]
    if model == "linear":
        return [1.0 / n] * n
    if model == "time_decay":
        if half_life <= timedelta(0):
            raise ValueError("half_life must be positive")
        assert path.conversion is not None
        raw = [2.0 ** (-((path.conversion.at - t.at) / half_life)) for t in path.touches]
        total = sum(raw)
        return [w / total for w in raw]
    if model == "position":
        if n == 1:
            return [1.0]
        if n == 2:
            return [0.5, 0.5]
        middle = 0.2 / (n - 2)
        return [0.4] + [middle] * (n - 2) + [0.4]
    raise ValueError(f"unknown rule-based model {model!r}; choose from {', '.join(RULE_MODELS)}")


def key_function(by: str) -> Callable[[Touch], str]:
    if by == "channel":
        return lambda t: t.channel
    if by == "campaign":
        return lambda t: t.campaign or NO_CAMPAIGN
    raise ValueError(f"by must be channel or campaign, not {by!r}")


def attribute(
    people: Iterable[Person],
    models: Sequence[str] = MODELS,
    by: str = "channel",
    lookback: timedelta = DEFAULT_LOOKBACK,
    half_life: timedelta = DEFAULT_HALF_LIFE,
    since: datetime | None = None,
) -> Attribution:
    """Conversions and revenue per key, side by side per model (`since`: the
    window's start, before which touches only lead to conversions)."""
    for model in models:
        if model not in MODELS:
            raise ValueError(f"unknown model {model!r}; choose from {', '.join(MODELS)}")
    if lookback <= timedelta(0):
        raise ValueError("lookback must be positive")
    key = key_function(by)
    paths = [path for person in people for path in paths_of(person, lookback, since)]
    result = Attribution(by)
    converting = [p for p in paths if p.conversion is not None]
    for path in converting:
        assert path.conversion is not None
        result.totals.conversions += 1
        result.totals.revenue += path.conversion.revenue
    for model in models:
        credits: dict[str, Credit] = defaultdict(Credit)
        if model == "markov":
            _markov_credit(paths, key, credits, result.totals)
        else:
            for path in converting:
                _credit_path(path, weights(model, path, half_life), key, credits)
        result.models[model] = dict(credits)
    return result


def _credit_path(
    path: Path, shares: list[float], key: Callable[[Touch], str], credits: dict[str, Credit]
) -> None:
    assert path.conversion is not None
    if not path.touches:
        credits[NO_TOUCH].conversions += 1
        credits[NO_TOUCH].revenue += path.conversion.revenue
        return
    for touch, share in zip(path.touches, shares, strict=True):
        if share == 0:
            continue
        credit = credits[key(touch)]
        credit.conversions += share
        credit.revenue += share * path.conversion.revenue


# --- Markov chain removal effect -------------------------------------------------------


def transitions(paths: Iterable[Path], key: Callable[[Touch], str]) -> dict[str, dict[str, int]]:
    """Counts of state -> next state over the paths (start, "k:" + each touch's
    key, then conversion or null). Paths without touches carry no transition."""
    counts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for path in paths:
        if not path.touches:
            continue
        states = [_START, *("k:" + key(t) for t in path.touches)]
        states.append(_CONVERSION if path.conversion is not None else _NULL)
        for here, there in pairwise(states):
            counts[here][there] += 1
    return {state: dict(nexts) for state, nexts in counts.items()}


def conversion_probability(counts: dict[str, dict[str, int]], removed: str | None = None) -> float:
    """The chance of reaching conversion from start, with `removed`'s state (if
    any) turned into null: solve the absorbing chain's linear equations."""
    import numpy as np

    states = [s for s in counts if s != removed]
    if _START not in states:
        return 0.0
    index = {state: i for i, state in enumerate(states)}
    n = len(states)
    # p = Q p + r: p[s] = sum over t of P(s->t) p[t] + P(s->conversion)
    q = np.zeros((n, n))
    r = np.zeros(n)
    for state in states:
        nexts = counts[state]
        total = sum(nexts.values())
        for there, count in nexts.items():
            if there == _CONVERSION:
                r[index[state]] += count / total
            elif there in index:
                q[index[state], index[there]] += count / total
            # null, or the removed state: absorbed without converting
    p = np.linalg.lstsq(np.eye(n) - q, r, rcond=None)[0]
    return float(p[index[_START]])


def removal_effects(paths: Sequence[Path], key: Callable[[Touch], str]) -> dict[str, float]:
    """Each key's removal effect: 1 - P(conversion without it) / P(conversion)."""
    counts = transitions(paths, key)
    base = conversion_probability(counts)
    keys = sorted(s for s in counts if s != _START)
    if base <= 0:
        return {k[2:]: 0.0 for k in keys}
    return {k[2:]: max(0.0, 1.0 - conversion_probability(counts, k) / base) for k in keys}


def _markov_credit(
    paths: Sequence[Path],
    key: Callable[[Touch], str],
    credits: dict[str, Credit],
    totals: Credit,
) -> None:
    touched = [p for p in paths if p.touches]
    effects = removal_effects(touched, key)
    total_effect = sum(effects.values())
    untouched = [p for p in paths if not p.touches and p.conversion is not None]
    # Conversions without a touch stay unattributed, as in the rule-based models.
    for path in untouched:
        assert path.conversion is not None
        credits[NO_TOUCH].conversions += 1
        credits[NO_TOUCH].revenue += path.conversion.revenue
    if total_effect <= 0:
        return
    conversions = totals.conversions - len(untouched)
    revenue = totals.revenue - sum(p.conversion.revenue for p in untouched if p.conversion)
    for name, effect in effects.items():
        share = effect / total_effect
        credits[name].conversions += share * conversions
        credits[name].revenue += share * revenue
