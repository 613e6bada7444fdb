"""A function bundled without a library must not need it: its handler imports, and
its configuration loads, with the library absent (as in its Lambda bundle).

The bundles themselves hold arm64 wheels that cannot be imported here, so the
absence is simulated: the module is blocked in a fresh interpreter.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from infra.topology import TOPOLOGY

ROOT = Path(__file__).parents[2]
# Libraries some bundles carry and others must do without: requirement -> module.
OPTIONAL = {"common-expression-language": "cel"}


def _without(library: str) -> list[str]:
    return [
        fn.step
        for fn in TOPOLOGY.functions
        if library not in (ROOT / fn.requirements_file).read_text(encoding="utf-8")
        and (ROOT / "functions" / fn.step / "handler.py").is_file()
    ]


@pytest.mark.parametrize(
    ("library", "step"),
    [(lib, step) for lib in OPTIONAL for step in sorted(set(_without(lib)))],
)
def test_a_bundle_without_a_library_never_imports_it(library: str, step: str) -> None:
    module = OPTIONAL[library]
    program = (
        f"import sys; sys.modules[{module!r}] = None\n"
        f"import functions.{step}.handler\n"
        "from functions.shared.config import load_config\n"
        "load_config('beacon.yaml')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", program], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, f"{step} needs {module} ({library}):\n{done.stderr[-2000:]}"


def test_the_lean_bundles_are_the_ones_expected() -> None:
    # Conditions are evaluated by segments and scoring (and read by the API's reports).
    assert set(_without("common-expression-language")) >= {
        "ingest",
        "consent",
        "identity",
        "webhook",
        "personalize",
    }
