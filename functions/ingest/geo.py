"""Where an event came from: a country, region and city from the client's IP.

Looked up in a MaxMind-format database the user supplies (GeoLite2 or GeoIP2,
City or Country; `ingest.enrichment.geoip_database` in beacon.yaml, bundled with
the ingest function: nothing is downloaded at run time), with the full address,
before ingest truncates, hashes or drops it (docs/ingest.md, IP addresses). So
the raw IP still never leaves ingest: only what the database says about it does.

What is kept is city-level at most, by design: coordinates rounded to one decimal
(about 11 km, coarser than the database's own accuracy in a city), no postal code,
no accuracy radius. Reading uses `geoip2`'s database reader only (its web-service
client and their dependencies are not bundled).
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache
from pathlib import Path
from typing import Any

import geoip2.database
import geoip2.errors
import geoip2.models
import maxminddb

MAX_FIELD_CHARS = 100  # a name from the database, bounded like any field we pass on
COORDINATE_DECIMALS = 1


class GeoDatabaseError(Exception):
    """The configured database cannot be read (the message names the file)."""


class GeoLocator:
    """Looks addresses up in one database; `locate` never raises for an address."""

    def __init__(self, database: Path) -> None:
        try:
            self.reader = geoip2.database.Reader(str(database))
        except (OSError, maxminddb.InvalidDatabaseError, ValueError) as err:
            raise GeoDatabaseError(f"geoip database {database}: {err}") from err
        kind = self.reader.metadata().database_type
        self.has_city = "City" in kind
        if not (self.has_city or "Country" in kind):
            raise GeoDatabaseError(
                f"geoip database {database}: a City or Country database, not {kind!r}"
            )

    def locate(self, ip: str | None) -> dict[str, Any] | None:
        """`{country, continent, region, region_name, city, timezone, latitude,
        longitude}` (whatever the database knows), or None: no address, not a public
        one, or not in the database."""
        if not ip:
            return None
        try:
            address = ipaddress.ip_address(ip)
        except ValueError:
            return None
        if not address.is_global:
            return None  # private, loopback, reserved: no place to find
        try:
            found = self.reader.city(ip) if self.has_city else self.reader.country(ip)
        except (geoip2.errors.AddressNotFoundError, ValueError, maxminddb.InvalidDatabaseError):
            return None
        out: dict[str, Any] = {
            "country": found.country.iso_code,
            "continent": found.continent.code,
        }
        if isinstance(found, geoip2.models.City):
            region = found.subdivisions.most_specific
            location = found.location
            out |= {
                "region": region.iso_code,
                "region_name": region.name,
                "city": found.city.name,
                "timezone": location.time_zone,
                "latitude": _rounded(location.latitude),
                "longitude": _rounded(location.longitude),
            }
        located = {k: _bounded(v) for k, v in out.items() if v is not None}
        return located or None


@lru_cache(maxsize=4)
def locator(database: str) -> GeoLocator:
    """One reader per database file and container (opening maps the file)."""
    return GeoLocator(Path(database))


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, COORDINATE_DECIMALS)


def _bounded(value: Any) -> Any:
    return value[:MAX_FIELD_CHARS] if isinstance(value, str) else value
