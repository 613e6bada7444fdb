"""Deploy confidence on the local stack: least-privilege roles that bite, and `beacon smoke`.

A permission missing from a function's role fails locally, where it would fail on AWS.

The local stack gives each function a role with the statements the synthesized
template gives it (infra/local/iam.py) and moto enforces them. Here one action
is taken out of one function's role at a time (Kinesis, DynamoDB, S3, SQS): the
step that needs it fails with AccessDenied on the call that needs it; once the
action is back, the same traffic goes through. `beacon smoke`, the check to
run after a deploy, passes against the same stack and fails on a wrong key.
"""

from __future__ import annotations

import base64
import json
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import botocore.client
import pytest

from cli import main as cli_main
from infra.iam_policies import actions_of, resolve
from infra.local.iam import synthesized_policies
from infra.local.runtime import LocalSettings, LocalStack
from infra.topology import TOPOLOGY
from tests.e2e.conftest import free_port

ROOT = Path(__file__).resolve().parents[2]
WRITE_KEY = "local-write-key"
DENIED = ("AccessDeniedException", "AccessDenied")


class Denials:
    """Every AccessDenied a function's boto3 client got: (function, operation)."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str]] = []
        self.functions_by_key: dict[str, str] = {}
        self._lock = threading.Lock()

    def record(self, access_key: str | None, operation: str) -> None:
        with self._lock:
            self.seen.append((self.functions_by_key.get(access_key or "", "?"), operation))

    def since(self, mark: int) -> list[tuple[str, str]]:
        with self._lock:
            return self.seen[mark:]


@pytest.fixture(scope="module")
def denials() -> Iterator[Denials]:
    found = Denials()
    original = botocore.client.BaseClient._make_api_call

    def recording(client: Any, operation: str, params: Any) -> Any:
        try:
            return original(client, operation, params)
        except botocore.exceptions.ClientError as error:
            if error.response.get("Error", {}).get("Code") in DENIED:
                credentials = client._request_signer._credentials
                found.record(credentials.access_key if credentials else None, operation)
            raise

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(botocore.client.BaseClient, "_make_api_call", recording)
        yield found


@pytest.fixture(scope="module")
def stack(denials: Denials) -> Iterator[LocalStack]:
    settings = LocalSettings(
        config_file=ROOT / "beacon.yaml", port=free_port(), aws_port=free_port()
    )
    with LocalStack(settings) as running:
        assert running.roles is not None
        denials.functions_by_key = {
            c.access_key_id: name for name, c in running.roles.credentials.items()
        }
        yield running


def request(
    stack: LocalStack, method: str, path: str, body: Any = None, admin: bool = False
) -> tuple[int, Any]:
    headers = {"content-type": "application/json"}
    if admin:
        headers["Authorization"] = f"Bearer {stack.admin_key}"
    else:
        headers["Authorization"] = "Basic " + base64.b64encode(f"{WRITE_KEY}:".encode()).decode()
    data = json.dumps(body).encode() if body is not None else None
    call = urllib.request.Request(stack.url + path, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(call, timeout=30) as answer:
            return answer.status, json.loads(answer.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


CONSENTED = {"consent": {"categoryPreferences": {"analytics": True, "personalization": True}}}


def identify(stack: LocalStack) -> str:
    """A consented person with an email: a profile, segments and activations follow."""
    user = f"lp-{uuid.uuid4().hex[:10]}"
    status, _ = request(
        stack,
        "POST",
        "/v1/identify",
        {"userId": user, "traits": {"email": f"{user}@example.org"}, "context": CONSENTED},
    )
    assert status == 200
    return user


def profile_status(stack: LocalStack, user: str) -> int:
    return request(stack, "GET", f"/v1/profiles/user_id:{user}", admin=True)[0]


def wait_for_profile(stack: LocalStack, user: str, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while profile_status(stack, user) != 200:
        assert time.monotonic() < deadline, f"no profile for {user}"
        time.sleep(0.2)


def test_every_role_holds_exactly_the_template_statements(stack: LocalStack) -> None:
    """One source: moto's role policy is the template's statements, references resolved."""
    assert stack.roles is not None and stack.aws is not None
    policies = synthesized_policies(TOPOLOGY, ROOT / "beacon.yaml")
    iam = stack.aws.client("iam")
    for fn in TOPOLOGY.functions:
        stored = iam.get_role_policy(
            RoleName=f"beacon-local-{fn.name}", PolicyName="from-synthesized-template"
        )
        statements = stored["PolicyDocument"]["Statement"]
        template = policies.statements(fn.name)
        # moto would never apply a conditioned statement (docs/deploy.md): none may appear.
        assert not [s for s in template if "Condition" in s], fn.name
        assert [actions_of(s) for s in statements] == [actions_of(s) for s in template]
        resources = json.dumps([s.get("Resource") for s in statements])
        assert "unresolved" not in resources
    assert resolve({"Ref": "AWS::Region"}, lambda *_: None, {"AWS::Region": "us-east-1"})


def test_kinesis_ingest_without_put_records(stack: LocalStack, denials: Denials) -> None:
    assert stack.roles is not None
    mark = len(denials.seen)
    with stack.roles.without("ingest", "kinesis:PutRecords"):
        status, _ = request(stack, "POST", "/v1/track", {"userId": "u", "event": "Viewed"})
        assert status >= 500  # never a 200 for an event that is not durably in Kinesis
    assert ("ingest", "PutRecords") in denials.since(mark)
    wait_for_profile(stack, identify(stack))


def test_dynamodb_read_api_without_batch_get_item(stack: LocalStack, denials: Denials) -> None:
    assert stack.roles is not None
    user = identify(stack)
    wait_for_profile(stack, user)
    mark = len(denials.seen)
    with stack.roles.without("api", "dynamodb:BatchGetItem"):
        assert profile_status(stack, user) >= 500
    assert ("api", "BatchGetItem") in denials.since(mark)
    assert profile_status(stack, user) == 200


def test_s3_ingest_cannot_keep_a_failed_event(stack: LocalStack, denials: Denials) -> None:
    assert stack.roles is not None
    mark = len(denials.seen)
    invalid = {"userId": "u"}  # a track call without its event: a failed event
    with stack.roles.without("ingest", "s3:PutObject"):
        status, _ = request(stack, "POST", "/v1/track", invalid)
        assert status >= 500  # refused and not recorded: the client must retry
    assert ("ingest", "PutObject") in denials.since(mark)
    assert request(stack, "POST", "/v1/track", invalid)[0] == 400


def test_sqs_scoring_without_send_message(stack: LocalStack, denials: Denials) -> None:
    assert stack.roles is not None
    assert stack.wait_until_drained(60)
    mark = len(denials.seen)
    webhook = stack.functions["webhook"]
    with stack.roles.without("scoring", "sqs:SendMessage"):
        identify(stack)
        deadline = time.monotonic() + 60
        while ("scoring", "SendMessageBatch") not in denials.since(mark):
            assert time.monotonic() < deadline, "scoring never tried to send an activation"
            time.sleep(0.2)
        assert stack.wait_until_drained(90)
    delivered_before = webhook.invocations
    wait_for_profile(stack, identify(stack))
    assert stack.wait_until_drained(60)
    assert webhook.invocations > delivered_before  # activations flow again


def test_smoke_sends_an_event_and_reads_the_profile_back(
    stack: LocalStack, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli_main.main(["smoke", "--endpoint", stack.url, "--admin-key", stack.admin_key]) == 0
    out = capsys.readouterr().out
    assert out.startswith("smoke: OK: 2 events accepted in ")
    user = out.split("user_id:")[1].split()[0]
    assert profile_status(stack, user) == 200


def test_smoke_fails_loudly(stack: LocalStack, capsys: pytest.CaptureFixture[str]) -> None:
    wrong_key = ["smoke", "--endpoint", stack.url, "--write-key", "not-the-key"]
    assert cli_main.main(wrong_key) == 1
    assert "identify: 401" in capsys.readouterr().err
    assert stack.roles is not None
    with stack.roles.without("api", "dynamodb:BatchGetItem"):  # the read API cannot read
        assert cli_main.main(["smoke", "--endpoint", stack.url, "--timeout", "20"]) == 1
    assert "read API: 5" in capsys.readouterr().err
