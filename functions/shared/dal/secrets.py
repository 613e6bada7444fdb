"""Secret values (write keys, admin key, salts) from Secrets Manager, cached per container."""

from __future__ import annotations

import hmac
from collections.abc import Sequence
from functools import cache
from typing import Any

from aws_lambda_powertools.utilities.parameters import SecretsProvider
from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError
from botocore.exceptions import BotoCoreError, ClientError

from functions.shared.config import Source
from functions.shared.dal.clients import client

# Five minutes: a rotated key is picked up soon, and a busy function makes
# about one Secrets Manager call per secret per container per five minutes.
SECRET_CACHE_SECONDS = 300


# What `secret_value` raises when Secrets Manager fails (missing, denied, throttled).
SECRET_STORE_ERRORS: tuple[type[Exception], ...] = (GetParameterError, ClientError, BotoCoreError)


@cache
def _provider(secrets_client: Any) -> SecretsProvider:
    # One cache per client: the function's own (locally, each function has its role).
    return SecretsProvider(boto3_client=secrets_client)


def secret_value(name: str) -> str:
    value = _provider(client("secretsmanager")).get(name, max_age=SECRET_CACHE_SECONDS)
    if isinstance(value, str):
        return value
    if isinstance(value, bytes):
        return value.decode("utf-8")
    raise GetParameterError(f"secret {name!r} holds no string")


def source_for_write_key(sources: Sequence[Source], key: str) -> str | None:
    """The name of the source whose write key is `key`, compared in constant time."""
    match = None
    for source in sources:
        if hmac.compare_digest(secret_value(source.write_key_secret).encode(), key.encode()):
            match = source.name
    return match
