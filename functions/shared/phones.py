"""Phone numbers in E.164, the one form identity, imports and audience exports use.

Imported only by the code that needs it: `phonenumbers` (the lite build in the
Lambda bundles) is in the bundles of identity and the exports only."""

from __future__ import annotations

import phonenumbers


def e164(text: str, region: str) -> str | None:
    """`+14155552671`, or None when phonenumbers finds no valid number; `region` (ISO
    3166 alpha-2) reads a number written without its +country."""
    try:
        number = phonenumbers.parse(text, region.upper())
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return str(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164))
