"""Run an import in memory: the real reader, converter and loop, with a `send` that
keeps what it is given (the HTTP side is the e2e test's)."""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from functions.imports.fields import resolve
from functions.imports.readers import read_rows
from functions.imports.rows import Converter, Reject
from functions.imports.run import Answer, Importer, State, Summary
from functions.shared.import_config import KindMapping

NOW = datetime(2026, 12, 1, tzinfo=UTC)


class Interrupted(Exception):
    """The test's stand-in for a killed process or a lost connection."""


@dataclass
class Receiver:
    """Keeps every batch; refuses call `refuse` indexes; fails after `fail_after` batches."""

    batches: list[list[dict[str, Any]]] = field(default_factory=list)
    fail_after: int | None = None
    refuse: dict[int, tuple[str | None, str]] = field(default_factory=dict)

    def __call__(self, calls: list[dict[str, Any]]) -> Answer:
        if self.fail_after is not None and len(self.batches) >= self.fail_after:
            raise Interrupted
        self.batches.append(calls)
        return Answer(dict(self.refuse))

    @property
    def calls(self) -> list[dict[str, Any]]:
        return [call for batch in self.batches for call in batch]


@dataclass
class Run:
    summary: Summary
    rejects: list[Reject]
    state: State


def run(
    data: bytes,
    kind: str,
    fmt: str = "csv",
    mapping: KindMapping | None = None,
    receiver: Receiver | None = None,
    state: State | None = None,
    batch_size: int = 500,
) -> Run:
    mapping = mapping or KindMapping()
    receiver = receiver if receiver is not None else Receiver()
    header, rows = read_rows(io.BytesIO(data), fmt)
    columns = None if header is None else resolve(kind, header, mapping)
    rejects: list[Reject] = []
    state = state or State("sha256:test", kind)
    saved: list[str] = []
    importer = Importer(
        Converter(kind, columns, mapping, "US", NOW),
        receiver,
        state,
        lambda s: saved.append(s.to_json()),
        rejects.append,
        batch_size=batch_size,
    )
    summary = importer.run(rows)
    return Run(summary, sorted(rejects, key=lambda r: r.row), state)
