"""Attribution models on hand-computed paths (models/attribution.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from models.attribution import (
    MODELS,
    NO_CAMPAIGN,
    NO_TOUCH,
    Attribution,
    Conversion,
    Person,
    Touch,
    attribute,
    conversion_probability,
    paths_of,
    removal_effects,
    transitions,
)

T0 = datetime(2026, 11, 1, tzinfo=UTC)
DAY = timedelta(days=1)


def at(days: float) -> datetime:
    return T0 + days * DAY


def credit(result: Attribution, model: str) -> dict[str, tuple[float, float]]:
    return {k: (c.conversions, c.revenue) for k, c in result.models[model].items()}


# One conversion of 100 after an email visit (day 0), a direct one (day 3) and a
# search one (day 5); the order on day 6.
EMAIL_DIRECT_SEARCH = Person(
    "p1",
    [Touch(at(3), "direct"), Touch(at(0), "email", "winter"), Touch(at(5), "search")],
    [Conversion(at(6), 100.0)],
)


def test_first_and_last_touch() -> None:
    result = attribute([EMAIL_DIRECT_SEARCH], ["first", "last"])
    assert credit(result, "first") == {"email": (1.0, 100.0)}
    assert credit(result, "last") == {"search": (1.0, 100.0)}
    assert (result.totals.conversions, result.totals.revenue) == (1, 100.0)


def test_linear_shares_equally() -> None:
    got = credit(attribute([EMAIL_DIRECT_SEARCH], ["linear"]), "linear")
    for channel in ("email", "direct", "search"):
        assert got[channel] == pytest.approx((1 / 3, 100 / 3))


def test_position_based_40_20_40() -> None:
    got = credit(attribute([EMAIL_DIRECT_SEARCH], ["position"]), "position")
    assert got["email"] == pytest.approx((0.4, 40.0))
    assert got["direct"] == pytest.approx((0.2, 20.0))
    assert got["search"] == pytest.approx((0.4, 40.0))


def test_position_based_short_and_long_paths() -> None:
    two = Person("p", [Touch(at(0), "email"), Touch(at(1), "search")], [Conversion(at(2), 10)])
    assert credit(attribute([two], ["position"]), "position") == {
        "email": (0.5, 5.0),
        "search": (0.5, 5.0),
    }
    one = Person("p", [Touch(at(0), "email")], [Conversion(at(2), 10)])
    assert credit(attribute([one], ["position"]), "position") == {"email": (1.0, 10.0)}
    five = Person(
        "p",
        [Touch(at(i), c) for i, c in enumerate(["email", "paid", "paid", "social", "search"])],
        [Conversion(at(9), 100)],
    )
    got = credit(attribute([five], ["position"]), "position")
    # middle 20 % over three touches: paid twice, social once
    assert got["paid"] == pytest.approx((0.4 / 3, 40 / 3))
    assert got["social"] == pytest.approx((0.2 / 3, 20 / 3))
    assert got["email"] == pytest.approx((0.4, 40.0))


def test_time_decay_halves_per_half_life() -> None:
    # Half-life one day: ages 6, 3 and 1 days weigh 1/64, 1/8, 1/2 = 1/41, 8/41, 32/41.
    result = attribute([EMAIL_DIRECT_SEARCH], ["time_decay"], half_life=DAY)
    got = credit(result, "time_decay")
    assert got["email"] == pytest.approx((1 / 41, 100 / 41))
    assert got["direct"] == pytest.approx((8 / 41, 800 / 41))
    assert got["search"] == pytest.approx((32 / 41, 3200 / 41))


def test_time_decay_default_half_life_is_seven_days() -> None:
    person = Person(
        "p", [Touch(at(0), "email"), Touch(at(7), "search")], [Conversion(at(14), 30.0)]
    )
    got = credit(attribute([person], ["time_decay"]), "time_decay")
    # ages 14 and 7 days: weights 1/4 and 1/2 -> 1/3, 2/3
    assert got["email"] == pytest.approx((1 / 3, 10.0))
    assert got["search"] == pytest.approx((2 / 3, 20.0))


def test_lookback_and_previous_conversion_bound_the_path() -> None:
    person = Person(
        "p",
        [
            Touch(at(0), "social"),  # 40 days before the first order: out of the window
            Touch(at(35), "email"),
            Touch(at(41), "search"),  # after the first order: the second order's
            Touch(at(50), "paid"),  # after the last order: a non-converting path
        ],
        [Conversion(at(40), 10.0), Conversion(at(45), 20.0)],
    )
    paths = paths_of(person, timedelta(days=30))
    assert [[t.channel for t in p.touches] for p in paths] == [["email"], ["search"], ["paid"]]
    assert [p.conversion for p in paths][-1] is None
    assert credit(attribute([person], ["first"]), "first") == {
        "email": (1.0, 10.0),
        "search": (1.0, 20.0),
    }


def test_a_touch_at_the_conversion_counts_but_not_one_after() -> None:
    person = Person("p", [Touch(at(1), "email"), Touch(at(1.5), "search")], [Conversion(at(1))])
    assert [[t.channel for t in p.touches] for p in paths_of(person)] == [["email"], ["search"]]


def test_a_conversion_without_touches_is_unattributed_in_every_model() -> None:
    person = Person("p", [Touch(at(0), "email")], [Conversion(at(40), 50.0)])
    result = attribute([person])
    for model in MODELS:
        assert credit(result, model) == {NO_TOUCH: (1.0, 50.0)}, model


def test_by_campaign() -> None:
    result = attribute([EMAIL_DIRECT_SEARCH], ["first", "last"], by="campaign")
    assert credit(result, "first") == {"winter": (1.0, 100.0)}
    assert credit(result, "last") == {NO_CAMPAIGN: (1.0, 100.0)}


def test_bad_arguments_are_named() -> None:
    with pytest.raises(ValueError, match="unknown model 'u_shape'"):
        attribute([EMAIL_DIRECT_SEARCH], ["u_shape"])
    with pytest.raises(ValueError, match="by must be"):
        attribute([EMAIL_DIRECT_SEARCH], by="source")
    with pytest.raises(ValueError, match="lookback"):
        attribute([EMAIL_DIRECT_SEARCH], lookback=timedelta(0))
    with pytest.raises(ValueError, match="half_life"):
        attribute([EMAIL_DIRECT_SEARCH], ["time_decay"], half_life=timedelta(0))


# --- Markov --------------------------------------------------------------------------

# start->A 2, start->B 1; A->B 1, A->null 1; B->conversion 2.
# P(A) = 1/2, P(B) = 1, P(start) = 2/3 * 1/2 + 1/3 = 2/3.
# Without A: 1/3 (removal effect 1/2); without B: 0 (removal effect 1).
# Shares 1/3 and 2/3 of 2 conversions and 90 of revenue.
MARKOV_PEOPLE = [
    Person("p1", [Touch(at(0), "A"), Touch(at(1), "B")], [Conversion(at(2), 30.0)]),
    Person("p2", [Touch(at(0), "A")], []),
    Person("p3", [Touch(at(0), "B")], [Conversion(at(1), 60.0)]),
]


def test_markov_transitions_and_probabilities_by_hand() -> None:
    paths = [p for person in MARKOV_PEOPLE for p in paths_of(person)]
    counts = transitions(paths, lambda t: t.channel)
    assert counts == {
        "start": {"k:A": 2, "k:B": 1},
        "k:A": {"k:B": 1, "null": 1},
        "k:B": {"conversion": 2},
    }
    assert conversion_probability(counts) == pytest.approx(2 / 3)
    assert conversion_probability(counts, "k:A") == pytest.approx(1 / 3)
    assert conversion_probability(counts, "k:B") == pytest.approx(0.0)
    assert removal_effects(paths, lambda t: t.channel) == pytest.approx({"A": 0.5, "B": 1.0})


def test_markov_credit_by_hand() -> None:
    got = credit(attribute(MARKOV_PEOPLE, ["markov"]), "markov")
    assert got["A"] == pytest.approx((2 / 3, 30.0))
    assert got["B"] == pytest.approx((4 / 3, 60.0))


def test_markov_with_a_loop() -> None:
    # A -> A -> conversion, A -> null: P(A) = 1/2 + 1/2... solve p = 1/3 p + 1/3 -> 1/2
    # (A's transitions: A 1, conversion 1, null 1). Removing A leaves nothing: effect 1.
    people = [
        Person("p1", [Touch(at(0), "A"), Touch(at(1), "A")], [Conversion(at(2), 10.0)]),
        Person("p2", [Touch(at(0), "A")], []),
    ]
    paths = [p for person in people for p in paths_of(person)]
    counts = transitions(paths, lambda t: t.channel)
    assert counts["k:A"] == {"k:A": 1, "conversion": 1, "null": 1}
    assert conversion_probability(counts) == pytest.approx(1 / 2)
    assert credit(attribute(people, ["markov"]), "markov") == {"A": pytest.approx((1.0, 10.0))}


def test_a_campaign_named_like_a_chain_state_is_just_a_key() -> None:
    people = [Person("p", [Touch(at(0), "x", "start")], [Conversion(at(1), 5.0)])]
    assert credit(attribute(people, ["markov"], by="campaign"), "markov") == {
        "start": pytest.approx((1.0, 5.0))
    }


channels = st.sampled_from(["email", "search", "direct", "paid", "social"])
people_st = st.lists(
    st.builds(
        Person,
        st.text(min_size=1, max_size=3),
        st.lists(
            st.builds(Touch, st.integers(0, 90).map(at), channels, st.none() | channels),
            max_size=6,
        ),
        st.lists(st.builds(Conversion, st.integers(0, 90).map(at), st.floats(0, 1000)), max_size=3),
    ),
    max_size=8,
)


@given(people_st)
def test_every_model_hands_out_exactly_the_totals(people: list[Person]) -> None:
    result = attribute(people)
    for model in MODELS:
        credits = result.models[model].values()
        assert sum(c.conversions for c in credits) == pytest.approx(result.totals.conversions)
        assert sum(c.revenue for c in credits) == pytest.approx(
            result.totals.revenue, rel=1e-9, abs=1e-6
        )
