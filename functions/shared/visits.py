"""Visits and bots' visits: the one rule the consent step, the profile's touches and
attribution share.

A visit is an event that carries the page it was seen on (`context.page`: what
trackers in a browser, headless or not, send). A bot's visit is a visit whose user
agent ingest's enrichment flagged (`context.enrichment.bot`). A backend's events
carry no page and are never a bot's: their user agent is their HTTP library's,
which a parser may take for a spider (Python-urllib, Java)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from functions.shared.events import CanonicalEvent


def enrichment_of(context: Mapping[str, Any]) -> Mapping[str, Any]:
    enrichment = context.get("enrichment")
    return enrichment if isinstance(enrichment, dict) else {}


def is_visit(context: Mapping[str, Any]) -> bool:
    page = context.get("page")
    return isinstance(page, dict) and bool(page)


def is_bot_visit(context: Mapping[str, Any]) -> bool:
    return is_visit(context) and enrichment_of(context).get("bot") is True


def visit_context(event: CanonicalEvent) -> dict[str, Any]:
    """The parts of an event's context the rules read (no copy of the rest)."""
    extra = event.context.__pydantic_extra__ or {}
    return {"page": event.context.page, "enrichment": extra.get("enrichment")}
