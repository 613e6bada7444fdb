"""`beacon.yaml`'s `personalize` section: what a web page or app may be told.

The touchpoint (`GET /v1/personalize`, functions/personalize) answers with the public
write key, so everything it can say is listed here, and nothing that identifies a
person can be listed: the names below are refused as traits.
"""

from __future__ import annotations

from pydantic import Field, field_validator

from functions.shared.schema import Slug, Strict

# Trait names that hold identifiers or contact data: never told to a page, whatever
# the allow-list says (a validator refuses them; the builder drops look-alike values).
NEVER_TOLD = frozenset(
    {
        "email",
        "phone",
        "user_id",
        "userid",
        "anonymous_id",
        "anonymousid",
        "id",
        "address",
        "ip",
        "birthday",
        "mobile",
        "phone_number",
        "email_address",
    }
)


class IdentifierCache(Strict):
    """The per-container identifier -> profile id cache (an LRU with a time to live)."""

    max_entries: int = Field(default=50_000, ge=0, le=1_000_000)
    ttl_s: float = Field(
        default=300.0,
        ge=0,
        le=3600,
        description="a merge redirects and an erasure marks the decision, so a stale "
        "mapping is caught by the one read the request makes anyway",
    )
    miss_ttl_s: float = Field(
        default=2.0,
        ge=0,
        le=60,
        description="a visitor not known yet is asked again after this (freshness)",
    )


class Personalize(Strict):
    """What `GET /v1/personalize` may answer, and how it is served."""

    required_consent: tuple[str, ...] = Field(
        default=("personalization",),
        description="categories a person must have granted to get a personalized answer",
    )
    segments: tuple[str, ...] | None = Field(
        default=None, description="segment ids a page may learn; all (None) by default"
    )
    traits: tuple[Slug, ...] = Field(
        default=(), description="profile traits a page may read, e.g. first_name"
    )
    computed_traits: tuple[Slug, ...] = Field(
        default=(), description="computed traits a page may read, e.g. favourite_category"
    )
    max_value_chars: int = Field(default=200, ge=1, le=2000, description="longer text is cut")
    cache_max_age_s: int = Field(
        default=0,
        ge=0,
        le=3600,
        description="Cache-Control max-age; 0 means revalidate each time (ETag, 304)",
    )
    provisioned_concurrency: int = Field(
        default=0, ge=0, le=1000, description="warm containers deployed (0: on demand)"
    )
    identifier_cache: IdentifierCache = Field(default_factory=IdentifierCache)

    @field_validator("required_consent")
    @classmethod
    def _lower(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(v.strip().lower() for v in value)

    @field_validator("traits", "computed_traits")
    @classmethod
    def _not_identifying(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        told = sorted(v for v in value if v.lower() in NEVER_TOLD)
        if told:
            raise ValueError(f"{', '.join(told)}: identifiers and contact data are never told")
        return value
