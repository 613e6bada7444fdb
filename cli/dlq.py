"""`beacon dlq list` and `beacon dlq replay`: what the webhook step gave up on, and
sending it again once the destination works.

A replay sends each dead letter back to the `activations` queue as a delivery
task of the next round, so it gets the destination's whole retry schedule again
and its attempts stay in the delivery log; a destination disabled by a 410 is
enabled again first (replaying to it is the operator saying so).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from functions.shared.dal.deliveries_store import DeliveriesStore
from functions.webhook.step import DeadLetter

PEEK_S = 30  # listed messages are hidden while the listing runs, so none is read twice


def _receive(sqs: Any, url: str, hide_s: int) -> Iterator[dict[str, Any]]:
    while True:
        messages = sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=hide_s, WaitTimeSeconds=0
        ).get("Messages", [])
        if not messages:
            return
        yield from messages


def list_dead_letters(sqs: Any, dlq_url: str) -> list[dict[str, Any]]:
    """Every dead letter, summarised; they stay in the queue."""
    listed = []
    peeked = []
    for message in _receive(sqs, dlq_url, PEEK_S):
        peeked.append(message["ReceiptHandle"])
        letter = DeadLetter.model_validate_json(message["Body"])
        listed.append(
            {
                "destination": letter.task.destination,
                "activation_id": letter.task.activation.id,
                "type": letter.task.activation.type,
                "profile_id": letter.task.activation.profile_id,
                "round": letter.task.round,
                "reason": letter.reason,
                "attempts": len(letter.attempts),
                "dead_lettered_at": letter.dead_lettered_at.isoformat(),
            }
        )
    for handle in peeked:
        sqs.change_message_visibility(QueueUrl=dlq_url, ReceiptHandle=handle, VisibilityTimeout=0)
    return listed


def replay(
    sqs: Any,
    dlq_url: str,
    activations_url: str,
    deliveries: DeliveriesStore,
    destination: str | None = None,
) -> int:
    """Send dead letters (of one destination, or all) back for delivery; returns how many."""
    replayed = 0
    enabled: set[str] = set()
    for message in _receive(sqs, dlq_url, 120):
        letter = DeadLetter.model_validate_json(message["Body"])
        task = letter.task
        if destination is not None and task.destination != destination:
            sqs.change_message_visibility(
                QueueUrl=dlq_url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
            )
            continue
        if task.destination not in enabled:
            deliveries.enable(task.destination)
            enabled.add(task.destination)
        again = task.model_copy(update={"round": task.round + 1, "not_before": None})
        sqs.send_message(QueueUrl=activations_url, MessageBody=again.model_dump_json())
        sqs.delete_message(QueueUrl=dlq_url, ReceiptHandle=message["ReceiptHandle"])
        replayed += 1
    return replayed
