"""`beacon import FILE --kind contacts|orders|catalog`: a CRM, order or catalog file
(CSV, JSON lines, Parquet; local or s3://) into a running stack through the ingest
API, validated per row, resumable (docs/import-export.md)."""

from __future__ import annotations

import argparse
import contextlib
import gzip
import hashlib
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any

import yaml
from pydantic import ValidationError

from cli import defaults
from cli.commands import Verbs
from cli.import_io import (
    CatalogWriter,
    ImportFailed,
    IngestSender,
    Progress,
    RejectsFile,
    fingerprint,
    load_state,
    local_copy,
    save_state,
)
from cli.resources import Clients
from functions.imports.fields import FieldError, resolve
from functions.imports.readers import ImportFileError, format_of, read_rows, total_rows
from functions.imports.rows import Converter
from functions.imports.run import Importer, State, Summary
from functions.shared.config import BeaconConfig, load_config
from functions.shared.import_config import KINDS, Imports, KindMapping

DEFAULT_SOURCE = "server"  # backend imports use the server source's key
MAX_BATCH = 2000


def register(verbs: Verbs[Any]) -> None:
    verb = verbs.add_parser(
        "import", help="import a CRM contacts, orders or catalog file (CSV, JSON lines, Parquet)"
    )
    verb.add_argument("file", metavar="FILE", help="a local path or s3://bucket/key")
    verb.add_argument("--kind", choices=KINDS, required=True)
    verb.add_argument("--mapping", type=Path, help="a YAML mapping of columns (replaces imports:)")
    verb.add_argument("--format", choices=("csv", "jsonl", "parquet"), help="default: by suffix")
    verb.add_argument("--endpoint", default=defaults.ENDPOINT, help="the ingest API")
    verb.add_argument("--write-key", help="default: the server source's local key")
    verb.add_argument("--source", default=DEFAULT_SOURCE, help="source whose local key to use")
    verb.add_argument("--rejects", type=Path, help="default: FILE.rejects.csv")
    verb.add_argument("--out", type=Path, help="catalog: where to write (FILE.catalog.jsonl)")
    verb.add_argument(
        "--batch-size", type=int, default=500, help=f"calls per request (<= {MAX_BATCH})"
    )
    verb.add_argument("--restart", action="store_true", help="ignore the checkpoint, send all")
    verb.add_argument("--config", type=Path, default=defaults.CONFIG)
    verb.add_argument("--aws-endpoint", default=defaults.AWS_ENDPOINT, help="for s3://; '' = AWS")
    verb.set_defaults(run=run)


def mapping_for(args: argparse.Namespace, config: BeaconConfig) -> KindMapping:
    if args.mapping is None:
        return config.imports.of(args.kind)
    try:
        data = yaml.safe_load(args.mapping.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as err:
        raise ImportFailed(f"{args.mapping}: {err}") from None
    if isinstance(data, dict) and isinstance(data.get(args.kind), dict):
        data = data[args.kind]  # a file with a section per kind, like `imports:`
    try:
        return Imports.model_validate({args.kind: data}).of(args.kind)
    except ValidationError as err:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'][1:]))}: {e['msg'].removeprefix('Value error, ')}"
            for e in err.errors()
        )
        raise ImportFailed(f"{args.mapping}: {problems}") from None


def write_key(args: argparse.Namespace, config: BeaconConfig) -> str:
    if args.write_key:
        return str(args.write_key)
    for source in config.sources:
        if source.name == args.source:
            return source.local_write_key
    raise ImportFailed(f"no source named {args.source!r} in {args.config}; pass --write-key")


def run(args: argparse.Namespace) -> int:
    try:
        summary = run_import(args)
    except (ImportFailed, ImportFileError) as err:
        print(f"beacon import: {err}", file=sys.stderr)
        return 1
    except FieldError as err:
        print(f"beacon import: {err}", file=sys.stderr)
        return 2
    return 0 if summary.adds_up() else 1


def run_import(args: argparse.Namespace) -> Summary:
    if not 1 <= args.batch_size <= MAX_BATCH:
        raise ImportFailed(f"--batch-size must be 1..{MAX_BATCH}")
    config = load_config(args.config)
    mapping = mapping_for(args, config)
    base = Path(Path(args.file).name if args.file.startswith("s3://") else args.file)
    rejects = RejectsFile(args.rejects or base.with_name(base.name + ".rejects.csv"))
    state_path = rejects.path.with_name(base.name + ".import-state.json")
    fmt = format_of(args.file, args.format)
    clients = Clients(args.aws_endpoint)
    with local_copy(args.file, lambda: clients.client("s3")) as path:
        # The file's bytes and the mapping: either changed, the rows' calls may differ.
        told = hashlib.sha256(mapping.model_dump_json().encode()).hexdigest()[:16]
        print_ = f"{fingerprint(path)};mapping:{told}"
        state = None if args.restart or args.kind == "catalog" else load_state(state_path)
        if state is not None and (state.fingerprint != print_ or state.kind != args.kind):
            changed = "the file or its mapping changed since the checkpoint: starting over"
            print(changed, file=sys.stderr)
            state = None
        if state is not None and state.done:
            print(f"{args.file} was imported already ({state_path}); --restart sends it again")
            return Summary()
        if state is not None:
            print(f"resuming after row {state.last_row} ({state_path})", file=sys.stderr)
        state = state or State(print_, args.kind)
        with path.open("rb") as raw, _maybe_gunzip(raw, args.file, fmt) as stream:
            total = total_rows(stream, fmt)
            size = path.stat().st_size or 1
            header, rows = read_rows(stream, fmt)
            columns = None if header is None else resolve(args.kind, header, mapping)
            converter = Converter(
                args.kind, columns, mapping, config.identity.default_phone_region,
                datetime.now(UTC) + timedelta(minutes=1),
            )  # fmt: skip
            importer: Importer | None = None

            def share() -> float | None:
                if total:
                    return importer.summary.read / total if importer else 0.0
                return raw.tell() / size  # of the file as stored (compressed or not)

            progress = Progress(share)
            out = None
            if args.kind == "catalog":
                args.out = args.out or base.with_name(base.name + ".catalog.jsonl")
                out = args.out.open("w", encoding="utf-8")
                send: Any = CatalogWriter(out)
            else:
                send = IngestSender(args.endpoint, write_key(args, config))
            # A catalog file is rewritten whole each time: no checkpoint.
            checkpoint = save_state(state_path) if args.kind != "catalog" else lambda _s: None
            importer = Importer(
                converter, send, state, checkpoint, rejects.add, progress, args.batch_size
            )
            try:
                summary = importer.run(rows)
                progress(summary, final=True)
            finally:
                rejects.write()
                if out is not None:
                    out.close()
    report(summary, rejects.path, args)
    return summary


def _maybe_gunzip(raw: IO[bytes], name: str, fmt: str) -> contextlib.AbstractContextManager[Any]:
    """`.csv.gz` and `.jsonl.gz` are read through gzip, in chunks like the rest."""
    if not name.lower().endswith(".gz"):
        return contextlib.nullcontext(raw)
    if fmt == "parquet":
        raise ImportFailed("a Parquet file is compressed inside; do not gzip it")
    return gzip.GzipFile(fileobj=raw, mode="rb")


def report(summary: Summary, rejects: Path, args: argparse.Namespace) -> None:
    print(summary.line())
    if summary.rejected:
        print(f"rejects: {rejects}")
    for note in summary.notes[:5]:
        print(f"note: {note}", file=sys.stderr)
    if len(summary.notes) > 5:
        print(
            f"note: and {len(summary.notes) - 5} more rows decoded as Windows-1252", file=sys.stderr
        )
    if args.kind == "catalog":
        print(
            f"catalog for the recommender: beacon train --target recommender --catalog {args.out}"
        )
