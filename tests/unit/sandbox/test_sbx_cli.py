"""``atlbook sandbox`` argument parsing through ``register(subparsers)`` (what ``atlbook.cli`` calls), the
fault list without a running sandbox, and commands that need one failing cleanly (exit 1)."""

from __future__ import annotations

import argparse
import pathlib

import pytest

from atlbook.sandbox import cli


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="atlbook")
    cli.register(parser.add_subparsers(dest="command"))
    return parser


@pytest.mark.parametrize(
    "argv, expected",
    [
        (
            ["sandbox", "up", "--detach", "--time-factor", "30"],
            {"sandbox_command": "up", "detach": True, "time_factor": 30.0},
        ),
        (
            ["sandbox", "fault", "pod-oom", "--target", "jira-1"],
            {"sandbox_command": "fault", "name": "pod-oom", "target": "jira-1", "clear": False},
        ),
        (["sandbox", "fault", "node-lost", "--clear"], {"sandbox_command": "fault", "clear": True}),
        (["sandbox", "--dir", "/tmp/x", "status"], {"sandbox_command": "status", "state_dir": "/tmp/x"}),
    ],
)
def test_parse(argv: list[str], expected: dict[str, object]) -> None:
    args = _parser().parse_args(argv)
    assert args.func is cli.run
    for k, v in expected.items():
        assert getattr(args, k) == v


def test_faults_listed_without_sandbox(tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--dir", str(tmp_path), "faults"]) == 0
    out = capsys.readouterr().out
    assert "db-pool-exhausted" in out and "bad-upgrade" in out


@pytest.mark.parametrize("command", [["status"], ["reset"], ["fault", "pod-oom"]])
def test_not_running(tmp_path: pathlib.Path, command: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--dir", str(tmp_path), *command]) == 1
    assert "not running" in capsys.readouterr().err


def test_down_when_not_running(tmp_path: pathlib.Path) -> None:
    assert cli.main(["--dir", str(tmp_path), "down"]) == 0
