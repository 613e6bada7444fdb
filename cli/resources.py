"""Where the operator tools find the stack's AWS resources.

The local stack's moto by default; with `--aws-endpoint ''`, AWS with your
credentials. Names are the local stack's (the wiring table's), with a deployed
stack's physical names given by `--name KIND:LOGICAL=PHYSICAL` (its outputs).
"""

from __future__ import annotations

import argparse
import os
from typing import Any

from cli import defaults
from infra.topology import ResourceNames


def aws_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--aws-endpoint",
        default=defaults.AWS_ENDPOINT,
        help="moto of the local stack; '' for AWS with your credentials",
    )
    parser.add_argument(
        "--name",
        action="append",
        default=[],
        metavar="KIND:LOGICAL=PHYSICAL",
        help="a deployed resource's name from the stack outputs, e.g. "
        "queue:activations-dlq=Beacon-QueuesActivationsDlq-1A2B (repeatable)",
    )


def names(args: argparse.Namespace) -> ResourceNames:
    """The local stack's names, with deployed ones given by --name."""
    overrides = dict(item.split("=", 1) for item in args.name)
    return ResourceNames(overrides=overrides)


class Clients:
    """boto3 clients for --aws-endpoint (the local stack's moto, or AWS if '')."""

    def __init__(self, aws_endpoint: str) -> None:
        self.aws_endpoint = aws_endpoint

    def client(self, service: str) -> Any:
        import boto3

        region = os.environ.get("AWS_REGION", "us-east-1")
        if not self.aws_endpoint:
            return boto3.session.Session(region_name=region).client(service)
        from infra.local.aws import LocalAws

        return LocalAws(endpoint=self.aws_endpoint, region=region).client(service)
