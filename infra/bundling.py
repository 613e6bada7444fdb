"""Lambda assets without Docker: pip installs arm64 wheels, then we copy code in.

Each function gets its own dependency set (only its `requirements.txt`), so a
heavy step's wheels (numpy, onnxruntime) never reach a light one's bundle.

Layout under `.build/` (git-ignored):
- `deps/<sha256>/` — `pip install --target` output, keyed by the requirement
  lines, the pip platforms and the Python version; filled once, reused by
  every later synth and test run.
- `assets/<function>/<stamp>/` — deps + `functions/__init__.py`, the packages under
  `functions/` its code imports (`functions/shared/`, `functions/<step>/`, and
  `functions/profiles/` for the steps that use the profile model: see
  `bundled_packages`) and the config as `beacon.yaml`; what `Code.from_asset`
  points at. Rebuilt only when one of its inputs changed. Nothing outside
  `functions/` (the CLI, the simulator, infra) is ever bundled.
"""

from __future__ import annotations

import ast
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from infra.topology import Function

PROJECT_ROOT = Path(__file__).resolve().parents[1]

# The Lambda runtime ships these (and keeps them consistent with each other);
# a second, different botocore in the bundle would shadow the runtime's boto3
# pairing and add ~25 MB. aws-xray-sdk pulls botocore in transitively, and
# botocore its own dependencies, which the runtime has next to it.
RUNTIME_PROVIDED = (
    "boto3", "botocore", "s3transfer", "urllib3", "dateutil", "python_dateutil", "jmespath", "six",
)  # fmt: skip
# A requirement line ending in this comment is installed without its dependencies:
# for packages whose dependencies serve only their command line (the CEL package
# pulls typer, rich, prompt-toolkit and pygments: 12 MB in every bundle).
NO_DEPS = "# no-deps"
# Part of every dependency cache key: bump it when the way dependencies are
# installed changes, so no bundle keeps what an older recipe installed.
RECIPE = "recipe-3"
# Installed without their dependencies, these packages must not import their CLI
# on import: (file, what it says, what the bundle's copy says instead).
CLI_IMPORTS = (("cel/__init__.py", "from . import cli, stdlib", "from . import stdlib"),)

# PyYAML's C extension (2.6 MB) only speeds up its C loaders, which nothing uses:
# `yaml.safe_load` reads the one config file with the pure-Python loader.
STALE_ASSET_S = 3600
_SKIP = shutil.ignore_patterns("__pycache__", "*.pyc", "_yaml.cpython-*.so")


class BundlingError(RuntimeError):
    """pip could not produce the function's dependencies."""


@dataclass(frozen=True)
class LambdaPlatform:
    """What the wheels must run on."""

    python_version: str  # e.g. "3.14", the Lambda runtime's
    arch: str = "aarch64"  # Graviton (Architecture.ARM_64)
    # Python 3.12+ runtimes run on Amazon Linux 2023 (glibc 2.34), so wheels
    # built for any manylinux up to 2.34 work, not only manylinux2014 (2.17).
    glibc_minor: int = 34

    @property
    def pip_platforms(self) -> tuple[str, ...]:
        """`--platform` values, most specific first (pip does not expand
        `manylinux_2_x` tags to older ones by itself)."""
        newer = (f"manylinux_2_{m}_{self.arch}" for m in range(self.glibc_minor, 17, -1))
        return (*newer, f"manylinux2014_{self.arch}")


def function_asset(
    fn: Function,
    *,
    config_path: Path,
    platform: LambdaPlatform,
    root: Path = PROJECT_ROOT,
) -> Path:
    """Assemble (or reuse) `.build/assets/<fn.name>/<stamp>/` and return its path."""
    build = root / ".build"
    deps = install_dependencies(root / fn.requirements_file, platform=platform, build_dir=build)
    config = config_path.resolve()
    code = _code_files(fn, root) + (_model_files(config) if fn.carries_models else [])
    code += _geoip_files(config) if fn.carries_geoip else []
    stamp = _digest(
        [deps.name.encode(), config.read_bytes()]
        + [part for rel, path in code for part in (rel.encode(), path.read_bytes())]
    )
    assets = build / "assets"
    # One directory per build (its stamp): a rebuild for another configuration never
    # pulls files from under a synth in another process still copying this one.
    target = assets / fn.name / stamp[:16]
    with exclusive_lock(assets / f"{fn.name}.lock"):
        if target.is_dir():
            os.utime(target)  # in use: not pruned for another hour
            return target
        staging = assets / fn.name / f".staging-{uuid.uuid4().hex}"
        try:
            shutil.copytree(deps, staging, ignore=_SKIP)
            for rel, path in code:
                dest = staging / rel
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(path, dest)
            shutil.copy2(config, staging / "beacon.yaml")
            staging.rename(target)  # a reader never sees a half-copied asset
        finally:
            shutil.rmtree(staging, ignore_errors=True)  # left over only on failure
        _prune(target)
    return target


def latest_asset(name: str, root: Path = PROJECT_ROOT) -> Path | None:
    """The function's most recently built or used asset, if any (for benchmarks)."""
    built = [p for p in (root / ".build" / "assets" / name).glob("[0-9a-f]*") if p.is_dir()]
    return max(built, key=lambda p: p.stat().st_mtime, default=None)


def _prune(current: Path) -> None:
    """Other builds of the same function, unused for an hour (a synth copies its
    asset within seconds; two configurations in one test run share the hour)."""
    for other in current.parent.iterdir():
        unused_s = time.time() - other.stat().st_mtime
        if other != current and other.is_dir() and unused_s > STALE_ASSET_S:
            shutil.rmtree(other, ignore_errors=True)


def install_dependencies(requirements: Path, *, platform: LambdaPlatform, build_dir: Path) -> Path:
    """`pip install --target` the function's wheels for Lambda, cached by content."""
    text = requirements.read_text(encoding="utf-8") if requirements.is_file() else ""
    # Keyed on the requirement lines only (comments aside), so steps with the
    # same set share one install. What is stripped is part of the recipe too.
    recipe = [RECIPE, *platform.pip_platforms, platform.python_version, *RUNTIME_PROVIDED]
    lines = [*_requirement_lines(text), *(f"{line} {NO_DEPS}" for line in _no_deps_lines(text))]
    key = _digest([*(line.encode() for line in lines), b"", *(p.encode() for p in recipe)])
    cache = build_dir / "deps"
    target = cache / key
    if target.is_dir():
        return target
    with exclusive_lock(cache / f"{key}.lock"):
        if target.is_dir():  # another process finished it while we waited
            return target
        staging = cache / f".{key}-{uuid.uuid4().hex}"
        staging.mkdir(parents=True)
        if _requirement_lines(text):
            _pip_install(requirements, _requirement_lines(text), staging, platform)
        if _no_deps_lines(text):
            _pip_install(requirements, ["--no-deps", *_no_deps_lines(text)], staging, platform)
            drop_cli_imports(staging)
        for name in RUNTIME_PROVIDED:
            for path in [staging / name, *staging.glob(f"{name}-*.dist-info")]:
                shutil.rmtree(path, ignore_errors=True)
            (staging / f"{name}.py").unlink(missing_ok=True)  # single-module packages (six)
        # Console scripts are useless in Lambda and carry this machine's paths.
        shutil.rmtree(staging / "bin", ignore_errors=True)
        staging.replace(target)  # atomic: a half-done install is never cached
    return target


def drop_cli_imports(site: Path) -> None:
    """Edit out the CLI import of a package installed without its dependencies (CEL's
    `__init__` imports its typer/rich CLI, which the bundle does not carry)."""
    for relative, says, instead in CLI_IMPORTS:
        path = site / relative
        if not path.is_file():
            continue
        text = path.read_text(encoding="utf-8")
        if says not in text:
            raise BundlingError(f"{relative} changed: check CLI_IMPORTS in infra/bundling.py")
        path.write_text(text.replace(says, instead), encoding="utf-8")


def _requirement_lines(text: str) -> list[str]:
    """What pip installs with dependencies (comments and `# no-deps` lines aside)."""
    lines = (line.split(" #", 1)[0].strip() for line in text.splitlines() if NO_DEPS not in line)
    return [line for line in lines if line and not line.startswith("#")]


def _no_deps_lines(text: str) -> list[str]:
    """Requirements marked `# no-deps`, installed without their dependencies."""
    lines = (line.split(" #", 1)[0].strip() for line in text.splitlines() if NO_DEPS in line)
    return [line for line in lines if line and not line.startswith("#")]


def _pip_install(
    requirements: Path, what: list[str], target: Path, platform: LambdaPlatform
) -> None:
    platforms = [arg for p in platform.pip_platforms for arg in ("--platform", p)]
    command = [
        sys.executable, "-m", "pip", "install",
        "--quiet", "--disable-pip-version-check", "--no-compile",
        *platforms,
        "--implementation", "cp",
        "--python-version", platform.python_version,
        "--only-binary=:all:",
        "--target", str(target),
        *what,
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603
    if result.returncode != 0:
        shutil.rmtree(target, ignore_errors=True)
        raise BundlingError(
            f"pip could not install {requirements} ({' '.join(what)}) for {platform.arch} "
            f"python {platform.python_version}:\n{result.stderr.strip()}"
        )


def bundled_packages(fn: Function, root: Path = PROJECT_ROOT) -> list[str]:
    """The packages under `functions/` that `fn`'s bundle carries: its step, `shared`,
    and every other one its code imports, directly or through another module.

    Read from the source (imports anywhere in a module count, those only for the
    type checker under `if TYPE_CHECKING:` do not), so a step that starts using the
    profile model gets `functions/profiles/` without anyone listing it."""
    functions = root / "functions"
    packages = {"shared", fn.step}
    todo = sorted((root / fn.code_dir).rglob("*.py"))
    seen: set[Path] = set()
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        for module in _runtime_imports(path):
            parts = module.split(".")
            if parts[0] != "functions" or len(parts) < 2:
                continue
            packages.add(parts[1])
            for candidate in (
                functions.joinpath(*parts[1:]).with_suffix(".py"),
                functions.joinpath(*parts[1:], "__init__.py"),
            ):
                if candidate.is_file():
                    todo.append(candidate)
    return sorted(packages)


def _runtime_imports(path: Path) -> list[str]:
    """Modules `path` imports when it runs (`from a import b` counts a and a.b)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    type_only = {
        id(node)
        for branch in ast.walk(tree)
        if isinstance(branch, ast.If) and ast.unparse(branch.test).endswith("TYPE_CHECKING")
        for statement in branch.body
        for node in ast.walk(statement)
    }
    modules: list[str] = []
    for node in ast.walk(tree):
        if id(node) in type_only:
            continue
        if isinstance(node, ast.Import):
            modules += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            modules += [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
    return modules


def _code_files(fn: Function, root: Path) -> list[tuple[str, Path]]:
    """(path in the asset, source file), sorted so the stamp is deterministic."""
    functions = root / "functions"
    files = [("functions/__init__.py", functions / "__init__.py")]
    for folder in (functions / package for package in bundled_packages(fn, root)):
        for path in sorted(folder.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
                files.append((path.relative_to(root).as_posix(), path))
    return files


def _geoip_files(config: Path) -> list[tuple[str, Path]]:
    """The geolocation databases the configuration names (ingest's and each source's),
    at the same paths relative to the bundle's beacon.yaml as to the real one."""
    from functions.shared.config import load_config

    loaded = load_config(config)
    settings = [loaded.ingest.enrichment, *(s.enrichment for s in loaded.sources if s.enrichment)]
    named = sorted({s.geoip_database for s in settings if s.geoip_database})
    for name in named:
        if not (config.parent / name).is_file():
            raise BundlingError(f"geoip_database {name!r}: no such file next to {config}")
    return [(name, config.parent / name) for name in named]


def _model_files(config: Path) -> list[tuple[str, Path]]:
    """The configured manifests and their ONNX files, at the same paths relative to the
    bundle's beacon.yaml as to the real one."""
    from functions.shared.config import load_config

    files: list[tuple[str, Path]] = []
    for manifest in load_config(config).models.manifests:
        path = config.parent / manifest
        onnx_file = json.loads(path.read_text(encoding="utf-8"))["onnx_file"]
        files += [
            (manifest, path),
            (str(Path(manifest).parent / onnx_file), path.parent / onnx_file),
        ]
    models = load_config(config).models
    for extra, key in ((models.recommender, "artifact_file"), (models.personas, "onnx_file")):
        if extra is not None:
            path = config.parent / extra
            artifact = json.loads(path.read_text(encoding="utf-8"))[key]
            files += [(extra, path), (str(Path(extra).parent / artifact), path.parent / artifact)]
    return files


def _digest(parts: list[bytes]) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(len(part).to_bytes(8, "big"))
        h.update(part)
    return h.hexdigest()


@contextmanager
def exclusive_lock(path: Path) -> Iterator[None]:
    # Parallel synths (pytest-xdist workers) build the same directories.
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
