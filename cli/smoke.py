"""`beacon smoke --endpoint URL`: after a deploy, one event in and its profile read back.

It sends what a website would (a Segment `identify` with the consent a profile
needs, then a `track`) through the ingest API with the write key, and polls
the read API with the admin key until the profile appears: the whole pipeline
(ingest, Kinesis, consent, identity, segments, the tables, the read API and
every role and key between them) answered. The person is a recognizable
`beacon-smoke-...` user id; `beacon erase user_id:<it>` removes it.
"""

from __future__ import annotations

import base64
import json
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from cli.admin_api import AdminApi, profile_path

USER_PREFIX = "beacon-smoke-"


@dataclass(frozen=True)
class SmokeResult:
    user_id: str
    ok: bool
    accepted_s: float  # until ingest answered both calls
    readable_s: float | None  # until the read API returned the profile
    detail: str


def run_smoke(
    endpoint: str,
    write_key: str,
    admin_key: str,
    consent_categories: tuple[str, ...],
    timeout_s: float = 60.0,
    poll_s: float = 0.5,
    clock: Callable[[], float] = time.monotonic,
) -> SmokeResult:
    api = AdminApi(endpoint, admin_key)  # checks the URL's scheme
    user_id = f"{USER_PREFIX}{uuid.uuid4().hex[:12]}"
    consent = {"consent": {"categoryPreferences": dict.fromkeys(consent_categories, True)}}
    started = clock()
    calls = (
        ("identify", {"userId": user_id, "traits": {"smoke_test": True}, "context": consent}),
        ("track", {"userId": user_id, "event": "Beacon Smoke Test", "context": consent}),
    )
    for call, body in calls:
        status, answer = _post(f"{endpoint.rstrip('/')}/v1/{call}", write_key, body)
        if status != 200:
            return SmokeResult(
                user_id, False, clock() - started, None, f"{call}: {status} {answer}"
            )
    accepted = clock() - started
    path = profile_path(f"user_id:{user_id}")
    deadline = started + timeout_s
    while clock() < deadline:
        try:
            if api.get(path) is not None:
                return SmokeResult(user_id, True, accepted, clock() - started, "profile readable")
        except urllib.error.HTTPError as err:
            detail = err.read().decode(errors="replace")[:300]
            return SmokeResult(user_id, False, accepted, None, f"read API: {err.code} {detail}")
        time.sleep(poll_s)
    return SmokeResult(
        user_id, False, accepted, None, f"no profile after {timeout_s:.0f} s (read API 404)"
    )


def _post(url: str, write_key: str, body: Mapping[str, object]) -> tuple[int, str]:
    request = urllib.request.Request(  # noqa: S310 - AdminApi checked the scheme
        url,
        data=json.dumps(body).encode(),
        method="POST",
        headers={
            "Content-Type": "application/json",
            "Authorization": "Basic " + base64.b64encode(f"{write_key}:".encode()).decode(),
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:  # noqa: S310
            return answer.status, answer.read().decode(errors="replace")[:300]
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode(errors="replace")[:300]
