"""Ingest throughput through the real Lambda handler, on moto in-process.

    python bench/ingest.py [--seconds 5] [--write]

Sends API Gateway HTTP API (payload 2.0) events to `functions.ingest.handler.
lambda_handler` (pixel GETs of one event, Segment /v1/batch POSTs of 100
events) with the events stream and failed-events bucket on moto, and compares
the rate with a baseline measured in the same process: only
`CanonicalEvent.model_validate` + `to_json` on the same events. Absolute
numbers are moto's, not AWS's; the ratio to the baseline and the PutRecords
calls per event are what carry over. `--write` replaces the `## Ingest`
section of docs/benchmarks.md with the table.
"""

from __future__ import annotations

import base64
import json
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import cycle
from typing import Any

from bench.harness import (
    CONFIG,
    command_line,
    create_resources,
    function_under_test,
    lambda_context,
    quietly,
    report,
    run_for,
    section_head,
    timed_arguments,
)

SECTION = "## Ingest"
BATCH_SIZE = 100
WRITE_KEY = "local-write-key"


@dataclass(frozen=True)
class Result:
    kind: str
    events_per_request: int
    requests: int
    seconds: float
    put_records_calls: int
    baseline_events_per_s: float

    @property
    def events(self) -> int:
        return self.requests * self.events_per_request

    @property
    def events_per_s(self) -> float:
        return self.events / self.seconds

    @property
    def ms_per_request(self) -> float:
        return 1000 * self.seconds / self.requests

    @property
    def ratio(self) -> float:
        return self.events_per_s / self.baseline_events_per_s

    @property
    def calls_per_event(self) -> float:
        return self.put_records_calls / self.events


# --- the requests ------------------------------------------------------------


def gateway_event(
    method: str,
    path: str,
    *,
    body: bytes = b"",
    headers: dict[str, str] | None = None,
    query: dict[str, str] | None = None,
) -> dict[str, Any]:
    """The API Gateway event a browser's request becomes (infra/local/gateway.py's builder)."""
    from infra.local.gateway import http_api_event

    headers = {"host": "api.example.com", "user-agent": "Mozilla/5.0 (bench)", **(headers or {})}
    return http_api_event(
        method,
        path,
        headers=headers,
        query=query,
        body=body,
        base64_body=False,
        source_ip="203.0.113.77",
    )


def pixel_query(n: int) -> dict[str, str]:
    now_ms = str(int(time.time() * 1000))
    return {
        "e": "pv",
        "aid": "shop-web",
        "p": "web",
        "tv": "js-3.24.0",
        "eid": str(uuid.uuid4()),
        "duid": f"visitor-{n % 5000}",
        "sid": str(uuid.uuid4()),
        "vid": "3",
        "dtm": now_ms,
        "stm": now_ms,
        "url": f"https://shop.example.com/p/{n % 400}?utm_source=mail",
        "page": "Product",
        "refr": "https://shop.example.com/",
        "res": "1920x1080",
        "vp": "1280x720",
        "lang": "en-US",
    }


# Real-world user agents and referrers for the enrichments; versions vary so the
# user-agent cache also misses (about 1,200 distinct strings over the pool).
USER_AGENTS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/{v}.0.{b}.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/18.{b} Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (X11; Linux x86_64; rv:{v}.0) Gecko/20100101 Firefox/{v}.{b}",
    "Mozilla/5.0 (compatible; Googlebot/2.{b}; +http://www.google.com/bot.html)",
)
REFERRERS = (
    "https://www.google.com/",
    "https://l.facebook.com/l.php?u=x",
    "https://t.co/AbC",
    "",
    "https://shop.example.com/",
)


def user_agent(n: int) -> str:
    return USER_AGENTS[n % len(USER_AGENTS)].format(v=120 + n % 12, b=n % 100)


def segment_event(n: int) -> dict[str, Any]:
    sent = datetime.now(UTC).isoformat()
    return {
        "type": "track",
        "event": "Product Viewed" if n % 3 else "Product Added",
        "messageId": str(uuid.uuid4()),
        "anonymousId": f"visitor-{n % 5000}",
        "properties": {
            "product_id": f"sku-{n % 400}",
            "price": 19.99 + n % 50,
            "currency": "EUR",
            "category": "shoes",
        },
        "context": {
            "page": {
                "url": f"https://shop.example.com/p/{n % 400}"
                + ("?utm_source=news&utm_medium=email&utm_campaign=may" if n % 7 == 0 else ""),
                "path": f"/p/{n % 400}",
                "referrer": REFERRERS[n % len(REFERRERS)],
            },
            "userAgent": user_agent(n),
            "consent": {"categoryPreferences": {"analytics": True, "advertising": n % 2 == 0}},
            "library": {"name": "analytics.js", "version": "5.2.0"},
        },
        "timestamp": sent,
    }


def batch_body(first: int) -> bytes:
    items = [segment_event(first + i) for i in range(BATCH_SIZE)]
    return json.dumps({"batch": items, "sentAt": datetime.now(UTC).isoformat()}).encode()


# --- measuring ---------------------------------------------------------------


def baseline_events_per_s(events: list[dict[str, Any]], seconds: float) -> float:
    """CanonicalEvent.model_validate + to_json only, on the canonical events' fields."""
    from functions.shared.events import CanonicalEvent

    pool: Iterator[dict[str, Any]] = cycle(events)

    def step() -> int:
        for _ in range(BATCH_SIZE):
            CanonicalEvent.model_validate(next(pool)).to_json()
        return BATCH_SIZE

    validated, elapsed = run_for(seconds, step)
    return validated / elapsed


def canonical_fields(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What model_validate receives for the handler's events (the canonical fields).

    `events` are API Gateway events as sent; ingest's own parsers turn them into
    CanonicalEvents, whose fields are the baseline's input.
    """
    from functools import partial

    from functions.ingest.canonicalize import RequestMeta
    from functions.ingest.segment import parse_segment
    from functions.ingest.snowplow import parse_pixel
    from functions.shared.config import load_config
    from functions.shared.privacy import anonymize_ip

    config = load_config(CONFIG)
    anonymize = partial(anonymize_ip, handling=config.ingest.ip_handling)
    meta = RequestMeta("bench", datetime.now(UTC), "/", "203.0.113.77", "Mozilla/5.0 (bench)")
    out: list[dict[str, Any]] = []
    for event in events:
        if event["rawPath"] == "/i":
            query = event["queryStringParameters"]
            parsed = parse_pixel(query, meta=meta, config=config, anonymize_ip=anonymize)
        else:
            body = json.loads(event["body"])
            parsed = parse_segment(
                "batch", body, source_name="web", meta=meta, anonymize_ip=anonymize
            )
        if parsed.rejections:
            raise SystemExit(f"benchmark event rejected: {parsed.rejections[0].message}")
        out += [e.model_dump(by_alias=True, exclude_none=True) for e in parsed.events]
    return out


@dataclass(frozen=True)
class Measured:
    results: list[Result]
    ua_hits: int  # the user-agent cache after the batches
    ua_misses: int


def measure(seconds: float) -> Measured:
    import boto3
    from moto import mock_aws

    from functions.shared.config import load_config

    ingest, names = function_under_test("ingest")
    config = load_config(CONFIG)

    with mock_aws():
        create_resources(ingest, names)
        secrets = boto3.client("secretsmanager")  # as infra.local.aws.provision creates them
        for source in config.sources:
            secrets.create_secret(Name=source.write_key_secret, SecretString=source.local_write_key)
        secrets.create_secret(
            Name=config.admin.admin_key_secret, SecretString=config.admin.local_admin_key
        )

        from functions.ingest import handler
        from functions.shared.dal import clients
        from functions.shared.dal.kinesis import KinesisWriter

        clients.client.cache_clear()
        handler.collector.cache_clear()
        handler.app.cache_clear()
        writer = handler.collector().events
        assert isinstance(writer, KinesisWriter)  # its .calls counts PutRecords calls

        def invoke(event: dict[str, Any], expect: int) -> int:
            """One request; 1 (the requests it made)."""
            answer = handler.lambda_handler(event, lambda_context(ingest))
            if answer["statusCode"] != expect:
                raise SystemExit(f"unexpected answer {answer['statusCode']}: {answer.get('body')}")
            return 1

        # Pixel: a pool of distinct page views, one event per request.
        pixels = [gateway_event("GET", "/i", query=pixel_query(n)) for n in range(2000)]
        invoke(pixels[0], 200)  # cold start: settings, config, clients, secrets
        pixel_pool = cycle(pixels)
        calls_before = writer.calls
        requests, elapsed = run_for(seconds, lambda: invoke(next(pixel_pool), 200))
        pixel_calls = writer.calls - calls_before

        # Segment batches of 100 track events, Basic auth as analytics-node sends it.
        auth = {
            "authorization": "Basic " + base64.b64encode(f"{WRITE_KEY}:".encode()).decode(),
            "content-type": "application/json",
        }
        batches = [
            gateway_event("POST", "/v1/batch", body=batch_body(n * BATCH_SIZE), headers=auth)
            for n in range(40)
        ]
        invoke(batches[0], 200)
        batch_pool = cycle(batches)
        # Enrichments on and off, request by request in turn, so both see the same
        # process, the same moto stream as it grows and the same machine load (run
        # one after the other, the second run came out slower whatever it was).
        from functions.ingest.enrich import parse_user_agent

        parse_user_agent.cache_clear()
        modes = {"on": handler.collector().enrich_options, "off": {}}
        spent = dict.fromkeys(modes, 0.0)
        made = dict.fromkeys(modes, 0)
        calls = dict.fromkeys(modes, 0)
        start, turn = time.perf_counter(), 0
        while time.perf_counter() - start < 2 * seconds:
            mode = "on" if turn % 2 == 0 else "off"
            handler.collector().enrich_options = modes[mode]
            calls_before, began = writer.calls, time.perf_counter()
            made[mode] += invoke(next(batch_pool), 200)
            spent[mode] += time.perf_counter() - began
            calls[mode] += writer.calls - calls_before
            turn += 1
        handler.collector().enrich_options = modes["on"]
        ua_cache = parse_user_agent.cache_info()
        batch_requests, batch_elapsed, batch_calls = made["on"], spent["on"], calls["on"]
        bare_requests, bare_elapsed, bare_calls = made["off"], spent["off"], calls["off"]

    pixel_fields = canonical_fields(pixels[:500])
    batch_fields = canonical_fields(batches[:5])
    results = [
        Result(
            "pixel `GET /i`",
            1,
            requests,
            elapsed,
            pixel_calls,
            baseline_events_per_s(pixel_fields, seconds / 2),
        ),
        Result(
            f"Segment `POST /v1/batch` ({BATCH_SIZE} events)",
            BATCH_SIZE,
            batch_requests,
            batch_elapsed,
            batch_calls,
            baseline_events_per_s(batch_fields, seconds / 2),
        ),
        Result(
            f"Segment `POST /v1/batch` ({BATCH_SIZE} events), enrichments off",
            BATCH_SIZE,
            bare_requests,
            bare_elapsed,
            bare_calls,
            baseline_events_per_s(batch_fields, seconds / 2),
        ),
    ]
    return Measured(results, ua_cache.hits, ua_cache.misses)


# --- reporting ---------------------------------------------------------------


def table(measured: Measured) -> str:
    results = measured.results
    rows = [
        "| request | events/request | handler events/s | ms/request "
        "| bare validate + to_json events/s | handler / bare | PutRecords calls/event |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in results:
        rows.append(
            f"| {r.kind} | {r.events_per_request} | {r.events_per_s:,.0f} | {r.ms_per_request:.2f} "
            f"| {r.baseline_events_per_s:,.0f} | {r.ratio:.3f} | {r.calls_per_event:.3f} |"
        )
    on, off = results[1], results[2]
    share = 1 - on.events_per_s / off.events_per_s
    rows.append("")
    rows.append(
        f"Enrichments on / off (batches, requests in turn): "
        f"{on.events_per_s / off.events_per_s:.3f} of the events/s — enrichment takes "
        f"{share:.1%} of ingest time (goal: under 15%). User-agent cache: "
        f"{measured.ua_hits:,} hits, {measured.ua_misses:,} misses."
    )
    return "\n".join(rows)


def section(measured: Measured, command: str, seconds: float) -> str:
    return f"""{section_head(SECTION, command)}
{table(measured)}

Each row drives the real `functions.ingest.handler.lambda_handler` with API
Gateway HTTP API (payload 2.0) events for {seconds:g} s, one invocation at a time,
with the events stream (`beacon-events`) and the failed-events bucket on moto.
"bare" is the same process doing only `CanonicalEvent.model_validate` +
`to_json` on the same events (their canonical fields), i.e. the floor of
what ingest must do per event; "handler / bare" is the share of that speed
the whole request path keeps (routing, decoding, auth, canonicalization,
PutRecords through botocore into moto). PutRecords calls/event come from the
KinesisWriter's call counter: 1.0 means one call per pixel request, 0.01 one
call per batch of 100. The batch events carry real user agents (Chrome,
Safari on iPhone, Firefox, Googlebot; about 1,200 distinct strings, so the
user-agent cache also misses), referrers and, one in seven, a UTM-tagged URL;
"enrichments off" sends the same batches with `context.enrichment` disabled
(docs/ingest.md), request by request in turn with the "on" row (each timed on
its own), so the two batch rows are the before/after of the enrichments in the
same conditions.
"""


def main(argv: list[str] | None = None) -> int:
    args = timed_arguments(__doc__, argv)
    command = command_line("ingest.py", argv)
    measured = quietly(lambda: measure(args.seconds))
    return report(
        [table(measured)], args.write, SECTION, lambda: section(measured, command, args.seconds)
    )


if __name__ == "__main__":
    sys.exit(main())
