"""The layers' import rules (docs/architecture.md), checked on every .py of the repository.

An AST walk, no import is executed: every `import` and `from ... import`
anywhere in a module counts (inside functions too, and type-only ones), and a
relative import is read as the absolute module it names. The checker itself is
tested on a small tree with one planted violation per rule.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SKIPPED = {".venv", ".build", "cdk.out", "node_modules", ".git", ".mypy_cache", ".ruff_cache"}
MAX_FUNCTION_MODULE_LINES = 500
STEPS = ("api", "consent", "identity", "ingest", "personalize", "scoring", "segments", "webhook")


@dataclass(frozen=True)
class Rule:
    """Modules under `where` (a path prefix) import nothing under `forbidden` (module
    prefixes), except the modules under one of `allowed_in` (path prefixes)."""

    where: str
    forbidden: tuple[str, ...]
    why: str
    allowed_in: tuple[str, ...] = ()

    def applies_to(self, path: str) -> bool:
        return path.startswith(self.where) and not any(map(path.startswith, self.allowed_in))


RULES = (
    Rule(
        "functions/",
        ("infra", "cli", "simulator", "models", "bench", "tests"),
        "deployed code stands alone: only functions/ goes into a Lambda bundle",
    ),
    Rule(
        "functions/",
        ("boto3", "botocore"),
        "storage goes through the ports, implemented by the adapters in functions/shared/dal/",
        allowed_in=("functions/shared/dal/",),
    ),
    *(
        Rule(
            f"functions/{step}/",
            tuple(f"functions.{other}" for other in STEPS if other != step),
            "a step shares code through functions/shared or functions/profiles, not another step",
        )
        for step in STEPS
    ),
    Rule(
        "functions/profiles/",
        (*(f"functions.{step}" for step in STEPS), "functions.shared.dal"),
        "the profile model is pure logic: no step, no storage adapter",
    ),
    Rule(
        "functions/experiments/",
        (*(f"functions.{step}" for step in STEPS), "functions.shared.dal"),
        "experiments are pure logic over the profile model and counters: no step, no storage",
    ),
    Rule(
        "functions/shared/",
        ("functions.profiles", "functions.experiments", *(f"functions.{step}" for step in STEPS)),
        "shared code serves every step; only what serves the profile steps names the model",
        allowed_in=(
            "functions/shared/dal/profiles_store.py",
            "functions/shared/profile_handler.py",
            "functions/shared/ports.py",  # for the type checker only (TYPE_CHECKING)
        ),
    ),
    Rule(
        "infra/",
        ("cli", "simulator", "models", "bench", "tests"),
        "the wiring table, stack and local runtime sit below the operator tools",
    ),
    Rule(
        "simulator/",
        ("cli", "infra", "bench", "tests"),
        "the simulator is data for the CLI and models/, and depends on neither",
    ),
    Rule(
        "models/",
        ("cli", "infra", "bench", "tests"),
        "training uses the step code and the simulator, not the tools",
    ),
    Rule("tests/", ("bench",), "a test needs nothing from the benchmarks"),
)


@dataclass(frozen=True)
class Import:
    path: str  # relative to the root, with forward slashes
    line: int
    module: str


def python_files(root: Path) -> Iterator[Path]:
    for path in sorted(root.rglob("*.py")):
        if not SKIPPED & set(path.relative_to(root).parts):
            yield path


def imports_of(path: Path, root: Path) -> Iterator[Import]:
    relative = path.relative_to(root).as_posix()
    package = relative.removesuffix(".py").split("/")[:-1]
    if path.name == "__init__.py":
        package = relative.split("/")[:-1]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=relative)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(relative, node.lineno, alias.name)
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            module = ".".join([*base, *([node.module] if node.module else [])])
            yield Import(relative, node.lineno, module)


def violations(root: Path) -> list[str]:
    found = []
    for path in python_files(root):
        for imported in imports_of(path, root):
            for rule in RULES:
                if rule.applies_to(imported.path) and any(
                    imported.module == f or imported.module.startswith(f"{f}.")
                    for f in rule.forbidden
                ):
                    found.append(
                        f"{imported.path}:{imported.line} imports {imported.module}: {rule.why}"
                    )
    return found


def oversized(root: Path) -> list[str]:
    return [
        f"{path.relative_to(root).as_posix()}: {lines} lines"
        for path in python_files(root / "functions")
        if (lines := len(path.read_text(encoding="utf-8").splitlines())) > MAX_FUNCTION_MODULE_LINES
    ]


# --- the repository ---------------------------------------------------------------------


def test_the_repository_keeps_its_import_rules() -> None:
    assert violations(ROOT) == []


def test_no_module_in_functions_is_over_500_lines() -> None:
    assert (ROOT / "functions").is_dir()
    assert oversized(ROOT) == []


# --- the checker --------------------------------------------------------------------------

PLANTED = {
    "functions/ingest/reads_infra.py": "from infra.topology import TOPOLOGY\n",
    "functions/ingest/calls_boto3.py": "import boto3\n",
    "functions/scoring/uses_segments.py": "from functions.segments.step import SegmentsStep\n",
    "functions/profiles/stores.py": "from functions.shared.dal import dynamo\n",
    "functions/shared/uses_model.py": "from functions.profiles.state import ProfileState\n",
    "infra/uses_cli.py": "def f():\n    from cli.main import main\n",
    "simulator/uses_infra.py": "import infra.local.runtime\n",
    "models/uses_cli.py": "from cli import defaults\n",
    "tests/unit/uses_bench.py": "from bench.harness import ROOT\n",
    "functions/webhook/relative.py": "from ..api import handler\n",
}
ALLOWED = {
    "functions/shared/dal/dynamo.py": "import boto3\nfrom botocore.exceptions import ClientError\n",
    "functions/shared/dal/profiles_store.py": "from functions.profiles.codec import decode_state\n",
    "functions/segments/step.py": "from functions.profiles.apply import apply_events\n",
    "cli/main.py": "from infra.topology import TOPOLOGY\nfrom simulator import shoppers\n",
    "models/dataset.py": "from simulator.journeys import generate_journeys\n",
    "bench/harness.py": "from cli.observe import observe\n",
}


def plant(root: Path, files: dict[str, str]) -> None:
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def test_the_checker_finds_each_planted_violation(tmp_path: Path) -> None:
    plant(tmp_path, {**PLANTED, **ALLOWED})
    found = violations(tmp_path)
    assert sorted({v.split(":")[0] for v in found}) == sorted(PLANTED)
    assert any("functions/webhook/relative.py:1 imports functions.api" in v for v in found)
    assert any("infra/uses_cli.py:2 imports cli.main" in v for v in found)


@pytest.mark.parametrize("planted", sorted(PLANTED))
def test_each_rule_fails_on_its_own(tmp_path: Path, planted: str) -> None:
    plant(tmp_path, {**ALLOWED, planted: PLANTED[planted]})
    assert [v.split(":")[0] for v in violations(tmp_path)] == [planted]


def test_the_size_check_finds_a_long_module(tmp_path: Path) -> None:
    plant(tmp_path, {"functions/long.py": "x = 1\n" * 501, "functions/fine.py": "x = 1\n" * 500})
    assert oversized(tmp_path) == ["functions/long.py: 501 lines"]
