"""Lambda assets built without Docker: per-function wheels + code + config."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from infra import bundling
from infra.bundling import LambdaPlatform, function_asset, install_dependencies
from infra.constructs.pipeline_function import RUNTIME, platform
from infra.topology import TOPOLOGY

from .conftest import CONFIG, ROOT, Synth

HEAVY = ("numpy", "onnxruntime", "sklearn", "scipy")


@pytest.fixture(scope="module")
def ingest_asset(beacon: Synth) -> Path:
    # The stack already assembled it; this call must reuse it as is.
    return function_asset(TOPOLOGY.function("ingest"), config_path=CONFIG, platform=platform())


def test_asset_holds_code_config_and_dependencies(ingest_asset: Path) -> None:
    assert ingest_asset.parent == ROOT / ".build" / "assets" / "ingest"
    assert (ingest_asset / "functions" / "__init__.py").is_file()
    assert (ingest_asset / "functions" / "shared" / "config.py").is_file()
    assert (ingest_asset / "functions" / "ingest" / "requirements.txt").is_file()
    assert (ingest_asset / "beacon.yaml").read_bytes() == CONFIG.read_bytes()
    assert (ingest_asset / "pydantic" / "__init__.py").is_file()
    assert (ingest_asset / "aws_lambda_powertools").is_dir()
    assert not list(ingest_asset.rglob("__pycache__"))
    # Only the ingest step's code: other steps have their own bundles.
    steps = {p.name for p in (ingest_asset / "functions").iterdir() if p.is_dir()}
    assert steps == {"shared", "ingest"}


def test_ingest_bundle_has_no_heavy_or_runtime_provided_packages(ingest_asset: Path) -> None:
    top_level = {p.name for p in ingest_asset.iterdir()}
    for name in (*HEAVY, *bundling.RUNTIME_PROVIDED):
        assert name not in top_level, f"{name} must not be in the ingest bundle"
        assert not any(t.startswith(f"{name}-") for t in top_level), name


def test_bundles_carry_no_command_line_tools(beacon: Synth) -> None:
    # The CEL package is installed without its dependencies: they are its CLI's.
    fn = TOPOLOGY.function("segments")
    segments = function_asset(fn, config_path=CONFIG, platform=platform())
    assert (segments / "cel" / "__init__.py").is_file()
    for name in ("typer", "rich", "prompt_toolkit", "pygments", "click"):
        assert not (segments / name).exists(), f"{name} is a CLI dependency"


def test_only_the_functions_that_evaluate_conditions_carry_cel(ingest_asset: Path) -> None:
    # tests/unit/test_lean_bundles.py: the lean handlers import and load their
    # configuration without it.
    assert not (ingest_asset / "cel").exists()
    assert not list(ingest_asset.glob("yaml/_yaml*.so"))  # PyYAML's unused C loader


def test_cel_imports_without_its_cli(tmp_path: Path) -> None:
    # The bundle's wheels are arm64: the same edit, on this machine's copy of the
    # package, must import and evaluate with the CLI's dependencies unavailable.
    import cel

    shutil.copytree(Path(cel.__file__).parent, tmp_path / "cel")
    bundling.drop_cli_imports(tmp_path)
    program = (
        "import sys; sys.modules.update(typer=None, rich=None, prompt_toolkit=None, pygments=None)"
        f"; sys.path.insert(0, {str(tmp_path)!r}); import cel"
        "; assert cel.evaluate('1 + 2', {}) == 3; print(cel.__file__)"
    )
    done = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(str(tmp_path))


def test_a_changed_cli_import_is_noticed(tmp_path: Path) -> None:
    (tmp_path / "cel").mkdir()
    (tmp_path / "cel" / "__init__.py").write_text("from . import console\n")
    with pytest.raises(bundling.BundlingError, match="CLI_IMPORTS"):
        bundling.drop_cli_imports(tmp_path)


def _unzipped_mb(asset: Path) -> float:
    return sum(f.stat().st_size for f in asset.rglob("*") if f.is_file()) / 2**20


# Unzipped MB (was 38 for each light function and 66 for identity). What remains in a
# light bundle: pydantic-core, CEL and Powertools (5-6 MB each), PyYAML; identity adds
# rapidfuzz (5 MB) and phonenumbers' metadata. Scoring carries onnxruntime and numpy.
# archive-erasure: pyarrow rewrites the archive's Parquet files (a scheduled job: its
# cold start does not matter, and no other bundle carries pyarrow).
# exports: pyarrow writes the profile export's Parquet (scheduled too), plus phonenumbers.
BUDGET_MB = {"scoring": 140.0, "archive-erasure": 180.0, "exports": 190.0}
LIGHT_MB = 20.0  # issue 21: no function but scoring (and the Parquet ones) above 20 MB


@pytest.mark.parametrize("name", [f.name for f in TOPOLOGY.functions])
def test_every_bundle_stays_within_its_budget(beacon: Synth, name: str) -> None:
    asset = function_asset(TOPOLOGY.function(name), config_path=CONFIG, platform=platform())
    budget = BUDGET_MB.get(name, LIGHT_MB)
    assert _unzipped_mb(asset) <= budget, f"{name}: {_unzipped_mb(asset):.1f} MB unzipped"


def test_native_wheels_target_lambda_arm64(ingest_asset: Path) -> None:
    version = RUNTIME.name.removeprefix("python").replace(".", "")
    (core,) = (ingest_asset / "pydantic_core").glob("_pydantic_core*.so")
    assert f"cpython-{version}" in core.name
    assert "aarch64" in core.name


def test_dependencies_are_cached(beacon: Synth, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_pip(*_: object) -> None:
        raise AssertionError("cached dependencies must not be reinstalled")

    monkeypatch.setattr(bundling, "_pip_install", no_pip)
    requirements = ROOT / TOPOLOGY.function("ingest").requirements_file
    first = install_dependencies(requirements, platform=platform(), build_dir=ROOT / ".build")
    second = install_dependencies(requirements, platform=platform(), build_dir=ROOT / ".build")
    assert first == second
    assert first.parent == ROOT / ".build" / "deps"


def test_dependency_cache_key_is_per_requirement_set_and_platform(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bundling, "_pip_install", lambda *_: None)  # offline

    def key(text: str, plat: LambdaPlatform) -> str:
        requirements = tmp_path / f"requirements-{abs(hash(text))}.txt"
        requirements.write_text(text)
        return install_dependencies(requirements, platform=plat, build_dir=tmp_path).name

    arm = LambdaPlatform(python_version="3.14")
    x86 = LambdaPlatform(python_version="3.14", arch="x86_64")
    pydantic = key("# ingest\npydantic==2.14.3\n", arm)
    assert key("pydantic==2.14.3  # same set, other comments\n", arm) == pydantic
    assert key("pydantic==2.14.3\nnumpy==2.3.0\n", arm) != pydantic
    assert key("# ingest\npydantic==2.14.3\n", x86) != pydantic
    assert key("pydantic==2.14.3  # no-deps\n", arm) != pydantic
    assert key("pydantic==2.14.3\n", LambdaPlatform(python_version="3.13")) != pydantic


def test_platforms_cover_manylinux2014_up_to_amazon_linux_2023() -> None:
    platforms = platform().pip_platforms
    assert platforms[0] == "manylinux_2_34_aarch64"
    assert "manylinux_2_28_aarch64" in platforms
    assert platforms[-1] == "manylinux2014_aarch64"


def test_pip_failure_names_the_requirements(tmp_path: Path) -> None:
    bad = tmp_path / "requirements.txt"
    bad.write_text("--definitely-not-a-pip-option\n")
    with pytest.raises(bundling.BundlingError, match=r"requirements\.txt"):
        install_dependencies(bad, platform=platform(), build_dir=tmp_path)
    cached = [p for p in (tmp_path / "deps").iterdir() if p.is_dir()]
    assert cached == [], "a failed install is never cached"


def test_a_bundle_carries_the_packages_its_code_imports_and_no_others() -> None:
    packages = {fn.name: bundling.bundled_packages(fn) for fn in TOPOLOGY.functions}
    assert packages["ingest"] == ["ingest", "shared"]
    for name in ("segments", "scoring", "api"):  # the profile model, the experiments' counters
        assert packages[name] == sorted({"shared", "profiles", "experiments", name})
    for name in ("consent", "identity", "webhook", "personalize"):
        assert packages[name] == sorted({"shared", name})


def test_the_scoring_bundle_carries_the_recommender_and_personas(beacon: Synth) -> None:
    asset = function_asset(TOPOLOGY.function("scoring"), config_path=CONFIG, platform=platform())
    for name in (
        "recommender.manifest.json",
        "recommender.json",
        "personas.manifest.json",
        "personas.onnx",
    ):
        assert (asset / "models" / name).read_bytes() == (ROOT / "models" / name).read_bytes()
    assert not (asset / "implicit").exists()  # the ALS comparison's library stays out


def test_a_build_for_another_config_leaves_the_first_in_place(
    ingest_asset: Path, tmp_path: Path
) -> None:
    # Two synths with two configurations (the touchpoint's infra test, say) may run in
    # two processes at once: the second build must not pull files from under the first.
    other = tmp_path / "beacon.yaml"
    other.write_text(CONFIG.read_text(encoding="utf-8") + "\n# another deployment\n")
    second = function_asset(TOPOLOGY.function("ingest"), config_path=other, platform=platform())
    assert second != ingest_asset and second.parent == ingest_asset.parent
    assert (ingest_asset / "beacon.yaml").read_bytes() == CONFIG.read_bytes()
    assert (second / "beacon.yaml").read_bytes() == other.read_bytes()


def test_the_ingest_bundle_carries_the_configured_geolocation_database(tmp_path: Path) -> None:
    database = ROOT / "tests" / "fixtures" / "geoip" / "GeoIP2-City-Test.mmdb"
    (tmp_path / "geo").mkdir()
    shutil.copy(database, tmp_path / "geo" / "City.mmdb")
    config = tmp_path / "beacon.yaml"
    text = CONFIG.read_text(encoding="utf-8")
    geo = "\ningest:\n  enrichment: {geoip_database: geo/City.mmdb}\n"
    config.write_text(text.replace("\ningest:\n", geo, 1))
    asset = function_asset(TOPOLOGY.function("ingest"), config_path=config, platform=platform())
    assert (asset / "geo" / "City.mmdb").read_bytes() == database.read_bytes()
    (tmp_path / "geo" / "City.mmdb").unlink()
    with pytest.raises(bundling.BundlingError, match=r"geo/City\.mmdb"):
        function_asset(TOPOLOGY.function("ingest"), config_path=config, platform=platform())
