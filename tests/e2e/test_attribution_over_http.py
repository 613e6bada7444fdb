"""Attribution on the local stack over real HTTP (docs/attribution.md): a visit from a
tagged email campaign, a direct visit two days later after which the shop's backend
confirms an order; `beacon attribution` (the real CLI, DuckDB over the archive)
credits email first, direct last, and both in the multi-touch models.

The visits are historical: sent with explicit timestamps and no `sentAt`, which
ingest takes at their word when they are in the past (docs/ingest.md "Timestamps").
"""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.parse
import urllib.request
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from .conftest import ROOT, RunningStack, basic_auth
from .test_archive_over_http import rows
from .test_consent_over_http import ADMIN, call, consent_counts, eventually

pytestmark = pytest.mark.e2e

STAMP = {"categoryPreferences": {"personalization": True, "analytics": True}}
CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko)"
    " Chrome/131.0.0.0 Safari/537.36"
)
SHOP = "https://shop.example.com/"


def post(stack: RunningStack, path: str, body: dict[str, Any], key: str) -> None:
    status, answer = call(stack, "POST", path, body, basic_auth(key))
    assert status == 200, answer


def attribution(stack: RunningStack, *arguments: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-m", "cli", "attribution", *arguments, "--format", "json",
         "--aws-endpoint", stack.aws_endpoint],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout))


def test_an_email_visit_then_a_direct_one_then_an_order(stack: RunningStack) -> None:
    marker = uuid.uuid4().hex
    anon, user = f"anon-{marker[:12]}", f"user-{marker[:12]}"
    conversion = f"Order Completed {marker[:8]}"  # this test's conversions only
    t0 = (datetime.now(UTC) - timedelta(days=3)).replace(microsecond=0)
    props = {"run": marker}
    bots_before = consent_counts(stack)["bot"]

    def page(at: datetime, url: str, referrer: str | None, **who: str) -> dict[str, Any]:
        return {
            "anonymousId": anon,
            **who,
            "name": "Home",
            "properties": props,
            "timestamp": at.isoformat(),
            "context": {
                "consent": STAMP,
                "userAgent": CHROME,
                "page": {"url": url, "referrer": referrer},
            },
        }

    email_url = f"{SHOP}?utm_source=newsletter&utm_medium=email&utm_campaign=c-{marker[:8]}"
    post(stack, "/v1/page", page(t0, email_url, "https://mail.google.com/"), "local-write-key")
    later = t0 + timedelta(days=2)
    post(stack, "/v1/page", page(later, SHOP, None, userId=user), "local-write-key")
    order = {
        "userId": user,
        "event": conversion,
        "properties": {**props, "revenue": 77.5},
        "timestamp": (later + timedelta(minutes=4)).isoformat(),
        "context": {"consent": STAMP},
    }
    post(stack, "/v1/track", order, "local-server-write-key")
    # A crawler's visit under the same campaign counts for nobody (dropped by consent).
    bot = {
        **page(later, email_url, None),
        "anonymousId": f"bot-{marker[:12]}",
        "context": {
            "consent": STAMP,
            "userAgent": "Googlebot/2.1 (+http://www.google.com/bot.html)",
            "page": {"url": email_url, "referrer": None},
        },
    }
    post(stack, "/v1/page", bot, "local-write-key")

    def archived() -> int:
        found = rows(stack, f"SELECT count(*) AS n FROM events WHERE properties LIKE '%{marker}%'")
        return int(found[0]["n"])

    assert eventually(lambda: consent_counts(stack)["bot"] == bots_before + 1, timeout_s=90)
    assert eventually(lambda: archived() == 3, timeout_s=90), (
        rows(stack, f"SELECT type, event FROM events WHERE properties LIKE '%{marker}%'"),
        consent_counts(stack),
        [r for r in stack.failed_events() if marker in json.dumps(r)],
    )
    # The three events belong to one profile now, whichever order identity saw them in.
    owners = rows(
        stack, f"SELECT DISTINCT profile_id FROM events WHERE properties LIKE '%{marker}%'"
    )
    assert len(owners) == 1

    since = (t0 - timedelta(days=1)).date().isoformat()
    report = attribution(stack, "--since", since, "--conversion", conversion)
    assert report["totals"] == {"conversions": 1, "revenue": 77.5}
    models = report["models"]
    assert models["first"] == {"email": {"conversions": 1.0, "revenue": 77.5}}
    assert models["last"] == {"direct": {"conversions": 1.0, "revenue": 77.5}}
    for model in ("linear", "position"):
        assert models[model] == {
            "email": {"conversions": 0.5, "revenue": 38.75},
            "direct": {"conversions": 0.5, "revenue": 38.75},
        }, model
    decay = models["time_decay"]
    assert decay["direct"]["conversions"] > decay["email"]["conversions"] > 0
    # Markov: both lie on the one converting path (other tests' visits may share the chain).
    markov = models["markov"]
    assert markov["email"]["conversions"] > 0 and markov["direct"]["conversions"] > 0
    assert sum(c["conversions"] for c in markov.values()) == pytest.approx(1.0)

    by_campaign = attribution(
        stack, "--since", since, "--conversion", conversion, "--by", "campaign", "--model", "first"
    )
    assert by_campaign["models"]["first"] == {
        f"c-{marker[:8]}": {"conversions": 1.0, "revenue": 77.5}
    }

    # The person's touches on the profile: the same two sessions, as channel shares.
    status, profile = call(stack, "GET", f"/v1/profiles/user_id:{user}", None, ADMIN)
    assert status == 200, profile
    touches = profile["computed"]["channels"]
    assert touches["sessions"] == 2
    assert (touches["first"]["channel"], touches["last"]["channel"]) == ("email", "direct")
    shares = touches["influence"]
    assert shares["direct"] > shares["email"] > 0  # the newer session weighs more
    assert sum(shares.values()) == pytest.approx(1.0, abs=1e-3)
    # The dashboard's page: the same report over the last 30 days, for people.
    query = urllib.parse.urlencode({"conversion": conversion})
    url = f"{stack.url}/dashboard/attribution?{query}"
    request = urllib.request.Request(url, headers=ADMIN)
    with urllib.request.urlopen(request, timeout=60) as answer:
        page = answer.read().decode()
    assert "By channel" in page and "By campaign" in page and "markov conversions" in page
    assert f"c-{marker[:8]}" in page and "77.50" in page
