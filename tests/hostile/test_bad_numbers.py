"""Finding 8: bad numbers were altered, not refused.

`NaN`/`Infinity` became null (`"userId": NaN` became user "nan"); two orders of
`1e308` made `lifetime_value: Infinity`, which strict JSON parsers reject; an
epoch-millisecond value out of range was divided by 1,000 twice (a year-2970
`ttm` became 1971) instead of refused or clamped.
"""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from functions.profiles.apply import apply_event
from functions.profiles.computed import computed_values
from functions.profiles.state import ProfileState
from functions.shared.config import load_config
from tests.hostile.conftest import Ingest


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e400"])
def test_non_finite_numbers_are_refused_naming_the_field(ingest: Ingest, literal: str) -> None:
    body = (
        '{"batch": [{"type": "track", "event": "E", "anonymousId": "a"},'
        ' {"type": "track", "event": "E", "userId": ' + literal + "},"
        ' {"type": "track", "event": "E", "anonymousId": "b", "properties": {"v": '
        + literal
        + "}}]}"
    )
    ingest.segment("batch", body)
    assert len(ingest.events()) == 1
    assert ingest.failed.reasons() == ["invalid_number", "invalid_number"]
    assert sorted(f.field for f in ingest.failed.failures) == ["properties.v", "userId"]


def test_sums_of_huge_orders_stay_finite_and_strict_json(ingest: Ingest) -> None:
    for order in ("o-1", "o-2"):
        properties = {"order_id": order, "total": 1e308}
        ingest.segment(
            "track", {"userId": "u", "event": "Order Completed", "properties": properties}
        )
    config = load_config("beacon.yaml").segments
    state = ProfileState()
    for event in ingest.events():
        apply_event(state, event, config, ingest.now)
    values = computed_values(state, config, ingest.now)
    json.dumps(values, allow_nan=False, default=str)  # raises on Infinity or NaN


def test_a_year_2970_ttm_is_clamped_to_receipt_not_read_as_1971(ingest: Ingest) -> None:
    ingest.pixel({"e": "pv", "aid": "shop-web", "duid": "d", "ttm": "31556995200000"})
    (event,) = ingest.events()
    assert event.timestamp.year == event.received_at.year
    assert abs(event.timestamp - event.received_at) <= timedelta(minutes=1)


def test_an_epoch_ms_value_beyond_any_date_is_refused(ingest: Ingest) -> None:
    ingest.pixel({"e": "pv", "aid": "shop-web", "duid": "d", "dtm": "999999999999999"})
    assert ingest.failed.reasons() == ["invalid_event"]
    assert ingest.failed.failures[0].field == "timestamp"


def test_every_api_answer_is_strict_json_whatever_a_profile_holds() -> None:
    """A profile written before these limits may still hold an infinite sum."""
    from functions.api.handler import _json

    answer = _json(200, {"computed": {"lifetime_value": float("inf"), "xs": [float("nan"), 1.5]}})
    assert json.loads(answer.body, parse_constant=lambda c: pytest.fail(f"not JSON: {c}")) == {
        "computed": {"lifetime_value": None, "xs": [None, 1.5]}
    }
