"""A labelled, seeded set of trait pairs for probabilistic identity matching.

    python bench/matching_data.py [--seed 7] [--pairs 2000] [--grid] [--write]

The labelled pairs and their evaluation are `simulator/matching_pairs.py`
(people from `simulator/people.py`); this script reports them: the evaluation of
the default and the recommended settings, the pairs by kind, why true pairs are
missed, and with `--grid` the grid search over weights and thresholds (seeds
101-103) that found the recommended ones. `--write` rewrites the generated
block of docs/identity.md.
"""

from __future__ import annotations

import argparse
import bisect
import itertools
import math
import sys
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from functions.identity.comparison import combine, score
from functions.shared.config import Probabilistic
from simulator.matching_pairs import (
    DEFAULT,
    DEFAULT_PAIRS,
    DEFAULT_SEED,
    KINDS,
    RECOMMENDED,
    Labelled,
    Pair,
    Scored,
    evaluate,
    generate_pairs,
    labelled_pairs,
    misses,
    prepare,
    threshold_metrics,
)

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "identity.md"
BLOCK_START = "<!-- bench/matching_data.py: start -->"
BLOCK_END = "<!-- bench/matching_data.py: end -->"


TUNING_SEEDS = (101, 102, 103)
CANDIDATES: dict[str, dict[str, float]] = {
    "config default": dict(DEFAULT.weights),
    "equal": dict.fromkeys(("name", "phone", "address", "postcode", "email_local"), 0.2),
    "name-heavy": {
        "name": 0.5,
        "phone": 0.15,
        "address": 0.15,
        "postcode": 0.05,
        "email_local": 0.15,
    },
    "contact-heavy": {
        "name": 0.25,
        "phone": 0.3,
        "address": 0.2,
        "postcode": 0.1,
        "email_local": 0.15,
    },
    "recommended": dict(RECOMMENDED.weights),
}
GRID: dict[str, tuple[float, ...]] = {
    "name": (0.3, 0.35, 0.4, 0.45, 0.5),
    "phone": (0.1, 0.15, 0.2, 0.25, 0.3),
    "address": (0.1, 0.15, 0.2, 0.25),
    "postcode": (0.05, 0.1),
    "email_local": (0.1, 0.15, 0.2),
}
AUTO_GRID = (0.90, 0.92, 0.94)
REVIEW_GRID = (0.74, 0.76, 0.78, 0.80)
MIN_PRECISION = 0.995
MAX_NEGATIVES_IN_REVIEW = 0.10


@dataclass(frozen=True)
class GridRow:
    weights: dict[str, float]
    auto: float
    review: float
    metrics: dict[str, float]

    @property
    def eligible(self) -> bool:
        return (
            self.metrics["precision_auto"] >= MIN_PRECISION
            and self.metrics["negatives_in_review"] <= MAX_NEGATIVES_IN_REVIEW
        )

    @property
    def rank(self) -> tuple[bool, float, float]:
        return (self.eligible, round(self.metrics["recall"], 3), self.metrics["recall_auto"])


def _fast_metrics(
    true_values: Sequence[float], negative_values: Sequence[float], auto: float, review: float
) -> dict[str, float]:
    """The threshold metrics of the grid from sorted scores (bisect, not a pass per setting)."""
    n_true, n_neg = len(true_values), len(negative_values)
    auto_true = n_true - bisect.bisect_left(true_values, auto)
    auto_false = n_neg - bisect.bisect_left(negative_values, auto)
    over_review_true = n_true - bisect.bisect_left(true_values, review)
    review_false = n_neg - bisect.bisect_left(negative_values, review) - auto_false
    flagged = auto_true + auto_false
    return {
        "precision_auto": auto_true / flagged if flagged else 1.0,
        "recall_auto": auto_true / n_true if n_true else 0.0,
        "recall": over_review_true / n_true if n_true else 0.0,
        "negatives_in_review": review_false / n_neg if n_neg else 0.0,
    }


def grid_search(scored: Sequence[Scored]) -> list[GridRow]:
    """Every weighting of GRID x AUTO_GRID x REVIEW_GRID, best first: eligible
    (precision at auto >= MIN_PRECISION, negatives in review <= MAX_NEGATIVES_IN_REVIEW),
    then recall (auto + review), then recall at auto."""
    rows: list[GridRow] = []
    names = tuple(GRID)
    for values in itertools.product(*GRID.values()):
        weights = dict(zip(names, values, strict=True))
        scores = [combine(s.comparison, weights) for s in scored]
        true_values = sorted(v for v, s in zip(scores, scored, strict=True) if s.is_match)
        negative_values = sorted(v for v, s in zip(scores, scored, strict=True) if not s.is_match)
        for auto in AUTO_GRID:
            for review in REVIEW_GRID:
                metrics = _fast_metrics(true_values, negative_values, auto, review)
                rows.append(GridRow(weights, auto, review, metrics))
    rows.sort(key=lambda r: r.rank, reverse=True)
    return rows


def _pct(value: float) -> str:
    return f"{100 * value:.1f} %"


def _weights(weights: Mapping[str, float]) -> str:
    short = {"name": "n", "phone": "ph", "address": "ad", "postcode": "pc", "email_local": "em"}
    return " ".join(f"{short[f]} {weights.get(f, 0.0):.2f}" for f in short)


def candidate_table(scored: Sequence[Scored]) -> list[str]:
    """The named weightings, each at the default and at the recommended thresholds."""
    lines = [
        "| weighting | weights | auto / review | precision at auto | recall at auto "
        "| recall (auto + review) | negatives in review |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: |",
    ]
    default = (DEFAULT.auto_merge_threshold, DEFAULT.review_threshold)
    recommended = (RECOMMENDED.auto_merge_threshold, RECOMMENDED.review_threshold)
    for label, weights in CANDIDATES.items():
        scores = [combine(s.comparison, weights) for s in scored]
        settings = [recommended] if label == "recommended" else [default, recommended]
        for auto, review in dict.fromkeys(settings):
            m = threshold_metrics(scored, scores, auto, review)
            lines.append(
                f"| {label} | {_weights(weights)} | {auto:.2f} / {review:.2f} "
                f"| {_pct(m['precision_auto'])} | {_pct(m['recall_auto'])} "
                f"| {_pct(m['recall'])} | {_pct(m['negatives_in_review'])} |"
            )
    return lines


def grid_table(rows: Sequence[GridRow], top: int = 8) -> list[str]:
    lines = [
        "| rank | weights | auto / review | precision at auto | recall at auto "
        "| recall (auto + review) | negatives in review |",
        "| ---: | --- | --- | ---: | ---: | ---: | ---: |",
    ]
    for i, row in enumerate(rows[:top], 1):
        m = row.metrics
        lines.append(
            f"| {i} | {_weights(row.weights)} | {row.auto:.2f} / {row.review:.2f} "
            f"| {_pct(m['precision_auto'])} | {_pct(m['recall_auto'])} "
            f"| {_pct(m['recall'])} | {_pct(m['negatives_in_review'])} |"
        )
    return lines


def evaluation_table(pairs: Sequence[Pair]) -> list[str]:
    lines = [
        "| settings | auto / review | precision at auto | recall at auto "
        "| true pairs in review | recall (auto + review) | negatives in review "
        "| review precision | blocking recall | end-to-end recall | mean candidates / record |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for label, settings in (("config default", DEFAULT), ("recommended", RECOMMENDED)):
        auto, review = settings.auto_merge_threshold, settings.review_threshold
        m = evaluate(pairs, settings.weights, auto, review)
        lines.append(
            f"| {label} | {auto:.2f} / {review:.2f} | {_pct(m['precision_auto'])} "
            f"| {_pct(m['recall_auto'])} | {_pct(m['review_rate'])} | {_pct(m['recall'])} "
            f"| {_pct(m['negatives_in_review'])} | {_pct(m['review_precision'])} "
            f"| {_pct(m['blocking_recall'])} | {_pct(m['end_to_end_recall'])} "
            f"| {m['mean_block_comparisons']:.1f} |"
        )
    return lines


def kind_table(labelled: Sequence[Labelled], settings: Probabilistic) -> list[str]:
    auto, review = settings.auto_merge_threshold, settings.review_threshold
    lines = [
        "| pairs | count | auto-merge | review | below review |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    for p in labelled:
        value = score(p.a, p.b, settings.weights).score
        band = "auto" if value >= auto else "review" if value >= review else "none"
        counts[p.kind][band] += 1
    for kind, _ in KINDS:
        c = counts[kind]
        total = sum(c.values())
        lines.append(
            f"| {kind.replace('_', ' ')} | {total} | {c['auto']} | {c['review']} | {c['none']} |"
        )
    return lines


def report(seed: int, n: int, grid: bool) -> list[str]:
    """The markdown block docs/identity.md shows."""
    labelled = labelled_pairs(seed, n)
    pairs = [(p.a, p.b, p.is_match) for p in labelled]
    out = [
        f"`python bench/matching_data.py{' --grid' if grid else ''}` — seed {seed}, {n} pairs, "
        f"{date.today().isoformat()}.",
        "",
        "Measured on the held-out set (seed "
        f"{seed}; the weights were chosen on seeds {', '.join(map(str, TUNING_SEEDS))}):",
        "",
        *evaluation_table(pairs),
        "",
        "Where the pairs land with the recommended settings:",
        "",
        *kind_table(labelled, RECOMMENDED),
        "",
        "Why true pairs stayed below review (recommended settings):",
        "",
        "| reason | true pairs |",
        "| --- | ---: |",
    ]
    for reason, count in misses(
        labelled, RECOMMENDED.weights, RECOMMENDED.review_threshold
    ).most_common():
        out.append(
            f"| {reason} | {count} ({_pct(count / max(1, sum(p.is_match for p in labelled)))}) |"
        )
    if grid:
        tuning = [
            s for tuning_seed in TUNING_SEEDS for s in prepare(generate_pairs(tuning_seed, n))
        ]
        out += [
            "",
            f"Candidate weightings on the tuning seeds ({len(tuning)} pairs):",
            "",
            *candidate_table(tuning),
            "",
            f"Grid search on the tuning seeds ({math.prod(len(v) for v in GRID.values())} "
            f"weightings x {len(AUTO_GRID)} auto x {len(REVIEW_GRID)} review thresholds), "
            f"best first (precision at auto >= {_pct(MIN_PRECISION)}, negatives in review "
            f"<= {_pct(MAX_NEGATIVES_IN_REVIEW)}, then recall, then recall at auto):",
            "",
            *grid_table(grid_search(tuning)),
        ]
    return out


def write_doc(block: Sequence[str]) -> None:
    text = DOC.read_text(encoding="utf-8")
    if BLOCK_START not in text or BLOCK_END not in text:
        raise SystemExit(f"{DOC} has no {BLOCK_START} ... {BLOCK_END} block")
    head, _, rest = text.partition(BLOCK_START)
    _, _, tail = rest.partition(BLOCK_END)
    DOC.write_text(
        head + BLOCK_START + "\n" + "\n".join(block) + "\n" + BLOCK_END + tail, encoding="utf-8"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Labelled pairs for probabilistic matching.")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--pairs", type=int, default=DEFAULT_PAIRS)
    parser.add_argument("--grid", action="store_true", help="also run the grid search (~15 s)")
    parser.add_argument(
        "--write", action="store_true", help="rewrite docs/identity.md's block (implies --grid)"
    )
    args = parser.parse_args(argv)
    block = report(args.seed, args.pairs, grid=args.grid or args.write)
    print("\n".join(block))
    if args.write:
        write_doc(block)
        print(f"\nwrote {DOC.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
