"""``atlbook ledger`` (show / break-lock) without a stack: the ledger and its outer lock are injected.

Covers: a blank ``--reason`` is refused (exit 2) before anything is read; break-lock removes both the
ledger's lock and the outer (SSM) lock and names each holder; when the ledger ConfigMap cannot be read
(a kubeconfig whose cluster does not exist yet) ``show`` still shows the outer lock and exits 1, and
``break-lock`` still breaks it, says the ledger's could not be, and exits 1.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping
from typing import Any

import pytest

from atlbook import errors, ledger_cli
from atlbook.plan import Ledger, MemoryBackend, MemoryLock


class _Bundle:
    def close(self) -> None:
        pass


class _Unreachable(MemoryBackend):
    def load(self) -> tuple[dict[str, Any], str | None]:
        raise errors.api_error(errors.K8sApiError, "connection refused", status=None, operation="get")

    def save(self, doc: Mapping[str, Any], version: str | None) -> str:
        raise AssertionError("must not write")


def _args(command: str, reason: str = "gone") -> argparse.Namespace:
    return argparse.Namespace(
        ledger_command=command, runbook="10-provision", file="sandbox", namespace=None, reason=reason
    )


def _held(backend: MemoryBackend, lock: MemoryLock) -> None:
    Ledger(
        backend, runbook="10-provision", identity={"user": "bob", "host": "laptop-7", "pid": 4242}, outer=lock
    ).acquire()


def _inject(monkeypatch: pytest.MonkeyPatch, backend: MemoryBackend, lock: MemoryLock) -> None:
    monkeypatch.setattr(
        ledger_cli,
        "_ledger",
        lambda args: (Ledger(backend, runbook=args.runbook, outer=lock), _Bundle()),
    )


def test_a_blank_reason_is_refused_before_anything_is_read(monkeypatch, capsys) -> None:
    def never(args: Any) -> Any:
        raise AssertionError("must not connect")

    monkeypatch.setattr(ledger_cli, "_ledger", never)
    assert ledger_cli.run(_args("break-lock", reason="  ")) == 2
    assert "--reason" in capsys.readouterr().err


def test_break_lock_removes_both_locks_and_names_each_holder(monkeypatch, capsys) -> None:
    backend, lock = MemoryBackend(), MemoryLock()
    _held(backend, lock)
    _inject(monkeypatch, backend, lock)
    assert ledger_cli.run(_args("break-lock", reason="laptop-7 is gone")) == 0
    out = capsys.readouterr().out
    assert out.count("broke the lock of bob@laptop-7 pid 4242") == 2 and "memory lock" in out
    assert lock.read() is None and backend.doc is not None and backend.doc["lock"] is None
    assert backend.doc["history"][-1]["outer"]["lock"]["holder"] == "bob@laptop-7 pid 4242"


def test_an_unreadable_ledger_still_shows_and_breaks_the_outer_lock(monkeypatch, capsys) -> None:
    lock = MemoryLock()
    _held(MemoryBackend(), lock)
    _inject(monkeypatch, _Unreachable(), lock)
    assert ledger_cli.run(_args("show")) == 1
    shown = json.loads(capsys.readouterr().out)
    assert shown["outer_lock"]["lock"]["holder"] == "bob@laptop-7 pid 4242"
    assert "could not be read" in shown["ledger_error"]
    assert ledger_cli.run(_args("break-lock", reason="laptop-7 is gone")) == 1
    captured = capsys.readouterr()
    assert "memory lock: broke the lock of bob@laptop-7 pid 4242" in captured.out
    assert "could not be read" in captured.err and lock.read() is None
