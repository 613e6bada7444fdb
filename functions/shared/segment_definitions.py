"""The `segments` section of `beacon.yaml`: computed traits and CEL segments.

Computed traits are profile aggregates kept up to date event by event (see
`functions/profiles/apply.py`); segments are CEL conditions over the profile (see
`functions/profiles/evaluate.py`). Everything is validated when the file loads, so a typo in a
condition fails `cdk synth` and `beacon local` with the segment id and the CEL
error rather than at the first event.

Conditions see no clock. Anything that changes by time passing ("no purchase
for 90 days", "cart untouched for 24 h") is a computed trait with a window,
so Beacon can work out when each profile needs looking at again instead of
asking the user for a re-check hint.
"""

from __future__ import annotations

import itertools
import re
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, ValidationInfo, field_validator, model_validator

from functions.shared.schema import Slug, Strict

try:
    import cel
except ImportError:  # pragma: no cover - exercised in the lean Lambda bundles only
    # Functions that evaluate no condition (ingest, consent, identity, webhook) are
    # bundled without CEL's 6 MB (infra/bundling.py): the configuration they carry
    # was checked, conditions included, when `cdk synth` bundled it.
    cel = None  # type: ignore[assignment]

_WINDOW = re.compile(r"^([1-9][0-9]{0,4})([hd])$")
# Names a CEL macro binds (`list.exists(x, ...)`): they show up among a
# program's variables but are not inputs.
_MACRO_BINDING = re.compile(r"\.\s*(?:all|exists|exists_one|map|filter)\s*\(\s*([A-Za-z_]\w*)\s*,")
_COMPUTED_REFERENCE = re.compile(r"\bprofile\s*\.\s*computed\s*\.\s*([A-Za-z_]\w*)")
_COMPUTED_OTHERWISE = re.compile(r"\bprofile\s*\.\s*computed\b(?!\s*\.\s*[A-Za-z_])|\bprofile\s*\[")

Scalar = str | int | float | bool
HOUR = 3600
DAY = 24 * HOUR


def window_seconds(window: str) -> int:
    """`24h` or `90d` as seconds."""
    match = _WINDOW.match(window)
    if match is None:
        raise ValueError(f"{window!r} is not a window like 24h or 90d")
    amount, unit = int(match.group(1)), match.group(2)
    return amount * (HOUR if unit == "h" else DAY)


def _a_window(value: str) -> str:
    window_seconds(value)  # raises ValueError naming the problem
    return value


Window = Annotated[str, AfterValidator(_a_window)]  # `24h`, `90d`


# ---------------------------------------------------------------- matching


class _Matches(Strict):
    """Which events a computed trait looks at: all by default."""

    event: str | None = Field(default=None, description="track event name, e.g. Order Completed")
    type: Literal["track", "identify", "page", "screen", "group", "alias"] | None = Field(
        default=None, description="event type, e.g. page"
    )
    where: dict[str, Scalar] = Field(
        default_factory=dict, description="property equality filter, dotted paths allowed"
    )


class _Windowed(_Matches):
    window: Window | None = Field(
        default=None, description="rolling window by event time, e.g. 24h or 7d; none = lifetime"
    )

    @property
    def window_seconds(self) -> int | None:
        return None if self.window is None else window_seconds(self.window)


class _Trait(Strict):
    id: Slug = Field(description="name under profile.computed, e.g. orders_90d")
    description: str = ""


# ---------------------------------------------------------------- kinds


class CountTrait(_Trait, _Windowed):
    """How many matching events, in the window or ever."""

    kind: Literal["count"] = "count"


class SumTrait(_Trait, _Windowed):
    """Sum of a numeric property of matching events (e.g. lifetime value)."""

    kind: Literal["sum"] = "sum"
    property: str


class AverageTrait(_Trait, _Windowed):
    """Average of a numeric property (e.g. average order value); absent with no events."""

    kind: Literal["average"] = "average"
    property: str


class FirstSeenTrait(_Trait, _Matches):
    """Event time of the first matching event; absent until there is one."""

    kind: Literal["first_seen"] = "first_seen"


class LastSeenTrait(_Trait, _Matches):
    """Event time of the newest matching event.

    With `within`, the value is absent once that event is older than the
    window: `!has(profile.computed.last_order)` then reads "no order in 90 days"
    and Beacon knows the exact moment it becomes true.
    """

    kind: Literal["last_seen"] = "last_seen"
    within: Window | None = None


class MostFrequentTrait(_Trait, _Windowed):
    """The most frequent value of a property (ties: the smaller value); absent if none."""

    kind: Literal["most_frequent"] = "most_frequent"
    property: str
    max_values: int = Field(
        # Per bucket: a 30-day window keeps 31 buckets of these (profile_limits.py).
        default=10,
        ge=1,
        le=500,
        description="distinct values kept per bucket; rarest dropped",
    )
    # `count`: how often the most frequent value occurred ("viewed the same product
    # 3 times in 30 days" is a most_frequent of product_id, output count, >= 3).
    output: Literal["value", "count"] = "value"


class UniqueListTrait(_Trait, _Matches):
    """Distinct values of a property, newest first, at most `max_values`."""

    kind: Literal["unique_list"] = "unique_list"
    property: str
    max_values: int = Field(default=20, ge=1, le=200)


class CartTrait(_Trait):
    """Cart state from Segment's e-commerce events.

    Added/removed change one product; a cart view carrying `products` replaces
    the cart with that snapshot; an order clears it. `abandoned` becomes true
    when a non-empty cart has not changed for `abandoned_after`.
    """

    kind: Literal["cart"] = "cart"
    added: str = "Product Added"
    removed: str = "Product Removed"
    viewed: str = "Cart Viewed"
    cleared_by: tuple[str, ...] = ("Order Completed",)
    abandoned_after: Window = "24h"
    max_items: int = Field(default=50, ge=1, le=500)


class TouchesTrait(_Trait):
    """Sessions' first visits (touches) with their channel and campaign, and each
    channel's time-decayed influence (functions/profiles/touches.py).

    A session starts after 30 minutes without a visit or with a new campaign; the
    newest `keep` touches are kept. `influence`: the touches of the last `window`,
    each weighted 2^(-age / half_life), as shares of 1 per channel.
    """

    kind: Literal["touches"] = "touches"
    keep: int = Field(default=20, ge=1, le=100)
    window: Window = "90d"
    half_life: Window = "7d"


def _increasing(value: tuple[float, ...], what: str) -> tuple[float, ...]:
    if len(value) != 4 or any(b <= a for a, b in itertools.pairwise(value)):
        raise ValueError(f"{what} needs four strictly increasing thresholds (scores 2..5)")
    return value


class RfmTrait(_Trait):
    """Recency, frequency and monetary scores 1-5 over a window of orders.

    recency_days: 5 if the last order is younger than the first threshold (in
    days), 4 if younger than the second, ... 1 from the last one on. frequency/monetary: 1, plus one
    for each threshold the window's order count / amount reaches.
    """

    kind: Literal["rfm"] = "rfm"
    event: str = "Order Completed"
    property: str = "total"
    window: Window = "365d"
    recency_days: tuple[float, ...] = (7, 30, 90, 180)
    frequency: tuple[float, ...] = (2, 3, 5, 10)
    monetary: tuple[float, ...] = (100, 250, 500, 1000)

    @field_validator("recency_days", "frequency", "monetary")
    @classmethod
    def _thresholds(cls, value: tuple[float, ...], info: ValidationInfo) -> tuple[float, ...]:
        return _increasing(value, str(info.field_name))


class LifecycleStage(Strict):
    name: Slug
    trait: str | None = Field(
        default=None, description="a count or sum trait id; none for the first stage"
    )
    at_least: float = 1


class LifecycleTrait(_Trait):
    """The furthest stage whose rule holds: stages are tried from last to first.

    Each stage after the first names a count or sum trait and a minimum, so a
    stage is reached (and, for windowed traits, left again) as those change.
    """

    kind: Literal["lifecycle"] = "lifecycle"
    stages: tuple[LifecycleStage, ...] = (
        LifecycleStage(name="awareness"),
        LifecycleStage(name="consideration", trait="product_views_30d"),
        LifecycleStage(name="purchase", trait="orders_total"),
        LifecycleStage(name="retention", trait="orders_365d", at_least=2),
    )

    @model_validator(mode="after")
    def _stages(self) -> LifecycleTrait:
        if len(self.stages) < 2:
            raise ValueError("a lifecycle needs at least two stages")
        if self.stages[0].trait is not None:
            raise ValueError("the first stage is the default and takes no trait")
        if any(s.trait is None for s in self.stages[1:]):
            raise ValueError("every stage after the first needs a trait")
        names = [s.name for s in self.stages]
        if len(set(names)) != len(names):
            raise ValueError("stage names must be unique")
        return self


AnyTrait = (
    CountTrait
    | SumTrait
    | AverageTrait
    | FirstSeenTrait
    | LastSeenTrait
    | MostFrequentTrait
    | UniqueListTrait
    | CartTrait
    | RfmTrait
    | LifecycleTrait
    | TouchesTrait
)
# One discriminated union: `kind` picks the model, and an error names its fields.
ComputedTrait = Annotated[AnyTrait, Field(discriminator="kind")]


# ---------------------------------------------------------------- segments


class Variant(Strict):
    """One treatment of an A/B/n test: the journey platform sends what its name says."""

    name: Slug
    weight: int = Field(ge=1, le=10_000, description="relative share of the treated members")


CONTROL_ARM = "control"  # the held-out members
TREATED_ARM = "treated"  # every treated member, when a segment has no variants


class Segment(Strict):
    id: Slug
    description: str = ""
    condition: str = Field(description="CEL over `profile`, e.g. profile.computed.orders_90d == 0")
    holdout_percent: int = Field(
        default=0, ge=0, le=50, description="share kept as a control group (members, held out)"
    )
    variants: tuple[Variant, ...] = Field(
        default=(),
        max_length=10,
        description="A/B/n treatments the treated members are split into (docs/experiments.md)",
    )

    @field_validator("variants")
    @classmethod
    def _variants(cls, value: tuple[Variant, ...]) -> tuple[Variant, ...]:
        names = [v.name for v in value]
        if len(set(names)) != len(names) or CONTROL_ARM in names:
            raise ValueError(f"variant names must be unique and not {CONTROL_ARM!r}")
        if len(value) == 1:
            raise ValueError("one variant is no choice: give two or more, or none")
        return value

    def arms(self) -> dict[str, float]:
        """Each arm's expected share of the members (sums to 1): control is the holdout."""
        treated = 1 - self.holdout_percent / 100
        shares = {CONTROL_ARM: self.holdout_percent / 100} if self.holdout_percent else {}
        if not self.variants:
            return shares | {TREATED_ARM: treated}
        total = sum(v.weight for v in self.variants)
        return shares | {v.name: treated * v.weight / total for v in self.variants}

    @field_validator("condition")
    @classmethod
    def _condition(cls, value: str, info: ValidationInfo) -> str:
        segment = info.data.get("id", "?")
        if cel is None:
            return value
        try:
            program = cel.compile(value)
        except (ValueError, RuntimeError) as err:
            raise ValueError(f"segment {segment!r}: {err}") from err
        inputs = set(program.variables()) - set(_MACRO_BINDING.findall(value))
        unknown = sorted(inputs - {"profile"})
        if unknown:
            raise ValueError(
                f"segment {segment!r}: conditions may only use `profile`, not {', '.join(unknown)}"
            )
        return value

    @property
    def computed_references(self) -> frozenset[str] | None:
        """Computed trait ids this condition reads as `profile.computed.<id>`.

        None when it reaches them some other way (`profile.computed["x"]`, a
        macro over `profile.computed`): then it may read any of them.
        """
        if _COMPUTED_OTHERWISE.search(self.condition):
            return None
        return frozenset(_COMPUTED_REFERENCE.findall(self.condition))


class Buckets(Strict):
    """How rolling windows are stored: hourly buckets for short windows, daily beyond.

    A window's edge is exact to one bucket: a 24 h window counts the current
    hour and the 23 before it.
    """

    hourly_up_to: Window = Field(default="7d", description="longest window kept in hourly buckets")

    def size(self, window: int) -> int:
        """Bucket length in seconds for a window of `window` seconds."""
        return HOUR if window <= window_seconds(self.hourly_up_to) else DAY


class Dedup(Strict):
    """The message-id memory that makes a client's retry apply once (profiles/apply.py)."""

    window: Window = Field(default="24h", description="how long a message id is remembered")
    max_ids: int = Field(default=500, ge=10, le=5000, description="most ids kept per profile")


# ---------------------------------------------------------------- defaults

DEFAULT_COMPUTED_TRAITS: tuple[AnyTrait, ...] = (
    FirstSeenTrait(id="first_seen"),
    LastSeenTrait(id="last_seen"),
    CountTrait(id="product_views_7d", event="Product Viewed", window="7d"),
    CountTrait(id="product_views_30d", event="Product Viewed", window="30d"),
    CountTrait(id="orders_total", event="Order Completed"),
    CountTrait(id="orders_365d", event="Order Completed", window="365d"),
    LastSeenTrait(id="last_order_90d", event="Order Completed", within="90d"),
    SumTrait(id="lifetime_value", event="Order Completed", property="total"),
    AverageTrait(id="average_order_value", event="Order Completed", property="total"),
    MostFrequentTrait(
        id="favourite_category", event="Product Viewed", property="category", window="30d"
    ),
    UniqueListTrait(id="viewed_categories", event="Product Viewed", property="category"),
    CartTrait(id="cart"),
    RfmTrait(id="rfm"),
    LifecycleTrait(id="lifecycle_stage"),
)

DEFAULT_SEGMENTS: tuple[Segment, ...] = (
    Segment(
        id="cart_abandoners",
        description="added to cart, no purchase within 24 h",
        condition="profile.computed.cart.abandoned",
    ),
    Segment(
        id="frequent_viewers",
        description="viewed a product more than three times in a week",
        condition="profile.computed.product_views_7d > 3",
    ),
    Segment(
        id="lapsed_big_spenders",
        description="average order above $500 and no purchase for 90 days",
        condition=(
            "has(profile.computed.average_order_value)"
            " && profile.computed.average_order_value > 500"
            " && !has(profile.computed.last_order_90d)"
        ),
    ),
    *(
        Segment(
            id=f"stage_{stage}",
            description=f"lifecycle stage: {stage}",
            condition=f'profile.computed.lifecycle_stage == "{stage}"',
        )
        for stage in ("awareness", "consideration", "purchase", "retention")
    ),
    Segment(
        id="churn_risk",
        description="the churn model's probability is 0.7 or more",
        condition=(
            "has(profile.scores.churn) && has(profile.scores.churn.probability)"
            " && profile.scores.churn.probability >= 0.7"
        ),
        holdout_percent=10,
    ),
)


class SegmentsConfig(Strict):
    """`segments:` in beacon.yaml. Missing, it is the example set above."""

    computed_traits: tuple[ComputedTrait, ...] = DEFAULT_COMPUTED_TRAITS
    segments: tuple[Segment, ...] = DEFAULT_SEGMENTS
    buckets: Buckets = Field(default_factory=Buckets)
    dedup: Dedup = Field(default_factory=Dedup)

    @model_validator(mode="after")
    def _consistent(self) -> SegmentsConfig:
        _unique("computed trait id", [t.id for t in self.computed_traits])
        _unique("segment id", [s.id for s in self.segments])
        traits = {t.id: t for t in self.computed_traits}
        hourly = window_seconds(self.buckets.hourly_up_to)
        for trait in self.computed_traits:
            if isinstance(trait, LifecycleTrait):
                for stage in trait.stages[1:]:
                    target = traits.get(stage.trait or "")
                    if not isinstance(target, CountTrait | SumTrait):
                        raise ValueError(
                            f"lifecycle {trait.id!r}: stage {stage.name!r} needs a count or sum"
                            f" trait, {stage.trait!r} is not one"
                        )
            window = getattr(trait, "window", None)
            # Daily buckets cannot cut a window in the middle of a day.
            if (
                window is not None
                and window_seconds(window) > hourly
                and window_seconds(window) % DAY
            ):
                raise ValueError(
                    f"computed trait {trait.id!r}: window {window} is longer than"
                    f" buckets.hourly_up_to ({self.buckets.hourly_up_to}), so it must be whole days"
                )
        for segment in self.segments:
            missing = sorted((segment.computed_references or set()) - set(traits))
            if missing:
                raise ValueError(
                    f"segment {segment.id!r}: unknown computed trait {', '.join(missing)}"
                )
        # Imported here: limits reads these definitions to add up their bounds.
        from functions.shared.profile_limits import check

        check(self)
        return self

    def trait(self, trait_id: str) -> AnyTrait:
        for trait in self.computed_traits:
            if trait.id == trait_id:
                return trait
        raise KeyError(trait_id)


def _unique(what: str, values: list[str]) -> None:
    dupes = sorted({v for v in values if values.count(v) > 1})
    if dupes:
        raise ValueError(f"duplicate {what}: {', '.join(dupes)}")
