"""Concurrency: two mutating runs against one stack — the second refuses; a stale lock is broken explicitly.

Covers (issue 10 item 6):
- while a run of 10-provision holds the stack's ledger lock (a real apply, paused inside a step), a
  second ``atlbook run 10-provision --apply`` (the CLI, a kernel) refuses to start: exit code 1, its
  output and its record name ``LedgerLocked``, the holder and since when; it makes no AWS mutation;
- a lock whose lease expired, held by a run on another host, is *not* taken over by the next run
  (``LedgerLocked``, with the hint to break it explicitly);
- ``atlbook ledger break-lock --runbook 10-provision -f parameters/sandbox.yaml --reason …`` breaks it
  (exit 0, naming the holder), the ledger's history keeps who broke it and why, ``--reason`` is
  required (exit 2), and the next run takes the lock.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import threading

import pytest
from conftest import ROOT, SANDBOX_FILE

from atlbook import clients as clientsmod
from atlbook import errors, plan
from atlbook.testing import create_eks_cluster

RUNBOOK = "10-provision"
ATLBOOK = [sys.executable, "-m", "atlbook.cli"]


def _env(box, tmp_path) -> dict[str, str]:
    return {
        **os.environ,
        "ATLBOOK_SANDBOX_DIR": str(box.state_dir),
        "ATLBOOK_RECORDS_DIR": str(tmp_path / "records"),
    }


def _ledger(bundle, **kw) -> plan.Ledger:
    return plan.Ledger(plan.ConfigMapBackend(bundle, "atlassian", RUNBOOK), runbook=RUNBOOK, **kw)


def test_second_run_refuses_then_a_stale_lock_is_broken_only_explicitly(
    box, aws_client, tmp_path, figures
) -> None:
    create_eks_cluster(aws_client, name="sandbox", nodes=3, instance_type="m5.2xlarge")
    bundle = clientsmod.connect("sandbox")
    env = _env(box, tmp_path)

    # the first run: a real apply under the ledger, paused inside its step
    inside, release = threading.Event(), threading.Event()
    first = _ledger(bundle)
    paused = plan.Plan(
        RUNBOOK,
        [plan.Step("pause", "a long step", kind="update", action=lambda: inside.set() or release.wait(120))],
    )
    worker = threading.Thread(target=plan.apply, args=(paused, first), daemon=True)
    worker.start()
    assert inside.wait(30)
    holder = first.lock_info
    assert holder is not None and str(os.getpid()) in holder["holder"]

    mark = box.audit.mark()
    second = subprocess.run(
        [*ATLBOOK, "run", RUNBOOK, "-f", str(SANDBOX_FILE), "--apply"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    release.set()
    worker.join(30)
    out = second.stdout + second.stderr
    assert second.returncode == 1, out
    assert "LedgerLocked" in second.stdout and holder["holder"] in second.stdout, second.stdout
    assert holder["since"][:16] in second.stdout, second.stdout
    assert [e for e in box.audit.mutations(mark, source="aws")] == []
    assert not _ledger(bundle).refresh().get("lock")  # the first run released it when it finished

    # a stale lock: another host, lease long expired — never taken over silently
    stale = _ledger(
        bundle,
        identity={"user": "bob", "host": "laptop-7", "pid": 4242},
        clock=lambda: dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
        lease_seconds=60,
    )
    stale.acquire()
    with pytest.raises(errors.LedgerLocked, match="bob@laptop-7 pid 4242.*lease expired.*break") as refused:
        _ledger(bundle).acquire()
    assert refused.value.holder == "bob@laptop-7 pid 4242"

    cli = [*ATLBOOK, "ledger"]
    no_reason = subprocess.run(
        [*cli, "break-lock", "--runbook", RUNBOOK, "-f", str(SANDBOX_FILE)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert no_reason.returncode == 2, no_reason.stderr
    broke = subprocess.run(
        [
            *cli,
            "break-lock",
            "--runbook",
            RUNBOOK,
            "-f",
            str(SANDBOX_FILE),
            "--reason",
            "laptop-7 lost its VPN",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert broke.returncode == 0, broke.stderr
    assert "bob@laptop-7 pid 4242" in broke.stdout and "2026-01-01" in broke.stdout, broke.stdout
    shown = subprocess.run(
        [*cli, "show", "--runbook", RUNBOOK, "-f", str(SANDBOX_FILE)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    doc = json.loads(shown.stdout)
    (event,) = [h for h in doc.get("history", []) if h.get("event") == "lock broken"]
    assert event["reason"] == "laptop-7 lost its VPN" and event["lock"]["holder"] == "bob@laptop-7 pid 4242"
    nxt = _ledger(bundle)
    nxt.acquire()
    assert nxt.holds_lock
    nxt.release()
    figures.add(
        RUNBOOK,
        test="concurrency",
        second_run_exit=second.returncode,
        refused_with_holder=True,
        aws_mutations_by_refused_run=0,
        stale_lock_taken_silently=0,
        break_lock_exit=broke.returncode,
    )
