"""Diagnosis against the sandbox: each fault injected alone is named first, with the right evidence.

Aspects: a healthy stack gives nothing at warning or above; every sandbox fault (node-lost, az-outage,
pod-oom, crash-loop, efs-credits-exhausted, db-pool-exhausted, index-corrupt, bad-upgrade) makes its
check the most likely cause and cites the evidence; two faults together are both reported as causes;
an alert payload scopes the run; the run is read-only (the audit log of mutating calls stays empty) and
its Kubernetes calls are one LIST per kind whatever the number of pods.
"""

from __future__ import annotations

import json
import pathlib

import diagnosis_stack as stackbuilder

from atlbook import diagnosis
from atlbook.clients import k8s
from atlbook.diagnosis import collect
from atlbook.diagnosis.evidence import Severity

ALERTS = pathlib.Path(__file__).resolve().parents[2] / "data" / "alerts"


def test_healthy_stack_is_clean_and_read_only(stack) -> None:
    built = stack(products=("jira", "confluence"))
    mark = built.box.audit.mark()
    result = built.diagnose()
    assert built.box.audit.mutations(since=mark) == []
    assert result.healthy, result.explain() + str([f.key for f in result.at_least(Severity.WARNING)])
    assert result.most_likely is None
    calls = result.api_calls
    assert all(calls[f"k8s:list {kind}"] == 1 for kind in (*collect.LIST_KINDS, "Node"))
    assert calls["product:/status"] == 4 and calls["product:index summary"] == 2
    assert not any(k.startswith("k8s:get") for k in calls)
    assert result.evidence.db is not None and result.evidence.rds is not None and result.evidence.efs


def test_node_lost(stack) -> None:
    built = stack()
    node = built.box.fault("node-lost")
    result = built.first("k8s.node-not-ready")
    top = result.most_likely
    assert top.subject == f"node/{node}"
    assert any("Ready=Unknown" in line for line in top.evidence)


def test_az_outage(stack) -> None:
    built = stack(per_zone=2)
    zone = built.box.fault("az-outage", "us-east-1b")
    result = built.first("k8s.zone-outage")
    assert result.most_likely.subject == f"zone/{zone}"
    lost = [f for f in result.findings if f.check == "k8s.node-not-ready"]
    assert len(lost) == 2 and all(result.most_likely.key in f.explained_by for f in lost)


def test_pod_oom(stack) -> None:
    built = stack()
    pod = built.box.fault("pod-oom", "jira-1")
    # the kubelet's OOMKilling event can be listed before the pod status shows the kill (a status sync
    # later, as on a real node): wait for the check to rank first *with* the container's exit code
    result = built.until(
        lambda d: (
            d.most_likely is not None
            and d.most_likely.check == "k8s.pod-oomkilled"
            and any("OOMKilled (exit 137)" in line for line in d.most_likely.evidence)
        ),
        what="k8s.pod-oomkilled first, citing exit 137",
    )
    assert result.most_likely.subject == f"pod/{pod}"


def test_crash_loop(stack) -> None:
    built = stack()
    built.box.fault("crash-loop", "jira-1")
    result = built.first("k8s.pod-crash-loop")
    assert result.most_likely.subject == "pod/jira-1"
    assert any("Failed to initialise the shared home" in line for line in result.most_likely.evidence)


def test_efs_credits_exhausted(stack) -> None:
    built = stack()
    built.box.fault("efs-credits-exhausted")
    result = built.first("aws.efs-burst-credits")
    assert "exhausted" in result.most_likely.summary
    assert any("BurstCreditBalance 0.00 GiB" in line for line in result.most_likely.evidence)


def test_db_pool_exhausted(stack) -> None:
    built = stack()
    built.box.fault("db-pool-exhausted")
    result = built.until(
        lambda d: (
            d.most_likely is not None
            and d.most_likely.check == "database.max-connections"
            and any(f.check == "logs.db-pool-timeout" for f in d.findings)
        ),
        what="max-connections first, pool timeouts in the logs",
    )
    timeouts = [f for f in result.findings if f.check == "logs.db-pool-timeout"]
    assert all(result.most_likely.key in f.explained_by for f in timeouts)


def test_index_corrupt(stack) -> None:
    built = stack()
    pod = built.box.fault("index-corrupt", "jira-0")
    result = built.first("product.jira-index-drift")
    assert result.most_likely.subject == f"pod/{pod}"
    assert "50-index-recovery" in result.most_likely.remedy
    assert any("countInIndex=" in line for line in result.most_likely.evidence)


def test_bad_upgrade(stack) -> None:
    built = stack()
    built.box.fault("bad-upgrade", "11.3.2")
    k8s.patch(
        built.clients.k8s,
        "StatefulSet",
        "jira",
        {
            "spec": {
                "template": {
                    "spec": {"containers": [{"name": "jira", "image": "atlassian/jira-software:11.3.2"}]}
                }
            }
        },
        stackbuilder.NAMESPACE,
    )
    result = built.first("product.zdu-stuck")
    assert "11.3.2" in result.most_likely.summary
    assert any(
        f.check == "product.mixed-versions" and result.most_likely.key in f.explained_by
        for f in result.findings
    )


def test_two_faults_are_both_causes(stack) -> None:
    built = stack()
    built.box.fault("efs-credits-exhausted")
    built.box.fault("index-corrupt", "jira-0")
    built.until(
        lambda d: {"aws.efs-burst-credits", "product.jira-index-drift"} <= {f.check for f in d.causes},
        what="both causes",
    )


def test_node_lost_and_pod_oom_are_both_causes(stack) -> None:
    built = stack(products=("jira", "confluence"))
    built.box.fault("pod-oom", "confluence-1")
    built.box.fault("node-lost", built.diagnose().evidence.pod("jira-0").node_name)
    built.until(
        lambda d: {"k8s.node-not-ready", "k8s.pod-oomkilled"} <= {f.check for f in d.causes},
        what="node loss and OOM both causes",
    )


def test_alert_scopes_the_run(stack) -> None:
    built = stack()
    sc = diagnosis.scope.scope(str(ALERTS / "opsgenie-webhook-jira-index.json"))
    assert (sc.product, sc.pod) == ("jira", "jira-0")
    result = diagnosis.diagnose(built.clients, built.spec, sc)
    assert result.scope.pod == "jira-0"
    assert "jira-0" in result.evidence.logs  # the scoped node's log is read even when healthy
    assert json.loads(json.dumps(result.summary()))["scope"]["source"] == "opsgenie"


def test_pending_pod_cites_the_schedulers_reason(stack) -> None:
    built = stack()
    k8s.patch(built.clients.k8s, "StatefulSet", "jira", {"spec": {"replicas": 4}}, stackbuilder.NAMESPACE)
    result = built.until(
        lambda d: any(f.check == "k8s.pod-pending" for f in d.findings), what="a Pending jira pod"
    )
    pending = next(f for f in result.findings if f.check == "k8s.pod-pending")
    assert pending.product == "jira" and pending.severity == Severity.ERROR
    assert "anti-affinity" in pending.summary or "nodes are available" in pending.summary, pending.summary
