"""The touchpoint function as deployed: arm64, read-only on its two tables, only the
write keys and identity-verification keys; provisioned concurrency from the config."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from .conftest import CONFIG, ROOT, Synth, synth
from .test_functions import _actions, _function, _listed, _statements


def test_arm64_small_and_read_only(beacon: Synth) -> None:
    props = _function(beacon, "personalize")
    assert props["Architectures"] == ["arm64"]
    assert props["MemorySize"] == 512 and props["Timeout"] == 5
    statements = _statements(beacon, "personalize")
    dynamodb = {a for s in _actions(statements, "dynamodb") for a in _listed(s["Action"])}
    assert dynamodb and all(
        a.startswith(("dynamodb:BatchGet", "dynamodb:Get", "dynamodb:Query", "dynamodb:Scan",
                      "dynamodb:ConditionCheck", "dynamodb:DescribeTable"))
        for a in dynamodb
    ), dynamodb  # fmt: skip
    for service in ("kinesis", "sqs", "s3"):
        assert not _actions(statements, service), f"personalize must not touch {service}"
    stack = beacon.stack
    readable = (
        *stack.secrets.by_role("write_keys"),
        *stack.secrets.by_role("identity_verification"),
    )
    assert stack.secrets.by_role("identity_verification")
    secrets = _actions(statements, "secretsmanager")
    assert {r["Ref"] for s in secrets for r in _listed(s["Resource"])} == {
        beacon.logical_id(s) for s in readable
    }


def test_no_alias_without_provisioned_concurrency(beacon: Synth) -> None:
    assert not beacon.of_type("AWS::Lambda::Alias")


@pytest.fixture(scope="module")
def warm(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    folder = tmp_path_factory.mktemp("warm")
    text = CONFIG.read_text(encoding="utf-8").replace(
        "provisioned_concurrency: 0", "provisioned_concurrency: 2"
    )
    (folder / "beacon.yaml").write_text(text, encoding="utf-8")
    (folder / "models").symlink_to(ROOT / "models")
    return synth(config_path=Path(folder / "beacon.yaml"))


def test_provisioned_concurrency_from_the_config(warm: Synth) -> None:
    aliases: dict[str, Any] = warm.of_type("AWS::Lambda::Alias")
    assert len(aliases) == 1
    (alias,) = aliases.values()
    assert alias["Properties"]["ProvisionedConcurrencyConfig"] == {
        "ProvisionedConcurrentExecutions": 2
    }
    alias_id = next(iter(aliases))
    integrations = warm.of_type("AWS::ApiGatewayV2::Integration").values()
    uris = [str(i["Properties"]["IntegrationUri"]) for i in integrations]
    assert any(alias_id in uri for uri in uris), uris
