"""Issue 13, finding 10: a 200 from the read API always carries a profile.

The consent step records a person at once; the identity step catches up a moment
later. A caller that polls `GET /v1/profiles/{ref}` until it answers 200 used to
get a 200 with only `identifier` and `consent` in between, and read a profile that
did not exist. Now a 200 always has `profile_id`; without one the answer is 404,
with what is known so far.

The real API handler on moto, called with API Gateway's HTTP API events.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from aws_lambda_powertools.utilities import parameters

from functions.api import handler
from functions.shared.config import load_config
from functions.shared.consent_records import CategoryDecision, ConsentState
from functions.shared.dal import clients
from functions.shared.dal.consent_store import ConsentStore
from functions.shared.dal.dynamo import DynamoTable
from functions.shared.dal.identity_store import IdentityStore
from functions.shared.identifiers import Identifier
from functions.shared.identity_records import Profile
from infra.local.gateway import http_api_event
from infra.local.invoke import LocalFunction
from infra.topology import TOPOLOGY, ResourceNames
from tests.integration.aws_helpers import REGION, create_stream, create_table
from tests.integration.conftest import aws_environment, mocked_aws  # noqa: F401 - fixtures
from tests.integration.stream_rig import CONFIG, use_function_environment

NAMES = ResourceNames()
ADMIN_KEY = "hostile-admin-key"
SALT = "hostile-read-api-salt"
EMAIL = "ana@example.org"


class Api:
    def __init__(self) -> None:
        self.dynamodb = boto3.client("dynamodb", region_name=REGION)

    def get(self, ref: str) -> tuple[int, dict[str, Any]]:
        event = http_api_event(
            "GET",
            f"/v1/profiles/{ref}",
            headers={"authorization": f"Bearer {ADMIN_KEY}"},
            path_parameters={"ref": ref},
        )
        answer = LocalFunction(TOPOLOGY.function("api")).invoke(event)
        return int(answer["statusCode"]), json.loads(answer["body"])

    def table(self, logical: str) -> DynamoTable:
        return DynamoTable(NAMES.table(logical), self.dynamodb)


def _drop_caches() -> None:
    for cached in (handler.config, handler.people, handler.profile_data, handler.app):
        cached.cache_clear()
    handler.delivery_data.cache_clear()
    clients.client.cache_clear()
    parameters.clear_caches()  # type: ignore[no-untyped-call]


@pytest.fixture
def api(mocked_aws: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[Api]:  # noqa: F811
    use_function_environment(monkeypatch, "api", NAMES)
    dynamodb = boto3.client("dynamodb", region_name=REGION)
    for logical in ("consent", "identity", "profiles", "deliveries"):
        create_table(dynamodb, NAMES, logical)
    create_stream(boto3.client("kinesis", region_name=REGION), NAMES, "consented")
    config = load_config(CONFIG)
    secrets = boto3.client("secretsmanager", region_name=REGION)
    secrets.create_secret(Name=config.admin.admin_key_secret, SecretString=ADMIN_KEY)
    secrets.create_secret(Name=config.consent.identifier_salt_secret, SecretString=SALT)
    _drop_caches()
    try:
        yield Api()
    finally:
        _drop_caches()


def consent_recorded(api: Api, ref: str) -> None:
    """What the consent step files as soon as it has judged the person's first event."""
    key = Identifier.parse(ref).hashed_key(SALT.encode())
    granted = CategoryDecision(True, datetime.now(UTC), "segment:categoryPreferences", "m-1")
    state = ConsentState(key, {"personalization": [granted]}, changed=True)
    ConsentStore(api.table("consent")).save([state], [])


def identity_caught_up(api: Api, ref: str) -> str:
    """What the identity step writes a moment later: the profile, then its node."""
    store = IdentityStore(api.table("identity"))
    identifier = Identifier.parse(ref)
    profile = Profile("p-ana", datetime.now(UTC), {identifier.type: [identifier.value]})
    store.write_profile(profile)
    store.write_node(identifier, profile.profile_id, None)
    return profile.profile_id


def test_while_identity_catches_up_the_answer_is_404_with_what_is_known(api: Api) -> None:
    consent_recorded(api, f"email:{EMAIL}")

    status, body = api.get(f"email:{EMAIL}")

    assert status == 404
    assert body["error"] == f"no profile for email:{EMAIL}"
    assert body["known"]["consent"]["personalization"]["granted"] is True
    assert "profile_id" not in body


def test_a_200_always_carries_the_profile_id(api: Api) -> None:
    consent_recorded(api, f"email:{EMAIL}")
    profile_id = identity_caught_up(api, f"email:{EMAIL}")

    status, body = api.get(f"email:{EMAIL}")

    assert status == 200
    assert body["profile_id"] == profile_id
    assert body["consent"]["personalization"]["granted"] is True


def test_nobody_known_is_404_with_nothing_known(api: Api) -> None:
    assert api.get("email:nobody@example.org") == (
        404,
        {"error": "no profile for email:nobody@example.org", "known": {}},
    )
