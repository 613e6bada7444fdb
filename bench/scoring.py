"""ONNX batch scoring against scikit-learn, session and cold-start costs, bundle size.

    python bench/scoring.py [--seconds 3] [--write]

Rows come from `models/dataset.py` (the simulator's shoppers through the live
profile code, seed 7): exactly what the models were trained on. For the
stream's batch sizes (1, 10, 100, 200 rows) it measures rows per second of one
onnxruntime session run per batch, and of scikit-learn's `predict_proba` on the
same model retrained from the same seed in this process (the ratio is what
carries over), the session creation time, the scoring handler's cold import
time (a fresh interpreter), and the scoring function's bundle size on disk.
`--write` replaces the `## Scoring` section of docs/benchmarks.md.
"""

from __future__ import annotations

import subprocess
import sys
import time
from typing import Any

from bench.harness import (
    ROOT,
    command_line,
    prose,
    report,
    section_head,
    timed_arguments,
)
from infra.bundling import latest_asset

SECTION = "## Scoring"
BATCH_SIZES = (1, 10, 100, 200)


def _rate(seconds: float, batch: Any, run: Any) -> float:
    rows, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        run(batch)
        rows += len(batch)
    return rows / (time.perf_counter() - started)


def measure(seconds: float) -> dict[str, Any]:
    import numpy as np

    from functions.scoring.models import OnnxScorer
    from models.dataset import simulate
    from models.train import build, created_at_for

    datasets = simulate(400, 7)
    results: dict[str, Any] = {"models": {}}
    for name, dataset in datasets.items():
        artifact = build(dataset, 7, created_at_for(None), role="primary")
        started = time.perf_counter()
        scorer = OnnxScorer(artifact.manifest, artifact.onnx_bytes)
        session_ms = (time.perf_counter() - started) * 1000
        rows = np.asarray(dataset.rows, dtype=np.float32)
        per_size = {}
        for size in BATCH_SIZES:
            batch = rows[:size]
            onnx = _rate(seconds, batch.tolist(), scorer.probabilities)
            sklearn = _rate(seconds, batch, artifact.trained.estimator.predict_proba)
            per_size[size] = (onnx, sklearn)
        results["models"][name] = {
            "estimator": artifact.manifest.metrics.estimator,
            "session_ms": session_ms,
            "rates": per_size,
        }
    cold = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import functions.scoring.handler"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    # `-X importtime` lines: "import time: self | cumulative | module"; the handler's
    # cumulative figure includes everything it pulls in.
    cumulative = [
        int(line.split("|")[1])
        for line in cold.stderr.splitlines()
        if line.startswith("import time:")
        and line.split("|")[2].strip() == "functions.scoring.handler"
    ]
    results["cold_import_ms"] = cumulative[0] / 1000
    bundle = latest_asset("scoring")
    results["bundle_mb"] = (
        sum(p.stat().st_size for p in bundle.rglob("*") if p.is_file()) / 1e6
        if bundle is not None
        else None
    )
    return results


def table(results: dict[str, Any]) -> str:
    lines = [
        "| model | estimator | session creation | rows/batch | ONNX rows/s | "
        "scikit-learn rows/s | ONNX ÷ scikit-learn |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for name, r in results["models"].items():
        for size, (onnx, sklearn) in r["rates"].items():
            lines.append(
                f"| {name} | {r['estimator']} | {r['session_ms']:.1f} ms | {size} | "
                f"{onnx:,.0f} | {sklearn:,.0f} | {onnx / sklearn:.1f} |"
            )
    return "\n".join(lines)


def section(results: dict[str, Any], command: str) -> str:
    bundle = results["bundle_mb"]
    size = f"{bundle:.1f} MB" if bundle is not None else "not built (run `make synth`)"
    return "\n\n".join(
        [
            section_head(SECTION, command, carries_over="ratios"),
            table(results),
            prose(
                "One onnxruntime call per model scores a whole Kinesis batch; the "
                "models are retrained here on 400 simulated shoppers (seed 7), so "
                "cross-validation may pick another estimator than the shipped model's; "
                "the scikit-learn column is the same model's `predict_proba` on the same "
                f"rows. Cold import of the scoring handler (onnxruntime, numpy, "
                f"Powertools, pydantic): {results['cold_import_ms']:.0f} ms in a fresh "
                f"interpreter on this machine. Scoring bundle (arm64 wheels, code, "
                f"models): {size}; numpy and onnxruntime are in this bundle only."
            ),
        ]
    )


def main(argv: list[str] | None = None) -> int:
    args = timed_arguments(__doc__, argv, seconds=1.0)
    command = command_line("scoring.py", argv)
    results = measure(args.seconds)
    return report([table(results)], args.write, SECTION, lambda: section(results, command))


if __name__ == "__main__":
    sys.exit(main())
