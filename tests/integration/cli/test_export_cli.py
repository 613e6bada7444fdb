"""`beacon export profiles|audience` for real: against a moto server, as against the
local stack, with the local stack's table names (and a deployed stack's, via --name)."""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from cli import main as cli_main
from functions.profiles.state import Membership, ProfileState
from functions.profiles.stored import StoredProfile
from functions.shared.dal.dynamo import DynamoTable
from functions.shared.dal.identity_store import IdentityStore
from functions.shared.dal.profiles_store import ProfilesStore
from functions.shared.identity_records import Profile
from infra.local.aws import LocalAws, moto_server, table_definition
from infra.topology import TOPOLOGY, ResourceNames
from tests.integration.aws_helpers import HOST, free_port

ROOT = Path(__file__).resolve().parents[3]
CONFIG = ROOT / "beacon.yaml"
NOW = datetime.now(UTC)


@pytest.fixture(scope="module")
def aws() -> Iterator[LocalAws]:
    with moto_server(HOST, free_port()) as server:
        names = ResourceNames()  # the local stack's names
        dynamodb = server.client("dynamodb")
        for table in ("profiles", "identity"):
            dynamodb.create_table(**table_definition(TOPOLOGY.table(table), names.table(table)))
        profiles = ProfilesStore(DynamoTable(names.table("profiles"), dynamodb))
        identity = IdentityStore(DynamoTable(names.table("identity"), dynamodb))
        for n, ads in enumerate((True, True, False)):
            pid = f"cli-{n}"
            identity.write_profile(Profile(pid, NOW, identifiers={"email": [f"{pid}@gmail.com"]}))
            state = ProfileState(
                traits={"email": f"Cli.{n}@Gmail.com", "phone": "(415) 555-267" + str(n)},
                consent={"personalization": True, "advertising": ads},
                consent_at=NOW - timedelta(hours=1),
                memberships={"cart_abandoners": Membership(NOW - timedelta(hours=2))},
            )
            profiles.save(StoredProfile(pid, state), due_at=None, at=NOW)
        server.client("s3").create_bucket(Bucket="lake")
        yield server


def test_profiles_to_a_directory(
    aws: LocalAws, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["export", "profiles", "--config", str(CONFIG), "--aws-endpoint", aws.endpoint]
    assert cli_main.main([*argv, "--out", str(tmp_path), "--segments", "2"]) == 0
    printed = capsys.readouterr()
    (path,) = printed.out.split()
    assert path == str(tmp_path / f"profiles/dt={NOW:%Y-%m-%d}/part-0000.parquet")
    assert sorted(pq.read_table(path).column("profile_id").to_pylist()) == [
        "cli-0",
        "cli-1",
        "cli-2",
    ]
    assert "3 profiles read: 3 exported, 0 withheld" in printed.err


def test_profiles_to_s3(aws: LocalAws, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["export", "profiles", "--config", str(CONFIG), "--aws-endpoint", aws.endpoint]
    assert cli_main.main([*argv, "--out", "s3://lake/beacon/"]) == 0
    key = f"beacon/profiles/dt={NOW:%Y-%m-%d}/part-0000.parquet"
    assert capsys.readouterr().out.split() == [f"s3://lake/{key}"]
    body = aws.client("s3").get_object(Bucket="lake", Key=key)["Body"].read()
    assert pq.read_table(io.BytesIO(body)).num_rows == 3


def test_a_google_audience_file(
    aws: LocalAws, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "cm.csv"
    argv = ["export", "audience", "cart_abandoners", "--platform", "google"]
    argv += ["--config", str(CONFIG), "--aws-endpoint", aws.endpoint, "--out", str(out)]
    assert cli_main.main(argv) == 0
    rows = list(csv.reader(out.open()))
    assert rows[0] == ["Email", "Phone", "First Name", "Last Name", "Country", "Zip"]
    # Hashes of Google's normalized values, computed by hand (dots before @gmail.com go).
    expected = {
        (
            hashlib.sha256(f"cli{n}@gmail.com".encode()).hexdigest(),
            hashlib.sha256(f"+1415555267{n}".encode()).hexdigest(),
        )
        for n in (0, 1)
    }
    assert {(r[0], r[1]) for r in rows[1:]} == expected
    assert "3 members: 2 exported, 1 without consent" in capsys.readouterr().err


def test_a_deployed_stacks_table_names_are_given_with_name(
    aws: LocalAws, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["export", "profiles", "--config", str(CONFIG), "--aws-endpoint", aws.endpoint]
    argv += ["--out", str(tmp_path), "--name", "table:profiles=Beacon-TablesProfiles-NOPE"]
    assert cli_main.main(argv) == 1
    assert "ResourceNotFoundException" in capsys.readouterr().err
