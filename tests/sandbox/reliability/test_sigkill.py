"""Interruption for real: the kernel of ``atlbook run`` killed with SIGKILL mid-apply, then rerun.

Covers (issue 10 item 2 without an in-process hook): each run is ``atlbook run <runbook> -f
parameters/sandbox.yaml --apply`` in a subprocess (papermill, a kernel). The test watches the ledger
ConfigMap (in the emulator's store, no API call) and, once it shows the k-th step done by the run in
progress, sends SIGKILL to the kernel — the process named by the ledger lock's ``pid``, checked to be
a child of that ``atlbook run`` — so nothing runs on the way out: no ``finally``, no lock release. The
kill lands after step k (in step k+1, possibly mid-call). Then:

- the killed run exits non-zero and leaves its lock behind (held by the dead kernel pid, since when);
- the rerun, on the same host, recovers that lock because its process no longer exists (the design of
  :mod:`atlbook.plan`; a lock of another host, or of a live process, is refused and broken only
  explicitly — ``test_concurrency*.py``), and says so in its ledger notes (the record's notebook);
- run i is killed after the i-th mutating step of the unfinished plan, until a run completes; the
  final state equals an uninterrupted run's, the ledger shows 0 steps done twice, and the audit log
  shows no mutating call beyond those of the uninterrupted run (the chain's successful mutating calls,
  less the uninterrupted run's, as multisets of ``verb path``) but, at most, the one call of the step
  in flight at each kill, which was not recorded done and may have to be made again (the figure is
  reported; 0 in our runs).

30-upgrade (Jira to the next patch, without the availability load, killed at 3 points spread over
its mutating steps; each rerun resumes the unfinished upgrade), 50-index-recovery (index-corrupt
jira-1; killed once the lock is taken — inside the snapshot step —
then after each mutating step in turn) and 10-provision (from an empty
sandbox, killed at 3 points spread over its ~100 steps; the SSM lock and the ledger ConfigMap are both
left by the dead kernel and both recovered).
"""

from __future__ import annotations

import collections
import json
import os
import pathlib
import signal
import subprocess
import sys
import time
from typing import Any

import pytest
from conftest import ROOT, SANDBOX_FILE, LedgerWatch, _sandbox_aws, aws_duplicates
from test_interruption import _index_state, _provision_state, _provisioned, _upgrade_state

from atlbook import clients as clientsmod
from atlbook import demo, parameters
from atlbook.provisioning import runbook as provisioning

ATLBOOK = [sys.executable, "-m", "atlbook.cli"]
NS = "atlassian"
KILLS_10 = 3
KILLS_30 = 3


def _ppid(pid: int) -> int | None:
    try:
        stat = pathlib.Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[-1].split()[1])


class Run:
    """One ``atlbook run`` subprocess; ``kill_after(k)`` SIGKILLs its kernel once k steps show done."""

    def __init__(
        self,
        box: Any,
        runbook: str,
        ledger: str,
        env: dict[str, str],
        tmp: pathlib.Path,
        args: tuple[str, ...] = (),
    ) -> None:
        self.box, self.ledger = box, ledger
        self.out = tmp / f"{runbook}-{time.monotonic_ns()}.out"
        with self.out.open("w") as sink:
            self.proc = subprocess.Popen(  # noqa: S603 - our own CLI
                [*ATLBOOK, "run", runbook, "-f", str(SANDBOX_FILE), "--apply", *args],
                cwd=ROOT,
                env=env,
                stdout=sink,
                stderr=subprocess.STDOUT,
                text=True,
            )
        self.killed: dict[str, Any] | None = None

    def doc(self) -> dict[str, Any]:
        cm = self.box.kube.store.peek("configmaps", NS, self.ledger)
        if cm is None:
            return {}
        doc: dict[str, Any] = json.loads((cm.get("data") or {}).get("ledger.json") or "{}")
        return doc

    def _kernel(self, lock: dict[str, Any]) -> int | None:
        """The lock's pid when it is this run's kernel (a live child of the ``atlbook run`` process)."""
        pid = lock.get("pid")
        return pid if isinstance(pid, int) and _ppid(pid) == self.proc.pid else None

    def kill_after(self, k: int) -> None:
        while self.proc.poll() is None:
            doc = self.doc()
            lock = doc.get("lock") or {}
            pid = self._kernel(lock)
            if pid is not None and not doc.get("completed") and len(doc.get("steps") or {}) >= k:
                os.kill(pid, signal.SIGKILL)
                self.killed = {"pid": pid, "steps": len(doc.get("steps") or {}), "lock": lock}
                return
            time.sleep(0.02)

    def wait(self) -> int:
        return self.proc.wait(timeout=900)

    def text(self) -> str:
        return self.out.read_text()


def _env(box: Any, tmp: pathlib.Path) -> dict[str, str]:
    return {**os.environ, "ATLBOOK_SANDBOX_DIR": str(box.state_dir), "ATLBOOK_RECORDS_DIR": str(tmp / "rec")}


def _records_text(tmp: pathlib.Path) -> str:
    """Every executed notebook of the records (the ledger's notes are shown there)."""
    return "\n".join(p.read_text(errors="replace") for p in sorted((tmp / "rec").glob("*/notebook.ipynb")))


def _chain(
    box: Any, runbook: str, ledger: str, tmp: pathlib.Path, kill_points: list[int], args: tuple[str, ...] = ()
) -> tuple[list[dict[str, Any]], int, LedgerWatch, list[Any]]:
    """Run ``runbook`` killed at each point in turn, then once more to the end; returns the evidence."""
    env = _env(box, tmp)
    bundle = clientsmod.connect("sandbox")
    watch = LedgerWatch(bundle.k8s, ledger)
    watch.snap()
    kills: list[dict[str, Any]] = []
    marks: list[Any] = []
    for k in [*kill_points, None]:
        mark = box.audit.mark()
        run = Run(box, runbook, ledger, env, tmp, args)
        if k is not None:
            run.kill_after(k)
        code = run.wait()
        marks.append((k, box.audit.mutations(mark)))
        watch.snap()
        if kills:  # did this rerun take the ledger over from the killed kernel (or had it nothing to do)?
            doc = run.doc()
            dead = {x["lock"]["run_id"] for x in kills}
            plan_run = (doc.get("plan") or {}).get("run_id")
            # a rerun killed in turn before it recorded its plan still holds the lock it took over
            holds = run.killed is not None and (doc.get("lock") or {}).get("run_id") not in dead | {None}
            kills[-1]["taken_over_by_rerun"] = plan_run not in dead or holds
        if k is None or run.killed is None:  # the last run, or one that finished before step k
            assert code == 0, run.text()[-3000:]
            break
        assert code != 0, run.text()[-3000:]
        left = run.doc().get("lock") or {}
        assert left.get("pid") == run.killed["pid"], left  # SIGKILL: the lock was not released
        kills.append(run.killed)
    bundle.close()
    return kills, len(marks), watch, marks


def _calls(entries: list[Any]) -> collections.Counter[str]:
    """Successful mutating calls by ``verb path``, the ledger's and the lock's own writes left out."""
    return collections.Counter(
        f"{e.verb} {e.path.split('?')[0]}"
        for e in entries
        if (e.status or 0) < 400 and "atlbook-ledger-" not in e.path and not e.verb.startswith("ssm:")
    )


def _extra(uninterrupted: list[Any], marks: list[Any]) -> list[str]:
    """Mutating calls the killed chain made beyond those of the uninterrupted run (a multiset difference).

    A step finished before a kill and done again by the rerun would show here (a create answered 201
    twice, a second patch, a second delete); so would the in-flight step of a kill when the rerun has to
    do its call again.
    """
    chain: collections.Counter[str] = collections.Counter()
    for _, entries in marks:
        chain += _calls(entries)
    return sorted((chain - _calls(uninterrupted)).elements())


def _report(
    figures: Any,
    runbook: str,
    kills: list[dict[str, Any]],
    runs: int,
    watch: LedgerWatch,
    again: list[str],
    same: bool,
    **more: Any,
) -> None:
    figures.add(
        runbook,
        test="SIGKILL of the kernel (atlbook run)",
        kills=len(kills),
        kill_points=[k["steps"] for k in kills],
        reruns_recovering_the_lock=sum(bool(k.get("taken_over_by_rerun")) for k in kills),
        runs=runs,
        completed=1,
        steps_done_twice=len(watch.twice),
        extra_calls=len(again),
        final_equals_uninterrupted=same,
        **more,
    )


@pytest.fixture
def spec() -> Any:
    return parameters.load_stack(str(SANDBOX_FILE))


def test_50_index_recovery_sigkilled_after_each_step_ends_as_an_uninterrupted_one(
    box, spec, tmp_path, figures
) -> None:
    bundle = _provisioned(box, spec)
    box.fault("index-corrupt", "jira-1")
    env = _env(box, tmp_path)
    mark = box.audit.mark()
    first = Run(box, "50-index-recovery", "atlbook-ledger-50-index-recovery", env, tmp_path)
    assert first.wait() == 0, first.text()[-3000:]
    uninterrupted = box.audit.mutations(mark)
    expected = _index_state(bundle, spec)
    counts = first.doc()["plan"]["counts"]  # the ledger is cleared after a recovery: count the plan
    steps = counts["create"] + counts["update"] + counts["delete"]
    assert steps >= 1 and {v for _, v, _ in expected["verdicts"]} == {"healthy"}, expected

    box.fault("index-corrupt", "jira-1")
    kills, runs, watch, marks = _chain(
        box, "50-index-recovery", "atlbook-ledger-50-index-recovery", tmp_path, list(range(steps + 1))
    )
    final = _index_state(bundle, spec)
    logs = _records_text(tmp_path)
    bundle.close()
    assert final == expected
    assert len(kills) >= 1, kills
    # the rerun after the kill inside the snapshot step must take the dead kernel's lock over (and say
    # so); a rerun that finds the index already healthy (the kill came after the restart was asked
    # for) applies nothing and needs no lock
    assert kills[0]["taken_over_by_rerun"], kills
    assert "no longer exists on this host" in logs
    again = _extra(uninterrupted, marks)
    _report(figures, "50-index-recovery", kills, runs, watch, again, final == expected)
    assert watch.twice == [] and len(again) <= len(kills), (watch.twice, again)


def test_10_provision_sigkilled_at_3_points_ends_as_an_uninterrupted_apply(
    box, spec, tmp_path, figures
) -> None:
    env = _env(box, tmp_path)
    mark = box.audit.mark()
    first = Run(box, "10-provision", "atlbook-ledger-10-provision", env, tmp_path)
    assert first.wait() == 0, first.text()[-3000:]
    uninterrupted = box.audit.mutations(mark)
    bundle = clientsmod.connect("sandbox")
    pplan = provisioning.make_plan(bundle, spec)
    assert pplan.mutations == 0
    expected = _provision_state(box, bundle, spec, pplan)
    steps = len(first.doc().get("steps") or {})
    bundle.close()
    box.reset()

    points = [steps * i // (KILLS_10 + 1) for i in range(1, KILLS_10 + 1)]
    kills, runs, watch, marks = _chain(box, "10-provision", "atlbook-ledger-10-provision", tmp_path, points)
    bundle = clientsmod.connect("sandbox")
    last = provisioning.make_plan(bundle, spec)
    final = _provision_state(box, bundle, spec, last)
    ssm = _sandbox_aws(box, "ssm")
    left = ssm.get_parameters_by_path(Path="/atlbook", Recursive=True)["Parameters"]
    bundle.close()
    logs = _records_text(tmp_path)
    dup = aws_duplicates(box)
    again = _extra(uninterrupted, marks)
    same = final == expected
    _report(
        figures,
        "10-provision",
        kills,
        runs,
        watch,
        again,
        same,
        plan_steps=steps,
        duplicates=sum(dup.values()),
    )
    assert len(kills) == KILLS_10, kills
    assert last.mutations == 0 and final == expected
    assert all(k["taken_over_by_rerun"] for k in kills), kills
    assert "no longer exists on this host" in logs and "SSM parameter" in logs
    assert left == [], left  # the lock and the takeover claims are gone after the last run
    assert sum(dup.values()) == 0 and watch.twice == [] and len(again) <= len(kills), (
        dup,
        watch.twice,
        again,
    )


def test_30_upgrade_sigkilled_at_3_points_ends_as_an_uninterrupted_upgrade(
    box, spec, tmp_path, figures
) -> None:
    bundle = _provisioned(box, spec)
    ledger = "atlbook-ledger-30-upgrade-jira"
    env = _env(box, tmp_path)
    first_version = demo.next_patch_version(spec.products.jira.version)
    opts = ("-p", "product", "jira", "-p", "measure_availability", "false")
    mark = box.audit.mark()
    first = Run(box, "30-upgrade", ledger, env, tmp_path, (*opts, "-p", "target_version", first_version))
    assert first.wait() == 0, first.text()[-3000:]
    uninterrupted = box.audit.mutations(mark)
    expected = _upgrade_state(bundle, first_version)
    counts = first.doc()["plan"]["counts"]
    steps = counts["create"] + counts["update"] + counts["delete"]

    second = demo.next_patch_version(first_version)
    points = [steps * i // (KILLS_30 + 1) for i in range(1, KILLS_30 + 1)]
    kills, runs, watch, marks = _chain(
        box, "30-upgrade", ledger, tmp_path, points, (*opts, "-p", "target_version", second)
    )
    final = _upgrade_state(bundle, second)
    bundle.close()
    logs = _records_text(tmp_path)
    again = _extra(uninterrupted, marks)
    _report(figures, "30-upgrade", kills, runs, watch, again, final == expected, plan_steps=steps)
    assert len(kills) == KILLS_30 and all(k["taken_over_by_rerun"] for k in kills), kills
    assert final == expected
    assert "no longer exists on this host" in logs
    assert watch.twice == [] and len(again) <= len(kills), (watch.twice, again)
