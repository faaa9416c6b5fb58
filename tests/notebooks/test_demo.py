"""``atlbook demo`` (what ``make demo`` runs) end to end on a fresh sandbox, and again on the reset one.

Covers: every runbook of the story succeeds and does its job (post-checks green, upgrade with 0 failed
requests, the injected index fault named first, recovered, then a clean diagnosis); a rerun starts from
a reset sandbox and gives the same outcome; the printed lines name each record.
"""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

import pytest

from atlbook import records

ROOT = pathlib.Path(__file__).resolve().parents[2]
ATLBOOK = [sys.executable, "-m", "atlbook.cli"]
STORY = [
    "00-sandbox",
    "10-provision",
    "20-capacity",
    "30-upgrade",
    "40-diagnose",
    "50-index-recovery",
    "40-diagnose",
]


def _result_lines(stdout: str) -> list[list[str]]:
    return [line.split() for line in stdout.splitlines() if line.startswith(("ok ", "FAILED "))]


@pytest.fixture
def demo_env(tmp_path: pathlib.Path):
    env = {
        **os.environ,
        "ATLBOOK_SANDBOX_DIR": str(tmp_path / "sandbox"),
        "ATLBOOK_RECORDS_DIR": str(tmp_path / "records"),
    }
    yield env
    subprocess.run([*ATLBOOK, "sandbox", "--dir", env["ATLBOOK_SANDBOX_DIR"], "down"], env=env, check=False)


def _run_demo(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*ATLBOOK, "demo"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=900, check=False
    )


def test_demo_story_end_to_end_then_again_from_a_reset_sandbox(demo_env: dict[str, str]) -> None:
    first = _run_demo(demo_env)
    assert first.returncode == 0, first.stdout + first.stderr[-4000:]
    assert "sandbox   up in" in first.stdout
    lines = _result_lines(first.stdout)
    assert [line[1] for line in lines] == STORY
    assert all(line[0] == "ok" for line in lines)

    paths = [pathlib.Path(line[-1].removeprefix("record=")) for line in lines]
    assert all(p.is_relative_to(demo_env["ATLBOOK_RECORDS_DIR"]) for p in paths)
    assert all((p / "summary.json").is_file() for p in paths)
    provision, upgrade, diagnose, recovery, clean = (records.read(paths[i]) for i in (1, 3, 4, 5, 6))
    assert provision["postchecks_passed"] is True
    assert upgrade["load"]["requests"] > 0 and upgrade["load"]["failures"] == 0
    assert upgrade["upgrade"]["outcome"] == "upgraded"
    assert {row["version"] for row in upgrade["upgrade"]["post_checks"]} == {"11.3.2"}
    assert all(row["ok"] for row in upgrade["upgrade"]["post_checks"])
    assert "index" in diagnose["most_likely"]["check"]
    assert recovery["bad_after"] == []
    assert clean["healthy"] is True

    second = _run_demo(demo_env)
    assert second.returncode == 0, second.stdout + second.stderr[-4000:]
    assert "sandbox   reset" in second.stdout
    again = _result_lines(second.stdout)
    assert [(line[0], line[1]) for line in again] == [(line[0], line[1]) for line in lines]
