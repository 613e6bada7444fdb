"""The sinks' simulated customers: who converts after a message, and what they send."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from infra.local.journeys import Acting
from tests.unit.webhook.test_sinks import signed, webhook_sinks

ACT = {
    "segment": "cart_abandoners",
    "event": "Order Completed",
    "properties": {"total": 40},
    "rates": {"reminder": 0.1, "free_shipping": 0.5},
    "context": {"consent": {"categoryPreferences": {"personalization": True}}},
    "seed": 7,
}


def entered(n: int, variant: str, segment: str = "cart_abandoners") -> dict[str, Any]:
    kind = "segment.entered"
    return {"id": f"a{n}", "type": kind, "segment_id": segment, "user_id": f"u{n}"} | (
        {"variant": variant} if variant != "treated" else {}
    )


def deliver(sinks: Any, message: dict[str, Any]) -> int:
    body = json.dumps(message).encode()
    status, _, _ = sinks.page("POST", "/_sink/hooks", signed(message["id"], body=body), body)
    return status


def test_customers_convert_at_their_arm_s_rate_and_their_orders_come_back() -> None:
    sinks, sent = webhook_sinks(), []
    sinks.customers.send = sent.append
    assert sinks.page("POST", "/_sink/hooks/act", {}, json.dumps(ACT).encode())[0] == 204
    for n in range(2000):
        assert deliver(sinks, entered(n, "reminder" if n % 2 else "free_shipping")) == 204
    deliver(sinks, entered(1, "reminder"))  # the same webhook-id again: decided once
    deliver(sinks, entered(9999, "free_shipping", segment="churn_risk"))  # another segment

    status, _, body = sinks.page("GET", "/_sink/hooks/acted", {}, b"")
    decided = json.loads(body)
    assert status == 200 and len(decided) == 2000
    for arm, rate in ACT["rates"].items():  # type: ignore[union-attr]
        mine = [d for d in decided if d["arm"] == arm]
        assert sum(d["converted"] for d in mine) / len(mine) == pytest.approx(rate, abs=0.04)
    assert len(sent) == sum(d["converted"] for d in decided)
    order = sent[0]
    assert order["type"] == "track" and order["event"] == "Order Completed"
    assert order["properties"] == {"total": 40} and order["userId"].startswith("u")
    assert order["context"]["consent"] == ACT["context"]["consent"]  # type: ignore[index]


def test_the_draw_is_the_same_on_every_run() -> None:
    acting = Acting.from_json(ACT)
    first = [acting.converts(f"u{n}", "free_shipping") for n in range(200)]
    assert first == [Acting.from_json(ACT).converts(f"u{n}", "free_shipping") for n in range(200)]
    assert not any(acting.converts(f"u{n}", "control") for n in range(200))  # no rate: never


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"segment": ""}, "segment"),
        ({"event": 3}, "event"),
        ({"rates": {}}, "rates"),
        ({"rates": {"a": 1.5}}, "rates"),
        ({"properties": []}, "properties"),
        ({"seed": "x"}, "seed"),
    ],
)
def test_a_bad_instruction_is_refused_naming_the_field(change: dict[str, Any], field: str) -> None:
    sinks = webhook_sinks()
    status, _, body = sinks.page("POST", "/_sink/hooks/act", {}, json.dumps(ACT | change).encode())
    assert status == 400 and json.loads(body)["message"].startswith(field)


@given(
    st.recursive(
        st.none() | st.integers() | st.text(), lambda c: st.lists(c) | st.dictionaries(st.text(), c)
    )
)
def test_any_json_instruction_is_taken_or_refused_with_400(data: Any) -> None:
    sinks = webhook_sinks()
    status, _, _ = sinks.page("POST", "/_sink/hooks/act", {}, json.dumps(data).encode())
    assert status in (204, 400)
