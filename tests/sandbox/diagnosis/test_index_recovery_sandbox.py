"""Runbook 50's logic against the sandbox: index-corrupt fixed end to end.

Aspects: diagnosis names the corrupt node; the assessment finds it bad and the other node healthy; the
plan is snapshot → restart → verify (nothing changed before apply); applying it under the ConfigMap
ledger fixes the index (diagnosis clean again), reports the seconds taken, clears the ledger; a 409
(snapshot already running) is waited out; with no healthy node the plan is blocked.
"""

from __future__ import annotations

import diagnosis_stack as stackbuilder
import pytest

from atlbook import errors
from atlbook.clients import k8s
from atlbook.products import client as pclient
from atlbook.remediation import index_recovery

FAST = index_recovery.Options(timeout=30.0, poll=0.2)


def test_index_corrupt_fixed_end_to_end(stack) -> None:
    built = stack()
    built.box.fault("index-corrupt", "jira-0")
    built.first("product.jira-index-drift")
    assessment = index_recovery.assess(built.clients, built.spec, options=FAST)
    assert assessment.bad == ["jira-0"] and assessment.healthy == ["jira-1"]
    old_uid = assessment.nodes["jira-0"].uid
    recovery = index_recovery.build_plan(built.clients, built.spec, assessment, FAST)
    assert [s.id for s in recovery.steps] == ["healthy-node", "snapshot", "restart-jira-0", "verify-jira-0"]
    assert not recovery.is_blocked and recovery.counts["delete"] == 1
    mark = built.box.audit.mark()
    assert built.box.audit.mutations(since=mark) == []  # planning changed nothing

    result = index_recovery.run(built.clients, built.spec, recovery, assessment, options=FAST)
    assert result.applied and result.seconds > 0
    assert [s["status"] for s in result.steps] == ["checked", "done", "done", "checked"]
    assert all(row["verdict"] == "healthy" for row in result.after)
    new = k8s.get(built.clients.k8s, "Pod", "jira-0", stackbuilder.NAMESPACE)
    assert new["metadata"]["uid"] != old_uid
    built.until(
        lambda d: not any(f.check == "product.jira-index-drift" for f in d.findings),
        what="no index drift after recovery",
    )
    ledger = k8s.get(
        built.clients.k8s, "ConfigMap", "atlbook-ledger-50-index-recovery", stackbuilder.NAMESPACE
    )
    assert "restart-jira-0" not in str(ledger.get("data"))  # cleared after success


def test_snapshot_already_running_is_waited_out(stack) -> None:
    built = stack()
    built.box.fault("index-corrupt", "jira-1")
    auth = pclient.auth_from_spec(built.spec.products.jira.admin, built.clients)
    donor = pclient.ProductClient.for_pod(built.clients, "jira", stackbuilder.NAMESPACE, "jira-0", auth)
    assert donor.index_snapshot_create().accepted  # someone else's snapshot is running now
    assessment = index_recovery.assess(built.clients, built.spec, node="jira-1", options=FAST)
    recovery = index_recovery.build_plan(built.clients, built.spec, assessment, FAST)
    result = index_recovery.run(built.clients, built.spec, recovery, assessment, options=FAST)
    assert "after waiting for one already running" in result.steps[1]["message"]


def test_no_healthy_node_blocks_the_plan(stack) -> None:
    built = stack()
    built.box.fault("index-corrupt", "jira-0")
    built.box.fault("index-corrupt", "jira-1")
    built.until(
        lambda d: len([f for f in d.findings if f.check == "product.jira-index-drift"]) == 2,
        what="both nodes drift",
    )
    assessment = index_recovery.assess(built.clients, built.spec, options=FAST)
    assert assessment.healthy == [] and sorted(assessment.bad) == ["jira-0", "jira-1"]
    recovery = index_recovery.build_plan(built.clients, built.spec, assessment, FAST)
    assert recovery.is_blocked
    with pytest.raises(errors.PlanError, match="no healthy Jira node"):
        index_recovery.run(built.clients, built.spec, recovery, assessment, options=FAST)


def test_unknown_node_is_refused(stack) -> None:
    built = stack()
    with pytest.raises(errors.PreflightFailed, match="not a Jira pod"):
        index_recovery.assess(built.clients, built.spec, node="jira-7")
