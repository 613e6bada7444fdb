"""Sessions and touches on the profile: where a person keeps coming from.

A visit is an event that carries the page it happened on and is not a bot's
(functions/shared/visits.py): a backend's order carries no page and is never one.
A session starts with a visit after SESSION_GAP_S of inactivity, or with a visit
carrying a campaign (utm_* or a click id) other than the session's; its first
visit is its touch, with the channel and campaign ingest's enrichment gave it
(`context.enrichment.channel`, `.campaign`). The same rule builds the touches
attribution reads from the archive (models/touches.py).

A `touches` computed trait keeps the newest `keep` touches, the first ever and a
count, and shows CEL and destinations each channel's influence: the touches in
`window`, each weighted by 2^(-age / half_life), normalized to sum to 1 (every
known channel present, 0 when absent, so `profile.computed.channels.influence.email
> 0.5` needs no `has()`). Since every weight decays alike, the shares move only
when a touch arrives or leaves the window, which is when the profile is due again.

Visits are taken in the order they are applied (one person's events are in order
on their shard); a late visit, older than the last one, extends nothing and starts
nothing. Pure logic: no I/O and no clock.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from functions.profiles.state import Sessions, Touch, TraitState, epoch
from functions.shared.enrichment_config import CHANNELS
from functions.shared.events import CanonicalEvent
from functions.shared.segment_definitions import TouchesTrait, window_seconds
from functions.shared.visits import enrichment_of, is_bot_visit, is_visit, visit_context

SESSION_GAP_S = 30 * 60
UNKNOWN_CHANNEL = "unknown"  # a visit ingest did not enrich (its referrer enrichment off)
MAX_CAMPAIGN_CHARS = 200


@dataclass(frozen=True)
class Visit:
    channel: str
    campaign: str | None  # the campaign's name (utm_campaign), if any
    campaign_key: str | None  # what tells campaigns apart: source, medium, name, click id


def visit_of(context: Mapping[str, Any]) -> Visit | None:
    """The event as a visit: None when it is not one, or a bot's."""
    if not is_visit(context) or is_bot_visit(context):
        return None
    enrichment = enrichment_of(context)
    campaign = enrichment.get("campaign")
    campaign = campaign if isinstance(campaign, dict) else {}
    channel = enrichment.get("channel")
    name = campaign.get("name")
    return Visit(
        channel=channel if isinstance(channel, str) else UNKNOWN_CHANNEL,
        campaign=name[:MAX_CAMPAIGN_CHARS] if isinstance(name, str) else None,
        campaign_key=campaign_key(campaign),
    )


def visit_of_event(event: CanonicalEvent) -> Visit | None:
    return visit_of(visit_context(event))


def campaign_key(campaign: Mapping[str, Any]) -> str | None:
    if not campaign:
        return None
    parts = (str(campaign.get(k, "")) for k in ("source", "medium", "name", "clickId"))
    return "|".join(parts)[: 4 * MAX_CAMPAIGN_CHARS]


def starts_session(
    last_visit_s: int | None, session_campaign: str | None, visit: Visit, at_s: int
) -> bool:
    """Whether a visit at `at_s` starts a new session."""
    new_campaign = visit.campaign_key is not None and visit.campaign_key != session_campaign
    return last_visit_s is None or at_s - last_visit_s > SESSION_GAP_S or new_campaign


def add_visit(sessions: Sessions, visit: Visit, at: datetime, keep: int) -> None:
    at_s = epoch(at)
    if sessions.visited is not None and at_s < sessions.visited:
        return  # late: arrived after a later visit (module docstring)
    if starts_session(sessions.visited, sessions.campaign, visit, at_s):
        touch = Touch(at_s, visit.channel, visit.campaign)
        sessions.touches.append(touch)
        del sessions.touches[:-keep]
        sessions.count += 1
        sessions.first = sessions.first or touch
        sessions.campaign = visit.campaign_key
    sessions.visited = at_s


def fold_sessions(mine: Sessions | None, theirs: Sessions | None, keep: int) -> Sessions | None:
    """Two people found to be one: their touches together, the newer session goes on."""
    if mine is None or theirs is None:
        return mine or theirs
    touches = sorted(set(mine.touches) | set(theirs.touches), key=lambda t: (t.at, t.channel))
    firsts = [t for t in (mine.first, theirs.first) if t is not None]
    newer = mine if (mine.visited or 0) >= (theirs.visited or 0) else theirs
    return Sessions(
        touches=touches[-keep:],
        count=mine.count + theirs.count,
        first=min(firsts, key=lambda t: t.at) if firsts else None,
        visited=newer.visited,
        campaign=newer.campaign,
    )


def touches_value(sessions: Sessions, trait: TouchesTrait, now: datetime) -> dict[str, Any]:
    """What CEL sees as `profile.computed.<id>` and destinations receive."""
    return {
        "sessions": sessions.count,
        "first": _touch_json(sessions.first),
        "last": _touch_json(sessions.touches[-1] if sessions.touches else None),
        "influence": influence(sessions, trait, now),
    }


def influence(sessions: Sessions, trait: TouchesTrait, now: datetime) -> dict[str, float]:
    """Each channel's share of the time-decayed touches in the window (sums to 1, or
    all 0 with no touch in the window)."""
    now_s = epoch(now)
    half_life = window_seconds(trait.half_life)
    weights = dict.fromkeys(CHANNELS, 0.0)
    for touch in in_window(sessions, trait, now_s):
        age = max(now_s - touch.at, 0)
        weights[touch.channel] = weights.get(touch.channel, 0.0) + 2.0 ** (-age / half_life)
    total = sum(weights.values())
    return {c: round(w / total, 4) if total else 0.0 for c, w in weights.items()}


def profile_influence(
    computed: Mapping[str, TraitState], traits: Iterable[Any], now: datetime
) -> dict[str, float] | None:
    """The first `touches` trait's influence, what an activation carries (None: no
    such trait configured)."""
    for trait in traits:
        if isinstance(trait, TouchesTrait):
            ts = computed.get(trait.id)
            sessions = ts.sessions if ts is not None and ts.sessions else Sessions()
            return influence(sessions, trait, now)
    return None


def in_window(sessions: Sessions, trait: TouchesTrait, now_s: int) -> list[Touch]:
    oldest = now_s - window_seconds(trait.window)
    return [t for t in sessions.touches if oldest < t.at <= now_s]


def next_change_at(sessions: Sessions, trait: TouchesTrait, now: datetime) -> datetime | None:
    """When the oldest touch in the window leaves it (the shares change then)."""
    live = in_window(sessions, trait, epoch(now))
    if not live:
        return None
    return datetime.fromtimestamp(live[0].at + window_seconds(trait.window), UTC)


def _touch_json(touch: Touch | None) -> dict[str, Any] | None:
    if touch is None:
        return None
    at = datetime.fromtimestamp(touch.at, UTC)
    return {"at": at, "channel": touch.channel, "campaign": touch.campaign}
