"""Plans, apply and the ledger (in-memory backend; the ConfigMap backend is in tests/sandbox/clients).

Covers: counts/changes/summary; rendering as DataFrame, HTML (escaped) and text, sensitive diffs masked;
fingerprints; apply runs steps in order and records each one; failure stops with step, phase, call
and error (also in the ledger) and releases the lock; a rerun skips done steps and says so, so every
action runs exactly once; precondition/verify failures; blocked plans and mutating plans without a
ledger are refused before anything runs; a no-change plan writes nothing; the lock — a second run is
refused naming holder and since, a stale lease is still refused until broken explicitly, a dead pid on
this host is recovered, a broken lock stops its former holder; compare-and-swap retries on conflict.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

import pytest

from atlbook import errors
from atlbook.plan import (
    ApplyFailed,
    FieldDiff,
    Ledger,
    MemoryBackend,
    Plan,
    Step,
    StepEvent,
    apply,
    ledger_name,
)

T0 = dt.datetime(2026, 11, 26, 15, 0, 0, tzinfo=dt.UTC)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> dt.datetime:
        return self.now


def ledger(
    backend: MemoryBackend,
    *,
    host: str = "laptop",
    pid: int = 100,
    clock: Clock | None = None,
    alive: bool = True,
    **kw: Any,
) -> Ledger:
    return Ledger(
        backend,
        runbook="30-upgrade",
        stack="demo",
        clock=clock or Clock(),
        identity={"user": "ops", "host": host, "pid": pid},
        pid_alive=lambda p: alive,
        **kw,
    )


def make_plan(log: list[str], fail_at: str | None = None, fail_phase: str = "action") -> Plan:
    def act(name: str) -> Any:
        def run() -> str:
            log.append(name)
            if name == fail_at and fail_phase == "action":
                raise errors.api_error(
                    errors.K8sApiError,
                    "patch StatefulSet atlassian/jira: HTTP 503",
                    status=503,
                    service="k8s",
                    operation="patch StatefulSet atlassian/jira",
                )
            return f"{name} ok"

        return run

    def check(name: str, phase: str) -> Any:
        return lambda: False if (name == fail_at and fail_phase == phase) else True

    ids = ["namespace", "configmap", "statefulset", "service"]
    plan = Plan("10-provision", stack="demo")
    for i, sid in enumerate(ids):
        plan.add(
            Step(
                sid,
                f"ensure {sid}",
                kind="create" if i % 2 == 0 else "update",
                target=f"X {sid}",
                diffs=(FieldDiff("spec.replicas", 2, 3),) if sid == "statefulset" else (),
                precondition=check(sid, "precondition"),
                action=act(sid),
                verify=check(sid, "verify"),
            )
        )
    plan.add(Step("post-check", "every node RUNNING", kind="check", action=lambda: log.append("post-check")))
    return plan


def test_counts_and_summary() -> None:
    plan = make_plan([])
    plan.add(Step("old-thing", "present but not desired: reported only", kind="noop"))
    assert plan.counts == {"create": 2, "update": 2, "delete": 0, "noop": 1, "check": 1}
    assert plan.changes == 4 and not plan.is_blocked and len(plan) == 6
    assert "2 to create, 2 to update, 0 to delete" in plan.summary()


def test_bad_steps_refused() -> None:
    with pytest.raises(errors.PlanError, match="unknown kind"):
        Step("x", "y", kind="upsert")  # type: ignore[arg-type]
    plan = Plan("p", [Step("a", "a")])
    with pytest.raises(errors.PlanError, match="already has a step 'a'"):
        plan.add(Step("a", "again"))


def test_rendering() -> None:
    plan = Plan(
        "10-provision",
        [
            Step(
                "sts",
                "scale jira",
                kind="update",
                target="StatefulSet atlassian/jira",
                diffs=(
                    FieldDiff("spec.replicas", 2, 3),
                    FieldDiff("data.password", "old-pw", "new-pw", sensitive=True),
                ),
            ),
            Step(
                "evil",
                "<script>alert(1)</script>",
                kind="create",
                target="<b>x</b>",
                blocked=("budget: 840 > 800",),
            ),
        ],
    )
    df = plan.to_dataframe()
    assert list(df.columns) == [
        "step",
        "kind",
        "target",
        "description",
        "changes",
        "mutates",
        "blocked",
        "warnings",
    ]
    assert df.loc[1, "changes"] == "spec.replicas: 2 → 3; data.password: *** → ***"
    assert bool(df.loc[2, "mutates"]) and df.loc[2, "blocked"] == "budget: 840 > 800"
    html = plan._repr_html_()
    assert "<script>" not in html and "&lt;script&gt;" in html and "BLOCKED" in html
    text = plan.to_text()
    assert "[update] sts: scale jira" in text and "blocked: budget" in text
    assert "old-pw" not in text + html + str(plan.to_dict())


def test_fingerprint() -> None:
    a, b = make_plan([]), make_plan([])
    assert a.fingerprint() == b.fingerprint()
    b.step("statefulset").diffs = (FieldDiff("spec.replicas", 2, 4),)
    assert a.fingerprint() != b.fingerprint()


def test_apply_in_order_and_records_each_step() -> None:
    log: list[str] = []
    events: list[StepEvent] = []
    backend = MemoryBackend()
    led = ledger(backend)
    report = apply(make_plan(log), led, progress=events.append)
    assert log == ["namespace", "configmap", "statefulset", "service", "post-check"]
    assert report.counts == {"done": 4, "checked": 1}
    assert set(backend.doc["steps"]) == {"namespace", "configmap", "statefulset", "service"}  # type: ignore[index]
    assert backend.doc["lock"] is None  # type: ignore[index]
    assert [e.status for e in events if e.step.id == "namespace"] == ["start", "done"]
    assert report.to_dict()["ledger"]["plan"]["fingerprint"] == make_plan([]).fingerprint()


def test_failure_stops_with_step_call_error_then_rerun_resumes() -> None:
    log: list[str] = []
    backend = MemoryBackend()
    with pytest.raises(ApplyFailed) as info:
        apply(make_plan(log, fail_at="statefulset"), ledger(backend, pid=100))
    failed = info.value
    assert failed.step == "statefulset" and failed.phase == "action"
    assert failed.call == "k8s: patch StatefulSet atlassian/jira"
    assert isinstance(failed.__cause__, errors.Unavailable)
    assert "step 3/5 statefulset" in str(failed)
    assert [r.status for r in failed.report.results] == ["done", "done", "failed", "not-run", "not-run"]
    assert backend.doc["failures"][0]["step"] == "statefulset"  # type: ignore[index]
    assert backend.doc["lock"] is None  # type: ignore[index]  # released on failure
    assert log == ["namespace", "configmap", "statefulset"]

    events: list[StepEvent] = []
    report = apply(make_plan(log), ledger(backend, pid=101), progress=events.append)
    assert log == ["namespace", "configmap", "statefulset", "statefulset", "service", "post-check"]
    assert [r.status for r in report.results] == ["skipped", "skipped", "done", "done", "checked"]
    skipped = [e for e in events if e.status == "skipped"]
    assert [e.step.id for e in skipped] == ["namespace", "configmap"]
    assert "already done" in skipped[0].message


@pytest.mark.parametrize("phase", ["precondition", "verify"])
def test_check_phases_fail(phase: str) -> None:
    log: list[str] = []
    backend = MemoryBackend()
    with pytest.raises(ApplyFailed) as info:
        apply(make_plan(log, fail_at="configmap", fail_phase=phase), ledger(backend))
    assert info.value.phase == phase and info.value.step == "configmap"
    assert ("configmap" in log) is (phase == "verify")
    assert "configmap" not in backend.doc["steps"]  # type: ignore[index]


def test_blocked_plan_refused_before_anything() -> None:
    log: list[str] = []
    plan = make_plan(log)
    plan.step("service").blocked = ("NetworkPolicy engine missing",)
    backend = MemoryBackend()
    with pytest.raises(errors.PlanError, match="blocked, nothing was changed: service: NetworkPolicy engine"):
        apply(plan, ledger(backend))
    assert log == [] and backend.writes == 0


def test_no_change_plan_touches_nothing() -> None:
    seen: list[str] = []
    plan = Plan(
        "10-provision",
        [
            Step("ns", "namespace exists", kind="noop"),
            Step("post", "nodes RUNNING", kind="check", action=lambda: seen.append("post")),
        ],
    )
    backend = MemoryBackend()
    report = apply(plan, ledger(backend))
    assert backend.writes == 0 and seen == ["post"]
    assert report.counts == {"unchanged": 1, "checked": 1}
    assert apply(plan, None).counts == {"unchanged": 1, "checked": 1}


def test_mutating_plan_needs_a_ledger() -> None:
    with pytest.raises(errors.PlanError, match="needs a ledger"):
        apply(make_plan([]), None)


def test_second_run_refused_naming_holder_and_since() -> None:
    backend = MemoryBackend()
    first = ledger(backend, host="laptop", pid=100)
    first.acquire()
    log: list[str] = []
    with pytest.raises(errors.LedgerLocked) as info:
        apply(make_plan(log), ledger(backend, host="bastion", pid=7))
    assert info.value.holder == "ops@laptop pid 100" and info.value.since == "2026-11-26T15:00:00Z"
    assert "ops@laptop pid 100" in str(info.value) and "since 2026-11-26T15:00:00Z" in str(info.value)
    assert log == []


def test_stale_lease_still_refused_until_broken_explicitly() -> None:
    backend = MemoryBackend()
    clock = Clock()
    first = ledger(backend, host="laptop", pid=100, clock=clock, lease_seconds=60)
    first.acquire()
    clock.now = T0 + dt.timedelta(hours=2)
    second = ledger(backend, host="bastion", pid=7, clock=clock)
    with pytest.raises(errors.LedgerLocked, match="lease expired at 2026-11-26T15:01:00Z.*break-lock"):
        second.acquire()
    old = second.break_lock("laptop run crashed, checked by ops")
    assert old is not None and old["holder"] == "ops@laptop pid 100"
    second.acquire()
    assert backend.doc["history"][0]["reason"] == "laptop run crashed, checked by ops"  # type: ignore[index]
    with pytest.raises(errors.LedgerLocked, match="no longer holds the lock"):
        first.record_done("namespace")


def test_dead_pid_on_this_host_is_recovered() -> None:
    backend = MemoryBackend()
    ledger(backend, host="laptop", pid=100).acquire()  # a kernel that then crashed
    rerun = ledger(backend, host="laptop", pid=200, alive=False)
    rerun.acquire()
    assert rerun.holds_lock()
    assert "no longer exists on this host" in rerun.notes[0]
    assert rerun.to_dict()["notes"] == rerun.notes


def test_live_pid_on_this_host_is_not_recovered() -> None:
    backend = MemoryBackend()
    ledger(backend, host="laptop", pid=100).acquire()
    with pytest.raises(errors.LedgerLocked):
        ledger(backend, host="laptop", pid=200, alive=True).acquire()


def test_acquire_is_reentrant_and_release_idempotent() -> None:
    backend = MemoryBackend()
    led = ledger(backend)
    led.acquire()
    since = backend.doc["lock"]["since"]  # type: ignore[index]
    led.acquire()
    assert backend.doc["lock"]["since"] == since  # type: ignore[index]
    led.release()
    led.release()
    assert backend.doc["lock"] is None  # type: ignore[index]


class RacyBackend(MemoryBackend):
    """Another writer sneaks in before our first save."""

    def __init__(self) -> None:
        super().__init__()
        self.raced = False

    def save(self, doc: Mapping[str, Any], version: str | None) -> str:
        if not self.raced:
            self.raced = True
            super().save({"steps": {"other": {"done_at": "x"}}}, version)
        return super().save(doc, version)


def test_compare_and_swap_retries_on_conflict() -> None:
    backend = RacyBackend()
    led = ledger(backend)
    led.acquire()
    assert led.holds_lock() and "other" in backend.doc["steps"]  # type: ignore[index]


def test_clear_forgets_done_steps() -> None:
    backend = MemoryBackend()
    apply(make_plan([]), ledger(backend))
    led = ledger(backend)
    led.clear()
    assert led.refresh()["steps"] == {}


@pytest.mark.parametrize(
    "runbook, name",
    [("30-upgrade", "atlbook-ledger-30-upgrade"), ("Index Recovery", "atlbook-ledger-index-recovery")],
    ids=["plain", "spaces"],
)
def test_ledger_name(runbook: str, name: str) -> None:
    assert ledger_name(runbook) == name


def test_a_completed_run_is_no_resume_point() -> None:
    backend = MemoryBackend()
    first: list[str] = []
    apply(make_plan(first), ledger(backend, pid=1))
    assert backend.doc["completed"]["run_id"]  # type: ignore[index]
    later: list[str] = []  # e.g. replicas 2 → 3 later: the same step ids must run again
    led = ledger(backend, pid=2)
    report = apply(make_plan(later), led)
    assert later == first and all(r.status != "skipped" for r in report.results)
    assert "completed" in led.notes[0] and "starting afresh" in led.notes[0]
    assert backend.doc["history"][-1]["event"] == "completed"  # type: ignore[index]


def test_a_done_step_asked_for_other_values_runs_again() -> None:
    backend = MemoryBackend()
    log: list[str] = []
    with pytest.raises(ApplyFailed):
        apply(make_plan(log, fail_at="service"), ledger(backend, pid=1))
    plan = make_plan(log)
    plan.step("statefulset").diffs = (FieldDiff("spec.replicas", 2, 4),)  # not what was done
    events: list[StepEvent] = []
    apply(plan, ledger(backend, pid=2), progress=events.append)
    assert log == ["namespace", "configmap", "statefulset", "service", "statefulset", "service", "post-check"]
    again = [e for e in events if e.step.id == "statefulset" and e.status == "start"]
    assert "with other changes; running it again" in again[0].message


def test_step_digest_ignores_old_values() -> None:
    a = Step("s", "x", kind="update", diffs=(FieldDiff("spec.image", "9.12.1", "9.12.3"),))
    b = Step("s", "x", kind="update", diffs=(FieldDiff("spec.image", "9.12.3", "9.12.3"),))
    c = Step("s", "x", kind="update", diffs=(FieldDiff("spec.image", "9.12.1", "9.12.4"),))
    assert a.digest() == b.digest() != c.digest()
