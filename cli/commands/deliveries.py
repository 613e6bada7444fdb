"""`beacon deliveries TYPE:VALUE` (a person's webhook deliveries, read/admin API) and
`beacon dlq list|replay` (what the webhook step gave up on, from the dead-letter queue)."""

from __future__ import annotations

import argparse
import json
from typing import Any

from cli.commands import Verbs
from cli.commands.people import person_verb
from cli.resources import Clients, aws_arguments, names


def register(verbs: Verbs[Any]) -> None:
    person_verb(
        verbs, "deliveries", "a person's webhook deliveries and attempts", "GET", "/deliveries"
    )
    dlq = verbs.add_parser("dlq", help="activations the webhook step gave up on")
    dlq_verbs = dlq.add_subparsers(dest="dlq_verb", required=True)
    dlq_verbs.add_parser("list", help="list dead letters").set_defaults(run=cmd_dlq)
    replay = dlq_verbs.add_parser("replay", help="send dead letters for delivery again")
    replay.add_argument("--destination", default=None, help="only this destination's")
    replay.set_defaults(run=cmd_dlq)
    for verb in dlq_verbs.choices.values():
        aws_arguments(verb)


def cmd_dlq(args: argparse.Namespace) -> int:
    from cli.dlq import list_dead_letters, replay
    from functions.shared.dal.deliveries_store import DeliveriesStore
    from functions.shared.dal.dynamo import DynamoTable

    resources, clients = names(args), Clients(args.aws_endpoint)
    sqs = clients.client("sqs")
    dlq_url = sqs.get_queue_url(QueueName=resources.queue("activations-dlq"))["QueueUrl"]
    if args.dlq_verb == "list":
        print(json.dumps(list_dead_letters(sqs, dlq_url), indent=2))
        return 0
    activations_url = sqs.get_queue_url(QueueName=resources.queue("activations"))["QueueUrl"]
    deliveries = DeliveriesStore(
        DynamoTable(resources.table("deliveries"), clients.client("dynamodb"))
    )
    count = replay(sqs, dlq_url, activations_url, deliveries, args.destination)
    print(f"replayed {count} dead letter(s)")
    return 0
