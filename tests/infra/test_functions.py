"""Functions built from their topology rows: settings, environment, IAM, triggers."""

from __future__ import annotations

import dataclasses
import re
from typing import Any

import pytest
from aws_cdk import aws_lambda as lambda_

from infra.topology import TOPOLOGY, Function, KinesisSource, SqsSource, env_var

from .conftest import Synth, synth

INGEST = TOPOLOGY.function("ingest")


def _newest_python() -> str:
    names = [n for n in dir(lambda_.Runtime) if re.fullmatch(r"PYTHON_3_\d+", n)]
    newest = max(names, key=lambda n: int(n.rsplit("_", 1)[1]))
    name: str = getattr(lambda_.Runtime, newest).name
    return name


def _function(beacon: Synth, name: str) -> dict[str, Any]:
    props: dict[str, Any] = beacon.resources[
        beacon.logical_id(beacon.stack.functions[name].function)
    ]["Properties"]
    return props


def _statements(beacon: Synth, name: str) -> list[dict[str, Any]]:
    """Every statement of every policy attached to the function's role."""
    role_id = beacon.logical_id(beacon.stack.functions[name].role)
    statements: list[dict[str, Any]] = []
    for policy in beacon.of_type("AWS::IAM::Policy").values():
        if {"Ref": role_id} in policy["Properties"]["Roles"]:
            statements.extend(policy["Properties"]["PolicyDocument"]["Statement"])
    return statements


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _actions(statements: list[dict[str, Any]], service: str) -> list[dict[str, Any]]:
    return [s for s in statements if any(a.startswith(f"{service}:") for a in _listed(s["Action"]))]


def test_ingest_function_settings(beacon: Synth) -> None:
    props = _function(beacon, "ingest")
    assert props["Runtime"] == _newest_python()
    assert props["Architectures"] == ["arm64"]
    assert props["TracingConfig"] == {"Mode": "Active"}
    assert props["MemorySize"] == INGEST.memory_mb
    assert props["Timeout"] == INGEST.timeout_s
    assert props["Handler"] == INGEST.handler
    log_group_id = beacon.logical_id(beacon.stack.functions["ingest"].log_group)
    assert props["LoggingConfig"]["LogGroup"] == {"Ref": log_group_id}
    # Lambda's platform lines only from WARN; the application's JSON lines from INFO.
    assert props["LoggingConfig"]["LogFormat"] == "JSON"
    assert props["LoggingConfig"]["SystemLogLevel"] == "WARN"
    assert props["LoggingConfig"]["ApplicationLogLevel"] == "INFO"
    assert beacon.resources[log_group_id]["Properties"]["RetentionInDays"] == 30


def test_ingest_environment_points_at_the_real_resources(beacon: Synth) -> None:
    env = _function(beacon, "ingest")["Environment"]["Variables"]
    stack = beacon.stack
    expected = {
        env_var("stream", "events"): {"Ref": beacon.logical_id(stack.streams["events"])},
        env_var("bucket", "failed-events"): {
            "Ref": beacon.logical_id(stack.buckets["failed-events"])
        },
        "POWERTOOLS_SERVICE_NAME": "ingest",
        "POWERTOOLS_METRICS_NAMESPACE": "Beacon",
        "POWERTOOLS_LOG_LEVEL": "INFO",
        "BEACON_CONFIG_FILE": "beacon.yaml",
    }
    assert env == expected


def test_ingest_role_is_least_privilege(beacon: Synth) -> None:
    stack = beacon.stack
    statements = _statements(beacon, "ingest")
    role_id = beacon.logical_id(stack.functions["ingest"].role)
    assert "ManagedPolicyArns" not in beacon.resources[role_id]["Properties"]

    events_arn = {"Fn::GetAtt": [beacon.logical_id(stack.streams["events"]), "Arn"]}
    kinesis = _actions(statements, "kinesis")
    assert {a for s in kinesis for a in _listed(s["Action"])} == {
        "kinesis:ListShards",
        "kinesis:PutRecord",
        "kinesis:PutRecords",
    }
    assert all(_listed(s["Resource"]) == [events_arn] for s in kinesis)

    bucket_id = beacon.logical_id(stack.buckets["failed-events"])
    objects = {"Fn::Join": ["", [{"Fn::GetAtt": [bucket_id, "Arn"]}, "/*"]]}
    s3 = _actions(statements, "s3")
    s3_actions = {a for s in s3 for a in _listed(s["Action"])}
    assert "s3:PutObject" in s3_actions
    assert all(a.startswith(("s3:PutObject", "s3:Abort")) for a in s3_actions), s3_actions
    assert all(_listed(s["Resource"]) == [objects] for s in s3)

    secrets = _actions(statements, "secretsmanager")
    # The write keys (and the IP salt when hashing): never the admin key or identifier salt.
    readable = (*stack.secrets.by_role("write_keys"), *stack.secrets.by_role("ip_hash_salt"))
    secret_ids = {beacon.logical_id(s) for s in readable}
    assert {r["Ref"] for s in secrets for r in _listed(s["Resource"])} == secret_ids

    for service in ("dynamodb", "sqs", "iam", "lambda"):
        assert not _actions(statements, service), f"ingest must not touch {service}"
    for statement in statements:
        if "*" in _listed(statement["Resource"]):
            assert set(_listed(statement["Action"])) <= {
                "xray:PutTraceSegments",
                "xray:PutTelemetryRecords",
            }, statement
        assert statement["Effect"] == "Allow"
    logs = _actions(statements, "logs")
    log_group_id = beacon.logical_id(stack.functions["ingest"].log_group)
    assert all(_listed(s["Resource"]) == [{"Fn::GetAtt": [log_group_id, "Arn"]}] for s in logs)


# A consumer row that exists only to exercise the construct's event sources
# ("ingest" is merely code to point at). Non-default values everywhere, so a
# setting that is ignored shows up as a mismatch.
KINESIS = KinesisSource(
    "events",
    batch_size=250,
    max_batching_window_s=3,
    parallelization_factor=4,
    max_retry_attempts=5,
    bisect_on_error=True,
    max_record_age_s=7200,
    report_batch_item_failures=True,
    starting_position="LATEST",
    on_failure_bucket="failed-events",
)
SQS = SqsSource("activations", batch_size=25, max_batching_window_s=2)
CONSUMER = Function(
    "test-consumer",
    step="ingest",
    purpose="test fixture: a Kinesis and SQS consumer",
    kinesis_sources=(KINESIS,),
    sqs_sources=(SQS,),
    writes_streams=("consented",),
    reads_tables=("identity",),
    writes_tables=("profiles",),
)


@pytest.fixture(scope="module")
def consumer_stack() -> Synth:
    topology = dataclasses.replace(TOPOLOGY, functions=(*TOPOLOGY.functions, CONSUMER))
    return synth(topology)


def test_kinesis_event_source_mapping_follows_the_row(consumer_stack: Synth) -> None:
    stack = consumer_stack.stack
    fn_id = consumer_stack.logical_id(stack.functions[CONSUMER.name].function)
    stream_arn = {"Fn::GetAtt": [consumer_stack.logical_id(stack.streams["events"]), "Arn"]}
    (mapping,) = [
        m["Properties"]
        for m in consumer_stack.of_type("AWS::Lambda::EventSourceMapping").values()
        if m["Properties"]["EventSourceArn"] == stream_arn
        and m["Properties"]["FunctionName"] == {"Ref": fn_id}
    ]
    bucket_id = consumer_stack.logical_id(stack.buckets[KINESIS.on_failure_bucket])
    assert mapping["BatchSize"] == KINESIS.batch_size
    assert mapping["MaximumBatchingWindowInSeconds"] == KINESIS.max_batching_window_s
    assert mapping["ParallelizationFactor"] == KINESIS.parallelization_factor
    assert mapping["MaximumRetryAttempts"] == KINESIS.max_retry_attempts
    assert mapping["BisectBatchOnFunctionError"] is KINESIS.bisect_on_error
    assert mapping["MaximumRecordAgeInSeconds"] == KINESIS.max_record_age_s
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert mapping["StartingPosition"] == KINESIS.starting_position
    assert mapping["DestinationConfig"] == {
        "OnFailure": {"Destination": {"Fn::GetAtt": [bucket_id, "Arn"]}}
    }


def test_sqs_event_source_mapping_follows_the_row(consumer_stack: Synth) -> None:
    stack = consumer_stack.stack
    fn_id = consumer_stack.logical_id(stack.functions[CONSUMER.name].function)
    queue_arn = {"Fn::GetAtt": [consumer_stack.logical_id(stack.queues[SQS.queue]), "Arn"]}
    (mapping,) = [
        m["Properties"]
        for m in consumer_stack.of_type("AWS::Lambda::EventSourceMapping").values()
        if m["Properties"]["EventSourceArn"] == queue_arn
        and m["Properties"]["FunctionName"] == {"Ref": fn_id}
    ]
    assert mapping["BatchSize"] == SQS.batch_size
    assert mapping["MaximumBatchingWindowInSeconds"] == SQS.max_batching_window_s
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]


def test_consumer_may_write_failed_batches_but_never_delete_them(consumer_stack: Synth) -> None:
    statements = _statements(consumer_stack, CONSUMER.name)
    s3_actions = {a for s in _actions(statements, "s3") for a in _listed(s["Action"])}
    assert "s3:PutObject" in s3_actions
    assert "s3:ListBucket" in s3_actions
    assert not any(a.startswith(("s3:Delete", "s3:Get")) for a in s3_actions), s3_actions
    kinesis = {a for s in _actions(statements, "kinesis") for a in _listed(s["Action"])}
    assert {"kinesis:GetRecords", "kinesis:GetShardIterator", "kinesis:PutRecords"} <= kinesis
    dynamodb = {a for s in _actions(statements, "dynamodb") for a in _listed(s["Action"])}
    assert "dynamodb:PutItem" in dynamodb  # writes profiles
    sqs = {a for s in _actions(statements, "sqs") for a in _listed(s["Action"])}
    assert "sqs:DeleteMessage" in sqs and "sqs:SendMessage" not in sqs
