"""50-index-recovery's Plan / Apply calls (as 10-provision's), without a server.

Aspects: the gate counts the snapshot (update) and the restart (delete) on the stack, and a plan without
a healthy node is blocked; the planner shows the given assessment's plan first and *Plan* assesses the
same node again; headless, ``apply: false`` is "plan only" and nothing runs, ``apply: true`` runs at once
and shows every index after; while a step waits, :func:`run` reports what for, poll by poll, as
``waiting`` events (deduplicated), then the step's end; in JupyterLab *Apply* → *Confirm* (naming the
counts and the stack) applies, fills the live status table and shows every index after.
"""

from __future__ import annotations

import types
from typing import Any

import pytest

from atlbook import plan, widgets
from atlbook.remediation import index_recovery as ir

SPEC = types.SimpleNamespace(name="sandbox")


def _node(pod: str, drift: int = 0) -> ir.NodeIndex:
    return ir.NodeIndex(pod, f"uid-{pod}", True, "RUNNING", True, 1000, 1000 - drift)


def _assessment(*nodes: ir.NodeIndex, bad: list[str]) -> ir.Assessment:
    by = {n.pod: n for n in nodes}
    return ir.Assessment("atlassian", by, bad, [p for p, n in by.items() if p not in bad and n.healthy()])


ONE_BAD = _assessment(_node("jira-0", 137), _node("jira-1"), bad=["jira-0"])
ALL_BAD = _assessment(_node("jira-0", 137), _node("jira-1", 99), bad=["jira-0", "jira-1"])


@pytest.fixture
def headless(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(widgets.HEADLESS_ENV, "1")
    monkeypatch.setattr(widgets, "_LATEST_PANEL", None)
    monkeypatch.setattr(
        widgets, "_ipd", lambda: types.SimpleNamespace(display=lambda *a, **k: None, HTML=str)
    )


def test_gate_counts_and_blocked(headless: None) -> None:
    recovery = ir.planner(object(), SPEC, ONE_BAD).plan
    assert ir.gate(recovery) == {"creates": 0, "updates": 1, "deletes": 1, "stack": "sandbox", "blocked": []}
    assert recovery.fingerprint() == recovery.plan.fingerprint()
    assert recovery.to_dict()["steps"] and "restart-jira-0" in recovery.to_html()
    blocked = ir.gate(ir.planner(object(), SPEC, ALL_BAD).plan)["blocked"]
    assert blocked and all("full reindex" in reason for reason in blocked)


def test_plan_button_assesses_the_same_node_again(headless: None, monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[str] = []

    def assess(clients: Any, spec: Any, *, node: str = "", options: Any = None) -> ir.Assessment:
        asked.append(node)
        return ALL_BAD

    monkeypatch.setattr(ir, "assess", assess)
    planner = ir.planner(object(), SPEC, ONE_BAD, node="jira-0")
    assert planner.plan.assessment is ONE_BAD and asked == []
    planner.refresh()
    assert asked == ["jira-0"] and planner.plan.assessment is ALL_BAD and planner.blocked


def test_headless_plan_only_or_apply_now(
    headless: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    runs: list[dict[str, Any]] = []
    after = [{"pod": "jira-0", "verdict": "healthy"}]

    def run(clients: Any, spec: Any, recovery: Any, assessment: Any, **kw: Any) -> ir.RecoveryResult:
        runs.append(kw)
        return ir.RecoveryResult(True, 1.5, [], assessment.rows(), after)

    monkeypatch.setattr(ir, "run", run)
    planner = ir.planner(object(), SPEC, ONE_BAD)
    assert ir.apply_gate(planner, apply=False) is None and runs == []
    assert "Plan only: 0 create(s), 1 update(s), 1 delete(s) on stack 'sandbox'" in capsys.readouterr().out
    result = ir.apply_gate(planner, apply=True)
    assert result is not None and result.after == after
    assert "progress" in runs[0] and planner.after_result == after
    assert ir.after_table(planner.plan) == after


def test_run_reports_what_a_step_waits_for(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ir, "assess", lambda *a, **k: ONE_BAD)
    opts = ir.Options(timeout=10, poll=1.0, sleep=lambda s: None, clock=lambda: 0.0)
    answers = iter(["not recreated yet", "not Ready yet", "not Ready yet", True])
    recovery = plan.Plan(ir.RUNBOOK, stack="sandbox")
    recovery.add(
        plan.Step(
            "restart-jira-0",
            "restart jira-0",
            kind="delete",
            target="Pod atlassian/jira-0",
            action=lambda: ir._wait("jira-0 to come back RUNNING", lambda: next(answers), opts),
        )
    )
    events: list[tuple[str, str]] = []
    ledger = plan.Ledger(plan.MemoryBackend(), runbook=ir.RUNBOOK)
    result = ir.run(
        object(),
        SPEC,
        recovery,
        ONE_BAD,
        ledger=ledger,
        options=opts,
        progress=lambda e: events.append((e.status, e.message)),
    )
    assert result.applied
    waiting = [m for s, m in events if s == "waiting"]
    assert waiting == [
        "jira-0 to come back RUNNING: not recreated yet",
        "jira-0 to come back RUNNING: not Ready yet",
        "jira-0 to come back RUNNING: done",
    ]
    assert [s for s, _ in events][0] == "start" and events[-1][0] == "done"
    assert ir._WATCH.get() is None  # the watcher does not outlive the run


def test_click_applies_and_shows_every_index_after(monkeypatch: pytest.MonkeyPatch) -> None:
    shown: list[Any] = []
    monkeypatch.delenv(widgets.HEADLESS_ENV, raising=False)
    monkeypatch.setattr(widgets, "is_headless", lambda: False)
    monkeypatch.setattr(widgets, "_LATEST_PANEL", None)
    monkeypatch.setattr(
        widgets,
        "_ipd",
        lambda: types.SimpleNamespace(
            display=lambda obj, **k: shown.append(obj), update_display=lambda obj, **k: shown.append(obj)
        ),
    )
    after = [{"pod": "jira-0", "verdict": "healthy"}]

    def run(clients: Any, spec: Any, recovery: Any, assessment: Any, **kw: Any) -> ir.RecoveryResult:
        step = recovery.steps[2]
        kw["progress"](plan.StepEvent(3, 4, step, "start"))
        kw["progress"](
            widgets.WaitingEvent(3, 4, step, "waiting", "jira-0 to come back RUNNING: not Ready yet")
        )
        kw["progress"](plan.StepEvent(3, 4, step, "done", "deleted pod jira-0"))
        return ir.RecoveryResult(True, 1.5, [], assessment.rows(), after)

    monkeypatch.setattr(ir, "run", run)
    planner = ir.planner(object(), SPEC, ONE_BAD)
    assert ir.apply_gate(planner, apply=False) is None
    box = planner._widgets["gate"]
    apply_button, confirm, _ = box.children[0].children
    apply_button.click()
    assert confirm.description == "Confirm: 0 create(s), 1 update(s), 1 delete(s) on stack 'sandbox'"
    confirm.click()
    assert planner.applied and planner.plan.result is not None
    assert "restart-jira-0" in box.children[3].value and "deleted pod jira-0" in box.children[3].value
    assert (
        "Every Jira index after the recovery" in box.children[4].value and "healthy" in box.children[4].value
    )
