"""`imports:` in beacon.yaml (or a mapping file): which columns of a bulk file feed
which fields, per kind of import (docs/import-export.md).

Everything is optional: without it, the importer recognises the usual column names
of CRM and shop exports (HubSpot, Salesforce, Shopify). Only pydantic here, as every
function's cold start validates the whole configuration.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator

from functions.shared.schema import Strict, matching

Kind = Literal["contacts", "orders", "catalog"]
KINDS: tuple[Kind, ...] = ("contacts", "orders", "catalog")

# The fields a column can feed, per kind (functions/imports/fields.py maps them).
FIELDS: dict[str, tuple[str, ...]] = {
    "contacts": (
        "user_id", "email", "phone", "first_name", "last_name", "name", "created_at",
        "updated_at", "company", "city", "state", "country", "lifecycle_stage",
    ),
    "orders": (
        "order_id", "user_id", "email", "phone", "total", "currency", "created_at",
        "product_id", "quantity", "price", "product_name", "category", "products",
    ),
    "catalog": ("item_id", "category", "brand", "price", "name"),
}  # fmt: skip

ColumnName = Annotated[str, Field(min_length=1, max_length=200)]
TraitName = Annotated[
    str, matching(r"^[A-Za-z][A-Za-z0-9_]{0,63}$", "must be a trait name like loyalty_tier")
]
Category = Annotated[str, Field(min_length=1, max_length=100)]


class KindMapping(Strict):
    """One kind's mapping. `columns`: field -> the file's column (replaces the default
    names for that field); `traits`: extra traits -> column; `consent`: category ->
    `true`/`false` for every row (your CRM's record of it), or the name of a column
    whose yes/no value decides per row; `date_format`: a strptime format for dates
    that are not ISO 8601 (`%d/%m/%Y`); naive dates are UTC."""

    columns: dict[str, ColumnName] = Field(default_factory=dict, max_length=50)
    traits: dict[TraitName, ColumnName] = Field(default_factory=dict, max_length=100)
    consent: dict[Category, bool | ColumnName] = Field(default_factory=dict, max_length=50)
    date_format: Annotated[str, Field(min_length=2, max_length=50)] | None = None
    phone_region: Annotated[str, Field(min_length=2, max_length=2)] | None = None


class Imports(Strict):
    contacts: KindMapping = Field(default_factory=KindMapping)
    orders: KindMapping = Field(default_factory=KindMapping)
    catalog: KindMapping = Field(default_factory=KindMapping)

    @field_validator("contacts", "orders", "catalog")
    @classmethod
    def _known_fields(cls, value: KindMapping, info: object) -> KindMapping:
        kind = str(getattr(info, "field_name", ""))
        unknown = sorted(set(value.columns) - set(FIELDS[kind]))
        if unknown:
            raise ValueError(
                f"unknown {kind} fields {', '.join(unknown)} (known: {', '.join(FIELDS[kind])})"
            )
        return value

    def of(self, kind: str) -> KindMapping:
        mapping: KindMapping = getattr(self, kind)
        return mapping
