"""Sessions and touches from events: what `beacon attribution` feeds the models
(models/attribution.py; docs/attribution.md).

A touch is the start of a session. Sessions are per person (the archive's
`events` view gives each event the profile it belongs to now), built from the
person's visits, oldest first: an event that carries the page it happened on
(`context.page`, so a browser's page view or track, not a backend's order). A
new session starts after 30 minutes of inactivity (SESSION_GAP_S), or when a visit carries a
campaign (utm_* or a click id) other than the session's. A session's channel
and campaign are those ingest's enrichment gave its first visit
(`context.enrichment.channel`, `context.enrichment.campaign`). Visits flagged
as bots' (`context.enrichment.bot`) neither visit nor convert; a backend's
events (no page) are never taken for bots: their user agent is an HTTP
library's.

A conversion is a track of the chosen event (default "Order Completed") from
any source, its revenue `properties.revenue`, else `properties.total`, else 0.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from functions.profiles.touches import UNKNOWN_CHANNEL, Visit, starts_session, visit_of
from functions.shared.visits import is_bot_visit
from models.attribution import Conversion, Person, Touch

DEFAULT_CONVERSION = "Order Completed"


@dataclass(frozen=True)
class Hit:
    """One event, as sessions and conversions see it."""

    person: str
    at: datetime
    visit: bool  # carries its page: may start or extend a session
    channel: str
    campaign: str | None  # the campaign's name (utm_campaign), if any
    campaign_key: str | None  # what tells campaigns apart
    revenue: float | None  # a conversion's revenue; None: not a conversion


def _json(value: Any) -> dict[str, Any]:
    if isinstance(value, dict):
        return value
    if not value:
        return {}
    try:
        loaded = json.loads(value)
    except (TypeError, ValueError):
        return {}
    return loaded if isinstance(loaded, dict) else {}


def _time(value: Any) -> datetime:
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    # Athena answers timestamps as text without a zone: they are UTC.
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _revenue(properties: Mapping[str, Any]) -> float:
    for name in ("revenue", "total"):
        value = properties.get(name)
        if isinstance(value, bool):
            continue
        if isinstance(value, int | float | str):
            try:
                number = float(value)
            except ValueError:
                continue
            if math.isfinite(number):
                return number
    return 0.0


def hit_of(
    person: str,
    at: datetime,
    event_type: str,
    event_name: str | None,
    properties: Mapping[str, Any],
    context: Mapping[str, Any],
    conversion: str = DEFAULT_CONVERSION,
) -> Hit | None:
    """The event as a hit, or None for a bot's (the profile's session rule:
    functions/profiles/touches.py)."""
    if is_bot_visit(context):
        return None  # a bot's visit (the consent step's rule: functions/consent/step.py)
    visit = visit_of(context)
    return Hit(
        person=person,
        at=at,
        visit=visit is not None,
        channel=visit.channel if visit else UNKNOWN_CHANNEL,
        campaign=visit.campaign if visit else None,
        campaign_key=visit.campaign_key if visit else None,
        revenue=_revenue(properties)
        if event_type == "track" and event_name == conversion
        else None,
    )


def hit_of_row(row: Mapping[str, Any], conversion: str = DEFAULT_CONVERSION) -> Hit | None:
    """An archive row (the `events` view: profile_id, type, event, timestamp,
    properties, context) as a hit."""
    return hit_of(
        str(row["profile_id"]),
        _time(row["timestamp"]),
        str(row.get("type") or ""),
        row.get("event"),
        _json(row.get("properties")),
        _json(row.get("context")),
        conversion,
    )


def touches_of(hits: Iterable[Hit]) -> list[Touch]:
    """One person's session starts (the hits in any order)."""
    touches: list[Touch] = []
    last: int | None = None
    current_campaign: str | None = None
    for hit in sorted((h for h in hits if h.visit), key=lambda h: h.at):
        at_s = int(hit.at.timestamp())
        visit = Visit(hit.channel, hit.campaign, hit.campaign_key)
        if starts_session(last, current_campaign, visit, at_s):
            touches.append(Touch(hit.at, hit.channel, hit.campaign))
            current_campaign = hit.campaign_key
        last = at_s
    return touches


def people_of(
    hits: Iterable[Hit | None],
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[Person]:
    """Each person's touches and their conversions in [since, until)."""
    by_person: dict[str, list[Hit]] = defaultdict(list)
    for hit in hits:
        if hit is not None and (until is None or hit.at < until):
            by_person[hit.person].append(hit)
    people = []
    for person, own in sorted(by_person.items()):
        conversions = [
            Conversion(h.at, h.revenue)
            for h in sorted(own, key=lambda h: h.at)
            if h.revenue is not None and (since is None or h.at >= since)
        ]
        people.append(Person(person, touches_of(own), conversions))
    return people


def simulated_hits(journeys: Iterable[Any]) -> list[Hit | None]:
    """The simulator's journeys (simulator/journeys.py, channels on) as hits, each
    browser event enriched as ingest would enrich it (its page's url and referrer)."""
    from functions.ingest.enrich import EnrichOptions, enrichment

    found: list[Hit | None] = []
    for journey in journeys:
        for event in journey.events:
            context: dict[str, Any] = dict(event.get("context") or {})
            page = context.get("page")
            if page:
                context["enrichment"] = enrichment(
                    page["url"], page["referrer"], None, None, EnrichOptions()
                )
            found.append(
                hit_of(
                    journey.user_id,
                    _time(event["timestamp"].replace("Z", "+00:00")),
                    event["type"],
                    event.get("event"),
                    event.get("properties") or {},
                    context,
                )
            )
    return found
