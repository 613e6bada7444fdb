"""GET /v1/personalize answers the public write key, so its callers are anyone.

The real touchpoint handler on moto, called with API Gateway's HTTP API events:
  - a `userId` without a valid HMAC reveals nothing about that user (the answer is
    byte-for-byte the one for a user id nobody has, and the graph is not asked);
  - no identifier, email or phone appears in any answer, even when a visitor typed
    them into allow-listed traits;
  - an origin the source does not list gets no CORS grant; a wrong key gets 401;
  - an erased person answers like an unknown visitor;
  - every parameter has a limit (400, never a 5xx).
"""

from __future__ import annotations

import base64
import json
import urllib.parse
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from aws_lambda_powertools.utilities import parameters

from functions.personalize import handler
from functions.personalize.touchpoint import user_hash
from functions.profiles.state import Membership, ProfileState
from functions.profiles.stored import StoredProfile
from functions.shared.config import load_config
from functions.shared.dal import clients
from functions.shared.dal.dynamo import DynamoTable
from functions.shared.dal.identity_store import IdentityStore
from functions.shared.dal.profiles_store import ProfilesStore
from functions.shared.decision import DecisionRules, decision_from
from functions.shared.identifiers import Identifier
from infra.local.gateway import http_api_event
from infra.local.invoke import LocalFunction
from infra.topology import TOPOLOGY, ResourceNames
from tests.integration.aws_helpers import REGION, create_table
from tests.integration.conftest import aws_environment, mocked_aws  # noqa: F401 - fixtures
from tests.integration.stream_rig import CONFIG, use_function_environment

NAMES = ResourceNames()
WRITE_KEY = "hostile-write-key"
IDENTITY_KEY = "hostile-identity-key"
NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
SHOP = "https://shop.example.com"
EMAIL, PHONE = "ana@example.org", "+14155550100"


class Page:
    """Requests as a browser (or anyone) sends them, to the real handler."""

    def __init__(self) -> None:
        self.dynamodb = boto3.client("dynamodb", region_name=REGION)

    def get(self, headers: dict[str, str] | None = None, **query: str) -> dict[str, Any]:
        event = http_api_event(
            "GET",
            "/v1/personalize",
            route_key="GET /v1/personalize",
            headers={k.lower(): v for k, v in (headers or {}).items()},
            query=query,
            raw_query=urllib.parse.urlencode(query),
        )
        return LocalFunction(TOPOLOGY.function("personalize")).invoke(event)  # type: ignore[no-any-return]

    def store(self) -> ProfilesStore:
        return ProfilesStore(DynamoTable(NAMES.table("profiles"), self.dynamodb))

    def link(self, identifier: Identifier, profile_id: str) -> None:
        IdentityStore(DynamoTable(NAMES.table("identity"), self.dynamodb)).write_node(
            identifier, profile_id, None
        )


def _drop_caches() -> None:
    handler.touchpoint.cache_clear()
    clients.client.cache_clear()
    parameters.clear_caches()  # type: ignore[no-untyped-call]


@pytest.fixture
def page(mocked_aws: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[Page]:  # noqa: F811
    use_function_environment(monkeypatch, "personalize", NAMES)
    dynamodb = boto3.client("dynamodb", region_name=REGION)
    for logical in ("identity", "profiles"):
        create_table(dynamodb, NAMES, logical)
    config = load_config(CONFIG)
    secrets = boto3.client("secretsmanager", region_name=REGION)
    for source in config.sources:
        key = WRITE_KEY if source.name == "web" else f"other-{source.name}"
        secrets.create_secret(Name=source.write_key_secret, SecretString=key)
        if source.identity_verification_secret:
            secrets.create_secret(
                Name=source.identity_verification_secret, SecretString=IDENTITY_KEY
            )
    _drop_caches()
    try:
        rig = Page()
        # Ana: a consenting customer who typed contact data where a name goes.
        state = ProfileState(
            traits={"first_name": EMAIL, "email": EMAIL, "phone": PHONE},
            memberships={"cart_abandoners": Membership(NOW)},
            consent={"personalization": True},
        )
        rules = DecisionRules.from_config(config)
        decision = decision_from(
            traits={**state.traits, "first_name": f"Ana {PHONE}"},
            computed={"favourite_category": EMAIL, "lifecycle_stage": "purchase"},
            memberships={"cart_abandoners": False},
            consent=state.consent,
            scores={"churn": {"probability": 0.91, "band": "high"}},
            rules=rules,
        )
        ana = StoredProfile("p-ana", state)
        rig.store().save(ana, due_at=None, at=NOW, decision=decision)
        rig.link(Identifier("user_id", "u-ana"), "p-ana")
        rig.link(Identifier("anonymous_id", "device-ana"), "p-ana")
        yield rig
    finally:
        _drop_caches()


def body(answer: dict[str, Any]) -> dict[str, Any]:
    return json.loads(answer["body"])  # type: ignore[no-any-return]


def test_a_user_id_without_a_valid_hmac_reveals_nothing(page: Page) -> None:
    known = page.get(writeKey=WRITE_KEY, userId="u-ana")
    nobody = page.get(writeKey=WRITE_KEY, userId="u-nobody")
    forged = page.get(writeKey=WRITE_KEY, userId="u-ana", userHash=user_hash("guess", "u-ana"))
    assert known["body"] == nobody["body"] == forged["body"]
    assert known["headers"]["ETag"] == nobody["headers"]["ETag"]
    assert body(known)["personalized"] is False and body(known)["verified"] is False
    # Another user's valid hash does not open this one either.
    swapped = page.get(writeKey=WRITE_KEY, userId="u-ana", userHash=user_hash(IDENTITY_KEY, "x"))
    assert swapped["body"] == nobody["body"]
    verified = page.get(
        writeKey=WRITE_KEY, userId="u-ana", userHash=user_hash(IDENTITY_KEY, "u-ana")
    )
    assert body(verified)["personalized"] is True and body(verified)["verified"] is True


def test_no_identifier_email_or_phone_in_any_answer(page: Page) -> None:
    answers = [
        page.get(writeKey=WRITE_KEY, anonymousId="device-ana"),
        page.get(writeKey=WRITE_KEY, userId="u-ana", userHash=user_hash(IDENTITY_KEY, "u-ana")),
    ]
    for answer in answers:
        told = body(answer)
        assert told["personalized"] is True and told["segments"] == ["cart_abandoners"]
        assert told["scores"] == {"churn": "high"}
        text = answer["body"] + json.dumps(answer["headers"])
        for secret in (EMAIL, PHONE, "4155550100", "p-ana", "u-ana", "device-ana", "0.91"):
            assert secret not in text, secret


def test_a_disallowed_origin_gets_no_cors_grant(page: Page) -> None:
    evil = page.get({"Origin": "https://evil.example"}, writeKey=WRITE_KEY, anonymousId="x")
    assert "Access-Control-Allow-Origin" not in evil["headers"]
    assert "Origin" in evil["headers"]["Vary"]
    shop = page.get({"Origin": SHOP}, writeKey=WRITE_KEY, anonymousId="x")
    assert shop["headers"]["Access-Control-Allow-Origin"] == SHOP
    # The other source's key is valid, but that source lists no browser origin.
    other = page.get({"Origin": SHOP}, writeKey="other-server", anonymousId="x")
    assert other["statusCode"] == 200
    assert "Access-Control-Allow-Origin" not in other["headers"]


@pytest.mark.parametrize(
    "auth",
    [
        {"query": {"writeKey": "wrong"}},
        {"query": {}},
        {"query": {"writeKey": "local-admin-key"}},
        {"headers": {"Authorization": "Basic " + base64.b64encode(b"wrong:").decode()}},
        {"headers": {"Authorization": "Basic !!!not-base64"}},
        {"headers": {"Authorization": f"Bearer {WRITE_KEY}"}},
    ],
)
def test_a_wrong_key_is_401_and_tells_nothing(page: Page, auth: dict[str, Any]) -> None:
    answer = page.get(auth.get("headers"), anonymousId="device-ana", **auth.get("query", {}))
    assert answer["statusCode"] == 401
    assert "cart_abandoners" not in answer["body"]


def test_an_erased_person_answers_like_an_unknown_visitor(page: Page) -> None:
    before = page.get(writeKey=WRITE_KEY, anonymousId="device-ana")
    assert body(before)["personalized"] is True  # and the mapping is cached now
    page.store().erase(["p-ana"], NOW)
    after = page.get(writeKey=WRITE_KEY, anonymousId="device-ana")
    unknown = page.get(writeKey=WRITE_KEY, anonymousId="never-seen")
    assert after["body"] == unknown["body"]


@pytest.mark.parametrize(
    "query",
    [
        {"anonymousId": "a" * 100_000},
        {"userId": "u" * 401, "userHash": "0" * 64},
        {"userHash": "<script>" * 8},
        {"writeKey": "k" * 10_000},
        {"anonymousId": "x", "padding": "p" * 5000},
    ],
)
def test_every_parameter_has_a_limit(page: Page, query: dict[str, str]) -> None:
    answer = page.get(**({"writeKey": WRITE_KEY} | query))
    assert answer["statusCode"] == 400
    assert "<script>" not in answer["body"]
