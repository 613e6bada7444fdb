"""A segment's members as the customer-list files ad platforms take (docs/exports.md).

Google Customer Match ("Email","Phone","First Name","Last Name","Country","Zip") and
Meta Custom Audiences (EMAIL, PHONE, FN, LN, ZIP, COUNTRY), each normalized by the
platform's own published rules and SHA-256-hashed (lower-case hex) where the platform
says so:

- Google: email trimmed and lower-cased, and for gmail.com / googlemail.com every
  `.` before the `@` removed; phone in E.164 with its `+`; first and last name
  trimmed and lower-cased; all four hashed. Country (ISO 3166-1 alpha-2) and Zip
  are *not* hashed: Google's upload guidelines say a hashed file keeps them plain.
- Meta: email trimmed and lower-cased; phone digits only with the country code, no
  `+` and no leading zeros (E.164 without its `+`); first and last name lower-case
  without punctuation, symbols or spaces; zip lower-case without spaces, the part
  before a `-` (US: its first five digits); country as two lower-case letters.
  All hashed.

Members: profiles in the segment now, not held out (a held-out member is the
experiment's control: no message, no ad), with every category of the audience's
policy granted (`advertising` by default). A member with nothing a platform can
match on (no valid email, phone, or full name + country + zip) is counted, not
written.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import phonenumbers

from functions.exports.profile_rows import ExportPolicy
from functions.profiles.stored import StoredProfile
from functions.shared.identity_records import Profile
from functions.shared.phones import e164 as phone_e164

Platform = Literal["google", "meta"]
PLATFORMS: tuple[Platform, ...] = ("google", "meta")
GOOGLE_HEADER = ("Email", "Phone", "First Name", "Last Name", "Country", "Zip")
META_HEADER = ("EMAIL", "PHONE", "FN", "LN", "ZIP", "COUNTRY")
HEADERS: dict[Platform, tuple[str, ...]] = {"google": GOOGLE_HEADER, "meta": META_HEADER}
MAX_FIELD_CHARS = 320  # longer than any real email or name: a value past it is refused
_GMAIL = frozenset({"gmail.com", "googlemail.com"})
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _text(value: Any) -> str | None:
    """A trait as text (a zip sent as a number too); None for anything else or too long."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return None
    text = str(value).strip()
    return text if text and len(text) <= MAX_FIELD_CHARS else None


# ----------------------------------------------------------------- normalization


def meta_email(value: Any) -> str | None:
    text = _text(value)
    if text is None:
        return None
    email = text.lower()
    return email if _EMAIL.match(email) else None


def google_email(value: Any) -> str | None:
    email = meta_email(value)
    if email is None:
        return None
    local, _, domain = email.rpartition("@")
    if domain in _GMAIL:
        local = local.replace(".", "")
        if not local:
            return None
    return f"{local}@{domain}"


def country_code(value: Any) -> str | None:
    """An ISO 3166-1 alpha-2 code phonenumbers knows (`gb`, ` US ` -> `GB`/`US`)."""
    text = _text(value)
    if text is None:
        return None
    code = text.upper()
    code = "GB" if code == "UK" else code
    return code if code in phonenumbers.SUPPORTED_REGIONS else None


def e164(value: Any, region: str) -> str | None:
    """`+14155552671`: parsed in `region` when it has no `+country`; None if invalid."""
    text = _text(value)
    return None if text is None else phone_e164(text, region)


def meta_phone(value: Any, region: str) -> str | None:
    number = e164(value, region)
    return None if number is None else number.removeprefix("+")


def google_name(value: Any) -> str | None:
    text = _text(value)
    return None if text is None else text.lower()


def meta_name(value: Any) -> str | None:
    """Lower-case letters and digits only (UTF-8 letters kept: `José` -> `josé`)."""
    text = _text(value)
    if text is None:
        return None
    kept = "".join(
        c for c in unicodedata.normalize("NFC", text.lower()) if unicodedata.category(c)[0] in "LNM"
    )
    return kept or None


def google_zip(value: Any) -> str | None:
    return _text(value)


def meta_zip(value: Any, country: str | None) -> str | None:
    text = _text(value)
    if text is None:
        return None
    code = re.sub(r"\s", "", text.lower()).split("-")[0]
    if country == "US":
        code = code[:5]
    return code or None


# ----------------------------------------------------------------- members


@dataclass(frozen=True)
class Contact:
    """What a profile knows to match a person on, raw (normalized per platform)."""

    email: str | None = None
    phone: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    country: str | None = None  # alpha-2, upper-case
    zip: str | None = None


def _first(mapping: Mapping[str, Any], *names: str) -> Any:
    for name in names:
        value = mapping.get(name)
        if value not in (None, ""):
            return value
    return None


def contact_of(traits: Mapping[str, Any], identifiers: Mapping[str, Sequence[str]]) -> Contact:
    """The traits Segment's spec names (`email`, `phone`, `firstName`/`first_name`,
    `lastName`/`last_name`, `address.country`/`address.postalCode`), with the graph's
    email and phone as the fallback."""
    address = traits.get("address")
    address = address if isinstance(address, Mapping) else {}
    emails = list(identifiers.get("email") or ())
    phones = list(identifiers.get("phone") or ())
    return Contact(
        email=_text(_first(traits, "email")) or (emails[0] if emails else None),
        phone=_text(_first(traits, "phone", "phoneNumber", "phone_number"))
        or (phones[0] if phones else None),
        first_name=_text(_first(traits, "firstName", "first_name")),
        last_name=_text(_first(traits, "lastName", "last_name")),
        country=country_code(_first(address, "country") or _first(traits, "country")),
        zip=_text(
            _first(address, "postalCode", "postal_code", "zip")
            or _first(traits, "postalCode", "postal_code", "zip", "zipCode")
        ),
    )


def _hashed(value: str | None) -> str:
    return "" if value is None else sha256_hex(value)


def google_row(contact: Contact, default_region: str) -> tuple[str, ...] | None:
    email = google_email(contact.email)
    phone = e164(contact.phone, contact.country or default_region)
    first, last = google_name(contact.first_name), google_name(contact.last_name)
    country, zip_code = contact.country, google_zip(contact.zip)
    address = first and last and country and zip_code
    if not (email or phone or address):
        return None
    return (
        _hashed(email),
        _hashed(phone),
        _hashed(first),
        _hashed(last),
        country or "",
        zip_code or "",
    )


def meta_row(contact: Contact, default_region: str) -> tuple[str, ...] | None:
    email = meta_email(contact.email)
    phone = meta_phone(contact.phone, contact.country or default_region)
    first, last = meta_name(contact.first_name), meta_name(contact.last_name)
    country = contact.country.lower() if contact.country else None
    zip_code = meta_zip(contact.zip, contact.country)
    if not (email or phone or (first and last and country and zip_code)):
        return None
    return tuple(_hashed(v) for v in (email, phone, first, last, zip_code, country))


ROWS = {"google": google_row, "meta": meta_row}


@dataclass
class AudienceSummary:
    members: int = 0  # in the segment now, not held out
    exported: int = 0
    no_consent: int = 0  # the policy's categories not all granted
    unmatchable: int = 0  # nothing the platform can match on
    held_out: int = 0

    def line(self) -> str:
        return (
            f"{self.members} members: {self.exported} exported, {self.no_consent} without"
            f" consent, {self.unmatchable} with nothing to match on; {self.held_out} held out"
        )


def audience_rows(
    pages: Iterable[list[StoredProfile]],
    identities: Callable[[Sequence[str]], Mapping[str, Profile]],
    segment_id: str,
    policy: ExportPolicy,
    platform: Platform,
    default_region: str,
    summary: AudienceSummary,
) -> Iterator[tuple[str, ...]]:
    """The file's rows for the segment's current members (the header is `HEADERS`).
    `identities(profile_ids)` gives the identity graph's records; a profile the graph
    no longer has (erased meanwhile) or has merged away is left out."""
    make_row = ROWS[platform]
    for page in pages:
        members = []
        for profile in page:
            membership = profile.state.memberships.get(segment_id)
            if membership is None or not profile.live:
                continue
            if membership.held_out:
                summary.held_out += 1
                continue
            members.append(profile)
        if not members:
            continue
        known = identities([p.profile_id for p in members])
        for profile in members:
            identity = known.get(profile.profile_id)
            if identity is None or identity.merged_into is not None:
                continue
            summary.members += 1
            if not policy.allows(profile.state.consent):
                summary.no_consent += 1
                continue
            row = make_row(contact_of(profile.state.traits, identity.identifiers), default_region)
            if row is None:
                summary.unmatchable += 1
                continue
            summary.exported += 1
            yield row


def to_csv(header: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, quoting=csv.QUOTE_ALL, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue()
