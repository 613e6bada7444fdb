"""The outside of `beacon import`: the file (local or S3), the ingest API over HTTP,
the checkpoint and rejects files, the progress line. The import itself is
functions/imports/ (the same code a stack function runs)."""

from __future__ import annotations

import base64
import contextlib
import csv
import hashlib
import json
import random
import shutil
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from functions.imports.rows import Reject
from functions.imports.run import Answer, State, Summary

RETRIES = 8
TIMEOUT_S = 60


class ImportFailed(RuntimeError):
    """The import cannot go on (the API refused the key, or stayed down)."""


@contextlib.contextmanager
def local_copy(location: str, s3_client: Callable[[], Any]) -> Iterator[Path]:
    """The file itself, or an S3 object downloaded to a temporary file (read in chunks
    from there: Parquet needs to seek)."""
    if not location.startswith("s3://"):
        path = Path(location)
        if not path.is_file():
            raise ImportFailed(f"{location}: no such file")
        yield path
        return
    bucket, _, key = location.removeprefix("s3://").partition("/")
    if not bucket or not key:
        raise ImportFailed(f"{location}: expected s3://bucket/key")
    with tempfile.TemporaryDirectory(prefix="beacon-import-") as folder:
        target = Path(folder) / Path(key).name
        body = s3_client().get_object(Bucket=bucket, Key=key)["Body"]
        with target.open("wb") as out:
            shutil.copyfileobj(body, out, 1024 * 1024)
        yield target


def fingerprint(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1024 * 1024):
            digest.update(chunk)
    return f"sha256:{digest.hexdigest()}"


def load_state(path: Path) -> State | None:
    try:
        return State.from_json(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (ValueError, KeyError, TypeError) as err:
        raise ImportFailed(
            f"{path}: unreadable checkpoint ({err}); remove it or --restart"
        ) from None


def save_state(path: Path) -> Callable[[State], None]:
    def save(state: State) -> None:
        temporary = path.with_name(path.name + ".tmp")
        temporary.write_text(state.to_json(), encoding="utf-8")
        temporary.replace(path)  # atomic: an interruption leaves the old or the new one

    return save


@dataclass
class RejectsFile:
    """row,field,reason as CSV, sorted by row when closed."""

    path: Path
    rejects: list[Reject] = field(default_factory=list)

    def add(self, reject: Reject) -> None:
        self.rejects.append(reject)

    def write(self) -> None:
        with self.path.open("w", newline="", encoding="utf-8") as out:
            writer = csv.writer(out)
            writer.writerow(["row", "field", "reason"])
            for reject in sorted(self.rejects, key=lambda r: r.row):
                writer.writerow([reject.row, reject.field or "", reject.message])


@dataclass
class IngestSender:
    """POST /v1/batch with the write key; retries 429/5xx and connection errors with
    exponential backoff and jitter (ingest answers 503 when Kinesis is saturated)."""

    endpoint: str
    write_key: str
    retries: int = RETRIES
    sleep: Callable[[float], None] = time.sleep

    def __post_init__(self) -> None:
        if not self.endpoint.startswith(("http://", "https://")):
            raise ImportFailed(f"--endpoint must be an http(s) URL, got {self.endpoint!r}")

    def __call__(self, calls: list[dict[str, Any]]) -> Answer:
        body = json.dumps({"batch": calls}, separators=(",", ":"), ensure_ascii=False).encode()
        auth = base64.b64encode(f"{self.write_key}:".encode()).decode()
        for attempt in range(self.retries + 1):
            request = urllib.request.Request(  # noqa: S310 - scheme checked above
                self.endpoint.rstrip("/") + "/v1/batch",
                data=body,
                method="POST",
                headers={"Authorization": f"Basic {auth}", "Content-Type": "application/json"},
            )
            try:
                with urllib.request.urlopen(request, timeout=TIMEOUT_S) as answer:  # noqa: S310
                    return _answer(json.loads(answer.read() or b"{}"))
            except urllib.error.HTTPError as err:
                text = err.read().decode(errors="replace")
                if err.code == 400 and '"rejected"' in text:
                    return _answer(json.loads(text))  # every call of the batch refused
                if err.code not in (429, 500, 502, 503, 504) or attempt == self.retries:
                    raise ImportFailed(f"ingest answered {err.code}: {text[:300]}") from None
            except (urllib.error.URLError, TimeoutError, ConnectionError) as err:
                if attempt == self.retries:
                    raise ImportFailed(f"ingest unreachable at {self.endpoint}: {err}") from None
            self.sleep(min(30.0, 0.25 * 2**attempt) * (0.5 + random.random() / 2))  # noqa: S311
        raise AssertionError("unreachable")


def _answer(data: dict[str, Any]) -> Answer:
    rejected: dict[int, tuple[str | None, str]] = {}
    for item in data.get("rejected", []) or []:
        if isinstance(item, dict) and isinstance(item.get("index"), int):
            reason = f"{item.get('reason', 'rejected')}: {item.get('message', '')}".strip(": ")
            rejected[item["index"]] = (item.get("field"), reason)
    return Answer(rejected)


@dataclass
class CatalogWriter:
    """The catalog kind's `send`: item records as JSON lines, the file `beacon train
    --catalog` reads (models/catalog.py)."""

    handle: IO[str]

    def __call__(self, records: list[dict[str, Any]]) -> Answer:
        for record in records:
            self.handle.write(json.dumps(record, ensure_ascii=False) + "\n")
        return Answer()


@dataclass
class Progress:
    """`12,000 rows · 3,400 rows/s · 41% · ETA 00:00:26` on stderr: on one line redrawn
    twice a second when stderr is a terminal, else a line every 10 s (logs)."""

    position: Callable[[], float | None]  # the share of the file read, when known
    started: float = field(default_factory=time.monotonic)
    shown: float = 0.0
    stream: IO[str] = field(default_factory=lambda: sys.stderr)

    def __call__(self, summary: Summary, final: bool = False) -> None:
        now = time.monotonic()
        tty = self.stream.isatty()
        if not final and now - self.shown < (0.5 if tty else 10.0):
            return
        self.shown = now
        elapsed = max(now - self.started, 1e-6)
        rate = summary.read / elapsed
        line = f"{summary.read:,} rows · {rate:,.0f} rows/s"
        share = self.position()
        if share is not None and share > 0:
            left = elapsed * (1 - share) / share
            line += f" · {share:.0%} · ETA {time.strftime('%H:%M:%S', time.gmtime(left))}"
        self.stream.write(("\r" + line + " " * 8) if tty else line + "\n")
        if final and tty:
            self.stream.write("\n")
        self.stream.flush()
