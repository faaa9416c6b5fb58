"""Runbook 30's logic against the sandbox: zero-downtime rolling upgrades of all three products.

Aspects: a 2-node and a 3-node upgrade of Jira, Confluence and Bitbucket finish with every node on the
new version, ZDU STABLE, post-checks green, and 0 failed requests of the sticky-session load through the
ingress; with the ``bad-upgrade`` fault the run halts after the first node, the other nodes keep serving
the old version, the record holds events, log tail, product state and both ways forward as plans, and
the rollback plan applied restores the old version everywhere (STABLE, partition back); after clearing
the fault a rerun retries the node and completes; an ineligible version, a 1-node stack, a missing PDB
and another runbook's live lock are refused before any change (audit log: no mutating call at all).
"""

from __future__ import annotations

import pytest
import upgrade_stack as stackbuilder

from atlbook import plan
from atlbook.clients import k8s
from atlbook.upgrade import runbook

PRODUCTS = ("jira", "confluence", "bitbucket")


def _sts(built) -> dict:
    return k8s.get(built.clients.k8s, "StatefulSet", built.product, stackbuilder.NAMESPACE)


def _assert_upgraded(built, result: runbook.UpgradeResult, replicas: int) -> None:
    assert result.outcome == "upgraded", result.error
    want = built.info["next"]
    assert built.versions() == {f"{built.product}-{i}": want for i in range(replicas)}
    assert [r["ok"] for r in result.post_checks] == [True] * replicas
    assert all(r["version"] == want and r["state"] == "ACTIVE" for r in result.post_checks)
    zdu = built.prepare().observation.zdu
    assert zdu is not None and zdu.state == "STABLE"
    load = result.load
    assert load is not None and load.requests > 0
    assert load.failures == 0, load.failed_samples()
    # sessions stay pinned, and are re-pinned to another node when theirs restarts
    assert load.overall()["repins"] >= 1
    node_phases = {r["phase"] for r in load.stats() if r["phase"].startswith("node-")}
    assert node_phases == {f"node-{built.product}-{i}" for i in range(replicas)}
    assert result.overhead["overhead_pct"] is not None
    sts = _sts(built)
    assert sts["spec"]["updateStrategy"]["rollingUpdate"]["partition"] == 0


@pytest.mark.parametrize("product", PRODUCTS)
def test_two_node_upgrade_under_load(stack, product) -> None:
    built = stack(product, 2)
    up = built.prepare()
    assert up.mode == "upgrade" and up.gates.passed, up.gates.summary()
    mark = built.box.audit.mark()
    assert runbook.confirm_and_run(up, apply=False) is None  # headless, apply: false → plan only
    assert built.box.audit.mutations(since=mark) == []  # preparing and planning changed nothing
    result = runbook.run(up)
    _assert_upgraded(built, result, 2)
    assert [r["status"] for r in result.report["results"]] == ["done"] * len(up.plan.steps)
    aws = [e.verb for e in built.box.audit.mutations(since=mark, source="aws")]
    assert aws.count("rds:CreateDBSnapshot") == 1
    # once the upgrade tasks ran, a rollback is refused: restore the snapshot instead
    back = built.prepare(rollback=True)
    assert back.plan.is_blocked and "restore RDS snapshot" in back.plan.blocked[0][1]
    mark = built.box.audit.mark()
    assert runbook.run(back).outcome == "refused"
    assert built.box.audit.mutations(since=mark) == []


@pytest.mark.parametrize("product", PRODUCTS)
def test_three_node_upgrade_under_load(stack, product) -> None:
    built = stack(product, 3)
    result = built.upgrade()
    _assert_upgraded(built, result, 3)
    order = [r["id"] for r in result.report["results"] if r["id"].startswith("node-")]
    assert order == [f"node-{product}-2", f"node-{product}-1", f"node-{product}-0"]


def test_bad_upgrade_halts_after_the_first_node_and_rolls_back(stack) -> None:
    built = stack("jira", 3)
    old, new = built.info["version"], built.info["next"]
    built.box.fault("bad-upgrade", f"jira:{new}")
    result = built.upgrade()
    assert result.outcome == "halted"
    assert result.halt is not None and result.halt["step"] == "node-jira-2"
    statuses = {r["id"]: r["status"] for r in result.report["results"]}
    assert statuses["node-jira-2"] == "failed" and statuses["node-jira-1"] == "not-run"
    # the other nodes keep serving the old version
    versions = built.versions()
    assert versions["jira-0"] == old and versions["jira-1"] == old and versions["jira-2"] == new
    serving = {p["pod"]: (p["ready"], p["status"]) for p in result.halt["pods"]}
    assert serving["jira-0"] == serving["jira-1"] == (True, "RUNNING")
    assert serving["jira-2"][0] is False
    assert result.load is not None and result.load.failures == 0, result.load.failed_samples()
    # the record: events, the failing pod's log tail, product state, both ways forward as plans
    assert any("FATAL" in line or "ERROR" in line for line in result.halt["log_tail"])
    assert isinstance(result.halt["events"], list)
    assert result.halt["zdu"]["state"] == "MIXED"
    ways = result.ways_forward
    assert ways is not None
    assert "retry-jira-2-1" in [s["id"] for s in ways["retry"]["plan"]["steps"]]
    assert [s["id"] for s in ways["rollback"]["plan"]["steps"]] == [
        "rb-hold-partition",
        "rb-set-image",
        "rb-node-jira-2",
        "rb-partition",
        "rb-cancel",
        "rb-verify",
    ]
    with pytest.raises(Exception, match="halted at node-jira-2"):
        result.raise_for_outcome()

    back = built.upgrade(rollback=True)
    assert back.outcome == "rolled-back", back.error
    assert built.versions() == {"jira-0": old, "jira-1": old, "jira-2": old}
    assert back.load is not None and back.load.failures == 0, back.load.failed_samples()
    sts = _sts(built)
    assert sts["spec"]["template"]["spec"]["containers"][0]["image"].endswith(f":{old}")
    assert sts["spec"]["updateStrategy"]["rollingUpdate"]["partition"] == 0
    after = built.prepare(new)
    assert after.observation.zdu is not None and after.observation.zdu.state == "STABLE"
    assert after.mode == "upgrade" and after.observation.resume is None  # the ledger starts afresh


def test_retry_after_the_cause_is_fixed_completes(stack) -> None:
    built = stack("confluence", 2)
    new = built.info["next"]
    built.box.fault("bad-upgrade", f"confluence:{new}")
    assert built.upgrade(measure=False).outcome == "halted"
    built.box.fault("bad-upgrade", f"confluence:{new}", clear=True)
    up = built.prepare()
    assert up.mode == "resume"
    assert "retry-confluence-1-1" in [s.id for s in up.plan.steps]
    result = runbook.run(up)
    assert result.outcome == "upgraded", result.error
    statuses = {r["id"]: r["status"] for r in result.report["results"]}
    assert statuses["preflight"] == statuses["set-image"] == "skipped"
    assert statuses["retry-confluence-1-1"] == statuses["node-confluence-1"] == "done"
    assert built.versions() == {"confluence-0": new, "confluence-1": new}
    assert result.load is not None and result.load.failures == 0


def _refused(built, target, gate: str) -> runbook.Upgrade:
    mark = built.box.audit.mark()
    up = built.prepare(target)
    assert up.refused and gate in {g.id for g in up.gates.failed}, up.gates.summary()
    result = runbook.run(up)
    assert result.outcome == "refused"
    assert built.box.audit.mutations(since=mark) == []  # no Kubernetes or AWS change, not even the ledger
    with pytest.raises(Exception, match="refused before any change"):
        result.raise_for_outcome()
    return up


def test_ineligible_version_and_a_busy_stack_are_refused(stack) -> None:
    built = stack("jira", 2)
    up = _refused(built, "12.0.0", "eligible")
    assert [g.id for g in up.gates.failed] == ["eligible"]
    evidence = up.gates.gate("eligible").evidence
    assert "platform" in evidence and "maintenance-window path" in evidence
    other = plan.Ledger(
        plan.ConfigMapBackend(built.clients, stackbuilder.NAMESPACE, "10-provision"),
        runbook="10-provision",
        identity={"user": "ops", "host": "elsewhere", "pid": 4242},
    )
    other.acquire()
    up = _refused(built, None, "ledger")
    assert "10-provision is running" in up.gates.gate("ledger").evidence


def test_one_node_stack_without_pdb_is_refused(stack) -> None:
    built = stack("bitbucket", 1, pdb=False)
    up = _refused(built, None, "nodes")
    assert {g.id for g in up.gates.failed} == {"nodes", "pdb"}
    assert "1 replica" in up.gates.gate("nodes").evidence
