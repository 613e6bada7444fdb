"""Which events the consent step treats as bots', and which sources keep them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from functions.consent.step import is_bot
from functions.ingest.enrich import EnrichOptions, enrich_event
from functions.shared.config import parse_config
from functions.shared.enrichment_config import bot_sources_kept
from functions.shared.events import CanonicalEvent

GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"
SOURCES = """\
version: 1
sources:
  - name: web
    write_key_secret: beacon/web
  - name: partner
    write_key_secret: beacon/partner
    local_write_key: partner-key
    enrichment:
      exclude_bots: false
  - name: server
    write_key_secret: beacon/server
    local_write_key: other-key
"""


def event(context: dict[str, Any], enrich: bool = True) -> CanonicalEvent:
    at = datetime(2026, 12, 1, tzinfo=UTC)
    built = CanonicalEvent.model_validate(
        {
            "messageId": "m1",
            "type": "page",
            "anonymousId": "a1",
            "context": context,
            "source": {"name": "web", "protocol": "segment"},
            "timestamp": at,
            "receivedAt": at,
        }
    )
    if enrich:
        enrich_event(built, EnrichOptions())
    return built


PAGE = {"url": "https://shop.example.com/", "referrer": None}


def test_ingest_flags_bots_and_consent_reads_the_flag() -> None:
    assert is_bot(event({"userAgent": GOOGLEBOT, "page": PAGE}))
    assert not is_bot(event({"userAgent": FIREFOX, "page": PAGE}))
    assert not is_bot(event({"page": PAGE}))


@pytest.mark.parametrize("agent", ["Python-urllib/3.12", "Java/17.0.2", GOOGLEBOT])
def test_a_backend_event_is_no_bot_whatever_its_http_library(agent: str) -> None:
    # ua-parser takes some HTTP libraries for spiders; without a page the user agent
    # is the sender's, not a visitor's.
    backend = event({"userAgent": agent})
    assert (backend.context.model_extra or {})["enrichment"]["bot"] is True
    assert not is_bot(backend)


def test_a_client_cannot_claim_the_flag_ingest_did_not_set() -> None:
    # Ingest replaces context.enrichment: a human's "bot: true" is gone, and a bot's
    # "bot: false" too.
    assert not is_bot(event({"userAgent": FIREFOX, "page": PAGE, "enrichment": {"bot": True}}))
    assert is_bot(event({"userAgent": GOOGLEBOT, "page": PAGE, "enrichment": {"bot": False}}))
    # What is not a boolean true is no flag (a consent step never trusts more than that).
    assert not is_bot(event({"page": PAGE, "enrichment": {"bot": "yes"}}, enrich=False))
    assert not is_bot(event({"page": PAGE, "enrichment": ["bot"]}, enrich=False))


def test_bots_are_excluded_by_default_and_kept_where_a_source_says() -> None:
    config = parse_config(SOURCES)
    assert bot_sources_kept(config.ingest.enrichment, config.sources) == frozenset({"partner"})
    everywhere = parse_config(SOURCES + "ingest:\n  enrichment:\n    exclude_bots: false\n")
    kept = bot_sources_kept(everywhere.ingest.enrichment, everywhere.sources)
    assert kept == frozenset({"web", "partner", "server"})


@pytest.mark.parametrize("value", ["maybe", "[true]"])
def test_exclude_bots_must_be_a_boolean(value: object) -> None:
    from functions.shared.config import ConfigError

    text = SOURCES.replace("exclude_bots: false", f"exclude_bots: {value}")
    with pytest.raises(ConfigError, match="exclude_bots"):
        parse_config(text)
