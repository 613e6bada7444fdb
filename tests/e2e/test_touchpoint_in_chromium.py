"""The touchpoint in headless Chromium: the example shop runs the real analytics.js
(@segment/analytics-next) and Snowplow browser tracker from npm against the local
stack, and beacon.js fills the personalized blocks from GET /v1/personalize.

The shop is opened as `http://localhost:<port>/shop/` while Beacon answers on
`http://127.0.0.1:<port>`: every tracker call and the personalize request are
cross-origin, so CORS is exercised for real (the test's configuration adds that
origin to the web source, as a user adds their shop's).

The visitor who consents signs up (first name, email) and has a cart from
yesterday: the add-to-cart call is dated 25 hours ago through analytics.js's own
`timestamp` option (the cart abandons after 24 h; nobody waits a day in a test).
After the pipeline catches up, a reload shows the cart-abandoner block and the first
name. The visitor who refuses personalization sees the default block.

Screenshots go to the test's temporary folder, or $BEACON_SCREENSHOTS
(docs/screenshots/ holds the ones made with it).
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from .browser import CHROMIUM_ARGS, VISITOR_USER_AGENT, chromium_path
from .conftest import ROOT, RunningStack, running_stack
from .test_consent_over_http import ADMIN, call, eventually

pytestmark = pytest.mark.e2e
KEY = "local-write-key"
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def shop_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    """`beacon local` with the shop's origin (localhost:<port>) allowed for `web`."""
    from .conftest import free_port

    port = free_port()
    folder = tmp_path_factory.mktemp("shop-config")
    text = (ROOT / "beacon.yaml").read_text(encoding="utf-8")
    origin = "      - http://localhost:8080\n"
    assert origin in text
    text = text.replace(origin, origin + f"      - http://localhost:{port}\n", 1)
    (folder / "beacon.yaml").write_text(text, encoding="utf-8")
    (folder / "models").symlink_to(ROOT / "models")  # manifests are relative to the file
    yield from running_stack("--config", str(folder / "beacon.yaml"), port=port)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    executable = chromium_path()
    # A dev dependency (pyproject.toml): its driver ships in the wheel, the browser is
    # the machine's (no download).
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=executable, headless=True, args=list(CHROMIUM_ARGS)
        )
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("BEACON_SCREENSHOTS", tmp_path))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def shop_url(stack: RunningStack) -> str:
    return stack.url.replace("127.0.0.1", "localhost") + "/shop/"


def personalize(stack: RunningStack, anonymous_id: str) -> dict[str, Any]:
    url = f"{stack.url}/v1/personalize?writeKey={KEY}&anonymousId={anonymous_id}"
    with urllib.request.urlopen(url, timeout=10) as answer:
        return json.loads(answer.read())  # type: ignore[no-any-return]


def visit(browser: Any, stack: RunningStack, consent: str, name: str) -> tuple[Any, Any, str]:
    """A new visitor (fresh storage) who answers the consent banner, signs up and
    left a cart yesterday; returns the page, its context and the anonymous id."""
    context = browser.new_context(
        viewport={"width": 1100, "height": 900}, user_agent=VISITOR_USER_AGENT
    )
    page = context.new_page()
    page.goto(shop_url(stack))
    page.wait_for_function("window.analytics && window.analytics.initialized === true")
    page.click(consent)
    page.fill("#first-name", name)
    page.fill("#email", f"{name.lower()}@example.org")
    page.click("#newsletter button")
    yesterday = (datetime.now(UTC) - timedelta(hours=25)).isoformat()
    page.evaluate(f"window.shopAddToCart('sku-shoes', '{yesterday}')")
    anonymous_id = page.evaluate("analytics.user().anonymousId()")
    assert isinstance(anonymous_id, str) and anonymous_id
    return page, context, anonymous_id


def reload_and_wait(page: Any) -> list[dict[str, Any]]:
    """Reload; wait until beacon.js has applied an answer; the answers it received."""
    answers: list[dict[str, Any]] = []
    page.on(
        "response",
        lambda r: answers.append(r.json()) if "/v1/personalize?" in r.url else None,
    )
    page.reload()
    page.wait_for_function("document.documentElement.dataset.beacon !== undefined")
    return answers


def screenshot(page: Any, path: Path) -> None:
    page.screenshot(path=str(path), full_page=True)
    data = path.read_bytes()
    assert data.startswith(PNG) and len(data) > 10_000


def test_cart_abandoner_sees_the_reminder_and_their_name(
    shop_stack: RunningStack, browser: Any, shots: Path
) -> None:
    page, context, anonymous_id = visit(browser, shop_stack, "#accept", "Ana")
    # Before the pipeline has caught up the page shows its defaults (never blocked).
    assert page.is_visible("#default-banner")

    def abandoner() -> dict[str, Any] | None:
        answer = personalize(shop_stack, anonymous_id)
        ok = "cart_abandoners" in answer["segments"] and answer["traits"].get("first_name")
        return answer if ok else None

    answer = eventually(abandoner, timeout_s=60)
    assert answer, personalize(shop_stack, anonymous_id)
    assert answer["personalized"] is True and answer["traits"]["first_name"] == "Ana"

    seen = reload_and_wait(page)
    assert page.get_attribute("html", "data-beacon") == "personalized"
    assert page.is_visible("#cart-reminder") and not page.is_visible("#default-banner")
    assert page.inner_text("#greeting-name") == "Ana"
    assert "Ana, you left something in your cart" in page.inner_text("#cart-reminder")
    # What the browser was told: no identifier, email or phone.
    assert seen and seen[-1]["personalized"] is True
    told = json.dumps(seen)
    assert "ana@example.org" not in told and anonymous_id not in told
    screenshot(page, shots / "touchpoint-cart-abandoner.png")
    context.close()


def test_a_visitor_who_refused_personalization_sees_the_default(
    shop_stack: RunningStack, browser: Any, shots: Path
) -> None:
    page, context, anonymous_id = visit(browser, shop_stack, "#refuse", "Bob")

    def refusal_recorded() -> bool:
        status, known = call(
            shop_stack, "GET", f"/v1/profiles/anonymous_id:{anonymous_id}", headers=ADMIN
        )
        consent = known.get("known", {}).get("consent", {}) if status == 404 else {}
        return consent.get("personalization", {}).get("granted") is False

    assert eventually(refusal_recorded, timeout_s=60)
    seen = reload_and_wait(page)
    assert page.get_attribute("html", "data-beacon") == "default"
    assert page.is_visible("#default-banner") and not page.is_visible("#cart-reminder")
    assert page.inner_text("#greeting-name") == "there"
    assert seen and seen[-1]["personalized"] is False and seen[-1]["traits"] == {}
    screenshot(page, shots / "touchpoint-refused.png")
    context.close()


def test_settings_script_and_shop_over_http(shop_stack: RunningStack) -> None:
    """What the page loads besides the trackers: analytics.js's settings (known keys
    only), beacon.js (a few KB), the shop."""
    with urllib.request.urlopen(f"{shop_stack.url}/v1/projects/{KEY}/settings") as answer:
        settings = json.loads(answer.read())
    host = shop_stack.url.removeprefix("http://")
    assert settings["integrations"]["Segment.io"]["apiHost"] == f"{host}/v1"
    assert settings["integrations"]["Segment.io"]["protocol"] == "http"
    with pytest.raises(urllib.error.HTTPError) as unknown:
        urllib.request.urlopen(f"{shop_stack.url}/v1/projects/not-a-key/settings")
    assert unknown.value.code == 404
    with urllib.request.urlopen(f"{shop_stack.url}/v1/beacon.js") as answer:
        script = answer.read()
        assert answer.headers["Content-Type"].startswith("text/javascript")
    assert 1_000 < len(script) < 10_000
    with urllib.request.urlopen(shop_url(shop_stack)) as answer:
        page = answer.read().decode()
    assert "data-beacon-segment" in page and KEY in page
