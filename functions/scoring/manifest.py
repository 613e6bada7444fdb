"""A model's manifest: what the scoring Lambda must know about an ONNX file, and checks.

Each shipped model is two files side by side: `<name>.onnx` and
`<name>.manifest.json`. The manifest says which features go in (in input
order, with their profile source and default), what the ONNX graph's input and
output are called, which probability column is the positive class, the
thresholds that raise `score.crossed` events, and what training measured
(held-out metrics; per-feature statistics that drift is measured against).

The Lambda loads both at cold start and fails loudly on any disagreement:
`load_model` checks the ONNX bytes against the manifest's SHA-256, and
`check_against_session` compares the manifest with what onnxruntime reports
about the graph (it is given plain values, so it is tested without a session).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import AwareDatetime, Field, ValidationError, model_validator

from functions.scoring.features import FeatureSpec
from functions.shared.schema import Slug, Strict

MANIFEST_SUFFIX = ".manifest.json"
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
VERSION_LENGTH = 16  # hex digits of the ONNX file's SHA-256 that make the version
# What onnxruntime's NodeArg.type reports for each input dtype a manifest may declare.
ONNX_TYPE = {"float32": "tensor(float)"}


class ManifestError(Exception):
    """Base of every manifest problem."""


class InvalidManifest(ManifestError):
    """The manifest file is missing, is not JSON, or does not validate."""


class ManifestMismatch(ManifestError):
    """The manifest and the model (its bytes or its graph) disagree."""


class CalibrationBin(Strict):
    """Test rows whose predicted probability fell in [lower, upper)."""

    lower: float
    upper: float
    count: int
    mean_predicted: float | None  # None for an empty bin
    observed_rate: float | None


class ThresholdMetrics(Strict):
    """On the test split, predictions at or above one threshold."""

    flagged: float  # share of test rows at or above it
    precision: float | None  # None when nothing is flagged
    recall: float


class Metrics(Strict):
    """Held-out test metrics, and how the estimator was chosen."""

    roc_auc: float
    pr_auc: float  # average precision
    brier: float
    expected_calibration_error: float
    calibration: list[CalibrationBin]
    at_thresholds: dict[str, ThresholdMetrics]
    test_rows: int
    test_positive_rate: float
    estimator: str  # the candidate cross-validation chose
    cv_roc_auc: float  # its mean ROC-AUC over the folds
    cv_candidates: dict[str, float]  # every candidate's mean CV ROC-AUC
    cv_folds: int


class FeatureStats(Strict):
    """A feature's training distribution (all rows, after defaults).

    The histogram's bins are (-inf, e0], (e0, e1], ..., (e_last, +inf) for
    `bin_edges` e0 < e1 < ...; `proportions` has one entry more than
    `bin_edges` and sums to 1. See `functions.scoring.drift`.
    """

    mean: float
    std: float
    defaulted: float  # share of rows that took the default
    bin_edges: list[float]
    proportions: list[float]

    @model_validator(mode="after")
    def _histogram(self) -> FeatureStats:
        if len(self.proportions) != len(self.bin_edges) + 1:
            raise ValueError("proportions needs exactly one entry more than bin_edges")
        if any(b <= a for a, b in itertools.pairwise(self.bin_edges)):
            raise ValueError("bin_edges must be strictly increasing")
        if any(p < 0 for p in self.proportions) or not math.isclose(
            sum(self.proportions), 1.0, abs_tol=1e-3
        ):
            raise ValueError("proportions must be non-negative and sum to 1")
        return self


class TrainingSummary(Strict):
    data: str  # where the rows came from, e.g. the simulation's parameters or a CSV name
    label: str  # the label's definition, in words
    rows: int
    positives: int
    positive_rate: float
    train_rows: int
    test_rows: int
    features: dict[str, FeatureStats]


class ScoreBand(Strict):
    """A named range of the probability: what a web page is told instead of the number
    (GET /v1/personalize). A band runs from `at_least` to the next band's."""

    name: Slug
    at_least: float = Field(ge=0.0, le=1.0)


class ModelManifest(Strict):
    schema_version: Literal[1] = 1
    name: str = Field(description="model name, e.g. churn")
    version: str = Field(description="first 16 hex digits of the ONNX file's SHA-256")
    onnx_file: str = Field(description="file name of the ONNX model, next to the manifest")
    onnx_sha256: str
    role: Literal["primary", "shadow"] = "primary"
    target: str = Field(description="what is predicted, e.g. churn")
    input_name: str
    input_dtype: Literal["float32"] = "float32"
    output_name: str = Field(description="the probabilities tensor, shape [n, 2]")
    positive_index: int = Field(ge=0, le=1, description="column of the positive class")
    features: list[FeatureSpec] = Field(min_length=1, description="in model input order")
    thresholds: dict[str, float] = Field(default_factory=dict)
    bands: list[ScoreBand] = Field(
        default_factory=list, description="ascending; the first starts at 0 (no bands: none told)"
    )
    metrics: Metrics
    training: TrainingSummary
    seed: int
    created_at: AwareDatetime

    @model_validator(mode="after")
    def _consistent(self) -> ModelManifest:
        if not _SHA256.match(self.onnx_sha256):
            raise ValueError("onnx_sha256 must be 64 lower-case hex digits")
        if self.version != self.onnx_sha256[:VERSION_LENGTH]:
            raise ValueError("version must be the first 16 hex digits of onnx_sha256")
        if Path(self.onnx_file).name != self.onnx_file or not self.onnx_file.endswith(".onnx"):
            raise ValueError("onnx_file must be a bare file name ending in .onnx")
        names = [f.name for f in self.features]
        if len(set(names)) != len(names):
            raise ValueError("feature names must be unique")
        if set(self.training.features) != set(names):
            raise ValueError("training.features must describe exactly the model's features")
        for key, value in self.thresholds.items():
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"threshold {key!r} must be a probability in [0, 1]")
        starts = [b.at_least for b in self.bands]
        if self.bands and (starts[0] != 0.0 or starts != sorted(set(starts))):
            raise ValueError("bands must start at 0 and rise strictly (at_least)")
        if len({b.name for b in self.bands}) != len(self.bands):
            raise ValueError("band names must be unique")
        return self

    def band(self, probability: float) -> str | None:
        """The name of the band `probability` falls in (None without bands)."""
        found = None
        for band in self.bands:
            if probability >= band.at_least:
                found = band.name
        return found

    @property
    def feature_names(self) -> list[str]:
        return [f.name for f in self.features]


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def manifest_json(manifest: ModelManifest) -> str:
    """The file's text: sorted keys, two-space indent, newline at the end (byte-stable)."""
    return json.dumps(manifest.model_dump(mode="json"), sort_keys=True, indent=2) + "\n"


def load_manifest(path: str | Path) -> ModelManifest:
    try:
        raw: Any = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise InvalidManifest(f"cannot read model manifest {path}: {err}") from err
    try:
        return ModelManifest.model_validate(raw)
    except ValidationError as err:
        raise InvalidManifest(f"invalid model manifest {path}:\n{err}") from err


def verify_onnx_bytes(manifest: ModelManifest, onnx_bytes: bytes) -> None:
    actual = sha256_hex(onnx_bytes)
    if actual != manifest.onnx_sha256:
        raise ManifestMismatch(
            f"model {manifest.name!r}: {manifest.onnx_file} has SHA-256 {actual[:16]}...,"
            f" the manifest expects {manifest.onnx_sha256[:16]}... (version {manifest.version});"
            " the ONNX file and its manifest come from different training runs"
        )


def load_model(manifest_path: str | Path) -> tuple[ModelManifest, bytes]:
    """The manifest and its ONNX file's bytes (read next to it), checked against each other."""
    manifest = load_manifest(manifest_path)
    onnx_path = Path(manifest_path).parent / manifest.onnx_file
    try:
        onnx_bytes = onnx_path.read_bytes()
    except OSError as err:
        raise InvalidManifest(f"model {manifest.name!r}: cannot read {onnx_path}: {err}") from err
    verify_onnx_bytes(manifest, onnx_bytes)
    return manifest, onnx_bytes


def check_against_session(
    manifest: ModelManifest,
    input_names: Sequence[str],
    input_shape: Sequence[int | str | None],
    input_type: str,
    output_names: Sequence[str],
    *,
    onnx_bytes: bytes | None = None,
) -> None:
    """Raise `ManifestMismatch` listing every way the manifest and the graph disagree.

    Give it what onnxruntime reports: `[i.name for i in session.get_inputs()]`,
    the first input's `.shape` and `.type`, and `[o.name for o in
    session.get_outputs()]`; with `onnx_bytes`, the file's SHA-256 is checked too.
    """
    problems: list[str] = []
    width = len(manifest.features)
    if list(input_names) != [manifest.input_name]:
        problems.append(
            f"input name: the graph takes {list(input_names)}, the manifest says"
            f" [{manifest.input_name!r}]"
        )
    if len(input_shape) != 2:
        problems.append(f"input shape: the graph's input has shape {list(input_shape)}, not [n, k]")
    else:
        columns = input_shape[1]
        if not isinstance(columns, int):
            problems.append(
                f"feature count: the graph's input width is not fixed ({columns!r}),"
                f" the manifest lists {width} features"
            )
        elif columns != width:
            problems.append(
                f"feature count: the graph takes {columns} features per row,"
                f" the manifest lists {width}"
            )
    expected_type = ONNX_TYPE[manifest.input_dtype]
    if input_type != expected_type:
        problems.append(
            f"input dtype: the graph takes {input_type}, the manifest says"
            f" {manifest.input_dtype} ({expected_type})"
        )
    if manifest.output_name not in output_names:
        problems.append(
            f"missing output: the graph has no {manifest.output_name!r} output"
            f" (it has {list(output_names)})"
        )
    if onnx_bytes is not None:
        try:
            verify_onnx_bytes(manifest, onnx_bytes)
        except ManifestMismatch as err:
            problems.append(f"sha mismatch: {err}")
    if problems:
        raise ManifestMismatch(
            f"model {manifest.name!r} version {manifest.version} does not match its manifest:\n  "
            + "\n  ".join(problems)
        )
