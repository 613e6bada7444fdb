"""`app.py` as `cdk synth` runs it (a subprocess; the CLI passes context to the
app through the CDK_CONTEXT_JSON environment variable, as here)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from .conftest import ROOT, cdk_json_context


def _run_app(tmp_path: Path, context: dict[str, str]) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        # What the CLI passes: cdk.json's context plus any -c key=value.
        "CDK_CONTEXT_JSON": json.dumps({**cdk_json_context(), **context}),
        "CDK_OUTDIR": str(tmp_path / "cdk.out"),
    }
    return subprocess.run(
        [sys.executable, "app.py"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_invalid_config_fails_synth_with_the_line(tmp_path: Path) -> None:
    config = tmp_path / "beacon.yaml"
    config.write_text(
        "version: 1\nsources:\n  - name: web\n    write_key_secret: 'not a valid secret name!'\n"
    )
    result = _run_app(tmp_path, {"beacon:config": str(config)})
    assert result.returncode == 1
    assert "line 4" in result.stderr
    assert "write_key_secret" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "cdk.out" / "manifest.json").exists()


def test_missing_config_fails_synth(tmp_path: Path) -> None:
    result = _run_app(tmp_path, {"beacon:config": str(tmp_path / "nope.yaml")})
    assert result.returncode == 1
    assert "nope.yaml" in result.stderr


def test_app_synthesizes_with_nag_gating(tmp_path: Path) -> None:
    # The whole path `cdk synth` takes: config, stack, cdk-nag plugin (any
    # unacknowledged finding would make this exit non-zero), cloud assembly.
    result = _run_app(tmp_path, {})
    assert result.returncode == 0, result.stderr[-3000:]
    template = json.loads((tmp_path / "cdk.out" / "Beacon.template.json").read_text())
    assert "ApiUrl" in template["Outputs"]
