"""The exports on the local stack: people sent over real HTTP, one erased through the
read API, then `beacon export profiles` and `beacon export audience` run as a user
runs them against the stack's moto, and the files read back."""

from __future__ import annotations

import csv
import hashlib
import json
import subprocess
import sys
import uuid
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from .conftest import ROOT, RunningStack, basic_auth
from .test_consent_over_http import ADMIN, call, eventually

pytestmark = pytest.mark.e2e


def identify(stack: RunningStack, user: str, email: str, categories: dict[str, bool]) -> None:
    body = {
        "userId": user,
        "anonymousId": f"a-{user}",
        "traits": {"email": email, "firstName": "Ana", "phone": "+1 415 555 2671"},
        "context": {"consent": {"categoryPreferences": categories}},
    }
    status, answer = call(stack, "POST", "/v1/identify", body, basic_auth("local-write-key"))
    assert status == 200, answer


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cli", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_exports_of_the_running_stack(stack: RunningStack, tmp_path: Path) -> None:
    run = uuid.uuid4().hex[:8]
    people = {
        "ads": {"personalization": True, "advertising": True},
        "no-ads": {"personalization": True, "advertising": False},
        "erased": {"personalization": True, "advertising": True},
    }
    emails = {name: f"{name}-{run}@example.org" for name in people}
    for name, categories in people.items():
        identify(stack, f"u-{name}-{run}", emails[name], categories)

    def known(email: str) -> bool:
        """The segments step has written the profile (in its first lifecycle stage)."""
        status, answer = call(stack, "GET", f"/v1/profiles/email:{email}", None, ADMIN)
        return status == 200 and "stage_awareness" in (answer.get("segments") or {})

    for name in people:
        found = eventually(lambda name=name: known(emails[name]), timeout_s=60)
        assert found, f"{name}'s profile never appeared"
    status, _ = call(stack, "DELETE", f"/v1/profiles/email:{emails['erased']}", None, ADMIN)
    assert status == 200

    done = cli("export", "profiles", "--out", str(tmp_path), "--aws-endpoint", stack.aws_endpoint)
    assert done.returncode == 0, done.stderr
    table = pq.read_table(done.stdout.split()[0])
    by_email = {}
    for row in table.to_pylist():
        if row["identifiers"]:
            for email in json.loads(row["identifiers"]).get("email", []):
                by_email[email] = row
    assert emails["ads"] in by_email and emails["no-ads"] in by_email
    assert emails["erased"] not in by_email
    assert emails["erased"] not in str(table.to_pylist())

    out = tmp_path / "meta.csv"
    # Each of them is in `stage_awareness` (checked above); only `ads` may be in the file.
    done = cli(
        "export", "audience", "stage_awareness", "--platform", "meta",
        "--out", str(out), "--aws-endpoint", stack.aws_endpoint,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    hashed = {row[0] for row in csv.reader(out.open())}
    assert hashlib.sha256(emails["ads"].encode()).hexdigest() in hashed
    assert hashlib.sha256(emails["no-ads"].encode()).hexdigest() not in hashed
    assert hashlib.sha256(emails["erased"].encode()).hexdigest() not in hashed
