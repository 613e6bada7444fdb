"""GET /v1/personalize as plain logic: auth, identity verification, CORS, limits,
redirects and erasure markers, ETag; with in-memory ports (no AWS)."""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from functions.personalize.identifier_cache import IdentifierCache, ProfileResolver
from functions.personalize.touchpoint import PageAnswer, PageRequest, Touchpoint, user_hash
from functions.shared.config import BeaconConfig, Source, load_config
from functions.shared.decision import Decision, StoredDecision
from functions.shared.identifiers import Identifier

ROOT = Path(__file__).resolve().parents[3]
KEY = "local-write-key"
HMAC_KEY = "local-identity-key"
SHOP = "https://shop.example.com"
ANA = Decision(
    personalized=True,
    segments=("cart_abandoners",),
    traits={"first_name": "Ana"},
    scores={"churn": "high"},
)


@dataclass
class Graph:
    nodes: dict[Identifier, str] = field(default_factory=dict)
    calls: int = 0

    def profile_ids(self, identifiers: Sequence[Identifier]) -> dict[Identifier, str]:
        self.calls += 1
        return {i: self.nodes[i] for i in identifiers if i in self.nodes}


@dataclass
class Decisions:
    items: dict[str, StoredDecision] = field(default_factory=dict)
    reads: int = 0

    def decision(self, profile_id: str) -> StoredDecision | None:
        self.reads += 1
        return self.items.get(profile_id)


@pytest.fixture(scope="module")
def config() -> BeaconConfig:
    return load_config(ROOT / "beacon.yaml")


@dataclass
class Rig:
    touchpoint: Touchpoint
    graph: Graph
    decisions: Decisions

    def get(self, origin: str = "", auth: str | None = None, **query: str) -> PageAnswer:
        headers = {"origin": origin} if origin else {}
        if auth is not None:
            headers["authorization"] = "Basic " + base64.b64encode(f"{auth}:".encode()).decode()
        else:
            query.setdefault("writeKey", KEY)
        return self.touchpoint.answer(PageRequest("GET", query, headers))


@pytest.fixture
def rig(config: BeaconConfig) -> Rig:
    graph = Graph(
        {
            Identifier("anonymous_id", "device-1"): "p-ana",
            Identifier("user_id", "u-ana"): "p-ana",
            Identifier("user_id", "u-bob"): "p-bob",
        }
    )
    decisions = Decisions(
        {
            "p-ana": StoredDecision(ANA),
            "p-bob": StoredDecision(
                Decision(True, ("lapsed_big_spenders",), {"first_name": "Bob"})
            ),
        }
    )

    def source_for(key: str) -> str | None:
        return {KEY: "web", "local-server-write-key": "server"}.get(key)

    def identity_key(source: Source) -> str | None:
        return HMAC_KEY if source.identity_verification_secret else None

    touchpoint = Touchpoint(
        config=config,
        source_for_write_key=source_for,
        identity_key=identity_key,
        resolver=ProfileResolver(graph, IdentifierCache()),
        decisions=decisions,
    )
    return Rig(touchpoint, graph, decisions)


def body(answer: PageAnswer) -> dict[str, object]:
    return json.loads(answer.body)  # type: ignore[no-any-return]


def test_a_known_visitor_gets_segments_allowed_traits_and_bands(rig: Rig) -> None:
    answer = rig.get(anonymousId="device-1")
    assert answer.status == 200
    assert body(answer) == {
        "personalized": True,
        "segments": ["cart_abandoners"],
        "traits": {"first_name": "Ana"},
        "scores": {"churn": "high"},
        "recommendations": [],
        "persona": None,
        "experiments": {},
        "verified": False,
    }
    assert answer.headers["Cache-Control"] == "private, no-cache"
    assert answer.headers["ETag"].startswith('"')


def test_basic_auth_works_like_the_query_key(rig: Rig) -> None:
    assert body(rig.get(auth=KEY, anonymousId="device-1"))["personalized"] is True


@pytest.mark.parametrize("key", ["", "wrong", "local-admin-key"])
def test_a_wrong_or_missing_key_is_401(rig: Rig, key: str) -> None:
    answer = rig.get(writeKey=key, anonymousId="device-1")
    assert answer.status == 401
    assert "Ana" not in answer.body
    assert rig.decisions.reads == 0


def test_an_unknown_visitor_gets_defaults(rig: Rig) -> None:
    answer = body(rig.get(anonymousId="never-seen"))
    assert answer["personalized"] is False
    assert answer["segments"] == [] and answer["traits"] == {} and answer["scores"] == {}


def test_user_id_needs_a_valid_hmac(rig: Rig) -> None:
    # Without a hash, or with a wrong one, the user id is not even looked up.
    for user_hash_given in ("", "0" * 64, user_hash("another-key", "u-bob")):
        query = {"userId": "u-bob", "anonymousId": "someone-else"}
        if user_hash_given:
            query["userHash"] = user_hash_given
        answer = body(rig.get(**query))
        assert answer["personalized"] is False and answer["verified"] is False
        assert "Bob" not in json.dumps(answer)
        assert Identifier("user_id", "u-bob") not in rig.touchpoint.resolver.cache._entries
    verified = body(rig.get(userId="u-bob", userHash=user_hash(HMAC_KEY, "u-bob")))
    assert verified["verified"] is True and verified["traits"] == {"first_name": "Bob"}


def test_a_verified_user_wins_over_the_device(rig: Rig) -> None:
    answer = body(
        rig.get(anonymousId="device-1", userId="u-bob", userHash=user_hash(HMAC_KEY, "u-bob"))
    )
    assert answer["traits"] == {"first_name": "Bob"}


def test_a_source_without_a_verification_key_never_uses_user_ids(rig: Rig) -> None:
    answer = body(
        rig.get(
            writeKey="local-server-write-key",
            userId="u-bob",
            userHash=user_hash(HMAC_KEY, "u-bob"),
        )
    )
    assert answer["personalized"] is False and answer["verified"] is False


def test_cors_only_for_the_sources_own_origins(rig: Rig) -> None:
    granted = rig.get(origin=SHOP, anonymousId="device-1")
    assert granted.headers["Access-Control-Allow-Origin"] == SHOP
    assert "Origin" in granted.headers["Vary"]
    refused = rig.get(origin="https://evil.example", anonymousId="device-1")
    assert "Access-Control-Allow-Origin" not in refused.headers
    assert "Origin" in refused.headers["Vary"]
    # The server source allows no browser origin at all.
    server = rig.get(origin=SHOP, writeKey="local-server-write-key", anonymousId="device-1")
    assert "Access-Control-Allow-Origin" not in server.headers


def test_preflight(rig: Rig) -> None:
    ok = rig.touchpoint.answer(PageRequest("OPTIONS", {}, {"origin": SHOP}))
    assert ok.status == 204 and ok.headers["Access-Control-Allow-Origin"] == SHOP
    assert "Authorization" in ok.headers["Access-Control-Allow-Headers"]
    evil = rig.touchpoint.answer(PageRequest("OPTIONS", {}, {"origin": "https://evil.example"}))
    assert "Access-Control-Allow-Origin" not in evil.headers


@pytest.mark.parametrize(
    "query",
    [
        {"anonymousId": "a" * 401},
        {"userId": "u" * 401},
        {"userHash": "not-hex"},
        {"userHash": "a" * 65},
        {"writeKey": "k" * 300},
    ],
)
def test_every_parameter_has_a_limit(rig: Rig, query: dict[str, str]) -> None:
    answer = rig.get(**query)
    assert answer.status == 400
    assert rig.decisions.reads == 0


def test_the_query_string_has_a_limit(rig: Rig) -> None:
    request = PageRequest("GET", {"writeKey": KEY}, {}, raw_query="x" * 5000)
    assert rig.touchpoint.answer(request).status == 400


def test_one_read_per_request_once_the_visitor_is_cached(rig: Rig) -> None:
    for _ in range(10):
        rig.get(anonymousId="device-1")
    assert rig.graph.calls == 1
    assert rig.decisions.reads == 10


def test_an_unknown_visitor_is_asked_again_only_after_the_miss_ttl(rig: Rig) -> None:
    now = [0.0]
    rig.touchpoint.resolver.cache.clock = lambda: now[0]
    rig.get(anonymousId="new-device")
    rig.get(anonymousId="new-device")
    assert rig.graph.calls == 1 and rig.decisions.reads == 0
    now[0] += 3.0
    rig.graph.nodes[Identifier("anonymous_id", "new-device")] = "p-ana"
    assert body(rig.get(anonymousId="new-device"))["personalized"] is True


def test_a_merged_profile_redirects_and_the_cache_follows(rig: Rig) -> None:
    rig.get(anonymousId="device-1")
    rig.decisions.items["p-ana"] = StoredDecision(None, merged_into="p-bob")
    assert body(rig.get(anonymousId="device-1"))["traits"] == {"first_name": "Bob"}
    reads = rig.decisions.reads
    rig.get(anonymousId="device-1")
    assert rig.decisions.reads == reads + 1  # straight to the survivor now


def test_an_erased_person_is_an_unknown_visitor(rig: Rig) -> None:
    rig.get(anonymousId="device-1")
    rig.decisions.items["p-ana"] = StoredDecision(None, erased=True)
    answer = body(rig.get(anonymousId="device-1"))
    assert answer["personalized"] is False and answer["traits"] == {}
    assert Identifier("anonymous_id", "device-1") not in rig.touchpoint.resolver.cache._entries


def test_a_not_personalized_decision_tells_nothing(rig: Rig) -> None:
    rig.decisions.items["p-ana"] = StoredDecision(Decision(personalized=False))
    answer = body(rig.get(anonymousId="device-1"))
    assert answer["personalized"] is False and answer["segments"] == []


def test_todays_allow_list_filters_an_older_decision(rig: Rig) -> None:
    rig.decisions.items["p-ana"] = StoredDecision(
        Decision(True, ("cart_abandoners",), {"first_name": "Ana", "email": "a@b.co", "x": 1})
    )
    assert body(rig.get(anonymousId="device-1"))["traits"] == {"first_name": "Ana"}


def test_etag_and_304(rig: Rig) -> None:
    first = rig.get(anonymousId="device-1")
    again = rig.touchpoint.answer(
        PageRequest(
            "GET",
            {"writeKey": KEY, "anonymousId": "device-1"},
            {"if-none-match": first.headers["ETag"]},
        )
    )
    assert again.status == 304 and again.body == ""
    assert again.headers["ETag"] == first.headers["ETag"]
