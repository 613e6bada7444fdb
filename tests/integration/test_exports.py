"""The exports on moto: profiles written by the real stores, a person erased and one
merged away by the real erasure and merge writes, then a profile export to S3 read
back with pyarrow and DuckDB, and an audience file from the same tables."""

from __future__ import annotations

import csv
import hashlib
import io
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import duckdb
import pyarrow.parquet as pq
import pytest

from functions.api.identity_data import IdentityData
from functions.exports.jobs import run_audience_export, run_profile_export
from functions.exports.parquet import PROFILE_SCHEMA
from functions.exports.profile_rows import ExportPolicy
from functions.profiles.state import Membership, ProfileState
from functions.profiles.stored import StoredProfile
from functions.shared.dal.dynamo import DynamoTable
from functions.shared.dal.export_sink import S3Sink
from functions.shared.dal.identity_store import IdentityStore
from functions.shared.dal.profiles_store import ProfilesStore
from functions.shared.erasure import Person
from functions.shared.identifiers import Identifier
from functions.shared.identity_records import Profile
from functions.shared.segment_definitions import SegmentsConfig
from tests.integration.aws_helpers import REGION, create_bucket, create_table, unique_names

NOW = datetime(2026, 12, 4, 3, 0, tzinfo=UTC)
PEOPLE = 40
ERASED, MERGED, SURVIVOR, NO_CONSENT, NO_ADS = "p000", "p001", "p002", "p003", "p004"
SALT = b"integration-salt"
CATEGORIES = ("necessary", "analytics", "personalization", "advertising")


def email(pid: str) -> str:
    return f"{pid}@example.org"


def granted(pid: str) -> dict[str, bool]:
    allowed = {"personalization", "advertising"}
    if pid == NO_CONSENT:
        allowed = {"advertising"}
    if pid == NO_ADS:
        allowed = {"personalization"}
    return {c: c in allowed for c in CATEGORIES}


@pytest.fixture
def world(mocked_aws: None) -> dict[str, Any]:
    names = unique_names()
    dynamodb = boto3.client("dynamodb", region_name=REGION)
    s3 = boto3.client("s3", region_name=REGION)
    tables = {t: create_table(dynamodb, names, t) for t in ("profiles", "identity")}
    bucket = create_bucket(s3, names, "exports")
    profiles = ProfilesStore(DynamoTable(tables["profiles"], dynamodb))
    identity = IdentityStore(DynamoTable(tables["identity"], dynamodb))
    stored: dict[str, StoredProfile] = {}
    for n in range(PEOPLE):
        pid = f"p{n:03d}"
        node = Identifier("email", email(pid))
        identity.write_node(node, pid, None)
        identity.write_profile(
            Profile(pid, NOW - timedelta(days=30), identifiers={"email": [email(pid)]})
        )
        state = ProfileState(
            traits={"email": email(pid), "firstName": f"Ana{n}", "plan": "gold"},
            first_seen=NOW - timedelta(days=30),
            last_seen=NOW - timedelta(hours=n),
            consent=granted(pid),
            consent_at=NOW - timedelta(days=1),
            memberships={"vip": Membership(NOW - timedelta(days=2))} if n % 2 == 0 else {},
        )
        stored[pid] = StoredProfile(pid, state, scores={"churn": {"score": n / 100}})
        profiles.save(
            stored[pid], due_at=None, at=NOW, size_changes={"vip": 1} if n % 2 == 0 else {}
        )
    # Erased through the read API's participants (identity first, then profiles).
    person = Person(
        asked_for=Identifier("email", email(ERASED)),
        keys={Identifier("email", email(ERASED)).hashed_key(SALT)},
        identifiers={Identifier("email", email(ERASED))},
        profile_ids={ERASED},
    )
    IdentityData(identity, SALT).erase(person, NOW)
    profiles.erase([ERASED], NOW)
    # Merged away: the loser becomes a tombstone pointing at its survivor.
    profiles.bury(stored[MERGED], SURVIVOR, NOW, size_changes={"vip": 0})
    return {"dynamodb": dynamodb, "s3": s3, "tables": tables, "bucket": bucket}


def exported(world: dict[str, Any], **options: Any) -> tuple[Any, list[str]]:
    summary = run_profile_export(
        profiles_table=world["tables"]["profiles"],
        identity_table=world["tables"]["identity"],
        sink=S3Sink(world["bucket"], s3=world["s3"]),
        config=SegmentsConfig(),
        policy=ExportPolicy(("personalization",)),
        now=NOW,
        prefix="exports/",
        dynamodb=world["dynamodb"],
        **options,
    )
    return summary, summary.files


def read_back(world: dict[str, Any], keys: list[str]) -> Any:
    import pyarrow as pa

    tables = []
    for key in keys:
        body = world["s3"].get_object(Bucket=world["bucket"], Key=key)["Body"].read()
        tables.append(pq.read_table(io.BytesIO(body)))
    return pa.concat_tables(tables)


@pytest.mark.parametrize("segments", [1, 3])
def test_the_profile_export_lands_in_s3_without_erased_or_merged_people(
    world: dict[str, Any], segments: int
) -> None:
    summary, keys = exported(world, segments=segments, page_size=7, rows_per_part=15)
    assert keys == [f"exports/profiles/dt=2026-12-04/part-{n:04d}.parquet" for n in range(3)]
    assert (summary.read, summary.exported, summary.withheld) == (PEOPLE - 2, PEOPLE - 3, 1)
    table = read_back(world, keys)
    assert table.schema.equals(PROFILE_SCHEMA)
    rows = {r["profile_id"]: r for r in table.to_pylist()}
    assert sorted(rows) == sorted(f"p{n:03d}" for n in range(PEOPLE) if n not in (0, 1))
    assert email(ERASED) not in json.dumps(table.to_pylist(), default=str)
    assert rows[NO_CONSENT]["consented"] is False and rows[NO_CONSENT]["traits"] is None
    survivor = rows[SURVIVOR]
    assert json.loads(survivor["identifiers"]) == {"email": [email(SURVIVOR)]}
    assert json.loads(survivor["traits"])["plan"] == "gold"
    assert survivor["segment_ids"] == ["vip"]
    assert json.loads(survivor["scores"]) == {"churn": {"score": 0.02}}


def test_duckdb_reads_the_exported_files(world: dict[str, Any], tmp_path: Any) -> None:
    _, keys = exported(world)
    for key in keys:  # DuckDB reads the files as an engine would from the bucket
        path = tmp_path / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(world["s3"].get_object(Bucket=world["bucket"], Key=key)["Body"].read())
    glob = str(tmp_path / "exports" / "profiles" / "*" / "*.parquet")
    count, vip = duckdb.sql(
        f"SELECT count(*), count(*) FILTER (WHERE list_contains(segment_ids, 'vip'))"
        f" FROM read_parquet('{glob}', hive_partitioning = true) WHERE dt = '2026-12-04'"
    ).fetchone() or (0, 0)
    # vip: the even ids but the erased p000 (the withheld p003 is odd).
    assert count == PEOPLE - 2
    assert vip == len([n for n in range(2, PEOPLE, 2)])


def test_a_rerun_replaces_the_days_parts(world: dict[str, Any]) -> None:
    exported(world, rows_per_part=10)
    _, keys = exported(world)
    listed = world["s3"].list_objects_v2(Bucket=world["bucket"], Prefix="exports/profiles/")
    assert (
        [o["Key"] for o in listed["Contents"]]
        == keys
        == ["exports/profiles/dt=2026-12-04/part-0000.parquet"]
    )


def test_an_audience_file_holds_members_with_advertising_consent(world: dict[str, Any]) -> None:
    text, summary = run_audience_export(
        profiles_table=world["tables"]["profiles"],
        identity_table=world["tables"]["identity"],
        segment_id="vip",
        platform="meta",
        policy=ExportPolicy(("advertising",)),
        default_region="US",
        segments=2,
        dynamodb=world["dynamodb"],
        page_size=5,
    )
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == ["EMAIL", "PHONE", "FN", "LN", "ZIP", "COUNTRY"]
    hashed = {r[0] for r in rows[1:]}
    members = [f"p{n:03d}" for n in range(2, PEOPLE, 2) if f"p{n:03d}" != NO_ADS]
    assert hashed == {hashlib.sha256(email(p).encode()).hexdigest() for p in members}
    assert (summary.members, summary.no_consent, summary.exported) == (
        len(members) + 1,
        1,
        len(members),
    )


def test_the_scheduled_handler_exports_into_the_exports_bucket(
    mocked_aws: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The function as EventBridge invokes it, with its row's environment."""
    from functions.exports import handler
    from infra.local.invoke import LocalContext
    from infra.local.schedules import scheduled_event
    from infra.topology import TOPOLOGY, ResourceNames

    function, names = TOPOLOGY.function("exports"), ResourceNames()
    for variable, value in TOPOLOGY.environment_for(function, names).items():
        monkeypatch.setenv(variable, value)
    monkeypatch.setenv("BEACON_CONFIG_FILE", "beacon.yaml")
    monkeypatch.setenv("BEACON_EXPORT_PREFIX", "/daily/")
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    dynamodb = boto3.client("dynamodb", region_name=REGION)
    s3 = boto3.client("s3", region_name=REGION)
    for table in function.reads_tables:
        create_table(dynamodb, names, table)
    create_bucket(s3, names, "exports")
    pid = "scheduled-1"
    IdentityStore(DynamoTable(names.table("identity"), dynamodb)).write_profile(
        Profile(pid, NOW, identifiers={"email": [email(pid)]})
    )
    state = ProfileState(traits={"plan": "gold"}, consent=granted(pid), consent_at=NOW)
    ProfilesStore(DynamoTable(names.table("profiles"), dynamodb)).save(
        StoredProfile(pid, state), due_at=None, at=NOW
    )

    answer = handler.lambda_handler(
        scheduled_event("exports"),
        LocalContext(function_name="exports", memory_limit_in_mb=2048, timeout_s=900),
    )

    day = datetime.now(UTC).strftime("%Y-%m-%d")
    assert answer["exported"] == 1 and answer["read"] == 1
    assert answer["files"] == [f"daily/profiles/dt={day}/part-0000.parquet"]
    body = s3.get_object(Bucket=names.bucket("exports"), Key=answer["files"][0])["Body"].read()
    assert pq.read_table(io.BytesIO(body)).column("profile_id").to_pylist() == [pid]
