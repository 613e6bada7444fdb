"""Sending messages to an SQS queue: SendMessageBatch, 10 per call, retrying what failed."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Unpack

from botocore.exceptions import ClientError

from functions.shared.dal.clients import client
from functions.shared.dal.retry import Retrying, RetryOptions

MAX_PER_CALL = 10  # SendMessageBatch's limit
MAX_DELAY_S = 900  # DelaySeconds' limit
MAX_VISIBILITY_S = 12 * 3600  # ChangeMessageVisibility's limit


class QueueSender(Retrying):
    """`send` returns the ids of the messages SQS would not take after every retry
    (with backoff, `retry.py`); the caller must not acknowledge what produced them."""

    def __init__(
        self, queue_name: str, sqs: Any | None = None, **retry: Unpack[RetryOptions]
    ) -> None:
        super().__init__(**retry)
        self.queue_name = queue_name
        self._sqs = sqs
        self._url: str | None = None
        self.calls = 0

    @property
    def sqs(self) -> Any:
        return self._sqs or client("sqs")

    @property
    def url(self) -> str:
        if self._url is None:
            self._url = str(self.sqs.get_queue_url(QueueName=self.queue_name)["QueueUrl"])
        return self._url

    def send(
        self, messages: Sequence[tuple[str, bytes]], delays: Mapping[str, int] | None = None
    ) -> list[str]:
        """(id, body) pairs, each hidden for `delays[id]` seconds (at most 900, SQS's
        limit); ids must be unique within the call."""
        failed: list[str] = []
        for start in range(0, len(messages), MAX_PER_CALL):
            chunk = dict(messages[start : start + MAX_PER_CALL])
            failed += self._send_chunk(chunk, delays or {})
        return failed

    def hide(self, receipt_handle: str, seconds: int) -> None:
        """Keep a received message invisible for `seconds` (at most 12 h) before it comes back."""
        self.calls += 1
        self.sqs.change_message_visibility(
            QueueUrl=self.url,
            ReceiptHandle=receipt_handle,
            VisibilityTimeout=max(0, min(seconds, MAX_VISIBILITY_S)),
        )

    def _send_chunk(self, chunk: dict[str, bytes], delays: Mapping[str, int]) -> list[str]:
        def send(pending: dict[str, bytes], _: int) -> dict[str, bytes]:
            entries = [
                {
                    "Id": _entry_id(n),
                    "MessageBody": body.decode("utf-8"),
                    "DelaySeconds": max(0, min(delays.get(message_id, 0), MAX_DELAY_S)),
                }
                for n, (message_id, body) in enumerate(pending.items())
            ]
            ids = list(pending)
            self.calls += 1
            try:
                answer = self.sqs.send_message_batch(QueueUrl=self.url, Entries=entries)
            except ClientError:
                return pending  # throttled or unavailable: all of them again
            refused = {int(f["Id"].removeprefix("m")) for f in answer.get("Failed", [])}
            return {ids[n]: pending[ids[n]] for n in sorted(refused)}

        return list(self.retry_pending(chunk, send))


def _entry_id(n: int) -> str:
    return f"m{n}"
