"""Snowplow tracker protocol -> canonical events: the pixel and tp2 mappings."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from functions.ingest.canonicalize import Parsed, RequestMeta
from functions.ingest.snowplow import parse_pixel, parse_tp2
from functions.shared.config import parse_config
from functions.shared.events import CanonicalEvent

CONFIG = parse_config(
    """
version: 1
sources:
  - name: web
    write_key_secret: beacon/sources/web/write-key
    snowplow_app_ids: ["shop-web"]
"""
)
CATCH_ALL_CONFIG = parse_config(
    """
version: 1
sources:
  - name: web
    write_key_secret: beacon/sources/web/write-key
    snowplow_app_ids: ["shop-web"]
  - name: apps
    write_key_secret: beacon/sources/apps/write-key
    local_write_key: local-apps-write-key
    snowplow_app_ids: ["*"]
"""
)

RECEIVED = datetime(2026, 1, 1, 0, 0, 10, tzinfo=UTC)
RAW_IP = "203.0.113.77"
META = RequestMeta(
    request_id="req-1",
    received_at=RECEIVED,
    path="/i",
    source_ip=RAW_IP,
    user_agent="Mozilla/5.0 (X11; Linux x86_64) Firefox/133.0",
)
TP2_META = RequestMeta(
    request_id="req-2",
    received_at=RECEIVED,
    path="/com.snowplowanalytics.snowplow/tp2",
    source_ip=RAW_IP,
    user_agent="Mozilla/5.0",
)
EID = "6f1b5cf2-8a1b-4b8e-9b0d-1c7a3e9f2d10"
PAGE_VIEW_ID = "0b2c7e36-5d63-4a4c-9a63-8a0f3b1d7e55"
SP = "iglu:com.snowplowanalytics.snowplow"


def anonymize(ip: str | None) -> str | None:
    return "x.x.x.0" if ip else None


def ms(moment: datetime) -> str:
    return str(int(moment.timestamp() * 1000))


def b64url(value: Any, *, padded: bool = False) -> str:
    encoded = base64.urlsafe_b64encode(json.dumps(value).encode()).decode()
    return encoded if padded else encoded.rstrip("=")


def contexts(*entities: dict[str, Any]) -> dict[str, Any]:
    return {"schema": f"{SP}/contexts/jsonschema/1-0-1", "data": list(entities)}


def unstruct(schema: str, data: Any) -> dict[str, Any]:
    return {
        "schema": f"{SP}/unstruct_event/jsonschema/1-0-0",
        "data": {"schema": schema, "data": data},
    }


def pixel(query: dict[str, str], config: Any = CONFIG) -> Parsed:
    return parse_pixel(query, meta=META, config=config, anonymize_ip=anonymize)


def tp2(body: str, config: Any = CONFIG) -> Parsed:
    return parse_tp2(body, meta=TP2_META, config=config, anonymize_ip=anonymize)


def payload(*items: Any, version: str = "1-0-4") -> str:
    return json.dumps({"schema": f"{SP}/payload_data/jsonschema/{version}", "data": list(items)})


def base(**params: str) -> dict[str, str]:
    """The parameters every JS tracker event carries."""
    return {"aid": "shop-web", "p": "web", "tv": "js-3.24.0", "duid": "d-123", **params}


def one_event(parsed: Parsed) -> CanonicalEvent:
    assert parsed.rejections == []
    assert len(parsed.events) == 1
    return parsed.events[0]


def one_rejection(parsed: Parsed) -> Any:
    assert parsed.events == []
    assert len(parsed.rejections) == 1
    return parsed.rejections[0]


def wire(event: CanonicalEvent) -> dict[str, Any]:
    """The event as later steps read it (camelCase JSON)."""
    result: dict[str, Any] = json.loads(event.to_json())
    return result


# --- page views ----------------------------------------------------------------


def test_page_view_pixel_maps_ids_page_context_and_skew_corrected_time() -> None:
    created = datetime(2025, 12, 31, 23, 58, 0, tzinfo=UTC)  # the browser's clock is off
    web_page = {"schema": f"{SP}/web_page/jsonschema/1-0-0", "data": {"id": PAGE_VIEW_ID}}
    query = {
        "e": "pv",
        "eid": EID,
        "aid": "shop-web",
        "p": "web",
        "tv": "js-3.24.0",
        "tna": "sp1",
        "duid": "d-123",
        "uid": "customer-42",
        "sid": "5a1d-session",
        "vid": "3",
        "url": "https://shop.example.com/shoes/running?color=red",
        "page": "Running shoes",
        "refr": "https://www.google.com/",
        "lang": "en-GB",
        "tz": "Europe/London",
        "res": "1920x1080",
        "vp": "1280x720",
        "cd": "24",
        "cs": "UTF-8",
        "cookie": "1",
        "f_pdf": "1",
        "dtm": ms(created),
        "stm": ms(created + timedelta(seconds=5)),
        "cx": b64url(contexts(web_page)),
    }

    event = wire(one_event(pixel(query)))

    assert event["type"] == "page"
    assert event["name"] == "Running shoes"
    assert event["messageId"] == EID
    assert event["anonymousId"] == "d-123"
    assert event["userId"] == "customer-42"
    assert event["originalTimestamp"] == "2025-12-31T23:58:00Z"
    assert event["sentAt"] == "2025-12-31T23:58:05Z"
    assert event["receivedAt"] == "2026-01-01T00:00:10Z"
    assert event["timestamp"] == "2026-01-01T00:00:05Z"  # received - (stm - dtm)
    page = {
        "url": "https://shop.example.com/shoes/running?color=red",
        "title": "Running shoes",
        "referrer": "https://www.google.com/",
        "path": "/shoes/running",
        "search": "?color=red",
    }
    assert event["properties"] == page
    context = event["context"]
    assert context["page"] == page
    assert context["library"] == {"name": "snowplow", "version": "js-3.24.0"}
    assert context["session"] == {"id": "5a1d-session", "index": 3}
    assert context["locale"] == "en-GB"
    assert context["timezone"] == "Europe/London"
    assert context["screen"] == {
        "width": 1920,
        "height": 1080,
        "viewport": {"width": 1280, "height": 720},
    }
    assert context["userAgent"] == META.user_agent
    assert context["ip"] == "x.x.x.0"
    assert context["snowplow"] == {
        "appId": "shop-web",
        "platform": "web",
        "trackerNamespace": "sp1",
        "client": {"cd": "24", "cs": "UTF-8", "cookie": "1", "f_pdf": "1"},
        "contexts": [web_page],
        "pageViewId": PAGE_VIEW_ID,
    }
    assert event["source"] == {"name": "web", "protocol": "snowplow"}


def test_page_ping_offsets_are_integers_and_page_goes_to_context() -> None:
    query = base(e="pp", url="https://shop.example.com/", pp_mix="0", pp_max="12.6")
    query.update(pp_miy="-3", pp_may="800")

    event = wire(one_event(pixel(query)))

    assert event["type"] == "track"
    assert event["event"] == "Page Ping"
    assert event["properties"] == {"pp_mix": 0, "pp_max": 13, "pp_miy": -3, "pp_may": 800}
    assert event["context"]["page"] == {"url": "https://shop.example.com/", "path": "/"}


def test_without_eid_the_message_id_is_stable_across_retries() -> None:
    query = base(e="pv", url="https://shop.example.com/", dtm="1767225600000")
    first = one_event(pixel(query))
    retry = one_event(pixel({**query, "stm": "1767225609000"}))
    other = one_event(pixel({**query, "dtm": "1767225600001"}))

    assert first.message_id == one_event(pixel(query)).message_id
    assert first.message_id != other.message_id
    assert retry.message_id == first.message_id  # a retry may refresh stm (sentAt)


# --- structured events ---------------------------------------------------------------


def test_structured_event() -> None:
    query = base(e="se", se_ca="video", se_ac="play", se_la="intro.mp4", se_pr="hd", se_va="12.5")

    event = wire(one_event(pixel(query)))

    assert event["type"] == "track"
    assert event["event"] == "play"
    assert event["category"] == "video"
    assert event["properties"] == {
        "category": "video",
        "action": "play",
        "label": "intro.mp4",
        "property": "hd",
        "value": 12.5,
    }


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"se_ca": "video"}, "se_ac"),
        ({"se_ac": "play", "se_va": "twelve"}, "se_va"),
        ({"se_ac": "play", "se_va": "1e999"}, "se_va"),
    ],
)
def test_structured_event_problems_name_the_field(params: dict[str, str], field: str) -> None:
    rejection = one_rejection(pixel(base(e="se", eid=EID, **params)))

    assert rejection.reason == "invalid_event"
    assert rejection.field == field
    assert field in rejection.message
    assert rejection.message_id == EID
    assert rejection.source == "web"
    assert rejection.protocol == "snowplow"
    assert rejection.index is None


# --- self-describing events -----------------------------------------------------------

LINK_CLICK = "iglu:com.acme/link_click/jsonschema/1-0-0"


@pytest.mark.parametrize("padded", [True, False])
def test_self_describing_event_from_base64url(padded: bool) -> None:
    data = {"targetUrl": "https://shop.example.com/sale?x=1&y=2", "elementId": "hero1"}
    encoded = b64url(unstruct(LINK_CLICK, data), padded=padded)
    assert encoded.endswith("=") == padded  # the fixture really exercises padding

    event = wire(one_event(pixel(base(e="ue", ue_px=encoded))))

    assert event["type"] == "track"
    assert event["event"] == "link_click"
    assert event["properties"] == {**data, "$schema": LINK_CLICK}


def test_consent_event_keeps_its_data_intact() -> None:
    schema = f"{SP}/consent_preferences/jsonschema/1-0-0"
    data = {"basisForProcessing": "consent", "consentScopes": ["necessary", "marketing"]}

    event = wire(one_event(pixel(base(e="ue", ue_pr=json.dumps(unstruct(schema, data))))))

    assert event["event"] == "consent_preferences"
    assert event["properties"] == {**data, "$schema": schema}


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"ue_px": "!!not base64!!"}, "ue_px"),
        ({"ue_px": base64.urlsafe_b64encode(b"\xff\xfe{").decode()}, "ue_px"),
        ({"ue_pr": "{not json"}, "ue_pr"),
        ({"ue_pr": json.dumps({"schema": LINK_CLICK, "data": {}})}, "ue_pr"),
        ({"ue_pr": json.dumps(unstruct("not-an-iglu-uri", {}))}, "ue_pr"),
        ({"ue_pr": json.dumps(unstruct(LINK_CLICK, [1, 2]))}, "ue_pr"),
        ({}, "ue_pr"),
    ],
)
def test_undecodable_self_describing_event_is_rejected(params: dict[str, str], field: str) -> None:
    rejection = one_rejection(pixel(base(e="ue", **params)))

    assert rejection.reason == "invalid_event"
    assert rejection.field == field


def test_lone_surrogate_in_event_json_is_rejected_not_crashing_later() -> None:
    ue = json.dumps(unstruct(LINK_CLICK, {"a": "\ud800"}))  # ASCII text, escaped surrogate
    rejection = one_rejection(pixel(base(e="ue", ue_pr=ue)))

    assert rejection.field == "ue_pr"
    rejection.raw.encode("utf-8")  # storable


def test_lone_surrogate_in_a_parameter_is_rejected_with_storable_raw() -> None:
    rejection = one_rejection(pixel(base(e="pv", page="caf\udce9")))

    assert (rejection.reason, rejection.field) == ("invalid_event", "page")
    rejection.raw.encode("utf-8")

    parsed = tp2(payload(base(e="\ud800")))  # json.dumps escapes it: \\ud800 on the wire
    assert one_rejection(parsed).field == "e"
    assert "\\ud800" in one_rejection(parsed).raw


# --- e-commerce ------------------------------------------------------------------------


def test_transaction_and_item_follow_segment_ecommerce_spec() -> None:
    transaction = base(
        e="tr",
        tr_id="order-1001",
        tr_af="web-store",
        tr_tt="129.90",
        tr_tx="21.65",
        tr_sh="4.99",
        tr_cu="GBP",
        tr_ci="London",
        tr_st="England",
        tr_co="GB",
    )
    item = base(
        e="ti",
        ti_id="order-1001",
        ti_sk="SKU-RUN-42",
        ti_nm="Trail runner",
        ti_ca="shoes",
        ti_pr="62.45",
        ti_qu="2",
        ti_cu="GBP",
    )

    parsed = tp2(payload(transaction, item))

    assert parsed.rejections == []
    order, line = (wire(event) for event in parsed.events)
    assert order["event"] == "Order Completed"
    assert order["properties"] == {
        "order_id": "order-1001",
        "affiliation": "web-store",
        "total": 129.9,
        "revenue": 129.9,
        "tax": 21.65,
        "shipping": 4.99,
        "currency": "GBP",
        "city": "London",
        "state": "England",
        "country": "GB",
    }
    assert line["event"] == "Order Item"
    assert line["properties"] == {
        "order_id": "order-1001",
        "sku": "SKU-RUN-42",
        "name": "Trail runner",
        "category": "shoes",
        "price": 62.45,
        "quantity": 2,
        "currency": "GBP",
    }


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"e": "tr", "tr_tt": "10"}, "tr_id"),
        ({"e": "tr", "tr_id": "o-1", "tr_tt": "ten"}, "tr_tt"),
        ({"e": "ti", "ti_id": "o-1", "ti_qu": "1.5"}, "ti_qu"),
        ({"e": "ti", "ti_id": "o-1", "ti_pr": "$3"}, "ti_pr"),
    ],
)
def test_ecommerce_numbers_that_do_not_parse_name_the_field(
    params: dict[str, str], field: str
) -> None:
    rejection = one_rejection(pixel(base(**params)))

    assert (rejection.reason, rejection.field) == ("invalid_event", field)


# --- tp2 batches ----------------------------------------------------------------------


def test_tp2_bad_item_costs_no_neighbours() -> None:
    good_first = base(e="pv", eid="e-0", url="https://shop.example.com/")
    bad = base(e="se", eid="e-1", se_ca="video")  # no se_ac
    good_last = base(e="se", eid="e-2", se_ca="video", se_ac="play")

    parsed = tp2(payload(good_first, bad, good_last))

    assert [event.message_id for event in parsed.events] == ["e-0", "e-2"]
    [rejection] = parsed.rejections
    assert rejection.index == 1
    assert rejection.field == "se_ac"
    assert rejection.message_id == "e-1"
    assert rejection.source == "web"
    assert rejection.protocol == "snowplow"
    assert json.loads(rejection.raw) == bad


def test_tp2_item_that_is_not_an_object_is_rejected_alone() -> None:
    parsed = tp2(payload(base(e="pv"), "pv", base(e="pv", duid="d-9")))

    assert len(parsed.events) == 2
    [rejection] = parsed.rejections
    assert (rejection.reason, rejection.index, rejection.raw) == ("invalid_event", 1, '"pv"')


@pytest.mark.parametrize("version", ["1-0-0", "1-0-3", "1-0-4"])
def test_tp2_accepts_every_payload_data_version(version: str) -> None:
    one_event(tp2(payload(base(e="pv"), version=version)))


def test_tp2_numbers_are_read_as_their_text() -> None:
    item: dict[str, Any] = base(e="pv")
    item.update(dtm=1767225600000, stm=1767225600000.0, vid=2, sid="s-1")

    event = one_event(tp2(payload(item)))

    assert event.original_timestamp == datetime(2026, 1, 1, tzinfo=UTC)
    assert event.context.model_extra is not None
    assert event.context.model_extra["session"] == {"id": "s-1", "index": 2}


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ("not json at all", "not valid JSON"),
        ("", "not valid JSON"),
        ("[" * 100_000, "not acceptable JSON"),
        (json.dumps([base(e="pv")]), "must be a JSON object"),
        (json.dumps({"schema": f"{SP}/payload_data/jsonschema/2-0-0", "data": []}), "schema"),
        (
            json.dumps({"schema": "iglu:com.acme/payload_data/jsonschema/1-0-4", "data": []}),
            "schema",
        ),
        (json.dumps({"data": [base(e="pv")]}), "schema"),
        (json.dumps({"schema": f"{SP}/payload_data/jsonschema/1-0-4", "data": {}}), "data"),
        (json.dumps({"schema": f"{SP}/payload_data/jsonschema/1-0-4"}), "data"),
    ],
)
def test_malformed_tp2_body_is_one_rejection(body: str, says: str) -> None:
    rejection = one_rejection(tp2(body))

    assert rejection.reason == "malformed_body"
    assert says in rejection.message
    assert rejection.raw == body
    assert rejection.protocol == "snowplow"


# --- parameters that are missing, unknown or garbage -------------------------------------


def test_empty_pixel_is_rejected() -> None:
    rejection = one_rejection(pixel({}))

    assert rejection.reason == "malformed_body"
    assert "no tracker parameters" in rejection.message


def test_pixel_with_garbage_params_is_rejected() -> None:
    rejection = one_rejection(pixel({"e": "zz", "foo": "\x00"}, CATCH_ALL_CONFIG))

    assert rejection.reason == "invalid_event"
    assert "userId or anonymousId is required" in rejection.message
    assert rejection.source == "apps"
    assert rejection.raw == "e=zz&foo=%00"


def test_missing_event_type_is_rejected() -> None:
    rejection = one_rejection(pixel(base(url="https://shop.example.com/")))

    assert (rejection.reason, rejection.field) == ("invalid_event", "e")


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"dtm": "yesterday"}, "dtm"),
        ({"dtm": "9" * 400}, "dtm"),  # too large for a datetime, must not raise
        ({"stm": "-5"}, "stm"),
        ({"ttm": "1.5"}, "ttm"),
        ({"res": "wide"}, "res"),
        ({"vp": "1280x"}, "vp"),
        ({"vid": "first"}, "vid"),
        ({"cx": "%%%"}, "cx"),
        ({"co": json.dumps({"schema": f"{SP}/contexts/jsonschema/1-0-0", "data": {}})}, "co"),
        ({"co": json.dumps(contexts({"no": "schema"}))}, "co"),
        ({"e": "p v"}, "e"),
    ],
)
def test_unreadable_parameters_are_rejected_by_name(params: dict[str, str], field: str) -> None:
    rejection = one_rejection(pixel(base(**{"e": "pv", **params})))

    assert (rejection.reason, rejection.field) == ("invalid_event", field)


def test_unknown_app_id_without_catch_all() -> None:
    rejection = one_rejection(pixel(base(e="pv", aid="someone-else")))

    assert rejection.reason == "unknown_app_id"
    assert rejection.field == "aid"
    assert "someone-else" in rejection.message
    assert rejection.source is None


def test_missing_app_id_goes_to_the_catch_all_source() -> None:
    query = base(e="pv")
    del query["aid"]

    assert one_rejection(pixel(query)).reason == "unknown_app_id"
    assert one_event(pixel(query, CATCH_ALL_CONFIG)).source.name == "apps"


def test_unknown_parameters_are_kept_under_unmapped() -> None:
    query = base(e="pv", fp="123456", se_ca="stray", cx="", mac="00:11:22:33:44:55")

    event = wire(one_event(pixel(query)))

    assert event["context"]["snowplow"]["unmapped"] == {
        "fp": "123456",
        "se_ca": "stray",
        "mac": "00:11:22:33:44:55",
    }


def test_unmapped_event_type_keeps_its_parameters_as_properties() -> None:
    query = base(e="ad", ad_ba="banner-7", ad_ca="campaign-2", url="https://shop.example.com/")

    event = wire(one_event(pixel(query)))

    assert event["event"] == "snowplow:ad"
    assert event["properties"] == {"ad_ba": "banner-7", "ad_ca": "campaign-2"}
    assert event["context"]["page"]["url"] == "https://shop.example.com/"
    assert "unmapped" not in event["context"]["snowplow"]


# --- identity and time --------------------------------------------------------------------


def test_network_user_id_is_the_anonymous_id_only_without_duid_or_uid() -> None:
    query = base(e="pv", tnuid="n-tracker", nuid="n-cookie")
    del query["duid"]

    alone = wire(one_event(pixel(query)))
    with_uid = wire(one_event(pixel({**query, "uid": "customer-42"})))

    assert alone["anonymousId"] == "n-tracker"
    assert alone["context"]["snowplow"]["networkUserId"] == "n-tracker"
    assert "anonymousId" not in with_uid
    assert with_uid["userId"] == "customer-42"
    assert with_uid["context"]["snowplow"]["networkUserId"] == "n-tracker"


def test_true_timestamp_is_trusted_without_skew_correction() -> None:
    true_time = datetime(2025, 12, 31, 12, 0, tzinfo=UTC)
    query = base(e="pv", ttm=ms(true_time), dtm=ms(true_time), stm=ms(RECEIVED))

    event = one_event(pixel(query))

    assert event.original_timestamp == true_time
    assert event.sent_at is None
    assert event.timestamp == true_time


# --- IP addresses ------------------------------------------------------------------------


def test_request_ip_is_anonymized_and_never_in_the_canonical_json() -> None:
    event = one_event(pixel(base(e="pv", ue_pr="", url="https://shop.example.com/")))

    assert event.context.ip == "x.x.x.0"
    assert RAW_IP not in event.to_json()


def test_ip_and_ua_parameters_override_the_request() -> None:
    seen: list[str | None] = []

    def record(ip: str | None) -> str | None:
        seen.append(ip)
        return anonymize(ip)

    query = base(e="pv", ip="198.51.100.23", ua="SnowplowServer/1.0")
    event = one_event(parse_pixel(query, meta=META, config=CONFIG, anonymize_ip=record))

    assert seen == ["198.51.100.23"]
    assert event.context.ip == "x.x.x.0"
    assert event.context.user_agent == "SnowplowServer/1.0"
    assert "198.51.100.23" not in event.to_json()


# --- nothing raises, nothing is lost -----------------------------------------------------

_KEYS = st.sampled_from(
    [
        "e",
        "aid",
        "duid",
        "uid",
        "dtm",
        "stm",
        "ttm",
        "cx",
        "co",
        "ue_px",
        "ue_pr",
        "res",
        "vid",
        "se_ac",
        "se_va",
        "tr_id",
        "tr_tt",
        "ti_qu",
        "pp_mix",
        "url",
        "ip",
    ]
) | st.text(max_size=5)
_VALUES = (
    st.sampled_from(["pv", "pp", "se", "ue", "tr", "ti", "shop-web", "1", "x", ""]) | st.text()
)


_EVENT_CODES = st.sampled_from(["pv", "pp", "se", "ue", "tr", "ti", "ad"])


@settings(max_examples=300, deadline=None)
@given(st.booleans(), _EVENT_CODES, st.dictionaries(_KEYS, _VALUES, max_size=8))
def test_any_pixel_gives_exactly_one_storable_outcome(
    from_valid: bool, code: str, extra: dict[str, str]
) -> None:
    # Half the cases start from a valid event, so the fuzzing also reaches the mappings.
    query = {**base(e=code), **extra} if from_valid else extra
    parsed = pixel(query, CATCH_ALL_CONFIG)

    assert len(parsed.events) + len(parsed.rejections) == 1
    for event in parsed.events:
        assert RAW_IP not in event.to_json()
    for rejection in parsed.rejections:
        rejection.raw.encode("utf-8")


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(), children),
    max_leaves=8,
)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.dictionaries(_KEYS, _VALUES | _JSON, max_size=8) | _JSON, max_size=4))
def test_any_tp2_item_gives_exactly_one_outcome(items: list[Any]) -> None:
    parsed = tp2(payload(*items), CATCH_ALL_CONFIG)

    assert len(parsed.events) + len(parsed.rejections) == len(items)
    assert sorted(r.index for r in parsed.rejections if r.index is not None) == sorted(
        {r.index for r in parsed.rejections if r.index is not None}
    )
    for event in parsed.events:
        event.to_json()
