"""EKS through boto3 mirrored into the emulated cluster: a cluster + node group created with boto3 is
reached from ``describe_cluster`` alone (endpoint, CA, an ``aws eks get-token``-style bearer token);
nodes carry EKS names, zone / instance-type / node-group labels and EKS allocatable; scaling and deleting
the node group follow; add-ons appear as their workloads; a request without a valid token gets 401."""

from __future__ import annotations

import base64
import tempfile
from typing import Any

import boto3
import pytest
from kubernetes import client

from atlbook.testing import wait_until


def _token(session: boto3.Session, endpoint_url: str, cluster: str) -> str:
    """What ``aws eks get-token`` does: a presigned STS GetCallerIdentity URL with x-k8s-aws-id."""
    sts = session.client("sts", endpoint_url=endpoint_url)

    def add_cluster_header(request: Any, **_: Any) -> None:
        request.headers["x-k8s-aws-id"] = cluster

    sts.meta.events.register("before-sign.sts.GetCallerIdentity", add_cluster_header)
    url = sts.generate_presigned_url("get_caller_identity", Params={}, ExpiresIn=60, HttpMethod="GET")
    return "k8s-aws-v1." + base64.urlsafe_b64encode(url.encode()).decode().rstrip("=")


def _api_from_describe(
    session: boto3.Session, endpoint_url: str, name: str, token: str | None
) -> client.ApiClient:
    cluster = session.client("eks", endpoint_url=endpoint_url).describe_cluster(name=name)["cluster"]
    cfg = client.Configuration()
    cfg.host = cluster["endpoint"]
    ca = tempfile.NamedTemporaryFile(suffix=".crt", delete=False)  # noqa: SIM115 - kept for the client
    ca.write(base64.b64decode(cluster["certificateAuthority"]["data"]))
    ca.close()
    cfg.ssl_ca_cert = ca.name
    if token:
        cfg.api_key = {"BearerToken": token}
        cfg.api_key_prefix = {"BearerToken": "Bearer"}
    return client.ApiClient(cfg)


def test_reach_new_cluster_from_describe_cluster(
    sandbox_reset: Any, eks_cluster: Any, boto3_session: Any, sandbox_target: dict[str, Any]
) -> None:
    url = sandbox_target["aws_endpoint_url"]
    eks_cluster(name="prod", nodes=3, instance_type="m5.xlarge")
    api = _api_from_describe(boto3_session, url, "prod", _token(boto3_session, url, "prod"))
    nodes = client.CoreV1Api(api).list_node().items
    assert len(nodes) == 3
    assert all(
        n.metadata.name.startswith("ip-10-0-") and n.metadata.name.endswith(".ec2.internal") for n in nodes
    )
    zones = sorted(n.metadata.labels["topology.kubernetes.io/zone"] for n in nodes)
    assert zones == ["us-east-1a", "us-east-1b", "us-east-1c"]
    n = nodes[0]
    assert n.metadata.labels["node.kubernetes.io/instance-type"] == "m5.xlarge"
    assert n.metadata.labels["eks.amazonaws.com/nodegroup"] == "prod-ng"
    assert n.status.allocatable["pods"] == "58" and n.status.allocatable["cpu"] == "3920m"
    apps = client.AppsV1Api(api)
    assert {"aws-node", "kube-proxy", "ebs-csi-node"} <= {
        d.metadata.name for d in apps.list_namespaced_daemon_set("kube-system").items
    }
    wait_until(
        lambda: apps.read_namespaced_daemon_set("aws-node", "kube-system").status.number_ready == 3,
        what="aws-node on every node",
    )
    with pytest.raises(client.ApiException) as e:
        client.CoreV1Api(_api_from_describe(boto3_session, url, "prod", None)).list_node()
    assert e.value.status == 401
    with pytest.raises(client.ApiException) as e:
        client.CoreV1Api(_api_from_describe(boto3_session, url, "prod", "k8s-aws-v1.bm9wZQ")).list_node()
    assert e.value.status == 401


def test_scaling_and_deleting_follow(
    sandbox_reset: Any, eks_cluster: Any, aws_client: Any, k8s_api: Any
) -> None:
    eks_cluster(name="c", nodes=2)
    eks = aws_client("eks")
    core = client.CoreV1Api(k8s_api)
    assert len(core.list_node().items) == 2
    eks.update_nodegroup_config(clusterName="c", nodegroupName="c-ng", scalingConfig={"desiredSize": 4})
    assert len(core.list_node(label_selector="eks.amazonaws.com/nodegroup=c-ng").items) == 4
    eks.update_nodegroup_config(clusterName="c", nodegroupName="c-ng", scalingConfig={"desiredSize": 1})
    assert len(core.list_node().items) == 1
    eks.delete_nodegroup(clusterName="c", nodegroupName="c-ng")
    wait_until(lambda: core.list_node().items == [], what="nodes gone")


def test_addons_appear_as_workloads(
    sandbox_reset: Any, eks_cluster: Any, aws_client: Any, k8s_api: Any
) -> None:
    eks_cluster(name="c", nodes=1)
    eks = aws_client("eks")
    eks.create_addon(clusterName="c", addonName="aws-efs-csi-driver")
    apps = client.AppsV1Api(k8s_api)
    assert "efs-csi-node" in {d.metadata.name for d in apps.list_namespaced_daemon_set("kube-system").items}
    assert "efs-csi-controller" in {
        d.metadata.name for d in apps.list_namespaced_deployment("kube-system").items
    }
    assert eks.describe_addon(clusterName="c", addonName="aws-efs-csi-driver")["addon"]["status"] in (
        "CREATING",
        "ACTIVE",
    )
    wait_until(
        lambda: (
            eks.describe_addon(clusterName="c", addonName="aws-efs-csi-driver")["addon"]["status"] == "ACTIVE"
        ),
        what="ACTIVE",
    )
    eks.delete_addon(clusterName="c", addonName="aws-efs-csi-driver")
    assert "efs-csi-node" not in {
        d.metadata.name for d in apps.list_namespaced_daemon_set("kube-system").items
    }
