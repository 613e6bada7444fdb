"""moto as the local stack runs it enforces identity policies on action and resource ARN.

One role, granted one thing on each resource; every call below is checked by
the moto server in its own process (infra/local/moto_auth.py), as AWS would
check it. The denials carry AWS's error codes, so handlers see what they would
see on AWS.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from infra.local.aws import Credentials, LocalAws, moto_server
from infra.local.local_identity import ACCOUNT, ADMIN_USER
from tests.integration.aws_helpers import HOST, free_port

ARN = f"arn:aws:{{}}:us-east-1:{ACCOUNT}:{{}}"
STREAM, TABLE, INDEX, QUEUE, BUCKET, SECRET = (
    "auth-stream",
    "auth-table",
    "by-email",
    "auth-queue",
    "auth-bucket",
    "auth/secret",
)


def statement(actions: list[str], resource: str) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": actions, "Resource": resource}


@pytest.fixture(scope="module")
def aws() -> Iterator[LocalAws]:
    with moto_server(HOST, free_port()) as server:
        yield server


@pytest.fixture(scope="module")
def role(aws: LocalAws) -> LocalAws:
    """moto as seen by a role granted exactly the statements below."""
    aws.client("kinesis").create_stream(StreamName=STREAM, ShardCount=1)
    aws.client("dynamodb").create_table(
        TableName=TABLE,
        BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "email", "AttributeType": "S"},
        ],
        GlobalSecondaryIndexes=[
            {
                "IndexName": INDEX,
                "KeySchema": [{"AttributeName": "email", "KeyType": "HASH"}],
                "Projection": {"ProjectionType": "KEYS_ONLY"},
            }
        ],
    )
    aws.client("sqs").create_queue(QueueName=QUEUE)
    aws.client("s3").create_bucket(Bucket=BUCKET)
    secret_arn = aws.client("secretsmanager").create_secret(Name=SECRET, SecretString="s")["ARN"]
    table_arn = ARN.format("dynamodb", f"table/{TABLE}")
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            statement(
                ["kinesis:PutRecords", "kinesis:GetRecords"],
                ARN.format("kinesis", f"stream/{STREAM}"),
            ),
            statement(["dynamodb:GetItem", "dynamodb:PutItem"], table_arn),
            statement(["dynamodb:Query"], f"{table_arn}/index/*"),
            statement(["sqs:SendMessage", "sqs:GetQueueUrl"], ARN.format("sqs", QUEUE)),
            statement(["s3:PutObject"], f"arn:aws:s3:::{BUCKET}/allowed/*"),
            statement(["secretsmanager:GetSecretValue"], secret_arn),
        ],
    }
    iam = aws.client("iam")
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:user/{ADMIN_USER}"},
                "Action": "sts:AssumeRole",
            }
        ],
    }
    iam.create_role(RoleName="auth-test", AssumeRolePolicyDocument=json.dumps(trust))
    iam.put_role_policy(RoleName="auth-test", PolicyName="p", PolicyDocument=json.dumps(policy))
    assumed = aws.client("sts").assume_role(
        RoleArn=f"arn:aws:iam::{ACCOUNT}:role/auth-test", RoleSessionName="test"
    )["Credentials"]
    return aws.acting_as(
        Credentials(assumed["AccessKeyId"], assumed["SecretAccessKey"], assumed["SessionToken"])
    )


def denied(call: Any, code: str = "AccessDeniedException") -> str:
    with pytest.raises(ClientError) as error:
        call()
    assert error.value.response["Error"]["Code"] == code
    return str(error.value)


def test_kinesis_is_checked_against_the_stream_arn(role: LocalAws, aws: LocalAws) -> None:
    kinesis = role.client("kinesis")
    kinesis.put_records(StreamName=STREAM, Records=[{"Data": b"x", "PartitionKey": "k"}])
    message = denied(lambda: kinesis.put_record(StreamName=STREAM, Data=b"x", PartitionKey="k"))
    assert "kinesis:PutRecord on resource: arn:aws:kinesis" in message
    # GetRecords takes only an iterator: the stream it points into is the resource.
    iterator = aws.client("kinesis").get_shard_iterator(
        StreamName=STREAM, ShardId="shardId-000000000000", ShardIteratorType="TRIM_HORIZON"
    )["ShardIterator"]
    assert kinesis.get_records(ShardIterator=iterator)["Records"]
    denied(lambda: kinesis.list_shards(StreamName=STREAM))


def test_dynamodb_checks_table_index_and_each_item_of_a_transaction(role: LocalAws) -> None:
    dynamodb = role.client("dynamodb")
    item = {"pk": {"S": "a"}, "email": {"S": "a@example.org"}}
    dynamodb.put_item(TableName=TABLE, Item=item)
    dynamodb.get_item(TableName=TABLE, Key={"pk": {"S": "a"}})
    dynamodb.query(
        TableName=TABLE,
        IndexName=INDEX,
        KeyConditionExpression="email = :e",
        ExpressionAttributeValues={":e": {"S": "a@example.org"}},
    )
    denied(  # the table itself is not granted Query, only its indexes
        lambda: dynamodb.query(
            TableName=TABLE,
            KeyConditionExpression="pk = :p",
            ExpressionAttributeValues={":p": {"S": "a"}},
        )
    )
    # A transaction needs the actions of its items: PutItem is granted, UpdateItem not.
    dynamodb.transact_write_items(TransactItems=[{"Put": {"TableName": TABLE, "Item": item}}])
    denied(
        lambda: dynamodb.transact_write_items(
            TransactItems=[
                {"Put": {"TableName": TABLE, "Item": item}},
                {
                    "Update": {
                        "TableName": TABLE,
                        "Key": {"pk": {"S": "b"}},
                        "UpdateExpression": "SET n = :n",
                        "ExpressionAttributeValues": {":n": {"N": "1"}},
                    }
                },
            ]
        )
    )
    denied(
        lambda: dynamodb.batch_write_item(RequestItems={TABLE: [{"PutRequest": {"Item": item}}]})
    )


def test_sqs_batches_need_the_single_message_action(role: LocalAws) -> None:
    sqs = role.client("sqs")
    url = sqs.get_queue_url(QueueName=QUEUE)["QueueUrl"]
    sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": "1", "MessageBody": "x"}])
    denied(lambda: sqs.receive_message(QueueUrl=url))


def test_s3_checks_bucket_and_key(role: LocalAws) -> None:
    s3 = role.client("s3")
    s3.put_object(Bucket=BUCKET, Key="allowed/one", Body=b"x")
    denied(lambda: s3.put_object(Bucket=BUCKET, Key="elsewhere/one", Body=b"x"), "AccessDenied")
    denied(lambda: s3.get_object(Bucket=BUCKET, Key="allowed/one"), "AccessDenied")


def test_secrets_are_checked_against_the_secret_arn(role: LocalAws, aws: LocalAws) -> None:
    secrets = role.client("secretsmanager")
    assert secrets.get_secret_value(SecretId=SECRET)["SecretString"] == "s"
    aws.client("secretsmanager").create_secret(Name="auth/other", SecretString="o")
    denied(lambda: secrets.get_secret_value(SecretId="auth/other"))
    denied(lambda: secrets.put_secret_value(SecretId=SECRET, SecretString="t"))


def test_unknown_credentials_are_refused(aws: LocalAws) -> None:
    stranger = aws.acting_as(Credentials("AKIANOTANYONEATALL00", "nothing"))
    denied(lambda: stranger.client("kinesis").list_streams(), "UnrecognizedClientException")
    denied(lambda: stranger.client("s3").list_buckets(), "InvalidAccessKeyId")
