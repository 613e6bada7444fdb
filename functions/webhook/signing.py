"""Standard Webhooks signatures (https://www.standardwebhooks.com).

`webhook-signature` is `v1,<base64 HMAC-SHA256 of "id.timestamp.body">`; while
a secret is being rotated the destination's secret value holds the new and the
old one, and each gets its own signature, space-separated, so a receiver that
knows either accepts the message.
"""

from __future__ import annotations

import base64
import secrets as random_source
from collections.abc import Sequence
from datetime import UTC, datetime

from standardwebhooks import Webhook

from functions.shared.destinations import signing_secrets

__all__ = ["generate_secret", "sign", "signature_headers", "signing_secrets"]


def generate_secret(size: int = 32) -> str:
    """A new `whsec_` secret (24 to 64 random bytes, as the specification asks)."""
    if not 24 <= size <= 64:
        raise ValueError("a signing secret has 24 to 64 bytes")
    return "whsec_" + base64.b64encode(random_source.token_bytes(size)).decode("ascii")


def sign(msg_id: str, timestamp: int, body: bytes, secrets: Sequence[str]) -> str:
    """The `webhook-signature` value: one `v1,...` per secret, in the given order."""
    if not secrets:
        raise ValueError("at least one signing secret is needed")
    # The library signs text; bodies are UTF-8 JSON. Its `sign` reads a naive
    # datetime as UTC, so hand it UTC.
    at = datetime.fromtimestamp(timestamp, UTC)
    text = body.decode("utf-8")
    return " ".join(Webhook(secret).sign(msg_id, at, text) for secret in secrets)


def signature_headers(
    msg_id: str, timestamp: int, body: bytes, secrets: Sequence[str]
) -> dict[str, str]:
    """`webhook-id`, `webhook-timestamp` (Unix seconds) and `webhook-signature`."""
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(msg_id, timestamp, body, secrets),
    }
