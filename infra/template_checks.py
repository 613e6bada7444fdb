"""What a first `cdk deploy` trips on that cfn-lint and cdk-nag do not see.

`problems(template)` is a pure function over a synthesized CloudFormation
template (a dict) and returns one sentence per problem:

1. every `Ref` and `Fn::GetAtt` (also inside `Fn::Sub`) names a resource,
   parameter or pseudo parameter of the template;
2. every function's environment names resources that exist, and its role is
   granted something on each of them (a function told about a table it may not
   touch fails at its first call);
3. every event-source mapping's stream or queue is readable by its function's
   role (Lambda polls with that role), and its on-failure bucket writable;
4. every KMS key that encrypts a stream, table, queue, bucket or secret is
   usable by each role that uses the resource (`kms:Decrypt` to read,
   `kms:GenerateDataKey` to write), and the key's policy lets IAM grant it
   (the account root statement), or the grants count for nothing.

Statements are compared as the template writes them (intrinsics unresolved),
as CDK's grants reference resources: `Fn::GetAtt [X, Arn]`, or a `Fn::Join` that
starts with it (`.../index/*`, `.../*`).
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Mapping
from typing import Any

from infra.iam_policies import actions_of, as_list, references, role_statements

PSEUDO_PARAMETERS = {
    "AWS::AccountId",
    "AWS::NotificationARNs",
    "AWS::NoValue",
    "AWS::Partition",
    "AWS::Region",
    "AWS::StackId",
    "AWS::StackName",
    "AWS::URLSuffix",
}

# What Lambda's poller does with the function's role, per event-source type.
_POLL_ACTIONS = {
    "AWS::Kinesis::Stream": (
        "kinesis:GetRecords",
        "kinesis:GetShardIterator",
        "kinesis:DescribeStream",
        "kinesis:ListShards",
    ),
    "AWS::SQS::Queue": ("sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"),
}

# Where each encrypted resource type names its key.
_KEY_PATHS = {
    "AWS::Kinesis::Stream": ("StreamEncryption", "KeyId"),
    "AWS::DynamoDB::Table": ("SSESpecification", "KMSMasterKeyId"),
    "AWS::SQS::Queue": ("KmsMasterKeyId",),
    "AWS::SecretsManager::Secret": ("KmsKeyId",),
}

_WRITES = (
    "kinesis:PutRecord",
    "kinesis:PutRecords",
    "sqs:SendMessage",
    "s3:PutObject",
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:BatchWriteItem",
)
_READS = (
    "kinesis:GetRecords",
    "sqs:ReceiveMessage",
    "s3:GetObject",
    "dynamodb:GetItem",
    "dynamodb:Query",
    "dynamodb:BatchGetItem",
    "secretsmanager:GetSecretValue",
)


def problems(template: Mapping[str, Any]) -> list[str]:
    resources: Mapping[str, Any] = template.get("Resources", {})
    found = _dangling_references(template)
    roles = _function_roles(resources)
    found += _environment_problems(resources, roles, template)
    found += _event_source_problems(resources, roles, template)
    found += _key_problems(resources, template)
    return found


def _dangling_references(template: Mapping[str, Any]) -> list[str]:
    resources = template.get("Resources", {})
    parameters = template.get("Parameters", {})
    found = []
    for section in ("Resources", "Outputs", "Conditions"):
        for logical, body in template.get(section, {}).items():
            for target, attribute in references(body):
                if target in resources:
                    continue
                if attribute == "Ref" and (target in parameters or target in PSEUDO_PARAMETERS):
                    continue
                kind = "Ref" if attribute == "Ref" else f"Fn::GetAtt {target}.{attribute}"
                found.append(f"{section}.{logical}: {kind} to {target!r}, which does not exist")
    return found


def _function_roles(resources: Mapping[str, Any]) -> dict[str, str]:
    """Lambda function logical id -> its role's logical id."""
    roles = {}
    for logical, resource in resources.items():
        if resource.get("Type") != "AWS::Lambda::Function":
            continue
        role = resource.get("Properties", {}).get("Role")
        if isinstance(role, dict) and "Fn::GetAtt" in role:
            roles[logical] = str(as_list(role["Fn::GetAtt"])[0]).split(".")[0]
    return roles


def _statements(template: Mapping[str, Any], role: str) -> list[dict[str, Any]]:
    if role not in template.get("Resources", {}):
        return []
    return role_statements(template, role)


def _names(resource: Any, logical: str) -> bool:
    """True if a statement's Resource entry refers to the resource `logical`."""
    if resource == "*":
        return True
    return any(target == logical for target, _ in references(resource))


def _allows(
    statements: Iterable[Mapping[str, Any]], action: str, logical: str | None = None
) -> bool:
    for statement in statements:
        if statement.get("Effect") != "Allow":
            continue
        if not any(fnmatch.fnmatchcase(action, pattern) for pattern in actions_of(statement)):
            continue
        if logical is None or any(_names(r, logical) for r in as_list(statement["Resource"])):
            return True
    return False


def _environment_problems(
    resources: Mapping[str, Any], roles: Mapping[str, str], template: Mapping[str, Any]
) -> list[str]:
    found = []
    for function, role in roles.items():
        variables = (
            resources[function].get("Properties", {}).get("Environment", {}).get("Variables", {})
        )
        statements = _statements(template, role)
        for variable, value in variables.items():
            for target, _ in references(value):
                if target not in resources:
                    found.append(f"{function}: environment {variable} names missing {target!r}")
                elif not _grants_something(statements, target, resources[target]):
                    found.append(
                        f"{function}: environment {variable} names {target!r}, "
                        f"but its role {role!r} is granted nothing on it"
                    )
    return found


def _grants_something(
    statements: Iterable[Mapping[str, Any]], logical: str, resource: Mapping[str, Any]
) -> bool:
    """Some Allow statement names the resource (or `*`) with an action of its service."""
    service = str(resource.get("Type", "")).split("::")[1].lower() + ":"
    return any(
        statement.get("Effect") == "Allow"
        and any(a == "*" or a.lower().startswith(service) for a in actions_of(statement))
        and any(_names(r, logical) for r in as_list(statement.get("Resource", [])))
        for statement in statements
    )


def _event_source_problems(
    resources: Mapping[str, Any], roles: Mapping[str, str], template: Mapping[str, Any]
) -> list[str]:
    found = []
    for logical, resource in resources.items():
        if resource.get("Type") != "AWS::Lambda::EventSourceMapping":
            continue
        properties = resource.get("Properties", {})
        functions = [t for t, _ in references(properties.get("FunctionName")) if t in roles]
        sources = [t for t, _ in references(properties.get("EventSourceArn"))]
        if not functions or not sources or sources[0] not in resources:
            found.append(f"{logical}: event-source mapping without a known function or source")
            continue
        role, source = roles[functions[0]], sources[0]
        statements = _statements(template, role)
        for action in _POLL_ACTIONS.get(resources[source]["Type"], ()):
            if not _allows(statements, action, source):
                found.append(f"{logical}: role {role!r} cannot {action} on {source!r}")
        on_failure = properties.get("DestinationConfig", {}).get("OnFailure", {})
        for target, _ in references(on_failure.get("Destination")):
            if resources.get(target, {}).get("Type") == "AWS::S3::Bucket" and not _allows(
                statements, "s3:PutObject", target
            ):
                found.append(f"{logical}: role {role!r} cannot put to on-failure {target!r}")
    return found


def _key_of(resource: Mapping[str, Any]) -> str | None:
    properties = resource.get("Properties", {})
    if resource.get("Type") == "AWS::S3::Bucket":
        rules = properties.get("BucketEncryption", {}).get("ServerSideEncryptionConfiguration", [])
        value = next(
            (r["ServerSideEncryptionByDefault"].get("KMSMasterKeyID") for r in rules), None
        )
    else:
        path = _KEY_PATHS.get(str(resource.get("Type")))
        if path is None:
            return None
        value = properties
        for step in path:
            value = value.get(step, {}) if isinstance(value, dict) else {}
    targets = [t for t, _ in references(value)] if value else []
    return targets[0] if targets else None


def _key_problems(resources: Mapping[str, Any], template: Mapping[str, Any]) -> list[str]:
    found = []
    role_ids = [k for k, v in resources.items() if v.get("Type") == "AWS::IAM::Role"]
    for logical, resource in resources.items():
        key = _key_of(resource)
        if key is None:
            continue
        if key not in resources:
            continue  # a dangling reference, reported above
        if not _key_policy_delegates_to_iam(resources[key]):
            found.append(f"{key}: its key policy does not let IAM policies grant its use")
        for role in role_ids:
            statements = _statements(template, role)
            uses = [a for a in (*_READS, *_WRITES) if _allows(statements, a, logical)]
            if any(a in _READS for a in uses) and not _allows(statements, "kms:Decrypt", key):
                found.append(f"{role}: reads {logical!r} but may not kms:Decrypt with {key!r}")
            if any(a in _WRITES for a in uses) and not _allows(
                statements, "kms:GenerateDataKey", key
            ):
                found.append(
                    f"{role}: writes {logical!r} but may not kms:GenerateDataKey with {key!r}"
                )
    return found


def _key_policy_delegates_to_iam(key: Mapping[str, Any]) -> bool:
    policy = key.get("Properties", {}).get("KeyPolicy", {})
    for statement in as_list(policy.get("Statement", [])):
        principal = statement.get("Principal", {})
        aws = principal.get("AWS") if isinstance(principal, dict) else None
        if statement.get("Effect") == "Allow" and any(
            ":root" in str(p) or "AWS::AccountId" in str(p) for p in as_list(aws)
        ):
            return True
    return False
