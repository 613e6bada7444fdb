"""The browser tests find Chromium on the machine; without it they skip, except under
CI=true, where the run fails (tests/e2e/browser.py)."""

from __future__ import annotations

import pytest

from tests.e2e.browser import chromium_path


def test_missing_browser_skips_locally_and_fails_in_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.delenv("BEACON_CHROMIUM", raising=False)
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception):
        chromium_path()
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI=true"):
        chromium_path()


def test_a_named_browser_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BEACON_CHROMIUM", "/opt/chromium/chrome")
    assert chromium_path() == "/opt/chromium/chrome"
