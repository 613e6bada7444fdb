"""The training set: live profile code for features, labels from after the cutoff, CSV."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from functions.shared.segment_definitions import SegmentsConfig
from models.dataset import (
    ACTIVE_WITHIN_DAYS,
    FEATURES,
    DataError,
    Dataset,
    _observations,
    cutoff_days,
    load_csv,
    write_csv,
)
from simulator.journeys import Journey

START = datetime(2025, 1, 1, tzinfo=UTC)
NAMES = [s.name for s in FEATURES]


def day(n: float) -> datetime:
    return START + timedelta(days=n)


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def view(at: datetime, n: int) -> dict[str, Any]:
    return {
        "type": "track",
        "event": "Product Viewed",
        "anonymousId": "anon-1",
        "messageId": f"v-{n}",
        "timestamp": iso(at),
        "properties": {"product_id": "sku-100", "category": "Shoes", "price": 129.0},
    }


def order(at: datetime, n: int, total: float = 129.0) -> dict[str, Any]:
    return {
        "type": "track",
        "event": "Order Completed",
        "userId": "u-1",
        "messageId": f"o-{n}",
        "timestamp": iso(at),
        "properties": {"order_id": f"o-{n}", "total": total, "products": []},
    }


def journey(*events: dict[str, Any]) -> Journey:
    return Journey("u-1", "anon-1", "loyal", "a@example.org", "Ana", False, list(events))


def observe(j: Journey, cutoffs: list[int]) -> dict[int, tuple[dict[str, Any], dict[str, int]]]:
    return {d: (p, labels) for d, p, labels in _observations(j, cutoffs, START, SegmentsConfig())}


def test_cutoffs_leave_room_for_the_label_window() -> None:
    assert cutoff_days(480) == list(range(120, 421, 30))
    assert cutoff_days(150) == []


def test_a_customer_who_comes_back_has_not_churned_and_did_not_buy() -> None:
    j = journey(order(day(100), 1, total=200.0), view(day(110), 2), view(day(150), 3))
    profile, labels = observe(j, [120])[120]
    assert labels == {"churn": 0, "purchase": 0}
    # The profile is what the live code built from the events before the cutoff only.
    assert profile["computed"]["orders_total"] == 1
    assert profile["computed"]["lifetime_value"] == 200.0
    assert profile["computed"]["last_seen"] == day(110)


def test_a_customer_who_buys_again_within_30_days() -> None:
    j = journey(order(day(100), 1), order(day(140), 2))
    assert observe(j, [120])[120][1] == {"churn": 0, "purchase": 1}
    # An order 31+ days on still counts against churn, but not as a purchase.
    j = journey(order(day(100), 1), order(day(151), 2))
    assert observe(j, [120])[120][1] == {"churn": 0, "purchase": 0}


def test_a_customer_silent_for_60_days_has_churned() -> None:
    j = journey(order(day(100), 1), view(day(181), 2))
    assert observe(j, [120])[120][1] == {"churn": 1, "purchase": 0}


def test_a_visitor_without_orders_is_only_in_the_purchase_population() -> None:
    j = journey(view(day(100), 1), order(day(125), 2))
    observed = observe(j, [90, 120, 150])
    assert 90 not in observed  # not arrived yet
    assert observed[120][1] == {"purchase": 1}  # no order before the cutoff: no churn label
    assert observed[150][1] == {"churn": 1, "purchase": 0}


def test_long_quiet_profiles_are_left_out() -> None:
    j = journey(order(day(10), 1))
    observed = observe(j, [10 + ACTIVE_WITHIN_DAYS - 1, 10 + ACTIVE_WITHIN_DAYS + 1])
    assert list(observed) == [10 + ACTIVE_WITHIN_DAYS - 1]


def test_simulated_datasets_are_balanced_and_well_formed(small: dict[str, Dataset]) -> None:
    churn, purchase = small["churn"], small["purchase"]
    assert churn.feature_names == purchase.feature_names == tuple(NAMES)
    for dataset in (churn, purchase):
        assert len(dataset.rows) == len(dataset.labels) == len(dataset.groups)
        assert all(len(row) == len(NAMES) for row in dataset.rows)
        assert set(dataset.labels) == {0, 1}
    # Every churn row is a customer, so in the purchase population too.
    assert len(churn.rows) < len(purchase.rows)
    assert 0.10 < churn.positive_rate < 0.40
    assert 0.10 < purchase.positive_rate < 0.35
    # Without orders, the order features take their defaults, and that is counted.
    assert churn.defaults["average_order_value"] == 0
    assert purchase.defaults["average_order_value"] > 0


def test_csv_round_trip(small: dict[str, Dataset], tmp_path: Path) -> None:
    path = tmp_path / "export.csv"
    lines = write_csv(path, [small["churn"], small["purchase"]])
    assert lines == len(small["purchase"].rows)  # churn rows share the purchase rows' lines
    for target in ("churn", "purchase"):
        loaded = load_csv(path, target)
        original = small[target]
        pairs = sorted(zip(loaded.groups, loaded.as_of, loaded.rows, loaded.labels, strict=True))
        expected = sorted(
            zip(original.groups, original.as_of, original.rows, original.labels, strict=True)
        )
        assert pairs == expected
        assert loaded.description.startswith("csv: export.csv")


def write(path: Path, header: list[str], *rows: list[str]) -> Path:
    path.write_text("\n".join(",".join(r) for r in [header, *rows]) + "\n", encoding="utf-8-sig")
    return path


def test_csv_empty_cells_take_defaults_and_unlabelled_rows_are_skipped(tmp_path: Path) -> None:
    full = ["3"] * len(NAMES)
    missing = ["" if n == "days_since_order" else "1" for n in NAMES]
    path = write(
        tmp_path / "mine.csv",
        [*NAMES, "churn"],
        [*full, "1"],
        [*missing, "false"],
        [*full, ""],
    )
    data = load_csv(path, "churn")
    assert data.labels == [1, 0]
    assert data.rows[1][NAMES.index("days_since_order")] == 365.0
    assert data.defaults["days_since_order"] == 1
    assert data.groups == ["row-2", "row-3"]  # no profile_id column: each row its own group


def test_csv_problems_name_the_line_and_column(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="missing column"):
        load_csv(write(tmp_path / "a.csv", [*NAMES[:-1], "churn"], ["1"] * len(NAMES)), "churn")
    with pytest.raises(DataError, match=r"missing column.*purchase"):
        load_csv(write(tmp_path / "b.csv", [*NAMES, "churn"], ["1"] * (len(NAMES) + 1)), "purchase")
    bad_label = ["1"] * len(NAMES) + ["maybe"]
    with pytest.raises(DataError, match="line 2: churn must be 0 or 1"):
        load_csv(write(tmp_path / "c.csv", [*NAMES, "churn"], bad_label), "churn")
    bad_number = ["x", *["1"] * (len(NAMES) - 1), "1"]
    with pytest.raises(DataError, match="line 2: recency_days is not a number"):
        load_csv(write(tmp_path / "d.csv", [*NAMES, "churn"], bad_number), "churn")
    with pytest.raises(DataError, match="no row has a 'churn' label"):
        load_csv(write(tmp_path / "e.csv", [*NAMES, "churn"], ["1"] * len(NAMES) + [""]), "churn")
