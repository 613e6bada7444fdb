"""Feature drift: population stability index (PSI) against the training distribution.

Training records, per feature, a histogram (`FeatureStats.bin_edges` and
`.proportions` in the manifest) built by `histogram` below; the scoring Lambda
bins what it scores the same way and compares:

    PSI = sum over bins of (actual - expected) * ln(actual / expected)

with each share floored at EPSILON, so an empty bin on either side counts as
rare rather than impossible. The usual reading: below 0.1 no shift, 0.1-0.2 a
moderate one, above 0.2 (SIGNIFICANT_SHIFT) a significant one.

`DriftAccumulator` keeps bin counts, not values: batches add up, and
accumulators merge (one per Lambda container, say), and the merged PSI is the
PSI of all the rows at once. Pure Python.
"""

from __future__ import annotations

import bisect
import itertools
import math
from collections.abc import Mapping, Sequence

from functions.scoring.manifest import FeatureStats, ModelManifest

EPSILON = 1e-4
SIGNIFICANT_SHIFT = 0.2
DEFAULT_BINS = 10
EDGE_DIGITS = 6  # edges are rounded so the manifest's JSON is short and stable


def histogram(values: Sequence[float], bins: int = DEFAULT_BINS) -> tuple[list[float], list[float]]:
    """Bin edges and proportions of a training sample (see FeatureStats for the layout).

    A feature with at most `bins` distinct values gets one bin per value (edges
    halfway between them); otherwise the edges are the deciles (for 10 bins),
    with repeats dropped, so a feature that is mostly 0 gets one bin for 0.
    """
    if not values:
        raise ValueError("cannot build a histogram of no values")
    if bins < 2:
        raise ValueError("a histogram needs at least two bins")
    ordered = sorted(values)
    distinct = sorted(set(ordered))
    if len(distinct) <= bins:
        raw = [(a + b) / 2 for a, b in itertools.pairwise(distinct)]
    else:
        n = len(ordered)
        raw = [ordered[math.ceil(k * n / bins) - 1] for k in range(1, bins)]
    edges: list[float] = []
    for edge in raw:
        rounded = round(edge, EDGE_DIGITS)
        # An edge at the maximum would leave the last bin empty in training.
        if rounded < ordered[-1] and (not edges or rounded > edges[-1]):
            edges.append(rounded)
    counts = bin_counts(values, edges)
    return edges, [round(c / len(values), EDGE_DIGITS) for c in counts]


def bin_index(value: float, edges: Sequence[float]) -> int:
    """Bin i holds (edges[i-1], edges[i]]; the first and last bins are open-ended."""
    return bisect.bisect_left(edges, value)


def bin_counts(values: Sequence[float], edges: Sequence[float]) -> list[int]:
    counts = [0] * (len(edges) + 1)
    for value in values:
        counts[bin_index(value, edges)] += 1
    return counts


def psi_from_counts(
    expected: Sequence[float], counts: Sequence[int], epsilon: float = EPSILON
) -> float:
    """PSI of observed bin counts against expected proportions (same bins)."""
    if len(expected) != len(counts):
        raise ValueError("expected proportions and counts must have the same bins")
    total = sum(counts)
    if total == 0:
        raise ValueError("cannot compute PSI of no values")
    psi = 0.0
    for share, count in zip(expected, counts, strict=True):
        e = max(share, epsilon)
        a = max(count / total, epsilon)
        psi += (a - e) * math.log(a / e)
    return psi


def population_stability_index(stats: FeatureStats, values: Sequence[float]) -> float:
    """PSI of one feature's values against its training histogram."""
    return psi_from_counts(stats.proportions, bin_counts(values, stats.bin_edges))


def drifting(
    psi_by_feature: Mapping[str, float], threshold: float = SIGNIFICANT_SHIFT
) -> list[str]:
    """Features whose PSI is above the threshold, the largest shift first."""
    over = [(name, psi) for name, psi in psi_by_feature.items() if psi > threshold]
    return [name for name, _ in sorted(over, key=lambda kv: (-kv[1], kv[0]))]


class DriftAccumulator:
    """Bin counts per feature over any number of batches; PSI on demand."""

    def __init__(self, reference: Mapping[str, FeatureStats]) -> None:
        self.reference = dict(reference)
        self.counts = {name: [0] * len(s.proportions) for name, s in self.reference.items()}
        self.rows = 0

    @classmethod
    def from_manifest(cls, manifest: ModelManifest) -> DriftAccumulator:
        return cls({name: manifest.training.features[name] for name in manifest.feature_names})

    def add(self, names: Sequence[str], rows: Sequence[Sequence[float]]) -> None:
        """Count a batch: `rows` of values in the order of `names` (a FeatureMatrix's)."""
        tracked = [
            (column, self.reference[name].bin_edges, self.counts[name])
            for column, name in enumerate(names)
            if name in self.reference
        ]
        for row in rows:
            for column, edges, counts in tracked:
                counts[bin_index(row[column], edges)] += 1
        self.rows += len(rows)

    def merge(self, other: DriftAccumulator) -> None:
        """Add another accumulator's counts (built against the same reference)."""
        if other.reference != self.reference:
            raise ValueError("cannot merge drift accumulators with different references")
        for name, counts in other.counts.items():
            mine = self.counts[name]
            for i, count in enumerate(counts):
                mine[i] += count
        self.rows += other.rows

    def psi(self) -> dict[str, float]:
        """PSI per feature over everything counted so far; empty before any row."""
        if self.rows == 0:
            return {}
        return {
            name: psi_from_counts(self.reference[name].proportions, counts)
            for name, counts in self.counts.items()
        }

    def drifting(self, threshold: float = SIGNIFICANT_SHIFT) -> list[str]:
        return drifting(self.psi(), threshold)
