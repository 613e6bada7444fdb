"""Which standard enrichments ingest adds (docs/ingest.md "Enrichments"), and whether
bots' visits go on past the consent step: `ingest.enrichment` and each source's own
`enrichment` in beacon.yaml (functions/shared/config.py)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import PurePosixPath
from typing import Any

from pydantic import Field, field_validator

from functions.shared.schema import Strict

# The channels ingest's enrichment assigns (functions/ingest/enrich.py); touches on the
# profile and attribution count in them.
CHANNELS = ("paid", "email", "social", "search", "referral", "internal", "direct")


class Enrichment(Strict):
    """Which standard enrichments ingest adds to `context.enrichment` (docs/ingest.md)."""

    campaign: bool = Field(
        default=True, description="utm_*, gclid/fbclid/msclkid, context.campaign"
    )
    referrer: bool = Field(
        default=True, description="referrer medium and source, and the event's channel"
    )
    user_agent: bool = Field(
        default=True, description="browser, OS, device class and the bot flag (ua-parser)"
    )
    geoip_database: str | None = Field(
        default=None,
        max_length=300,
        description="a MaxMind-format City or Country database (.mmdb, e.g. GeoLite2-City), "
        "relative to beacon.yaml, bundled with the ingest function: country, region and city "
        "from the client's IP before it is anonymized (none: no geolocation)",
    )
    exclude_bots: bool = Field(
        default=True,
        description="events flagged as bots stop at the consent step (counted as `bot`): "
        "no profile, no archive row",
    )

    @field_validator("geoip_database")
    @classmethod
    def _inside_the_project(cls, value: str | None) -> str | None:
        # Bundled at the same relative path: it must stay under beacon.yaml's folder.
        if value is not None and (PurePosixPath(value).is_absolute() or ".." in value.split("/")):
            raise ValueError("a path relative to beacon.yaml, without '..'")
        return value


def bot_sources_kept(default: Enrichment, sources: Iterable[Any]) -> frozenset[str]:
    """The sources whose bots' visits go on to profiles (`exclude_bots: false`, their
    own or, without their own `enrichment`, `default`: ingest's)."""
    return frozenset(s.name for s in sources if not (s.enrichment or default).exclude_bots)
