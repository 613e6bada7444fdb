"""Properties of ingest as a whole: whatever arrives, nothing raises and nothing is lost.

The collector runs on in-memory sinks (no sockets, no moto); the last group of
properties goes through the real Lambda handler with API Gateway HTTP API
(payload 2.0) events. The ledger every property checks: each "unit" a request
holds ends in exactly one place, the events sink or the failed-events store.

Units of a request:
- a whole-request refusal (the JSON answer has a `reason`): 1 failed record;
- otherwise, a Segment batch call whose body has a list `batch`: len(batch);
  any other Segment call: 1;
- tp2 with a valid payload_data envelope: len(data); any other tp2 body: 1;
- the pixel: 1.
"""

from __future__ import annotations

import base64
import gzip
import json
import re
import uuid
import zlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

import functions.ingest.handler as ingest_handler
from functions.ingest.canonicalize import (
    FUTURE_TOLERANCE,
    MAX_BATCH_BYTES,
    MAX_RECORD_BYTES,
    MAX_WRITTEN_PER_REQUEST,
    RequestMeta,
)
from functions.ingest.collector import Collected, Collector
from functions.ingest.http import PIXEL_GIF, HttpRequest
from functions.ingest.segment import ALL_CALLS, BATCH_CALLS, SINGLE_CALLS
from functions.shared.config import load_config
from functions.shared.events import CanonicalEvent
from functions.shared.failed_events import FailedEvent
from functions.shared.privacy import anonymize_ip
from functions.shared.streams import StreamRecord
from infra.local.gateway import http_api_event

ROOT = Path(__file__).resolve().parents[3]
CONFIG = load_config(ROOT / "beacon.yaml")
WRITE_KEY = "local-write-key"
RAW_IPV4 = "203.0.113.77"
RAW_IPV6 = "2001:db8:85a3:4d2:8a2e:370:7334:9abc"
RECEIVED = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
TP2_PATH = "/com.snowplowanalytics.snowplow/tp2"
PAYLOAD_DATA = "iglu:com.snowplowanalytics.snowplow/payload_data/jsonschema/1-0-4"
# Independent of the code under test: what a valid payload_data envelope's schema looks like.
_VALID_ENVELOPE_SCHEMA = re.compile(
    r"iglu:com\.snowplowanalytics\.snowplow/payload_data/[a-zA-Z0-9_-]+/1-0-[0-4]", re.ASCII
)
STATUSES = {200, 400, 401, 413, 415, 503}
PROPERTY = settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


# --- in-memory storage ---------------------------------------------------------


class ListSink:
    """An EventSink that keeps every record, or (failing) refuses every one."""

    def __init__(self, *, failing: bool = False) -> None:
        self.failing = failing
        self.records: list[StreamRecord] = []

    def put(self, records: Sequence[StreamRecord]) -> list[int]:
        if self.failing:
            return list(range(len(records)))
        self.records.extend(records)
        return []


class ListFailedSink:
    def __init__(self) -> None:
        self.failures: list[FailedEvent] = []

    def put(self, failures: Sequence[FailedEvent], request_id: str) -> None:
        self.failures.extend(failures)


@dataclass
class Harness:
    collector: Collector
    sink: ListSink
    failed: ListFailedSink


def harness(*, failing: bool = False) -> Harness:
    sink, failed = ListSink(failing=failing), ListFailedSink()
    collector = Collector(
        config=CONFIG,
        source_for_write_key={WRITE_KEY: "web"}.get,
        events=sink,
        failed_events=failed,
        anonymize_ip=partial(anonymize_ip, handling="truncate"),
    )
    return Harness(collector, sink, failed)


DEFAULT_UA = "Mozilla/5.0 (X11; Linux x86_64) Firefox/133.0"


def meta(path: str, source_ip: str | None = RAW_IPV4, user_agent: str = DEFAULT_UA) -> RequestMeta:
    return RequestMeta(
        request_id=str(uuid.uuid4()),
        received_at=RECEIVED,
        path=path,
        source_ip=source_ip,
        user_agent=user_agent,
    )


# --- strategies: JSON ----------------------------------------------------------

# Finite numbers only: NaN and the infinities are not JSON (RFC 8259), and ingest
# refuses them; the "nan" tricky shape below sends them on purpose.
json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
json_objects = st.dictionaries(st.text(max_size=8), json_values, max_size=5)
lone_surrogates = st.text(st.characters(categories=["Cs"]), min_size=1, max_size=2)

# --- strategies: realistic Segment events ---------------------------------------

ids = st.uuids().map(str) | st.from_regex(r"[a-z0-9_-]{1,24}", fullmatch=True)
event_names = st.sampled_from(
    ["Product Viewed", "Product Added", "Order Completed", "Signed Up", "Checkout Started"]
)
sane_times = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
)
wire_times = sane_times.map(lambda t: t.isoformat()) | sane_times.map(
    lambda t: int(t.timestamp() * 1000)
)
# Every date a datetime can hold, in any offset: what a broken client clock sends.
extreme_times = st.datetimes(
    timezones=st.sampled_from(
        [UTC, timezone(timedelta(hours=23, minutes=59)), timezone(-timedelta(hours=23, minutes=59))]
    )
).map(lambda t: t.isoformat())
contexts = st.fixed_dictionaries(
    {},
    optional={
        "ip": st.sampled_from([RAW_IPV4, RAW_IPV6, f" {RAW_IPV4} ", "not-an-ip"]),
        "userAgent": st.just("Mozilla/5.0 (Macintosh) Safari/605.1.15"),
        "locale": st.sampled_from(["en-US", "de-DE"]),
        "page": st.fixed_dictionaries(
            {"url": st.just("https://shop.example.com/p/1"), "path": st.just("/p/1")}
        ),
        "consent": st.fixed_dictionaries(
            {
                "categoryPreferences": st.dictionaries(
                    st.sampled_from(["analytics", "advertising", "functional"]), st.booleans()
                )
            }
        ),
    },
)


@st.composite
def valid_segment_events(draw: st.DrawFn, call_type: str | None = None) -> dict[str, Any]:
    """An event a Segment library would send; always valid."""
    kind = call_type or draw(st.sampled_from(sorted(set(SINGLE_CALLS.values()))))
    item: dict[str, Any] = {"type": kind}
    who = draw(st.sampled_from(["anonymous", "user", "both"]))
    if who in ("anonymous", "both"):
        item["anonymousId"] = draw(ids)
    if who in ("user", "both") or kind == "alias":
        item["userId"] = draw(ids)
    if kind == "track":
        item["event"] = draw(event_names)
        item["properties"] = draw(json_objects)
    elif kind in ("page", "screen"):
        item["name"] = draw(st.sampled_from(["Home", "Product", "Cart"]))
        item["properties"] = draw(json_objects)
    elif kind == "identify":
        item["traits"] = draw(json_objects)
    elif kind == "group":
        item["groupId"] = draw(ids)
    elif kind == "alias":
        item["previousId"] = draw(ids)
    if draw(st.booleans()):
        item["messageId"] = str(draw(st.uuids()))
    if draw(st.booleans()):
        item["timestamp"] = draw(wire_times)
    if draw(st.booleans()):
        item["context"] = draw(contexts)
    return item


@st.composite
def broken_segment_events(draw: st.DrawFn) -> Any:
    """A realistic event with one field broken, dropped or replaced by junk."""
    item = dict(draw(valid_segment_events()))
    key = draw(
        st.sampled_from(
            [
                "type",
                "event",
                "anonymousId",
                "userId",
                "context",
                "timestamp",
                "properties",
                "messageId",
                "groupId",
                "previousId",
            ]
        )
    )
    if draw(st.booleans()):
        item.pop(key, None)
    else:
        item[key] = draw(json_values)
    return item


batch_items = st.one_of(
    *[valid_segment_events()] * 4,
    broken_segment_events(),
    json_values,
)


@st.composite
def tricky_segment_texts(draw: st.DrawFn, call: str) -> str:
    """Valid JSON that stresses the parser or the models: depth, big numbers, odd text."""
    shape = draw(
        st.sampled_from(
            [
                "deep",
                "deep-property",
                "big-int",
                "surrogate",
                "extreme-time",
                "future-time",
                "nan",
                "non-finite-literal",
                "huge-number",
                "huge-context",
                "long-id",
            ]
        )
    )
    if shape == "deep":
        depth = draw(st.sampled_from([10, 1_000, 100_000]) | st.integers(1, 120_000))
        opener = draw(st.sampled_from(["[", '{"a":']))
        return opener * depth
    item = draw(valid_segment_events(None if call in BATCH_CALLS else SINGLE_CALLS[call]))
    if shape == "deep-property":
        # Valid JSON nested around ingest's limit and far past it, beside other items.
        depth = draw(st.sampled_from([31, 32, 33, 299, 300, 330, 900]) | st.integers(1, 950))
        opener, closer = draw(st.sampled_from([("[", "]"), ('{"a":', "}")]))
        text = json.dumps({**item, "properties": {"n": 0}}).replace(
            '"n": 0', '"n": ' + opener * depth + "1" + closer * depth
        )
    elif shape == "non-finite-literal":
        literal = draw(st.sampled_from(["NaN", "Infinity", "-Infinity", "1e400", "-1e999"]))
        where = draw(st.sampled_from(["userId", "anonymousId", "properties", "context"]))
        text = json.dumps({**item, where: 0}).replace(f'"{where}": 0', f'"{where}": {literal}')
    elif shape == "huge-context":
        # A batch-level context merged into many items: what one request makes Beacon write.
        blob = "x" * draw(st.sampled_from([1_000, 30_000, 39_000, 45_000, 120_000]))
        items = [item] * draw(st.integers(min_value=1, max_value=60))
        text = json.dumps({"batch": items, "context": {"blob": blob}})
        return text if call in BATCH_CALLS else json.dumps({**item, "context": {"blob": blob}})
    elif shape == "big-int":
        digits = draw(st.integers(min_value=4000, max_value=6000))
        text = json.dumps({**item, "properties": {"n": 0}}).replace(
            '"n": 0', '"n": ' + "7" * digits
        )
    else:
        if shape == "surrogate":
            item["properties"] = {"note": "x" + draw(lone_surrogates)}
        elif shape == "extreme-time":
            item["timestamp"] = draw(extreme_times)
            if draw(st.integers(min_value=0, max_value=3)):
                item["sentAt"] = draw(extreme_times)
        elif shape == "future-time":
            # Without sentAt nothing corrects the clock: time must come from the server.
            item.pop("sentAt", None)
            item["timestamp"] = draw(
                st.sampled_from(["2999-01-01T00:00:00Z", "9999-12-31T23:59:59Z"])
                | st.integers(min_value=2_000_000_000_000, max_value=10**16)
            )
        elif shape == "huge-number":
            number = draw(
                st.sampled_from([1e308, -1e308, 10**30, -(10**300), 1.7976931348623157e308])
            )
            item["properties"] = {"total": number, "price": number, "quantity": number}
        elif shape == "long-id":
            # The model allows ids up to 400 characters; a Kinesis partition key holds 256.
            item["anonymousId"] = "a" * draw(st.integers(min_value=200, max_value=400))
        else:
            item["properties"] = {"ratio": draw(st.sampled_from([float("nan"), float("inf")]))}
        text = json.dumps(item)
    return '{"batch": [' + text + "]}" if call in BATCH_CALLS else text


# --- strategies: Snowplow --------------------------------------------------------

epoch_ms = sane_times.map(lambda t: str(int(t.timestamp() * 1000)))


@st.composite
def snowplow_events(draw: st.DrawFn, *, junk: bool = True) -> dict[str, str]:
    """Tracker-protocol parameters as the JS tracker sends them (valid unless `junk`)."""
    code = draw(st.sampled_from(["pv", "pp", "se", "ue", "tr", "ti", "ad", "zz"]))
    params: dict[str, str] = {"e": code, "tv": "js-3.24.0", "p": "web"}
    params["aid"] = draw(st.sampled_from(["shop-web", "other-app", ""]))
    params["eid"] = str(draw(st.uuids()))
    params["duid"] = draw(ids)
    if draw(st.booleans()):
        params["uid"] = draw(ids)
    params["dtm"] = draw(epoch_ms)
    if draw(st.booleans()):
        params["stm"] = draw(epoch_ms)
    if draw(st.booleans()):
        params["ip"] = draw(st.sampled_from([RAW_IPV4, RAW_IPV6]))
    params["url"] = "https://shop.example.com/p/1?ref=mail"
    if code == "se":
        params.update(se_ca="shop", se_ac=draw(event_names), se_va="9.99")
    elif code == "ue":
        unstruct = {
            "schema": "iglu:com.snowplowanalytics.snowplow/unstruct_event/jsonschema/1-0-0",
            "data": {
                "schema": "iglu:com.acme/link_click/jsonschema/1-0-1",
                "data": {"targetUrl": "https://shop.example.com/"},
            },
        }
        params["ue_pr"] = json.dumps(unstruct)
    elif code == "tr":
        params.update(tr_id=draw(ids), tr_tt="42.50", tr_cu="EUR")
    elif code == "ti":
        params.update(ti_id=draw(ids), ti_sk="SKU-1", ti_pr="10", ti_qu="2")
    elif code == "pp":
        params.update(pp_mix="0", pp_max="12.5", pp_miy="0", pp_may="300")
    if junk and draw(st.integers(min_value=0, max_value=4)) == 0:  # one parameter is junk
        params[draw(st.sampled_from(sorted(params)))] = draw(st.text(max_size=10))
    return params


pixel_queries = st.one_of(
    snowplow_events(),
    st.dictionaries(st.text(max_size=10), st.text(max_size=20), max_size=6),
    st.dictionaries(
        st.sampled_from(["e", "aid", "eid", "duid", "dtm", "res", "vid", "cx", "co", "ue_px"]),
        st.text(max_size=12) | lone_surrogates,
        max_size=6,
    ),
)


@st.composite
def tp2_texts(draw: st.DrawFn) -> str:
    shape = draw(st.sampled_from(["envelope", "envelope", "envelope", "json", "text", "tricky"]))
    if shape == "json":
        return json.dumps(draw(json_values))
    if shape == "tricky":
        # Valid JSON that stresses the parser: depth, and numbers past int()'s digit limit.
        params = draw(snowplow_events())
        if draw(st.booleans()):
            return "[" * draw(st.sampled_from([10, 1_000, 100_000]))
        digits = "9" * draw(st.integers(min_value=4000, max_value=6000))
        key = draw(st.sampled_from(["dtm", "vid", "se_va", "unknown"]))
        text = json.dumps({"schema": PAYLOAD_DATA, "data": [{**params, key: 0}]})
        return text.replace(f'"{key}": 0', f'"{key}": {digits}')
    if shape == "text":
        return draw(st.text(max_size=50))
    schema = draw(
        st.sampled_from(
            [
                PAYLOAD_DATA,
                "iglu:com.snowplowanalytics.snowplow/payload_data/jsonschema/1-0-0",
                "iglu:com.snowplowanalytics.snowplow/payload_data/jsonschema/1-0-5",
                "iglu:com.acme/payload_data/jsonschema/1-0-4",
                "payload_data",
            ]
        )
        | json_values
    )
    items = st.one_of(
        snowplow_events(),
        snowplow_events(),
        json_values,
        st.dictionaries(st.text(max_size=5), json_scalars, max_size=4),
    )
    data = draw(st.lists(items, max_size=6) | json_values)
    return json.dumps({"schema": schema, "data": data})


# --- strategies: whole requests ---------------------------------------------------

ENCODINGS = ["", "", "gzip", "x-gzip", "deflate", "identity", " GZIP ", "br", "compress"]


@dataclass(frozen=True)
class Body:
    data: bytes
    content_encoding: str


@st.composite
def encoded(draw: st.DrawFn, text: str | bytes) -> Body:
    data = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text
    encoding = draw(st.sampled_from(ENCODINGS * 3 + ["<random>"]))
    if encoding == "<random>":
        encoding = draw(st.text(max_size=8))
    normalized = encoding.strip().lower()
    if normalized in ("gzip", "x-gzip") and draw(st.integers(0, 4)):
        data = gzip.compress(data, mtime=0)
    elif normalized == "deflate" and draw(st.integers(0, 4)):
        data = zlib.compress(data)
    return Body(data, encoding)


BASIC_OK = "Basic " + base64.b64encode(f"{WRITE_KEY}:".encode()).decode()
BAD_UTF8_USER = base64.b64encode(b"\xff:").decode()


@dataclass(frozen=True)
class Request:
    """One HTTP request as the collector receives it."""

    path: str
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    query: dict[str, str] = field(default_factory=dict)
    source_ip: str | None = RAW_IPV4
    user_agent: str = DEFAULT_UA  # the header; a hostile one is huge

    @property
    def call(self) -> str:
        return self.path.removeprefix("/v1/")

    def http(self) -> HttpRequest:
        method = "GET" if self.path == "/i" else "POST"
        request_meta = meta(self.path, self.source_ip, self.user_agent)
        return HttpRequest(request_meta, method, self.headers, self.query, self.body)


@st.composite
def credentials(draw: st.DrawFn) -> tuple[dict[str, str], dict[str, str], str | None]:
    """(headers, query, body writeKey): where the write key travels, if anywhere."""
    where = draw(st.sampled_from(["basic"] * 6 + ["body", "query", "none", "junk"]))
    if where == "basic":
        return {"authorization": BASIC_OK}, {}, None
    if where == "body":
        return {}, {}, draw(st.sampled_from([WRITE_KEY, "wrong-key"]))
    if where == "query":
        return {}, {"writeKey": draw(st.sampled_from([WRITE_KEY, "wrong-key", ""]))}, None
    if where == "junk":
        junk = draw(
            st.sampled_from(["Basic", "Basic !!!", "Bearer x", "Basic " + BAD_UTF8_USER])
            | st.text(max_size=20)
        )
        return {"authorization": junk}, {}, None
    return {}, {}, None


@st.composite
def segment_requests(draw: st.DrawFn, *, realistic_only: bool = False) -> Request:
    call = draw(st.sampled_from(sorted(ALL_CALLS)))
    headers, query, body_key = draw(credentials())
    kinds = (
        ["realistic"]
        if realistic_only
        else ["realistic", "realistic", "json", "text", "bytes", "tricky", "tricky", "oversize"]
    )
    kind = draw(st.sampled_from(kinds))
    text: str | bytes
    if kind in ("realistic", "oversize"):
        if call in BATCH_CALLS:
            payload: dict[str, Any] = {
                "batch": draw(st.lists(batch_items, min_size=int(realistic_only), max_size=8))
            }
            if draw(st.booleans()):
                payload["context"] = draw(contexts)
            if draw(st.booleans()):
                payload["sentAt"] = draw(wire_times)
        else:
            payload = draw(valid_segment_events(SINGLE_CALLS[call]) | broken_segment_events())
            if not isinstance(payload, dict):
                payload = {"value": payload}
        if body_key is not None:
            payload["writeKey"] = body_key
        text = json.dumps(payload)
        if kind == "oversize":
            text += " " * draw(st.sampled_from([33 * 1024, 501 * 1024]))
    elif kind == "json":
        text = json.dumps(draw(json_values))
    elif kind == "text":
        text = draw(st.text(max_size=60))
    elif kind == "bytes":
        text = draw(st.binary(max_size=60))
    else:
        text = draw(tricky_segment_texts(call))
    body = draw(encoded(text)) if not realistic_only else Body(text.encode(), "")  # type: ignore[union-attr]
    headers = dict(headers)
    if body.content_encoding:
        headers["content-encoding"] = body.content_encoding
    headers["content-type"] = draw(
        st.sampled_from(["application/json", "text/plain", "application/x-www-form-urlencoded"])
        | st.text(max_size=12)
    )
    event(f"segment body: {kind}")
    user_agent = DEFAULT_UA
    if not realistic_only and draw(st.integers(min_value=0, max_value=9)) == 0:
        user_agent = "U" * draw(st.sampled_from([2_000, 41_000, 60_000]))  # a huge header
    return Request(f"/v1/{call}", body.data, headers, query, user_agent=user_agent)


@st.composite
def tp2_requests(draw: st.DrawFn) -> Request:
    body = draw(encoded(draw(tp2_texts() | st.binary(max_size=40).map(bytes.hex))))
    headers = {"content-type": "application/json; charset=UTF-8"}
    if body.content_encoding:
        headers["content-encoding"] = body.content_encoding
    return Request(TP2_PATH, body.data, headers)


# --- the ledger ------------------------------------------------------------------


def answer_json(collected: Collected) -> dict[str, Any] | None:
    if collected.answer.content_type != "application/json":
        return None
    payload = json.loads(collected.answer.body)
    assert isinstance(payload, dict)
    return payload


def decoded_text(request: Request) -> str | None:
    """The body as the client meant it (None if it is not text)."""
    encoding = (request.headers.get("content-encoding") or "").strip().lower()
    data = request.body
    try:
        if encoding in ("gzip", "x-gzip"):
            data = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(data)
        elif encoding == "deflate":
            data = zlib.decompressobj().decompress(data)
        return data.decode("utf-8")
    except (zlib.error, UnicodeDecodeError):
        return None


def loads(text: str | None) -> Any:
    if text is None:
        return None
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        return None


def expected_units(request: Request, collected: Collected) -> int:
    payload = answer_json(collected)
    if payload is not None and "reason" in payload:
        return 1  # the whole request was refused and stored as one failed event
    if request.path == "/i":
        return 1
    body = loads(decoded_text(request))
    if request.path == TP2_PATH:
        valid = (
            isinstance(body, dict)
            and isinstance(body.get("schema"), str)
            and _VALID_ENVELOPE_SCHEMA.fullmatch(body["schema"]) is not None
            and isinstance(body.get("data"), list)
        )
        return len(body["data"]) if valid else 1
    if request.call in BATCH_CALLS:
        if isinstance(body, dict) and isinstance(body.get("batch"), list):
            return len(body["batch"])
        return 1
    return 1


def collect(h: Harness, request: Request) -> Collected:
    http = request.http()
    if request.path == "/i":
        return h.collector.pixel(http)
    if request.path == TP2_PATH:
        return h.collector.tp2(http)
    return h.collector.segment(request.call, http)


def check_ledger(h: Harness, request: Request, collected: Collected) -> None:
    status = collected.answer.status
    assert status in STATUSES
    written, failed = len(h.sink.records), len(h.failed.failures)
    assert written + failed == expected_units(request, collected), (written, failed)
    assert collected.accepted == written
    assert sum(collected.failed.values()) == failed
    assert collected.unstored == 0
    for record in h.sink.records:
        CanonicalEvent.model_validate_json(record.data)  # what is written, every step can read
        # What PutRecords accepts: a key of 1 to 256 characters, at most 1 MiB with the data.
        assert 1 <= len(record.partition_key) <= 256, len(record.partition_key)
        assert len(record.data) + len(record.partition_key.encode()) <= 1024 * 1024
    # What a request makes Beacon write is bounded, whatever it holds.
    assert sum(len(r.data) for r in h.sink.records) <= MAX_WRITTEN_PER_REQUEST
    for record in h.sink.records:
        assert len(record.data) <= MAX_RECORD_BYTES
        canonical = CanonicalEvent.model_validate_json(record.data)
        assert canonical.timestamp <= canonical.received_at + FUTURE_TOLERANCE  # server's time
    for failure in h.failed.failures:
        assert failure.step == "ingest"
        assert not failure.retryable
        assert failure.path == request.path
        # Evidence, not payloads: a refused body is kept whole only up to the request limit.
        assert len(failure.raw.encode("utf-8")) <= MAX_BATCH_BYTES + 64 * 1024
        assert RAW_IPV4 not in failure.raw and RAW_IPV6 not in failure.raw
    payload = answer_json(collected)
    event(f"{request.path.split('/')[-1]}: {status}")
    if payload is None or "reason" in payload:
        return
    if request.path == TP2_PATH:
        assert status == 200
        assert payload["accepted"] == written
    else:
        # Segment: 400 exactly when nothing was accepted and something was rejected.
        assert (status == 400) == (written == 0 and failed > 0)
        if status == 200 and failed:
            assert payload["accepted"] == written
            assert len(payload["rejected"]) == failed


# --- a. Segment and tp2: never raises, nothing lost --------------------------------

DEEP = Request("/v1/track", b"[" * 100_000, {"authorization": BASIC_OK})
BIG_INT = Request(
    "/v1/batch",
    b'{"batch": [{"type": "track", "event": "x", "anonymousId": "a", "properties": {"n": '
    + b"7" * 4301
    + b"}}]}",
    {"authorization": BASIC_OK},
)
SURROGATE = Request(
    "/v1/batch",
    b'{"batch": [{"type": "track", "event": "x", "anonymousId": "a"},'
    b' {"type": "track", "event": "y", "anonymousId": "b", "properties": {"note": "\\ud800"}}]}',
    {"authorization": BASIC_OK},
)
CLOCK_OVERFLOW = Request(
    "/v1/track",
    json.dumps(
        {
            "event": "x",
            "anonymousId": "a",
            "timestamp": "0001-01-01T00:00:00+00:00",
            "sentAt": "9999-12-31T23:59:59+00:00",
        }
    ).encode(),
    {"authorization": BASIC_OK},
)
OFFSET_OVERFLOW = Request(
    "/v1/track",
    b'{"event": "x", "anonymousId": "a", "timestamp": "0001-01-01T00:00:00+23:59"}',
    {"authorization": BASIC_OK},
)
DEEP_UNSUPPORTED_ENCODING = Request(
    "/v1/batch", b"[" * 100_000, {"authorization": BASIC_OK, "content-encoding": "br"}
)
LONG_ANONYMOUS_ID = Request(
    "/v1/track",
    json.dumps({"event": "x", "anonymousId": "a" * 257}).encode(),
    {"authorization": BASIC_OK},
)
TP2_BIG_INT = Request(
    TP2_PATH,
    b'{"schema": "' + PAYLOAD_DATA.encode() + b'", "data": [{"e": "pv", "aid": "shop-web",'
    b' "duid": "d1", "dtm": ' + b"1" * 4301 + b"}]}",
    {"content-type": "application/json"},
)


@PROPERTY
@given(request=segment_requests())
@example(request=DEEP)  # RecursionError (json.loads of the body, then of the refused raw)
@example(request=BIG_INT)  # ValueError: int literal over 4300 digits
@example(request=SURROGATE)  # was: PydanticSerializationError in Collector._accept
@example(request=CLOCK_OVERFLOW)  # OverflowError in corrected_timestamp
@example(request=OFFSET_OVERFLOW)  # OverflowError converting to UTC
@example(request=DEEP_UNSUPPORTED_ENCODING)  # RecursionError in scrub_ip on the refused raw
@example(request=LONG_ANONYMOUS_ID)  # a partition key Kinesis refuses (over 256 characters)
def test_segment_requests_never_raise_and_lose_nothing(request: Request) -> None:
    h = harness()
    collected = collect(h, request)
    check_ledger(h, request, collected)


@PROPERTY
@given(request=tp2_requests())
@example(request=TP2_BIG_INT)  # ValueError: int literal over 4300 digits
def test_tp2_requests_never_raise_and_lose_nothing(request: Request) -> None:
    h = harness()
    collected = collect(h, request)
    check_ledger(h, request, collected)


def test_realistic_segment_traffic_is_mostly_accepted() -> None:
    """The generators reach the accepted path, not only the rejections."""
    outcomes: list[bool] = []

    @settings(max_examples=150, deadline=None, database=None)
    @given(request=segment_requests(realistic_only=True))
    def run(request: Request) -> None:
        h = harness()
        collected = collect(h, request)
        check_ledger(h, request, collected)
        outcomes.append(bool(h.sink.records))

    run()
    assert len(outcomes) >= 100
    accepted = sum(outcomes) / len(outcomes)
    assert accepted >= 0.3, f"only {accepted:.0%} of realistic requests had an event accepted"


# --- b. the pixel ------------------------------------------------------------------


@PROPERTY
@given(query=pixel_queries)
@example(query={"e": "pv", "aid": "shop-web", "duid": "d" * 300})  # key over 256 characters
def test_pixel_always_answers_the_gif_and_keeps_the_event(query: dict[str, str]) -> None:
    h = harness()
    request = Request("/i", query=query)
    collected = collect(h, request)
    assert collected.answer.status == 200
    assert collected.answer.body.startswith(b"GIF89a")
    assert collected.answer.body == PIXEL_GIF
    assert len(h.sink.records) + len(h.failed.failures) == 1
    check_ledger(h, request, collected)


# --- c. the raw IP never travels downstream -------------------------------------------


@st.composite
def privacy_requests(draw: st.DrawFn) -> Request:
    source_ip = draw(st.sampled_from([RAW_IPV4, RAW_IPV6]))
    shape = draw(st.sampled_from(["segment", "pixel", "tp2"]))
    if shape == "pixel":
        return Request("/i", query=draw(snowplow_events()), source_ip=source_ip)
    if shape == "tp2":
        data = draw(st.lists(snowplow_events(), min_size=1, max_size=5))
        body = json.dumps({"schema": PAYLOAD_DATA, "data": data}).encode()
        return Request(TP2_PATH, body, source_ip=source_ip)
    request = draw(segment_requests(realistic_only=True))
    return Request(request.path, request.body, request.headers, request.query, source_ip)


@PROPERTY
@given(request=privacy_requests())
def test_the_raw_ip_never_reaches_the_stream(request: Request) -> None:
    h = harness()
    collect(h, request)
    for record in h.sink.records:
        for raw in (RAW_IPV4, RAW_IPV6):
            assert raw.encode() not in record.data
        ip = CanonicalEvent.model_validate_json(record.data).context.ip
        assert ip in (None, "203.0.113.0", "2001:db8:85a3::")


# --- d. through the real Lambda handler --------------------------------------------------


# Metrics are disabled; Powertools still warns that a flush found none.
QUIET_METRICS = pytest.mark.filterwarnings("ignore:No application metrics to publish")


@dataclass(frozen=True)
class FakeContext:
    function_name: str = "ingest"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:000000000000:function:ingest"
    aws_request_id: str = "00000000-0000-4000-8000-000000000000"


def gateway_event(
    method: str,
    path: str,
    body: bytes = b"",
    *,
    base64_body: bool = True,
    headers: dict[str, str] | None = None,
    query: dict[str, str] | None = None,
    source_ip: str = RAW_IPV4,
) -> dict[str, Any]:
    """An API Gateway HTTP API (payload 2.0) event, from the local gateway's builder."""
    headers = {"host": "api.example.com", "user-agent": "Mozilla/5.0", **(headers or {})}
    return http_api_event(
        method,
        path,
        headers=headers,
        query=query,
        raw_query="&".join(f"{k}={v}" for k, v in (query or {}).items()),
        body=body,
        base64_body=base64_body,
        source_ip=source_ip,
        epoch_s=RECEIVED.timestamp(),
    )


@contextmanager
def handler_on(h: Harness) -> Iterator[Any]:
    """The real lambda_handler with its collector replaced by `h`'s."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
        patch.setenv("POWERTOOLS_TRACE_DISABLED", "true")
        patch.setenv("POWERTOOLS_SERVICE_NAME", "ingest")
        patch.setattr(ingest_handler, "collector", lambda: h.collector)
        ingest_handler.app.cache_clear()
        try:
            yield ingest_handler.lambda_handler
        finally:
            ingest_handler.app.cache_clear()


path_text = st.text(
    st.characters(codec="utf-8", exclude_characters="?#/", exclude_categories=["Cs", "Cc"]),
    min_size=1,
    max_size=12,
)
gateway_paths = st.one_of(
    st.sampled_from(sorted(ALL_CALLS)).map(lambda call: f"/v1/{call}"),
    st.sampled_from(sorted(ALL_CALLS)).map(lambda call: f"/v1/{call}"),
    path_text.map(lambda p: f"/v1/{p}"),
    st.lists(path_text, min_size=2, max_size=3).map(lambda ps: "/v1/" + "/".join(ps)),
    st.just("/i"),
    st.just(TP2_PATH),
)


@st.composite
def gateway_events(draw: st.DrawFn) -> dict[str, Any]:
    path = draw(gateway_paths)
    method = "GET" if path == "/i" else "POST"
    if draw(st.integers(min_value=0, max_value=4)) == 0:
        method = draw(st.sampled_from(["GET", "POST", "OPTIONS", "PUT", "DELETE", "PATCH", "HEAD"]))
    if path == TP2_PATH:
        request = draw(tp2_requests())
    elif path == "/i":
        # API Gateway hands the function valid Unicode: never a lone surrogate.
        queries = snowplow_events() | st.dictionaries(st.text(max_size=10), st.text(max_size=20))
        request = Request(path, query=draw(queries))
    else:
        request = draw(segment_requests())
    body = request.body
    try:
        body.decode("utf-8")
        base64_body = draw(st.booleans())
    except UnicodeDecodeError:
        base64_body = True
    headers = dict(request.headers)
    if draw(st.booleans()):
        headers["origin"] = draw(
            st.sampled_from(["https://shop.example.com", "https://evil.example", "null"])
        )
    extra = draw(st.dictionaries(st.text(max_size=6), st.text(max_size=10), max_size=2))
    query = {**request.query, **extra}
    return gateway_event(method, path, body, base64_body=base64_body, headers=headers, query=query)


def response_body(result: dict[str, Any]) -> bytes:
    raw = result.get("body") or ""
    return base64.b64decode(raw) if result.get("isBase64Encoded") else str(raw).encode()


DEEP_BODY = gateway_event("POST", "/v1/track", b"[" * 100_000, headers={"authorization": BASIC_OK})
UNKNOWN_CALL = gateway_event(
    "POST", "/v1/trak", b'{"event": "x", "anonymousId": "a"}', headers={"authorization": BASIC_OK}
)


@QUIET_METRICS
@PROPERTY
@given(lambda_event=gateway_events())
@example(lambda_event=UNKNOWN_CALL)  # was: TypeError, the 404 body was bytes
@example(lambda_event=DEEP_BODY)  # RecursionError: the Lambda fails, API Gateway answers 500
def test_the_handler_never_crashes_and_never_answers_5xx(lambda_event: dict[str, Any]) -> None:
    h = harness()
    with handler_on(h) as handler:
        result = handler(lambda_event, FakeContext())
    assert isinstance(result, dict)
    status = result["statusCode"]
    event(f"handler: {status}")
    assert status < 500, (status, response_body(result)[:200])  # the sinks never fail here
    method = lambda_event["requestContext"]["http"]["method"]
    if lambda_event["rawPath"] == "/i" and method == "GET":
        assert status == 200
        assert response_body(result).startswith(b"GIF89a")
        assert len(h.sink.records) + len(h.failed.failures) == 1


@st.composite
def valid_requests(draw: st.DrawFn) -> tuple[dict[str, Any], int]:
    """(a gateway event whose events are all valid, how many events it holds)."""
    shape = draw(st.sampled_from(["batch", "single", "tp2", "pixel"]))
    if shape == "batch":
        items = draw(st.lists(valid_segment_events(), min_size=1, max_size=8))
        body = json.dumps({"batch": items}).encode()
        lambda_event = gateway_event("POST", "/v1/batch", body, headers={"authorization": BASIC_OK})
        return lambda_event, len(items)
    if shape == "single":
        call = draw(st.sampled_from(sorted(SINGLE_CALLS)))
        item = draw(valid_segment_events(SINGLE_CALLS[call]))
        body = json.dumps(item).encode()
        return gateway_event("POST", f"/v1/{call}", body, headers={"authorization": BASIC_OK}), 1
    params = draw(snowplow_events(junk=False))
    if shape == "pixel":
        return gateway_event("GET", "/i", query=params), 1
    data = [params, *draw(st.lists(snowplow_events(junk=False), max_size=4))]
    body = json.dumps({"schema": PAYLOAD_DATA, "data": data}).encode()
    return gateway_event("POST", TP2_PATH, body), len(data)


@QUIET_METRICS
@PROPERTY
@given(case=valid_requests())
def test_a_failing_stream_answers_503_and_keeps_every_event_retryable(
    case: tuple[dict[str, Any], int],
) -> None:
    lambda_event, events = case
    h = harness(failing=True)
    with handler_on(h) as handler:
        result = handler(lambda_event, FakeContext())
    assert result["statusCode"] == 503
    if lambda_event["rawPath"] == "/i":
        assert response_body(result).startswith(b"GIF89a")
    else:
        assert result["headers"].get("Retry-After") == "1"
    assert h.sink.records == []
    assert len(h.failed.failures) == events
    for failure in h.failed.failures:
        assert failure.reason == "stream_unavailable"
        assert failure.retryable
        assert failure.message_id
        CanonicalEvent.model_validate_json(failure.raw)  # the event itself, ready to replay
