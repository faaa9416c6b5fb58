"""Runbook 30 resumes: the run is killed at every step and rerun until done; no step runs twice.

Aspects: a kill right after each step's change (its action ran, the ledger does not know yet) — and for
the node steps also right after the partition was lowered, while the pod restarts — followed by a rerun
from a fresh ``prepare`` (as after a kernel restart) walks every step of the plan; the final run completes
the upgrade; the ledger shows each step done exactly once (every later run reports it skipped); the
sandbox audit log shows exactly the mutating calls of one uninterrupted upgrade (one hold, one image,
one partition step per node, one RDS snapshot) — no change was repeated. A kill between steps (the lock
left by a process that no longer exists) is recovered by the rerun.
"""

from __future__ import annotations

from collections import Counter

import upgrade_stack as stackbuilder

from atlbook import plan
from atlbook.upgrade import model, runbook, sequence


class Killed(BaseException):
    """Stands for the kernel dying: not an Exception, so nothing on the way catches it."""


def test_kill_at_every_step_then_rerun_never_repeats_a_step(stack) -> None:
    built = stack("jira", 2)
    first = built.prepare()
    facts = first.facts
    assert facts is not None
    steps = sequence.upgrade_step_ids(facts)
    kill_points = []
    for step in steps:
        kill_points.append(step)
        if step.startswith("node-"):
            kill_points.append(step + ":changed")
    mark = built.box.audit.mark()
    done_in: dict[str, list[int]] = {}
    runs = 0
    for point in [*kill_points, None]:

        def kill(step_id: str, point=point) -> None:
            if step_id == point:
                raise Killed(step_id)

        up = built.prepare(after_action=kill)
        if runs == 1:  # killed in preflight before it was recorded: nothing changed, a fresh start
            assert up.mode == "upgrade"
            facts = up.facts
        elif runs > 1:  # from here on the ledger holds the upgrade: every rerun resumes the same one
            assert up.mode == "resume" and up.facts == facts
        runs += 1
        ledger = plan.Ledger(
            plan.ConfigMapBackend(built.clients, stackbuilder.NAMESPACE, model.runbook_name("jira")),
            runbook=model.runbook_name("jira"),
        )
        killed = False
        try:
            result = runbook.run(up, measure_availability=False, ledger=ledger)
        except Killed:
            killed = True
        ledger.refresh()
        for step_id, rec in ledger.steps.items():
            runs_of = done_in.setdefault(step_id, [])
            if rec["run_id"] not in runs_of:
                runs_of.append(rec["run_id"])
        if killed:
            continue
        assert point is None, f"the run was not killed at {point}"
        assert result.outcome == "upgraded", result.error
        statuses = Counter(r["status"] for r in result.report["results"])
        assert statuses == {"skipped": len(steps) - 1, "done": 1}  # only post-checks was left
    assert runs == len(kill_points) + 1
    # every step done by exactly one run
    assert sorted(done_in) == sorted(steps)
    assert all(len(run_ids) == 1 for run_ids in done_in.values()), done_in
    # the audit log: the mutations of exactly one upgrade
    k8s_calls = [(e.verb, e.path.split("?")[0]) for e in built.k8s_mutations(mark)]
    sts_patches = [c for c in k8s_calls if c[0] == "PATCH" and c[1].endswith("/statefulsets/jira")]
    assert len(sts_patches) == 2 + 2, k8s_calls  # hold, image, one partition step per node
    assert [c for c in k8s_calls if c[0] == "DELETE"] == []
    aws = [e.verb for e in built.box.audit.mutations(since=mark, source="aws")]
    assert aws.count("rds:CreateDBSnapshot") == 1
    assert set(built.versions().values()) == {built.info["next"]}


def test_lock_of_a_dead_run_is_recovered(stack) -> None:
    built = stack("bitbucket", 2)
    dead = plan.Ledger(
        plan.ConfigMapBackend(built.clients, stackbuilder.NAMESPACE, model.runbook_name("bitbucket")),
        runbook=model.runbook_name("bitbucket"),
        identity={"user": "ops", "host": __import__("socket").gethostname(), "pid": 999_999},
        pid_alive=lambda pid: False,
    )

    def kill(step_id: str) -> None:
        if step_id == "set-image":
            raise Killed(step_id)

    up = built.prepare(after_action=kill)
    try:
        runbook.run(up, measure_availability=False, ledger=dead)
    except Killed:
        pass
    # leave the lock behind as a crashed kernel would
    dead.acquire()
    up = built.prepare()
    assert up.mode == "resume"
    result = runbook.run(up, measure_availability=True)
    assert result.outcome == "upgraded", result.error
    assert result.load is not None and result.load.failures == 0
    notes = result.report["ledger"]["notes"]
    assert any("no longer exists" in n for n in notes)
