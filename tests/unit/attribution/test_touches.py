"""Sessions, touches and conversions from archived events (models/touches.py), with
the context ingest's real enrichment gives them."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from functions.ingest.enrich import EnrichOptions, enrichment
from models.attribution import Touch, attribute
from models.touches import UNKNOWN_CHANNEL, hit_of_row, people_of, touches_of

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko)"
    " Chrome/131.0.0.0 Safari/537.36"
)
GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
SHOP = "https://shop.example.com/"
EMAIL_URL = SHOP + "?utm_source=newsletter&utm_medium=email&utm_campaign=winter"


def row(
    minutes: float,
    url: str | None = SHOP,
    referrer: str | None = None,
    *,
    person: str = "p1",
    event: str | None = None,
    properties: dict[str, Any] | None = None,
    agent: str = CHROME,
    naive: bool = False,
) -> dict[str, Any]:
    context: dict[str, Any] = {"userAgent": agent}
    if url is not None:
        context["page"] = {"url": url, "referrer": referrer}
    context["enrichment"] = enrichment(url, referrer, agent, None, EnrichOptions())
    at = T0 + timedelta(minutes=minutes)
    return {
        "profile_id": person,
        "type": "track" if event else "page",
        "event": event,
        "timestamp": at.replace(tzinfo=None).isoformat() if naive else at,
        "properties": json.dumps(properties or {}),
        "context": json.dumps(context),
    }


def touches(rows: list[dict[str, Any]]) -> list[tuple[float, str, str | None]]:
    hits = [h for h in (hit_of_row(r) for r in rows) if h is not None]
    return [((t.at - T0).total_seconds() / 60, t.channel, t.campaign) for t in touches_of(hits)]


def test_thirty_minutes_of_inactivity_start_a_new_session() -> None:
    rows = [row(0, referrer="https://www.google.com/"), row(29), row(58), row(88.5)]
    # 29 min after 0 and 58: one session; 88.5 is 30.5 min after 58: a new one
    assert touches(rows) == [(0, "search", None), (88.5, "direct", None)]


def test_a_new_campaign_starts_a_new_session_and_the_same_one_does_not() -> None:
    rows = [
        row(0),
        row(5, EMAIL_URL, "https://mail.google.com/"),
        row(6, EMAIL_URL),  # the same campaign again: same session
        row(7),  # no campaign: same session
        row(8, SHOP + "?utm_source=facebook&utm_medium=paid_social&utm_campaign=bf"),
    ]
    assert touches(rows) == [
        (0, "direct", None),
        (5, "email", "winter"),
        (8, "paid", "bf"),
    ]


def test_the_first_visit_gives_the_session_its_channel_in_any_order() -> None:
    rows = [row(10), row(0, referrer="https://t.co/abc"), row(20)]
    assert touches(rows) == [(0, "social", None)]


def test_backend_events_and_bots_start_no_session() -> None:
    rows = [
        row(0, None, event="Order Completed", properties={"revenue": 10}),  # the backend
        row(100, agent=GOOGLEBOT),
    ]
    assert touches(rows) == []
    assert hit_of_row(rows[1]) is None


def test_a_backend_order_is_no_bot_whatever_its_http_library() -> None:
    # ua-parser takes Java's client for a spider: without a page it is the sender's.
    order = row(0, None, event="Order Completed", properties={"revenue": 10}, agent="Java/17")
    assert json.loads(order["context"])["enrichment"]["bot"] is True
    hit = hit_of_row(order)
    assert hit is not None and hit.revenue == 10


def test_unenriched_visits_have_an_unknown_channel() -> None:
    bare = row(0)
    bare["context"] = json.dumps({"page": {"url": SHOP}})
    assert touches([bare]) == [(0, UNKNOWN_CHANNEL, None)]


@pytest.mark.parametrize(
    ("properties", "revenue"),
    [
        ({"revenue": 12.5}, 12.5),
        ({"total": "40"}, 40.0),
        ({"revenue": "n/a", "total": 3}, 3.0),
        ({"revenue": True}, 0.0),
        ({"revenue": "nan"}, 0.0),
        ({}, 0.0),
    ],
)
def test_conversion_revenue(properties: dict[str, Any], revenue: float) -> None:
    hit = hit_of_row(row(0, None, event="Order Completed", properties=properties))
    assert hit is not None and hit.revenue == revenue


def test_other_events_and_a_chosen_conversion() -> None:
    added = row(0, event="Product Added", properties={"revenue": 5})
    assert hit_of_row(added).revenue is None  # type: ignore[union-attr]
    assert hit_of_row(added, conversion="Product Added").revenue == 5  # type: ignore[union-attr]


def test_athena_rows_have_naive_utc_timestamps() -> None:
    hit = hit_of_row(row(0, naive=True))
    assert hit is not None and hit.at == T0


def test_people_keep_conversions_in_the_window_and_touches_before_it() -> None:
    day = 24 * 60
    rows = [
        row(0, EMAIL_URL, "https://mail.google.com/"),  # email visit, day 0
        row(2 * day),  # direct visit two days later
        row(2 * day + 5, None, event="Order Completed", properties={"revenue": 80}),
        row(-10 * day, None, event="Order Completed", properties={"revenue": 1}),  # before
        row(9 * day, None, event="Order Completed", properties={"revenue": 1}),  # after
        row(3 * day, person="p2", referrer="https://www.bing.com/search?q=x"),
    ]
    since, until = T0 + timedelta(days=1), T0 + timedelta(days=8)
    people = people_of((hit_of_row(r) for r in rows), since, until)
    assert [p.id for p in people] == ["p1", "p2"]
    p1 = people[0]
    assert [(t.channel, t.campaign) for t in p1.touches] == [("email", "winter"), ("direct", None)]
    assert [(c.at, c.revenue) for c in p1.conversions] == [(T0 + timedelta(days=2, minutes=5), 80)]
    result = attribute(people, since=since)
    first = result.models["first"]
    last = result.models["last"]
    assert (first["email"].conversions, first["email"].revenue) == (1, 80)
    assert (last["direct"].conversions, last["direct"].revenue) == (1, 80)
    assert "email" not in last and "direct" not in first
    # p2's search visit converts nothing: the Markov chain counts it as a path to null
    assert result.totals.conversions == 1


def test_touches_are_touches() -> None:
    hits = [hit_of_row(row(0))]
    assert touches_of([h for h in hits if h]) == [Touch(T0, "direct", None)]
