"""A function's IAM policy as the synthesized template gives it, and its references resolved.

Pure functions over the CloudFormation template (a dict): the local stack
reads each function's role from it (`infra/local/iam.py`), so a grant that the
CDK code builds from the wiring table is the one that holds locally too; the
template checks (`infra/template_checks.py`) read the same statements.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

# (logical id, attribute or "Ref") -> value, or None if unknown.
Attributes = Callable[[str, str], str | None]

_SUB_VARIABLE = re.compile(r"\$\{([^}!][^}]*)\}")


def role_statements(template: Mapping[str, Any], role_id: str) -> list[dict[str, Any]]:
    """Every identity-policy statement that applies to the role `role_id`: its
    inline policies and each AWS::IAM::Policy attached to it, in template order."""
    resources: Mapping[str, Any] = template.get("Resources", {})
    role = resources[role_id]
    statements: list[dict[str, Any]] = []
    for policy in role.get("Properties", {}).get("Policies", []):
        statements += _statements(policy["PolicyDocument"])
    for resource in resources.values():
        if resource.get("Type") not in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
            continue
        properties = resource.get("Properties", {})
        if {"Ref": role_id} in properties.get("Roles", []):
            statements += _statements(properties["PolicyDocument"])
    return statements


def _statements(document: Mapping[str, Any]) -> list[dict[str, Any]]:
    statement = document.get("Statement", [])
    return [dict(s) for s in (statement if isinstance(statement, list) else [statement])]


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def actions_of(statement: Mapping[str, Any]) -> list[str]:
    return [str(a) for a in as_list(statement.get("Action", []))]


def references(value: Any) -> list[tuple[str, str]]:
    """Every (logical id, attribute or "Ref") that `value` refers to, pseudo parameters
    (`AWS::...`) excluded."""
    found: list[tuple[str, str]] = []

    def walk(node: Any) -> None:
        if isinstance(node, list):
            for item in node:
                walk(item)
        elif isinstance(node, dict):
            if set(node) == {"Ref"} and isinstance(node["Ref"], str):
                if not node["Ref"].startswith("AWS::"):
                    found.append((node["Ref"], "Ref"))
                return
            if set(node) == {"Fn::GetAtt"}:
                target = node["Fn::GetAtt"]
                logical, _, attribute = (
                    (target[0], None, target[1])
                    if isinstance(target, list)
                    else str(target).partition(".")
                )
                found.append((str(logical), str(attribute)))
                return
            if set(node) == {"Fn::Sub"}:
                body = node["Fn::Sub"]
                text, variables = (body[0], body[1]) if isinstance(body, list) else (body, {})
                for name in _SUB_VARIABLE.findall(text):
                    logical, _, attribute = name.partition(".")
                    if logical not in variables and not logical.startswith("AWS::"):
                        found.append((logical, attribute or "Ref"))
                walk(variables)
                return
            for item in node.values():
                walk(item)

    walk(value)
    return found


def resolve(value: Any, attributes: Attributes, pseudo: Mapping[str, str]) -> Any:
    """`value` with Ref, Fn::GetAtt, Fn::Join, Fn::Sub, Fn::Select and Fn::Split
    evaluated; a reference `attributes` does not know becomes an ARN under
    `arn:aws:cloudformation:::unresolved/` (no real resource: a grant on it allows nothing)."""

    def lookup(logical: str, attribute: str) -> str:
        if attribute == "Ref" and logical in pseudo:
            return pseudo[logical]
        found = attributes(logical, attribute)
        return (
            found
            if found is not None
            else f"arn:aws:cloudformation:::unresolved/{logical}.{attribute}"
        )

    def walk(node: Any) -> Any:
        if isinstance(node, list):
            return [walk(item) for item in node]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            [(key, body)] = node.items()
            if key == "Ref":
                return lookup(str(body), "Ref")
            if key == "Fn::GetAtt":
                logical, attribute = (
                    (body[0], body[1]) if isinstance(body, list) else str(body).split(".", 1)
                )
                return lookup(str(logical), str(attribute))
            if key == "Fn::Join":
                separator, parts = body
                return str(separator).join(str(walk(p)) for p in walk(parts))
            if key == "Fn::Select":
                index, items = body
                return walk(items)[int(walk(index))]
            if key == "Fn::Split":
                separator, text = body
                return str(walk(text)).split(str(separator))
            if key == "Fn::Sub":
                text, variables = (body[0], walk(body[1])) if isinstance(body, list) else (body, {})

                def substitute(match: re.Match[str]) -> str:
                    name = match.group(1)
                    if name in variables:
                        return str(variables[name])
                    logical, _, attribute = name.partition(".")
                    return lookup(logical, attribute or "Ref")

                return _SUB_VARIABLE.sub(substitute, str(text))
        return {key: walk(item) for key, item in node.items()}

    return walk(value)
