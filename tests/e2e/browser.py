"""Chromium for the browser tests: found on the machine, never downloaded.

`make test` installs Debian's `chromium` where it can (Makefile, `chromium`). Where
it is still missing, a browser test skips, saying so — except under `CI=true`,
where a missing browser fails the run: a suite that silently stops testing the
browser is worse than a red one.
"""

from __future__ import annotations

import os
import shutil

import pytest

# What Chromium needs on this kind of machine (a container as root, no GPU, no
# network besides the stack under test).
CHROMIUM_ARGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    "--disable-quic",
)


# Headless Chromium says `HeadlessChrome` in its user agent, which ingest flags as a
# bot's (docs/ingest.md, Bots) and the consent step drops: the browser tests play
# visitors, so their pages say what a desktop Chrome of the same version says.
VISITOR_USER_AGENT = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko)"
    " Chrome/131.0.0.0 Safari/537.36"
)


def chromium_path() -> str:
    """The Chromium binary; skips the test (fails it under CI=true) when there is none."""
    found = os.environ.get("BEACON_CHROMIUM") or shutil.which("chromium")
    found = found or shutil.which("chromium-browser")
    if found:
        return found
    message = "no chromium on this machine (make test installs it: apt-get install -y chromium)"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{message}; CI=true needs the browser tests to run")
    pytest.skip(message)
