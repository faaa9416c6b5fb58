"""Every check of the catalogue, over hand-built evidence.

Aspects: each check fires on the evidence that shows its problem, naming the right subject and citing the
evidence (object names, metric values, log lines); none fires at warning or above on a healthy stack;
thresholds sit where their constants say; the catalogue has id/layer/title/severity/remedy for every
check and names a runbook in the remedies that have one; a check that raises becomes a finding.
"""

from __future__ import annotations

import dataclasses

import diagnosis_builders as b
import pytest

from atlbook.diagnosis import checks
from atlbook.diagnosis import evidence as ev
from atlbook.diagnosis.checks import kubernetes as k8s_checks
from atlbook.diagnosis.checks import platform, product
from atlbook.diagnosis.evidence import Severity


def run(e: ev.Evidence, check_id: str) -> list[checks.Finding]:
    return checks.run_checks(e, only=[check_id])


def test_healthy_stack_has_nothing_at_warning_or_above() -> None:
    findings = checks.run_checks(b.healthy())
    assert [f for f in findings if f.severity >= Severity.WARNING] == []


def test_healthy_stack_with_two_workers_per_zone_is_clean_too() -> None:
    findings = checks.run_checks(b.healthy(workers_per_zone=2))
    assert [f.key for f in findings if f.severity >= Severity.WARNING] == []


def test_catalogue_entries_are_complete() -> None:
    ids = [c.id for c in checks.catalogue()]
    assert len(ids) == len(set(ids)) >= 30
    for c in checks.catalogue():
        assert c.layer in checks.LAYERS
        assert c.title and c.severity_rule and c.remedy, c.id
        assert c.id.split(".")[0] in {
            "k8s",
            "placement",
            "network",
            "product",
            "database",
            "aws",
            "logs",
            "collect",
        }


@pytest.mark.parametrize(
    "check_id",
    [
        "k8s.pod-oomkilled",
        "k8s.pod-crash-loop",
        "k8s.pod-pending",
        "k8s.node-not-ready",
        "k8s.node-pressure",
        "k8s.pdb-blocking",
        "product.not-running",
        "product.cluster-node-missing",
        "product.mixed-versions",
        "product.zdu-stuck",
        "product.jira-index-drift",
        "product.jira-index-replication-lag",
        "database.pool-saturation",
        "database.max-connections",
        "aws.rds-cpu",
        "aws.rds-storage",
        "aws.efs-burst-credits",
        "placement.colocated",
        "network.ingress-no-stickiness",
        "network.no-default-deny",
        "logs.out-of-memory",
        "logs.too-many-open-files",
        "logs.db-pool-timeout",
        "logs.cache-replication-failure",
        "logs.hazelcast-split-brain",
        "logs.index-corruption",
    ],
)
def test_issue_catalogue_is_covered(check_id: str) -> None:
    assert check_id in checks.REGISTRY


def test_remedies_name_runbooks_where_one_exists() -> None:
    wanted = {
        "product.jira-index-drift": "50-index-recovery",
        "product.zdu-stuck": "30-upgrade",
        "k8s.pod-oomkilled": "20-capacity",
        "aws.efs-burst-credits": "10-provision",
        "database.connection-budget": "20-capacity",
    }
    for check_id, runbook in wanted.items():
        assert runbook in checks.REGISTRY[check_id].remedy


# --- Kubernetes ------------------------------------------------------------------------------------


def test_oomkilled_cites_container_and_exit_code() -> None:
    (f,) = run(b.pod_oom(b.healthy()), "k8s.pod-oomkilled")
    assert f.subject == "pod/jira-1" and f.severity == Severity.ERROR and f.product == "jira"
    assert any("OOMKilled (exit 137)" in line for line in f.evidence)
    assert any("OOMKilling" in line for line in f.evidence)
    assert f.workers == (b.worker(b.ZONES[1], 0),)


def test_oomkilled_now_cites_the_exit_code_before_the_restart() -> None:
    e = b.pod_oom(b.healthy())
    c = next(p for p in e.pods if p.name == "jira-1").containers[0]
    c.state, c.reason, c.exit_code, c.restart_count, c.last_reason = "terminated", "OOMKilled", 137, 0, None
    (f,) = run(e, "k8s.pod-oomkilled")
    assert any("terminated OOMKilled (exit 137) now" in line for line in f.evidence), f.evidence


def test_oomkilled_outside_the_window_is_history() -> None:
    e = b.pod_oom(b.healthy())
    e.pod("jira-1").containers[0].last_finished = b.minutes_ago(600)  # type: ignore[union-attr]
    e.events.clear()
    assert run(e, "k8s.pod-oomkilled") == []


def test_oomkilled_on_every_node_is_critical() -> None:
    e = b.pod_oom(b.pod_oom(b.healthy(), "jira-1"), "jira-0")
    assert {f.severity for f in run(e, "k8s.pod-oomkilled")} == {Severity.CRITICAL}


def test_crash_loop_by_backoff_and_restarts() -> None:
    e = b.healthy()
    c = e.pod("confluence-1").containers[0]  # type: ignore[union-attr]
    c.state, c.reason, c.restart_count, c.last_reason, c.last_exit_code = (
        "waiting",
        "CrashLoopBackOff",
        5,
        "Error",
        1,
    )
    e.logs["confluence-1"] = ev.LogTail(
        "confluence-1", "confluence", [], ["java.lang.NullPointerException at boot"]
    )
    (f,) = run(e, "k8s.pod-crash-loop")
    assert f.subject == "pod/confluence-1"
    assert any("restarts 5" in line for line in f.evidence)
    assert any("NullPointerException" in line for line in f.evidence)


def test_crash_loop_by_fatal_startup_error() -> None:
    (f,) = run(b.crash_loop(b.healthy()), "k8s.pod-crash-loop")
    assert f.subject == "pod/jira-1"
    assert any("Failed to initialise the shared home" in line for line in f.evidence)


def test_crash_loop_threshold() -> None:
    e = b.healthy()
    c = e.pod("jira-0").containers[0]  # type: ignore[union-attr]
    c.restart_count, c.last_finished = k8s_checks.CRASH_LOOP_RESTARTS - 1, b.minutes_ago(1)
    assert run(e, "k8s.pod-crash-loop") == []
    c.restart_count = k8s_checks.CRASH_LOOP_RESTARTS
    assert len(run(e, "k8s.pod-crash-loop")) == 1


def test_pending_cites_the_schedulers_reason() -> None:
    e = b.healthy()
    pod = e.pod("jira-1")
    assert pod is not None
    pod.phase, pod.node_name, pod.scheduled, pod.ready = "Pending", None, False, False
    pod.unschedulable_reason = (
        "0/3 nodes are available: 1 node(s) had volume node affinity conflict, 2 node(s) didn't match pod "
        "anti-affinity rules."
    )
    (f,) = run(e, "k8s.pod-pending")
    assert f.severity == Severity.ERROR and "volume node affinity conflict" in f.summary


def test_pending_reason_from_failed_scheduling_event() -> None:
    e = b.healthy()
    pod = e.pod("jira-1")
    assert pod is not None
    pod.phase, pod.node_name, pod.scheduled = "Pending", None, False
    e.events.append(
        ev.Event(
            "FailedScheduling",
            "0/3 nodes are available: 3 Insufficient memory.",
            "Warning",
            "Pod",
            "jira-1",
            4,
            b.minutes_ago(1),
        )
    )
    (f,) = run(e, "k8s.pod-pending")
    assert "Insufficient memory" in f.summary


def test_node_not_ready_lists_its_pods_and_zone() -> None:
    (f,) = run(b.node_lost(b.healthy()), "k8s.node-not-ready")
    assert f.severity == Severity.CRITICAL
    assert f.zones == ("us-east-1b",)
    assert set(f.pods) == {"jira-1", "confluence-0"}
    assert any("NodeStatusUnknown" in line for line in f.evidence)


def test_node_gone_from_the_list_with_pods_bound() -> None:
    e = b.healthy()
    gone = b.worker(b.ZONES[2], 0)
    e.nodes = [n for n in e.nodes if n.name != gone]
    (f,) = run(e, "k8s.node-not-ready")
    assert f.subject == f"node/{gone}" and "gone" in f.summary
    assert any("desired 3, registered 2" in line for line in f.evidence)


def test_zone_outage_needs_every_worker_of_the_zone() -> None:
    e = b.node_lost(b.healthy(workers_per_zone=2), b.worker(b.ZONES[0], 0))
    assert run(e, "k8s.zone-outage") == []
    b.node_lost(e, b.worker(b.ZONES[0], 1))
    (f,) = run(e, "k8s.zone-outage")
    assert f.subject == "zone/us-east-1a" and f.severity == Severity.CRITICAL


def test_single_worker_zone_loss_is_a_node_loss() -> None:
    e = b.node_lost(b.healthy(), b.worker(b.ZONES[0], 0))
    assert run(e, "k8s.zone-outage") == []
    assert len(run(e, "k8s.node-not-ready")) == 1


def test_node_pressure_and_cordon() -> None:
    e = b.healthy()
    e.nodes[0].pressure = ["MemoryPressure"]
    e.nodes[1].unschedulable = True
    found = {f.subject: f for f in run(e, "k8s.node-pressure")}
    assert found[f"node/{e.nodes[0].name}"].severity == Severity.WARNING
    assert found[f"node/{e.nodes[1].name}"].severity == Severity.INFO


def test_pdb_blocking() -> None:
    (f,) = run(b.pod_oom(b.healthy()), "k8s.pdb-blocking")
    assert f.subject == "pdb/jira" and "jira-1" in f.evidence[1]


def test_statefulset_and_service_endpoints() -> None:
    e = b.crash_loop(b.crash_loop(b.healthy(), "jira-0"), "jira-1")
    (sts,) = run(e, "k8s.statefulset-degraded")
    assert sts.severity == Severity.CRITICAL
    (svc,) = run(e, "k8s.service-no-endpoints")
    assert svc.subject == "service/jira" and svc.severity == Severity.CRITICAL


def test_pvc_not_bound() -> None:
    e = b.healthy()
    e.pvcs[0].phase = "Lost"
    (f,) = run(e, "k8s.pvc-not-bound")
    assert f.severity == Severity.ERROR


def test_nodegroup_health() -> None:
    e = b.healthy()
    e.nodegroups[0].status, e.nodegroups[0].health_issues = (
        "DEGRADED",
        ["AsgInstanceLaunchFailures: capacity"],
    )
    (f,) = run(e, "aws.nodegroup-health")
    assert "AsgInstanceLaunchFailures" in f.evidence[1]


def test_colocated_on_worker_and_zone() -> None:
    e = b.healthy()
    e.pod("jira-1").node_name = e.pod("jira-0").node_name  # type: ignore[union-attr]
    subjects = {f.subject for f in run(e, "placement.colocated")}
    assert subjects == {f"jira@node/{b.worker(b.ZONES[0], 0)}", "jira@zone/us-east-1a"}


# --- product ---------------------------------------------------------------------------------------


def test_ready_but_not_running() -> None:
    e = b.healthy()
    e.product_nodes["confluence-1"].state = "STARTING"
    (f,) = run(e, "product.not-running")
    assert f.severity == Severity.ERROR and "Ready but not RUNNING" in f.summary


def test_not_ready_and_not_running_is_a_warning() -> None:
    (f,) = run(b.crash_loop(b.healthy()), "product.not-running")
    assert f.severity == Severity.WARNING


def test_cluster_node_missing_and_dead() -> None:
    e = b.healthy()
    for node in e.product_nodes.values():
        if node.product == "bitbucket" and node.cluster_nodes:
            node.cluster_nodes = [c for c in node.cluster_nodes if c.node_id != "bitbucket-1"]
    found = run(e, "product.cluster-node-missing")
    assert [f.subject for f in found] == ["pod/bitbucket-1"] and "not in" in found[0].summary
    e2 = b.node_lost(b.healthy())
    subjects = {f.subject for f in run(e2, "product.cluster-node-missing")}
    assert {"pod/jira-1", "pod/confluence-0"} <= subjects


def test_stale_dead_entry_without_pod() -> None:
    e = b.healthy()
    for node in e.product_nodes.values():
        if node.product == "jira" and node.cluster_nodes is not None:
            node.cluster_nodes.append(ev.ClusterNodeView("jira-2", "ACTIVE", False, "11.3.1"))
    (f,) = run(e, "product.cluster-node-missing")
    assert f.subject == "cluster/jira/jira-2" and f.severity == Severity.WARNING


def test_mixed_versions_outside_upgrade_mode_is_an_error_inside_info() -> None:
    e = b.healthy()
    e.product_nodes["jira-1"].version = "11.3.2"
    (f,) = run(e, "product.mixed-versions")
    assert f.severity == Severity.ERROR and "11.3.1" in f.summary and "11.3.2" in f.summary
    for node in e.product_nodes.values():
        node.zdu_state = "MIXED"
    (f,) = run(e, "product.mixed-versions")
    assert f.severity == Severity.INFO


def test_zdu_stuck_on_the_new_revision() -> None:
    (f,) = run(b.bad_upgrade(b.healthy()), "product.zdu-stuck")
    assert f.subject == "statefulset/jira" and f.pods == ("jira-1",) and "11.3.2" in f.summary


def test_zdu_tasks_failed() -> None:
    e = b.healthy()
    for node in e.product_nodes.values():
        if node.product == "bitbucket":
            node.zdu_state = "UPGRADE_TASKS_FAILED"
    (f,) = run(e, "product.zdu-stuck")
    assert f.subject == "zdu/bitbucket"


@pytest.mark.parametrize(
    ("drift", "severity"),
    [
        (product.INDEX_DRIFT_TOLERANCE, None),
        (product.INDEX_DRIFT_TOLERANCE + 1, Severity.WARNING),
        (product.INDEX_DRIFT_ERROR + 1, Severity.ERROR),
    ],
    ids=["tolerated", "warning", "error"],
)
def test_index_drift_thresholds(drift: int, severity: Severity | None) -> None:
    e = b.healthy()
    idx = e.product_nodes["jira-0"].index
    assert idx is not None and idx.count_in_database is not None
    idx.count_in_index = idx.count_in_database - drift
    found = run(e, "product.jira-index-drift")
    assert [f.severity for f in found] == ([severity] if severity else [])
    if found:
        assert f"countInIndex={idx.count_in_index}" in found[0].evidence[0]


def test_unreadable_index_is_an_error() -> None:
    e = b.healthy()
    e.product_nodes["jira-1"].index.readable = False  # type: ignore[union-attr]
    (f,) = run(e, "product.jira-index-drift")
    assert f.severity == Severity.ERROR and "unreadable" in f.summary


def test_replication_lag() -> None:
    (f,) = run(b.index_corrupt(b.healthy()), "product.jira-index-replication-lag")
    assert f.subject == "pod/jira-0" and "queueSize=387" in f.evidence[0]


# --- database / AWS --------------------------------------------------------------------------------


def test_max_connections_and_pool_saturation() -> None:
    e = b.db_pool_exhausted(b.healthy())
    (top,) = run(e, "database.max-connections")
    assert top.severity == Severity.CRITICAL and "97/100" in top.summary
    pools = run(e, "database.pool-saturation")
    assert len(pools) == 6 and all("16 of its 20" in f.summary for f in pools)


def test_connection_budget_is_info_until_usage_grows() -> None:
    e = b.healthy()
    (f,) = run(e, "database.connection-budget")
    assert f.severity == Severity.INFO and "180" in f.summary
    e.db.max_connections = 500  # type: ignore[union-attr]
    assert run(e, "database.connection-budget") == []


def test_locks_and_long_transactions() -> None:
    e = b.healthy()
    assert e.db is not None
    e.db.waiting_locks = ["pid 4242 (jira-0) waits on clusterlockstatus for 95 s"]
    e.db.long_transactions = [("jira-0", 1200.0), ("confluence-1", platform.LONG_TRANSACTION_SECONDS - 1)]
    (locks,) = run(e, "database.waiting-locks")
    (longs,) = run(e, "database.long-transactions")
    assert "clusterlockstatus" in locks.evidence[0]
    assert longs.evidence == ["application_name jira-0: open 1200 s"]


def test_rds_status_cpu_storage() -> None:
    e = b.healthy()
    assert e.rds is not None
    e.rds.status = "storage-full"
    e.rds.metrics["CPUUtilization"] = b.series("CPUUtilization", [50, 91, 93, 95, 92, 94])
    e.rds.metrics["FreeStorageSpace"] = b.series("FreeStorageSpace", [0.5 * b.GIB])
    assert run(e, "aws.rds-status")[0].severity == Severity.CRITICAL
    assert run(e, "aws.rds-cpu")[0].severity == Severity.ERROR
    assert run(e, "aws.rds-storage")[0].severity == Severity.ERROR


def test_efs_exhausted_and_low() -> None:
    (f,) = run(b.efs_exhausted(b.healthy()), "aws.efs-burst-credits")
    assert f.severity == Severity.ERROR and "exhausted" in f.summary
    assert any("PercentIOLimit max 100" in line for line in f.evidence)
    e = b.healthy()
    e.efs[0].metrics["BurstCreditBalance"] = b.series("BurstCreditBalance", [1e11])
    e.efs[0].metrics["PercentIOLimit"] = b.series("PercentIOLimit", [10])
    (low,) = run(e, "aws.efs-burst-credits")
    assert low.severity == Severity.WARNING and "low" in low.summary


# --- network ---------------------------------------------------------------------------------------


def test_ingress_without_stickiness() -> None:
    e = b.healthy()
    e.ingresses[0].annotations.pop("nginx.ingress.kubernetes.io/affinity")
    (f,) = run(e, "network.ingress-no-stickiness")
    assert "affinity=cookie" in f.evidence[0]


def test_no_default_deny() -> None:
    e = b.healthy()
    e.network_policies = [p for p in e.network_policies if p.name != "default-deny"]
    (f,) = run(e, "network.no-default-deny")
    assert "jira-0" not in f.pods and "confluence-0" in f.pods  # jira is isolated by its own policy


# --- logs and sources ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("check_id", "line"),
    [
        (
            "logs.out-of-memory",
            'Exception in thread "http-nio-8080-exec-7" java.lang.OutOfMemoryError: Java heap space',
        ),
        ("logs.too-many-open-files", "java.io.IOException: Too many open files"),
        (
            "logs.db-pool-timeout",
            "HikariPool-1 - Connection is not available, request timed out after 30000ms.",
        ),
        ("logs.cache-replication-failure", "Error replicating cache com.atlassian.jira.cache to node jira-1"),
        ("logs.hazelcast-split-brain", "Hazelcast: Merging this cluster into [10.0.2.17]:5701 (split-brain)"),
        ("logs.index-corruption", "org.apache.lucene.index.CorruptIndexException: checksum failed"),
    ],
)
def test_log_signatures(check_id: str, line: str) -> None:
    e = b.healthy()
    e.logs["jira-1"] = ev.LogTail("jira-1", "jira", ["INFO all good", line])
    (f,) = run(e, check_id)
    assert f.subject == "pod/jira-1" and line in f.evidence[0]
    e.logs["jira-1"] = ev.LogTail("jira-1", "jira", ["INFO all good"])
    assert run(e, check_id) == []


def test_logs_are_quoted_redacted() -> None:
    line = ev.redact_line(
        "Cannot get a connection, pool error for postgresql://jira:s3cr3t@db:5432/jira password=hunter2"
    )
    assert "s3cr3t" not in line and "hunter2" not in line


def test_source_errors_are_findings() -> None:
    e = b.healthy()
    e.source_errors = [
        ev.SourceError("k8s:pods", "K8sForbidden: pods is forbidden"),
        ev.SourceError("aws:cloudwatch", "AwsThrottled: Rate exceeded"),
    ]
    found = {f.subject: f for f in run(e, "collect.source-failed")}
    assert found["source/k8s:pods"].severity == Severity.ERROR
    assert found["source/aws:cloudwatch"].severity == Severity.WARNING


def test_a_check_that_raises_becomes_a_finding(monkeypatch: pytest.MonkeyPatch) -> None:
    broken = dataclasses.replace(checks.REGISTRY["aws.rds-cpu"], fn=lambda e: 1 / 0)  # type: ignore[arg-type,return-value]
    monkeypatch.setitem(checks.REGISTRY, "aws.rds-cpu", broken)
    findings = checks.run_checks(b.healthy())
    assert [f.summary for f in findings if f.check == "collect.check-failed"] == [
        "check aws.rds-cpu raised ZeroDivisionError"
    ]
