"""One import, start to end: rows in, batches out through `send`, every row accounted
for, a checkpoint after every acknowledged batch. The CLI and a stack function run
this same loop; only `send`, the checkpoint store and the rejects sink differ.

Resume: the checkpoint holds the file's fingerprint and the last row of the last
acknowledged batch. A resumed run reads the file from the start again (validation and
duplicate detection need every row, and are deterministic), sends nothing up to that
row, and sends from there on. A batch sent but not acknowledged before the
interruption is sent again; its message ids are the same, so the pipeline keeps one.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from functions.imports.readers import RawRow
from functions.imports.rows import Converter, Item, Reject

MAX_EVENT_BYTES = 32 * 1024  # ingest's limit for one event (docs/ingest.md)
MAX_BATCH_BYTES = 450 * 1024  # under ingest's 500 KB per request, with room for the envelope
MAX_WRITTEN_BYTES = 900 * 1024  # under ingest's 1 MB written per request
WRITTEN_OVERHEAD = 600  # what ingest adds to each record (receipt times, source, ids)
MAX_SERVER_REJECTS_KEPT = 10_000
STATE_VERSION = 1


@dataclass
class State:
    """The checkpoint, saved after every acknowledged batch."""

    fingerprint: str
    kind: str
    last_row: int = 0  # rows up to here were sent and acknowledged (or settled)
    server_rejects: list[list[Any]] = field(default_factory=list)  # [row, field, message]
    done: bool = False
    version: int = STATE_VERSION

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1)

    @classmethod
    def from_json(cls, text: str) -> State:
        data = json.loads(text)
        if not isinstance(data, dict) or data.get("version") != STATE_VERSION:
            raise ValueError("not an import checkpoint of this version")
        return cls(
            fingerprint=str(data["fingerprint"]),
            kind=str(data["kind"]),
            last_row=int(data["last_row"]),
            server_rejects=[list(r) for r in data.get("server_rejects", [])],
            done=bool(data.get("done", False)),
        )


@dataclass
class Answer:
    """What the receiver said of a batch: the rejected calls by index, (field, message)."""

    rejected: dict[int, tuple[str | None, str]] = field(default_factory=dict)


@dataclass
class Summary:
    read: int = 0
    accepted: int = 0
    rejected: int = 0
    blank: int = 0
    calls: int = 0  # identify/track calls (or catalog records) acknowledged
    batches: int = 0
    resumed_from: int = 0  # rows already acknowledged by an earlier run
    notes: list[str] = field(default_factory=list)
    last_row: int = 0  # the last row read

    def adds_up(self) -> bool:
        return self.read == self.accepted + self.rejected + self.blank

    def line(self) -> str:
        resumed = f", {self.resumed_from} rows done before resuming" if self.resumed_from else ""
        return (
            f"read {self.read} rows = {self.accepted} accepted + {self.rejected} rejected"
            f" + {self.blank} blank; {self.calls} calls in {self.batches} batches{resumed}"
        )


Send = Callable[[list[dict[str, Any]]], Answer]


@dataclass
class Importer:
    converter: Converter
    send: Send
    state: State
    save_state: Callable[[State], None]
    on_reject: Callable[[Reject], None]
    on_progress: Callable[[Summary], None] = lambda _summary: None
    batch_size: int = 500
    summary: Summary = field(default_factory=Summary)
    _batch: list[Item] = field(default_factory=list)
    _bytes: int = 0
    _written: int = 0

    def run(self, rows: Iterable[RawRow]) -> Summary:
        done_before = {int(r[0]) for r in self.state.server_rejects}
        for reject in self.state.server_rejects:  # from the run before the interruption
            self._reject(Reject(int(reject[0]), reject[1], str(reject[2])))
        for raw in rows:
            self.summary.read += 1
            self.summary.last_row = raw.number
            if raw.blank:
                self.summary.blank += 1
            for outcome in self.converter.feed(raw):
                self._settle(outcome, done_before)
        for outcome in self.converter.finish():
            self._settle(outcome, done_before)
        self._flush()
        self.state.done = True
        self.save_state(self.state)
        self.on_progress(self.summary)
        return self.summary

    def _settle(self, outcome: Item | Reject, done_before: set[int]) -> None:
        if isinstance(outcome, Reject):
            self._reject(outcome)
            return
        self.summary.notes += outcome.notes
        if outcome.last_row <= self.state.last_row:  # acknowledged before an interruption
            kept = [r for r in outcome.rows if r not in done_before]
            self.summary.accepted += len(kept)
            self.summary.resumed_from += len(outcome.rows)
            self.summary.calls += 1 if kept else 0
            return
        text = json.dumps(outcome.body, separators=(",", ":"), ensure_ascii=False)
        size = len(text.encode("utf-8"))
        if size > MAX_EVENT_BYTES:
            for row in outcome.rows:
                self._reject(Reject(row, None, f"the call is larger than {MAX_EVENT_BYTES} bytes"))
            return
        if self._batch and (
            len(self._batch) >= self.batch_size
            or self._bytes + size + 1 > MAX_BATCH_BYTES
            or self._written + size + WRITTEN_OVERHEAD > MAX_WRITTEN_BYTES
        ):
            self._flush()
        self._batch.append(outcome)
        self._bytes += size + 1
        self._written += size + WRITTEN_OVERHEAD

    def _reject(self, reject: Reject) -> None:
        self.summary.rejected += 1
        self.on_reject(reject)

    def _flush(self) -> None:
        batch, self._batch, self._bytes, self._written = self._batch, [], 0, 0
        if not batch:
            return
        answer = self.send([item.body for item in batch])
        for index, item in enumerate(batch):
            refused = answer.rejected.get(index)
            if refused is None:
                self.summary.accepted += len(item.rows)
                self.summary.calls += 1
                continue
            for row in item.rows:
                reject = Reject(row, refused[0], f"refused by ingest: {refused[1]}")
                self._reject(reject)
                if len(self.state.server_rejects) < MAX_SERVER_REJECTS_KEPT:
                    self.state.server_rejects.append([row, refused[0], reject.message])
        self.summary.batches += 1
        self.state.last_row = max(self.state.last_row, batch[-1].last_row)
        self.save_state(self.state)
        self.on_progress(self.summary)
