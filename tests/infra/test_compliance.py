"""cdk-nag AwsSolutions and cfn-lint on the synthesized stack."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk import Validations
from aws_cdk.assertions import Annotations, Match
from cdk_nag import AwsSolutionsChecks
from cfnlint.api import ManualArgs, lint  # type: ignore[import-untyped]
from constructs import IConstruct

from .conftest import Synth, synth

# cfn-lint rules ignored, each for a reason outside our control:
CFN_LINT_IGNORED = {
    # CDK itself adds DependsOn: <role> to a Lambda function whose Role is
    # already a GetAtt of that role (it orders the role's policy too).
    "W3005",
}


@pytest.fixture(scope="module")
def provisioned() -> Synth:
    """The stack with provisioned, auto-scaled tables (`-c beacon:tableCapacity=...`)."""
    return synth(context={"beacon:tableCapacity": "provisioned"})


@pytest.fixture(params=["on-demand tables", "provisioned tables"])
def stack(request: pytest.FixtureRequest, beacon: Synth) -> Synth:
    if request.param == "on-demand tables":
        return beacon
    chosen: Synth = request.getfixturevalue("provisioned")
    return chosen


def test_cdk_nag_has_no_unacknowledged_findings(stack: Synth) -> None:
    beacon = stack
    # cdk-nag 3 is a policy-validation plugin; validate_scope is its direct
    # entry point (app.py registers it with Validations, which fails synth).
    report = AwsSolutionsChecks(verbose=True).validate_scope(beacon.app)
    findings = [
        f"{v.rule_name} at {[r.construct_path for r in v.violating_resources]}: {v.description}"
        for v in report.violations
    ]
    assert findings == []
    assert report.success


def test_no_error_or_warning_annotations(beacon: Synth) -> None:
    annotations = Annotations.from_stack(beacon.stack)
    nag = Match.string_like_regexp("AwsSolutions-.*")
    assert annotations.find_error("*", nag) == []
    assert annotations.find_warning("*", nag) == []
    assert annotations.find_error("*", Match.any_value()) == []


def test_every_acknowledgment_has_a_specific_reason(beacon: Synth) -> None:
    acknowledged = _acknowledgments(beacon.app)
    assert acknowledged, "the stack acknowledges its nag findings in infra/constructs/nag.py"
    for rule, reason in acknowledged:
        assert rule.removeprefix("Annotation::").startswith("AwsSolutions-"), rule
        assert len(reason) >= 60, f"{rule}: reason too short: {reason!r}"
    rules = {rule.removeprefix("Annotation::") for rule, _ in acknowledged}
    # Never a blanket IAM5: each wildcard finding is named.
    assert "AwsSolutions-IAM5" not in rules


def test_cfn_lint_reports_no_errors(stack: Synth) -> None:
    beacon = stack
    template = json.dumps(beacon.template.to_json())
    matches = lint(template, config=ManualArgs(regions=["us-east-1", "eu-west-1"]))
    problems = [
        f"{m.rule.id} {m.message} ({'/'.join(map(str, m.path))})"
        for m in matches
        if m.rule.id not in CFN_LINT_IGNORED
    ]
    assert problems == []


def _acknowledgments(root: IConstruct) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    for construct in root.node.find_all():
        for entry in construct.node.metadata:
            if entry.type == Validations.ACKNOWLEDGED_RULES_METADATA_KEY:
                data: dict[str, Any] = entry.data
                found.extend((str(k), str(v)) for k, v in data.items())
    return found
