"""Standard enrichments computed at ingest: campaign, referrer, channel, user agent, bots,
and the place (functions/ingest/geo.py) when a geolocation database is configured.

Pure logic (no AWS). The result goes into `context.enrichment` of the event, which
ingest always overwrites (a client cannot forge it). Every value taken from the
client is bounded: URLs are read up to MAX_URL_CHARS, each campaign value is cut
to MAX_CAMPAIGN_VALUE_CHARS, user agents are parsed up to MAX_UA_CHARS.

The referrer table is a small vendored subset of Snowplow's referer-parser data
(referers.yml, https://github.com/snowplow-referer-parser/referer-parser, CC-BY
licence for the data): the PyPI package `referer-parser` was last released in
2016 and is not usable. The hosts below are the major search engines, social
networks and webmail providers; any other external host is `referral`.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import SplitResult, parse_qsl, urlsplit

from functions.ingest.geo import GeoLocator, locator
from functions.shared.events import CanonicalEvent

MAX_URL_CHARS = 2048
MAX_CAMPAIGN_VALUE_CHARS = 200
MAX_UA_CHARS = 512
UA_CACHE_SIZE = 4096

# Segment's context.campaign names <- the URL parameters that carry them.
_UTM = {
    "utm_source": "source",
    "utm_medium": "medium",
    "utm_campaign": "name",
    "utm_term": "term",
    "utm_content": "content",
}
_CLICK_IDS = {"gclid": "google", "fbclid": "facebook", "msclkid": "microsoft"}
_CAMPAIGN_KEYS = ("source", "medium", "name", "term", "content")

# Hostname suffix -> (medium, source). From Snowplow's referers.yml (subset).
REFERRERS: dict[str, tuple[str, str]] = {
    # search
    "google.com": ("search", "Google"),
    "google.co.uk": ("search", "Google"),
    "google.de": ("search", "Google"),
    "google.fr": ("search", "Google"),
    "google.ca": ("search", "Google"),
    "google.com.au": ("search", "Google"),
    "google.co.in": ("search", "Google"),
    "google.co.jp": ("search", "Google"),
    "google.es": ("search", "Google"),
    "google.it": ("search", "Google"),
    "google.com.br": ("search", "Google"),
    "bing.com": ("search", "Bing"),
    "duckduckgo.com": ("search", "DuckDuckGo"),
    "search.yahoo.com": ("search", "Yahoo!"),
    "yandex.ru": ("search", "Yandex"),
    "yandex.com": ("search", "Yandex"),
    "baidu.com": ("search", "Baidu"),
    "ecosia.org": ("search", "Ecosia"),
    "search.brave.com": ("search", "Brave"),
    "startpage.com": ("search", "Startpage"),
    "qwant.com": ("search", "Qwant"),
    "naver.com": ("search", "Naver"),
    # social
    "facebook.com": ("social", "Facebook"),
    "fb.com": ("social", "Facebook"),
    "l.facebook.com": ("social", "Facebook"),
    "lm.facebook.com": ("social", "Facebook"),
    "instagram.com": ("social", "Instagram"),
    "l.instagram.com": ("social", "Instagram"),
    "linkedin.com": ("social", "LinkedIn"),
    "lnkd.in": ("social", "LinkedIn"),
    "t.co": ("social", "Twitter"),
    "twitter.com": ("social", "Twitter"),
    "x.com": ("social", "Twitter"),
    "pinterest.com": ("social", "Pinterest"),
    "reddit.com": ("social", "Reddit"),
    "youtube.com": ("social", "YouTube"),
    "tiktok.com": ("social", "TikTok"),
    "threads.net": ("social", "Threads"),
    "bsky.app": ("social", "Bluesky"),
    "news.ycombinator.com": ("social", "Hacker News"),
    # email (webmail)
    "mail.google.com": ("email", "Gmail"),
    "outlook.live.com": ("email", "Outlook.com"),
    "outlook.office.com": ("email", "Outlook.com"),
    "mail.yahoo.com": ("email", "Yahoo! Mail"),
    "mail.proton.me": ("email", "Proton Mail"),
}

# utm_medium values (lower case) -> channel; anything else keeps the referrer's.
_MEDIUM_CHANNEL = {
    "cpc": "paid",
    "ppc": "paid",
    "paid": "paid",
    "paidsearch": "paid",
    "paid_search": "paid",
    "paid-search": "paid",
    "paid_social": "paid",
    "paidsocial": "paid",
    "paid-social": "paid",
    "display": "paid",
    "cpm": "paid",
    "email": "email",
    "e-mail": "email",
    "newsletter": "email",
    "social": "social",
    "organic": "search",
    "referral": "referral",
    "affiliate": "referral",
}

_BOT_WORDS = ("bot", "crawl", "spider", "slurp", "headless", "lighthouse", "facebookexternalhit")


@dataclass(frozen=True)
class EnrichOptions:
    campaign: bool = True
    referrer: bool = True
    user_agent: bool = True
    geo: GeoLocator | None = None  # the configured database, opened once


def enrichment(
    page_url: Any, referrer: Any, user_agent: Any, sent_campaign: Any, options: EnrichOptions
) -> dict[str, Any]:
    """`context.enrichment` for one event, from what the client sent."""
    out: dict[str, Any] = {}
    url = _split(page_url)
    campaign: dict[str, str] = {}
    if options.campaign:
        campaign = campaign_of(url, sent_campaign)
        if campaign:
            out["campaign"] = campaign
    if options.referrer:
        ref = classify_referrer(referrer, url.hostname if url else None)
        out["referrer"] = ref
        out["channel"] = channel_of(campaign, ref["medium"])
    if options.user_agent and isinstance(user_agent, str) and user_agent:
        parsed = dict(parse_user_agent(user_agent[:MAX_UA_CHARS]))
        out["userAgent"] = parsed
        out["bot"] = parsed["device"] == "bot"
    return out


def _split(url: Any) -> SplitResult | None:
    """The URL's parts (read up to MAX_URL_CHARS), or None if it is not one."""
    if not isinstance(url, str):
        return None
    try:
        parts = urlsplit(url[:MAX_URL_CHARS])
        parts.hostname  # noqa: B018 - raises on a malformed host
    except ValueError:
        return None
    return parts


def _bounded(value: Any) -> str | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        return None
    value = value.strip()[:MAX_CAMPAIGN_VALUE_CHARS]
    return value or None


def campaign_of(url: Any, sent: Any = None) -> dict[str, str]:
    """Campaign fields from the page URL's query (first non-empty value of each
    parameter, names in any case), else from Segment's `context.campaign`."""
    found: dict[str, str] = {}
    query = url.query if url is not None else ""
    if query:
        for key, value in parse_qsl(query, keep_blank_values=False):
            name = key.lower()
            target = _UTM.get(name)
            if target is None and name in _CLICK_IDS:
                target = "clickId"
                if "clickId" not in found and _bounded(value):
                    found["clickIdType"] = name
            if target is not None and target not in found:
                bounded = _bounded(value)
                if bounded is not None:
                    found[target] = bounded
    if not any(key in found for key in _CAMPAIGN_KEYS) and isinstance(sent, dict):
        for key in _CAMPAIGN_KEYS:
            bounded = _bounded(sent.get(key))
            if bounded is not None:
                found[key] = bounded
    return found


def classify_referrer(referrer: Any, page_host: str | None) -> dict[str, str]:
    """{medium, source?, host?}: medium is search, social, email, internal,
    referral, or direct (no referrer, or one that is not a web URL)."""
    if not isinstance(referrer, str) or not referrer:
        return {"medium": "direct"}
    try:
        parts = urlsplit(referrer[:MAX_URL_CHARS])
        host = (parts.hostname or "").lower()
    except ValueError:
        return {"medium": "direct"}
    if parts.scheme not in ("http", "https", "android-app") or not host:
        return {"medium": "direct"}
    if page_host and _strip_www(host) == _strip_www(page_host.lower()):
        return {"medium": "internal", "host": host}
    known = _lookup(host)
    if known is None:
        return {"medium": "referral", "host": host}
    return {"medium": known[0], "source": known[1], "host": host}


def _strip_www(host: str) -> str:
    return host[4:] if host.startswith("www.") else host


def _lookup(host: str) -> tuple[str, str] | None:
    """The longest suffix of `host` in the table (so mail.google.com is email)."""
    labels = host.split(".")
    for start in range(len(labels) - 1):
        hit = REFERRERS.get(".".join(labels[start:]))
        if hit is not None:
            return hit
    # google.<country>, e.g. www.google.com.mx, google.nl (not google.example.org)
    rest = labels[1:] if labels[0] == "www" else labels
    if rest[0] == "google" and len(rest[-1]) == 2 and rest[1:-1] in ([], ["com"], ["co"]):
        return ("search", "Google")
    return None


def channel_of(campaign: dict[str, str], referrer_medium: str) -> str:
    """The marketing channel: a click id or paid medium wins, then the campaign's
    medium, then the referrer's; a campaign with no known medium is `referral`
    unless the referrer says more."""
    if "clickId" in campaign:
        return "paid"
    medium = campaign.get("medium", "").lower()
    if medium in _MEDIUM_CHANNEL:
        return _MEDIUM_CHANNEL[medium]
    if campaign and referrer_medium in ("direct", "internal"):
        return "referral"
    return referrer_medium


@lru_cache(maxsize=UA_CACHE_SIZE)
def parse_user_agent(user_agent: str) -> tuple[tuple[str, str | None], ...]:
    """(browser, browserVersion, os, osVersion, device) as key/value pairs; device
    is bot, mobile, tablet or desktop. Cached: the same few strings repeat."""
    from ua_parser import parse  # the ingest bundle's dependency, imported on first use

    result = parse(user_agent)
    browser = result.user_agent
    os_ = result.os
    device_family = result.device.family if result.device else ""
    lowered = user_agent.lower()
    if device_family == "Spider" or any(word in lowered for word in _BOT_WORDS):
        device = "bot"
    elif (
        "ipad" in lowered
        or "tablet" in lowered
        or ("android" in lowered and "mobile" not in lowered)
    ):
        device = "tablet"
    elif "mobi" in lowered or "iphone" in lowered:
        device = "mobile"
    else:
        device = "desktop"
    return (
        ("browser", browser.family if browser else "Other"),
        ("browserVersion", browser.major if browser else None),
        ("os", os_.family if os_ else "Other"),
        ("osVersion", os_.major if os_ else None),
        ("device", device),
    )


def options_by_source(
    ingest_default: Any, sources: Any, config_dir: Path | None = None
) -> dict[str, EnrichOptions]:
    """Each configured source's EnrichOptions (its own `enrichment`, else ingest's); a
    `geoip_database` is relative to the configuration file's folder, `config_dir`."""

    def of(setting: Any) -> EnrichOptions:
        database = setting.geoip_database
        geo = locator(str((config_dir or Path()) / database)) if database else None
        return EnrichOptions(setting.campaign, setting.referrer, setting.user_agent, geo)

    return {s.name: of(s.enrichment or ingest_default) for s in sources}


def enrich_event(event: CanonicalEvent, options: EnrichOptions) -> None:
    """Set `context.enrichment` on `event` (replacing whatever the client sent there)."""
    context = event.context
    page = context.page or {}
    extra = context.__pydantic_extra__ or {}
    extra.pop("enrichment", None)
    result = enrichment(
        page.get("url"),
        page.get("referrer"),
        context.user_agent,
        extra.get("campaign"),
        options,
    )
    if options.geo is not None and (place := options.geo.locate(event.client_ip)):
        result["geo"] = place
    if result:
        extra["enrichment"] = result
        context.__pydantic_extra__ = extra
