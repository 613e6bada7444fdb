"""The profile export's Parquet parts: explicit schema, parts, an exact snapshot per
day, read back by pyarrow and DuckDB."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from functions.exports.parquet import (
    PROFILE_SCHEMA,
    Destination,
    PartWriter,
    partition,
)
from functions.exports.profile_rows import ExportPolicy
from functions.exports.profiles import export_profiles
from functions.exports.sinks import LocalSink
from functions.shared.segment_definitions import SegmentsConfig
from tests.unit.exports.helpers import NOW, identity, stored

DAY = partition("profiles", NOW)


def people(n: int, withheld_every: int = 3) -> list[list]:  # type: ignore[type-arg]
    profiles = [
        stored(
            f"p{i:03d}",
            granted=() if i % withheld_every == 0 else ("personalization",),
            traits={"email": f"p{i}@example.org", "n": i},
            segments={"vip": False} if i % 2 else {},
        )
        for i in range(n)
    ]
    return [profiles[i : i + 7] for i in range(0, n, 7)]


def graph(ids):  # type: ignore[no-untyped-def]
    return {i: identity(i, email=[f"{i}@example.org"]) for i in ids}


def run(tmp_path: Path, n: int, rows_per_part: int = 10):  # type: ignore[no-untyped-def]
    writer = PartWriter(LocalSink(tmp_path), DAY, rows_per_part=rows_per_part, rows_per_group=5)
    return export_profiles(
        people(n), graph, writer, SegmentsConfig(), ExportPolicy(("personalization",)), NOW
    )


def test_parts_hold_every_row_with_the_explicit_schema(tmp_path: Path) -> None:
    summary = run(tmp_path, 23)
    assert summary.files == [f"{DAY}part-{n:04d}.parquet" for n in range(3)]
    assert (summary.read, summary.exported, summary.withheld) == (23, 15, 8)
    table = pq.read_table(tmp_path / "profiles", partitioning=None)
    assert table.num_rows == 23
    first = pq.read_schema(tmp_path / summary.files[0])
    assert first.equals(PROFILE_SCHEMA)
    assert first.field("exported_at").type == pa.timestamp("us", tz="UTC")


def test_duckdb_reads_the_snapshot_with_its_day_partition(tmp_path: Path) -> None:
    run(tmp_path, 23)
    glob = str(tmp_path / "profiles" / "*" / "*.parquet")
    rows = duckdb.sql(
        f"SELECT dt, count(*), count(*) FILTER (WHERE consented),"
        f" count(*) FILTER (WHERE list_contains(segment_ids, 'vip'))"
        f" FROM read_parquet('{glob}', hive_partitioning = true) GROUP BY dt"
    ).fetchall()
    # 11 odd ids are in `vip`; the 4 of them withheld (multiples of 3) show no segments.
    assert rows == [(date(2026, 12, 4), 23, 15, 7)]
    email = duckdb.sql(
        f"SELECT json_extract_string(traits, '$.email') FROM read_parquet('{glob}')"
        " WHERE profile_id = 'p001'"
    ).fetchone()
    assert email == ("p1@example.org",)
    # A withheld row holds nothing but its id and consent.
    withheld = duckdb.sql(
        f"SELECT traits, identifiers, segment_ids, consent FROM read_parquet('{glob}')"
        " WHERE profile_id = 'p003'"
    ).fetchone()
    assert withheld is not None and withheld[:3] == (None, None, None)
    assert json.loads(withheld[3])["personalization"] is False


def test_a_rerun_the_same_day_leaves_exactly_its_own_parts(tmp_path: Path) -> None:
    run(tmp_path, 23)
    summary = run(tmp_path, 8)
    assert sorted(p.name for p in (tmp_path / DAY).iterdir()) == ["part-0000.parquet"]
    assert pq.read_table(tmp_path / summary.files[0]).num_rows == 8


def test_an_empty_snapshot_is_one_empty_part(tmp_path: Path) -> None:
    run(tmp_path, 23)
    summary = run(tmp_path, 0)
    assert summary.files == [f"{DAY}part-0000.parquet"]
    assert sorted(p.name for p in (tmp_path / DAY).iterdir()) == ["part-0000.parquet"]
    table = pq.read_table(tmp_path / summary.files[0])
    assert table.num_rows == 0 and table.schema.equals(PROFILE_SCHEMA)


@pytest.mark.parametrize(
    ("out", "bucket", "root"),
    [
        ("exports", None, "exports"),
        ("s3://my-bucket", "my-bucket", ""),
        ("s3://my-bucket/a/b/", "my-bucket", "a/b/"),
        ("s3://my-bucket/a", "my-bucket", "a/"),
    ],
)
def test_destinations(out: str, bucket: str | None, root: str) -> None:
    assert Destination.parse(out) == Destination(bucket, root)


@pytest.mark.parametrize("out", ["", "s3://", "s3:///prefix", "https://example.org/x"])
def test_bad_destinations_are_refused(out: str) -> None:
    with pytest.raises(ValueError, match="--out"):
        Destination.parse(out)


@pytest.mark.parametrize("key", ["../escape.parquet", "/etc/passwd", "a/../../b"])
def test_the_local_sink_stays_inside_its_directory(tmp_path: Path, key: str) -> None:
    with pytest.raises(ValueError, match="relative path"):
        LocalSink(tmp_path).put(key, b"x")


def test_part_sizes_are_checked() -> None:
    with pytest.raises(ValueError, match="rows_per_part"):
        PartWriter(LocalSink("."), DAY, rows_per_part=5, rows_per_group=10)
