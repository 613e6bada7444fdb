"""Which column feeds which field, and the values' checks (email, phone, date, money).

Default column names cover the usual exports (HubSpot, Salesforce, Shopify,
WooCommerce): names are compared without case, spaces or punctuation, so
"E-mail", "Email Address" and "email_address" are one name. A mapping
(`imports:` in beacon.yaml or `--mapping FILE`) replaces a field's default names
with the one column it names.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from functions.shared.import_config import FIELDS, KindMapping
from functions.shared.phones import e164

DEFAULT_COLUMNS: dict[str, dict[str, tuple[str, ...]]] = {
    "contacts": {
        "user_id": ("customer id", "customer_id", "user id", "contact id", "record id",
                    "external id", "customer number"),
        "email": ("email", "e-mail", "email address", "customer email", "primary email"),
        "phone": ("phone", "phone number", "mobile", "mobile phone", "mobile phone number",
                  "telephone", "default address phone"),
        "first_name": ("first name", "firstname", "given name"),
        "last_name": ("last name", "lastname", "surname", "family name"),
        "name": ("full name", "name", "customer name"),
        "created_at": ("created at", "create date", "created date", "signup date",
                       "date created", "created"),
        "updated_at": ("updated at", "last modified date", "last modified", "updated"),
        "company": ("company", "company name", "account name"),
        "city": ("city", "default address city", "mailing city"),
        "state": ("state", "province", "state/region", "default address province code"),
        "country": ("country", "country/region", "default address country code",
                    "mailing country"),
        "lifecycle_stage": ("lifecycle stage", "lifecyclestage", "lead status"),
    },
    "orders": {
        "order_id": ("order id", "order_id", "order number", "order", "name", "order name"),
        "user_id": ("customer id", "user id", "customer_id"),
        "email": ("email", "e-mail", "customer email", "billing email"),
        "phone": ("phone", "billing phone", "phone number"),
        "total": ("total", "order total", "total price", "amount", "grand total"),
        "currency": ("currency", "currency code"),
        "created_at": ("created at", "order date", "processed at", "paid at", "date",
                       "created"),
        "product_id": ("lineitem sku", "sku", "product id", "product_id", "item id",
                       "variant sku"),
        "quantity": ("lineitem quantity", "quantity", "qty"),
        "price": ("lineitem price", "price", "unit price", "item price"),
        "product_name": ("lineitem name", "product name", "item name"),
        "category": ("category", "product type", "lineitem category"),
        "products": ("products", "line items"),
    },
    "catalog": {
        "item_id": ("item id", "item_id", "product id", "sku", "variant sku", "id"),
        "category": ("category", "product type", "type", "product category"),
        "brand": ("brand", "vendor", "manufacturer"),
        "price": ("price", "variant price", "unit price"),
        "name": ("name", "title", "product name"),
    },
}  # fmt: skip

EMAIL = re.compile(r"^[^@\s\"(),:;<>\[\]\\]{1,64}@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$")
MAX_EMAIL = 254
MAX_TEXT = 200
MAX_ID = 200
YEAR_RANGE = (1900, 2100)
ISO_FORMATS = (
    "%Y-%m-%d %H:%M:%S %z",  # Shopify: 2024-03-05 14:02:11 -0500
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%d %H:%M",
    "%Y/%m/%d",
    "%Y/%m/%d %H:%M:%S",
)


class FieldError(ValueError):
    """A value that cannot be used; `field` names it."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        super().__init__(message)


def squash(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


@dataclass(frozen=True)
class Columns:
    """The columns of one file, resolved for one kind."""

    fields: dict[str, str]  # field -> column as the file names it
    traits: dict[str, str]  # extra trait -> column
    consent: dict[str, bool | str]  # category -> granted for all rows, or a column

    def value(self, row: Mapping[str, Any], field: str) -> Any:
        column = self.fields.get(field)
        return None if column is None else _blank_none(row.get(column))


def resolve(kind: str, header: Iterable[str], mapping: KindMapping, strict: bool = True) -> Columns:
    """Fields found in the header: the mapping's column if it names one (which must then
    exist, when `strict`: a JSON line names only the fields it has), else the first
    default name present."""
    present = {squash(name): name for name in header if name}
    fields: dict[str, str] = {}
    for field in FIELDS[kind]:
        if field in mapping.columns:
            wanted = mapping.columns[field]
            if squash(wanted) not in present:
                if not strict:
                    continue
                raise FieldError(
                    field, f"mapping: column {wanted!r} for {field} is not in the file"
                )
            fields[field] = present[squash(wanted)]
            continue
        for name in DEFAULT_COLUMNS[kind][field]:
            if squash(name) in present and present[squash(name)] not in fields.values():
                fields[field] = present[squash(name)]
                break
    traits = {}
    for trait, column in mapping.traits.items():
        if squash(column) not in present:
            if not strict:
                continue
            raise FieldError(
                trait, f"mapping: column {column!r} for trait {trait} is not in the file"
            )
        traits[trait] = present[squash(column)]
    consent: dict[str, bool | str] = {}
    for category, told in mapping.consent.items():
        if isinstance(told, str):
            if squash(told) not in present:
                if not strict:
                    continue
                raise FieldError(category, f"mapping: consent column {told!r} is not in the file")
            told = present[squash(told)]
        consent[category.lower()] = told
    return Columns(fields, traits, consent)


def _blank_none(value: Any) -> Any:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def text(field: str, value: Any, limit: int = MAX_TEXT) -> str | None:
    if value is None:
        return None
    if isinstance(value, (dict, list)):
        raise FieldError(field, f"{field} must be text, not {type(value).__name__}")
    out = str(value).strip()
    if len(out) > limit:
        raise FieldError(field, f"{field} is longer than {limit} characters")
    return out or None


def email(value: Any) -> str | None:
    found = text("email", value, MAX_EMAIL)
    if found is None:
        return None
    if not EMAIL.match(found):
        raise FieldError("email", f"email {found[:80]!r} is not an email address")
    return found.lower()


def phone(value: Any, region: str) -> str | None:
    found = text("phone", value, 64)
    if found is None:
        return None
    bad = FieldError("phone", f"phone {found!r} is not a valid phone number (region {region})")
    if sum(c.isdigit() for c in found) < 6:
        raise bad
    number = e164(found, region)
    if number is None:
        raise bad
    return number


def date(field: str, value: Any, date_format: str | None, now: datetime) -> datetime | None:
    """A date or time, UTC if it has no offset; not before 1900 nor after `now`."""
    if value is None:
        return None
    parsed = _parse_date(field, value, date_format)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    parsed = parsed.astimezone(UTC)
    if not YEAR_RANGE[0] <= parsed.year <= YEAR_RANGE[1]:
        raise FieldError(field, f"{field} {str(value)[:40]!r} is not a plausible date")
    if parsed > now:
        raise FieldError(field, f"{field} {str(value)[:40]!r} is in the future")
    return parsed


def _parse_date(field: str, value: Any, date_format: str | None) -> datetime:
    if isinstance(value, datetime):
        return value
    if hasattr(value, "isoformat") and hasattr(value, "year"):  # a date
        return datetime(value.year, value.month, value.day)
    bad = FieldError(field, f"{field} {str(value)[:40]!r} is not a date")
    if isinstance(value, bool):
        raise bad
    if isinstance(value, (int, float)):
        return _epoch(field, float(value))
    found = str(value).strip()[:64]
    if date_format:
        try:
            return datetime.strptime(found, date_format)
        except ValueError:
            raise FieldError(
                field, f"{field} {found!r} does not match the date format {date_format!r}"
            ) from None
    if re.fullmatch(r"\d{9,13}", found):
        return _epoch(field, float(found))
    try:
        return datetime.fromisoformat(found.replace("Z", "+00:00"))
    except ValueError:
        pass
    for pattern in ISO_FORMATS:
        try:
            return datetime.strptime(found, pattern)
        except ValueError:
            continue
    raise bad


def _epoch(field: str, seconds: float) -> datetime:
    if not math.isfinite(seconds):
        raise FieldError(field, f"{field} is not a date")
    if seconds > 1e11:  # milliseconds
        seconds /= 1000
    try:
        return datetime.fromtimestamp(seconds, UTC)
    except (OverflowError, OSError, ValueError):
        raise FieldError(field, f"{field} {seconds!r} is not a date") from None


def money(field: str, value: Any) -> float | None:
    """A non-negative amount ("1,234.50", "$12", 12.5), as a float rounded to cents."""
    if value is None:
        return None
    if isinstance(value, (bool, dict, list)):
        raise FieldError(field, f"{field} is not an amount")
    found = re.sub(r"^[$€£¥]|[,\s]", "", str(value).strip())[:40]
    try:
        amount = Decimal(found)
    except InvalidOperation:
        raise FieldError(field, f"{field} {str(value)[:40]!r} is not an amount") from None
    if not amount.is_finite() or amount < 0 or amount > Decimal("1e9"):
        raise FieldError(field, f"{field} {str(value)[:40]!r} is not an amount >= 0")
    return float(round(amount, 2))


def quantity(value: Any) -> int:
    if value is None:
        return 1
    try:
        number = Decimal(str(value).strip()[:20])
    except InvalidOperation:
        raise FieldError("quantity", f"quantity {str(value)[:40]!r} is not a number") from None
    if not number.is_finite() or number != number.to_integral_value() or not 0 < number <= 10**6:
        raise FieldError("quantity", f"quantity {str(value)[:40]!r} is not a whole number > 0")
    return int(number)


def yes(value: Any) -> bool | None:
    """A consent column: yes/true/1/opted in -> True; no/false/0 -> False; blank: None."""
    if value is None:
        return None
    if isinstance(value, bool):
        return value
    word = squash(str(value))
    if word in {"yes", "y", "true", "t", "1", "optedin", "optin", "subscribed", "granted"}:
        return True
    if word in {"no", "n", "false", "f", "0", "optedout", "optout", "unsubscribed", "denied"}:
        return False
    raise FieldError("consent", f"consent value {str(value)[:40]!r} is not yes or no")
