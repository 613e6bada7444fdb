"""Every `beacon` verb and sub-verb answers `--help` through the command's entry point."""

from __future__ import annotations

import argparse
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from cli import main as cli_main

ROOT = Path(__file__).resolve().parents[3]


def verbs_of(
    parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()
) -> list[tuple[str, ...]]:
    """Every verb path of the parser (`("dlq", "replay")`), walking the sub-parsers."""
    found: list[tuple[str, ...]] = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found.append((*prefix, name))
                found += verbs_of(sub, (*prefix, name))
    return found


VERBS = verbs_of(cli_main.parser())


def test_the_verbs_are_the_documented_ones() -> None:
    tops = [verb[0] for verb in VERBS if len(verb) == 1]
    assert tops == [
        "local", "demo", "moto", "simulate", "profile", "consent", "erase", "export", "train",
        "models", "deliveries", "dlq", "dashboard", "segments", "experiments", "identity",
        "archive", "backfill", "attribution", "import", "smoke",
    ]  # fmt: skip
    assert {verb for verb in VERBS if len(verb) == 2} == {
        ("models", "status"),
        ("models", "list"),
        ("models", "push"),
        ("models", "promote"),
        ("models", "shadow"),
        ("models", "rollback"),
        ("archive", "query"),
        ("dlq", "list"),
        ("dlq", "replay"),
        ("experiments", "report"),
        ("identity", "suggestions"),
        ("identity", "link"),
        ("identity", "reject"),
    }


@pytest.mark.parametrize("verb", VERBS, ids=" ".join)
def test_every_verb_answers_help(verb: tuple[str, ...], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        cli_main.main([*verb, "--help"])
    assert exited.value.code == 0
    assert f"usage: beacon {' '.join(verb)}" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("form", "usage"),
    [
        (["profiles"], "usage: beacon export profiles"),
        (["audience"], "usage: beacon export audience"),
        (["email:ana@example.org"], "usage: beacon export TYPE:VALUE"),
    ],
)
def test_each_form_of_export_answers_help(
    form: list[str], usage: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """`export` takes a person, `profiles` or `audience`: each form has its own help."""
    with pytest.raises(SystemExit) as exited:
        cli_main.main(["export", *form, "--help"])
    assert exited.value.code == 0
    assert usage in capsys.readouterr().out


def test_an_audience_export_refuses_an_unknown_segment(capsys: pytest.CaptureFixture[str]) -> None:
    status = cli_main.main(
        ["export", "audience", "no_such_segment", "--platform", "google", "--aws-endpoint", ""]
    )
    assert status == 2
    assert "no segment 'no_such_segment'" in capsys.readouterr().err


def test_an_export_refuses_an_unknown_consent_category(
    capsys: pytest.CaptureFixture[str],
) -> None:
    status = cli_main.main(["export", "profiles", "--require", "marketing", "--out", "/tmp/x"])
    assert status == 2
    assert "unknown consent categories marketing" in capsys.readouterr().err


@pytest.mark.parametrize("segments", ["0", "65", "four"])
def test_scan_segments_are_bounded(segments: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        cli_main.main(["export", "profiles", "--segments", segments])
    assert exited.value.code == 2
    assert "a whole number from 1 to 64" in capsys.readouterr().err


def test_the_installed_command_is_this_main() -> None:
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["beacon"] == "cli.main:main"


def test_python_dash_m_cli_runs_the_command() -> None:
    answer = subprocess.run(
        [sys.executable, "-m", "cli", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert answer.returncode == 0, answer.stderr
    assert answer.stdout.startswith("usage: beacon")
    for verb in ("local", "demo", "models", "dlq", "identity"):
        assert verb in answer.stdout
