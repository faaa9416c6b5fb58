"""30-upgrade's Plan / Apply calls (as 10-provision's), without a server.

Aspects: the gate counts creates / updates / deletes and names the stack, and a refused upgrade is
blocked; the planner shows the prepared upgrade itself first and *Plan* prepares anew with the same
product, version, rollback flag and options; headless, ``apply: false`` is "plan only" and nothing
runs, ``apply: true`` runs at once with step progress (lines in the log); a refused upgrade returns its
refused result whatever ``apply`` says and never runs the plan; in JupyterLab a confirmed click runs,
publishes, and a halt shows as the apply failing; the waits of a step tell their reasons as they poll.
"""

from __future__ import annotations

import dataclasses
import types
from typing import Any

import pytest
import upgrade_builders as b

from atlbook import errors, widgets
from atlbook import plan as planmod
from atlbook.upgrade import gates as gatesmod
from atlbook.upgrade import model, runbook, sequence
from atlbook.upgrade import timeline as tl

SPEC = types.SimpleNamespace(name="sandbox")


def _upgrade(*, refused: bool = False, rollback: bool = False) -> runbook.Upgrade:
    obs = b.healthy()
    target = "12.0.0" if refused else "11.3.2"  # 12.0.0: not ZDU-eligible from 11.3.1
    report = gatesmod.evaluate(obs, target)
    facts = b.facts()
    clients: Any = object()
    ctx = sequence.Context(clients, SPEC, facts, model.Options(), tl.Timeline())
    steps = sequence.upgrade_plan(ctx)
    if refused:
        steps.steps[0].blocked = ("eligible: not zero-downtime eligible",)
    mode = "refused" if refused else "upgrade"
    up = runbook.Upgrade(clients, SPEC, "jira", target, model.Options(), obs, report, facts, steps, mode, ctx)
    up.rollback = rollback
    return up


@dataclasses.dataclass
class Ran:
    ups: list[Any] = dataclasses.field(default_factory=list)
    kwargs: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    outcome: str = "upgraded"

    def __call__(self, up: runbook.Upgrade, **kw: Any) -> Any:
        self.ups.append(up)
        self.kwargs.append(kw)
        progress = kw.get("progress")
        if progress is not None:
            step = up.plan.steps[0]
            progress(planmod.StepEvent(1, len(up.plan.steps), step, "start"))
            progress(widgets.WaitingEvent(1, len(up.plan.steps), step, "waiting", "gates: judging"))
            progress(planmod.StepEvent(1, len(up.plan.steps), step, "done", "gates passed"))
        return types.SimpleNamespace(
            outcome=self.outcome if not up.refused else "refused",
            raise_for_outcome=lambda: _raise(self.outcome),
            to_dict=dict,
        )


def _raise(outcome: str) -> None:
    if outcome == "halted":
        raise errors.UpgradeBlocked("upgrade halted at node-jira-1: not Ready")


@pytest.fixture
def ran(monkeypatch: pytest.MonkeyPatch) -> Ran:
    fake = Ran()
    monkeypatch.setattr(runbook, "run", fake)
    monkeypatch.setattr(runbook, "publish", lambda result: None)
    monkeypatch.setattr(widgets, "_LATEST_PANEL", None)
    return fake


@pytest.fixture
def headless(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(widgets.HEADLESS_ENV, "1")
    monkeypatch.setattr(
        widgets, "_ipd", lambda: types.SimpleNamespace(display=lambda *a, **k: None, HTML=str)
    )


def test_gate_counts_and_blocked() -> None:
    up = _upgrade()
    counts = runbook.gate(up)
    assert counts["stack"] == "sandbox" and counts["blocked"] == []
    assert counts["updates"] == up.plan.counts["update"] > 0
    assert counts["creates"] == up.plan.counts["create"] and counts["deletes"] == 0
    refused = runbook.gate(_upgrade(refused=True))
    assert refused["blocked"] == ["preflight: eligible: not zero-downtime eligible"]
    assert runbook.plan_table(up) is up.plan and runbook.post_checks(up) == []
    assert up.fingerprint().startswith("upgrade:")


def test_planner_shows_the_prepared_upgrade_then_prepares_anew(
    headless: None, ran: Ran, monkeypatch: pytest.MonkeyPatch
) -> None:
    up = _upgrade(rollback=True)
    calls: list[tuple[Any, ...]] = []

    def prepare(*args: Any, **kw: Any) -> runbook.Upgrade:
        calls.append((*args[2:], kw["rollback"], kw["options"]))
        return _upgrade()

    monkeypatch.setattr(runbook, "prepare", prepare)
    planner = runbook.planner(up)
    assert planner.plan is up and calls == []
    planner.refresh()
    assert calls == [("jira", "11.3.2", True, up.options)] and planner.plan is not up


def test_headless_plan_only_or_apply_now(headless: None, ran: Ran, capsys: pytest.CaptureFixture) -> None:
    planner = runbook.planner(_upgrade())
    assert runbook.apply_gate(planner, apply=False) is None and ran.ups == []
    assert "Plan only" in capsys.readouterr().out
    result = runbook.apply_gate(planner, apply=True, measure_availability=False, load_url="http://x")
    assert result is not None and result.outcome == "upgraded"
    assert ran.kwargs[0]["measure_availability"] is False and ran.kwargs[0]["load_url"] == "http://x"
    out = capsys.readouterr().out
    assert "[1/" in out and "waiting: " in out and "gates: judging" in out and "done: " in out


@pytest.mark.parametrize("apply", [False, True])
def test_refused_returns_the_refused_result_and_runs_nothing(headless: None, ran: Ran, apply: bool) -> None:
    up = _upgrade(refused=True)
    result = runbook.apply_gate(runbook.planner(up), apply=apply)
    assert result is not None and result.outcome == "refused"
    assert ran.kwargs == [{"measure_availability": False}]  # run() refuses a refused upgrade at once


def test_click_runs_publishes_and_a_halt_fails_the_apply(monkeypatch: pytest.MonkeyPatch, ran: Ran) -> None:
    shown: list[Any] = []
    monkeypatch.delenv(widgets.HEADLESS_ENV, raising=False)
    monkeypatch.setattr(widgets, "is_headless", lambda: False)
    monkeypatch.setattr(
        widgets,
        "_ipd",
        lambda: types.SimpleNamespace(
            display=lambda obj, **k: shown.append(obj), update_display=lambda obj, **k: shown.append(obj)
        ),
    )
    published: list[Any] = []
    monkeypatch.setattr(runbook, "publish", published.append)
    ran.outcome = "halted"
    planner = runbook.planner(_upgrade())
    assert runbook.apply_gate(planner, apply=False) is None and ran.ups == []
    box = planner._widgets["gate"]
    apply_button, confirm, _ = box.children[0].children
    apply_button.click()
    assert "on stack 'sandbox'" in confirm.description
    confirm.click()
    assert len(ran.ups) == 1 and len(published) == 1
    assert "apply failed — UpgradeBlocked" in box.children[1].value
    table = box.children[3].value  # the live status table: the step run, its last state
    assert "preflight" in table and "gates passed" in table


def test_wait_tells_each_poll_reason() -> None:
    up = _upgrade()
    assert up.context is not None
    heard: list[tuple[str, str]] = []
    up.context.watch = lambda what, reason: heard.append((what, reason))
    answers = iter(["not Ready", "not Ready", "listed on 11.3.1", True])
    up.context.options = model.Options(first_poll=0.0, max_poll=0.0, sleep=lambda s: None)
    up.context.wait("jira-1 on 11.3.2", lambda: next(answers), timeout=5)
    assert [r for _, r in heard] == ["not Ready", "not Ready", "listed on 11.3.1", "ready"]
