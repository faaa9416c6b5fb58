"""Simulated products through the official clients: a 2-node Jira StatefulSet reaches RUNNING over the
pod proxy; admin auth (401 without); each node's connections in pg_stat_activity; ZDU over the pod
proxy; pod logs; the sticky ingress re-pins when its pod goes; the audit log records Kubernetes
mutations and not reads."""

from __future__ import annotations

import http.cookiejar
import urllib.error
import urllib.request
from typing import Any

import pytest
from kubernetes import client

from atlbook.testing import statefulset_manifest, wait_until


def test_two_jira_nodes_running_with_db_pools(
    sandbox_reset: Any, eks_cluster: Any, product_stack: Any, k8s_api: Any, proxy: Any, running: Any
) -> None:
    eks_cluster(nodes=3)
    product_stack("jira", replicas=2)
    wait_until(lambda: running("atl", ["jira-0", "jira-1"]), what="both Jira nodes RUNNING")
    assert proxy("atl", "jira-0", 8080, "/rest/api/2/cluster/nodes", auth=False)[0] == 401
    status, nodes = proxy("atl", "jira-0", 8080, "/rest/api/2/cluster/nodes")
    assert status == 200
    assert sorted(n["nodeId"] for n in nodes) == ["jira-0", "jira-1"]
    assert all(n["nodeVersion"] == "9.12.3" for n in nodes)

    def per_pod() -> dict[str, int]:
        with sandbox_reset.postgres.superuser_connect() as conn:
            rows = conn.execute(
                "SELECT application_name, count(*) FROM pg_stat_activity WHERE datname = 'jira' GROUP BY 1"
            ).fetchall()
        return {str(a): int(n) for a, n in rows}

    counts = wait_until(lambda: (c := per_pod()).get("jira-0") and c.get("jira-1") and c, what="pools")
    assert counts["jira-0"] >= 2 and counts["jira-1"] >= 2
    log = client.CoreV1Api(k8s_api).read_namespaced_pod_log("jira-1", "atl")
    assert "Starting Jira Software 9.12.3" in log and "started. You can now access" in log


def test_zdu_over_pod_proxy(
    sandbox_reset: Any, eks_cluster: Any, product_stack: Any, k8s_api: Any, proxy: Any, running: Any
) -> None:
    eks_cluster(nodes=2)
    product_stack("jira", replicas=2)
    wait_until(lambda: running("atl", ["jira-0", "jira-1"]), what="RUNNING")
    state = lambda: proxy("atl", "jira-0", 8080, "/rest/api/2/cluster/zdu/state")[1]["state"]  # noqa: E731
    assert state() == "STABLE"
    assert proxy("atl", "jira-0", 8080, "/rest/api/2/cluster/zdu/start", "POST")[0] == 200
    assert state() == "READY_TO_UPGRADE"
    apps = client.AppsV1Api(k8s_api)
    apps.patch_namespaced_stateful_set(
        "jira",
        "atl",
        {
            "spec": {
                "template": {
                    "spec": {"containers": [{"name": "jira", "image": "atlassian/jira-software:9.12.4"}]}
                }
            }
        },
    )
    wait_until(lambda: state() == "MIXED", what="MIXED")
    assert proxy("atl", "jira-0", 8080, "/rest/api/2/cluster/zdu/cancel", "POST")[0] == 409
    wait_until(lambda: state() == "READY_TO_RUN_UPGRADE_TASKS", timeout=60, what="all upgraded")
    assert proxy("atl", "jira-0", 8080, "/rest/api/2/cluster/zdu/approve", "POST")[0] == 200
    wait_until(lambda: state() == "STABLE", what="upgrade tasks done")
    assert (
        proxy("atl", "jira-1", 8080, "/rest/api/2/cluster/zdu/state")[1]["buildInfo"]["version"] == "9.12.4"
    )


def test_sticky_ingress_repins(
    sandbox_reset: Any, eks_cluster: Any, product_stack: Any, k8s_api: Any, running: Any
) -> None:
    eks_cluster(nodes=2)
    product_stack("jira", replicas=2)
    wait_until(lambda: running("atl", ["jira-0", "jira-1"]), what="RUNNING")
    ingress = sandbox_reset.ingress
    wait_until(lambda: len(ingress.endpoints("atl", "jira")) == 2, what="2 ready endpoints")
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))

    def upstream() -> str:
        with opener.open(ingress.base_url("atl", "jira") + "/status", timeout=10) as r:
            return str(r.headers["X-Atlbook-Upstream"])

    first = upstream()
    assert {upstream() for _ in range(5)} == {first}
    client.CoreV1Api(k8s_api).delete_namespaced_pod(first, "atl")
    other = wait_until(lambda: (u := upstream()) != first and u, what="re-pinned")
    assert other in ("jira-0", "jira-1")


def test_audit_log_records_mutations_only(sandbox_reset: Any, k8s_api: Any, aws_client: Any) -> None:
    mark = sandbox_reset.audit.mark()
    core = client.CoreV1Api(k8s_api)
    core.list_namespace()
    aws_client("eks").list_clusters()
    assert sandbox_reset.audit.mutations(since=mark) == []
    core.create_namespace({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "audited"}})
    aws_client("ec2").create_vpc(CidrBlock="10.9.0.0/16")
    entries = sandbox_reset.audit.mutations(since=mark)
    assert [(e.source, e.verb) for e in entries] == [("k8s", "POST"), ("aws", "ec2:CreateVpc")]
    assert entries[0].path == "/api/v1/namespaces" and entries[0].caller == "kubernetes-admin"


def test_ingress_rules_and_context_path(
    sandbox_reset: Any, eks_cluster: Any, k8s_api: Any, running: Any
) -> None:
    eks_cluster(nodes=2)
    core = client.CoreV1Api(k8s_api)
    core.create_namespace({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "atl"}})
    labels = {"app.kubernetes.io/name": "jira", "app.kubernetes.io/instance": "jira"}
    core.create_namespaced_service(
        "atl",
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "jira"},
            "spec": {"selector": labels, "ports": [{"port": 80, "targetPort": 8080}]},
        },
    )
    client.NetworkingV1Api(k8s_api).create_namespaced_ingress(
        "atl",
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "Ingress",
            "metadata": {
                "name": "jira",
                "annotations": {"nginx.ingress.kubernetes.io/session-cookie-name": "ATLROUTE_JIRA"},
            },
            "spec": {
                "ingressClassName": "nginx",
                "rules": [
                    {
                        "host": "atlassian.sandbox.localhost",
                        "http": {
                            "paths": [
                                {
                                    "path": "/jira",
                                    "pathType": "Prefix",
                                    "backend": {"service": {"name": "jira", "port": {"number": 80}}},
                                }
                            ]
                        },
                    }
                ],
            },
        },
    )
    sts = statefulset_manifest("jira", "jira", 2, "9.12.3")
    sts["spec"]["template"]["spec"]["containers"][0]["env"] = [
        {"name": "ATL_TOMCAT_CONTEXTPATH", "value": "/jira"}
    ]
    client.AppsV1Api(k8s_api).create_namespaced_stateful_set("atl", sts)
    ingress = sandbox_reset.ingress
    wait_until(lambda: len(ingress.endpoints("atl", "jira")) == 2, what="2 ready endpoints")
    req = urllib.request.Request(
        ingress.url + "/jira/status", headers={"Host": "atlassian.sandbox.localhost"}
    )
    with urllib.request.urlopen(req, timeout=10) as r:
        assert r.status == 200 and b"RUNNING" in r.read()
        assert r.headers["Set-Cookie"].startswith("ATLROUTE_JIRA=")
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(ingress.url + "/confluence/status", timeout=10)
    assert e.value.code == 404
