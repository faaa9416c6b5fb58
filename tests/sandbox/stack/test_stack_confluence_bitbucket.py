"""Confluence (+ Synchrony) and Bitbucket nodes through the official client: RUNNING over the pod proxy,
the Confluence ZDU cluster overview and both ``[verify]`` variants of the mutation paths, Synchrony's
heartbeat, Bitbucket's admin cluster and ``/rest/zdu/cluster/start``; admin credentials from a Secret
written with ``stringData``; product calls through the Service proxy."""

from __future__ import annotations

from typing import Any

from kubernetes import client

from atlbook.testing import ADMIN_PASSWORD, ADMIN_USER, statefulset_manifest, wait_until


def test_confluence_with_synchrony(
    sandbox_reset: Any, eks_cluster: Any, product_stack: Any, k8s_api: Any, proxy: Any, running: Any
) -> None:
    eks_cluster(nodes=3)
    product_stack("confluence", replicas=2, version="8.5.4")
    sts = statefulset_manifest("confluence", "confluence-synchrony", 1, "8.5.4")
    sts["spec"]["template"]["spec"]["containers"][0].update(
        name="synchrony", ports=[{"name": "http", "containerPort": 8091}]
    )
    sts["spec"]["selector"]["matchLabels"]["app.kubernetes.io/name"] = "confluence-synchrony"
    sts["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/name"] = "confluence-synchrony"
    client.AppsV1Api(k8s_api).create_namespaced_stateful_set("atl", sts)
    wait_until(lambda: running("atl", ["confluence-0", "confluence-1"], 8090), what="Confluence RUNNING")
    wait_until(
        lambda: proxy("atl", "confluence-synchrony-0", 8091, "/synchrony/heartbeat", auth=False)[0] == 200,
        what="Synchrony heartbeat",
    )
    status, cluster = proxy("atl", "confluence-0", 8090, "/rest/zdu/cluster")
    assert status == 200 and cluster["state"] == "STABLE" and len(cluster["nodes"]) == 2
    assert {n["state"] for n in cluster["nodes"]} == {"ACTIVE"}
    assert proxy("atl", "confluence-0", 8090, "/rest/zdu/cluster/zdu/start", "POST")[0] == 200
    assert proxy("atl", "confluence-1", 8090, "/rest/zdu/state")[1]["state"] == "READY_TO_UPGRADE"
    assert proxy("atl", "confluence-1", 8090, "/rest/zdu/cancel", "POST")[0] == 200
    assert proxy("atl", "confluence-1", 8090, "/rest/zdu/cancel", "POST")[0] == 409


def test_bitbucket_admin_cluster_and_service_proxy(
    sandbox_reset: Any, eks_cluster: Any, k8s_api: Any, proxy: Any, running: Any
) -> None:
    eks_cluster(nodes=2)
    core = client.CoreV1Api(k8s_api)
    core.create_namespace({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "atl"}})
    core.create_namespaced_secret(
        "atl",
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "bitbucket-admin"},
            "stringData": {"username": ADMIN_USER, "password": ADMIN_PASSWORD},
        },
    )
    labels = {"app.kubernetes.io/name": "bitbucket", "app.kubernetes.io/instance": "bitbucket"}
    core.create_namespaced_service(
        "atl",
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "bitbucket"},
            "spec": {"selector": labels, "ports": [{"name": "http", "port": 80, "targetPort": 7990}]},
        },
    )
    client.AppsV1Api(k8s_api).create_namespaced_stateful_set(
        "atl", statefulset_manifest("bitbucket", "bitbucket", 2, "9.4.16")
    )
    wait_until(lambda: running("atl", ["bitbucket-0", "bitbucket-1"], 7990), what="Bitbucket RUNNING")
    status, info = proxy("atl", "bitbucket-1", 7990, "/rest/api/latest/admin/cluster")
    assert status == 200 and info["running"] and info["localNode"]["id"] == "bitbucket-1"
    assert len(info["nodes"]) == 2
    assert proxy("atl", "bitbucket-0", 7990, "/rest/zdu/cluster/start", "POST")[0] == 200
    assert proxy("atl", "bitbucket-0", 7990, "/rest/zdu/state")[1]["state"] == "READY_TO_UPGRADE"
    body = core.connect_get_namespaced_service_proxy_with_path(
        "bitbucket:80", "atl", "status", _preload_content=False
    ).data
    assert b"RUNNING" in body
