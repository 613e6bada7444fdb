"""The example shop: a page that runs the real, unmodified trackers against Beacon.

`/shop/` is a small store front that loads Segment's analytics.js
(`@segment/analytics-next`, the standalone build the Segment snippet loads) and the
Snowplow browser tracker (`@snowplow/browser-tracker`), both from the npm registry
(package.json pins them; `make` installs them into node_modules), pointed at this
stack, plus Beacon's own `beacon.js` for the personalized blocks. The trackers'
files are served as Segment's CDN lays them out, so analytics.js needs only its
CDN changed (`analytics._cdn`), as with RudderStack's and Jitsu's endpoints:
  /analytics.js/v1/<writeKey>/analytics.min.js   the standalone analytics.js
  /analytics-next/bundles/<chunk>.js             the chunks it loads on demand
  /vendor/snowplow/sp.js                         the Snowplow browser tracker (UMD)
Its settings come from ingest's `/v1/projects/<writeKey>/settings` (a deployed
stack answers that too). Public pages: no admin key, nothing about anyone.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

from infra.local.gateway import LocalPage

ROOT = Path(__file__).resolve().parents[2]
NODE_MODULES = ROOT / "node_modules"
PAGES = Path(__file__).with_name("shop")
ANALYTICS_NEXT = NODE_MODULES / "@segment" / "analytics-next" / "dist" / "umd"
SNOWPLOW = NODE_MODULES / "@snowplow" / "browser-tracker" / "dist" / "index.umd.min.js"
_CHUNK = re.compile(r"^[A-Za-z0-9._-]{1,120}\.js$")
_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8"}

Response = tuple[int, dict[str, str], bytes]


def shop_pages(write_key: str) -> Mapping[str, LocalPage]:
    """Path prefix -> page, for the local gateway (GET only)."""

    def shop(method: str, target: str, _headers: dict[str, str], _body: bytes) -> Response:
        path = target.split("?", 1)[0]
        name = path.removeprefix("/shop").strip("/") or "index.html"
        if method != "GET" or name != "index.html":
            return _missing()
        page = (PAGES / name).read_text(encoding="utf-8").replace("{{WRITE_KEY}}", write_key)
        return 200, {"Content-Type": _TYPES[".html"], "Cache-Control": "no-cache"}, page.encode()

    def analytics_js(method: str, target: str, _headers: dict[str, str], _body: bytes) -> Response:
        if method != "GET" or not target.split("?", 1)[0].endswith("/analytics.min.js"):
            return _missing()
        return _file(ANALYTICS_NEXT / "standalone.js")

    def chunk(method: str, target: str, _headers: dict[str, str], _body: bytes) -> Response:
        name = target.split("?", 1)[0].removeprefix("/analytics-next/bundles/")
        if method != "GET" or not _CHUNK.match(name):
            return _missing()
        return _file(ANALYTICS_NEXT / name)

    def snowplow(method: str, target: str, _headers: dict[str, str], _body: bytes) -> Response:
        if method != "GET" or target.split("?", 1)[0] != "/vendor/snowplow/sp.js":
            return _missing()
        return _file(SNOWPLOW)

    return {
        "/shop": shop,
        "/analytics.js/v1": analytics_js,
        "/analytics-next/bundles": chunk,
        "/vendor/snowplow": snowplow,
    }


def _file(path: Path) -> Response:
    if not path.is_file():
        message = f"{path.name} is not installed: run `make install` (npm ci)".encode()
        return 404, {"Content-Type": "text/plain; charset=utf-8"}, message
    headers = {"Content-Type": _TYPES[".js"], "Cache-Control": "public, max-age=3600"}
    headers["Access-Control-Allow-Origin"] = "*"  # public library code
    return 200, headers, path.read_bytes()


def _missing() -> Response:
    return 404, {"Content-Type": "text/plain; charset=utf-8"}, b"Not Found"
