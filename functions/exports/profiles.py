"""The profile export: pages of stored profiles in, Parquet parts out (docs/exports.md).

One code path for `beacon export profiles` and the scheduled function: the reader
gives pages of live profiles (a paginated Scan), `identities` the identity graph's
records of a page's profile ids (one BatchGetItem per 100), and the `PartWriter`
the files. Counts add up: read = exported + withheld + skipped.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from functions.exports.parquet import PartWriter
from functions.exports.profile_rows import ExportPolicy, profile_row
from functions.profiles.stored import StoredProfile
from functions.shared.identity_records import Profile
from functions.shared.segment_definitions import SegmentsConfig

Identities = Callable[[Sequence[str]], Mapping[str, Profile]]


@dataclass
class ExportSummary:
    read: int = 0  # live profiles the Scan gave
    exported: int = 0  # rows with the person's data (consent allows)
    withheld: int = 0  # rows with only profile id and consent (consent does not allow)
    skipped: int = 0  # no row: erased or merged away while the export ran
    files: list[str] = field(default_factory=list)

    @property
    def rows(self) -> int:
        return self.exported + self.withheld

    def line(self) -> str:
        return (
            f"{self.read} profiles read: {self.exported} exported, {self.withheld} withheld"
            f" (no consent), {self.skipped} skipped (erased or merged meanwhile);"
            f" {len(self.files)} file(s)"
        )


def export_profiles(
    pages: Iterable[list[StoredProfile]],
    identities: Identities,
    writer: PartWriter,
    config: SegmentsConfig,
    policy: ExportPolicy,
    now: datetime,
) -> ExportSummary:
    summary = ExportSummary()
    for page in pages:
        if not page:
            continue
        known = identities([p.profile_id for p in page])
        rows = []
        for profile in page:
            summary.read += 1
            row = profile_row(profile, known.get(profile.profile_id), config, policy, now)
            if row is None:
                summary.skipped += 1
            elif row["consented"]:
                summary.exported += 1
                rows.append(row)
            else:
                summary.withheld += 1
                rows.append(row)
        writer.add(rows)
    summary.files = writer.close()
    return summary
