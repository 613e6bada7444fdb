"""The write budget: what returning visitors' page views cost over the whole pipeline.

A benchmark check, not a timing: DynamoDB write units are counted on the handlers'
own boto3 calls (infra/local/meter.py) while the local stack (in this process, moto in
its own) carries real HTTP requests through all six steps. A change that adds a
write to this path (a consent state rewritten on every event, a profile written
when nothing changed, a delivery log entry without a delivery) fails here.
"""

from __future__ import annotations

import base64
import json
import os
import urllib.request
import uuid
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from functions.shared.dal import clients
from infra.local.meter import RUNTIME, Meter
from infra.local.runtime import LocalSettings, LocalStack
from tests.e2e.conftest import ROOT, free_port

# Write units per page view of a returning visitor, over all six functions, outside
# the per-batch counters: today the profile write itself (last_seen and the
# visit's counts change), one per visitor per batch (docs/cost.md: the goal of 0.5
# is met only when a visitor's events share a batch).
PER_VIEW = 1.0
VISITORS = 20
# The counters are one item per batch: consent's and segments' ledger counts, and
# the scoring step's feature histograms, one per model and one for the persona mix
# (drift).
COUNTER_ITEMS_PER_INVOCATION = {"consent": 1, "segments": 1, "scoring": 3}
CONSENTED = {"consent": {"categoryPreferences": {"personalization": True, "analytics": True}}}


@pytest.fixture(scope="module")
def pipeline() -> Iterator[tuple[LocalStack, Meter]]:
    saved = dict(os.environ)  # the stack points this process's AWS clients at its moto
    meter = Meter()
    settings = LocalSettings(
        config_file=ROOT / "beacon.yaml", port=free_port(), aws_port=free_port()
    )
    try:
        with meter.installed(), LocalStack(settings) as stack:
            yield stack, meter
    finally:
        os.environ.clear()
        os.environ.update(saved)
        clients.client.cache_clear()


def _send(stack: LocalStack, events: list[dict[str, Any]]) -> None:
    key = base64.b64encode(b"local-write-key:").decode()
    request = urllib.request.Request(
        f"{stack.url}/v1/batch",
        data=json.dumps({"batch": events}).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Basic {key}"},
    )
    with urllib.request.urlopen(request, timeout=30) as answer:
        assert answer.status == 200


def _page_view(anonymous_id: str) -> dict[str, Any]:
    return {
        "type": "page",
        "anonymousId": anonymous_id,
        "messageId": str(uuid.uuid4()),
        "name": "Home",
        "properties": {"path": "/"},
        "context": CONSENTED,
    }


def _writes(meter: Meter) -> Counter[str]:
    """Write units by function and table since the meter was last cleared."""
    found: Counter[str] = Counter()
    for name, cost in meter.by_function.items():
        if name == RUNTIME:
            continue  # Lambda's event-source mappings keep their positions for free
        for unit, n in cost.units.items():
            if unit.startswith("dynamodb_write:") and n:
                found[f"{name} → {unit.removeprefix('dynamodb_write:')}"] += n
    return found


def test_returning_visitors_page_views_stay_within_the_write_budget(
    pipeline: tuple[LocalStack, Meter],
) -> None:
    stack, meter = pipeline
    visitors = [str(uuid.uuid4()) for _ in range(VISITORS)]
    for _ in range(2):  # new people, consent recorded, first scores and segments
        _send(stack, [_page_view(v) for v in visitors])
        assert stack.wait_until_drained(timeout_s=120)

    meter.by_function.clear()
    _send(stack, [_page_view(v) for v in visitors])  # they come back
    assert stack.wait_until_drained(timeout_s=120)

    writes = _writes(meter)
    counters = sum(n for w, n in writes.items() if w.endswith("counters"))
    assert (sum(writes.values()) - counters) / VISITORS <= PER_VIEW, dict(writes)
    batches = {name: meter.by_function[name].invocations for name in COUNTER_ITEMS_PER_INVOCATION}
    bound = sum(COUNTER_ITEMS_PER_INVOCATION[name] * n for name, n in batches.items())
    assert counters <= bound, (dict(writes), batches)


def test_a_replayed_batch_writes_nothing_but_the_counters_that_saw_it(
    pipeline: tuple[LocalStack, Meter],
) -> None:
    stack, meter = pipeline
    views = [_page_view(str(uuid.uuid4())) for _ in range(VISITORS)]
    _send(stack, views)
    assert stack.wait_until_drained(timeout_s=120)

    meter.by_function.clear()
    _send(stack, views)  # a client's retry: the same message ids again
    assert stack.wait_until_drained(timeout_s=120)

    writes = _writes(meter)
    assert not {w: n for w, n in writes.items() if not w.endswith("counters")}, dict(writes)
