"""`beacon simulate`: seeded shoppers sending real clients' wire formats over HTTP.

Each shopper browses anonymously (analytics.js single calls and batches, or
the Snowplow JS tracker's tp2 POSTs and pixel GETs), views and adds products,
some log in (identify) and buy, and the shop's backend reports orders with a
server-side library (Basic auth, gzip). A few requests are deliberately bad
(malformed JSON, a track without a name, a wrong key, an oversize event), so
the failed-events path is exercised on every run.

The report counts what was sent in ledger units: one per event in an
accepted request, and one per request that ingest must refuse whole
(`sender.py` sends and counts; this module decides what a shopper does).
"""

from __future__ import annotations

import base64
import gzip
import json
import random
import urllib.parse
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from simulator.catalogue import FIRST_NAMES, PRODUCTS
from simulator.journeys import generate_journeys
from simulator.sender import Sender, SimulationReport

JOURNEY_BATCH = 50  # events per /v1/batch request, as analytics-python flushes
TP2_SCHEMA = "iglu:com.snowplowanalytics.snowplow/payload_data/jsonschema/1-0-4"


class Simulator:
    def __init__(
        self,
        endpoint: str,
        write_key: str,
        server_write_key: str | None = None,
        seed: int = 7,
        start: datetime | None = None,
        concurrency: int = 1,
    ) -> None:
        self.sender = Sender(endpoint, concurrency)
        self.write_key = write_key
        self.server_write_key = server_write_key or write_key
        self.random = random.Random(seed)  # noqa: S311 - reproducible traffic, not crypto
        self.clock = start or datetime.now(UTC) - timedelta(hours=1)
        self.report = self.sender.report

    # --- scenario ------------------------------------------------------------

    def run(
        self, customers: int = 20, bad_requests: bool = True, days: int | None = None
    ) -> SimulationReport:
        """One visit per shopper (the quick demo), or with `days` each shopper's whole
        journey over that many days, compressed: sent now, dated when it happened."""
        if days:
            self._journeys(customers, days)
        else:
            for n in range(customers):
                self.sender.use_lane(n)
                shopper = self._shopper(n)
                if self.random.random() < 0.35:
                    self._snowplow_visit(shopper)
                else:
                    self._segment_visit(shopper)
        if bad_requests:
            self.sender.use_lane(0)
            self._bad_requests()
        return self.sender.finish()

    # --- journeys over days ---------------------------------------------------

    def _journeys(self, customers: int, days: int) -> None:
        """`journeys.py`'s shoppers (loyal, occasional, browsers, bargain hunters,
        churners who fade away) over `days` days ending now. Each event keeps its own
        `timestamp` and the batch carries `sentAt` = now, so ingest's clock-skew rule
        dates it in the past: weeks of behaviour arrive in minutes, in order. Browser
        events go as analytics.js batches with the shopper's consent; orders come from
        the shop's backend (server key, user id only); one shopper in four also browses
        on a second device after logging in (identity merges them by user id). Visits
        arrive through channels (search, paid social, email, direct: journeys.CHANNELS),
        each browser event with its page's url and referrer for ingest's enrichment."""
        now = datetime.now(UTC)
        seed = self.random.getrandbits(32)
        for n, journey in enumerate(
            generate_journeys(customers, days, seed, now - timedelta(days=days), channels=True)
        ):
            self.sender.use_lane(n)
            shopper = {**self._shopper(n), "anonymous_id": journey.anonymous_id}
            second_device = (
                str(uuid.UUID(int=self.random.getrandbits(128)))
                if self.random.random() < 0.25
                else None
            )
            browser: list[dict[str, Any]] = []
            server: list[dict[str, Any]] = []
            for event in journey.events:
                if "anonymousId" not in event:
                    server.append(event)
                    continue
                if second_device and event.get("userId") and self.random.random() < 0.4:
                    event = {**event, "anonymousId": second_device}
                browser.append(self._with_consent(event, shopper))
            self._send_batches(browser, self.write_key, now)
            self._send_batches(server, self.server_write_key, now)

    def _send_batches(self, items: list[dict[str, Any]], key: str, now: datetime) -> None:
        sent_at = now.isoformat().replace("+00:00", "Z")
        for start in range(0, len(items), JOURNEY_BATCH):
            chunk = items[start : start + JOURNEY_BATCH]
            body = {"batch": chunk, "sentAt": sent_at, "writeKey": key}
            self.sender.post_segment("/v1/batch", body, "application/json", units=len(chunk))

    def _shopper(self, n: int) -> dict[str, Any]:
        name = self.random.choice(FIRST_NAMES)
        roll = self.random.random()
        # The cookie banner: most accept, some refuse personalization, some never
        # answer; a few decide through the shop's CMP, which calls /v1/consent.
        consent = (
            "all" if roll < 0.7 else "deny" if roll < 0.82 else "none" if roll < 0.92 else "api"
        )
        return {
            "anonymous_id": str(uuid.UUID(int=self.random.getrandbits(128))),
            "user_id": f"user-{n:05d}",
            "email": f"{name.lower()}.{n}@example.org",
            "name": name,
            "consent": consent,
        }

    @staticmethod
    def _preferences(shopper: dict[str, Any]) -> dict[str, bool] | None:
        """The banner's answer: all accepted, or personalization and advertising refused."""
        granted = {"all": True, "deny": False}.get(shopper["consent"])
        if granted is None:
            return None
        return {
            "necessary": True,
            "analytics": True,
            "personalization": granted,
            "advertising": granted,
        }

    def _with_consent(self, item: dict[str, Any], shopper: dict[str, Any]) -> dict[str, Any]:
        """What Segment's consent wrapper does: the current preferences on every event."""
        preferences = self._preferences(shopper)
        if preferences is None:
            return item
        context = dict(item.get("context") or {})
        context["consent"] = {"categoryPreferences": preferences}
        return {**item, "context": context}

    def _tick(self) -> str:
        self.clock += timedelta(seconds=self.random.randint(5, 90))
        return self.clock.isoformat().replace("+00:00", "Z")

    def _segment_visit(self, shopper: dict[str, Any]) -> None:
        anon = shopper["anonymous_id"]
        if shopper["consent"] == "api":
            decision = {
                "anonymousId": anon,
                "source": "onetrust",
                "timestamp": self._tick(),
                "categoryPreferences": {"C0001": True, "personalization": True},
            }
            auth = base64.b64encode(f"{self.server_write_key}:".encode()).decode()
            self.sender.send(
                "POST",
                "/v1/consent",
                json.dumps(decision).encode(),
                {"Content-Type": "application/json", "Authorization": f"Basic {auth}"},
                units=1,
                protocol="segment",
            )
        browse: list[dict[str, Any]] = [
            {"type": "page", "name": "Home", "properties": {"path": "/"}},
        ]
        viewed = self.random.sample(PRODUCTS, k=self.random.randint(1, 4))
        for sku, title, category, price in viewed:
            browse.append(
                {
                    "type": "track",
                    "event": "Product Viewed",
                    "properties": {
                        "product_id": sku,
                        "name": title,
                        "category": category,
                        "price": price,
                    },
                }
            )
        for item in browse:
            item.update(
                anonymousId=anon,
                messageId=str(uuid.UUID(int=self.random.getrandbits(128))),
                timestamp=self._tick(),
            )
        browse = [self._with_consent(item, shopper) for item in browse]
        # analytics.js: one call per event, text/plain to skip CORS preflight.
        for item in browse[:2]:
            path = "/v1/p" if item["type"] == "page" else "/v1/t"
            self.sender.post_segment(
                path, {**item, "writeKey": self.write_key}, "text/plain", units=1
            )
        # ... and the rest batched.
        if browse[2:]:
            self.sender.post_segment(
                "/v1/batch",
                {
                    "batch": browse[2:],
                    "writeKey": self.write_key,
                    "context": {"library": {"name": "analytics.js"}},
                },
                "application/json",
                units=len(browse) - 2,
            )
        if self.random.random() < 0.6:
            sku, title, category, price = viewed[0]
            cart = {
                "type": "track",
                "event": "Product Added",
                "anonymousId": anon,
                "timestamp": self._tick(),
                "properties": {"product_id": sku, "name": title, "price": price, "quantity": 1},
            }
            cart = self._with_consent(cart, shopper)
            self.sender.post_segment(
                "/v1/track", {**cart, "writeKey": self.write_key}, "text/plain", units=1
            )
            if self.random.random() < 0.55:
                self._checkout(shopper, viewed[0])

    def _second_device(self, shopper: dict[str, Any]) -> None:
        """Later, on a phone: anonymous at first, then signing in with the same email,
        which is what lets identity merge the phone's profile into the laptop's."""
        phone = str(uuid.UUID(int=self.random.getrandbits(128)))
        visit = self._with_consent(
            {
                "type": "screen",
                "name": "Home",
                "anonymousId": phone,
                "timestamp": self._tick(),
                "context": {"device": {"id": f"device-{phone[:8]}", "type": "ios"}},
            },
            shopper,
        )
        self.sender.post_segment(
            "/v1/s", {**visit, "writeKey": self.write_key}, "text/plain", units=1
        )
        login = self._with_consent(
            {
                "type": "identify",
                "anonymousId": phone,
                "timestamp": self._tick(),
                "traits": {"email": shopper["email"].upper()},
            },  # typed differently on a phone
            shopper,
        )
        self.sender.post_segment(
            "/v1/i", {**login, "writeKey": self.write_key}, "text/plain", units=1
        )

    def _checkout(self, shopper: dict[str, Any], product: tuple[str, str, str, float]) -> None:
        anon = shopper["anonymous_id"]
        identify = {
            "type": "identify",
            "anonymousId": anon,
            "userId": shopper["user_id"],
            "timestamp": self._tick(),
            "traits": {"email": shopper["email"], "first_name": shopper["name"]},
        }
        identify = self._with_consent(identify, shopper)
        self.sender.post_segment(
            "/v1/i", {**identify, "writeKey": self.write_key}, "text/plain", units=1
        )
        sku, title, _category, price = product
        order = {
            "type": "track",
            "event": "Order Completed",
            "userId": shopper["user_id"],
            "timestamp": self._tick(),
            "properties": {
                "order_id": f"o-{uuid.UUID(int=self.random.getrandbits(128))}",
                "total": price,
                "revenue": price,
                "currency": "EUR",
                "products": [{"product_id": sku, "name": title, "price": price, "quantity": 1}],
            },
        }
        order = self._with_consent(order, shopper)  # the backend knows the CMP's answer
        # The backend confirms the order: server-side library, Basic auth, gzip.
        body = gzip.compress(json.dumps({"batch": [order]}).encode())
        auth = base64.b64encode(f"{self.server_write_key}:".encode()).decode()
        self.sender.send(
            "POST",
            "/v1/batch",
            body,
            {
                "Content-Type": "application/json",
                "Content-Encoding": "gzip",
                "Authorization": f"Basic {auth}",
            },
            units=1,
            protocol="segment",
        )
        if self.random.random() < 0.5:
            self._second_device(shopper)

    def _snowplow_visit(self, shopper: dict[str, Any]) -> None:
        duid = shopper["anonymous_id"]
        events = []
        for sku, title, _category, price in self.random.sample(
            PRODUCTS, k=self.random.randint(1, 3)
        ):
            stamp = str(int(datetime.fromisoformat(self._tick()).timestamp() * 1000))
            url = f"https://shop.example.com/p/{sku}"
            events.append(self._tracked(duid, stamp, e="pv", url=url, page=title))
            events.append(
                self._tracked(
                    duid, stamp, e="se", se_ca="product", se_ac="view", se_la=sku, se_va=str(price)
                )
            )
        # The enhanced-consent plugin records the banner answer as an event first.
        verdict = {"all": "allow_all", "deny": "deny_all"}.get(shopper["consent"])
        if verdict:
            consent = {
                "schema": "iglu:com.snowplowanalytics.snowplow/unstruct_event/jsonschema/1-0-0",
                "data": {
                    "schema": "iglu:com.snowplowanalytics.snowplow/consent_preferences/"
                    "jsonschema/1-0-0",
                    "data": {
                        "eventType": verdict,
                        "basisForProcessing": "consent",
                        "consentUrl": "https://shop.example.com/privacy",
                        "consentVersion": "3",
                        "consentScopes": ["all"],
                        "domainsApplied": ["shop.example.com"],
                    },
                },
            }
            events.insert(
                1,
                {
                    "e": "ue",
                    "ue_pr": json.dumps(consent),
                    "duid": duid,
                    "aid": "shop-web",
                    "p": "web",
                    "tv": "js-3.24.0",
                    "dtm": events[0]["dtm"],
                    "eid": str(uuid.UUID(int=self.random.getrandbits(128))),
                },
            )
        # The JS tracker POSTs batches; the <noscript> pixel sends one GET.
        body = json.dumps({"schema": TP2_SCHEMA, "data": events[1:]}).encode()
        self.sender.send(
            "POST",
            "/com.snowplowanalytics.snowplow/tp2",
            body,
            {"Content-Type": "application/json; charset=UTF-8"},
            units=len(events) - 1,
            protocol="snowplow",
        )
        self.sender.send(
            "GET", "/i?" + urllib.parse.urlencode(events[0]), None, {}, units=1, protocol="snowplow"
        )

    def _tracked(self, duid: str, stamp: str, **fields: str) -> dict[str, str]:
        """One event as the Snowplow JS tracker sends it from the shop's web page."""
        return {
            **fields,
            "duid": duid,
            "aid": "shop-web",
            "p": "web",
            "tv": "js-3.24.0",
            "eid": str(uuid.UUID(int=self.random.getrandbits(128))),
            "dtm": stamp,
            "stm": stamp,
        }

    def _bad_requests(self) -> None:
        anon = str(uuid.UUID(int=self.random.getrandbits(128)))
        good = {"type": "track", "event": "Product Viewed", "anonymousId": anon}
        # A batch with one nameless track among good events: only that one fails.
        self.sender.post_segment(
            "/v1/batch",
            {
                "writeKey": self.write_key,
                "batch": [good, {"type": "track", "anonymousId": anon}, good],
            },
            "application/json",
            units=3,
            failed={"invalid_event": 1},
        )
        self.sender.send(
            "POST",
            "/v1/track",
            b'{"event": "Oops", ',
            {"Content-Type": "application/json"},
            units=1,
            protocol="segment",
            failed={"malformed_body": 1},
        )
        self.sender.post_segment(
            "/v1/track",
            {**good, "writeKey": "not-a-key"},
            "text/plain",
            units=1,
            failed={"unauthorized": 1},
        )
        huge = {**good, "writeKey": self.write_key, "properties": {"blob": "x" * 40_000}}
        self.sender.post_segment(
            "/v1/track", huge, "text/plain", units=1, failed={"event_too_large": 1}
        )
        self.sender.send(
            "GET",
            "/i?e=pv&url=https%3A%2F%2Fshop.example.com%2F&aid=shop-web",
            None,
            {},
            units=1,
            protocol="snowplow",
            failed={"invalid_event": 1},
        )
