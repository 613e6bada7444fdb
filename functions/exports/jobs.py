"""The exports wired to storage: what the scheduled function and `beacon export` run.

`run_profile_export` and `run_audience_export` take the tables' names (and boto3
clients from an operator tool, or the function's own), read through the storage
adapters and hand everything else to the pure modules of this package.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from functools import partial
from typing import Any

from functions.exports.audience import (
    HEADERS,
    AudienceSummary,
    Platform,
    audience_rows,
    to_csv,
)
from functions.exports.parquet import PartWriter, Sink, partition
from functions.exports.profile_rows import ExportPolicy
from functions.exports.profiles import ExportSummary, export_profiles
from functions.exports.scan import parallel_pages
from functions.profiles.stored import StoredProfile
from functions.shared.dal.dynamo import DynamoTable
from functions.shared.dal.identity_store import IdentityStore
from functions.shared.dal.profiles_store import ProfilesStore
from functions.shared.segment_definitions import SegmentsConfig

DEFAULT_SEGMENTS = 4  # parallel Scan segments
PAGE_SIZE = 500  # items a Scan call evaluates (before its filter)


def _stores(
    profiles_table: str, identity_table: str, dynamodb: Any | None
) -> tuple[ProfilesStore, IdentityStore]:
    return (
        ProfilesStore(DynamoTable(profiles_table, dynamodb)),
        IdentityStore(DynamoTable(identity_table, dynamodb)),
    )


def _pages(store: ProfilesStore, segments: int, page_size: int) -> Iterator[list[StoredProfile]]:
    return parallel_pages(lambda n, total: store.scan_live(n, total, page_size), segments)


def run_profile_export(
    *,
    profiles_table: str,
    identity_table: str,
    sink: Sink,
    config: SegmentsConfig,
    policy: ExportPolicy,
    now: datetime,
    prefix: str = "",
    segments: int = DEFAULT_SEGMENTS,
    dynamodb: Any | None = None,
    rows_per_part: int | None = None,
    page_size: int = PAGE_SIZE,
) -> ExportSummary:
    profiles, identity = _stores(profiles_table, identity_table, dynamodb)
    options = {} if rows_per_part is None else {"rows_per_part": rows_per_part}
    if rows_per_part is not None:
        options["rows_per_group"] = min(rows_per_part, 50_000)
    writer = PartWriter(sink, partition("profiles", now, prefix), **options)
    return export_profiles(
        _pages(profiles, segments, page_size),
        partial(identity.load_profiles, consistent=False),
        writer,
        config,
        policy,
        now,
    )


def run_audience_export(
    *,
    profiles_table: str,
    identity_table: str,
    segment_id: str,
    platform: Platform,
    policy: ExportPolicy,
    default_region: str,
    segments: int = DEFAULT_SEGMENTS,
    dynamodb: Any | None = None,
    page_size: int = PAGE_SIZE,
) -> tuple[str, AudienceSummary]:
    """The upload file's text (CSV, header first) and what went into it."""
    profiles, identity = _stores(profiles_table, identity_table, dynamodb)
    summary = AudienceSummary()
    rows = audience_rows(
        _pages(profiles, segments, page_size),
        partial(identity.load_profiles, consistent=False),
        segment_id,
        policy,
        platform,
        default_region,
        summary,
    )
    return to_csv(HEADERS[platform], rows), summary
