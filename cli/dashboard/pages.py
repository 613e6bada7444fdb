"""The dashboard: plain server-rendered HTML, no JavaScript.

* `/` — the pipeline today: counts per step (the ledger of `cli/observe.py`),
  segment sizes now and over time, score histograms, delivery outcomes; it
  refreshes itself every 5 s.
* `/dashboard/experiments` — each experiment's report and its lift over the last
  30 days, with the interval (`cli/dashboard/experiments.py`).
* `/dashboard/profile?ref=type:value` — one person's journey as a timeline:
  events, identity merges, consent changes, segment enters/exits, scores and
  webhook deliveries, oldest first; events older than the `resolved` stream's
  7 days come from the archive (docs/archive.md).

`beacon local` and `beacon demo` mount it on the local stack's gateway
(`dashboard_pages`); `beacon dashboard` serves it against a deployed stack (AWS
credentials for the streams and tables, the read API's URL and admin key for
people). Either way behind the admin key (`infra/local/operator_access.py`).
Every value is HTML-escaped.
"""

from __future__ import annotations

import html
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter, deque
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from cli.admin_api import AdminApi, profile_path
from cli.archive_query import LocalArchive
from cli.dashboard.attribution import attribution_sections
from cli.dashboard.experiments import experiment_sections
from cli.dashboard.touchpoint import touchpoint_panel
from cli.observe import Clients, Outcome, observe, stream_records
from functions.experiments.book import ExperimentBook
from functions.shared.config import BeaconConfig
from functions.shared.dal.archive_store import ArchivedHistory, ArchiveStore
from functions.shared.dal.counters import DailyCounters
from functions.shared.dal.dynamo import DynamoTable
from functions.shared.dal.profiles_store import ProfilesStore
from functions.shared.profile_changes import parse_change
from functions.shared.resolved import ProfileMerged, ResolvedEvent, parse_record
from infra.topology import ResourceNames
from models.touches import DEFAULT_CONVERSION

if TYPE_CHECKING:
    from infra.local.gateway import LocalPage
    from infra.local.runtime import LocalStack

HISTORY = 360  # overview samples kept for "sizes over time" (30 min at one per 5 s)
_CSS = """
body{font-family:system-ui,sans-serif;margin:1.5rem;color:#1d2330;background:#f6f7f9}
h1{font-size:1.4rem}h2{font-size:1.05rem;margin-top:1.6rem}
section{background:#fff;border-radius:8px;padding:1rem 1.2rem;margin:1rem 0;
box-shadow:0 1px 2px #0001}
table{border-collapse:collapse}td,th{padding:.25rem .7rem;text-align:left;
border-bottom:1px solid #eee}td.n{text-align:right;font-variant-numeric:tabular-nums}
.bar{display:inline-block;height:.8rem;background:#3d7be0;border-radius:2px}
.kind{display:inline-block;min-width:7.5rem;font-size:.8rem;padding:.1rem .4rem;
border-radius:4px;background:#e8edf7}
.ok{color:#1a7f37}.bad{color:#c62828}form{margin:.5rem 0}input{width:22rem}
"""


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _page(title: str, body: str, refresh: bool = False) -> bytes:
    meta = '<meta http-equiv="refresh" content="5">' if refresh else ""
    return (
        f"<!doctype html><html><head><meta charset='utf-8'>{meta}"
        f"<title>{_e(title)}</title><style>{_CSS}</style></head>"
        f"<body><h1>{_e(title)}</h1>{body}</body></html>"
    ).encode()


def _bars(values: dict[str, float], testid: str) -> str:
    top = max(values.values(), default=0) or 1
    rows = "".join(
        f"<tr><td>{_e(k)}</td><td class='n'>{_e(f'{v:g}')}</td>"
        f"<td><span class='bar' style='width:{int(240 * v / top)}px'></span></td></tr>"
        for k, v in values.items()
    )
    return f"<table data-testid='{testid}'>{rows}</table>"


def _sparkline(points: list[int], width: int = 160, height: int = 28) -> str:
    if len(points) < 2:
        return ""
    top = max(points) or 1
    step = width / (len(points) - 1)
    coords = " ".join(
        f"{i * step:.1f},{height - height * p / top:.1f}" for i, p in enumerate(points)
    )
    return (
        f"<svg width='{width}' height='{height}' aria-label='size over time'>"
        f"<polyline fill='none' stroke='#3d7be0' stroke-width='1.5' points='{coords}'/></svg>"
    )


class Dashboard:
    def __init__(
        self,
        aws: Clients,
        names: ResourceNames,
        api: AdminApi,
        clock: Callable[[], float] = time.time,
        config: BeaconConfig | None = None,
    ) -> None:
        self.aws = aws
        self.names = names
        self.api = api
        self.config = config
        self.clock = clock
        self.history: deque[tuple[float, dict[str, int]]] = deque(maxlen=HISTORY)
        self._lock = threading.Lock()

    def page(
        self,
        method: str,
        path: str,
        headers: dict[str, str],  # noqa: ARG002 - the gateway's page signature
        body: bytes,  # noqa: ARG002
    ) -> tuple[int, dict[str, str], bytes]:
        """A gateway page: GET only, no body."""
        url = urllib.parse.urlsplit(path)
        html_headers = {"Content-Type": "text/html; charset=utf-8", "Cache-Control": "no-store"}
        if method != "GET":
            return 405, html_headers, _page("Method not allowed", "")
        if url.path == "/":
            return 200, html_headers, self.overview()
        if url.path == "/dashboard/experiments":
            return 200, html_headers, self.experiments()
        if url.path == "/dashboard/attribution":
            asked = urllib.parse.parse_qs(url.query).get("conversion", [""])[0]
            return 200, html_headers, self.attribution(asked[:200] or DEFAULT_CONVERSION)
        if url.path == "/dashboard/profile":
            ref = urllib.parse.parse_qs(url.query).get("ref", [""])[0]
            return 200, html_headers, self.profile(ref)
        return 404, html_headers, _page("Not found", f"<p>{_e(url.path)}</p>")

    # --- the overview -------------------------------------------------------------------

    def overview(self) -> bytes:
        outcome = observe(self.aws, self.names)
        with self._lock:
            self.history.append((self.clock(), dict(outcome.sizes)))
            history = list(self.history)
        return _page(
            "Beacon",
            _nav()
            + _lookup_form()
            + _pipeline(outcome)
            + _segments(outcome, history)
            + _scores(outcome)
            + _deliveries(outcome),
            refresh=True,
        )

    # --- experiments ----------------------------------------------------------------------

    def experiments(self) -> bytes:
        dynamodb = self.aws.client("dynamodb")
        store = ProfilesStore(DynamoTable(self.names.table("profiles"), dynamodb))
        daily = DailyCounters(DynamoTable(self.names.table("counters"), dynamodb))
        book = (
            ExperimentBook.from_config(self.config) if self.config else ExperimentBook((), (), ())
        )
        today = datetime.fromtimestamp(self.clock(), UTC).date()
        sections = experiment_sections(book, store.experiment_counters(), daily, today)
        return _page("Experiments", _nav() + sections)

    # --- attribution ----------------------------------------------------------------------

    def attribution(self, conversion: str) -> bytes:
        archive = LocalArchive(ArchiveStore(self.names.bucket("archive"), self.aws.client("s3")))
        now = datetime.fromtimestamp(self.clock(), UTC)
        return _page("Attribution", _nav() + attribution_sections(archive, now, conversion))

    # --- one person -----------------------------------------------------------------------

    def profile(self, ref: str) -> bytes:
        if not ref:
            return _page("Profile", _lookup_form())
        try:
            profile = self.api.get(profile_path(ref))
        except (urllib.error.URLError, ValueError) as err:
            return _page("Profile", _lookup_form() + f"<p class='bad'>{_e(err)}</p>")
        if profile is None:
            return _page("Profile", _lookup_form() + f"<p>No profile for {_e(ref)}.</p>")
        consent = self.api.get(profile_path(ref, "/consent")) or {}
        deliveries = self.api.get(profile_path(ref, "/deliveries")) or {}
        ids = {profile.get("profile_id", ""), *profile.get("merged_from", [])}
        timeline = sorted(
            [
                *self._events_and_merges(ids),
                *self._segment_changes(ids),
                *_consent_rows(consent.get("history", [])),
                *_delivery_rows(deliveries.get("deliveries", [])),
                *_score_rows(profile.get("scores", {})),
            ],
            key=lambda row: row[0],
        )
        told = ""
        if self.config is not None:
            store = ProfilesStore(
                DynamoTable(self.names.table("profiles"), self.aws.client("dynamodb"))
            )
            decision = store.decision(str(profile.get("profile_id", "")))
            told = touchpoint_panel(profile, decision, self.config)
        return _page(
            f"Profile {ref}", _lookup_form(ref) + _summary(profile) + told + _timeline(timeline)
        )

    def _events_and_merges(self, ids: set[str]) -> Iterable[tuple[str, str, str]]:
        seen: set[str] = set()
        for data in stream_records(self.aws, self.names.stream("resolved")):
            record = parse_record(data)
            if isinstance(record, ResolvedEvent) and record.profile_id in ids:
                event = record.event
                seen.add(event.message_id)
                what = event.event or event.name or ""
                yield event.timestamp.isoformat(), f"{event.type.value}", what
            elif isinstance(record, ProfileMerged) and (
                record.survivor in ids or record.loser in ids
            ):
                yield record.at.isoformat(), "merge", f"{record.loser} into {record.survivor}"
        # Older history: the stream keeps 7 days, the archive two years (docs/archive.md).
        yield from archived_rows(self.aws, self.names, ids, seen)

    def _segment_changes(self, ids: set[str]) -> Iterable[tuple[str, str, str]]:
        for data in stream_records(self.aws, self.names.stream("profile-changes")):
            change = parse_change(data)
            if change.profile_id in ids:
                for segment in change.segments:
                    held = " (held out)" if segment.held_out else ""
                    yield segment.at.isoformat(), segment.type, f"{segment.segment_id}{held}"


def archived_rows(
    aws: Clients, names: ResourceNames, ids: set[str], seen: set[str]
) -> Iterable[tuple[str, str, str]]:
    """The person's archived events the stream no longer holds (or never showed):
    read from the archive's files, under every profile id merged into theirs."""
    history = ArchivedHistory(ArchiveStore(names.bucket("archive"), aws.client("s3")))
    try:
        rows = history.events_of(ids)
    except ClientError:
        return  # a deployment without the archive, or no access to it
    for row in rows:
        if row["message_id"] in seen:
            continue
        seen.add(row["message_id"])
        what = row["event"] or row["name"] or ""
        yield row["timestamp"].isoformat(), f"{row['type']} (archive)", what


def dashboard_pages(stack: LocalStack) -> dict[str, LocalPage]:
    """The dashboard's pages for a running local stack (`LocalStack(pages=...)`), which
    serves them behind the admin key."""
    assert stack.aws is not None  # started
    page = Dashboard(
        stack.aws,
        stack.names,
        AdminApi(stack.url, stack.admin_key, timeout_s=15),
        config=stack.config,
    ).page
    return {"/": page, "/dashboard": page}


def _nav() -> str:
    return (
        "<p><a href='/'>pipeline</a> · <a href='/dashboard/experiments'>experiments</a>"
        " · <a href='/dashboard/attribution'>attribution</a></p>"
    )


def _lookup_form(ref: str = "") -> str:
    return (
        "<form action='/dashboard/profile' method='get'>"
        f"<input name='ref' placeholder='email:ana@example.org' value='{_e(ref)}'>"
        "<button>Show profile</button></form>"
    )


def _pipeline(o: Outcome) -> str:
    rows = [
        ("gateway: requests refused at the door", sum(o.refused_at_door.values())),
        ("ingest: events accepted", o.in_stream),
        ("ingest: refused (failed events)", o.failed_total),
        ("consent: forwarded", o.forwarded),
        ("consent: dropped", sum(o.dropped.values())),
        ("identity: events resolved", o.identity.events),
        ("identity: profiles", len(o.identity.profiles)),
        ("identity: merges", sum(o.identity.merges.values())),
        ("segments: events applied", o.profiles.events_applied),
        ("scoring: profiles scored", max((len(v) for v in o.scores.values()), default=0)),
        ("webhook: deliveries", sum(o.deliveries.values())),
    ]
    cells = "".join(f"<tr><td>{_e(k)}</td><td class='n'>{_e(v)}</td></tr>" for k, v in rows)
    balanced = not o.pipeline_problems()
    verdict = (
        "<p class='ok'>Ledger: every forwarded event reached a profile.</p>"
        if balanced
        else "<p class='bad'>Ledger: steps still working, or events missing.</p>"
    )
    return (
        f"<section><h2>Pipeline today</h2><table data-testid='pipeline'>{cells}</table>"
        f"{verdict}</section>"
    )


def _segments(o: Outcome, history: list[tuple[float, dict[str, int]]]) -> str:
    names = sorted({s for _, sizes in history for s in sizes} | set(o.sizes))
    rows = "".join(
        f"<tr><td>{_e(name)}</td><td class='n'>{_e(o.sizes.get(name, 0))}</td>"
        f"<td>{_sparkline([sizes.get(name, 0) for _, sizes in history])}</td></tr>"
        for name in names
    )
    return (
        "<section><h2>Segment sizes (now, and over time)</h2>"
        f"<table data-testid='segments'>{rows}</table></section>"
    )


def _scores(o: Outcome) -> str:
    parts = []
    for model, values in sorted(o.scores.items()):
        counts = Counter(min(int(v * 10), 9) for v in values)
        bins = {f"{i / 10:.1f}-{(i + 1) / 10:.1f}": float(counts[i]) for i in range(10)}
        parts.append(
            f"<h3>{_e(model)} ({len(values)} profiles)</h3>{_bars(bins, f'scores-{model}')}"
        )
    return (
        f"<section><h2>Score distribution</h2>{''.join(parts) or '<p>No scores yet.</p>'}</section>"
    )


def _deliveries(o: Outcome) -> str:
    rows = "".join(
        f"<tr><td>{_e(d)}</td><td>{_e(outcome)}</td><td class='n'>{_e(n)}</td></tr>"
        for (d, outcome), n in sorted(o.deliveries.items())
    )
    return (
        "<section><h2>Deliveries by destination and outcome</h2>"
        f"<table data-testid='deliveries'>{rows}</table></section>"
    )


def _summary(profile: dict[str, Any]) -> str:
    segments = ", ".join(sorted(profile.get("segments", {}))) or "none"
    scores = "; ".join(
        f"{model} {s.get('probability')} (model {s.get('model_version')})"
        for model, s in sorted(profile.get("scores", {}).items())
    )
    identifiers = "; ".join(
        f"{kind}: {', '.join(values)}"
        for kind, values in sorted(profile.get("identifiers", {}).items())
        if not kind.endswith("_sha256")
    )
    return (
        "<section data-testid='summary'><h2>Now</h2><table>"
        f"<tr><td>profile</td><td>{_e(profile.get('profile_id'))}</td></tr>"
        f"<tr><td>identifiers</td><td>{_e(identifiers)}</td></tr>"
        f"<tr><td>segments</td><td>{_e(segments)}</td></tr>"
        f"<tr><td>scores</td><td>{_e(scores or 'none yet')}</td></tr>"
        "</table></section>"
    )


def _timeline(rows: list[tuple[str, str, str]]) -> str:
    cells = "".join(
        f"<tr><td>{_e(at[:19].replace('T', ' '))}</td><td><span class='kind'>{_e(kind)}</span>"
        f"</td><td>{_e(what)}</td></tr>"
        for at, kind, what in rows
    )
    return (
        "<section><h2>Journey</h2>"
        f"<table data-testid='timeline'>{cells or '<tr><td>nothing yet</td></tr>'}</table>"
        "</section>"
    )


def _consent_rows(history: list[dict[str, Any]]) -> Iterable[tuple[str, str, str]]:
    for entry in history:
        changes = ", ".join(
            f"{category} {'granted' if change.get('to') else 'denied'}"
            for category, change in sorted(entry.get("changes", {}).items())
        )
        what = f"{changes or entry.get('message_id', '')} ({entry.get('source', '')})"
        yield str(entry.get("at", "")), "consent", what


def _delivery_rows(deliveries: list[dict[str, Any]]) -> Iterable[tuple[str, str, str]]:
    for delivery in deliveries:
        for attempt in delivery.get("attempts", []):
            what = (
                f"{delivery['destination']}: {delivery['type']} {delivery.get('subject') or ''}"
                f" → {attempt.get('status') or attempt.get('reason')}"
            )
            yield str(attempt.get("at", "")), "delivery", what
        if not delivery.get("attempts"):
            what = f"{delivery['destination']}: {delivery['outcome']} ({delivery['reason']})"
            yield str(delivery.get("updated_at", "")), "delivery", what


def _score_rows(scores: dict[str, Any]) -> Iterable[tuple[str, str, str]]:
    for model, score in scores.items():
        what = f"{model} {score.get('probability')} (model {score.get('model_version')})"
        yield str(score.get("scored_at", "")), "score", what
