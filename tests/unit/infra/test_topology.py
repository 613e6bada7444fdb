"""The wiring table is consistent, and functions read the names it hands them."""

from __future__ import annotations

import dataclasses

import pytest

from functions.ingest.settings import IngestSettings
from infra.topology import TOPOLOGY, Function, KinesisSource, ResourceNames, env_var


def test_every_reference_names_a_declared_resource():
    TOPOLOGY.validate()


def test_the_whole_pipeline_is_declared():
    assert {s.name for s in TOPOLOGY.streams} == {
        "events",
        "consented",
        "resolved",
        "profile-changes",
    }
    assert {"consent", "identity", "profiles", "deliveries"} <= {t.name for t in TOPOLOGY.tables}
    assert TOPOLOGY.queue("activations").dead_letter == "activations-dlq"
    assert TOPOLOGY.bucket("failed-events").expire_days > 0


def test_undeclared_reference_fails():
    bad = dataclasses.replace(
        TOPOLOGY,
        functions=(Function("x", step="x", purpose="", kinesis_sources=(KinesisSource("nope"),)),),
    )
    with pytest.raises(ValueError, match="stream nope"):
        bad.validate()


def test_stream_consumers_never_block_a_shard():
    for fn in TOPOLOGY.functions:
        for source in fn.kinesis_sources:
            assert source.bisect_on_error and source.report_batch_item_failures
            assert 0 < source.max_retry_attempts <= 10
            assert source.on_failure_bucket


def test_ingest_settings_read_exactly_the_variables_the_table_sets(monkeypatch):
    ingest = TOPOLOGY.function("ingest")
    env = TOPOLOGY.environment_for(ingest, ResourceNames())
    assert env == {
        env_var("stream", "events"): "beacon-events",
        env_var("bucket", "failed-events"): "beacon-failed-events",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings = IngestSettings()
    assert settings.events_stream == "beacon-events"
    assert settings.failed_events_bucket == "beacon-failed-events"


def test_resource_names_overrides():
    names = ResourceNames(overrides={"stream:events": "Beacon-Events-XYZ"})
    assert names.stream("events") == "Beacon-Events-XYZ"
    assert names.table("profiles") == "beacon-profiles"
