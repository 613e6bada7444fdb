"""Every stream, table, queue, bucket and secret of the topology/config exists
with the settings its row asks for."""

from __future__ import annotations

import aws_cdk as cdk
import pytest
from aws_cdk import aws_kms as kms
from aws_cdk.assertions import Match, Template

from infra.constructs.streams import Streams
from infra.stack import output_id
from infra.topology import TOPOLOGY

from .conftest import Synth, synth


def _key_arn(beacon: Synth) -> dict[str, list[str]]:
    keys = beacon.of_type("AWS::KMS::Key")
    assert len(keys) == 1, "one customer-managed key for the whole stack"
    return {"Fn::GetAtt": [next(iter(keys)), "Arn"]}


def test_one_rotating_customer_managed_key(beacon: Synth) -> None:
    (key,) = beacon.of_type("AWS::KMS::Key").values()
    assert key["Properties"]["EnableKeyRotation"] is True
    assert key["DeletionPolicy"] == "Retain"


def test_streams(beacon: Synth) -> None:
    assert len(beacon.of_type("AWS::Kinesis::Stream")) == len(TOPOLOGY.streams)
    for row in TOPOLOGY.streams:
        props = beacon.resources[beacon.logical_id(beacon.stack.streams[row.name])]["Properties"]
        assert props["ShardCount"] == row.shards
        assert props["RetentionPeriodHours"] == row.retention_hours
        assert props["StreamModeDetails"] == {"StreamMode": "PROVISIONED"}
        assert props["StreamEncryption"] == {"EncryptionType": "KMS", "KeyId": _key_arn(beacon)}


def test_on_demand_streams_have_no_shard_count() -> None:
    stack = cdk.Stack(cdk.App(), "S")
    Streams(stack, "Streams", rows=TOPOLOGY.streams, key=kms.Key(stack, "K"), mode="on-demand")
    template = Template.from_stack(stack)
    template.resource_count_is("AWS::Kinesis::Stream", len(TOPOLOGY.streams))
    template.all_resources_properties(
        "AWS::Kinesis::Stream",
        {"StreamModeDetails": {"StreamMode": "ON_DEMAND"}, "ShardCount": Match.absent()},
    )


def test_one_shard_per_stream_for_the_idle_floor() -> None:
    stack = cdk.Stack(cdk.App(), "S")
    Streams(stack, "Streams", rows=TOPOLOGY.streams, key=kms.Key(stack, "K"), shards=1)
    Template.from_stack(stack).all_resources_properties("AWS::Kinesis::Stream", {"ShardCount": 1})


@pytest.mark.parametrize("value", ["0", "two", "-1", "101"])
def test_a_bad_shard_count_is_rejected(value: str) -> None:
    with pytest.raises(ValueError, match="beacon:shards"):
        synth(context={"beacon:shards": value})


def test_unknown_stream_mode_is_rejected() -> None:
    with pytest.raises(ValueError, match="beacon:streamMode"):
        synth(context={"beacon:streamMode": "sometimes"})


def test_tables(beacon: Synth) -> None:
    assert len(beacon.of_type("AWS::DynamoDB::Table")) == len(TOPOLOGY.tables)
    for row in TOPOLOGY.tables:
        resource = beacon.resources[beacon.logical_id(beacon.stack.tables[row.name])]
        props = resource["Properties"]
        assert resource["DeletionPolicy"] == "Retain"
        assert resource["UpdateReplacePolicy"] == "Retain"
        assert props["BillingMode"] == "PAY_PER_REQUEST"
        assert props["SSESpecification"] == {
            "KMSMasterKeyId": _key_arn(beacon),
            "SSEEnabled": True,
            "SSEType": "KMS",
        }
        assert props["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
        keys = [{"AttributeName": row.partition_key, "KeyType": "HASH"}]
        if row.sort_key:
            keys.append({"AttributeName": row.sort_key, "KeyType": "RANGE"})
        assert props["KeySchema"] == keys
        if row.ttl_attribute:
            assert props["TimeToLiveSpecification"] == {
                "AttributeName": row.ttl_attribute,
                "Enabled": True,
            }
        else:
            assert "TimeToLiveSpecification" not in props
        indexes = {gsi["IndexName"]: gsi for gsi in props.get("GlobalSecondaryIndexes", [])}
        assert set(indexes) == {index.name for index in row.indexes}
        for index in row.indexes:
            schema = [{"AttributeName": index.partition_key, "KeyType": "HASH"}]
            if index.sort_key:
                schema.append({"AttributeName": index.sort_key, "KeyType": "RANGE"})
            assert indexes[index.name]["KeySchema"] == schema


def test_queues(beacon: Synth) -> None:
    assert len(beacon.of_type("AWS::SQS::Queue")) == len(TOPOLOGY.queues)
    queue_ids = {
        row.name: beacon.logical_id(beacon.stack.queues[row.name]) for row in TOPOLOGY.queues
    }
    policies = beacon.of_type("AWS::SQS::QueuePolicy").values()
    for row in TOPOLOGY.queues:
        props = beacon.resources[queue_ids[row.name]]["Properties"]
        assert props["KmsMasterKeyId"] == _key_arn(beacon)
        assert props["MessageRetentionPeriod"] == row.retention_days * 86400
        assert props["VisibilityTimeout"] == row.visibility_timeout_s
        if row.dead_letter:
            assert props["RedrivePolicy"] == {
                "deadLetterTargetArn": {"Fn::GetAtt": [queue_ids[row.dead_letter], "Arn"]},
                "maxReceiveCount": row.max_receive_count,
            }
        else:
            assert "RedrivePolicy" not in props
        assert any(
            {"Ref": queue_ids[row.name]} in p["Properties"]["Queues"] and _denies_insecure(p)
            for p in policies
        ), f"queue {row.name} must enforce SSL"


def test_buckets(beacon: Synth) -> None:
    logs_id = beacon.logical_id(beacon.stack.access_logs_bucket)
    policies = beacon.of_type("AWS::S3::BucketPolicy").values()
    for row in TOPOLOGY.buckets:
        bucket_id = beacon.logical_id(beacon.stack.buckets[row.name])
        resource = beacon.resources[bucket_id]
        props = resource["Properties"]
        assert resource["DeletionPolicy"] == "Retain"
        (sse,) = props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
        assert sse["ServerSideEncryptionByDefault"] == {
            "KMSMasterKeyID": _key_arn(beacon),
            "SSEAlgorithm": "aws:kms",
        }
        assert props["PublicAccessBlockConfiguration"] == {
            "BlockPublicAcls": True,
            "BlockPublicPolicy": True,
            "IgnorePublicAcls": True,
            "RestrictPublicBuckets": True,
        }
        if row.versioned:
            assert props["VersioningConfiguration"] == {"Status": "Enabled"}
        else:
            assert "VersioningConfiguration" not in props
        rule, *by_prefix = props["LifecycleConfiguration"]["Rules"]
        assert rule["ExpirationInDays"] == row.expire_days
        assert rule["Status"] == "Enabled"
        if row.versioned:
            noncurrent = rule["NoncurrentVersionExpiration"]["NoncurrentDays"]
            assert noncurrent == (row.noncurrent_days or row.expire_days)
        assert [(r["Prefix"], r["ExpirationInDays"]) for r in by_prefix] == list(
            row.expire_prefixes
        )
        assert props["LoggingConfiguration"]["DestinationBucketName"] == {"Ref": logs_id}
        assert any(
            p["Properties"]["Bucket"] == {"Ref": bucket_id} and _denies_insecure(p)
            for p in policies
        ), f"bucket {row.name} must enforce SSL"


def test_secrets_come_from_the_config(beacon: Synth) -> None:
    secrets = {
        s["Properties"]["Name"]: s["Properties"]
        for s in beacon.of_type("AWS::SecretsManager::Secret").values()
    }
    expected = {source.write_key_secret for source in beacon.config.sources}
    expected.add(beacon.config.admin.admin_key_secret)
    expected.add(beacon.config.consent.identifier_salt_secret)
    expected |= {d.secret.secret_name for d in beacon.config.destinations}
    # The keys each source's backend signs user ids with (GET /v1/personalize).
    expected |= {
        s.identity_verification_secret
        for s in beacon.config.sources
        if s.identity_verification_secret
    }
    assert set(secrets) == expected
    for props in secrets.values():
        assert props["GenerateSecretString"] == {"ExcludePunctuation": True, "PasswordLength": 32}
        assert props["KmsKeyId"] == _key_arn(beacon)


def test_outputs(beacon: Synth) -> None:
    outputs = beacon.template.to_json()["Outputs"]
    assert "ApiUrl" in outputs
    for source in beacon.config.sources:
        output = outputs[f"WriteKeySecret{output_id(source.name)}"]
        assert output["Value"] == source.write_key_secret
    assert outputs["AdminKeySecret"]["Value"] == beacon.config.admin.admin_key_secret
    bucket_id = beacon.logical_id(beacon.stack.buckets["failed-events"])
    assert outputs["BucketFailedEvents"]["Value"] == {"Ref": bucket_id}


def _denies_insecure(policy: dict[str, object]) -> bool:
    document = policy["Properties"]["PolicyDocument"]  # type: ignore[index]
    return any(
        statement["Effect"] == "Deny"
        and statement.get("Condition", {}).get("Bool", {}).get("aws:SecureTransport") == "false"
        for statement in document["Statement"]
    )


def test_alarms_watch_every_consumer_function_and_dead_letter_queue(beacon: Synth) -> None:
    alarms = beacon.template.find_resources("AWS::CloudWatch::Alarm")
    metrics = [
        (p["Properties"].get("MetricName"), p["Properties"].get("Namespace"))
        for p in alarms.values()
    ]
    consumers = [f for f in TOPOLOGY.functions if f.kinesis_sources]
    assert metrics.count(("IteratorAge", "AWS/Lambda")) == len(consumers)
    assert metrics.count(("Errors", "AWS/Lambda")) == len(TOPOLOGY.functions)
    assert metrics.count(("Throttles", "AWS/Lambda")) == len(TOPOLOGY.functions)
    dead_letters = {q.dead_letter for q in TOPOLOGY.queues if q.dead_letter}
    assert metrics.count(("ApproximateNumberOfMessagesVisible", "AWS/SQS")) == len(dead_letters)
    topics = beacon.template.find_resources("AWS::SNS::Topic")
    [topic] = topics.values()
    assert "KmsMasterKeyId" in topic["Properties"]
    for alarm in alarms.values():
        assert alarm["Properties"]["AlarmActions"]


def test_operations_dashboard_and_the_webhook_and_drift_alarms(beacon: Synth) -> None:
    assert len(beacon.of_type("AWS::CloudWatch::Dashboard")) == 1
    descriptions = {
        a["Properties"]["AlarmDescription"]
        for a in beacon.of_type("AWS::CloudWatch::Alarm").values()
    }
    assert "Beacon webhook: deliveries failing for good (dead-lettered or disabled)" in descriptions
    for model in ("churn", "purchase"):
        assert f"Beacon model {model}: its features drifted from training (PSI)" in descriptions
    assert {f"Beacon {fn.name}: function errors" for fn in TOPOLOGY.functions} <= descriptions


def test_provisioned_tables_scale_on_utilization_within_bounds() -> None:
    provisioned = synth(context={"beacon:tableCapacity": "provisioned"})
    tables = provisioned.of_type("AWS::DynamoDB::Table")
    assert len(tables) == len(TOPOLOGY.tables)
    for resource in tables.values():
        props = resource["Properties"]
        assert props.get("BillingMode", "PROVISIONED") == "PROVISIONED"
        assert props["ProvisionedThroughput"] == {"ReadCapacityUnits": 5, "WriteCapacityUnits": 5}
        for index in props.get("GlobalSecondaryIndexes", []):
            assert index["ProvisionedThroughput"]["WriteCapacityUnits"] == 5
    # Read and write, for each table and each index: one target and one policy each.
    scaled = 2 * (len(TOPOLOGY.tables) + sum(len(t.indexes) for t in TOPOLOGY.tables))
    targets = provisioned.of_type("AWS::ApplicationAutoScaling::ScalableTarget")
    assert len(targets) == scaled
    assert {(t["Properties"]["MinCapacity"], t["Properties"]["MaxCapacity"]) for t in
            targets.values()} == {(5, 4000)}  # fmt: skip
    policies = provisioned.of_type("AWS::ApplicationAutoScaling::ScalingPolicy")
    assert len(policies) == scaled
    for policy in policies.values():
        tracking = policy["Properties"]["TargetTrackingScalingPolicyConfiguration"]
        assert tracking["TargetValue"] == 70


def test_unknown_table_capacity_is_rejected() -> None:
    with pytest.raises(ValueError, match="beacon:tableCapacity"):
        synth(context={"beacon:tableCapacity": "sometimes"})
