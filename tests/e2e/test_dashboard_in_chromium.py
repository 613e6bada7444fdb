"""The dashboard in headless Chromium: the overview and one profile's timeline render
with the expected elements, and both are captured as screenshots.

The dashboard needs the admin key: Chromium is given it as Basic credentials in
the URL (`http://operator:<key>@host/`), as a person types it at the browser's prompt.

Needs the Debian `chromium` package (`make test` installs it where it can); skipped,
saying so, where it is missing — and failed under CI=true (tests/e2e/browser.py).
Screenshots go to the test's temporary folder, or to $BEACON_SCREENSHOTS if set.
"""

from __future__ import annotations

import os
import subprocess
import urllib.parse
import uuid
from datetime import timedelta
from pathlib import Path

import pytest

from .browser import chromium_path
from .conftest import RunningStack
from .test_consent_over_http import ADMIN, call, eventually
from .test_segments_over_http import send

pytestmark = pytest.mark.e2e
PNG = b"\x89PNG\r\n\x1a\n"


def chromium(*args: str) -> str:
    result = subprocess.run(
        [
            chromium_path(),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=90,
        check=True,
    )
    return result.stdout


def screenshot(url: str, path: Path) -> None:
    chromium("--window-size=1280,1700", f"--screenshot={path}", url)
    data = path.read_bytes()
    assert data.startswith(PNG) and len(data) > 20_000, "an empty or broken screenshot"


def with_admin_key(url: str, key: str = "local-admin-key") -> str:
    """The URL with Basic credentials: any user name, the admin key as password."""
    parts = urllib.parse.urlsplit(url)
    return parts._replace(netloc=f"operator:{key}@{parts.netloc}").geturl()


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("BEACON_SCREENSHOTS", tmp_path))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def test_overview_and_profile_timeline_in_chromium(stack: RunningStack, shots: Path) -> None:
    user = f"viewer-{uuid.uuid4().hex[:8]}"
    send(stack, user, {"traits": {"email": f"{user}@example.org"}}, timedelta(hours=2))
    for _ in range(4):
        send(stack, user, {"event": "Product Viewed", "properties": {"category": "Shoes"}})
    added = {"product_id": "sku-101", "price": 79.0, "quantity": 1}
    send(stack, user, {"event": "Product Added", "properties": added})

    def in_segment():
        status, profile = call(stack, "GET", f"/v1/profiles/user_id:{user}", headers=ADMIN)
        return status == 200 and "frequent_viewers" in profile.get("segments", {})

    assert eventually(in_segment, timeout_s=40)

    assert "Pipeline today" not in chromium("--dump-dom", f"{stack.url}/")  # no key: 401
    overview = chromium("--dump-dom", with_admin_key(f"{stack.url}/"))
    for testid in ("pipeline", "segments", "deliveries"):
        assert f'data-testid="{testid}"' in overview
    assert "frequent_viewers" in overview and "Pipeline today" in overview
    assert "scores-churn" in overview  # a histogram per model
    screenshot(with_admin_key(f"{stack.url}/"), shots / "dashboard-overview.png")

    page = with_admin_key(f"{stack.url}/dashboard/profile?ref=user_id:{user}")
    timeline = chromium("--dump-dom", page)
    assert 'data-testid="timeline"' in timeline and 'data-testid="summary"' in timeline
    for expected in ("Product Viewed", "Product Added", "segment.entered", "frequent_viewers"):
        assert expected in timeline, expected
    assert "consent" in timeline and "score" in timeline
    # What GET /v1/personalize tells a page about this person, and why.
    assert 'data-testid="touchpoint"' in timeline and "What a page is told" in timeline
    assert "personalize.required_consent" in timeline
    screenshot(page, shots / "dashboard-profile.png")
