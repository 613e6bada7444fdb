"""The Markov model against the simulator's known channels (simulator/journeys.py
CHANNELS): shoppers' visits arrive through channels with known shares and known
effects on buying, through ingest's real enrichment and the same session builder
`beacon attribution` uses; no stack."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

import pytest

from models.attribution import attribute
from models.touches import people_of, simulated_hits
from simulator.journeys import CHANNELS, generate_journeys

START = datetime(2026, 9, 1, tzinfo=UTC)


hits = simulated_hits


def test_the_simulator_sends_each_channel_as_ingest_will_name_it() -> None:
    (journey,) = generate_journeys(1, 60, 3, START, channels=True)
    visits = [h for h in hits([journey]) if h is not None and h.visit]
    assert visits and {h.channel for h in visits} <= {c.name for c in CHANNELS} | {"internal"}
    plain = generate_journeys(1, 60, 3, START)[0]
    assert not any("context" in e for e in plain.events)


@pytest.mark.parametrize("seed", [1, 2])
def test_markov_recovers_the_known_channel_ordering(seed: int) -> None:
    journeys = generate_journeys(1000, 60, seed, START, channels=True)
    people = people_of(hits(journeys))
    result = attribute(people, ["markov"])
    credit = {k: c.conversions for k, c in result.models["markov"].items()}
    # The truth: what each channel's visits bring, share x effect on buying.
    truth = sorted(CHANNELS, key=lambda c: -c.share * c.lift)
    assert [c.name for c in truth] == ["email", "search", "direct", "paid"]
    assert sorted(credit, key=lambda k: -credit[k]) == [c.name for c in truth]
    # Not a matter of how often a channel is seen: by visits, email is third.
    visits = Counter(t.channel for p in people for t in p.touches)
    assert {k for k, _ in visits.most_common(2)} == {"search", "direct"}
    assert sum(credit.values()) == pytest.approx(result.totals.conversions)
