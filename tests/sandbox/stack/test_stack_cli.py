"""``atlbook sandbox`` as a separate process: ``up --detach`` leaves a background sandbox (pid file,
target.yaml, env), ``status``/``faults``/``fault``/``reset`` reach it, ``down`` stops it; an unknown
fault exits 2."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

import yaml


def _cli(d: pathlib.Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "atlbook.sandbox.cli", "--dir", str(d), *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_up_detach_status_fault_down(tmp_path: pathlib.Path) -> None:
    d = tmp_path / "sb"
    up = _cli(d, "up", "--detach", "--time-factor", "120")
    assert up.returncode == 0, up.stderr
    pid = int((d / "sandbox.pid").read_text())
    try:
        assert "kubernetes   http://127.0.0.1:" in up.stdout
        target = yaml.safe_load((d / "target.yaml").read_text())
        assert target["context"] == "atlbook-sandbox" and target["aws_endpoint_url"].startswith(
            "http://127.0.0.1:"
        )
        assert "export AWS_ENDPOINT_URL=http://127.0.0.1:" in (d / "env").read_text()
        assert _cli(d, "status").returncode == 0
        assert "efs-credits-exhausted" in _cli(d, "faults").stdout
        assert _cli(d, "fault", "efs-credits-exhausted").returncode == 0
        assert "efs-credits-exhausted" in _cli(d, "status").stdout
        bad = _cli(d, "fault", "no-such-fault")
        assert bad.returncode == 2 and "unknown fault" in bad.stderr
        assert _cli(d, "reset").returncode == 0
    finally:
        down = _cli(d, "down")
    assert down.returncode == 0, down.stderr
    assert not (d / "sandbox.pid").exists()
    try:
        os.kill(pid, 0)
        alive = True
    except ProcessLookupError:
        alive = False
    assert not alive
    assert _cli(d, "status").returncode == 1
