"""The event archive on the local stack over real HTTP (docs/archive.md).

Events sent to ingest land in the archive bucket as Parquet, once per message
id, with the profile they resolved to; `beacon archive query` (the real CLI,
DuckDB) counts them by event name; a merge puts the loser's archived events
under the survivor; the export lists the person's archived events, and after
the erasure a query for them returns no rows.
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from typing import Any

import pytest

from .conftest import ROOT, RunningStack, basic_auth
from .test_consent_over_http import ADMIN, call, eventually
from .test_erasure_over_http import send

pytestmark = pytest.mark.e2e


def archive_query(stack: RunningStack, sql: str, fmt: str = "json") -> str:
    done = subprocess.run(
        [sys.executable, "-m", "cli", "archive", "query", sql, "--format", fmt,
         "--aws-endpoint", stack.aws_endpoint],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout


def rows(stack: RunningStack, sql: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in archive_query(stack, sql).splitlines() if line]


def archived_count(stack: RunningStack, marker: str) -> int:
    found = rows(
        stack,
        f"SELECT count(*) AS n FROM archived_events WHERE properties LIKE '%{marker}%'",
    )
    return int(found[0]["n"])


def test_archive_query_erasure_and_merges(stack: RunningStack) -> None:
    marker = uuid.uuid4().hex  # this test's events, whatever else the stack holds
    shopper, lurker, other = (f"{who}-{marker[:8]}" for who in ("shopper", "lurker", "other"))
    props = {"run": marker}
    # The lurker browses anonymously: a profile of its own.
    for n in range(2):
        send(stack, "/v1/track", {"anonymousId": lurker, "event": "Product Viewed",
                                  "properties": {**props, "n": n}})  # fmt: skip
    send(stack, "/v1/track", {"anonymousId": other, "event": "Product Viewed", "properties": props})
    assert eventually(lambda: archived_count(stack, marker) == 3, timeout_s=60)
    # Then signs in on that device as the shopper: the two profiles merge.
    send(stack, "/v1/track", {"anonymousId": f"a-{shopper}", "userId": shopper,
                              "event": "Order Completed", "properties": props})  # fmt: skip
    send(stack, "/v1/track", {"anonymousId": lurker, "userId": shopper,
                              "event": "Cart Viewed", "properties": props})  # fmt: skip
    assert eventually(lambda: archived_count(stack, marker) == 5, timeout_s=60)

    # Each message id exactly once, and the count by event name.
    counted = rows(stack, f"SELECT event, count(*) AS n, count(DISTINCT message_id) AS ids "
                          f"FROM events WHERE properties LIKE '%{marker}%' GROUP BY event "
                          f"ORDER BY event")  # fmt: skip
    assert counted == [
        {"event": "Cart Viewed", "n": 1, "ids": 1},
        {"event": "Order Completed", "n": 1, "ids": 1},
        {"event": "Product Viewed", "n": 3, "ids": 3},
    ]
    csv_out = archive_query(
        stack, f"SELECT event FROM events WHERE properties LIKE '%{marker}%' ORDER BY event", "csv"
    )
    assert csv_out.splitlines()[:2] == ["event", "Cart Viewed"]
    # No raw IP reached the archive (ingest truncates or hashes it first).
    contexts = rows(stack, f"SELECT context FROM events WHERE properties LIKE '%{marker}%'")
    assert all("127.0.0.1" not in row["context"] for row in contexts)

    # The lurker's rows now belong to the shopper's profile.
    status, profile = call(stack, "GET", f"/v1/profiles/user_id:{shopper}", None, ADMIN)
    assert status == 200, profile
    survivor = profile["profile_id"]
    owned = rows(stack, f"SELECT anonymous_id FROM events WHERE profile_id = '{survivor}'")
    assert sorted(r["anonymous_id"] for r in owned) == sorted([lurker] * 3 + [f"a-{shopper}"])

    # The export lists the archived events, the lurker's included.
    status, export = call(stack, "GET", f"/v1/profiles/user_id:{shopper}/export", None, ADMIN)
    assert status == 200, export
    exported = export["archive"]["events"]
    assert len(exported) == 4
    assert {e["anonymous_id"] for e in exported} == {lurker, f"a-{shopper}"}

    status, erased = call(stack, "DELETE", f"/v1/profiles/user_id:{shopper}", None, ADMIN)
    assert status == 200, erased
    # Their four events and the merge that joined their two profiles.
    assert erased["records_deleted"]["archive"] == 5
    # Synchronous: no row of the person is left, under any of their profile ids.
    assert rows(stack, f"SELECT * FROM events WHERE properties LIKE '%{marker}%' "
                       f"AND anonymous_id <> '{other}'") == []  # fmt: skip
    assert rows(stack, f"SELECT * FROM archived_events WHERE user_id = '{shopper}'") == []
    # Somebody else's row stays.
    assert archived_count(stack, marker) == 1


def test_a_query_error_is_reported_not_crashed(stack: RunningStack) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "cli", "archive", "query", "SELECT nope FROM events",
         "--aws-endpoint", stack.aws_endpoint],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 1 and "query failed" in done.stderr
    assert basic_auth  # the helper module is shared with the other e2e tests
