"""The first-deploy checks (infra/template_checks.py) on the synthesized template.

The real template has no problem; each fixture breaks it in one way a first
`cdk deploy` would trip on, and the checks name it.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest
from aws_cdk.assertions import Template

from infra.iam_policies import actions_of, references
from infra.template_checks import problems

Mutation = Callable[[dict[str, Any]], None]


@pytest.fixture(scope="module")
def synthesized(template: Template) -> dict[str, Any]:
    synthesized: dict[str, Any] = template.to_json()
    return synthesized


def of_type(template: dict[str, Any], cfn_type: str) -> dict[str, Any]:
    return {k: v for k, v in template["Resources"].items() if v["Type"] == cfn_type}


def function(template: dict[str, Any], name: str) -> dict[str, Any]:
    [found] = [
        v
        for k, v in of_type(template, "AWS::Lambda::Function").items()
        if k.startswith(f"Fn{name}Function")
    ]
    return found


def role_policy(template: dict[str, Any], name: str) -> dict[str, Any]:
    [found] = [
        v
        for k, v in of_type(template, "AWS::IAM::Policy").items()
        if k.startswith(f"Fn{name}RoleDefaultPolicy")
    ]
    return found


def drop_action(template: dict[str, Any], name: str, action: str) -> None:
    statements = role_policy(template, name)["Properties"]["PolicyDocument"]["Statement"]
    for statement in statements:
        statement["Action"] = [a for a in actions_of(statement) if a != action]


def broken_environment_reference(template: dict[str, Any]) -> None:
    variables = function(template, "api")["Properties"]["Environment"]["Variables"]
    variables["BEACON_TABLE_PROFILES"] = {"Ref": "TablesprofilesTYPO0000"}


def broken_output(template: dict[str, Any]) -> None:
    template["Outputs"]["TableProfiles"]["Value"] = {"Fn::GetAtt": ["NoSuchTable", "Arn"]}


def environment_without_grant(template: dict[str, Any]) -> None:
    """The ingest function is told about the profiles table but granted nothing on it."""
    variables = function(template, "ingest")["Properties"]["Environment"]["Variables"]
    [profiles] = [k for k in of_type(template, "AWS::DynamoDB::Table") if "profiles" in k]
    variables["BEACON_TABLE_PROFILES"] = {"Ref": profiles}


def consumer_cannot_read(template: dict[str, Any]) -> None:
    drop_action(template, "segments", "kinesis:GetRecords")


def consumer_cannot_keep_failures(template: dict[str, Any]) -> None:
    drop_action(template, "consent", "s3:PutObject")


def reader_cannot_decrypt(template: dict[str, Any]) -> None:
    drop_action(template, "api", "kms:Decrypt")


def writer_cannot_encrypt(template: dict[str, Any]) -> None:
    drop_action(template, "ingest", "kms:GenerateDataKey*")


def key_policy_without_the_account(template: dict[str, Any]) -> None:
    [key] = of_type(template, "AWS::KMS::Key").values()
    statements = key["Properties"]["KeyPolicy"]["Statement"]
    key["Properties"]["KeyPolicy"]["Statement"] = [
        s for s in statements if ":root" not in str(s.get("Principal"))
    ]


def test_the_synthesized_template_has_no_problem(synthesized: dict[str, Any]) -> None:
    assert problems(synthesized) == []


def test_the_checks_see_every_mapping_and_environment(synthesized: dict[str, Any]) -> None:
    """Not vacuous: the template has what the checks walk over."""
    mappings = of_type(synthesized, "AWS::Lambda::EventSourceMapping")
    assert len(mappings) == 5  # four stream consumers and the webhook's queue
    variables = function(synthesized, "api")["Properties"]["Environment"]["Variables"]
    assert sum(len(references(v)) for v in variables.values()) >= 4


@pytest.mark.parametrize(
    ("mutation", "expected"),
    [
        (broken_environment_reference, "Ref to 'TablesprofilesTYPO0000', which does not exist"),
        (broken_environment_reference, "environment BEACON_TABLE_PROFILES names missing"),
        (broken_output, "Outputs.TableProfiles: Fn::GetAtt NoSuchTable.Arn"),
        (environment_without_grant, "is granted nothing on it"),
        (consumer_cannot_read, "cannot kinesis:GetRecords on 'Streamsresolved"),
        (consumer_cannot_keep_failures, "cannot put to on-failure 'Bucketsfailedevents"),
        (reader_cannot_decrypt, "may not kms:Decrypt"),
        (writer_cannot_encrypt, "may not kms:GenerateDataKey"),
        (key_policy_without_the_account, "key policy does not let IAM policies grant"),
    ],
    ids=lambda v: v.__name__ if callable(v) else "",
)
def test_a_broken_template_is_caught(
    synthesized: dict[str, Any], mutation: Mutation, expected: str
) -> None:
    broken = copy.deepcopy(synthesized)
    mutation(broken)
    found = problems(broken)
    assert any(expected in problem for problem in found), found
