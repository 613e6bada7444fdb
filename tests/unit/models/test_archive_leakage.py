"""No feature of a point-in-time row sees the future (models/archive_dataset.py).

For every profile and cutoff, the features built from the whole archive must be
the features built from an archive cut at that cutoff; a planted leaky builder
(one that applies every event) proves the check fails when a feature peeks."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from functions.profiles.apply import apply_events
from functions.profiles.evaluate import activation
from functions.profiles.state import Incoming, ProfileState
from functions.scoring.features import feature_matrix
from functions.shared.events import CanonicalEvent
from functions.shared.segment_definitions import SegmentsConfig
from models import archive_dataset
from models.archive_dataset import Horizons, event_of, from_archive, histories, labels_after
from models.dataset import FEATURES

START = datetime(2026, 1, 1, tzinfo=UTC)
CONFIG = SegmentsConfig()


def row(profile: str, n: int, day: float, event: str, late_by: float = 0, **props: Any) -> dict:
    at = START + timedelta(days=day)
    return {
        "message_id": f"{profile}-{n}",
        "profile_id": profile,
        "type": "track",
        "event": event,
        "name": None,
        "timestamp": at,
        "received_at": at + timedelta(days=late_by),
        "anonymous_id": f"anon-{profile}",
        "user_id": None,
        "traits": "{}",
        "properties": json.dumps(props),
        "context": "{}",
        "source": "web",
    }


def archive() -> list[dict]:
    rows = []
    for p in range(12):
        who = f"p{p}"
        for d in range(0, 60, 3 + p % 4):
            rows.append(row(who, d, d + 0.5, "Product Viewed", product_id=f"sku-{p}"))
            if (d + p) % 9 == 0:
                rows.append(row(who, 1000 + d, d + 0.7, "Order Completed", total=20 + p * d))
        # An event dated before a cutoff but received days after it: not known then.
        rows.append(row(who, 5000, 20.9, "Order Completed", late_by=5, total=999))
    return rows


def features_at(profile: str, events: Sequence[CanonicalEvent], cutoff: datetime) -> list[float]:
    built = archive_dataset.profile_as_of(profile, events, cutoff, CONFIG)
    assert built is not None
    return feature_matrix([built], FEATURES, cutoff).rows[0]


def leaks(profile_as_of: Callable[..., Any]) -> list[str]:
    """(profile, cutoff) pairs whose features differ from those of the cut archive."""
    rows = archive()
    people = histories(rows)
    found = []
    for cutoff in (START + timedelta(days=d) for d in (14, 21, 28, 35)):
        cut = histories(
            [r for r in rows if r["timestamp"] <= cutoff and r["received_at"] <= cutoff]
        )
        for profile, events in people.items():
            if profile not in cut:
                continue
            whole = profile_as_of(profile, events, cutoff, CONFIG)
            honest = archive_dataset.profile_as_of(profile, cut[profile], cutoff, CONFIG)
            if (
                feature_matrix([whole], FEATURES, cutoff).rows
                != feature_matrix([honest], FEATURES, cutoff).rows
            ):
                found.append(f"{profile}@{cutoff.date()}")
    return found


def test_no_feature_uses_an_event_after_its_cutoff() -> None:
    assert leaks(archive_dataset.profile_as_of) == []


def test_the_check_catches_a_builder_that_peeks() -> None:
    def peeking(profile: str, events: Sequence[CanonicalEvent], cutoff: datetime, config: Any):
        state = ProfileState()
        apply_events(state, [Incoming(e) for e in events], config, now=cutoff)
        return activation(profile, state, config, cutoff)["profile"]

    assert leaks(peeking)


def test_a_late_event_is_not_known_before_it_arrived() -> None:
    late = event_of(row("p", 1, 20.9, "Order Completed", late_by=5, total=999))
    early = event_of(row("p", 2, 10, "Product Viewed"))
    assert features_at("p", [early, late], START + timedelta(days=21)) == features_at(
        "p", [early], START + timedelta(days=21)
    )


def test_labels_come_from_after_the_cutoff() -> None:
    events = [
        event_of(row("p", 1, 5, "Order Completed")),
        event_of(row("p", 2, 25, "Order Completed")),
    ]
    two_weeks = Horizons(purchase_days=14, churn_days=14)
    assert labels_after(events, START + timedelta(days=10), two_weeks) == {
        "purchase": 0,
        "churn": 1,
    }
    assert (
        labels_after(events, START + timedelta(days=14), Horizons(purchase_days=14))["purchase"]
        == 1
    )


def test_datasets_from_the_archive_have_rows_per_cutoff() -> None:
    datasets = from_archive(archive(), horizons=Horizons(purchase_days=14, churn_days=14))
    purchase = datasets["purchase"]
    assert purchase.rows and len(purchase.rows) == len(purchase.labels) == len(purchase.groups)
    assert len(set(purchase.as_of)) >= 3
    assert set(purchase.groups) <= {f"p{p}" for p in range(12)}


@pytest.mark.parametrize("cutoff_day", [14, 28])
def test_a_profile_with_no_known_event_has_no_row(cutoff_day: int) -> None:
    future = [event_of(row("p", 1, 50, "Product Viewed"))]
    cutoff = START + timedelta(days=cutoff_day)
    assert archive_dataset.profile_as_of("p", future, cutoff, CONFIG) is None


def test_by_event_time_no_feature_uses_an_event_dated_after_its_cutoff() -> None:
    rows = archive()
    people = histories(rows)
    for cutoff in (START + timedelta(days=d) for d in (14, 28)):
        cut = histories([r for r in rows if r["timestamp"] <= cutoff])
        for profile, events in cut.items():
            whole = archive_dataset.profile_as_of(profile, people[profile], cutoff, CONFIG, False)
            honest = archive_dataset.profile_as_of(profile, events, cutoff, CONFIG, False)
            assert whole == honest
