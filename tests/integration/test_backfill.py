"""`beacon backfill`'s job on moto: the real segments handler keeps profiles live, the
archive holds Parquet files with stream positions, and the backfill grafts a new
definition ("viewed the same product 3 times in 30 days") into the live profiles.

The truth is known by construction (who viewed which product when), and every
profile's new trait must equal what one batch of all its events gives from scratch;
an event applied live while the backfill runs, before the archive holds it, is
counted once."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import pytest

from cli.archive_query import LocalArchive, rows_of
from cli.commands.backfill import ARCHIVE_SQL
from functions.profiles.apply import apply_events
from functions.profiles.computed import computed_values
from functions.profiles.evaluate import CompiledSegments
from functions.profiles.replay import Definitions
from functions.profiles.state import Incoming, ProfileState
from functions.segments.backfill import backfill
from functions.segments.step import SegmentsStep
from functions.shared.archive import StreamPosition, archive_row, by_partition, object_key
from functions.shared.archive_parquet import encode
from functions.shared.dal.archive_store import ArchiveStore
from functions.shared.resolved import ResolvedEvent, parse_record
from functions.shared.segment_definitions import SegmentsConfig
from tests.integration.aws_helpers import create_bucket
from tests.integration.segments_rig import Record, SegmentsRig, at, merged, segments_rig, track
from tests.integration.stream_rig import SHARD
from tests.unit.profiles.test_replay import NEW_SEGMENT, NEW_TRAIT, SEGMENT, TRAIT

DAY = 24.0


def with_new_definitions(config: SegmentsConfig) -> SegmentsConfig:
    data = config.model_dump(mode="json")
    data["computed_traits"].append(NEW_TRAIT)
    data["segments"].append(NEW_SEGMENT)
    return SegmentsConfig.model_validate(data)


def viewed(profile: str, hours: float, product: str) -> ResolvedEvent:
    return track(profile, hours, properties={"product_id": product, "category": "Shoes"})


class Pipeline:
    """The live segments step and the archive's writer, fed the same stream records."""

    def __init__(self, rig: SegmentsRig, step: SegmentsStep) -> None:
        self.rig, self.step = rig, step
        self.store = ArchiveStore(create_bucket(rig.s3, rig.names, "archive"), rig.s3)
        self.unarchived: list[tuple[str, bytes]] = []
        self.files = 0

    def send(self, items: list[Record], hours: float, archive: bool = True) -> None:
        self.rig.clock[0] = at(hours)
        event = self.rig.records(items, SHARD)
        self.rig.deliver_ok(event)
        for record in event["Records"]:
            entry = (
                record["kinesis"]["sequenceNumber"],
                base64.b64decode(record["kinesis"]["data"]),
            )
            self.unarchived.append(entry)
        if archive:
            self.archive_all()

    def archive_all(self) -> None:
        """What the archive's writer does: one file per table and day, in stream order."""
        if not self.unarchived:
            return
        rows = [
            archive_row(parse_record(data), StreamPosition(SHARD, sequence))
            for sequence, data in self.unarchived
        ]
        first = self.unarchived[0][0]
        for (table, day), part in by_partition(rows).items():
            self.store.put(object_key(table, day, SHARD, first), encode(table, part))
        self.unarchived = []

    def rows(self) -> list[dict[str, Any]]:
        return rows_of(LocalArchive(self.store).query(ARCHIVE_SQL))


@pytest.fixture
def pipeline(mocked_aws: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[Pipeline]:
    with segments_rig(monkeypatch) as (rig, step):
        yield Pipeline(rig, step)


def deploy(step: SegmentsStep) -> SegmentsConfig:
    """The new definitions go live (what a restart or `cdk deploy` does)."""
    step.config = with_new_definitions(step.config)
    step.engine = CompiledSegments(step.config)
    return step.config


def test_a_backfill_gives_every_person_what_their_history_gives_and_counts_live_events_once(
    pipeline: Pipeline,
) -> None:
    rig, step = pipeline.rig, pipeline.step
    # Before the definition exists: who viewed what (the truth is in the comments).
    d = DAY
    pipeline.send([viewed("p1", 6 * d, "sku-1"), viewed("p2", 6 * d, "sku-1")], 6 * d)
    pipeline.send([viewed("p1", 6 * d + 5, "sku-1"), viewed("p2", 6 * d + 6, "sku-2")], 6 * d + 6)
    pipeline.send([viewed("p1", 7 * d, "sku-1"), viewed("p2", 7 * d, "sku-1")], 7 * d)  # p1: 3
    pipeline.send([viewed("p3", 1 * d, "sku-3")], 1 * d)
    pipeline.send([viewed("p3", 20 * d, "sku-3")], 20 * d)
    pipeline.send([viewed("p5", 8 * d, "sku-5"), viewed("p5", 9 * d, "sku-5")], 20 * d)
    # p6 and q6 are one person: 1 + 2 views of sku-6, merged.
    pipeline.send([viewed("p6", 10 * d, "sku-6"), viewed("q6", 10 * d, "sku-6")], 20 * d)
    pipeline.send([viewed("q6", 11 * d, "sku-6"), merged("p6", "q6", 20 * d)], 20 * d)
    pipeline.send([viewed("p7", 12 * d, "sku-7"), viewed("p7", 13 * d, "sku-7")], 20 * d)
    # Now: p3's third view comes 34 days after its first (never 3 within 30 days).
    now = 35 * d
    config = deploy(step)
    # Deployed: live traffic now keeps the new trait, from empty.
    pipeline.send([viewed("p3", now, "sku-3"), viewed("p5", now, "sku-5")], now)
    assert computed_values(rig.profile("p5").state, config, at(now))[TRAIT] == 1  # type: ignore[union-attr]

    # While the backfill runs, p7 views sku-7 a third time; the archive gets it later.
    original_load = step.profiles.load
    raced = []

    def load_racing(ids: Any) -> Any:
        loaded = original_load(ids)
        if "p7" in ids and not raced:
            raced.append(True)
            pipeline.send([viewed("p7", now + 0.1, "sku-7")], now + 0.1, archive=False)
        return loaded

    step.profiles.load = load_racing  # type: ignore[method-assign]
    pauses = []

    def pause(_seconds: float) -> None:
        pauses.append(_seconds)
        if len(pauses) == 2:
            pipeline.archive_all()  # the archive's writer catches up, a round late

    rig.clock[0] = at(now + 0.2)
    progress = backfill(
        step, pipeline.rows, Definitions.chosen(config, [TRAIT], [SEGMENT]), pause_s=0, sleep=pause
    )
    step.profiles.load = original_load  # type: ignore[method-assign]

    # Round 1 lost the race for p7; round 2 found the archive behind p7's profile and
    # waited; round 3 had it all.
    assert raced and len(pauses) == 2 and progress.rounds == 3
    assert progress.conflicts == 1
    assert progress.done == progress.people == 6  # q6's events are under p6
    members = {p for p in ("p1", "p2", "p3", "p5", "p6", "p7") if SEGMENT in memberships(rig, p)}
    assert members == {"p1", "p5", "p6", "p7"}
    assert rig.sizes()[SEGMENT] == 4
    # p1 became a member when its third view of sku-1 arrived, on day 7.
    assert memberships(rig, "p1")[SEGMENT].since == at(7 * DAY)
    # p7's third view, applied live during the backfill, counted once.
    p7 = rig.profile("p7")
    assert p7 is not None and p7.state.events_applied == 3
    assert computed_values(p7.state, config, at(now + 0.2))[TRAIT] == 3

    # Each profile's new trait is what all of its events give applied from scratch.
    history: dict[str, list[Incoming]] = {}
    for row in pipeline.rows():
        history.setdefault(row["profile_id"], []).append(Incoming(_event(row)))
    for profile_id, records in history.items():
        fresh = ProfileState()
        apply_events(fresh, records, config, at(now + 0.2))
        stored = rig.profile(profile_id)
        assert stored is not None
        assert (
            computed_values(stored.state, config, at(now + 0.2))[TRAIT]
            == computed_values(fresh, config, at(now + 0.2))[TRAIT]
        ), profile_id

    # Entries were announced to the destinations, marked as the backfill's.
    backfilled = [c for c in rig.changes() if c.cause == "backfill"]
    assert {s.segment_id for c in backfilled for s in c.segments} == {SEGMENT}

    # Live traffic afterwards applies on top, once; a second backfill changes nothing.
    pipeline.send([viewed("p1", now + 1, "sku-1")], now + 1)
    again = backfill(step, pipeline.rows, Definitions.chosen(config, [TRAIT], [SEGMENT]))
    assert again.written == 0 and again.unchanged == 6 and again.rounds == 1
    p1 = rig.profile("p1")
    assert p1 is not None and p1.state.events_applied == 4


def test_the_step_wiring_a_backfill_builds_reads_the_same_resources(
    pipeline: Pipeline,
) -> None:
    from cli.commands.backfill import cmd_backfill  # noqa: F401  (the verb imports)
    from functions.segments.handler import build_segments_step
    from functions.segments.settings import SegmentsSettings
    from infra.topology import TOPOLOGY

    environment = TOPOLOGY.environment_for(TOPOLOGY.function("segments"), pipeline.rig.names)
    settings = SegmentsSettings.model_validate(environment)
    assert settings.profiles_table == pipeline.rig.names.table("profiles")
    built = build_segments_step(settings, _config())
    pipeline.send([viewed("p9", 0, "sku-9")], 0)
    assert "p9" in built.profiles.load({"p9"})


def memberships(rig: SegmentsRig, profile_id: str) -> dict[str, Any]:
    stored = rig.profile(profile_id)
    return {} if stored is None else dict(stored.state.memberships)


def _event(row: dict[str, Any]) -> Any:
    from functions.shared.archive import event_of

    return event_of(row)


def _config() -> Any:
    from functions.shared.config import load_config
    from tests.integration.stream_rig import CONFIG

    return load_config(CONFIG)
