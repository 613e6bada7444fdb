"""Synthesize the Beacon stack once per session and share the template.

The app is built as `cdk synth` builds it: same feature flags (cdk.json's
context), same topology, the repository's beacon.yaml. Bundling reuses
`.build/deps/` (the first run ever downloads the wheels).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Template

from functions.shared.config import BeaconConfig, load_config
from infra.stack import BeaconStack
from infra.topology import TOPOLOGY, Topology

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "beacon.yaml"


@dataclass
class Synth:
    app: cdk.App
    stack: BeaconStack
    config: BeaconConfig
    template: Template

    @property
    def resources(self) -> dict[str, Any]:
        resources: dict[str, Any] = self.template.to_json()["Resources"]
        return resources

    def logical_id(self, construct: Any) -> str:
        """Logical id of an L2 construct's CloudFormation resource."""
        child = construct.node.default_child
        logical: str = self.stack.resolve(child.logical_id)
        return logical

    def of_type(self, cfn_type: str) -> dict[str, Any]:
        return {k: v for k, v in self.resources.items() if v["Type"] == cfn_type}


def cdk_json_context() -> dict[str, Any]:
    context: dict[str, Any] = json.loads((ROOT / "cdk.json").read_text())["context"]
    return context


def synth(
    topology: Topology = TOPOLOGY,
    *,
    config_path: Path = CONFIG,
    context: dict[str, Any] | None = None,
) -> Synth:
    app = cdk.App(context={**cdk_json_context(), **(context or {})})
    config = load_config(config_path)
    stack = BeaconStack(app, "Beacon", topology=topology, config=config, config_path=config_path)
    return Synth(app=app, stack=stack, config=config, template=Template.from_stack(stack))


@pytest.fixture(scope="session")
def beacon() -> Synth:
    return synth()


@pytest.fixture(scope="session")
def template(beacon: Synth) -> Template:
    return beacon.template
