"""Seeded shopper journeys over simulated days: who visits, browses, carts and buys, and when.

Pure: no I/O, no clock, no global random state. `generate_journeys` returns,
per shopper, a time-ordered list of Segment-spec events, so the same code can
feed the training set (`models/dataset.py`) and be sent over HTTP (`shoppers.py`).

Wire shape. Every event is a dict in Segment's HTTP Tracking API shape, with
camelCase keys (`type`, `event`, `userId`, `anonymousId`, `messageId`,
`properties`, `traits`) and `timestamp` as an ISO-8601 UTC string ending in
`Z` (millisecond precision), so an event is JSON-ready as it is. No `context`
(consent preferences, library and user agent are the sender's business), except
`context.page` (url, referrer) on browser events when channels are on.
`messageId` is a UUID drawn from the shopper's seeded generator, so a seed
always yields the same ids.

Behaviour. A shopper joins on some day, then visits on each day with a
probability (their visit rate, by persona, raised during the shop's sale
weeks). A visit is a home page view, a few product views (mostly in the
shopper's favourite categories), maybe a cart change, maybe a cart view, and
maybe a checkout, which empties the cart. The first checkout is preceded by a
log-in (`identify` with email and first name); after it, browser events carry
the `userId` too, and orders come from the shop's backend with the `userId`
only. Anyone may leave for good on any day (a small daily hazard); churners
fade away: from some day on, their visit rate decays to nothing.

Personas:
  loyal          visits every few days, reorders on a cycle; rarely leaves
  occasional     visits every few weeks, buys now and then
  browser        visits a lot, views a lot, almost never buys
  bargain_hunter cheap items, several at a time, coupons; much busier in sales
  churner        starts like a regular customer, then fades away
About one shopper in twenty (not browsers) is a big spender: premium items,
orders of several hundred dollars, some above $500.

Channels (`channels=True`, what `beacon simulate`/`demo` send): each visit
arrives through one of CHANNELS (direct, organic search from Google, paid
social from Facebook with utm_* tags, the weekly email with utm_medium=email),
drawn from a generator of its own, and the channel multiplies the visit's
chance to put something in the cart and to check out by its `lift`: the truth
the attribution models (docs/attribution.md) should find. Without channels,
every draw is as it always was (the trained models' data does not move).
"""

from __future__ import annotations

import math
import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from simulator.catalogue import (
    ACCESSORIES,
    BY_SKU,
    CATEGORIES,
    FIRST_NAMES,
    PRODUCTS,
    Product,
    popularity_weight,
    seasonal_weight,
)


@dataclass(frozen=True)
class Persona:
    name: str
    share: float  # of all shoppers
    visits_per_day: tuple[float, float]  # a shopper's rate is drawn from this range
    views_per_visit: tuple[int, int]
    add_to_cart: float  # chance a visit puts something in the cart
    remove_from_cart: float  # chance a visit takes something out again
    buy: float  # chance a visit with a non-empty cart checks out
    leave_per_day: float  # daily chance of leaving for good
    sale_boost: float  # visit and buy rates are multiplied by this in a sale
    reorder_days: float | None = None  # loyal: buying gets likelier as this cycle comes round
    cheap: bool = False
    fades: bool = False


PERSONAS: tuple[Persona, ...] = (
    Persona("loyal", 0.20, (0.08, 0.25), (1, 4), 0.30, 0.05, 0.30, 0.0010, 1.2, reorder_days=45),
    Persona("occasional", 0.30, (0.015, 0.06), (1, 5), 0.40, 0.10, 0.40, 0.0030, 1.3),
    Persona("browser", 0.20, (0.06, 0.20), (3, 8), 0.12, 0.40, 0.05, 0.0030, 1.1),
    Persona(
        "bargain_hunter", 0.15, (0.04, 0.10), (2, 6), 0.45, 0.35, 0.20, 0.0020, 3.0, cheap=True
    ),
    Persona("churner", 0.15, (0.05, 0.20), (1, 4), 0.35, 0.10, 0.35, 0.0015, 1.2, fades=True),
)
BIG_SPENDER_SHARE = 0.05
_LONG_AGO = datetime.min.replace(tzinfo=UTC)
# Evening-heavy hours of a visit, as web shops see them (UTC, one market).
_HOUR_WEIGHTS = [1, 1, 1, 1, 1, 1, 2, 3, 4, 5, 5, 6, 7, 6, 5, 5, 6, 7, 9, 11, 12, 10, 6, 3]


@dataclass(frozen=True)
class Channel:
    """How a visit arrives: the landing page's query and the referrer (what ingest's
    enrichment reads), how often, and its effect on the visit's buying."""

    name: str  # the channel ingest's enrichment gives such a visit
    share: float  # of visits
    lift: float  # multiplies the visit's add-to-cart and checkout chances
    query: str = ""
    referrer: str | None = None


SHOP_URL = "https://shop.example.com/"
CHANNELS: tuple[Channel, ...] = (
    Channel("direct", 0.30, 1.0),
    Channel("search", 0.30, 1.6, referrer="https://www.google.com/"),
    Channel(
        "paid",
        0.20,
        0.3,
        "utm_source=facebook&utm_medium=paid_social&utm_campaign=winter_sale",
        "https://l.facebook.com/",
    ),
    Channel("email", 0.20, 2.8, "utm_source=newsletter&utm_medium=email&utm_campaign=weekly"),
)


@dataclass(frozen=True)
class Journey:
    """One shopper's events, oldest first (one person: identity would merge them)."""

    user_id: str
    anonymous_id: str
    persona: str
    email: str
    first_name: str
    big_spender: bool
    events: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class Sale:
    start_day: int
    end_day: int  # exclusive

    def __contains__(self, day: int) -> bool:
        return self.start_day <= day < self.end_day


def generate_journeys(
    customers: int, days: int, seed: int, start: datetime, channels: bool = False
) -> list[Journey]:
    """`customers` shoppers over `days` days from `start` (an aware datetime).

    Each shopper has a generator of their own, seeded from (seed, index), so
    shopper n's journey does not depend on how many others are generated.
    `channels`: visits arrive through CHANNELS, with their page context.
    """
    if start.tzinfo is None:
        raise ValueError("start must be an aware datetime")
    start = start.astimezone(UTC)
    sales = sale_calendar(days, seed)
    return [_journey(index, days, seed, start, sales, channels) for index in range(customers)]


def sale_calendar(days: int, seed: int) -> list[Sale]:
    """The shop's sale weeks: about one every three months, 4 to 9 days long."""
    rng = random.Random(f"beacon-sales:{seed}")  # noqa: S311 - reproducible data, not crypto
    sales: list[Sale] = []
    day = rng.randint(20, 80)
    while day < days:
        sales.append(Sale(day, day + rng.randint(4, 9)))
        day += rng.randint(70, 110)
    return sales


def _journey(
    index: int, days: int, seed: int, start: datetime, sales: list[Sale], channels: bool = False
) -> Journey:
    rng = random.Random(f"beacon-journey:{seed}:{index}")  # noqa: S311 - reproducible data
    persona = rng.choices(PERSONAS, weights=[p.share for p in PERSONAS])[0]
    name = rng.choice(FIRST_NAMES)
    journey = Journey(
        user_id=f"user-{index:06d}",
        anonymous_id=_uuid(rng),
        persona=persona.name,
        email=f"{name.lower()}.{index}@example.org",
        first_name=name,
        big_spender=persona.name != "browser" and rng.random() < BIG_SPENDER_SHARE,
    )
    shopper = _Shopper(rng, persona, journey)
    if channels:
        shopper.channel_rng = random.Random(f"beacon-channel:{seed}:{index}")  # noqa: S311
    shopper.live(days, start, sales)
    return journey


@dataclass
class _Shopper:
    """One shopper living through the days, writing their events into `journey`."""

    rng: random.Random
    persona: Persona
    journey: Journey
    cart: dict[str, tuple[Product, int]] = field(default_factory=dict)  # sku -> (product, qty)
    identified: bool = False
    last_order_day: int | None = None
    last_event_at: datetime = _LONG_AGO
    # Main items bought whose accessories were not all bought: cross-sell on later visits.
    owned: list[str] = field(default_factory=list)
    # Channels on: the visits' own generator (the main one draws as without channels),
    # and the current visit's channel and page.
    channel_rng: random.Random | None = None
    channel: Channel | None = None
    page: dict[str, Any] | None = None

    def live(self, days: int, start: datetime, sales: list[Sale]) -> None:
        rng, persona = self.rng, self.persona
        # Most shoppers arrive during the period; a few were there from the start.
        joined = 0 if rng.random() < 0.15 else rng.randrange(max(1, int(days * 0.85)))
        low, high = persona.visits_per_day
        rate = math.exp(rng.uniform(math.log(low), math.log(high)))
        # Category affinities: gamma(0.5) weights put most of a shopper's interest
        # in one or two categories (what personas and recommendations should find).
        favourites = [rng.gammavariate(0.5, 1.0) + 0.01 for _ in CATEGORIES]
        fade_from = joined + rng.randint(30, max(31, days)) if persona.fades else None
        fade_days = rng.uniform(5, 20)
        for day in range(joined, days):
            if day > joined and rng.random() < persona.leave_per_day:
                return
            today = rate
            if fade_from is not None and day >= fade_from:
                today *= math.exp(-(day - fade_from) / fade_days)
                if today < rate * 0.03:
                    return  # faded away for good
            in_sale = any(day in sale for sale in sales)
            if in_sale:
                today *= persona.sale_boost
            if day == joined or rng.random() < min(today, 0.9):
                moment = start + timedelta(
                    days=day,
                    hours=rng.choices(range(24), weights=_HOUR_WEIGHTS)[0],
                    minutes=rng.randrange(60),
                    seconds=rng.randrange(60),
                )
                # A late visit can run past midnight: the next one starts after it.
                moment = max(moment, self.last_event_at + timedelta(minutes=30))
                if self.channel_rng is not None:
                    self._arrive(self.channel_rng)
                self._visit(moment, day, favourites, in_sale)

    def _arrive(self, rng: random.Random) -> None:
        channel = rng.choices(CHANNELS, weights=[c.share for c in CHANNELS])[0]
        url = f"{SHOP_URL}?{channel.query}" if channel.query else SHOP_URL
        self.channel = channel
        self.page = {"url": url, "referrer": channel.referrer}

    # ------------------------------------------------------------ one visit

    def _visit(self, moment: datetime, day: int, favourites: list[float], in_sale: bool) -> None:
        rng, persona = self.rng, self.persona
        clock = [moment]
        lift = self.channel.lift if self.channel else 1.0

        def tick() -> datetime:
            clock[0] += timedelta(seconds=rng.randint(8, 150))
            return clock[0]

        self._browser_event(
            clock[0], "page", name="Home", properties={"path": "/", "title": "Home"}
        )
        viewed: list[Product] = []
        for _ in range(rng.randint(*persona.views_per_visit)):
            product = self._pick_product(favourites, moment.month, viewed)
            viewed.append(product)
            self._browser_event(
                tick(), "track", event="Product Viewed", properties=_product_properties(product)
            )
        # A full cart is topped up less often than an empty one is started.
        adding = persona.add_to_cart * (0.4 if self.cart else 1.0) * (1.5 if in_sale else 1.0)
        adding *= lift
        if rng.random() < adding:
            product = self._choose_for_cart(viewed)
            quantity = rng.randint(1, 3) if persona.cheap else 1
            self._cart_change(tick(), "Product Added", product, quantity)
            accessories = ACCESSORIES.get(product[0], ())
            if accessories and rng.random() < 0.6:
                # Bought together: the device's accessory goes in the cart with it.
                extra = BY_SKU[rng.choice(accessories)]
                accessory = (extra.sku, extra.name, extra.category, extra.price)
                self._cart_change(tick(), "Product Added", accessory, 1)
        if self.cart and rng.random() < persona.remove_from_cart:
            sku = rng.choice(sorted(self.cart))
            product, quantity = self.cart[sku]
            self._cart_change(tick(), "Product Removed", product, quantity)
        if self.cart and rng.random() < 0.4:
            self._browser_event(
                tick(),
                "track",
                event="Cart Viewed",
                properties={"products": [_line(p, q) for p, q in self.cart.values()]},
            )
        if self.cart and rng.random() < min(self._buy_chance(day, in_sale) * lift, 0.95):
            self._checkout(tick, day, in_sale)
        elif not self.identified and rng.random() < 0.03:
            self._identify(tick())  # signed up for the newsletter, or logged in to look

    def _buy_chance(self, day: int, in_sale: bool) -> float:
        chance = self.persona.buy
        cycle = self.persona.reorder_days
        if cycle is not None and self.last_order_day is not None:
            # Replenishment: likelier as the usual gap since the last order comes round.
            chance *= min(2.0, 0.4 + (day - self.last_order_day) / cycle)
        if in_sale:
            chance *= self.persona.sale_boost
        return min(chance, 0.95)

    def _pick_product(self, favourites: list[float], month: int, viewed: list[Product]) -> Product:
        rng = self.rng
        if self.journey.big_spender and rng.random() < 0.5:
            return rng.choice([p for p in PRODUCTS if p[3] >= 129])
        if self.persona.cheap and rng.random() < 0.6:
            return rng.choice([p for p in PRODUCTS if p[3] < 100])
        mains = [p for p in viewed if ACCESSORIES.get(p[0])]
        if mains and rng.random() < 0.35:
            # Looking at a device's accessories after the device (session co-occurrence).
            return _as_product(rng.choice(ACCESSORIES[rng.choice(mains)[0]]))
        if self.owned and not viewed and rng.random() < 0.5:
            # Back for something that goes with a device bought earlier (cross-sell).
            return _as_product(rng.choice(ACCESSORIES[rng.choice(self.owned)]))
        weights = [
            a * seasonal_weight(c, month) for a, c in zip(favourites, CATEGORIES, strict=True)
        ]
        category = rng.choices(CATEGORIES, weights=weights)[0]
        pool = [p for p in PRODUCTS if p[2] == category]
        return rng.choices(pool, weights=[popularity_weight(BY_SKU[p[0]]) for p in pool])[0]

    def _choose_for_cart(self, viewed: list[Product]) -> Product:
        wanted = [p for p in viewed if any(p[0] in ACCESSORIES[m] for m in self.owned)]
        if wanted and self.rng.random() < 0.7:
            return wanted[0]  # what they came back for
        if self.persona.cheap:
            return min(viewed, key=lambda p: (p[3], p[0]))
        if self.journey.big_spender:
            return max(viewed, key=lambda p: (p[3], p[0]))
        return self.rng.choice(viewed)

    def _cart_change(self, at: datetime, event: str, product: Product, quantity: int) -> None:
        sku = product[0]
        held = self.cart.get(sku, (product, 0))[1]
        held = held + quantity if event == "Product Added" else held - quantity
        if held > 0:
            self.cart[sku] = (product, held)
        else:
            self.cart.pop(sku, None)
        self._browser_event(
            at,
            "track",
            event=event,
            properties=_product_properties(product) | {"quantity": quantity},
        )

    def _checkout(self, tick: Callable[[], datetime], day: int, in_sale: bool) -> None:
        rng = self.rng
        if not self.identified or rng.random() < 0.2:
            self._identify(tick())
        if self.journey.big_spender and rng.random() < 0.6:
            # A second premium item: these are the orders above $500.
            extra = rng.choice([p for p in PRODUCTS if p[3] >= 249])
            held = self.cart.get(extra[0], (extra, 0))[1]
            self.cart[extra[0]] = (extra, held + 1)
        lines = [_line(p, q) for p, q in self.cart.values()]
        subtotal = round(sum(p[3] * q for p, q in self.cart.values()), 2)
        discount = 0.0
        properties: dict[str, Any] = {}
        if in_sale or (self.persona.cheap and rng.random() < 0.5):
            rate = rng.choice((0.1, 0.15, 0.2, 0.3))
            discount = round(subtotal * rate, 2)
            properties["coupon"] = f"SAVE{int(rate * 100)}"
        total = round(subtotal - discount, 2)
        at = tick()
        properties |= {
            "order_id": f"o-{_uuid(rng)}",
            "total": total,
            "revenue": total,
            "subtotal": subtotal,
            "discount": discount,
            "currency": "USD",
            "category": lines[0]["category"],
            "products": lines,
        }
        # The shop's backend confirms the order: server-side, user id only.
        self.journey.events.append(
            {
                "type": "track",
                "event": "Order Completed",
                "userId": self.journey.user_id,
                "messageId": _uuid(rng),
                "timestamp": _iso(at),
                "properties": properties,
            }
        )
        self.last_event_at = at
        self.owned += [sku for sku in sorted(self.cart) if ACCESSORIES.get(sku)]
        self.cart.clear()
        self.last_order_day = day

    def _identify(self, at: datetime) -> None:
        self.identified = True
        self._browser_event(
            at,
            "identify",
            traits={"email": self.journey.email, "first_name": self.journey.first_name},
        )

    def _browser_event(self, at: datetime, kind: str, **fields: Any) -> None:
        """analytics.js: the anonymous id always, the user id once logged in."""
        event: dict[str, Any] = {"type": kind, **fields, "anonymousId": self.journey.anonymous_id}
        if self.identified:
            event["userId"] = self.journey.user_id
        event["messageId"] = _uuid(self.rng)
        event["timestamp"] = _iso(at)
        if self.page is not None:
            event["context"] = {"page": dict(self.page)}
            # The next page of the visit was reached from this one.
            path = fields.get("properties", {}).get("product_id") or "cart"
            self.page = {"url": f"{SHOP_URL}p/{path}", "referrer": self.page["url"]}
        self.journey.events.append(event)
        self.last_event_at = at


def _as_product(sku: str) -> Product:
    item = BY_SKU[sku]
    return (item.sku, item.name, item.category, item.price)


def _product_properties(product: Product) -> dict[str, Any]:
    sku, name, category, price = product
    brand = BY_SKU[sku].brand
    return {
        "product_id": sku,
        "sku": sku,
        "name": name,
        "category": category,
        "brand": brand,
        "price": price,
    }


def _line(product: Product, quantity: int) -> dict[str, Any]:
    return _product_properties(product) | {"quantity": quantity}


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
