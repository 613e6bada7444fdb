"""`beacon models status` for real: against a moto server, as against the local stack."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from cli import main as cli_main
from functions.scoring.manifest import ModelManifest, load_manifest
from functions.scoring.step import drift_counter
from functions.shared.config import load_config
from functions.shared.dal.counters import DailyCounters
from functions.shared.dal.dynamo import DynamoTable
from infra.local.aws import LocalAws, moto_server, table_definition
from infra.topology import TOPOLOGY, ResourceNames
from tests.integration.aws_helpers import HOST, free_port

ROOT = Path(__file__).resolve().parents[3]
CONFIG = ROOT / "beacon.yaml"
DAY = "2026-03-01"


@pytest.fixture(scope="module")
def aws() -> Iterator[LocalAws]:
    with moto_server(HOST, free_port()) as server:
        yield server


def counters_table(aws: LocalAws, name: str) -> DailyCounters:
    aws.client("dynamodb").create_table(**table_definition(TOPOLOGY.table("counters"), name))
    return DailyCounters(DynamoTable(name, aws.client("dynamodb")))


def histograms(manifest: ModelManifest, rows: int) -> Counter[str]:
    """A day's drift counts as the scoring step writes them: every row in one bin."""
    return Counter({"rows": rows, **{f"{name}|0": rows for name in manifest.feature_names}})


def status(
    aws: LocalAws, capsys: pytest.CaptureFixture[str], *options: str
) -> list[dict[str, object]]:
    argv = ["models", "status", "--config", str(CONFIG), "--aws-endpoint", aws.endpoint]
    assert cli_main.main([*argv, "--day", DAY, *options]) == 0
    printed: list[dict[str, object]] = json.loads(capsys.readouterr().out)
    return printed


def test_prints_each_models_version_and_test_roc_auc(
    aws: LocalAws, capsys: pytest.CaptureFixture[str]
) -> None:
    counters = counters_table(aws, ResourceNames().table("counters"))  # the default name
    manifests = [load_manifest(CONFIG.parent / m) for m in load_config(CONFIG).models.manifests]
    churn = next(m for m in manifests if m.name == "churn")
    counters.record_batch(drift_counter(churn), DAY, "b-1", histograms(churn, rows=4))

    printed = status(aws, capsys)

    models = [m for m in printed if m["model"] != "personas"]
    assert [(m["model"], m["version"], m["test_roc_auc"]) for m in models] == [
        (m.name, m.version, m.metrics.roc_auc) for m in manifests
    ]
    personas = printed[-1]  # the persona mix comes after the models, without a ROC-AUC
    assert personas["model"] == "personas" and personas["rows_scored"] == 0
    by_model = {m["model"]: m for m in printed}
    assert by_model["churn"]["rows_scored"] == 4
    assert set(by_model["churn"]["psi"]) == set(churn.feature_names)  # type: ignore[arg-type]
    assert by_model["purchase"]["rows_scored"] == 0


def test_reads_the_counters_table_it_is_given(
    aws: LocalAws, capsys: pytest.CaptureFixture[str]
) -> None:
    counters = counters_table(aws, "Beacon-TablesCounters-1A2B")  # a deployed stack's name
    churn = load_manifest(CONFIG.parent / load_config(CONFIG).models.manifests[0])
    counters.record_batch(drift_counter(churn), DAY, "b-1", histograms(churn, rows=7))

    printed = status(aws, capsys, "--counters-table", "Beacon-TablesCounters-1A2B")

    assert {m["model"]: m["rows_scored"] for m in printed}[churn.name] == 7
