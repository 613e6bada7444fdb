"""The dal's boto3 clients: one per service per container, or per bound session locally."""

from __future__ import annotations

import threading

import boto3
import pytest

from functions.shared.dal import clients


@pytest.fixture(autouse=True)
def region(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")  # no client here makes a call


def session(key: str) -> boto3.session.Session:
    return boto3.session.Session(
        aws_access_key_id=key, aws_secret_access_key="secret", region_name="us-east-1"
    )


def access_key(client: object) -> str:
    return str(client._request_signer._credentials.access_key)  # type: ignore[attr-defined]


def test_without_a_bound_session_every_caller_shares_one_client() -> None:
    assert clients.client("sqs") is clients.client("sqs")
    assert clients.bound_session() is None


def test_a_bound_session_gets_its_own_clients_with_its_credentials() -> None:
    ingest, scoring = session("AKIAINGEST0000000000"), session("AKIASCORING000000000")
    with clients.session_for_clients(ingest):
        first = clients.client("kinesis")
        assert clients.client("kinesis") is first  # cached for the session
        assert access_key(first) == "AKIAINGEST0000000000"
        with clients.session_for_clients(scoring):
            assert access_key(clients.client("kinesis")) == "AKIASCORING000000000"
        assert clients.client("kinesis") is first  # the outer binding is back
    assert clients.client("kinesis") is not first


def test_a_binding_holds_only_in_its_own_thread() -> None:
    seen: list[object] = []
    with clients.session_for_clients(session("AKIAINGEST0000000000")):
        thread = threading.Thread(target=lambda: seen.append(clients.bound_session()))
        thread.start()
        thread.join()
    assert seen == [None]  # a pool thread must be handed the context (webhook/step.py)
