"""Each local function acts as its own role, with the policy the synthesized template gives it.

One source: the CDK stack builds every function's grants from the wiring table
(`infra/constructs/pipeline_function.py`); this module synthesizes that stack,
reads each function role's statements from the template
(`infra/iam_policies.py`), resolves their references to the ARNs of the
resources the local stack created, and creates in moto one role per function
with exactly those statements. The local runtime assumes each role and runs
the function's handler, event-source poller and on-failure writes with its
credentials; moto enforces IAM (`infra/local/moto_auth.py`), so a missing grant
fails locally as AccessDenied where it would fail on AWS.

Synthesizing takes seconds (jsii, and bundling on a first run), so the result
is cached in `.build/iam/<key>.json`, the key a hash of everything the
template's policies follow from: the topology, the config file, the stack
and construct code, cdk.json and the aws-cdk-lib version (docs/deploy.md).
"""

from __future__ import annotations

import copy
import hashlib
import json
import multiprocessing
import sys
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from infra.bundling import exclusive_lock
from infra.iam_policies import actions_of, as_list, resolve, role_statements
from infra.local.aws import Credentials, LocalAws
from infra.local.local_identity import ACCOUNT, ADMIN_USER
from infra.topology import ResourceNames, Topology

_ROOT = Path(__file__).resolve().parents[2]
CACHE_DIR = _ROOT / ".build" / "iam"
ROLE_PREFIX = "beacon-local-"
POLICY_NAME = "from-synthesized-template"
# moto does not expire assumed-role credentials; 12 h is what AWS would allow at most.
SESSION_SECONDS = 43_200


@dataclass(frozen=True)
class SynthesizedPolicies:
    """What the template says about each function's role, references unresolved."""

    template: dict[str, Any]
    roles: dict[str, str]  # function name -> role logical id
    # logical id -> (kind, name): "stream"/"table"/"queue"/"bucket" by topology
    # name, "secret" by its configured name, "key" and "log-group" by logical id
    resources: dict[str, tuple[str, str]] = field(default_factory=dict)

    def statements(self, function: str) -> list[dict[str, Any]]:
        return role_statements(self.template, self.roles[function])

    def to_json(self) -> str:
        return json.dumps(
            {"template": self.template, "roles": self.roles, "resources": self.resources}
        )

    @classmethod
    def from_json(cls, text: str) -> SynthesizedPolicies:
        data = json.loads(text)
        return cls(
            template=data["template"],
            roles=data["roles"],
            resources={k: (v[0], v[1]) for k, v in data["resources"].items()},
        )


def synthesized_policies(topology: Topology, config_path: Path) -> SynthesizedPolicies:
    """The synthesized stack's policies, from the cache when its inputs are unchanged."""
    path = CACHE_DIR / f"{inputs_key(topology, config_path)}.json"
    if path.exists():
        return SynthesizedPolicies.from_json(path.read_text())
    path.parent.mkdir(parents=True, exist_ok=True)
    # Stacks starting side by side (tests) synthesize once: the others wait and read.
    with exclusive_lock(path.parent / ".lock"):
        if path.exists():
            return SynthesizedPolicies.from_json(path.read_text())
        print(  # a minute without output would look like a hang
            "Synthesizing the CDK stack to read each function's IAM policy "
            "(once; cached in .build/iam) ...",
            file=sys.stderr,
            flush=True,
        )
        _synthesize_in_a_child(topology, config_path, path)
        return SynthesizedPolicies.from_json(path.read_text())


def _synthesize_in_a_child(topology: Topology, config_path: Path, path: Path) -> None:
    """jsii keeps a node process and a few hundred MB for the life of the process that
    imports aws_cdk, and its exit can hang once node is gone: the local stack runs
    for hours, so it synthesizes in a process of its own that writes the cache file."""
    child = multiprocessing.get_context("spawn").Process(
        target=_write_synthesized, args=(topology, config_path, path), daemon=True
    )
    child.start()
    while child.is_alive() and not path.exists():
        child.join(timeout=0.5)
    child.join(timeout=10)  # the file is written: give jsii a moment to exit, no more
    if child.is_alive():
        child.kill()
    if not path.exists():
        raise RuntimeError(f"synthesizing the stack failed (exit status {child.exitcode})")


def _write_synthesized(topology: Topology, config_path: Path, path: Path) -> None:
    policies = synthesize(topology, config_path)
    with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False, suffix=".tmp") as out:
        out.write(policies.to_json())
    Path(out.name).replace(path)


def inputs_key(topology: Topology, config_path: Path) -> str:
    """What the roles' policies follow from. Of the config, only the secrets' names:
    editing a segment or a destination's URL must not cost a synth."""
    from importlib.metadata import version

    from functions.shared.config import load_config

    config = load_config(config_path)
    secrets = [
        *(s.write_key_secret for s in config.sources),
        config.admin.admin_key_secret,
        config.consent.identifier_salt_secret,
        *(d.secret.secret_name for d in config.destinations),
        config.ingest.ip_hash_salt_secret or "",
    ]
    digest = hashlib.sha256()
    digest.update(repr(topology).encode())
    digest.update(json.dumps(sorted(secrets)).encode())
    digest.update(version("aws-cdk-lib").encode())
    sources = [_ROOT / "cdk.json", Path(__file__), *sorted((_ROOT / "infra").glob("*.py"))]
    sources += sorted((_ROOT / "infra" / "constructs").glob("*.py"))
    for source in sources:
        digest.update(source.name.encode())
        digest.update(source.read_bytes())
    return digest.hexdigest()[:24]


def synthesize(topology: Topology, config_path: Path) -> SynthesizedPolicies:
    """Synthesize the Beacon stack as `cdk synth` does (cdk.json's context)."""
    import aws_cdk as cdk

    from functions.shared.config import load_config
    from infra.stack import BeaconStack

    context = json.loads((_ROOT / "cdk.json").read_text())["context"]
    app = cdk.App(context=context)
    stack = BeaconStack(
        app,
        "Beacon",
        topology=topology,
        config=load_config(config_path),
        config_path=config_path,
    )
    template: dict[str, Any] = app.synth().get_stack_by_name("Beacon").template

    def logical_id(construct: Any) -> str:
        return str(stack.resolve(construct.node.default_child.logical_id))

    resources: dict[str, tuple[str, str]] = {}
    groups: tuple[tuple[str, Mapping[str, Any]], ...] = (
        ("stream", stack.streams),
        ("table", stack.tables),
        ("queue", stack.queues),
        ("bucket", stack.buckets),
    )
    for kind, constructs in groups:
        for name, construct in constructs.items():
            resources[logical_id(construct)] = (kind, name)
    for logical, resource in template["Resources"].items():
        if resource["Type"] == "AWS::SecretsManager::Secret":
            resources[logical] = ("secret", resource["Properties"]["Name"])
        elif resource["Type"] == "AWS::KMS::Key":
            resources[logical] = ("key", logical)
        elif resource["Type"] == "AWS::Logs::LogGroup":
            resources[logical] = ("log-group", logical)
    roles = {name: logical_id(fn.role) for name, fn in stack.functions.items()}
    return SynthesizedPolicies(template=template, roles=roles, resources=resources)


def local_attributes(
    policies: SynthesizedPolicies,
    names: ResourceNames,
    secret_arns: Mapping[str, str],
    region: str,
    endpoint: str,
) -> Any:
    """(logical id, attribute) -> the value it has on the local stack."""

    def attribute(logical: str, name: str) -> str | None:
        if logical not in policies.resources:
            return None
        kind, row = policies.resources[logical]
        if kind == "stream":
            physical = names.stream(row)
            arn = f"arn:aws:kinesis:{region}:{ACCOUNT}:stream/{physical}"
        elif kind == "table":
            physical = names.table(row)
            arn = f"arn:aws:dynamodb:{region}:{ACCOUNT}:table/{physical}"
        elif kind == "queue":
            physical = f"{endpoint}/{ACCOUNT}/{names.queue(row)}"  # Ref is the URL
            arn = f"arn:aws:sqs:{region}:{ACCOUNT}:{names.queue(row)}"
        elif kind == "bucket":
            physical = names.bucket(row)
            arn = f"arn:aws:s3:::{physical}"
        elif kind == "secret":
            physical = arn = secret_arns.get(row, f"arn:aws:secretsmanager:::missing/{row}")
        elif kind == "log-group":  # nothing logs to CloudWatch locally
            physical = logical
            arn = f"arn:aws:logs:{region}:{ACCOUNT}:log-group:{logical}:*"
        else:  # the KMS key: nothing is encrypted locally (docs/deploy.md)
            physical = arn = f"arn:aws:kms:{region}:{ACCOUNT}:key/{logical}"
        return physical if name == "Ref" else arn

    return attribute


def policy_document(statements: list[dict[str, Any]]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": statements}


def without_action(document: Mapping[str, Any], action: str) -> dict[str, Any]:
    """`document` with `action` taken out of every statement (and emptied ones dropped)."""
    statements = []
    for statement in copy.deepcopy(document["Statement"]):
        if "Action" in statement:
            kept = [a for a in actions_of(statement) if a != action]
            if not kept:
                continue
            statement["Action"] = kept
        statements.append(statement)
    return policy_document(statements)


@dataclass
class FunctionRoles:
    """The functions' roles in moto, their policy documents, and their credentials."""

    aws: LocalAws
    documents: dict[str, dict[str, Any]]
    credentials: dict[str, Credentials]

    @classmethod
    def create(
        cls, aws: LocalAws, topology: Topology, names: ResourceNames, policies: SynthesizedPolicies
    ) -> FunctionRoles:
        """Create (or, on a kept moto, update) one role per function and assume each."""
        iam, sts = aws.client("iam"), aws.client("sts")
        secret_arns = {
            s["Name"]: s["ARN"]
            for page in aws.client("secretsmanager").get_paginator("list_secrets").paginate()
            for s in page["SecretList"]
        }
        attributes = local_attributes(policies, names, secret_arns, aws.region, aws.endpoint)
        pseudo = {
            "AWS::Partition": "aws",
            "AWS::Region": aws.region,
            "AWS::AccountId": ACCOUNT,
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::StackName": "Beacon",
        }
        # Lambda assumes a function's role on AWS; locally the admin plays Lambda.
        trust = json.dumps(
            policy_document(
                [
                    {
                        "Effect": "Allow",
                        "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:user/{ADMIN_USER}"},
                        "Action": "sts:AssumeRole",
                    }
                ]
            )
        )
        existing = {r["RoleName"] for r in iam.list_roles()["Roles"]}
        documents: dict[str, dict[str, Any]] = {}
        credentials: dict[str, Credentials] = {}
        for fn in topology.functions:
            role = ROLE_PREFIX + fn.name
            if role not in existing:
                iam.create_role(RoleName=role, AssumeRolePolicyDocument=trust)
            documents[fn.name] = policy_document(
                resolve(policies.statements(fn.name), attributes, pseudo)
            )
            iam.put_role_policy(
                RoleName=role,
                PolicyName=POLICY_NAME,
                PolicyDocument=json.dumps(documents[fn.name]),
            )
            assumed = sts.assume_role(
                RoleArn=f"arn:aws:iam::{ACCOUNT}:role/{role}",
                RoleSessionName=fn.name,
                DurationSeconds=SESSION_SECONDS,
            )["Credentials"]
            credentials[fn.name] = Credentials(
                assumed["AccessKeyId"], assumed["SecretAccessKey"], assumed["SessionToken"]
            )
        return cls(aws=aws, documents=documents, credentials=credentials)

    def put(self, function: str, document: Mapping[str, Any]) -> None:
        self.aws.client("iam").put_role_policy(
            RoleName=ROLE_PREFIX + function,
            PolicyName=POLICY_NAME,
            PolicyDocument=json.dumps(document),
        )

    @contextmanager
    def without(self, function: str, action: str) -> Iterator[dict[str, Any]]:
        """The function's role lacks `action` inside the block (moto reads a role's
        policies on every request, so it bites at once); restored on exit."""
        reduced = without_action(self.documents[function], action)
        if reduced == self.documents[function]:
            raise ValueError(f"{function}'s role has no {action} to take away")
        self.put(function, reduced)
        try:
            yield reduced
        finally:
            self.put(function, self.documents[function])


def granted(document: Mapping[str, Any], action: str) -> list[str]:
    """The resources an Allow statement of `document` grants `action` on (exact names)."""
    return [
        str(r)
        for s in document["Statement"]
        if s.get("Effect") == "Allow" and action in actions_of(s)
        for r in as_list(s.get("Resource", []))
    ]
