"""Preflight gates of 30-upgrade, judged on built observations (no stack).

Aspects: a healthy cluster passes every gate (10 rows, in order); each gate fails on its own condition
with evidence naming it (table-driven); eligibility messages per product, with the maintenance-window
path offered when refused; a 1-node stack, mixed versions, a node not listed ACTIVE, ZDU not STABLE,
no PDB, no room, a drifting Jira index, another runbook's live lock or unfinished run, RDS not
available; a dead local holder's lock does not block; on resume the state gates give way to the
recorded upgrade and a different target is refused.
"""

from __future__ import annotations

import dataclasses

import pytest
import upgrade_builders as b

from atlbook.products import client as pclient
from atlbook.upgrade import gates, model

ORDER = ["eligible", "nodes", "active", "one-version", "zdu-stable", "pdb", "room", "index", "ledger", "rds"]


def _ledger(
    runbook: str, *, live: bool = False, unfinished: bool = False, dead: bool = False
) -> model.LedgerView:
    return model.LedgerView(
        runbook=runbook,
        configmap=f"atlassian/atlbook-ledger-{runbook}",
        holder="ops@host pid 1" if live else None,
        since="2026-11-26T15:00:00Z" if live else None,
        lease_until="2026-11-26T16:00:00Z" if live else None,
        live_lock=live,
        unfinished=unfinished,
        steps_done=3 if unfinished else 0,
        dead_holder=dead,
    )


@pytest.mark.parametrize("product", ["jira", "confluence", "bitbucket"])
def test_healthy_cluster_passes_every_gate(product) -> None:
    version = {"jira": "11.3.1", "confluence": "10.2.7", "bitbucket": "9.4.16"}[product]
    target = {"jira": "11.3.2", "confluence": "10.2.8", "bitbucket": "9.4.17"}[product]
    report = gates.evaluate(b.healthy(product, version=version), target)
    assert [g.id for g in report.gates] == ORDER
    assert report.passed, report.summary()
    assert report.from_version == version
    assert report.summary() == "all 10 gates passed"
    assert [r["result"] for r in report.rows()] == ["pass"] * 10


def _stale_version(obs: model.Observation) -> None:
    obs.cluster_nodes[0] = dataclasses.replace(obs.cluster_nodes[0], version="11.3.0")


def _not_active(obs: model.Observation) -> None:
    obs.cluster_nodes[1] = dataclasses.replace(obs.cluster_nodes[1], state="PASSIVE")


def _not_running(obs: model.Observation) -> None:
    obs.pods[0].status_state = "STARTING"


def _not_ready(obs: model.Observation) -> None:
    obs.pods[1].ready = False


def _one_node(obs: model.Observation) -> None:
    obs.replicas = 1
    obs.pods = obs.pods[:1]
    obs.cluster_nodes = obs.cluster_nodes[:1]


def _mixed(obs: model.Observation) -> None:
    obs.zdu = pclient.ZduState("MIXED", True, "11.3.1", "1")


def _no_pdb(obs: model.Observation) -> None:
    obs.pdbs = []


def _no_room(obs: model.Observation) -> None:
    obs.room[1] = {"pod": "jira-1", "fits": False, "evidence": "jira-1 would not fit on any schedulable node"}


def _drift(obs: model.Observation) -> None:
    obs.index["jira-0"] = pclient.IndexSummary("jira-0", None, True, 100, 60, None, None, {"jira-1": 400})


def _index_unreadable(obs: model.Observation) -> None:
    obs.index["jira-1"] = "ProductApiError: 503"


def _locked(obs: model.Observation) -> None:
    obs.ledgers = [_ledger("10-provision", live=True)]


def _unfinished(obs: model.Observation) -> None:
    obs.ledgers = [_ledger("50-index-recovery", unfinished=True)]


def _pdb_forbidden(obs: model.Observation) -> None:
    obs.pdbs = []
    obs.pdb_error = "K8sForbidden: poddisruptionbudgets.policy is forbidden: cannot list"


def _rds_busy(obs: model.Observation) -> None:
    obs.rds = {"identifier": "sandbox-db", "status": "modifying"}


def _rds_missing(obs: model.Observation) -> None:
    obs.rds, obs.rds_error = None, "NotFound: no RDS instance for stack 'sandbox'"


@pytest.mark.parametrize(
    "change, gate, words",
    [
        (_one_node, "nodes", "1 replica"),
        (_not_active, "active", "listed PASSIVE"),
        (_not_running, "active", "/status STARTING"),
        (_not_ready, "active", "not Ready"),
        (_stale_version, "one-version", "11.3.0, 11.3.1"),
        (_mixed, "zdu-stable", "MIXED"),
        (_no_pdb, "pdb", "no PDB"),
        (_pdb_forbidden, "pdb", "cannot be read: K8sForbidden: poddisruptionbudgets"),
        (_no_room, "room", "would not fit"),
        (_drift, "index", "drift 40"),
        (_index_unreadable, "index", "503"),
        (_locked, "ledger", "10-provision is running"),
        (_unfinished, "ledger", "unfinished run"),
        (_rds_busy, "rds", "modifying"),
        (_rds_missing, "rds", "no RDS instance"),
    ],
    ids=lambda v: v.__name__.strip("_") if callable(v) else None,
)
def test_each_gate_fails_on_its_condition(change, gate, words) -> None:
    obs = b.healthy()
    change(obs)
    report = gates.evaluate(obs, "11.3.2")
    assert not report.passed
    failed = report.gate(gate)
    assert not failed.ok and words in failed.evidence, failed.evidence
    assert failed.to_dict()["result"] == "FAIL"


@pytest.mark.parametrize(
    "product, old, new, ok, words",
    [
        ("jira", "11.3.1", "11.3.2", True, "same platform line"),
        ("jira", "10.3.4", "11.0.0", False, "crosses platform lines"),
        ("jira", "11.3.1", "11.3.1", False, "same version"),
        ("jira", "11.3.1", "11.2.0", False, "downgrade"),
        ("bitbucket", "9.4.16", "9.4.17", True, "bug-fix"),
        ("bitbucket", "9.4.16", "9.5.0", False, "only bug-fix upgrades"),
        ("confluence", "10.2.7", "10.3.0", True, "next feature version"),
        ("confluence", "10.2.7", "10.4.0", False, "more than one feature version"),
        ("confluence", "7.12.0", "7.13.0", False, "only bug-fix"),
    ],
)
def test_eligibility_messages(product, old, new, ok, words) -> None:
    gate = gates.eligibility(product, old, new, f"atlassian/{product}:{new}", 2)
    assert gate.ok is ok and words in gate.evidence
    if not ok:
        assert "maintenance-window path" in gate.evidence and f":{new}" in gate.evidence


def test_eligibility_without_versions() -> None:
    assert "no target_version" in gates.eligibility("jira", "11.3.1", "", "", 2).evidence
    assert "unknown" in gates.eligibility("jira", None, "11.3.2", "", 2).evidence
    assert not gates.eligibility("jira", "11.3.1", "eleven", "", 2).ok


def test_ineligible_target_fails_the_report() -> None:
    report = gates.evaluate(b.healthy(), "12.0.0")
    assert [g.id for g in report.failed] == ["eligible"]
    assert "FAILED: eligible" in report.summary()


def test_dead_local_holder_does_not_block() -> None:
    obs = b.healthy(ledgers=[_ledger("30-upgrade-jira", live=True, dead=True)])
    gate = gates.evaluate(obs, "11.3.2").gate("ledger")
    assert gate.ok and "recovered" in gate.evidence


def test_resume_judges_against_the_recorded_upgrade() -> None:
    obs = b.healthy()
    _mixed(obs)
    _stale_version(obs)
    _not_running(obs)
    obs.resume = b.facts()
    obs.ledgers = [_ledger("30-upgrade-jira", unfinished=True)]
    report = gates.evaluate(obs, "11.3.2")
    assert report.resume and report.passed, report.summary()
    assert [g.id for g in report.gates] == [
        "eligible",
        "nodes",
        "active",
        "pdb",
        "room",
        "index",
        "ledger",
        "rds",
    ]
    assert "resuming" in report.gate("eligible").evidence
    other = gates.evaluate(obs, "11.3.3")
    assert not other.gate("eligible").ok and "rollback: true" in other.gate("eligible").evidence


def test_no_statefulset() -> None:
    obs = model.Observation(
        product="jira", namespace="atlassian", statefulset=None, error="NotFound: no jira StatefulSet"
    )
    report = gates.evaluate(obs, "11.3.2")
    assert not report.passed and "no jira StatefulSet" in report.gate("nodes").evidence


def test_table_and_dict() -> None:
    report = gates.evaluate(b.healthy(), "11.3.2")
    assert list(report.table().columns) == ["check", "result", "evidence"]
    assert report.to_dict()["passed"] is True and len(report.to_dict()["gates"]) == 10
    assert "<table" in report._repr_html_()
