"""CUPED against simulations with a known truth (seeded, in-process), and against a
direct computation on the raw rows.

Each simulated person has a covariate x measured before exposure and an outcome
y correlated with it (corr rho = 0.6); the treated arm's outcome is shifted by a
known lift. The estimator sees only what the stream keeps per arm: n and the
sums of y, y^2, x, x^2 and x*y.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from functions.experiments.statistics import (
    Covariate,
    Moments,
    compare,
    cuped,
    fixed_horizon_halfwidth,
    sequential_halfwidth,
)

ALPHA = 0.05
RHO = 0.6


def arm(x: np.ndarray, y: np.ndarray) -> tuple[Moments, Covariate]:
    return (
        Moments(len(y), float(y.sum()), float((y * y).sum())),
        Covariate(float(x.sum()), float((x * x).sum()), float((x * y).sum())),
    )


def people(rng: np.random.Generator, n: int, lift: float) -> tuple[np.ndarray, np.ndarray]:
    """Spend before (x) and after (y) exposure: corr(x, y) = RHO, y's mean 20 + lift."""
    x = rng.normal(50.0, 10.0, n)
    noise = rng.normal(0.0, 1.0, n)
    y = 20.0 + lift + 5.0 * (RHO * (x - 50.0) / 10.0 + math.sqrt(1 - RHO**2) * noise)
    return x, y


def test_cuped_covers_a_known_lift_at_its_nominal_rate_and_is_narrower() -> None:
    rng = np.random.default_rng(180)
    lift, n, runs = 0.4, 1_000, 2_000
    covered = raw_covered = 0
    reductions, ratios = [], []
    for _ in range(runs):
        treated, control = arm(*people(rng, n, lift)), arm(*people(rng, n, 0.0))
        adjusted = cuped(*treated, *control)
        plain = compare(treated[0], control[0])
        covered += not adjusted.comparison.fixed_horizon.excludes(lift)
        raw_covered += not plain.fixed_horizon.excludes(lift)
        reductions.append(adjusted.variance_reduction)
        fixed = adjusted.comparison.fixed_horizon
        ratios.append(
            (fixed.high - fixed.low) / (plain.fixed_horizon.high - plain.fixed_horizon.low)
        )
    print(  # the figures in docs/experiments.md (pytest -s)
        f"\nrevenue, rho {RHO}: coverage cuped {covered / runs:.3f} unadjusted"
        f" {raw_covered / runs:.3f}; variance reduction {np.mean(reductions):.3f};"
        f" width ratio {np.mean(ratios):.3f} (max {max(ratios):.3f})"
    )
    assert abs(covered / runs - (1 - ALPHA)) <= 0.02
    assert abs(raw_covered / runs - (1 - ALPHA)) <= 0.02
    # The variance shrinks by about rho^2, the interval by about sqrt(1 - rho^2).
    assert float(np.mean(reductions)) == pytest.approx(RHO**2, abs=0.02)
    assert float(np.mean(ratios)) == pytest.approx(math.sqrt(1 - RHO**2), abs=0.02)
    assert max(ratios) < 1


def test_cuped_covers_a_known_conversion_lift_with_a_count_covariate() -> None:
    """Orders in the year before (Poisson) predict converting after (a 0/1 outcome)."""
    rng = np.random.default_rng(18)
    n, runs, base, lift = 3_000, 1_500, 0.10, 0.02

    def side(p: float) -> tuple[Moments, Covariate]:
        x = rng.poisson(1.0, n).astype(float)
        probability = np.clip(p + 0.08 * (x - 1.0), 0.0, 1.0)
        return arm(x, (rng.random(n) < probability).astype(float))

    covered, reductions = 0, []
    for _ in range(runs):
        adjusted = cuped(*side(base + lift), *side(base))
        covered += not adjusted.comparison.fixed_horizon.excludes(lift)
        reductions.append(adjusted.variance_reduction)
    print(
        f"\nconversion, count covariate: coverage {covered / runs:.3f};"
        f" variance reduction {np.mean(reductions):.3f}"
    )
    assert abs(covered / runs - (1 - ALPHA)) <= 0.02
    # corr(x, y)^2 = 0.08^2 var(x) / (p (1 - p)): 0.071 in control, 0.061 treated.
    assert float(np.mean(reductions)) == pytest.approx(0.065, abs=0.01)


def _watched(
    rng: np.random.Generator, lift: float, looks: int, batch: int
) -> tuple[bool, bool, bool]:
    """One experiment looked at after every batch of `batch` people per arm: did the
    CUPED confidence sequence ever exclude the truth, ever exclude 0; did the
    unadjusted one ever exclude 0?"""
    sums = []
    for shift in (lift, 0.0):
        x, y = people(rng, looks * batch, shift)
        per_batch = np.stack([y, y * y, x, x * x, x * y]).reshape(5, looks, batch).sum(axis=2)
        sums.append(np.cumsum(per_batch, axis=1))
    missed = zero = raw_zero = False
    for look in range(looks):
        n = (look + 1) * batch
        t, c = (s[:, look] for s in sums)
        treated = (Moments(n, t[0], t[1]), Covariate(t[2], t[3], t[4]))
        control = (Moments(n, c[0], c[1]), Covariate(c[2], c[3], c[4]))
        sequence = cuped(*treated, *control).comparison.difference
        missed |= sequence.excludes(lift)
        zero |= sequence.excludes(0.0)
        raw_zero |= compare(treated[0], control[0]).difference.excludes(0.0)
    return missed, zero, raw_zero


def test_an_aa_test_watched_after_every_batch_rarely_cries_wolf_with_cuped() -> None:
    rng = np.random.default_rng(2027)
    runs = 400  # 4,000 people per arm, looked at 40 times
    outcomes = [_watched(rng, 0.0, 40, 100) for _ in range(runs)]
    cuped_rate = sum(zero for _, zero, _ in outcomes) / runs
    raw_rate = sum(raw for _, _, raw in outcomes) / runs
    print(f"\nA/A watched 40 times: cuped sequence {cuped_rate:.3f}, unadjusted {raw_rate:.3f}")
    assert cuped_rate <= ALPHA  # nominal: the sequence's guarantee is "at most alpha"
    assert raw_rate <= ALPHA


def test_the_cuped_confidence_sequence_covers_a_true_lift_at_every_look() -> None:
    rng = np.random.default_rng(31)
    runs = 400
    missed = sum(_watched(rng, 0.4, 30, 100)[0] for _ in range(runs)) / runs
    print(f"\ncuped sequence ever missed the true lift (30 looks): {missed:.3f}")
    assert missed <= ALPHA


def test_a_covariate_without_variance_degrades_to_the_unadjusted_comparison() -> None:
    rng = np.random.default_rng(3)
    y_t, y_c = rng.normal(21, 5, 500), rng.normal(20, 5, 400)
    for x_value in (0.0, 7.0):  # nobody has one (old counters: zeros); everyone the same
        treated = arm(np.full(500, x_value), y_t)
        control = arm(np.full(400, x_value), y_c)
        adjusted = cuped(*treated, *control)
        plain = compare(treated[0], control[0])
        assert adjusted.theta == 0.0 and adjusted.variance_reduction == 0.0
        assert adjusted.comparison == plain
    empty = cuped(Moments(0, 0, 0), Covariate(0, 0, 0), Moments(0, 0, 0), Covariate(0, 0, 0))
    assert empty.theta == 0.0 and not empty.comparison.enough_data
    assert math.isinf(empty.comparison.difference.high)


rows = st.lists(
    st.tuples(st.integers(0, 40), st.integers(-5_000, 100_000)), min_size=2, max_size=60
)


@settings(max_examples=150, deadline=None)
@given(treated_rows=rows, control_rows=rows)
def test_the_sums_give_what_numpy_gives_on_the_raw_rows(
    treated_rows: list[tuple[int, int]], control_rows: list[tuple[int, int]]
) -> None:
    """x: orders in the year before; y: spend after, in cents / 100. Directly: theta
    from the arms' centred rows, adjusted outcomes per person, Welch's variance."""
    data = [
        np.array(r, dtype=float).T * np.array([[1.0], [0.01]]) for r in (treated_rows, control_rows)
    ]
    (xt, yt), (xc, yc) = data
    sxx = sum(float(((x - x.mean()) ** 2).sum()) for x, _ in data)
    sxy = sum(float(((x - x.mean()) * (y - y.mean())).sum()) for x, y in data)
    theta = sxy / sxx if sxx > 0 else 0.0
    x_mean = float(np.concatenate([xt, xc]).mean())
    zt, zc = yt - theta * (xt - x_mean), yc - theta * (xc - x_mean)
    difference = float(zt.mean() - zc.mean())
    variance = float(zt.var(ddof=1) / len(zt) + zc.var(ddof=1) / len(zc))

    result = cuped(*arm(xt, yt), *arm(xc, yc))

    # Sums lose what float loses subtracting squares: tolerances in their magnitude.
    magnitude = 1 + float(np.abs(np.concatenate([yt, yc])).max() + abs(theta) * 40) ** 2
    assert result.theta == pytest.approx(theta, rel=1e-7, abs=1e-9)
    fixed = result.comparison.fixed_horizon
    assert fixed.estimate == pytest.approx(difference, rel=1e-7, abs=1e-9 * math.sqrt(magnitude))
    z = fixed_horizon_halfwidth(1.0, ALPHA)
    assert ((fixed.high - fixed.low) / 2 / z) ** 2 == pytest.approx(
        variance, rel=1e-6, abs=1e-13 * magnitude
    )
    sequence = result.comparison.difference
    n = len(zt) + len(zc)
    per_unit = sequential_halfwidth(1.0, n, ALPHA)
    assert ((sequence.high - sequence.low) / 2 / per_unit) ** 2 == pytest.approx(
        variance, rel=1e-6, abs=1e-13 * magnitude
    )
