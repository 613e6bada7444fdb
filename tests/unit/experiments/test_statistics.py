"""The experiment statistics against simulations with a known truth (seeded, in-process).

Each simulation draws whole experiments with numpy and feeds the estimator the
same per-arm counters the stream keeps (n, sum, sum of squares), then checks
what a sceptic would: does the interval cover the true difference at its
nominal rate; does an A/A test watched after every batch cry wolf no more than
alpha of the time with the confidence sequence (and how often would naive
repeated testing); is a broken split flagged.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats

from functions.experiments.statistics import (
    Moments,
    chi_square_sf,
    compare,
    fixed_horizon_halfwidth,
    sample_ratio_mismatch,
    sequential_halfwidth,
)

ALPHA = 0.05


def moments(values: np.ndarray) -> Moments:
    return Moments(len(values), float(values.sum()), float((values * values).sum()))


def test_the_fixed_horizon_interval_covers_a_known_conversion_lift_at_its_nominal_rate() -> None:
    rng = np.random.default_rng(18)
    p_control, p_treated, n, runs = 0.10, 0.12, 3_000, 2_000
    covered = 0
    for _ in range(runs):
        control = (rng.random(n) < p_control).astype(float)
        treated = (rng.random(n) < p_treated).astype(float)
        interval = compare(moments(treated), moments(control)).fixed_horizon
        covered += not interval.excludes(p_treated - p_control)
    assert abs(covered / runs - (1 - ALPHA)) <= 0.02


def test_the_fixed_horizon_interval_covers_a_known_lift_of_skewed_revenue() -> None:
    """Revenue per exposed person: most buy nothing, buyers spend a lognormal amount."""
    rng = np.random.default_rng(7)
    n, runs = 4_000, 1_500

    def revenue(buy: float) -> np.ndarray:
        return (rng.random(n) < buy) * rng.lognormal(mean=3.5, sigma=0.8, size=n)

    truth = (0.06 - 0.05) * math.exp(3.5 + 0.8**2 / 2)
    covered = sum(
        not compare(moments(revenue(0.06)), moments(revenue(0.05))).fixed_horizon.excludes(truth)
        for _ in range(runs)
    )
    assert abs(covered / runs - (1 - ALPHA)) <= 0.02


def _watched(
    rng: np.random.Generator, p_control: float, p_treated: float, looks: int, batch: int
) -> tuple[bool, bool, bool]:
    """One experiment looked at after every batch: did the confidence sequence ever
    exclude the truth; did it ever exclude 0; did a naive z-test ever reject?"""
    control = np.cumsum(rng.random((looks, batch)) < p_control, axis=None).reshape(looks, batch)
    treated = np.cumsum(rng.random((looks, batch)) < p_treated, axis=None).reshape(looks, batch)
    truth = p_treated - p_control
    missed = zero = naive = False
    for look in range(looks):
        n = (look + 1) * batch
        c, t = float(control[look, -1]), float(treated[look, -1])
        result = compare(Moments(n, t, t), Moments(n, c, c))
        missed |= result.difference.excludes(truth)
        zero |= result.difference.excludes(0.0)
        naive |= result.fixed_horizon.excludes(0.0)
    return missed, zero, naive


def test_an_aa_test_watched_after_every_batch_rarely_cries_wolf_and_naive_testing_does() -> None:
    rng = np.random.default_rng(2026)
    runs, looks, batch = 400, 40, 100  # 4,000 people per arm, looked at 40 times
    outcomes = [_watched(rng, 0.1, 0.1, looks, batch) for _ in range(runs)]
    sequential = sum(zero for _, zero, _ in outcomes) / runs
    naive = sum(naive for _, _, naive in outcomes) / runs
    # Binomial slack over 400 runs: 5 % plus about two standard errors.
    assert sequential <= ALPHA + 0.02
    assert naive >= 3 * ALPHA  # peeking 40 times with a fixed-horizon test
    assert naive > 2 * sequential


def test_the_confidence_sequence_covers_a_true_lift_at_every_look() -> None:
    rng = np.random.default_rng(99)
    runs = 400
    missed = sum(_watched(rng, 0.10, 0.13, 30, 100)[0] for _ in range(runs)) / runs
    assert missed <= ALPHA + 0.02


def test_the_confidence_sequence_finds_a_real_lift_given_enough_people() -> None:
    rng = np.random.default_rng(5)
    n = 20_000
    control = (rng.random(n) < 0.10).astype(float)
    treated = (rng.random(n) < 0.12).astype(float)
    result = compare(moments(treated), moments(control))
    assert result.difference.low > 0
    assert result.relative is not None and result.relative.low > 0
    assert result.enough_data


def test_the_sequential_interval_is_wider_than_the_fixed_one_and_shrinks_with_n() -> None:
    widths = [sequential_halfwidth(0.1 / n, n, ALPHA) for n in (100, 1_000, 10_000, 100_000)]
    assert widths == sorted(widths, reverse=True)
    for n in (100, 5_000, 100_000):
        assert sequential_halfwidth(0.1 / n, n, ALPHA) > fixed_horizon_halfwidth(0.1 / n, ALPHA)


def test_an_injected_45_55_split_under_50_50_weights_is_flagged() -> None:
    assert sample_ratio_mismatch([4_500, 5_500], [50, 50]).flag
    assert not sample_ratio_mismatch([4_980, 5_020], [50, 50]).flag
    assert sample_ratio_mismatch([1_000, 4_500, 4_500], [10, 45, 45]).p_value > 0.5


def test_a_fair_split_is_flagged_about_one_time_in_a_thousand_or_less() -> None:
    rng = np.random.default_rng(11)
    flags = sum(
        sample_ratio_mismatch(list(rng.multinomial(10_000, [0.1, 0.45, 0.45])), [10, 45, 45]).flag
        for _ in range(3_000)
    )
    assert flags <= 9  # expected 3 at p < 0.001


@given(
    x=st.floats(min_value=0.0, max_value=400.0, allow_nan=False),
    degrees=st.integers(min_value=1, max_value=30),
)
def test_chi_square_tail_matches_scipy(x: float, degrees: int) -> None:
    assert chi_square_sf(x, degrees) == pytest.approx(
        stats.chi2.sf(x, degrees), rel=1e-9, abs=1e-300
    )


def test_too_few_people_is_not_enough_data_and_empty_arms_do_not_crash() -> None:
    small = compare(Moments(20, 3, 3), Moments(25, 2, 2))
    assert not small.enough_data
    empty = compare(Moments(0, 0, 0), Moments(0, 0, 0))
    assert empty.relative is None and not empty.enough_data
    assert math.isinf(empty.difference.high)
