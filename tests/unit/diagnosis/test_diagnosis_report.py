"""Presentation, parsing and the CLI command.

Aspects: findings table columns and order; one section per layer with findings; the timeline is a
matplotlib Figure with four aligned axes plotting restarts, readiness, warning events and the RDS/EFS
metrics; the summary is JSON-serialisable; the Kubernetes wire-format parsers keep what checks read;
``pods_in_trouble`` picks only troubled pods; ``atlbook checks`` lists the catalogue (text, JSON, layer).
"""

from __future__ import annotations

import argparse
import json

import diagnosis_builders as b
import pytest
from matplotlib.figure import Figure

from atlbook import diagnosis
from atlbook.diagnosis import cli, collect
from atlbook.diagnosis import evidence as ev


def test_table_and_sections() -> None:
    d = diagnosis.analyse(b.node_lost(b.healthy()))
    table = d.table()
    assert list(table.columns) == [
        "rank",
        "severity",
        "layer",
        "check",
        "subject",
        "summary",
        "remedy",
        "evidence",
        "reasoning",
    ]
    assert list(table["rank"]) == sorted(table["rank"])
    assert table.iloc[0]["check"] == "k8s.node-not-ready"
    sections = d.sections()
    assert {"kubernetes", "product", "collection"} <= set(sections)
    assert all(len(t) for t in sections.values())
    assert d.table(min_severity=ev.Severity.CRITICAL)["severity"].eq("critical").all()


def test_timeline_figure() -> None:
    e = b.pod_oom(b.db_pool_exhausted(b.efs_exhausted(b.node_lost(b.healthy()))))
    d = diagnosis.analyse(e)
    fig = d.timeline()
    assert isinstance(fig, Figure)
    axes = fig.get_axes()
    assert len(axes) == 4
    k8s_ax, cpu_ax, conn_ax, efs_ax = axes
    labels = {t.get_text() for t in k8s_ax.get_yticklabels()}
    assert {"jira-1", f"node/{b.worker(b.ZONES[1], 0)}"} <= labels
    assert k8s_ax.collections, "restarts/readiness/events are plotted"
    assert cpu_ax.lines and conn_ax.lines and efs_ax.lines
    assert max(efs_ax.lines[0].get_ydata()) > 300  # GiB
    fig.savefig(__import__("io").BytesIO(), format="png")


def test_timeline_without_metrics_still_draws() -> None:
    e = b.healthy()
    e.rds, e.efs = None, []
    fig = diagnosis.analyse(e).timeline()
    assert len(fig.get_axes()) == 4


def test_summary_is_json() -> None:
    d = diagnosis.analyse(b.index_corrupt(b.healthy()))
    doc = json.loads(json.dumps(d.summary()))
    assert doc["most_likely"]["check"] == "product.jira-index-drift"
    assert doc["healthy"] is False and doc["counts"]["error"] >= 1
    assert "50-index-recovery" in d.explain()


# --- parsers ---------------------------------------------------------------------------------------

POD = {
    "metadata": {
        "name": "jira-1",
        "namespace": "atlassian",
        "creationTimestamp": "2026-11-26T10:00:00Z",
        "labels": {"app.kubernetes.io/name": "jira", "controller-revision-hash": "jira-5d8f7c"},
        "ownerReferences": [{"kind": "StatefulSet", "name": "jira"}],
    },
    "spec": {
        "nodeName": "ip-10-0-2-10.ec2.internal",
        "containers": [{"name": "jira", "image": "atlassian/jira-software:11.3.1"}],
    },
    "status": {
        "phase": "Running",
        "conditions": [
            {"type": "Ready", "status": "False", "lastTransitionTime": "2026-11-26T11:58:00Z"},
            {"type": "PodScheduled", "status": "True"},
        ],
        "containerStatuses": [
            {
                "name": "jira",
                "ready": False,
                "restartCount": 2,
                "image": "atlassian/jira-software:11.3.1",
                "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 20s"}},
                "lastState": {
                    "terminated": {
                        "exitCode": 137,
                        "reason": "OOMKilled",
                        "finishedAt": "2026-11-26T11:58:00Z",
                    }
                },
            }
        ],
    },
}


def test_pod_from_json() -> None:
    pod = ev.pod_from_json(POD)
    assert (pod.product, pod.owner, pod.revision, pod.ready, pod.image_tag) == (
        "jira",
        "jira",
        "jira-5d8f7c",
        False,
        "11.3.1",
    )
    c = pod.containers[0]
    assert (c.state, c.reason, c.last_reason, c.last_exit_code, c.restart_count) == (
        "waiting",
        "CrashLoopBackOff",
        "OOMKilled",
        137,
        2,
    )
    assert c.last_finished is not None and c.last_finished.tzinfo is not None
    assert c.exit_code is None  # waiting: only a terminated state has an exit code
    killed = {
        **POD["status"]["containerStatuses"][0],
        "state": {"terminated": {"reason": "OOMKilled", "exitCode": 137}},
    }
    now = ev.pod_from_json({**POD, "status": {**POD["status"], "containerStatuses": [killed]}}).containers[0]
    assert (now.state, now.reason, now.exit_code) == ("terminated", "OOMKilled", 137)


def test_pending_pod_and_node_from_json() -> None:
    pending = ev.pod_from_json(
        {
            "metadata": {"name": "confluence-1", "labels": {"app.kubernetes.io/name": "confluence"}},
            "spec": {"containers": [{"name": "confluence", "image": "atlassian/confluence:10.2.7"}]},
            "status": {
                "phase": "Pending",
                "conditions": [
                    {
                        "type": "PodScheduled",
                        "status": "False",
                        "reason": "Unschedulable",
                        "message": "0/3 nodes are available: 3 Insufficient cpu.",
                    }
                ],
            },
        }
    )
    assert not pending.scheduled and "Insufficient cpu" in (pending.unschedulable_reason or "")
    assert pending.containers[0].state == "waiting"
    node = ev.node_from_json(
        {
            "metadata": {
                "name": "n1",
                "labels": {
                    "topology.kubernetes.io/zone": "us-east-1a",
                    "eks.amazonaws.com/nodegroup": "apps",
                },
            },
            "spec": {"unschedulable": True},
            "status": {
                "conditions": [
                    {"type": "Ready", "status": "Unknown", "reason": "NodeStatusUnknown"},
                    {"type": "DiskPressure", "status": "True"},
                ]
            },
        }
    )
    assert (
        node.zone,
        node.ready,
        node.not_ready_reason,
        node.pressure,
        node.unschedulable,
        node.nodegroup,
    ) == ("us-east-1a", None, "NodeStatusUnknown", ["DiskPressure"], True, "apps")


def test_other_parsers() -> None:
    pdb = ev.pdb_from_json(
        {
            "metadata": {"name": "jira"},
            "spec": {"selector": {"matchLabels": {"a": "b"}}},
            "status": {"disruptionsAllowed": 0, "currentHealthy": 1, "desiredHealthy": 1, "expectedPods": 2},
        }
    )
    assert (pdb.disruptions_allowed, pdb.expected_pods, pdb.selector) == (0, 2, {"a": "b"})
    eps = ev.endpoints_from_json(
        {
            "metadata": {"name": "jira"},
            "subsets": [
                {
                    "addresses": [{"ip": "10.0.0.1", "targetRef": {"name": "jira-0"}}],
                    "notReadyAddresses": [{"ip": "10.0.0.2", "targetRef": {"name": "jira-1"}}],
                }
            ],
        }
    )
    assert (eps.ready, eps.not_ready) == (["jira-0"], ["jira-1"])
    ing = ev.ingress_from_json(
        {
            "metadata": {"name": "atl", "annotations": {"x": "y"}},
            "spec": {
                "ingressClassName": "nginx",
                "rules": [
                    {
                        "http": {
                            "paths": [
                                {"backend": {"service": {"name": "jira"}}},
                                {"backend": {"service": {"name": "jira"}}},
                            ]
                        }
                    }
                ],
            },
        }
    )
    assert ing.services == ["jira"] and ing.ingress_class == "nginx"
    deny = ev.network_policy_from_json({"metadata": {"name": "deny"}, "spec": {"podSelector": {}}})
    assert deny.default_deny_ingress
    sts = ev.statefulset_from_json(
        {
            "metadata": {"name": "jira"},
            "spec": {
                "replicas": 3,
                "template": {"spec": {"containers": [{"image": "atlassian/jira-software:11.3.2"}]}},
            },
            "status": {"readyReplicas": 2, "currentRevision": "a", "updateRevision": "b"},
        }
    )
    assert (sts.replicas, sts.ready_replicas, sts.update_revision, sts.image.endswith("11.3.2")) == (
        3,
        2,
        "b",
        True,
    )
    event = ev.event_from_json(
        {
            "reason": "BackOff",
            "type": "Warning",
            "involvedObject": {"kind": "Pod", "name": "jira-1"},
            "count": 4,
            "lastTimestamp": "2026-11-26T11:00:00Z",
        }
    )
    assert (event.name, event.count, event.last_seen is not None) == ("jira-1", 4, True)
    assert ev.parse_time("garbage") is None and ev.parse_time(1795690800000) is not None


def test_pods_in_trouble_are_only_the_troubled() -> None:
    e = b.crash_loop(b.healthy())
    e.scope_pod = "confluence-0"
    names = {p.name for p in collect.pods_in_trouble(e)}
    assert names == {"jira-1", "confluence-0"}


def test_call_counter() -> None:
    calls = collect.CallCounter()
    calls.add("k8s:list Pod")
    calls.add("product:/status", 3)
    assert calls.as_dict() == {"k8s:list Pod": 1, "product:/status": 3}


# --- CLI ---------------------------------------------------------------------------------------------


def _parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="atlbook")
    cli.register(parser.add_subparsers(dest="command"))
    return parser.parse_args(["checks", *argv])


def test_cli_lists_the_catalogue(capsys: pytest.CaptureFixture[str]) -> None:
    args = _parse()
    assert args.func(args) == 0
    out = capsys.readouterr().out
    assert "product.jira-index-drift" in out and f"{len(diagnosis.catalogue())} checks" in out


def test_cli_json_and_layer(capsys: pytest.CaptureFixture[str]) -> None:
    args = _parse("--json", "--layer", "database")
    assert args.func(args) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc and {d["id"].split(".")[0] for d in doc} == {"database"}
    bad = _parse("--layer", "nope")
    assert bad.func(bad) == 2


def test_summary_names_the_evidence_read() -> None:
    e = b.crash_loop(b.healthy())
    doc = diagnosis.analyse(e).summary()["evidence"]
    assert doc["pods"] == len(e.pods) and doc["logs_read"] == ["jira-1"] and doc["rds"] == "sandbox-db"
