"""Probabilistic matching, step one: `identify` traits as `MatchTraits`, normalized.

Pure functions, no AWS and no I/O. The identity step turns an event's traits into
`MatchTraits` with `match_traits`; `comparison.py` files them under blocking keys
and scores pairs of them. The word lists live in `word_lists.py`.

Normalization (both sides of every comparison go through the same code):

* names: accents folded (José -> jose, Müller -> muller), lower-case, punctuation
  dropped (O'Brien -> obrien, hyphens split), honorifics (mr, dr, ...) and
  generational suffixes (jr, iii, ...) removed, and every given-name token mapped
  from a nickname or spelling variant to one canonical form (bob -> robert,
  liz -> elizabeth, catherine -> katherine). A `name` trait is split on
  whitespace: the first token is the first name and the rest the last name
  (middle names included; "Smith, John" is understood). Explicit first/last
  name traits win over `name`.
* address: the street line only (the object's `street` plus a second line, or a
  plain string's first comma-separated part plus unit parts), lower-case,
  punctuation removed, abbreviations expanded (st -> street, or saint right
  after the house number; rd -> road, ave -> avenue, n -> north, ...) and every
  unit designator (apt, apartment, suite, ste, flat, #) written `unit`.
* postcode: upper-case, spaces removed; a US ZIP+4 keeps its five-digit ZIP.
  When no postcode trait is given, one at the end of a plain-string address is
  used.
* phone: E.164 through `phonenumbers`, parsed in the address's country when it
  names one, else in the deployment's default region; invalid numbers are None.
* email_local: the part before the last `@`, lower-case, with any `+tag` removed
  and the separators `.`, `_` and `-` removed for every provider, not only
  Gmail: this is a similarity signal, not an identifier (exact emails are
  matched deterministically), and people write `ana.lopez` and `analopez`
  interchangeably. Role accounts (info, admin, sales, ...) are ignored because
  they are shared.

Traits are *usable* for matching with a first and a last name plus at least one
of: a phone, a street address with its postcode, an email local part.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

import phonenumbers

from functions.identity.word_lists import (
    COUNTRIES,
    HONORIFICS,
    NICKNAMES,
    ROLE_LOCALS,
    STREET_WORDS,
    SUFFIXES,
    UNIT_WORDS,
)
from functions.shared.phones import e164

_FOLD = str.maketrans(
    {"ß": "ss", "æ": "ae", "ø": "o", "œ": "oe", "đ": "d", "ł": "l", "þ": "th", "\u0131": "i"}
)
_APOSTROPHES = re.compile("['`\u2019\u00b4]")
_UK_POSTCODE = re.compile(r"^([A-Z]{1,2}\d[A-Z\d]?)(\d[A-Z]{2})$")
_US_ZIP = re.compile(r"^(\d{5})(\d{4})?$")
_POSTCODE_IN_TEXT = re.compile(
    r"\b(\d{5}(?:-\d{4})?|[A-Z]{1,2}\d[A-Z\d]?\s*\d[A-Z]{2})\s*$", re.IGNORECASE
)
_HOUSE_NUMBER = re.compile(r"^\d+[a-z]?$")


@dataclass(frozen=True)
class MatchTraits:
    """The normalized traits probabilistic matching compares (see the module doc)."""

    first_name: str | None = None
    last_name: str | None = None
    address: str | None = None
    postcode: str | None = None
    phone: str | None = None
    email_local: str | None = None

    def as_dict(self) -> dict[str, str]:
        """For storage: every field that is set, by its name."""
        return {f.name: v for f in fields(self) if isinstance(v := getattr(self, f.name), str)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> MatchTraits:
        """The inverse of `as_dict`; other keys and non-string values are ignored."""
        values = {
            f.name: v for f in fields(cls) if isinstance(v := data.get(f.name), str) and v.strip()
        }
        return cls(**values)

    def usable(self) -> bool:
        """A full name plus a phone, an address with its postcode, or an email local part."""
        if not (self.first_name and self.last_name):
            return False
        return bool(self.phone or (self.address and self.postcode) or self.email_local)


# ---------------------------------------------------------------- normalization


def fold(value: str) -> str:
    """Lower-case with accents and ligatures folded to ASCII letters where possible."""
    text = unicodedata.normalize("NFKD", value.strip().lower().translate(_FOLD))
    return "".join(c for c in text if not unicodedata.combining(c))


def _name_tokens(value: str) -> list[str]:
    text = re.sub(_APOSTROPHES, "", fold(value))
    return [t for t in re.split(r"[^a-z]+", text) if t]


def canonical_first(token: str) -> str:
    """One given-name token in canonical form (bob -> robert)."""
    return NICKNAMES.get(token, token)


def normalize_first_name(value: str) -> str | None:
    tokens = [t for t in _name_tokens(value) if t not in HONORIFICS]
    return " ".join(canonical_first(t) for t in tokens) or None


def normalize_last_name(value: str) -> str | None:
    tokens = [t for t in _name_tokens(value) if t not in SUFFIXES]
    return " ".join(tokens) or None


def split_name(value: str) -> tuple[str | None, str | None]:
    """A full `name` as (first, last), normalized: "Ana María López" -> (ana, maria lopez)."""
    parts = [p for p in value.split(",") if set(_name_tokens(p)) - SUFFIXES]
    if len(parts) == 2:  # "Smith, John" (a bare ", Jr." part was dropped above)
        return normalize_first_name(parts[1]), normalize_last_name(parts[0])
    tokens = _name_tokens(" ".join(parts))
    while tokens and tokens[0] in HONORIFICS:
        tokens.pop(0)
    while tokens and tokens[-1] in SUFFIXES:
        tokens.pop()
    if not tokens:
        return None, None
    first = canonical_first(tokens[0])
    return first, (" ".join(tokens[1:]) or None)


def normalize_phone(value: str, default_region: str) -> str | None:
    """E.164 (`+14155552671`), or None when `phonenumbers` finds no valid number."""
    text = str(value).strip()
    if not text or sum(c.isdigit() for c in text) < 6:
        return None
    return e164(text, default_region)


def normalize_address(value: str) -> str | None:
    """A street line in canonical words.

    "12 St Mark's Pl., Apt #4" -> "12 saint marks place unit 4".
    """
    text = fold(value).replace("#", " # ")
    text = re.sub(_APOSTROPHES, "", text)
    raw = [t for t in re.split(r"[^a-z0-9#]+", text) if t]
    out: list[str] = []
    for i, part in enumerate(raw):
        if part == "st":
            # "St" right after the house number (or first) is Saint: "12 St Mark's Pl".
            after_number = i == 0 or _HOUSE_NUMBER.match(raw[i - 1]) is not None
            word = "saint" if after_number and i + 1 < len(raw) else "street"
        elif part == "#":
            word = "unit" if not out or out[-1] != "unit" else ""
        else:
            word = STREET_WORDS.get(part, part)
        if word == "unit" and out and out[-1] == "unit":
            continue
        if word:
            out.append(word)
    return " ".join(out) or None


def normalize_postcode(value: str) -> str | None:
    """Upper-case without spaces; ZIP+4 -> ZIP. "sw1a 1aa" -> "SW1A1AA", "94103-1234" -> "94103"."""
    text = re.sub(r"[^A-Z0-9]", "", fold(str(value)).upper())
    if not text:
        return None
    us = _US_ZIP.match(text)
    return us.group(1) if us else text


def outward_code(postcode: str) -> str | None:
    """The outward half of a UK postcode (SW1A of SW1A1AA); None for other formats."""
    uk = _UK_POSTCODE.match(postcode)
    return uk.group(1) if uk else None


def normalize_email_local(value: str) -> str | None:
    """`Ana.Lopez+shop@Example.org` -> `analopez`; None for role accounts or no `@`."""
    local, at, domain = str(value).strip().rpartition("@")
    if not at or not local or not domain:
        return None
    local = fold(local).partition("+")[0]
    local = re.sub(r"[._\-\s]", "", local)
    if len(local) < 2 or local in ROLE_LOCALS:
        return None
    return local


def _text(value: Any) -> str | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return str(int(value)) if float(value).is_integer() else None
    if isinstance(value, str) and value.strip():
        return value
    return None


def _first_of(traits: Mapping[str, Any], *keys: str) -> str | None:
    for key in keys:
        text = _text(traits.get(key))
        if text is not None:
            return text
    return None


_POSTCODE_KEYS = ("postalCode", "postal_code", "postcode", "zip", "zipCode", "zip_code")


def _is_unit(part: str) -> bool:
    text = fold(part)
    return text.startswith("#") or text.split(" ")[0].rstrip(".") in UNIT_WORDS


def _street_from_string(value: str) -> tuple[str, str | None]:
    """(street line, postcode found at the end) from a one-line address."""
    parts = [p.strip() for p in re.split(r"[,\n;]", value) if p.strip()]
    if not parts:
        return "", None
    street = [parts[0]]
    rest = parts[1:]
    if _is_unit(parts[0]) and rest:  # "Flat 2, 10 High St, ..."
        street.append(rest.pop(0))
    while rest and _is_unit(rest[0]):  # "10 High St, Apt 2, ..."
        street.append(rest.pop(0))
    postcode = None
    if rest:
        found = _POSTCODE_IN_TEXT.search(rest[-1]) or (
            _POSTCODE_IN_TEXT.search(rest[-2]) if len(rest) > 1 else None
        )
        postcode = found.group(1) if found else None
    return " ".join(street), postcode


def _region_for(country: str | None, default_region: str) -> str:
    if not country:
        return default_region
    key = fold(country)
    if key in COUNTRIES:
        return COUNTRIES[key]
    code = "GB" if key == "uk" else key.upper()
    return code if code in phonenumbers.SUPPORTED_REGIONS else default_region


def match_traits(traits: Mapping[str, Any], default_region: str) -> MatchTraits | None:
    """`MatchTraits` from Segment `identify` traits, or None when they are not `usable`.

    Reads firstName/first_name, lastName/last_name, name, phone, email, address
    (Segment's object with street, city, postalCode, state, country, or a plain
    string) and postalCode/postal_code/postcode/zip.
    """
    first_raw = _first_of(traits, "firstName", "first_name", "firstname", "givenName")
    last_raw = _first_of(traits, "lastName", "last_name", "lastname", "surname", "familyName")
    first = normalize_first_name(first_raw) if first_raw else None
    last = normalize_last_name(last_raw) if last_raw else None
    name = _first_of(traits, "name", "fullName", "full_name")
    if name and not (first and last):
        split_first, split_last = split_name(name)
        first = first or split_first
        last = last or split_last

    street: str | None = None
    postcode_raw: str | None = None
    country: str | None = None
    address = traits.get("address")
    if isinstance(address, Mapping):
        line1 = _first_of(address, "street", "street1", "line1", "address1", "streetAddress")
        line2 = _first_of(address, "street2", "line2", "address2")
        street = " ".join(p for p in (line1, line2) if p) or None
        postcode_raw = _first_of(address, *_POSTCODE_KEYS)
        country = _first_of(address, "country", "countryCode", "country_code")
    elif isinstance(address, str) and address.strip():
        street, postcode_raw = _street_from_string(address)
    postcode_raw = _first_of(traits, *_POSTCODE_KEYS) or postcode_raw
    country = country or _first_of(traits, "country", "countryCode")

    phone_raw = _first_of(traits, "phone", "phoneNumber", "phone_number", "mobile")
    email_raw = _first_of(traits, "email")
    result = MatchTraits(
        first_name=first,
        last_name=last,
        address=normalize_address(street) if street else None,
        postcode=normalize_postcode(postcode_raw) if postcode_raw else None,
        phone=(
            normalize_phone(phone_raw, _region_for(country, default_region)) if phone_raw else None
        ),
        email_local=normalize_email_local(email_raw) if email_raw else None,
    )
    return result if result.usable() else None
