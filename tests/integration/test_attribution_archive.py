"""`beacon attribution` over archived Parquet on moto, read by the local engine
(DuckDB): an email-campaign visit, merged into the buyer's profile, and a direct
visit two days later that converts."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest

from cli import main as cli_main
from functions.ingest.enrich import EnrichOptions, enrich_event
from functions.shared.archive import EVENTS, MERGES, archive_row, object_key
from functions.shared.archive_parquet import encode
from functions.shared.dal.archive_store import ArchiveStore
from functions.shared.events import CanonicalEvent
from functions.shared.resolved import ProfileMerged, ResolvedEvent
from tests.integration.aws_helpers import REGION

T0 = datetime(2026, 11, 2, 18, 0, tzinfo=UTC)
CHROME = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko)"
    " Chrome/131.0.0.0 Safari/537.36"
)


@pytest.fixture
def store(mocked_aws: None) -> ArchiveStore:
    s3: Any = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket="archive")
    return ArchiveStore("archive", s3)


def resolved(profile: str, n: int, at: datetime, **fields: Any) -> ResolvedEvent:
    event = CanonicalEvent.model_validate(
        {
            "messageId": f"m{n}",
            "type": "page",
            "anonymousId": "a1",
            "context": {"userAgent": CHROME},
            "source": {"name": "web", "protocol": "segment"},
            "timestamp": at,
            "receivedAt": at + timedelta(seconds=1),
            **fields,
        }
    )
    enrich_event(event, EnrichOptions())
    return ResolvedEvent(profile_id=profile, event=event)


def page(url: str, referrer: str | None = None) -> dict[str, Any]:
    return {"context": {"userAgent": CHROME, "page": {"url": url, "referrer": referrer}}}


def put_events(store: ArchiveStore, records: list[ResolvedEvent]) -> None:
    for record in records:
        row = archive_row(record)[1]
        day = record.event.received_at.strftime("%Y-%m-%d")
        store.put(object_key(EVENTS, day, "s", record.event.message_id), encode(EVENTS, [row]))


def test_attribution_over_the_archive(
    store: ArchiveStore, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    shop = "https://shop.example.com/"
    put_events(
        store,
        [
            # before the identify: an anonymous profile, merged into p1 later
            resolved(
                "anon",
                1,
                T0,
                **page(shop + "?utm_source=news&utm_medium=email&utm_campaign=winter"),
            ),
            resolved("p1", 2, T0 + timedelta(days=2), **page(shop)),
            resolved(
                "p1",
                3,
                T0 + timedelta(days=2, minutes=3),
                type="track",
                event="Order Completed",
                properties={"revenue": 120.0},
                context={},  # from the backend: no page
            ),
            # another person: a search visit that does not convert
            resolved("p2", 4, T0 + timedelta(days=1), **page(shop, "https://www.google.com/")),
            # a bot's visits (kept by a source with exclude_bots false) count for nobody
            resolved(
                "p3",
                5,
                T0 + timedelta(days=1),
                context={
                    "userAgent": "Googlebot/2.1 (+http://www.google.com/bot.html)",
                    "page": {"url": shop, "referrer": "https://www.google.com/"},
                },
                type="track",
                event="Order Completed",
                properties={"revenue": 999},
            ),
        ],
    )
    merge = ProfileMerged(
        merge_id="m", survivor="p1", loser="anon", at=T0 + timedelta(days=2), rule="deterministic"
    )
    store.put(object_key(MERGES, "2026-11-04", "s", "9"), encode(MERGES, [archive_row(merge)[1]]))

    from cli import archive_query
    from cli.archive_query import LocalArchive

    monkeypatch.setattr(archive_query, "archive_engine", lambda args: LocalArchive(store))
    argv = ["attribution", "--since", "2026-11-01", "--until", "2026-11-10", "--format", "json"]
    assert cli_main.main(argv) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["totals"] == {"conversions": 1, "revenue": 120.0}
    models = out["models"]
    assert models["first"] == {"email": {"conversions": 1.0, "revenue": 120.0}}
    assert models["last"] == {"direct": {"conversions": 1.0, "revenue": 120.0}}
    for model in ("linear", "position"):
        assert models[model] == {
            "direct": {"conversions": 0.5, "revenue": 60.0},
            "email": {"conversions": 0.5, "revenue": 60.0},
        }
    # two days apart, half-life 7 days: email 2^(-2/7) / (1 + 2^(-2/7))
    email_share = 2 ** (-2 / 7) / (1 + 2 ** (-2 / 7))
    assert models["time_decay"]["email"]["conversions"] == pytest.approx(email_share, abs=1e-4)
    # Markov: the search path goes to null; email and direct each carry the one
    # conversion (removing either loses it all): half each; search none.
    assert models["markov"] == {
        "direct": {"conversions": 0.5, "revenue": 60.0},
        "email": {"conversions": 0.5, "revenue": 60.0},
        "search": {"conversions": 0.0, "revenue": 0.0},
    }

    argv[argv.index("json")] = "table"
    assert cli_main.main([*argv, "--by", "campaign", "--model", "first"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split() == ["campaign", "first", "conv", "first", "rev"]
    assert table[1].split() == ["winter", "1.0", "120.00"]

    assert cli_main.main(["attribution", "--since", "2026-11-04", "--format", "csv"]) == 0
    # the order is on 2026-11-04, after the window's start: the touches before it count
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("channel,first_conversions,first_revenue,last_conversions")
    assert lines[-1].startswith("(total),1.0,120.0")


def test_bad_windows_and_durations(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main.main(["attribution", "--since", "2026-11-04", "--until", "2026-11-01"]) == 2
    assert "--until must be after --since" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli_main.main(["attribution", "--since", "2026-11-04", "--lookback", "0d"])
    assert "a positive duration" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli_main.main(["attribution", "--since", "yesterday"])
    assert "a date like" in capsys.readouterr().err
