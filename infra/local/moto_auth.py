"""IAM enforcement in the local stack's moto process: what moto lacks for Beacon.

moto can authenticate requests and evaluate identity policies (its
`INITIAL_NO_AUTH_ACTION_COUNT`), but for most services it checks the action
against the resource `*` only: a policy scoped to a stream or a table ARN, as
every CDK grant is, then allows nothing. It also names the wrong action for
DynamoDB transactions (IAM has no `dynamodb:TransactWriteItems`; AWS checks
`PutItem`/`UpdateItem`/`DeleteItem`/`ConditionCheckItem` on each table) and
answers a denial to the JSON-protocol services in XML, which botocore cannot
read (the code becomes `403` instead of `AccessDeniedException`).

`apply()` fixes that for the services the handlers call:
- Kinesis: the stream ARN (from `StreamName`/`StreamARN`, or the stream a
  `GetRecords` shard iterator points into);
- DynamoDB: the table ARN, `.../index/<name>` for a query on an index, every
  table of a batch, and the per-item actions of a transaction;
- SQS: the single-message action of a batch call (`SendMessageBatch` needs
  `sqs:SendMessage`, as on AWS);
- Secrets Manager: the secret's ARN (its random suffix included);
- SQS: moto finds the queue ARN itself, except for `GetQueueUrl`;
and turns every refusal of a JSON-protocol call into the error AWS sends
(`AccessDeniedException`, `UnrecognizedClientException`). S3 moto checks
with bucket and key ARNs already. `enforce()` creates the admin identity
(`infra/local/local_identity.py`) and switches enforcement on from the
first request. docs/deploy.md lists what moto does not evaluate.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlparse

from moto import settings
from moto.core.authorization import ActionAuthenticatorMixin
from moto.core.exceptions import (
    AccessDeniedError,
    InvalidClientTokenIdError,
    JsonRESTError,
    SignatureDoesNotMatchError,
)
from moto.dynamodb.responses import DynamoHandler
from moto.iam.access_control import IAMRequest
from moto.iam.models import iam_backends
from moto.kinesis.responses import KinesisResponse
from moto.kinesis.utils import decompose_shard_iterator
from moto.secretsmanager.models import secretsmanager_backends
from moto.secretsmanager.responses import SecretsManagerResponse
from moto.sqs.responses import SQSResponse

from infra.local.local_identity import (
    ACCOUNT,
    ADMIN_ACCESS_KEY_ID,
    ADMIN_POLICY,
    ADMIN_SECRET_ACCESS_KEY,
    ADMIN_USER,
)

# (action without the service prefix, resource ARN) pairs a request needs.
Needs = list[tuple[str, str]]
Resolver = Callable[[Any, str], Needs]

_TRANSACT_WRITE = {
    "Put": "PutItem",
    "Update": "UpdateItem",
    "Delete": "DeleteItem",
    "ConditionCheck": "ConditionCheckItem",
}

# IAM has no action for SQS's batch calls: AWS checks the single-message action.
_SQS_BATCH = {
    "SendMessageBatch": "SendMessage",
    "DeleteMessageBatch": "DeleteMessage",
    "ChangeMessageVisibilityBatch": "ChangeMessageVisibility",
}

_applied = False


def apply() -> None:
    """Patch moto's request authorization in this process (idempotent)."""
    global _applied
    if _applied:
        return
    patched: tuple[tuple[Any, Resolver], ...] = (
        (KinesisResponse, _kinesis_needs),
        (DynamoHandler, _dynamodb_needs),
        (SecretsManagerResponse, _secrets_needs),
        (SQSResponse, _sqs_needs),
    )
    for response_class, resolver in patched:
        response_class._authenticate_and_authorize_normal_action = _authorizer(resolver)
    _applied = True


def enforce() -> None:
    """Create the admin user with its fixed keys, then enforce IAM on every request."""
    backend = iam_backends[ACCOUNT]["aws"]
    backend.create_user(region_name="us-east-1", user_name=ADMIN_USER)
    backend.put_user_policy(ADMIN_USER, "administrator", ADMIN_POLICY)
    key = backend.create_access_key(ADMIN_USER)
    del backend.access_keys[key.physical_resource_id]
    key.access_key_id = ADMIN_ACCESS_KEY_ID
    key.secret_access_key = ADMIN_SECRET_ACCESS_KEY
    backend.access_keys[key.physical_resource_id] = key
    settings.INITIAL_NO_AUTH_ACTION_COUNT = 0
    ActionAuthenticatorMixin.request_count = 0


def _authorizer(resolver: Resolver) -> Callable[[Any, str], None]:
    def authorize(self: Any, resource: str = "*") -> None:
        if ActionAuthenticatorMixin.request_count < settings.INITIAL_NO_AUTH_ACTION_COUNT:
            ActionAuthenticatorMixin.request_count += 1
            return
        path = self.raw_path
        query = urlparse(self.uri).query
        if query:
            path += "?" + query
        json_protocol = bool(self.headers.get("X-Amz-Target"))
        signed = False
        for action, arn in resolver(self, resource):
            try:
                request = IAMRequest(
                    account_id=self.current_account,
                    method=self.method,
                    path=path,
                    data=self.data,
                    body=self.raw_body,
                    headers=self.headers,
                    action=action,
                )
                if not signed:
                    request.check_signature()
                    signed = True
                request.check_action_permitted(arn)
            except AccessDeniedError as error:
                if not json_protocol:
                    raise
                raise JsonRESTError(
                    "AccessDeniedException",
                    f"{error.message} on resource: {arn} because no identity-based policy"
                    f" allows the {request._action} action",
                ) from None
            except InvalidClientTokenIdError:
                if not json_protocol:
                    raise
                raise JsonRESTError(
                    "UnrecognizedClientException",
                    "The security token included in the request is invalid.",
                ) from None
            except SignatureDoesNotMatchError as error:
                if not json_protocol:
                    raise
                raise JsonRESTError("InvalidSignatureException", error.message) from None

    return authorize


def _region(self: Any) -> str:
    return str(self.region)


def _kinesis_needs(self: Any, _resource: str) -> Needs:
    action = self._get_action()
    arn = self._get_param("StreamARN")
    name = self._get_param("StreamName")
    if not arn and not name and self._get_param("ShardIterator"):
        name = decompose_shard_iterator(self._get_param("ShardIterator"))[0]
    if not arn and name:
        arn = f"arn:aws:kinesis:{_region(self)}:{self.current_account}:stream/{name}"
    return [(action, arn or "*")]


def _table_arn(self: Any, table: str) -> str:
    return f"arn:aws:dynamodb:{_region(self)}:{self.current_account}:table/{table}"


def _dynamodb_needs(self: Any, _resource: str) -> Needs:
    action = self._get_action()
    body = getattr(self, "params", None) or {}
    if action == "TransactWriteItems":
        return [
            (item_action, _table_arn(self, item[kind]["TableName"]))
            for item in body.get("TransactItems", [])
            for kind, item_action in _TRANSACT_WRITE.items()
            if kind in item
        ]
    if action == "TransactGetItems":
        return [
            ("GetItem", _table_arn(self, item["Get"]["TableName"]))
            for item in body.get("TransactItems", [])
            if "Get" in item
        ]
    if action in ("BatchGetItem", "BatchWriteItem"):
        return [(action, _table_arn(self, table)) for table in body.get("RequestItems", {})]
    table = body.get("TableName")
    if not table:
        return [(action, "*")]
    arn = _table_arn(self, table)
    if action in ("Query", "Scan") and body.get("IndexName"):
        arn += f"/index/{body['IndexName']}"
    return [(action, arn)]


def _secrets_needs(self: Any, _resource: str) -> Needs:
    action = self._get_action()
    secret_id = self._get_param("SecretId")
    secret = (
        secretsmanager_backends[self.current_account][_region(self)].secrets.get(secret_id)
        if secret_id
        else None
    )
    return [(action, secret.arn if secret is not None else "*")]


def _sqs_needs(self: Any, resource: str) -> Needs:
    action = self._get_action()
    action = _SQS_BATCH.get(action, action)
    if action == "GetQueueUrl" and self._get_param("QueueName"):
        resource = (
            f"arn:aws:sqs:{_region(self)}:{self.current_account}:{self._get_param('QueueName')}"
        )
    return [(action, resource)]
