"""Rows to Segment calls: contacts -> identify, orders -> track "Order Completed",
catalog rows -> item records for the recommender. Every row ends as part of an
`Item` (to send) or as a `Reject` naming its row, field and reason, or blank.

Orders come one row per line item (Shopify's export): consecutive rows with the same
order id are one order, whose order-level columns (customer, total, date) are read
from its first row. A file with a JSON `products` column (a list of line items) has
one row per order instead. An order id seen again after other orders is a duplicate.
If one line of an order is bad, every row of the order is rejected: half an order
would misstate its total.

Message ids are uuid5 over the kind, the row's key (customer id or email; order id;
item id) and the call's content: the same file imported twice sends the same ids,
which the pipeline deduplicates; a changed row is a new call.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from functions.imports.fields import (
    Columns,
    FieldError,
    date,
    email,
    money,
    phone,
    quantity,
    resolve,
    text,
    yes,
)
from functions.imports.readers import RawRow
from functions.profiles.interactions import MAX_ORDER_LINES, item_id
from functions.shared.import_config import KindMapping

IMPORT_NAMESPACE = uuid.UUID("2b0e7c8e-6a53-4c0e-9d8e-5f3c1a7b9e21")
LIBRARY = {"name": "beacon-import", "version": "1"}
MAX_LINES = 500  # rows of one order
CONTACT_TRAITS = ("company", "city", "state", "country", "lifecycle_stage")
TRAIT_NAMES = {
    "first_name": "firstName",
    "last_name": "lastName",
    "lifecycle_stage": "lifecycleStage",
}


@dataclass(frozen=True)
class Reject:
    row: int
    field: str | None
    message: str


@dataclass
class Item:
    """One call (or catalog record) made of rows first_row..last_row."""

    rows: list[int]
    body: dict[str, Any]
    notes: list[str] = field(default_factory=list)

    @property
    def last_row(self) -> int:
        return self.rows[-1]


Outcome = Item | Reject


def message_id(kind: str, key: str, body: dict[str, Any]) -> str:
    content = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
    return str(uuid.uuid5(IMPORT_NAMESPACE, f"{kind}\n{key}\n{content}"))


def anonymous_id(key: str) -> str:
    """A stable device-less id for a person known only by email or phone, the same in
    the contacts and the orders file, so their calls share a partition key."""
    return "import-" + str(uuid.uuid5(IMPORT_NAMESPACE, f"person\n{key}"))


def _digest(value: str) -> bytes:
    return hashlib.blake2b(value.encode(), digest_size=10).digest()


@dataclass
class Converter:
    """`header` columns from the file's header; None for JSON lines (resolved per row)."""

    kind: str
    header: Columns | None
    mapping: KindMapping
    phone_region: str
    now: datetime
    _by_keys: dict[tuple[str, ...], Columns] = field(default_factory=dict)
    columns: Columns = field(init=False)

    def __post_init__(self) -> None:
        self.columns = self.header or Columns({}, {}, {})

    seen: dict[bytes, int] = field(default_factory=dict)  # key digest -> first row
    _order: list[tuple[RawRow, Columns]] = field(default_factory=list)  # the open order
    _order_key: str = ""
    _closed_orders: dict[bytes, int] = field(default_factory=dict)

    def feed(self, raw: RawRow) -> Iterator[Outcome]:
        """What the row settles (an order settles when the next order starts)."""
        if raw.blank:
            return  # counted by the caller, not rejected
        if raw.error is not None:
            yield Reject(raw.number, None, raw.error)
            return
        if self.header is None:
            keys = tuple(raw.values)
            if keys not in self._by_keys:
                if len(self._by_keys) > 1000:
                    self._by_keys.clear()
                self._by_keys[keys] = resolve(self.kind, keys, self.mapping, strict=False)
            self.columns = self._by_keys[keys]
        if self.kind == "orders":
            yield from self._feed_order(raw)
            return
        try:
            yield self._contact(raw) if self.kind == "contacts" else self._catalog(raw)
        except FieldError as err:
            yield Reject(raw.number, err.field, str(err))

    def finish(self) -> Iterator[Outcome]:
        yield from self._close_order()

    def _unique(self, keys: dict[str, str | None], row: int) -> None:
        """Each key not seen on an earlier row; then remembered (a rejected row's keys
        are not, so its corrected copy further down is not a duplicate)."""
        digests = {name: _digest(f"{name}\n{key}") for name, key in keys.items() if key}
        for name, digest in digests.items():
            if digest in self.seen:
                raise FieldError(name, f"duplicate {name}: same as row {self.seen[digest]}")
        for digest in digests.values():
            self.seen[digest] = row

    # --- contacts -------------------------------------------------------------------

    def _person(self, values: dict[str, Any]) -> tuple[dict[str, Any], str]:
        """userId/anonymousId and the identifying traits, and the person's key."""
        user = text("user_id", self.columns.value(values, "user_id"), MAX_ID_CHARS)
        mail = email(self.columns.value(values, "email"))
        region = self.mapping.phone_region or self.phone_region
        tel = phone(self.columns.value(values, "phone"), region)
        if not (user or mail or tel):
            raise FieldError("user_id", "no customer id, email or phone: nobody to import")
        ids: dict[str, Any] = {"userId": user} if user else {}
        if not user:
            ids["anonymousId"] = anonymous_id(f"email:{mail}" if mail else f"phone:{tel}")
        traits = {k: v for k, v in (("email", mail), ("phone", tel)) if v}
        return {"ids": ids, "traits": traits}, user or mail or tel or ""

    def _contact(self, raw: RawRow) -> Item:
        values = raw.values
        person, key = self._person(values)
        traits: dict[str, Any] = dict(person["traits"])
        for name in ("first_name", "last_name", "name", *CONTACT_TRAITS):
            found = text(name, self.columns.value(values, name))
            if found:
                traits[TRAIT_NAMES.get(name, name)] = found
        created = date("created_at", self.columns.value(values, "created_at"),
                       self.mapping.date_format, self.now)  # fmt: skip
        updated = date("updated_at", self.columns.value(values, "updated_at"),
                       self.mapping.date_format, self.now)  # fmt: skip
        if created:
            traits["createdAt"] = iso(created)
        self._extra_traits(values, traits)
        body: dict[str, Any] = {"type": "identify", **person["ids"], "traits": traits}
        when = updated or created
        if when:
            body["timestamp"] = iso(when)
        item = self._item("contacts", key, body, [raw], values)
        self._unique(
            {"user_id": person["ids"].get("userId"), "email": traits.get("email")}, raw.number
        )
        return item

    def _extra_traits(self, values: dict[str, Any], traits: dict[str, Any]) -> None:
        for trait, column in self.columns.traits.items():
            found = values.get(column)
            if found is not None and not (isinstance(found, str) and not found.strip()):
                if isinstance(found, (dict, list)) or (isinstance(found, str) and len(found) > 500):
                    raise FieldError(
                        trait, f"trait {trait} must be a value of 500 characters at most"
                    )
                traits[trait] = found.strip() if isinstance(found, str) else found

    def _item(
        self, kind: str, key: str, body: dict[str, Any], raws: list[RawRow], values: dict[str, Any]
    ) -> Item:
        context: dict[str, Any] = {"library": LIBRARY}
        consent = self._consent(values)
        if consent:
            context["consent"] = {"categoryPreferences": consent}
        if body["type"] == "track" and body.get("_traits"):
            context["traits"] = body.pop("_traits")
        body.pop("_traits", None)
        body["context"] = context
        body["messageId"] = message_id(kind, key, body)
        notes = [f"row {r.number}: {r.note}" for r in raws if r.note]
        return Item([r.number for r in raws], body, notes)

    def _consent(self, values: dict[str, Any]) -> dict[str, bool]:
        out: dict[str, bool] = {}
        for category, told in self.columns.consent.items():
            if isinstance(told, bool):
                out[category] = told
                continue
            try:
                found = yes(values.get(told))
            except FieldError as err:
                raise FieldError(told, str(err)) from None
            if found is not None:
                out[category] = found
        return out

    # --- orders ---------------------------------------------------------------------

    def _feed_order(self, raw: RawRow) -> Iterator[Outcome]:
        columns = self.columns
        order = columns.value(raw.values, "order_id")
        key = json.dumps(order, sort_keys=True, default=str).strip('" ')
        if self._order and key != self._order_key:
            yield from self._close_order()
        self.columns = columns
        if order is None:
            yield Reject(raw.number, "order_id", "order_id is missing")
            return
        self._order.append((raw, columns))
        self._order_key = key
        if len(self._order) > MAX_LINES:
            yield from self._close_order()

    def _close_order(self) -> Iterator[Outcome]:
        group, self._order = self._order, []
        if not group:
            return
        raws = [raw for raw, _ in group]
        try:
            yield self._order_item(group)
        except _LineError as err:
            for raw in raws:
                if raw.number == err.row:
                    yield Reject(raw.number, err.field, err.message)
                else:
                    yield Reject(raw.number, err.field, f"order rejected: row {err.row} is bad")

    def _order_item(self, group: list[tuple[RawRow, Columns]]) -> Item:
        """The order of these rows; each row read with its own columns (JSON lines)."""
        first, self.columns = group[0]
        raws = [raw for raw, _ in group]
        try:
            order_id = text("order_id", self.columns.value(first.values, "order_id"), MAX_ID_CHARS)
            if order_id is None:
                raise FieldError("order_id", "order_id is missing")
            digest = _digest(order_id)
            if digest in self._closed_orders:
                raise FieldError(
                    "order_id", f"duplicate order_id: same as row {self._closed_orders[digest]}"
                )
            self._closed_orders[digest] = first.number
            person, _ = self._person(first.values)
            when = date("created_at", self.columns.value(first.values, "created_at"),
                        self.mapping.date_format, self.now)  # fmt: skip
            if when is None:
                raise FieldError("created_at", "created_at is missing: an order needs its date")
            total = money("total", self.columns.value(first.values, "total"))
            currency = text("currency", self.columns.value(first.values, "currency"), 3)
            if currency is not None and not currency.isalpha():
                raise FieldError("currency", f"currency {currency!r} is not a code like USD")
        except FieldError as err:
            raise _LineError(first.number, err.field, str(err)) from None
        products: list[dict[str, Any]] = []
        for raw, self.columns in group:
            products += self._lines(raw)
        self.columns = group[0][1]
        if len(products) > MAX_ORDER_LINES * 10:
            raise _LineError(first.number, "products", "more than 500 line items")
        if total is None:
            total = round(sum(p.get("price", 0) * p.get("quantity", 1) for p in products), 2)
        props: dict[str, Any] = {"order_id": order_id, "total": total, "products": products}
        if currency:
            props["currency"] = currency.upper()
        body: dict[str, Any] = {
            "type": "track", "event": "Order Completed", **person["ids"], "properties": props,
            "timestamp": iso(when), "_traits": person["traits"],
        }  # fmt: skip
        try:
            return self._item("orders", order_id, body, raws, first.values)
        except FieldError as err:
            raise _LineError(first.number, err.field, str(err)) from None

    def _lines(self, raw: RawRow) -> list[dict[str, Any]]:
        try:
            listed = self.columns.value(raw.values, "products")
            if listed is not None:
                return [self._line(line) for line in _product_list(listed)]
            if self.columns.value(raw.values, "product_id") is None:
                return []  # an order row without a line (totals only)
            return [self._line({k: self.columns.value(raw.values, k) for k in LINE_FIELDS})]
        except FieldError as err:
            raise _LineError(raw.number, err.field, str(err)) from None

    def _line(self, values: dict[str, Any]) -> dict[str, Any]:
        raw_id = values.get("product_id", values.get("sku", values.get("id")))
        found = item_id(str(raw_id).strip()) if raw_id is not None else None
        if found is None:
            raise FieldError(
                "product_id", f"product_id {str(raw_id)[:80]!r} is not a valid item id"
            )
        line: dict[str, Any] = {"product_id": found, "quantity": quantity(values.get("quantity"))}
        price = money("price", _blank(values.get("price")))
        if price is not None:
            line["price"] = price
        for name, key in (("product_name", "name"), ("category", "category")):
            value = text(name, _blank(values.get(name, values.get(key))), 100)
            if value:
                line[key] = value
        return line

    # --- catalog --------------------------------------------------------------------

    def _catalog(self, raw: RawRow) -> Item:
        values = raw.values
        raw_id = self.columns.value(values, "item_id")
        found = item_id(str(raw_id).strip()) if raw_id is not None else None
        if found is None:
            raise FieldError("item_id", f"item_id {str(raw_id)[:80]!r} is not a valid item id")
        category = text("category", self.columns.value(values, "category"), 100)
        if category is None:
            raise FieldError("category", "category is missing")
        record: dict[str, Any] = {"item_id": found, "category": category}
        for name in ("brand", "name"):
            value = text(name, self.columns.value(values, name), 100)
            if value:
                record[name] = value
        price = money("price", self.columns.value(values, "price"))
        if price is not None:
            record["price"] = price
        self._unique({"item_id": found}, raw.number)
        notes = [f"row {raw.number}: {raw.note}"] if raw.note else []
        return Item([raw.number], record, notes)


LINE_FIELDS = ("product_id", "quantity", "price", "product_name", "category")
MAX_ID_CHARS = 200


class _LineError(Exception):
    def __init__(self, row: int, field_name: str | None, message: str) -> None:
        self.row, self.field, self.message = row, field_name, message
        super().__init__(message)


def _blank(value: Any) -> Any:
    return None if value is None or (isinstance(value, str) and not value.strip()) else value


def _product_list(value: Any) -> list[dict[str, Any]]:
    if isinstance(value, str):
        try:
            value = json.loads(value[:200_000])
        except (json.JSONDecodeError, RecursionError):
            raise FieldError("products", "products is not a JSON list of line items") from None
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise FieldError("products", "products is not a list of line items")
    if len(value) > MAX_LINES:
        raise FieldError("products", f"more than {MAX_LINES} line items")
    return value


def iso(when: datetime) -> str:
    return when.isoformat(timespec="milliseconds").replace("+00:00", "Z")
