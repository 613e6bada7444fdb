"""Audience files for Google Customer Match and Meta Custom Audiences: the platforms'
normalization, SHA-256 hashing, and who is in the file.

Published examples used: Snap's Conversions API parameters page (which states the
same email and phone rules as Meta's: trim, lower-case; phone digits with country
code, no `+`) gives `Person@Example.com` -> `person@example.com` ->
`542d2401...3345`, and `+44 844 412 4653` -> `448444124653` -> a hash starting
`dc008fda46e2e64002cf2f82a4906236282d4` (the page shows that much of it). No page
we could reach publishes a Google Customer Match hash, so the Google expectations
are the documented rules applied by hand (written out as the normalized literal,
then hashed) and are marked as such.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
import string

import phonenumbers
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from functions.exports.audience import (
    GOOGLE_HEADER,
    META_HEADER,
    AudienceSummary,
    Contact,
    audience_rows,
    contact_of,
    e164,
    google_email,
    google_row,
    meta_email,
    meta_name,
    meta_phone,
    meta_row,
    meta_zip,
    sha256_hex,
    to_csv,
)
from functions.exports.profile_rows import ExportPolicy
from tests.unit.exports.helpers import identity, stored

PUBLISHED_EMAIL = "542d240129883c019e106e3b1b2d3f3cb3537c43c425364de8e951d5a3083345"
PUBLISHED_PHONE_PREFIX = "dc008fda46e2e64002cf2f82a4906236282d4"
HEX64 = re.compile(r"^[0-9a-f]{64}$")


def by_hand(normalized: str) -> str:
    return hashlib.sha256(normalized.encode()).hexdigest()


# --- published examples --------------------------------------------------------------


def test_the_published_email_example() -> None:
    assert meta_email("Person@Example.com") == "person@example.com"
    assert sha256_hex(meta_email("  Person@Example.com ") or "") == PUBLISHED_EMAIL
    # Google's rules agree for an address that is not a Gmail one.
    assert sha256_hex(google_email("Person@Example.com") or "") == PUBLISHED_EMAIL


def test_the_published_phone_example() -> None:
    assert meta_phone("+44 844 412 4653", "US") == "448444124653"
    assert sha256_hex("448444124653").startswith(PUBLISHED_PHONE_PREFIX)
    row = meta_row(Contact(phone="+44 844 412 4653"), "US")
    assert row is not None and row[1].startswith(PUBLISHED_PHONE_PREFIX)


# --- Google's documented rules (hashes computed by hand from them) -------------------


def test_google_removes_dots_before_a_gmail_or_googlemail_domain_only() -> None:
    assert google_email(" Jane.Doe@GMail.com ") == "janedoe@gmail.com"
    assert google_email("j.a.n.e@googlemail.com") == "jane@googlemail.com"
    assert google_email("jane.doe@example.com") == "jane.doe@example.com"
    assert meta_email("Jane.Doe@gmail.com") == "jane.doe@gmail.com"  # Meta keeps them


def test_a_google_row_hashes_contacts_and_keeps_country_and_zip_plain() -> None:
    contact = Contact(
        email=" Jane.Doe@GMail.com",
        phone="(415) 555-2671",
        first_name=" Jane ",
        last_name="Doe",
        country="US",
        zip="94103",
    )
    assert google_row(contact, "US") == (
        by_hand("janedoe@gmail.com"),  # by hand from Google's rules
        by_hand("+14155552671"),
        by_hand("jane"),
        by_hand("doe"),
        "US",
        "94103",
    )


def test_a_meta_row_hashes_every_column() -> None:
    contact = Contact(
        email="Jane.Doe@Gmail.com ",
        phone="(415) 555-2671",
        first_name="Mary-Jane",
        last_name="O'Brien",
        country="US",
        zip="94103-1234",
    )
    assert meta_row(contact, "US") == (
        by_hand("jane.doe@gmail.com"),
        by_hand("14155552671"),
        by_hand("maryjane"),
        by_hand("obrien"),
        by_hand("94103"),
        by_hand("us"),
    )


def test_a_phone_without_a_country_code_takes_the_person_then_the_default_region() -> None:
    assert e164("020 7946 0018", "GB") == "+442079460018"
    uk = Contact(phone="020 7946 0018", country="GB")
    row = google_row(uk, "US")
    assert row is not None and row[1] == by_hand("+442079460018")
    assert meta_zip("SW1A 1AA", "GB") == "sw1a1aa"


@pytest.mark.parametrize(
    "contact",
    [
        Contact(),
        Contact(email="not an email", phone="12"),
        Contact(first_name="Jane", last_name="Doe", country="US"),  # no zip: no address match
        Contact(email="x" * 400 + "@example.com"),
    ],
)
def test_nothing_to_match_on_is_no_row(contact: Contact) -> None:
    assert google_row(contact, "US") is None
    assert meta_row(contact, "US") is None


def test_contact_fields_come_from_segment_spec_traits_then_the_graph() -> None:
    traits = {
        "firstName": "Ana",
        "last_name": "Lima",
        "address": {"country": "gb", "postalCode": "SW1A 1AA"},
        "phone": "+44 20 7946 0018",
    }
    contact = contact_of(traits, {"email": ["ana@example.org"]})
    assert contact == Contact(
        email="ana@example.org",
        phone="+44 20 7946 0018",
        first_name="Ana",
        last_name="Lima",
        country="GB",
        zip="SW1A 1AA",
    )
    assert contact_of({"country": "Narnia"}, {}).country is None
    # A zip sent as a number is text; a boolean or an object is nothing.
    assert contact_of({"zip": 94103}, {}).zip == "94103"
    assert contact_of({"zip": True, "email": {"x": 1}}, {}) == Contact()


# --- who is in the file ----------------------------------------------------------------


def test_members_need_advertising_consent_and_not_to_be_held_out() -> None:
    def person(pid: str, **kwargs):  # type: ignore[no-untyped-def]
        return stored(pid, traits={"email": f"{pid}@example.org"}, **kwargs)

    pages = [
        [
            person("in", segments={"vip": False}),
            person("held", segments={"vip": True}),
            person("no-ads", segments={"vip": False}, granted=("personalization",)),
            person("other", segments={"lapsed": False}),
        ],
        [
            person("erased-meanwhile", segments={"vip": False}),
            stored("no-contact", segments={"vip": False}),
            person("merged", segments={"vip": False}),
        ],
    ]
    graph = {
        "in": identity("in"),
        "held": identity("held"),
        "no-ads": identity("no-ads"),
        "other": identity("other"),
        "no-contact": identity("no-contact"),
        "merged": identity("merged", merged_into="in"),
    }
    summary = AudienceSummary()
    rows = list(
        audience_rows(
            pages,
            lambda ids: {i: graph[i] for i in ids if i in graph},
            "vip",
            ExportPolicy(("advertising",)),
            "google",
            "US",
            summary,
        )
    )
    assert [r[0] for r in rows] == [by_hand("in@example.org")]
    assert (summary.members, summary.exported, summary.no_consent) == (3, 1, 1)
    assert (summary.unmatchable, summary.held_out) == (1, 1)


@pytest.mark.parametrize(("header", "make"), [(GOOGLE_HEADER, google_row), (META_HEADER, meta_row)])
def test_the_file_is_a_csv_with_the_platform_header(header, make) -> None:  # type: ignore[no-untyped-def]
    row = make(Contact(email="ana@example.org"), "US")
    text = to_csv(header, [row])
    assert text.splitlines()[0] == ",".join(f'"{h}"' for h in header)
    parsed = list(csv.reader(io.StringIO(text)))
    assert parsed[1] == list(row)


# --- invariants over generated emails and phones ---------------------------------------

LOCAL = st.text(alphabet=string.ascii_letters + string.digits + "._+-", min_size=1, max_size=30)
DOMAIN = st.sampled_from(["gmail.com", "GoogleMail.com", "example.org", "Mail.Example.co.uk"])
SPACE = st.sampled_from(["", " ", "\t", "  \n"])


@settings(max_examples=300)
@given(local=LOCAL, domain=DOMAIN, before=SPACE, after=SPACE)
def test_email_normalization_invariants(local: str, domain: str, before: str, after: str) -> None:
    raw = f"{before}{local}@{domain}{after}"
    for normalize in (meta_email, google_email):
        once = normalize(raw)
        if once is None:
            continue
        assert once == once.strip().lower()
        assert normalize(once) == once  # idempotent
        assert normalize(raw.upper()) == once  # case never matters
        assert HEX64.match(sha256_hex(once))
    google = google_email(raw)
    if google is not None and google.endswith(("@gmail.com", "@googlemail.com")):
        assert "." not in google.partition("@")[0]
        local_part, _, rest = raw.rpartition("@")
        assert google_email(f"{local_part.replace('.', '')}@{rest}") == google


REGIONS = sorted(r for r in phonenumbers.SUPPORTED_REGIONS if phonenumbers.example_number(r))


@st.composite
def written_phone(draw: st.DrawFn) -> tuple[str, str, str]:
    """A valid number of some region, written as people write it: (text, region, E.164)."""
    region = draw(st.sampled_from(REGIONS))
    number = phonenumbers.example_number(region)
    assert number is not None
    truth = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    style = draw(
        st.sampled_from(
            [
                phonenumbers.PhoneNumberFormat.E164,
                phonenumbers.PhoneNumberFormat.INTERNATIONAL,
                phonenumbers.PhoneNumberFormat.NATIONAL,
            ]
        )
    )
    text = phonenumbers.format_number(number, style)
    if draw(st.booleans()):
        text = text.replace(" ", "-")
    return f"{draw(SPACE)}{text}{draw(SPACE)}", region, truth


@settings(max_examples=300)
@given(written_phone())
def test_phone_normalization_invariants(phone: tuple[str, str, str]) -> None:
    text, region, truth = phone
    assert e164(text, region) == truth
    assert meta_phone(text, region) == truth[1:]
    assert (meta_phone(text, region) or "").isdigit()
    assert e164(truth, "US") == truth  # with its +country, the default region is moot


@given(st.text(max_size=40))
def test_meta_names_keep_only_lower_case_letters_and_digits(name: str) -> None:
    normalized = meta_name(name)
    if normalized is not None:
        assert normalized == normalized.lower()
        assert not any(c in string.punctuation or c.isspace() for c in normalized)
        assert meta_name(normalized) == normalized
