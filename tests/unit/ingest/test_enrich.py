"""Standard enrichments at ingest, on real-world user agents, referrers and campaign URLs."""

from __future__ import annotations

import base64
import json
from urllib.parse import urlsplit

import pytest
from hypothesis import given
from hypothesis import strategies as st

from functions.ingest.collector import Collector
from functions.ingest.enrich import (
    MAX_CAMPAIGN_VALUE_CHARS,
    EnrichOptions,
    campaign_of,
    channel_of,
    classify_referrer,
    enrichment,
    parse_user_agent,
)
from functions.shared.config import Enrichment
from functions.shared.enrichment_config import CHANNELS

from .conftest import make_request

CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)
EDGE = CHROME + " Edg/131.0.0.0"
FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"
SAFARI_MAC = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/18.1 Safari/605.1.15"
)
SAFARI_IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1"
)
IPAD = (
    "Mozilla/5.0 (iPad; CPU OS 17_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.6 Mobile/15E148 Safari/604.1"
)
CHROME_ANDROID = (
    "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Mobile Safari/537.36"
)
GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
GOOGLEBOT_SMARTPHONE = (
    "Mozilla/5.0 (Linux; Android 6.0.1; Nexus 5X Build/MMB29P) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Chrome/131.0.6778.69 Mobile Safari/537.36 "
    "(compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
)
BINGBOT = "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)"


@pytest.mark.parametrize(
    ("ua", "browser", "version", "os", "device"),
    [
        (CHROME, "Chrome", "131", "Windows", "desktop"),
        (EDGE, "Edge", "131", "Windows", "desktop"),
        (FIREFOX, "Firefox", "133", "Linux", "desktop"),
        (SAFARI_MAC, "Safari", "18", "Mac OS X", "desktop"),
        (SAFARI_IPHONE, "Mobile Safari", "18", "iOS", "mobile"),
        (IPAD, "Mobile Safari", "17", "iOS", "tablet"),
        (CHROME_ANDROID, "Chrome Mobile", "131", "Android", "mobile"),
        (GOOGLEBOT, "Googlebot", "2", "Other", "bot"),
        (GOOGLEBOT_SMARTPHONE, "Googlebot", "2", "Android", "bot"),
        (BINGBOT, "bingbot", "2", "Other", "bot"),
    ],
)
def test_user_agents_of_current_browsers_and_bots(ua, browser, version, os, device):
    parsed = dict(parse_user_agent(ua))
    assert (parsed["browser"], parsed["browserVersion"], parsed["os"], parsed["device"]) == (
        browser,
        version,
        os,
        device,
    )
    assert enrichment(None, None, ua, None, EnrichOptions())["bot"] is (device == "bot")


@pytest.mark.parametrize(
    ("referrer", "medium", "source"),
    [
        ("https://www.google.com/", "search", "Google"),
        ("https://www.google.co.uk/search?q=shoes", "search", "Google"),
        ("https://www.google.com.mx/", "search", "Google"),
        ("https://www.bing.com/search?q=shoes", "search", "Bing"),
        ("https://duckduckgo.com/", "search", "DuckDuckGo"),
        ("https://l.facebook.com/l.php?u=https%3A%2F%2Fshop.example.com", "social", "Facebook"),
        ("https://m.facebook.com/", "social", "Facebook"),
        ("https://l.instagram.com/?u=x", "social", "Instagram"),
        ("https://www.linkedin.com/feed/", "social", "LinkedIn"),
        ("https://t.co/AbCdEf123", "social", "Twitter"),
        ("https://mail.google.com/mail/u/0/", "email", "Gmail"),
        ("https://outlook.live.com/mail/0/inbox", "email", "Outlook.com"),
    ],
)
def test_referrers_of_major_search_social_and_mail_sites(referrer, medium, source):
    result = classify_referrer(referrer, "shop.example.com")
    assert (result["medium"], result["source"]) == (medium, source)
    assert result["host"] == urlsplit(referrer).hostname


@pytest.mark.parametrize(
    ("referrer", "page_host", "medium"),
    [
        (None, "shop.example.com", "direct"),
        ("", "shop.example.com", "direct"),
        ("not a url", "shop.example.com", "direct"),
        ("javascript:alert(1)", "shop.example.com", "direct"),
        ("https://shop.example.com/cart", "shop.example.com", "internal"),
        ("https://www.shop.example.com/cart", "shop.example.com", "internal"),
        ("https://blog.someone.net/post", "shop.example.com", "referral"),
        ("https://google.example.org/", "shop.example.com", "referral"),
        ("http://[::1", "shop.example.com", "direct"),  # unparseable host
        (12, "shop.example.com", "direct"),
    ],
)
def test_direct_internal_and_referral(referrer, page_host, medium):
    assert classify_referrer(referrer, page_host)["medium"] == medium


def _campaign(query: str, sent=None) -> dict[str, str]:
    return campaign_of(urlsplit("https://shop.example.com/p?" + query), sent)


def test_utm_parameters_become_segments_campaign_names():
    got = _campaign(
        "utm_source=newsletter&utm_medium=email&utm_campaign=spring_sale"
        "&utm_term=red+shoes&utm_content=hero%20banner"
    )
    assert got == {
        "source": "newsletter",
        "medium": "email",
        "name": "spring_sale",
        "term": "red shoes",
        "content": "hero banner",
    }


def test_utm_edge_cases_repeated_empty_mixed_case_oversized():
    # repeated: the first non-empty value wins; empty values are no value
    assert _campaign("utm_source=&utm_source=a&utm_source=b") == {"source": "a"}
    assert _campaign("utm_source=&utm_medium=") == {}
    # parameter names in any case; values kept as sent
    assert _campaign("UTM_Source=FaceBook&Utm_Medium=Paid_Social") == {
        "source": "FaceBook",
        "medium": "Paid_Social",
    }
    # oversized values are cut
    got = _campaign("utm_campaign=" + "x" * 5000)
    assert len(got["name"]) == MAX_CAMPAIGN_VALUE_CHARS
    # an oversized URL is read only up to its limit, and never raises
    huge = enrichment("https://a.example/?" + "utm_x=1&" * 10000, None, None, None, EnrichOptions())
    assert "campaign" not in huge


@pytest.mark.parametrize(
    ("param", "kind"), [("gclid", "gclid"), ("FBCLID", "fbclid"), ("msclkid", "msclkid")]
)
def test_click_ids_make_the_channel_paid(param, kind):
    got = _campaign(f"{param}=Cj0KCQ123")
    assert got == {"clickId": "Cj0KCQ123", "clickIdType": kind}
    assert channel_of(got, "search") == "paid"


def test_segments_context_campaign_is_used_when_the_url_has_none_and_bounded():
    sent = {"name": "n" * 999, "source": "s", "medium": 3, "term": {"x": 1}, "extra": "ignored"}
    assert _campaign("", sent) == {
        "name": "n" * MAX_CAMPAIGN_VALUE_CHARS,
        "source": "s",
        "medium": "3",
    }
    # the URL wins when it names a campaign
    assert _campaign("utm_source=url", sent) == {"source": "url"}
    assert _campaign("", "not an object") == {}


@pytest.mark.parametrize(
    ("campaign", "referrer_medium", "channel"),
    [
        ({"medium": "cpc"}, "search", "paid"),
        ({"medium": "Email"}, "direct", "email"),
        ({"medium": "paid_social", "source": "facebook"}, "social", "paid"),
        ({"source": "partner"}, "direct", "referral"),
        ({}, "search", "search"),
        ({}, "social", "social"),
        ({}, "direct", "direct"),
        ({}, "internal", "internal"),
    ],
)
def test_channel_rules(campaign, referrer_medium, channel):
    assert channel_of(campaign, referrer_medium) == channel
    assert channel in CHANNELS


@given(st.text(max_size=300), st.text(max_size=300), st.text(max_size=300))
def test_any_input_enriches_without_error_and_bounded(url, referrer, ua):
    out = enrichment(url, referrer, ua, {"name": url}, EnrichOptions())
    assert out["channel"] in CHANNELS
    for value in out.get("campaign", {}).values():
        assert len(value) <= MAX_CAMPAIGN_VALUE_CHARS


def _basic(key: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode()}


def _page_event(context: dict) -> str:
    return json.dumps({"anonymousId": "a1", "name": "Home", "context": context})


def test_collector_writes_context_enrichment_and_a_client_cannot_forge_it(collector, stream):
    context = {
        "page": {
            "url": "https://shop.example.com/?utm_source=news&utm_medium=email&utm_campaign=may",
            "referrer": "https://mail.google.com/",
        },
        "userAgent": SAFARI_IPHONE,
        "enrichment": {"bot": False, "channel": "forged"},
    }
    result = collector.segment(
        "page", make_request(_page_event(context), _basic("local-write-key"))
    )
    assert result.answer.status == 200
    [event] = stream.events()
    assert event["context"]["enrichment"] == {
        "campaign": {"source": "news", "medium": "email", "name": "may"},
        "referrer": {"medium": "email", "source": "Gmail", "host": "mail.google.com"},
        "channel": "email",
        "userAgent": {
            "browser": "Mobile Safari",
            "browserVersion": "18",
            "os": "iOS",
            "osVersion": "18",
            "device": "mobile",
        },
        "bot": False,
    }


def test_enrichment_is_configured_per_source(config, stream, failed):
    sources = [
        s.model_copy(update={"enrichment": Enrichment(user_agent=False, referrer=False)})
        if s.name == "web"
        else s
        for s in config.sources
    ]
    configured = config.model_copy(update={"sources": tuple(sources)})
    collector = Collector(
        config=configured,
        source_for_write_key={"local-write-key": "web"}.get,
        events=stream,
        failed_events=failed,
        anonymize_ip=lambda ip: None,
    )
    context = {"page": {"url": "https://shop.example.com/?utm_source=x"}, "userAgent": GOOGLEBOT}
    collector.segment("page", make_request(_page_event(context), _basic("local-write-key")))
    [event] = stream.events()
    assert event["context"]["enrichment"] == {"campaign": {"source": "x"}}


@pytest.mark.parametrize("url", ["http://[::1", "https://shop.example.com/?a=%zz&&&=", 42, None])
def test_a_malformed_page_url_is_no_campaign_and_never_an_error(url):
    out = enrichment(url, "https://www.bing.com/", None, None, EnrichOptions())
    assert out == {
        "referrer": {"medium": "search", "source": "Bing", "host": "www.bing.com"},
        "channel": "search",
    }
