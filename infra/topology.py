"""The wiring table: every stream, table, queue, bucket and function of Beacon.

Declared once. `infra/stack.py` turns it into AWS resources with CDK and
`infra/local/` turns it into the same resources on moto, driving the same
handlers with the same event shapes, so the two backends cannot drift.

A function joins `FUNCTIONS` when its real handler does; resources for steps
that are still to come are declared already so each step only adds its row.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, TypeVar

from functions.shared.settings import env_var

# --- resources ---------------------------------------------------------------


@dataclass(frozen=True)
class Stream:
    """A Kinesis data stream. One partition key per person keeps their order."""

    name: str
    purpose: str
    shards: int = 2
    retention_hours: int = 168


@dataclass(frozen=True)
class Index:
    """A global secondary index (sparse when few items carry its keys)."""

    name: str
    partition_key: str
    sort_key: str | None = None
    # KEYS_ONLY when the reader only needs to know *which* items (the sweep):
    # a projected copy of every attribute would double the write cost.
    projection: Literal["ALL", "KEYS_ONLY"] = "ALL"


@dataclass(frozen=True)
class Table:
    """A DynamoDB table with string `pk`/`sk` keys (single-table items per step)."""

    name: str
    purpose: str
    partition_key: str = "pk"
    sort_key: str | None = "sk"
    ttl_attribute: str | None = None
    indexes: tuple[Index, ...] = ()


@dataclass(frozen=True)
class Queue:
    """An SQS queue; `dead_letter` names the queue that takes what exhausts retries."""

    name: str
    purpose: str
    visibility_timeout_s: int = 60
    retention_days: int = 14
    dead_letter: str | None = None
    max_receive_count: int = 10


@dataclass(frozen=True)
class Bucket:
    """An S3 bucket. `expire_days` drives its lifecycle rule.

    `versioned` keeps overwritten and deleted objects for `noncurrent_days`
    (default: `expire_days`): right for the failed-events store (nothing lost),
    wrong where a rewrite must really remove rows (the archive's erasure), which
    keeps old versions one day only. `expire_prefixes` adds shorter rules."""

    name: str
    purpose: str
    expire_days: int = 90
    versioned: bool = True
    noncurrent_days: int | None = None
    expire_prefixes: tuple[tuple[str, int], ...] = ()


@dataclass(frozen=True)
class DeliveryStream:
    """A Kinesis Data Firehose delivery stream from a Kinesis stream to a bucket,
    as Parquet (the archive: docs/archive.md). Deployed it buffers `buffer_mib`
    or `buffer_s`, whichever comes first; the local writer (infra/local/firehose.py)
    uses the `local_*` figures so a demo sees its files within seconds."""

    name: str
    purpose: str
    source_stream: str
    bucket: str
    results_bucket: str  # Athena's workgroup writes query results here
    transform: str  # the function (row) that turns a record into a row
    # Athena's workgroup refuses a query that would scan more (a runaway SELECT *).
    bytes_scanned_cutoff: int = 10 * 1024**3
    buffer_mib: int = 128
    buffer_s: int = 900
    local_buffer_bytes: int = 4 * 1024 * 1024
    local_buffer_s: float = 1.0


# The secrets named in beacon.yaml, by the role they play.
SecretRole = Literal[
    "write_keys",
    "admin_key",
    "identifier_salt",
    "ip_hash_salt",
    "destinations",
    "identity_verification",  # per source: the key user ids are signed with (touchpoint)
]


# --- event sources -----------------------------------------------------------


@dataclass(frozen=True)
class KinesisSource:
    """A Kinesis event-source mapping, with settings that never block a shard.

    Lambda's defaults retry a failing batch until the record expires (up to a
    week); here a bad record is bisected out, retried a bounded number of
    times and then written whole to the on-failure bucket.
    """

    stream: str
    batch_size: int = 100
    max_batching_window_s: int = 1
    parallelization_factor: int = 1
    max_retry_attempts: int = 3
    bisect_on_error: bool = True
    max_record_age_s: int = 6 * 3600
    report_batch_item_failures: bool = True
    starting_position: Literal["TRIM_HORIZON", "LATEST"] = "TRIM_HORIZON"
    on_failure_bucket: str = "failed-events"


@dataclass(frozen=True)
class SqsSource:
    """An SQS event-source mapping reporting partial batch failures."""

    queue: str
    batch_size: int = 10
    max_batching_window_s: int = 0
    report_batch_item_failures: bool = True


@dataclass(frozen=True)
class Schedule:
    """A timer that invokes the function with an EventBridge "Scheduled Event".

    Deployed as an EventBridge rule at `rate(every_minutes)`; the local stack
    fires it every `local_every_s` seconds so a demo sees it act.
    """

    purpose: str
    every_minutes: int = 1
    local_every_s: float = 5.0


@dataclass(frozen=True)
class HttpRoute:
    """A route of the HTTP API (API Gateway HTTP API, payload format 2.0)."""

    method: Literal["GET", "POST", "DELETE", "OPTIONS", "ANY"]
    path: str


@dataclass(frozen=True)
class Function:
    """One Lambda function: its code, its triggers and what it may touch.

    The IAM policy of the deployed function is derived from the `reads_*` /
    `writes_*` fields, so least privilege is stated here, once.
    """

    name: str
    step: str  # folder under functions/
    purpose: str
    memory_mb: int = 512
    timeout_s: int = 30
    http_routes: tuple[HttpRoute, ...] = ()
    kinesis_sources: tuple[KinesisSource, ...] = ()
    sqs_sources: tuple[SqsSource, ...] = ()
    schedules: tuple[Schedule, ...] = ()
    writes_streams: tuple[str, ...] = ()
    reads_tables: tuple[str, ...] = ()
    writes_tables: tuple[str, ...] = ()
    writes_queues: tuple[str, ...] = ()
    writes_buckets: tuple[str, ...] = ()
    reads_buckets: tuple[str, ...] = ()
    secrets: tuple[SecretRole, ...] = ()  # which of the config's secrets it may read
    carries_models: bool = False  # the bundle holds the configured ONNX models
    carries_geoip: bool = False  # the bundle holds the configured geolocation databases
    # May run Athena queries in the archive's workgroup (infra/constructs/archive.py).
    queries_archive: bool = False

    @property
    def handler(self) -> str:
        return f"functions.{self.step}.handler.lambda_handler"

    @property
    def code_dir(self) -> str:
        return f"functions/{self.step}"

    @property
    def requirements_file(self) -> str:
        return f"functions/{self.step}/requirements.txt"


@dataclass(frozen=True)
class Topology:
    streams: tuple[Stream, ...]
    tables: tuple[Table, ...]
    queues: tuple[Queue, ...]
    buckets: tuple[Bucket, ...]
    functions: tuple[Function, ...]
    delivery_streams: tuple[DeliveryStream, ...] = ()

    def stream(self, name: str) -> Stream:
        return _by_name(self.streams, name)

    def table(self, name: str) -> Table:
        return _by_name(self.tables, name)

    def queue(self, name: str) -> Queue:
        return _by_name(self.queues, name)

    def bucket(self, name: str) -> Bucket:
        return _by_name(self.buckets, name)

    def function(self, name: str) -> Function:
        return _by_name(self.functions, name)

    def environment_for(self, function: Function, names: ResourceNames) -> dict[str, str]:
        """The environment variables that tell `function` its resources' real names
        (`env_var` names them; the function's settings read them)."""
        env: dict[str, str] = {}
        for stream in function.writes_streams:
            env[env_var("stream", stream)] = names.stream(stream)
        for table in {*function.reads_tables, *function.writes_tables}:
            env[env_var("table", table)] = names.table(table)
        for queue in function.writes_queues:
            env[env_var("queue", queue)] = names.queue(queue)
        for bucket in {*function.writes_buckets, *function.reads_buckets}:
            env[env_var("bucket", bucket)] = names.bucket(bucket)
        return env

    def validate(self) -> None:
        """Every reference names a declared resource (checked by a unit test)."""
        streams = {s.name for s in self.streams}
        tables = {t.name for t in self.tables}
        queues = {q.name for q in self.queues}
        buckets = {b.name for b in self.buckets}
        for queue in self.queues:
            _must(queue.dead_letter is None or queue.dead_letter in queues, queue.name)
        for fn in self.functions:
            for ks in fn.kinesis_sources:
                _must(ks.stream in streams, f"{fn.name}: stream {ks.stream}")
                _must(ks.on_failure_bucket in buckets, f"{fn.name}: bucket {ks.on_failure_bucket}")
            for sq in fn.sqs_sources:
                _must(sq.queue in queues, f"{fn.name}: queue {sq.queue}")
            _must(set(fn.writes_streams) <= streams, f"{fn.name}: writes_streams")
            _must(set(fn.reads_tables) | set(fn.writes_tables) <= tables, f"{fn.name}: tables")
            _must(set(fn.writes_queues) <= queues, f"{fn.name}: writes_queues")
            _must(set(fn.writes_buckets) | set(fn.reads_buckets) <= buckets, f"{fn.name}: buckets")
        for delivery in self.delivery_streams:
            _must(delivery.source_stream in streams, f"{delivery.name}: stream")
            _must(delivery.bucket in buckets, f"{delivery.name}: bucket")
            _must(delivery.results_bucket in buckets, f"{delivery.name}: results bucket")
            _must(delivery.transform in {f.name for f in self.functions}, delivery.name)


@dataclass(frozen=True)
class ResourceNames:
    """Physical names. Locally they are fixed; in AWS, CloudFormation picks them."""

    prefix: str = "beacon-"
    overrides: dict[str, str] = field(default_factory=dict)

    def stream(self, name: str) -> str:
        return self.overrides.get(f"stream:{name}", f"{self.prefix}{name}")

    def table(self, name: str) -> str:
        return self.overrides.get(f"table:{name}", f"{self.prefix}{name}")

    def queue(self, name: str) -> str:
        return self.overrides.get(f"queue:{name}", f"{self.prefix}{name}")

    def bucket(self, name: str) -> str:
        return self.overrides.get(f"bucket:{name}", f"{self.prefix}{name}")


_Named = TypeVar("_Named", "Stream", "Table", "Queue", "Bucket", "Function")


def _by_name(items: tuple[_Named, ...], name: str) -> _Named:
    for item in items:
        if item.name == name:
            return item
    raise KeyError(name)


def _must(ok: bool, what: str) -> None:
    if not ok:
        raise ValueError(f"topology refers to an undeclared resource: {what}")


# --- Beacon ------------------------------------------------------------------

STREAMS = (
    Stream("events", "validated canonical events from ingest; key anonymousId or userId"),
    Stream("consented", "events the person allowed; same key as events"),
    Stream("resolved", "events keyed by profile id, plus profile.merged records"),
    Stream("profile-changes", "profiles whose traits, aggregates or segments changed"),
)

TABLES = (
    Table(
        "consent",
        "consent state per identifier, audit trail, erasure suppressions",
        ttl_attribute="expires_at",  # recent erasures
    ),
    Table(
        "identity",
        "identity graph: identifier -> profile, profile -> identifiers, merges, blocking keys",
        ttl_attribute="expires_at",  # recent erasures
    ),
    Table(
        "profiles",
        "profiles: traits, aggregates, memberships, scores; decision items (the touchpoint);"
        " sparse sweep index; tombstones",
        ttl_attribute="expires_at",  # tombstones of merged-away profiles
        indexes=(
            Index(
                "sweep",
                partition_key="sweep_shard",
                sort_key="sweep_due_at",
                projection="KEYS_ONLY",
            ),
        ),
    ),
    Table("deliveries", "webhook delivery log", ttl_attribute="expires_at"),
    Table(
        "counters", "per-day pipeline counters (ledger, consent drops)", ttl_attribute="expires_at"
    ),
)

QUEUES = (
    Queue(
        "activations",
        "segment/score activations and per-destination delivery tasks for the webhook step",
        visibility_timeout_s=120,
        dead_letter="activations-dlq",
        # The webhook step dead-letters by itself after a destination's last retry;
        # this only catches a message that keeps crashing the function.
        max_receive_count=50,
    ),
    Queue("activations-dlq", "activations that exhausted their delivery attempts"),
)

BUCKETS: tuple[Bucket, ...] = (
    Bucket(
        "failed-events",
        "ingest bad rows (ingest/dt=/reason=) and stream on-failure records (aws/lambda/)",
        expire_days=90,
    ),
    Bucket(
        "archive-results",
        "Athena's query results for the archive workgroup (encrypted; short-lived)",
        expire_days=7,
        versioned=False,
    ),
    Bucket(
        "archive",
        "every consented event as Parquet (events/dt=, merges/dt=), erasure requests (erasures/)",
        # Two years of history (backfills, training, "what did they do last March").
        expire_days=730,
        # An erasure rewrites files: the old versions, which still hold the
        # person's rows, go within a day.
        noncurrent_days=1,
        # Erasure requests outlive the longest an event can be in flight (13 h).
        expire_prefixes=(("erasures/", 2),),
    ),
    Bucket(
        "models",
        "the model registry: immutable versions (models/<name>/<version>/) and the pointers "
        "the scoring function follows (pointers/<name>.json); docs/models.md",
        # A version is never expired by age: an old one may be what `rollback` returns
        # to. Versioning keeps an overwritten pointer a year (who promoted what, when).
        expire_days=3650,
        noncurrent_days=365,
    ),
)

# The scheduled profile export's files (docs/exports.md): a full snapshot a day, kept
# a week, so a person erased today is gone from every file within seven days.
# Unversioned: an expired or replaced file really goes.
EXPORTS_BUCKET = Bucket(
    "exports",
    "profile snapshots as Parquet (profiles/dt=), for Athena, Snowflake, BigQuery, DuckDB",
    expire_days=7,
    versioned=False,
)
BUCKETS = (*BUCKETS, EXPORTS_BUCKET)

DELIVERY_STREAMS = (
    DeliveryStream(
        "archive",
        "resolved -> S3 archive (Parquet, partitioned by day), the Glue table Athena reads",
        source_stream="resolved",
        bucket="archive",
        results_bucket="archive-results",
        transform="archive",
    ),
)

INGEST_ROUTES = (
    # Segment HTTP Tracking API, long and short forms (analytics.js uses /v1/t ...).
    HttpRoute("POST", "/v1/{proxy+}"),
    HttpRoute("OPTIONS", "/v1/{proxy+}"),
    # Snowplow tracker protocol: the pixel and the tp2 POST.
    HttpRoute("GET", "/i"),
    HttpRoute("POST", "/com.snowplowanalytics.snowplow/tp2"),
    HttpRoute("OPTIONS", "/com.snowplowanalytics.snowplow/tp2"),
    # analytics.js fetches its settings from here at load (cdnURL pointed at Beacon).
    HttpRoute("GET", "/v1/projects/{writeKey}/settings"),
)

PERSONALIZE_ROUTES = (
    # The touchpoint (write key, CORS per source) and the script pages load.
    HttpRoute("GET", "/v1/personalize"),
    HttpRoute("OPTIONS", "/v1/personalize"),
    HttpRoute("GET", "/v1/beacon.js"),
)

API_ROUTES = (
    # The read/admin API (admin key): profiles, consent history, export, erasure.
    HttpRoute("GET", "/v1/profiles/{ref}"),
    HttpRoute("DELETE", "/v1/profiles/{ref}"),
    HttpRoute("GET", "/v1/profiles/{ref}/{view}"),
    HttpRoute("GET", "/v1/segments"),
    HttpRoute("GET", "/v1/experiments"),
    HttpRoute("GET", "/v1/experiments/{name}"),
    HttpRoute("GET", "/v1/identity/suggestions"),
    HttpRoute("POST", "/v1/identity/suggestions/{a}/{b}/{decision}"),
)

FUNCTIONS: tuple[Function, ...] = (
    Function(
        "ingest",
        step="ingest",
        purpose="HTTP collection API: validate, canonicalize, write to the events stream",
        memory_mb=512,
        timeout_s=15,
        http_routes=INGEST_ROUTES,
        writes_streams=("events",),
        writes_buckets=("failed-events",),
        secrets=("write_keys", "ip_hash_salt"),
        carries_geoip=True,
    ),
    Function(
        "consent",
        step="consent",
        purpose="drop what the person did not allow; keep consent state, audit trail, counters",
        memory_mb=512,
        timeout_s=60,
        kinesis_sources=(KinesisSource("events", batch_size=200, max_batching_window_s=0),),
        writes_streams=("consented",),
        reads_tables=("consent",),
        writes_tables=("consent", "counters"),
        writes_buckets=("failed-events",),
        secrets=("identifier_salt",),
    ),
    Function(
        "identity",
        step="identity",
        purpose="resolve each event to one profile per person; emit merges",
        memory_mb=1024,
        timeout_s=60,
        kinesis_sources=(KinesisSource("consented", batch_size=200, max_batching_window_s=0),),
        writes_streams=("resolved",),
        reads_tables=("identity",),
        writes_tables=("identity", "counters"),
        writes_buckets=("failed-events",),
        # Erased identifiers are the consent step's salted hashes: the same salt.
        secrets=("identifier_salt",),
    ),
    Function(
        "segments",
        step="segments",
        purpose="keep profiles' computed traits and segment memberships current; sweep",
        memory_mb=1024,
        timeout_s=60,
        kinesis_sources=(KinesisSource("resolved", batch_size=200, max_batching_window_s=0),),
        schedules=(Schedule("re-evaluate profiles whose time-based condition is due"),),
        writes_streams=("profile-changes",),
        reads_tables=("profiles",),
        writes_tables=("profiles", "counters"),
        writes_buckets=("failed-events",),
    ),
    Function(
        "scoring",
        step="scoring",
        purpose="score changed profiles with the ONNX models; activations to the queue",
        # 1,769 MB is one full vCPU for onnxruntime (and room for its wheels).
        memory_mb=1769,
        timeout_s=60,
        kinesis_sources=(
            KinesisSource("profile-changes", batch_size=200, max_batching_window_s=0),
        ),
        reads_tables=("profiles",),
        writes_tables=("profiles", "counters"),
        writes_queues=("activations",),
        writes_buckets=("failed-events",),
        # The model registry's pointers and versions (written only by `beacon models`).
        reads_buckets=("models",),
        carries_models=True,
    ),
    Function(
        "webhook",
        step="webhook",
        purpose="deliver activations to journey platforms, each destination on its own retries",
        memory_mb=512,
        timeout_s=60,  # below the queue's visibility timeout; destinations run side by side
        sqs_sources=(SqsSource("activations", batch_size=10),),
        reads_tables=("deliveries",),
        writes_tables=("deliveries",),
        writes_queues=("activations", "activations-dlq"),
        writes_buckets=("failed-events",),
        secrets=("destinations",),
    ),
    Function(
        "api",
        step="api",
        purpose="read/admin API: profiles, segments, consent history, export and erasure",
        memory_mb=512,
        timeout_s=30,
        http_routes=API_ROUTES,
        writes_streams=("consented",),  # a reviewer's link travels to the identity step
        reads_tables=("consent", "identity", "profiles", "deliveries"),
        writes_tables=("consent", "identity", "profiles", "deliveries"),
        # Export lists a person's archived events (an Athena query: its results go to
        # archive-results); erasure leaves a request for the archive-erasure job.
        reads_buckets=("archive", "archive-results"),
        writes_buckets=("archive", "archive-results"),
        queries_archive=True,
        secrets=("admin_key", "identifier_salt"),
    ),
)

ARCHIVE_TRANSFORM = Function(
    "archive",
    step="archive",
    purpose="Firehose's transformation for the archive: a resolved record -> a flat row",
    # Invoked by the delivery stream (DELIVERY_STREAMS), not by a mapping; it touches
    # nothing itself. Locally the writer (infra/local/firehose.py) makes the same rows.
    memory_mb=256,
    timeout_s=60,
)

ARCHIVE_ERASURE = Function(
    "archive-erasure",
    step="archive_erasure",
    purpose="rewrite the archive's files without the rows of people erased (their requests)",
    # The bound an erasure reaches the deployed archive in (docs/archive.md).
    memory_mb=1024,
    timeout_s=900,
    schedules=(
        Schedule(
            "rewrite archive files holding rows of erased people",
            every_minutes=15,
            local_every_s=5.0,
        ),
    ),
    reads_buckets=("archive",),
    writes_buckets=("archive",),
)

TOUCHPOINT = Function(
    "personalize",
    step="personalize",
    purpose="GET /v1/personalize: what a page may know of its visitor, in one read",
    # Small and quick: one GetItem per request; arm64 like every function.
    memory_mb=512,
    timeout_s=5,
    http_routes=PERSONALIZE_ROUTES,
    # Identity nodes (identifier -> profile id) and the profiles table's decision items.
    reads_tables=("identity", "profiles"),
    secrets=("write_keys", "identity_verification"),
)

PROFILE_EXPORT = Function(
    "exports",
    step="exports",
    purpose="the daily profile export: every live profile as Parquet in the exports bucket",
    # A paginated, parallel Scan of the profiles table: minutes for millions of profiles.
    memory_mb=2048,
    timeout_s=900,
    schedules=(
        Schedule(
            "export every live profile as Parquet (a snapshot a day)",
            every_minutes=24 * 60,
            local_every_s=24 * 3600.0,
        ),
    ),
    reads_tables=("profiles", "identity"),
    # Lists the day's partition to remove the parts an earlier run of the day left
    # (infra/constructs/exports.py grants the delete on `profiles/` only).
    reads_buckets=("exports",),
    writes_buckets=("exports",),
)

FUNCTIONS = (*FUNCTIONS, TOUCHPOINT, ARCHIVE_TRANSFORM, ARCHIVE_ERASURE, PROFILE_EXPORT)

TOPOLOGY = Topology(
    streams=STREAMS,
    tables=TABLES,
    queues=QUEUES,
    buckets=BUCKETS,
    functions=FUNCTIONS,
    delivery_streams=DELIVERY_STREAMS,
)
