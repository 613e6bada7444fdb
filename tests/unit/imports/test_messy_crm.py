"""A messy CRM export (mixed phone formats, duplicates, bad dates, a Windows-1252
name, blank lines) imports with exact per-row rejects, and the calls it sends are
the ones the pipeline expects (identify, historical timestamps, no sentAt)."""

from __future__ import annotations

from functions.imports.rows import anonymous_id
from functions.shared.import_config import KindMapping

from .helpers import Receiver, run

HEADER = "Customer ID,Email,First Name,Last Name,Phone Number,Created at,Marketing Opt In"
ROWS = [
    "C001,ana@example.org,Ana,Silva,(415) 555-2671,2021-03-04,yes",  # 2
    "C002,BO@Example.ORG ,Bo,Li,+44 20 7946 0958,2019-07-15 10:30:00,no",  # 3
    "C003,cy@example.org,Cy,,650.253.0001,1614854400,yes",  # 4: epoch seconds
    "",  # 5: blank
    "C004,not-an-email,Di,,,2020-01-01,yes",  # 6
    "C005,ana@example.org,Ana,S,,2020-01-01,yes",  # 7: the same email as row 2
    "C001,new@example.org,Ana,,,2020-01-01,yes",  # 8: the same customer id as row 2
    "C006,jose@example.org,JOSÉ_CP1252,Núñez,,2020-02-02,yes",  # 9: Windows-1252
    "C007,ed@example.org,Ed,,12345,2020-01-01,yes",  # 10
    "C008,fa@example.org,Fa,,,31/02/2021,yes",  # 11
    "C009,gi@example.org,Gi,,,2035-01-01,yes",  # 12
    ",,Ha,,,2020-01-01,yes",  # 13: nobody
    ",,,,,,",  # 14: blank (only separators)
    "C010,UNDECODABLE@example.org,Iz,,,2020-01-01,yes",  # 15: bytes no codec reads
    "C011,,Ivy,,+1 650 253 0000,2022-02-02,yes",  # 16: phone only
    'C012,jo@example.org,Jo,"O\'Neil, Jr",,2020-05-05,maybe',  # 17
]
CONSENT = KindMapping(consent={"personalization": True, "advertising": "Marketing Opt In"})


def messy_file() -> bytes:
    lines = [HEADER.encode("utf-8")]
    for row in ROWS:
        if "JOSÉ_CP1252" in row:
            lines.append(row.replace("JOSÉ_CP1252", "José").encode("cp1252"))
        elif "UNDECODABLE" in row:
            lines.append(row.replace("UNDECODABLE", "iz").encode() + b"\x81\x8d")
        else:
            lines.append(row.encode("utf-8"))
    return b"\r\n".join(lines) + b"\r\n"


def test_every_row_is_accounted_for_with_its_reason() -> None:
    receiver = Receiver()
    result = run(messy_file(), "contacts", mapping=CONSENT, receiver=receiver)
    assert [(r.row, r.field, r.message) for r in result.rejects] == [
        (6, "email", "email 'not-an-email' is not an email address"),
        (7, "email", "duplicate email: same as row 2"),
        (8, "user_id", "duplicate user_id: same as row 2"),
        (10, "phone", "phone '12345' is not a valid phone number (region US)"),
        (11, "created_at", "created_at '31/02/2021' is not a date"),
        (12, "created_at", "created_at '2035-01-01' is in the future"),
        (13, "user_id", "no customer id, email or phone: nobody to import"),
        (15, None, "not valid UTF-8 or Windows-1252 text"),
        (17, "Marketing Opt In", "consent value 'maybe' is not yes or no"),
    ]
    summary = result.summary
    assert (summary.read, summary.accepted, summary.rejected, summary.blank) == (16, 5, 9, 2)
    assert summary.adds_up()
    assert summary.notes == ["row 9: decoded as Windows-1252"]
    assert len(receiver.calls) == 5 and len(receiver.batches) == 1


def test_the_calls_are_identifies_dated_when_the_contact_was() -> None:
    receiver = Receiver()
    run(messy_file(), "contacts", mapping=CONSENT, receiver=receiver)
    by_user = {call.get("userId", call.get("anonymousId")): call for call in receiver.calls}
    ana = by_user["C001"]
    assert ana["type"] == "identify"
    assert ana["traits"] == {
        "email": "ana@example.org", "phone": "+14155552671", "firstName": "Ana",
        "lastName": "Silva", "createdAt": "2021-03-04T00:00:00.000Z",
    }  # fmt: skip
    assert ana["timestamp"] == "2021-03-04T00:00:00.000Z"
    assert "sentAt" not in ana  # a historical time is taken as is (docs/ingest.md)
    assert ana["context"]["consent"] == {
        "categoryPreferences": {"personalization": True, "advertising": True}
    }
    bo = by_user["C002"]
    assert bo["traits"]["email"] == "bo@example.org"  # trimmed, lower-cased
    assert bo["traits"]["phone"] == "+442079460958"
    assert bo["timestamp"] == "2019-07-15T10:30:00.000Z"
    assert bo["context"]["consent"]["categoryPreferences"]["advertising"] is False
    assert by_user["C003"]["timestamp"] == "2021-03-04T10:40:00.000Z"  # epoch seconds
    assert by_user["C006"]["traits"]["firstName"] == "José"
    assert by_user["C006"]["traits"]["lastName"] == "Núñez"
    ivy = by_user["C011"]
    assert ivy["traits"] == {
        "phone": "+16502530000", "firstName": "Ivy", "createdAt": "2022-02-02T00:00:00.000Z"
    }  # fmt: skip
    assert len({call["messageId"] for call in receiver.calls}) == 5


def test_a_contact_without_customer_id_gets_an_id_derived_from_the_email() -> None:
    data = b"Email,Name\nzoe@example.org,Zoe\n"
    receiver = Receiver()
    run(data, "contacts", receiver=receiver)
    (call,) = receiver.calls
    assert "userId" not in call
    assert call["anonymousId"] == anonymous_id("email:zoe@example.org")
    assert call["traits"] == {"email": "zoe@example.org", "name": "Zoe"}
    assert "timestamp" not in call  # no date column: the time of receipt
    assert "consent" not in call["context"]  # nothing said: the configured default applies


def test_a_bom_and_other_header_spellings_are_recognised() -> None:
    data = (
        "\ufeffRecord ID,E-mail Address,Mobile Phone Number,Create Date\n"
        "7,a@b.io,6502530000,2020-01-02T03:04:05+02:00\n"
    )
    receiver = Receiver()
    result = run(data.encode("utf-8"), "contacts", receiver=receiver)
    assert result.rejects == []
    (call,) = receiver.calls
    assert call["userId"] == "7" and call["traits"]["email"] == "a@b.io"
    assert call["traits"]["phone"] == "+16502530000"
    assert call["timestamp"] == "2020-01-02T01:04:05.000Z"
