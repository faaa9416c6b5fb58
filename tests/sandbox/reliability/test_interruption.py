"""Interruption: every mutating runbook killed after a step, rerun, ends where an uninterrupted run ends.

Covers (issue 10 item 2), through the runbooks' module APIs (a kernel per kill would be too slow; the
real thing — ``atlbook run`` with its kernel SIGKILLed — is ``test_sigkill.py``, at fewer points):
the kill is :class:`Killed` (a ``BaseException``, like ``KeyboardInterrupt`` in a kernel: nothing on the
way catches it) raised right after the k-th step of a run finished (recorded in the ledger, or checked),
through a wrapper around :func:`atlbook.plan.apply` — the one apply loop every runbook uses. Each rerun
starts afresh (a new plan from what it observes, as after a kernel restart) and is killed at its next
step, until a last run completes.

- 10-provision: the ~100-step plan, killed at a deterministic spread of 8 points (every ⌊N/9⌋-th step
  of each run), then completed; the final AWS resources by kind, Kubernetes objects by kind, images and
  post-checks equal those of an uninterrupted apply from an empty sandbox (run first, then reset);
- 30-upgrade: on that stack, an uninterrupted Jira upgrade, then the next one killed after *every* step
  in turn (one step per run); the final state (objects, every pod on the target version, ZDU state,
  image) equals the uninterrupted one's (versions compared as "the target");
- 50-index-recovery: the index-corrupt fault recovered uninterrupted, then again killed after every step
  in turn; the final index health per node and the objects equal the uninterrupted recovery's.

Every kill chain: 0 steps done twice (the ledger: no step recorded done by two runs of one plan), 0
duplicate AWS resources. Figures: kills, runs, steps done twice, duplicates, per runbook.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from conftest import SANDBOX_FILE, LedgerWatch, aws_duplicates, aws_inventory, k8s_inventory

from atlbook import clients as clientsmod
from atlbook import demo, parameters, plan
from atlbook.clients import k8s
from atlbook.provisioning import apply as papply
from atlbook.provisioning import runbook as provisioning
from atlbook.remediation import index_recovery
from atlbook.upgrade import model
from atlbook.upgrade import runbook as upgrade

WAITS = papply.Waits(timeout=60)
FAST_UPGRADE = dict(node_timeout=30.0, tasks_timeout=30.0, snapshot_timeout=30.0, max_poll=0.1, error_polls=3)
FAST_INDEX = index_recovery.Options(timeout=30.0, poll=0.2)
KILLS_10 = 8


class Killed(BaseException):
    """Stands for the kernel dying (not an Exception: nothing on the way catches it)."""


def _kill_after(monkeypatch: pytest.MonkeyPatch, k: int | None, *, positions: bool = False) -> None:
    """From now on each apply dies right after its k-th finished step (``None``: no kill).

    ``positions``: count skipped steps too, i.e. die right after the k-th step of the plan.
    """
    real = _REAL_APPLY

    def apply(p: plan.Plan, ledger: Any, *, progress: Callable[..., None] | None = None, **kw: Any) -> Any:
        finished = [0]

        def watch(event: plan.StepEvent) -> None:
            if progress is not None:
                progress(event)
            counted = ("done", "checked", "unchanged") + (("skipped",) if positions else ())
            if k is not None and event.status in counted:
                finished[0] += 1
                if finished[0] == k:
                    raise Killed(event.step.id)

        return real(p, ledger, progress=watch, **kw)

    monkeypatch.setattr(plan, "apply", apply)


_REAL_APPLY = plan.apply


def _objects(api: Any) -> dict[str, int]:
    return k8s_inventory(api)


def _images(api: Any) -> dict[str, str]:
    return {
        s["metadata"]["name"]: s["spec"]["template"]["spec"]["containers"][0]["image"]
        for s in k8s.list(api, "StatefulSet", "atlassian")
    }


def _provision(bundle: Any, spec: Any) -> Any:
    pplan = provisioning.make_plan(bundle, spec)
    return papply.apply(bundle, pplan, confirmed=True, waits=WAITS, progress=None), pplan


def _provision_state(box: Any, bundle: Any, spec: Any, pplan: Any) -> dict[str, Any]:
    return {
        "aws": aws_inventory(box),
        "objects": _objects(bundle.k8s),
        "images": _images(bundle.k8s),
        "postchecks": sorted(
            (r["check"], r["subject"], r["ok"]) for r in provisioning.postcheck_table(bundle, pplan)
        ),
    }


@pytest.fixture
def spec() -> Any:
    return parameters.load_stack(str(SANDBOX_FILE))


def test_10_provision_killed_at_8_points_ends_as_an_uninterrupted_apply(
    box, spec, monkeypatch, figures
) -> None:
    bundle = clientsmod.connect("sandbox")
    _, pplan = _provision(bundle, spec)
    expected = _provision_state(box, bundle, spec, pplan)
    steps = len(papply._steps(papply._Runtime(bundle, pplan, WAITS), pplan).steps)  # noqa: SLF001 - the count
    bundle.close()
    box.reset()

    bundle = clientsmod.connect("sandbox")
    per_run = max(1, steps // (KILLS_10 + 1))
    watch = LedgerWatch(bundle.k8s, "atlbook-ledger-10-provision")
    kills, runs = [], 0
    for n in range(KILLS_10 + 1):
        _kill_after(monkeypatch, per_run if n < KILLS_10 else None)
        runs += 1
        try:
            _, last = _provision(bundle, spec)
        except Killed as k:
            kills.append(str(k))
            watch.snap()
            continue
        watch.snap()
    assert len(kills) == KILLS_10, kills
    _kill_after(monkeypatch, None)
    final = _provision_state(box, bundle, spec, last)
    assert final == expected
    assert provisioning.make_plan(bundle, spec).mutations == 0
    dup = aws_duplicates(box)
    figures.add(
        "10-provision",
        test="interruption",
        plan_steps=steps,
        kills=len(kills),
        runs=runs,
        completed=1,
        duplicates=sum(dup.values()),
        steps_done_twice=len(watch.twice),
        final_equals_uninterrupted=final == expected,
    )
    assert sum(dup.values()) == 0 and watch.twice == [], (dup, watch.twice)


def _provisioned(box: Any, spec: Any) -> Any:
    """The HA stack of parameters/sandbox.yaml (left by the test before, or built now)."""
    bundle = clientsmod.connect("sandbox")
    if provisioning.make_plan(bundle, spec).mutations:
        box.reset()
        _provision(bundle, spec)
    return bundle


def _upgrade_state(bundle: Any, target: str) -> dict[str, Any]:
    pods = k8s.list(bundle.k8s, "Pod", "atlassian", label_selector="app.kubernetes.io/name=jira")
    versions = sorted(
        (p["metadata"]["name"], p["spec"]["containers"][0]["image"].rsplit(":", 1)[-1] == target)
        for p in pods
    )
    images = {k: v.rsplit(":", 1)[-1] == target if k == "jira" else v for k, v in _images(bundle.k8s).items()}
    return {"objects": _objects(bundle.k8s), "jira_on_target": versions, "images": images}


def _upgrade_once(bundle: Any, spec: Any, target: str) -> upgrade.UpgradeResult:
    up = upgrade.prepare(bundle, spec, "jira", target, options=model.Options(**FAST_UPGRADE))
    return upgrade.run(up, measure_availability=False, show_progress=False)


def test_30_upgrade_killed_after_every_step_ends_as_an_uninterrupted_upgrade(
    box, spec, monkeypatch, figures
) -> None:
    bundle = _provisioned(box, spec)
    first = demo.next_patch_version(spec.products.jira.version)
    done = _upgrade_once(bundle, spec, first)
    assert done.outcome == "upgraded", done.error
    expected = _upgrade_state(bundle, first)

    second = demo.next_patch_version(first)
    watch = LedgerWatch(bundle.k8s, model.runbook_name("jira"))
    watch.snap()
    kills, runs = [], 0
    while True:
        # run i dies right after step i of the plan: every step in turn
        _kill_after(monkeypatch, runs + 1, positions=True)
        runs += 1
        assert runs < 40, kills
        try:
            result = _upgrade_once(bundle, spec, second)
        except Killed as k:
            kills.append(str(k))
            watch.snap()
            continue
        watch.snap()
        break
    _kill_after(monkeypatch, None)
    assert result.outcome == "upgraded", result.error
    final = _upgrade_state(bundle, second)
    planned = [s.id for s in _upgrade_plan_ids(result)]
    assert kills == planned[: len(kills)] and len(kills) == len(planned), (kills, planned)
    assert final == expected
    dup = aws_duplicates(box)
    figures.add(
        "30-upgrade",
        test="interruption",
        plan_steps=len(planned),
        kills=len(kills),
        runs=runs,
        completed=1,
        duplicates=sum(dup.values()),
        steps_done_twice=len(watch.twice),
        final_equals_uninterrupted=final == expected,
    )
    assert watch.twice == [] and sum(dup.values()) == 0, (watch.twice, dup)


def _upgrade_plan_ids(result: upgrade.UpgradeResult) -> list[Any]:
    class _Id:
        def __init__(self, i: str) -> None:
            self.id = i

    return [_Id(r["id"]) for r in (result.report or {}).get("results", [])]


def _index_state(bundle: Any, spec: Any) -> dict[str, Any]:
    after = index_recovery.assess(bundle, spec, options=FAST_INDEX)
    return {
        "verdicts": sorted((r["pod"], r["verdict"], r["ready"]) for r in after.rows()),
        "objects": _objects(bundle.k8s),
    }


def _recover(bundle: Any, spec: Any) -> Any:
    assessment = index_recovery.assess(bundle, spec, options=FAST_INDEX)
    if not assessment.bad:
        return None
    recovery = index_recovery.build_plan(bundle, spec, assessment, FAST_INDEX)
    return index_recovery.run(bundle, spec, recovery, assessment, options=FAST_INDEX)


def test_50_index_recovery_killed_after_every_step_ends_as_an_uninterrupted_one(
    box, spec, monkeypatch, figures
) -> None:
    bundle = _provisioned(box, spec)
    box.fault("index-corrupt", "jira-1")
    assert _recover(bundle, spec) is not None
    expected = _index_state(bundle, spec)
    assert {v for _, v, _ in expected["verdicts"]} == {"healthy"}, expected

    box.fault("index-corrupt", "jira-1")
    watch = LedgerWatch(bundle.k8s, "atlbook-ledger-50-index-recovery")
    watch.snap()
    kills, runs = [], 0
    while True:
        _kill_after(monkeypatch, runs + 1, positions=True)  # run i dies right after step i
        runs += 1
        assert runs < 12, kills
        try:
            _recover(bundle, spec)
        except Killed as e:
            kills.append(str(e))
            watch.snap()
            continue
        watch.snap()
        break  # a run finished: the plan had fewer steps than this kill point, or nothing was left
    _kill_after(monkeypatch, None)
    final = _index_state(bundle, spec)
    assert final == expected
    figures.add(
        "50-index-recovery",
        test="interruption",
        kills=len(kills),
        runs=runs,
        completed=1,
        duplicates=0,
        steps_done_twice=len(watch.twice),
        final_equals_uninterrupted=final == expected,
    )
    assert watch.twice == [], watch.twice
    assert kills, "no step was ever finished before a kill"
