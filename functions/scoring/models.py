"""Loading the configured models: manifests checked against their ONNX graphs.

The only module that touches onnxruntime. A manifest that does not match its
model (feature count, input name, dtype, file hash) raises `ManifestError` at
load — the scoring function's cold start, `cdk synth` and `beacon local` — so a
model is never silently fed the wrong columns.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from functions.scoring.manifest import ModelManifest, check_against_session, load_model
from functions.shared.config import Models

# Lambda gives a function one vCPU per 1,769 MB, which is what the scoring
# function has; a batch of 200 rows gains nothing from more threads.
INTRA_OP_THREADS = 1


class OnnxScorer:
    """One model's inference session, created once per container."""

    def __init__(self, manifest: ModelManifest, onnx_bytes: bytes) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = INTRA_OP_THREADS
        options.inter_op_num_threads = 1
        self.manifest = manifest
        self.session = ort.InferenceSession(
            onnx_bytes, sess_options=options, providers=["CPUExecutionProvider"]
        )
        first = self.session.get_inputs()[0]
        check_against_session(
            manifest,
            [i.name for i in self.session.get_inputs()],
            list(first.shape),
            str(first.type),
            [o.name for o in self.session.get_outputs()],
            onnx_bytes=onnx_bytes,
        )

    def probabilities(self, rows: Sequence[Sequence[float]]) -> list[float]:
        """The positive class's probability for every row, in one session run."""
        import numpy as np

        matrix = np.asarray(rows, dtype=np.float32).reshape(len(rows), len(self.manifest.features))
        output: Any = self.session.run(
            [self.manifest.output_name], {self.manifest.input_name: matrix}
        )[0]
        return [float(p) for p in output[:, self.manifest.positive_index]]


def load_scorers(models: Models, base_dir: str | Path) -> list[OnnxScorer]:
    """Every configured model, loaded and checked; names must be unique per role."""
    scorers = [OnnxScorer(*load_model(Path(base_dir) / manifest)) for manifest in models.manifests]
    seen = [(s.manifest.name, s.manifest.role) for s in scorers]
    duplicates = sorted({name for name, role in seen if seen.count((name, role)) > 1})
    if duplicates:
        raise ValueError(f"two {', '.join(duplicates)} models with the same role in models:")
    return scorers
