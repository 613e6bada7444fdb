"""Drift: histograms, PSI against the training distribution, accumulators that merge."""

from __future__ import annotations

import itertools
import math
import random

import pytest

from functions.scoring.drift import (
    SIGNIFICANT_SHIFT,
    DriftAccumulator,
    bin_counts,
    drifting,
    histogram,
    population_stability_index,
    psi_from_counts,
)
from functions.scoring.manifest import FeatureStats


def sample(seed: int, n: int, mean: float = 50.0, sd: float = 10.0) -> list[float]:
    rng = random.Random(seed)
    return [rng.gauss(mean, sd) for _ in range(n)]


def stats(values: list[float]) -> FeatureStats:
    edges, proportions = histogram(values)
    mean = sum(values) / len(values)
    return FeatureStats(mean=mean, std=1.0, defaulted=0.0, bin_edges=edges, proportions=proportions)


def test_continuous_values_get_decile_bins() -> None:
    edges, proportions = histogram(sample(1, 5000))
    assert len(edges) == 9 and len(proportions) == 10
    assert all(a < b for a, b in itertools.pairwise(edges))
    assert all(p == pytest.approx(0.1, abs=0.002) for p in proportions)
    assert math.isclose(sum(proportions), 1.0, abs_tol=1e-5)


def test_few_distinct_values_get_a_bin_each() -> None:
    edges, proportions = histogram([0.0] * 70 + [1.0] * 30)
    assert edges == [0.5]
    assert proportions == [0.7, 0.3]
    edges, proportions = histogram([1.0, 2.0, 2.0, 5.0])
    assert edges == [1.5, 3.5] and proportions == [0.25, 0.5, 0.25]


def test_a_mostly_zero_feature_keeps_zero_in_one_bin() -> None:
    values = [0.0] * 600 + [float(v) for v in range(1, 401)]
    edges, proportions = histogram(values)
    assert edges[0] == 0.0 and proportions[0] == 0.6
    assert edges == sorted(set(edges))


def test_bins_are_open_ended_and_right_closed() -> None:
    edges = [0.0, 10.0]
    assert bin_counts([-5.0, 0.0, 0.5, 10.0, 10.5, 1e9], edges) == [2, 2, 2]


def test_psi_is_about_zero_for_the_training_distribution() -> None:
    reference = stats(sample(1, 5000))
    assert population_stability_index(reference, sample(2, 2000)) < 0.02


def test_psi_flags_a_clearly_shifted_sample() -> None:
    reference = stats(sample(1, 5000))
    shifted = sample(3, 2000, mean=60.0)  # one standard deviation up
    assert population_stability_index(reference, shifted) > SIGNIFICANT_SHIFT
    wider = sample(4, 2000, sd=25.0)
    assert population_stability_index(reference, wider) > SIGNIFICANT_SHIFT


def test_empty_bins_stay_finite() -> None:
    assert math.isfinite(psi_from_counts([1.0, 0.0], [0, 10]))
    assert psi_from_counts([0.5, 0.5], [5, 5]) == 0.0
    with pytest.raises(ValueError, match="no values"):
        psi_from_counts([0.5, 0.5], [0, 0])
    with pytest.raises(ValueError, match="same bins"):
        psi_from_counts([0.5, 0.5], [1, 1, 1])


def test_accumulator_merge_equals_one_shot() -> None:
    reference = {"a": stats(sample(1, 3000)), "b": stats(sample(2, 3000, mean=5, sd=2))}
    rows = [
        [a, b] for a, b in zip(sample(5, 900, mean=55), sample(6, 900, mean=5, sd=2), strict=True)
    ]
    one_shot = DriftAccumulator(reference)
    one_shot.add(["a", "b"], rows)
    first, second = DriftAccumulator(reference), DriftAccumulator(reference)
    first.add(["a", "b"], rows[:200])
    first.add(["a", "b"], rows[200:450])
    second.add(["a", "b"], rows[450:])
    first.merge(second)
    assert first.rows == one_shot.rows == 900
    assert first.counts == one_shot.counts
    assert first.psi() == one_shot.psi()


def test_accumulator_follows_column_names_and_skips_unknown_ones() -> None:
    reference = {"a": stats(sample(1, 3000))}
    by_order = DriftAccumulator(reference)
    by_order.add(["other", "a"], [[999.0, v] for v in sample(2, 500)])
    direct = DriftAccumulator(reference)
    direct.add(["a"], [[v] for v in sample(2, 500)])
    assert by_order.psi() == direct.psi()


def test_accumulator_reports_what_drifts() -> None:
    reference = {"steady": stats(sample(1, 3000)), "moved": stats(sample(2, 3000))}
    accumulator = DriftAccumulator(reference)
    assert accumulator.psi() == {} and accumulator.drifting() == []
    accumulator.add(
        ["steady", "moved"],
        [[a, b] for a, b in zip(sample(3, 1000), sample(4, 1000, mean=70), strict=True)],
    )
    assert accumulator.drifting() == ["moved"]


def test_accumulators_with_different_references_do_not_merge() -> None:
    a = DriftAccumulator({"a": stats(sample(1, 100))})
    b = DriftAccumulator({"a": stats(sample(2, 100))})
    with pytest.raises(ValueError, match="different references"):
        a.merge(b)


def test_drifting_sorts_by_shift_and_uses_the_threshold() -> None:
    psi = {"a": 0.05, "b": 0.45, "c": 0.21, "d": 0.2}
    assert drifting(psi) == ["b", "c"]
    assert drifting(psi, threshold=0.01) == ["b", "c", "d", "a"]


def test_histogram_needs_values_and_bins() -> None:
    with pytest.raises(ValueError, match="no values"):
        histogram([])
    with pytest.raises(ValueError, match="two bins"):
        histogram([1.0], bins=1)
