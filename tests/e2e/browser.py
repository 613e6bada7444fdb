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
