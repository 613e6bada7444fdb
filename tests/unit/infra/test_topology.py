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


def test_what_an_erasure_leaves_outlives_every_event_still_in_flight_after_consent() -> None:
    """An event past consent waits at most `max_record_age_s` on `consented` (identity's
    mapping) and again on `resolved` (segments'): the recent erasures and the profiles'
    erasure markers must outlive both, with a margin (docs/identity.md, docs/segments.md)."""
    from datetime import timedelta

    from functions.shared.dal.deliveries_store import RETENTION
    from functions.shared.erasure import IN_FLIGHT_BOUND

    hops = [
        source.max_record_age_s
        for name in ("identity", "segments")
        for source in TOPOLOGY.function(name).kinesis_sources
    ]
    assert timedelta(seconds=sum(hops)) + timedelta(minutes=30) <= IN_FLIGHT_BOUND
    # The delivery log's marker also outlives an activation's stay in the queue and the
    # dead-letter queue after the profile's last change.
    queued = sum(TOPOLOGY.queue(q).retention_days for q in ("activations", "activations-dlq"))
    assert IN_FLIGHT_BOUND + timedelta(days=queued) <= RETENTION
