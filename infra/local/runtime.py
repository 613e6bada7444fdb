"""`beacon local`: the whole pipeline on a laptop.

A moto server on 127.0.0.1:4566 holds every resource of the wiring table; an
HTTP server on 127.0.0.1:8080 plays API Gateway in front of the real
handlers; pollers play the event-source mappings. The handlers are the ones
that deploy, called with the same event shapes.
"""

from __future__ import annotations

import os
import time
import warnings
from collections.abc import Callable, Mapping
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from functions.scoring.models import load_scorers
from functions.scoring.personas import load_configured_personas
from functions.scoring.recommend import load_configured_recommender
from functions.shared.config import BeaconConfig, load_config
from functions.shared.dal import clients
from functions.shared.dal.archive_store import ArchiveStore
from functions.shared.dal.failed_events_store import S3FailedEventStore
from functions.shared.observability import METRICS_NAMESPACE
from functions.shared.settings import CONFIG_FILE_VAR
from infra.local import checkpoints, door
from infra.local.aws import LocalAws, moto_server, point_process_at, provision, provisioned
from infra.local.destinations import send_to_sinks
from infra.local.doorbell import Doorbell
from infra.local.firehose import LocalDeliveryStream, read_archive_files
from infra.local.gateway import BoundRoute, Gateway, LocalPage
from infra.local.iam import FunctionRoles, synthesized_policies
from infra.local.invoke import Handler, LocalFunction
from infra.local.journeys import IngestSender
from infra.local.operator_access import OperatorAccess
from infra.local.pollers import KinesisShardPoller, SqsQueuePoller
from infra.local.schedules import LocalSchedule
from infra.local.shop import shop_pages
from infra.local.sinks import PREFIX as SINKS_PREFIX
from infra.local.sinks import Sinks, is_operator_request
from infra.topology import TOPOLOGY, ResourceNames, Topology

# Operator pages built from the running stack (the CLI's dashboard): path -> page.
OperatorPages = Callable[["LocalStack"], Mapping[str, LocalPage]]

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8080
DEFAULT_AWS_PORT = 4566


@dataclass
class LocalSettings:
    config_file: Path = Path("beacon.yaml")
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    aws_port: int = DEFAULT_AWS_PORT
    # A moto server that outlives this process (`beacon moto --port 4566`): the
    # resources are created once, and a restarted stack goes on where it stopped.
    aws_endpoint: str | None = None
    write_keys: dict[str, str] = field(default_factory=dict)  # source name -> key override
    admin_key: str | None = None
    log_level: str = "WARNING"
    # moto enforces each function's role (docs/deploy.md); False only to measure
    # what enforcement costs (bench/local_iam.py), never in tests or `beacon local`.
    enforce_iam: bool = True


class LocalStack:
    """Start with `with LocalStack(settings) as stack:`; everything stops on exit."""

    def __init__(
        self,
        settings: LocalSettings,
        topology: Topology = TOPOLOGY,
        handlers: dict[str, Handler] | None = None,
        pages: OperatorPages | None = None,
    ) -> None:
        """`pages` adds operator pages (the CLI's dashboard), built once the stack
        runs and served behind the admin key and a loopback Host, as the sinks'
        read/admin pages are."""
        self.settings = settings
        self.topology = topology
        self.names = ResourceNames()
        self.config: BeaconConfig = load_config(settings.config_file)  # fail fast, with the line
        load_scorers(self.config.models, settings.config_file.resolve().parent)  # and the models
        load_configured_recommender(self.config.models, settings.config_file.resolve().parent)
        load_configured_personas(self.config.models, settings.config_file.resolve().parent)
        self.functions = {
            fn.name: LocalFunction(fn, (handlers or {}).get(fn.name)) for fn in topology.functions
        }
        self.pollers: list[KinesisShardPoller | SqsQueuePoller] = []
        self.deliveries: list[LocalDeliveryStream] = []  # Firehose's part (the archive)
        self.doorbell = Doorbell()
        self.schedules: list[LocalSchedule] = []
        # The demo destinations' receivers: they verify signatures and auth as the
        # real APIs do, and keep what arrived (GET /_sink/<name>/received).
        self.sinks = Sinks.for_destinations(self.config.destinations)
        # Mounted once the gateway's port is known: the operator pages check the Host.
        self.pages: dict[str, LocalPage] = {}
        self._operator_pages = pages
        self.aws: LocalAws | None = None
        self.roles: FunctionRoles | None = None
        self.port: int | None = None
        self._exit = ExitStack()

    @property
    def url(self) -> str:
        return f"http://{self.settings.host}:{self.port}"

    @property
    def web_write_key(self) -> str:
        """The write key of the first source that serves browsers (the example shop's)."""
        source = next((s for s in self.config.sources if s.allowed_origins), self.config.sources[0])
        return self.settings.write_keys.get(source.name, source.local_write_key)

    @property
    def server_write_key(self) -> str:
        """The write key of the first source that serves no browser (a backend's)."""
        source = next(
            (s for s in self.config.sources if not s.allowed_origins), self.config.sources[0]
        )
        return self.settings.write_keys.get(source.name, source.local_write_key)

    @property
    def admin_key(self) -> str:
        return self.settings.admin_key or self.config.admin.local_admin_key

    def __enter__(self) -> LocalStack:
        try:
            self.start()
        except BaseException:
            self._exit.close()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._exit.close()

    def start(self) -> None:
        # Metrics are off locally; Powertools warns on every empty flush.
        warnings.filterwarnings("ignore", message="No application metrics to publish")
        if self.settings.aws_endpoint:
            self.aws = LocalAws(endpoint=self.settings.aws_endpoint)
        else:
            self.aws = self._exit.enter_context(
                moto_server(
                    self.settings.host,
                    self.settings.aws_port,
                    enforce_iam=self.settings.enforce_iam,
                )
            )
        point_process_at(self.aws)
        self._set_function_environment()
        # The handlers' clients are made afresh against this moto.
        clients.client.cache_clear()
        if not provisioned(self.aws, self.topology, self.names):
            provision(
                self.aws,
                self.topology,
                self.names,
                self.config,
                write_keys=self.settings.write_keys,
                admin_key=self.settings.admin_key,
            )
            checkpoints.create_table(self.aws.client("dynamodb"), self.names)
        # Each function acts as its own role, with the template's policy (moto enforces it).
        self.roles = FunctionRoles.create(
            self.aws,
            self.topology,
            self.names,
            synthesized_policies(self.topology, self.settings.config_file),
        )
        for name, function in self.functions.items():
            function.session = self.as_function(name).session()
            # Its clients ring the pollers' doorbell whenever they write a stream or queue.
            self.doorbell.listen_to_session(function.session)
        gateway = Gateway(
            [
                BoundRoute(route, self.functions[fn.name])
                for fn in self.topology.functions
                for route in fn.http_routes
            ],
            self.pages,
            # What API Gateway refuses before any function runs still leaves a record.
            record_refusal=door.recorder(
                S3FailedEventStore(self.names.bucket("failed-events"), self.aws.client("s3"))
            ),
        )
        self.port = gateway.start(self.settings.host, self.settings.port)
        self._exit.callback(gateway.stop)
        # The webhook function sends to this gateway's sinks (plain http on loopback).
        self._exit.callback(send_to_sinks(self.url))
        # The read API reads and rewrites the archive's files (deployed: Athena and a job).
        self._exit.callback(read_archive_files())
        access = OperatorAccess.served_at(self.admin_key, self.settings.host, self.port)
        self.pages[SINKS_PREFIX] = access.guard(self.sinks.page, applies=is_operator_request)
        # The sinks' simulated customers send their conversions as the server source.
        self.sinks.customers.send = IngestSender(self.url, self.server_write_key)
        # The example shop and the trackers it loads: public pages (docs/personalize.md).
        self.pages.update(shop_pages(self.web_write_key))
        if self._operator_pages is not None:
            self.pages.update(
                {path: access.guard(page) for path, page in self._operator_pages(self).items()}
            )
        self._start_pollers()
        self._start_deliveries()
        self._start_schedules()

    def _set_function_environment(self) -> None:
        # All handlers share this process, so the union of their environments is
        # set once; the variable names cannot clash (one per resource).
        os.environ.update(
            {
                CONFIG_FILE_VAR: str(self.settings.config_file.resolve()),
                "POWERTOOLS_METRICS_NAMESPACE": METRICS_NAMESPACE,
                "POWERTOOLS_METRICS_DISABLED": "true",
                "POWERTOOLS_TRACE_DISABLED": "true",
                "POWERTOOLS_LOG_LEVEL": self.settings.log_level,
                # A promoted model runs within seconds locally (deployed: 60 s).
                "BEACON_MODEL_POINTER_TTL_S": "5",
            }
        )
        for fn in self.topology.functions:
            os.environ.update(self.topology.environment_for(fn, self.names))

    def as_function(self, name: str) -> LocalAws:
        """moto as the function `name` (its role) sees it."""
        assert self.aws is not None and self.roles is not None
        return self.aws.acting_as(self.roles.credentials[name])

    def _start_pollers(self) -> None:
        assert self.aws is not None
        kinesis = self.aws.client("kinesis")
        dynamodb = self.aws.client("dynamodb")
        positions = checkpoints.table_name(self.names)
        for fn in self.topology.functions:
            for source in fn.kinesis_sources:
                stream = self.names.stream(source.stream)
                shards = kinesis.list_shards(StreamName=stream)["Shards"]
                for shard in shards:
                    # An event-source mapping reads with its function's role.
                    poller = KinesisShardPoller(
                        self.as_function(fn.name),
                        self.functions[fn.name],
                        source,
                        stream,
                        shard["ShardId"],
                        self.names.bucket(source.on_failure_bucket),
                        checkpoints=checkpoints.Checkpoints(
                            dynamodb, positions, f"{fn.name}/{stream}/{shard['ShardId']}"
                        ),
                        doorbell=self.doorbell,
                    )
                    poller.start()
                    self._exit.callback(poller.stop)
                    self.pollers.append(poller)
            for sqs_source in fn.sqs_sources:
                queue_poller = SqsQueuePoller(
                    self.as_function(fn.name),
                    self.functions[fn.name],
                    sqs_source,
                    self.names.queue(sqs_source.queue),
                    doorbell=self.doorbell,
                )
                queue_poller.start()
                self._exit.callback(queue_poller.stop)
                self.pollers.append(queue_poller)

    def _start_deliveries(self) -> None:
        """One writer per shard of each delivery stream's source. Firehose reads and
        writes with its own role (infra/constructs/archive.py); locally the writer
        uses the stack's own credentials, as the checkpoints do."""
        assert self.aws is not None
        kinesis = self.aws.client("kinesis")
        dynamodb = self.aws.client("dynamodb")
        positions = checkpoints.table_name(self.names)
        for delivery in self.topology.delivery_streams:
            stream = self.names.stream(delivery.source_stream)
            store = ArchiveStore(self.names.bucket(delivery.bucket), self.aws.client("s3"))
            for shard in kinesis.list_shards(StreamName=stream)["Shards"]:
                writer = LocalDeliveryStream(
                    self.aws,
                    delivery,
                    stream,
                    shard["ShardId"],
                    store,
                    checkpoints=checkpoints.Checkpoints(
                        dynamodb, positions, f"firehose:{delivery.name}/{stream}/{shard['ShardId']}"
                    ),
                    doorbell=self.doorbell,
                )
                writer.start()
                self._exit.callback(writer.stop)
                self.deliveries.append(writer)

    def _start_schedules(self) -> None:
        for fn in self.topology.functions:
            for schedule in fn.schedules:
                timer = LocalSchedule(self.functions[fn.name], schedule)
                timer.start()
                self._exit.callback(timer.stop)
                self.schedules.append(timer)

    def wait_until_drained(self, timeout_s: float = 60.0) -> bool:
        """True once every step has processed everything upstream of it.

        Drained means: every poller found its shard empty in a read that began
        after the last batch anyone processed, so nothing is still in flight
        between steps. For demos and tests.
        """
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            moment = time.monotonic()
            parts = [*self.pollers, *self.deliveries]
            batches = sum(p.stats.batches for p in parts)
            self.doorbell.ring_all()  # idle pollers read now rather than after their backoff
            checks = 0
            while not all(p.caught_up_since(moment) for p in parts):
                if time.monotonic() > deadline:
                    return False
                time.sleep(0.05)
                checks += 1
                if checks % 5 == 0:  # wake the ones still behind, now and then
                    behind = {p.waiting.name for p in parts if not p.caught_up_since(moment)}
                    for name in behind:
                        self.doorbell.ring(name)
            if sum(p.stats.batches for p in parts) == batches:
                return True
        return False
