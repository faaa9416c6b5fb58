"""Concurrency on an EMPTY stack: the outer ledger lock (SSM parameter) excludes a second provisioning.

Covers (issue 10 item 6, the case the ledger ConfigMap cannot cover): the first run's target names no
kubeconfig (its Kubernetes API is the EKS cluster this very plan creates, as in
``tests/sandbox/provisioning/test_provision.py``), so 10-provision keeps its ledger in memory until the
cluster and the namespace exist — only the SSM parameter ``/atlbook/sandbox/ledger-lock/10-provision``
(:class:`atlbook.plan.ParameterLock`) excludes a second run meanwhile. The second run and the operator
use the CLI with ``parameters/sandbox.yaml`` (``atlbook run`` — a kernel — and ``atlbook ledger``):

- a stale lock (another host, lease long expired) on the empty stack: the run refuses (exit 1, the
  holder, since when and the ``break-lock`` hint in its output) and makes no mutating call at all;
  ``atlbook ledger break-lock`` without ``--reason`` is refused (exit 2), with one it removes the lock
  (exit 0, naming the holder) and ``atlbook ledger show`` shows no lock left;
- a first provisioning (module API, in a thread) paused right after its first step: no EKS cluster and
  no ledger ConfigMap exist yet, the SSM parameter names the run; a second ``atlbook run 10-provision
  --apply`` refuses (exit 1, ``LedgerLocked``, the holder and since when) before any mutating call
  (audit log: 0 AWS and 0 Kubernetes mutations);
- the first run completes and releases the parameter; the second run then proceeds and plans 0 changes
  (exit 0, 0 mutating calls).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import pathlib
import re
import subprocess
import sys
import threading
from typing import Any

from conftest import ROOT, SANDBOX_FILE, _sandbox_aws

from atlbook import clients as clientsmod
from atlbook import parameters, plan
from atlbook.clients.bundle import Clients
from atlbook.provisioning import apply as papply
from atlbook.provisioning import runbook as provisioning

RUNBOOK = "10-provision"
PARAMETER = "/atlbook/sandbox/ledger-lock/10-provision"
ATLBOOK = [sys.executable, "-m", "atlbook.cli"]
WAITS = papply.Waits(timeout=120)


def _cli(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*ATLBOOK, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, check=False
    )


def _error(done: subprocess.CompletedProcess[str]) -> str:
    """``ename: evalue`` of the run's record (its summary line in the CLI output shortens it)."""
    found = re.search(r"record=(\S+)", done.stdout)
    assert found, done.stdout + done.stderr
    err = json.loads((pathlib.Path(found.group(1)) / "summary.json").read_text()).get("error") or {}
    return f"{err.get('ename')}: {err.get('evalue')}"


def _parameter(box: Any) -> dict[str, Any] | None:
    ssm = _sandbox_aws(box, "ssm")
    try:
        value = ssm.get_parameter(Name=PARAMETER)["Parameter"]["Value"]
    except ssm.exceptions.ParameterNotFound:
        return None
    doc: dict[str, Any] = json.loads(value)
    return doc


def test_a_second_provisioning_of_an_empty_stack_refuses_then_proceeds_to_0_changes(
    box, tmp_path, figures
) -> None:
    params = SANDBOX_FILE
    env = {**os.environ, "ATLBOOK_RECORDS_DIR": str(tmp_path / "records")}
    spec = parameters.load_stack(str(params))
    sandbox = clientsmod.connect(spec.target)
    # the first run reaches Kubernetes only through the EKS cluster it creates (no kubeconfig)
    bundle = Clients(dataclasses.replace(sandbox.target, kubeconfig=None, context=None))
    sandbox.close()
    eks = _sandbox_aws(box, "eks")
    assert eks.list_clusters()["clusters"] == []  # the stack is empty

    # --- a stale lock: another host, lease long expired — refused, broken only explicitly ---
    stale = plan.Ledger(
        plan.MemoryBackend(),
        runbook=RUNBOOK,
        stack="sandbox",
        identity={"user": "bob", "host": "laptop-7", "pid": 4242},
        clock=lambda: dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
        lease_seconds=60,
        outer=plan.ParameterLock(bundle, "sandbox", RUNBOOK),
    )
    stale.acquire()
    mark = box.audit.mark()
    refused_stale = _cli(["run", RUNBOOK, "-f", str(params), "--apply"], env)
    out = _error(refused_stale)
    assert refused_stale.returncode == 1, out
    assert "LedgerLocked" in out and "bob@laptop-7 pid 4242" in out and "2026-01-01T00:00:00Z" in out, out
    assert "lease expired" in out and "atlbook ledger break-lock" in out, out
    assert box.audit.mutations(mark) == []
    assert _cli(["ledger", "break-lock", "--runbook", RUNBOOK, "-f", str(params)], env).returncode == 2
    assert _parameter(box) is not None  # a refused break changes nothing
    broke = _cli(
        ["ledger", "break-lock", "--runbook", RUNBOOK, "-f", str(params), "--reason", "laptop-7 is gone"],
        env,
    )
    assert broke.returncode == 0, broke.stderr
    assert f"SSM parameter {PARAMETER}: broke the lock of bob@laptop-7 pid 4242" in broke.stdout, broke.stdout
    assert "2026-01-01T00:00:00Z" in broke.stdout, broke.stdout
    shown = json.loads(_cli(["ledger", "show", "--runbook", RUNBOOK, "-f", str(params)], env).stdout)
    assert shown["outer_lock"] == {"where": f"SSM parameter {PARAMETER}", "lock": None}

    # --- the first run, paused right after its first step (the ledger is in memory) ---
    pplan = provisioning.make_plan(bundle, spec)
    inside, release = threading.Event(), threading.Event()
    outcome: dict[str, Any] = {}

    def pause(event: plan.StepEvent) -> None:
        if event.status == "done" and not inside.is_set():
            inside.set()
            release.wait(300)

    def first() -> None:
        try:
            outcome["report"] = papply.apply(bundle, pplan, confirmed=True, waits=WAITS, progress=pause)
        except BaseException as e:  # noqa: BLE001 - reported by the assertion below
            outcome["error"] = e

    worker = threading.Thread(target=first, daemon=True)
    worker.start()
    try:
        assert inside.wait(300), outcome
        held = _parameter(box)
        assert held is not None and held["holder"].endswith(f"pid {os.getpid()}"), held
        assert eks.list_clusters()["clusters"] == []
        assert box.kube.store.peek("configmaps", "atlassian", "atlbook-ledger-10-provision") is None

        mark = box.audit.mark()
        second = _cli(["run", RUNBOOK, "-f", str(params), "--apply"], env)
        refused_calls = box.audit.mutations(mark)
    finally:
        release.set()
        worker.join(600)
    out = _error(second)
    assert second.returncode == 1, out
    assert "LedgerLocked" in out and held["holder"] in out and held["since"] in out, out
    assert refused_calls == [], refused_calls
    assert "error" not in outcome, outcome.get("error")
    assert outcome["report"].counts.get("failed", 0) == 0
    assert _parameter(box) is None  # released at the end of the first run
    assert box.kube.store.peek("configmaps", "atlassian", "atlbook-ledger-10-provision") is not None

    # --- after the first completes, the second proceeds: 0 changes, no mutating call ---
    mark = box.audit.mark()
    again = _cli(["run", RUNBOOK, "-f", str(params), "--apply"], env)
    assert again.returncode == 0, again.stdout + again.stderr
    assert box.audit.mutations(mark) == []
    assert provisioning.make_plan(bundle, spec).mutations == 0
    bundle.close()
    figures.add(
        RUNBOOK,
        test="concurrency, empty stack (SSM lock)",
        second_run_exit=second.returncode,
        refused_with_holder=True,
        mutations_by_refused_runs=len(refused_calls),
        stale_lock_taken_silently=0,
        break_lock_exit=broke.returncode,
        rerun_after_first_exit=again.returncode,
        rerun_changes=0,
    )
