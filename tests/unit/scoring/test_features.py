"""Feature extraction: paths, transforms, defaults and their counts, on real profiles too."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError

from functions.profiles.apply import apply_events
from functions.profiles.evaluate import activation
from functions.profiles.state import Incoming, ProfileState
from functions.scoring.features import FeatureSpec, extract, feature_matrix
from functions.shared.events import CanonicalEvent
from functions.shared.segment_definitions import SegmentsConfig

NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)


def spec(name: str, source: str, transform: str = "value", default: float = 0.0) -> FeatureSpec:
    return FeatureSpec.model_validate(
        {"name": name, "source": source, "transform": transform, "default": default}
    )


def test_nested_paths_numbers_and_booleans() -> None:
    profile = {"computed": {"cart": {"value": 129.5, "quantity": 2, "abandoned": True}}}
    specs = [
        spec("cart_value", "computed.cart.value"),
        spec("cart_quantity", "computed.cart.quantity"),
        spec("cart_abandoned", "computed.cart.abandoned"),
    ]
    matrix = feature_matrix([profile], specs, NOW)
    assert matrix.names == ("cart_value", "cart_quantity", "cart_abandoned")
    assert matrix.rows == [[129.5, 2.0, 1.0]]
    assert matrix.defaults == {"cart_value": 0, "cart_quantity": 0, "cart_abandoned": 0}
    assert extract({"computed": {"cart": {"abandoned": False}}}, specs[2], NOW) == 0.0


def test_decimals_from_dynamodb_are_numbers() -> None:
    ltv = spec("lifetime_value", "computed.lifetime_value")
    assert extract({"computed": {"lifetime_value": Decimal("129.5")}}, ltv, NOW) == 129.5
    assert extract({"computed": {"lifetime_value": Decimal("NaN")}}, ltv, NOW) is None


def test_days_since_datetimes_iso_strings_naive_and_future() -> None:
    days = spec("recency", "computed.last_seen", "days_since", default=365)
    assert extract({"computed": {"last_seen": NOW - timedelta(days=3)}}, days, NOW) == 3.0
    iso = (NOW - timedelta(hours=36)).isoformat().replace("+00:00", "Z")
    assert extract({"computed": {"last_seen": iso}}, days, NOW) == 1.5
    naive = (NOW - timedelta(days=2)).replace(tzinfo=None)  # read as UTC
    assert extract({"computed": {"last_seen": naive}}, days, NOW) == 2.0
    # A timestamp slightly ahead of `now` is clock skew, not negative days.
    assert extract({"computed": {"last_seen": NOW + timedelta(minutes=5)}}, days, NOW) == 0.0


def test_missing_or_unusable_values_take_the_default_and_are_counted() -> None:
    specs = [
        spec("aov", "computed.average_order_value", default=-1),
        spec("since_order", "computed.rfm.last_order", "days_since", default=365),
    ]
    profiles: list[dict[str, Any]] = [
        {"computed": {"average_order_value": 80, "rfm": {"last_order": NOW - timedelta(days=10)}}},
        {"computed": {}},  # no orders: both absent
        {"computed": {"average_order_value": None, "rfm": {"last_order": "not a date"}}},
        {"computed": {"average_order_value": "80", "rfm": 5}},  # wrong types
        {"computed": {"average_order_value": float("nan"), "rfm": {"last_order": 17}}},
        {},
    ]
    matrix = feature_matrix(profiles, specs, NOW)
    assert matrix.rows == [[80.0, 10.0]] + [[-1.0, 365.0]] * 5
    assert matrix.defaults == {"aov": 5, "since_order": 5}


def test_present_is_one_or_zero_and_never_a_default() -> None:
    identified = spec("identified", "traits.email", "present", default=7)
    profiles: list[dict[str, Any]] = [
        {"traits": {"email": "a@example.org"}},
        {"traits": {"email": None}},
        {"traits": {}},
    ]
    matrix = feature_matrix(profiles, [identified], NOW)
    assert matrix.rows == [[1.0], [0.0], [0.0]]
    assert matrix.defaults == {"identified": 0}


def test_no_profiles_no_rows() -> None:
    matrix = feature_matrix([], [spec("x", "computed.x")], NOW)
    assert matrix.rows == [] and matrix.defaults == {"x": 0}


def test_now_must_be_aware() -> None:
    with pytest.raises(ValueError, match="aware"):
        feature_matrix([{}], [spec("x", "computed.x")], NOW.replace(tzinfo=None))


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("name", "Recency Days", "lower-case"),
        ("source", "computed..x", "dotted path"),
        ("source", "computed.x[0]", "dotted path"),
        ("transform", "log", "value"),
        ("default", float("inf"), "finite"),
    ],
)
def test_spec_validation(field: str, value: object, message: str) -> None:
    fields: dict[str, object] = {"name": "x", "source": "computed.x"}
    fields[field] = value
    with pytest.raises(ValidationError, match=message):
        FeatureSpec.model_validate(fields)


def test_spec_is_frozen_and_strict() -> None:
    with pytest.raises(ValidationError):
        FeatureSpec.model_validate({"name": "x", "source": "computed.x", "scale": 2})
    feature = spec("x", "computed.x")
    with pytest.raises(ValidationError):
        feature.name = "y"  # type: ignore[misc]


def test_features_of_a_live_profile() -> None:
    """The profile dict the segments step builds is what the specs read."""
    config = SegmentsConfig()
    t0 = NOW - timedelta(days=20)

    def event(name: str, at: datetime, **props: object) -> Incoming:
        return Incoming(
            CanonicalEvent.model_validate(
                {
                    "messageId": f"m-{name}-{at.isoformat()}",
                    "type": "track",
                    "event": name,
                    "userId": "u-1",
                    "properties": props,
                    "timestamp": at,
                    "receivedAt": at,
                    "source": {"name": "web", "protocol": "segment"},
                }
            )
        )

    state = ProfileState()
    apply_events(
        state,
        [
            event("Order Completed", t0, total=250.0),
            event("Product Viewed", NOW - timedelta(days=2), category="Shoes"),
            event("Product Added", NOW - timedelta(days=2), product_id="sku-1", price=40.0),
        ],
        config,
        NOW,
    )
    profile = activation("u-1", state, config, NOW)["profile"]
    specs = [
        spec("recency_days", "computed.last_seen", "days_since"),
        spec("days_since_order", "computed.rfm.last_order", "days_since", default=365),
        spec("lifetime_value", "computed.lifetime_value"),
        spec("product_views_7d", "computed.product_views_7d"),
        spec("cart_value", "computed.cart.value"),
        spec("cart_abandoned", "computed.cart.abandoned"),
        spec("rfm_recency", "computed.rfm.recency", default=1),
    ]
    matrix = feature_matrix([profile], specs, NOW)
    assert matrix.rows == [[2.0, 20.0, 250.0, 1.0, 40.0, 1.0, 4.0]]
    assert sum(matrix.defaults.values()) == 0
