"""Reading a role's statements from a template, resolving its references, and the checks
of infra/template_checks.py on a small hand-written template (the synthesized one is
checked in tests/infra/test_template_checks.py)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from infra.iam_policies import references, resolve, role_statements
from infra.local.iam import granted, policy_document, without_action
from infra.template_checks import problems

FIXTURE = json.loads((Path(__file__).parent / "fixtures" / "broken_reference.json").read_text())
PSEUDO = {"AWS::Partition": "aws", "AWS::Region": "us-east-1", "AWS::AccountId": "123456789012"}


def attributes(logical: str, attribute: str) -> str | None:
    if logical != "Stream":
        return None
    return (
        "events" if attribute == "Ref" else "arn:aws:kinesis:us-east-1:123456789012:stream/events"
    )


def test_a_role_gets_the_statements_of_the_policies_attached_to_it() -> None:
    statements = role_statements(FIXTURE, "Role")
    reads = ["kinesis:GetRecords", "kinesis:GetShardIterator", "kinesis:DescribeStream"]
    assert [s["Action"] for s in statements] == [
        [*reads, "kinesis:ListShards"],
        ["kinesis:PutRecords"],
    ]


def test_references_resolve_to_local_values() -> None:
    [reading, writing] = resolve(role_statements(FIXTURE, "Role"), attributes, PSEUDO)
    stream = "arn:aws:kinesis:us-east-1:123456789012:stream/events"
    assert reading["Resource"] == stream
    assert writing["Resource"] == stream  # Fn::Sub with pseudo parameters and a Ref
    joined = {"Fn::Join": ["", [{"Fn::GetAtt": ["Stream", "Arn"]}, "/consumer/*"]]}
    assert resolve(joined, attributes, PSEUDO) == stream + "/consumer/*"
    unknown = resolve({"Fn::GetAtt": ["Elsewhere", "Arn"]}, attributes, PSEUDO)
    assert unknown == "arn:aws:cloudformation:::unresolved/Elsewhere.Arn"


def test_references_are_found_in_every_form() -> None:
    assert references({"Fn::Sub": "x/${Stream}/${Role.Arn}/${AWS::Region}"}) == [
        ("Stream", "Ref"),
        ("Role", "Arn"),
    ]
    assert references({"Fn::GetAtt": "Role.Arn"}) == [("Role", "Arn")]
    assert references({"Ref": "AWS::AccountId"}) == []


def test_taking_an_action_away_keeps_the_rest() -> None:
    document = policy_document(resolve(role_statements(FIXTURE, "Role"), attributes, PSEUDO))
    reduced = without_action(document, "kinesis:PutRecords")
    assert len(reduced["Statement"]) == 1  # the emptied statement is gone
    assert granted(reduced, "kinesis:PutRecords") == []
    assert granted(reduced, "kinesis:GetRecords") == [
        "arn:aws:kinesis:us-east-1:123456789012:stream/events"
    ]
    assert document["Statement"][1]["Action"] == ["kinesis:PutRecords"]  # not mutated


def test_the_fixture_s_broken_reference_is_found() -> None:
    found = problems(FIXTURE)
    assert "Resources.Function: Ref to 'Streem', which does not exist" in found
    assert "Function: environment BEACON_STREAM_EVENTS names missing 'Streem'" in found
    assert len(found) == 2  # and nothing else: the mapping's role can read its stream


def test_the_fixed_fixture_has_no_problem_until_the_mapping_cannot_read() -> None:
    fixed: dict[str, Any] = copy.deepcopy(FIXTURE)
    fixed["Resources"]["Function"]["Properties"]["Environment"]["Variables"] = {
        "BEACON_STREAM_EVENTS": {"Ref": "Stream"}
    }
    assert problems(fixed) == []
    statement = fixed["Resources"]["RolePolicy"]["Properties"]["PolicyDocument"]["Statement"][0]
    statement["Action"].remove("kinesis:GetShardIterator")
    assert problems(fixed) == ["Mapping: role 'Role' cannot kinesis:GetShardIterator on 'Stream'"]
