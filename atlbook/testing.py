"""pytest fixtures for tests against the sandbox, started in-process.

- ``sandbox`` (session): one :class:`~atlbook.sandbox.stack.Sandbox` for the whole run, in a temporary
  state directory; ``sandbox_reset`` (autouse only where a conftest opts in) resets it before a test.
- ``k8s_api``: a ``kubernetes.client.ApiClient`` built from the sandbox's kubeconfig.
- ``boto3_session``: a ``boto3.Session`` with the dummy credentials; clients need
  ``endpoint_url=sandbox_target["aws_endpoint_url"]`` (or use ``aws_client``).
- ``aws_client``: ``aws_client("eks")`` → a boto3 client on the sandbox's endpoint.
- ``sandbox_target``: the ``target.yaml`` mapping.
- ``product_stack``: a builder that creates a product StatefulSet + Service + admin Secret through the
  official client and returns their names.

Use them with ``pytest_plugins = ["atlbook.testing"]`` in a conftest. Nothing starts at import time.
"""

from __future__ import annotations

import base64
import os
import pathlib
import tempfile
import time
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
import yaml

__all__ = [
    "ADMIN_PASSWORD",
    "ADMIN_USER",
    "TEST_TIME_FACTOR",
    "aws_client",
    "boto3_session",
    "create_eks_cluster",
    "eks_cluster",
    "k8s_api",
    "product_stack",
    "sandbox",
    "sandbox_reset",
    "sandbox_target",
    "statefulset_manifest",
    "wait_until",
]

TEST_TIME_FACTOR = 240.0
"""Simulated seconds per wall second in tests (4x the default: a Jira node starts in ~0.5 s)."""
ADMIN_USER = "admin"
ADMIN_PASSWORD = "sandbox-admin"  # noqa: S105 - the sandbox's dummy product admin
_IMAGES = {
    "jira": "atlassian/jira-software",
    "confluence": "atlassian/confluence",
    "bitbucket": "atlassian/bitbucket",
}
_PORTS = {"jira": 8080, "confluence": 8090, "bitbucket": 7990}


@pytest.fixture(scope="session")
def sandbox() -> Iterator[Any]:
    """The session's sandbox, started in-process in a temporary state directory.

    Its time factor is ``$ATLBOOK_SANDBOX_TIME_FACTOR`` (read when the fixture runs), else
    :data:`TEST_TIME_FACTOR`.
    """
    from atlbook.sandbox.stack import Sandbox

    factor = float(os.environ.get("ATLBOOK_SANDBOX_TIME_FACTOR", TEST_TIME_FACTOR))
    with tempfile.TemporaryDirectory(prefix="atlbook-sandbox-") as d:
        sb = Sandbox(time_factor=factor, state_dir=pathlib.Path(d))
        sb.start()
        try:
            yield sb
        finally:
            sb.stop()


@pytest.fixture
def sandbox_reset(sandbox: Any) -> Any:
    """The sandbox, reset to empty before the test."""
    sandbox.reset()
    return sandbox


@pytest.fixture
def sandbox_target(sandbox: Any) -> dict[str, Any]:
    """The sandbox's ``target.yaml`` as a mapping."""
    data: dict[str, Any] = yaml.safe_load((sandbox.state_dir / "target.yaml").read_text())
    return data


@pytest.fixture
def k8s_api(sandbox: Any) -> Iterator[Any]:
    """An official ``kubernetes`` ApiClient for the sandbox's kubeconfig."""
    from kubernetes import config

    loader: Any = config
    api = loader.new_client_from_config(config_file=str(sandbox.kubeconfig_path), context="atlbook-sandbox")
    try:
        yield api
    finally:
        api.close()


@pytest.fixture
def boto3_session(sandbox_target: dict[str, Any]) -> boto3.Session:
    """A boto3 session with the sandbox's dummy credentials and region."""
    return boto3.Session(
        aws_access_key_id=sandbox_target["aws_access_key_id"],
        aws_secret_access_key=sandbox_target["aws_secret_access_key"],
        region_name=sandbox_target["aws_region"],
    )


@pytest.fixture
def aws_client(boto3_session: boto3.Session, sandbox_target: dict[str, Any]) -> Callable[[str], Any]:
    """``aws_client(service)`` → a boto3 client on the sandbox's endpoint."""

    def make(service: str) -> Any:
        return boto3_session.client(service, endpoint_url=sandbox_target["aws_endpoint_url"])

    return make


def statefulset_manifest(product: str, name: str, replicas: int, version: str) -> dict[str, Any]:
    """A minimal StatefulSet of ``product`` nodes (image tag = ``version``)."""
    labels = {"app.kubernetes.io/name": product, "app.kubernetes.io/instance": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "replicas": replicas,
            "serviceName": name,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "containers": [
                        {
                            "name": product,
                            "image": f"{_IMAGES[product]}:{version}",
                            "ports": [{"name": "http", "containerPort": _PORTS[product]}],
                            "resources": {
                                "requests": {"cpu": "100m", "memory": "256Mi"},
                                "limits": {"memory": "1Gi"},
                            },
                        }
                    ]
                },
            },
        },
    }


@pytest.fixture
def product_stack(k8s_api: Any) -> Callable[..., dict[str, Any]]:
    """``product_stack(product="jira", replicas=2, version="9.12.3", namespace="atl")`` creates the
    namespace, the admin Secret ``<product>-admin``, a Service and a StatefulSet through the official client.
    """
    from kubernetes import client

    core: Any = client.CoreV1Api(k8s_api)
    apps: Any = client.AppsV1Api(k8s_api)

    def build(
        product: str = "jira", replicas: int = 2, version: str = "9.12.3", namespace: str = "atl"
    ) -> dict[str, Any]:
        try:
            core.create_namespace({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
        except client.ApiException as e:
            if e.status != 409:
                raise
        secret = {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": f"{product}-admin"},
            "data": {
                "username": base64.b64encode(ADMIN_USER.encode()).decode(),
                "password": base64.b64encode(ADMIN_PASSWORD.encode()).decode(),
            },
        }
        try:
            core.create_namespaced_secret(namespace, secret)
        except client.ApiException as e:
            if e.status != 409:
                raise
        labels = {"app.kubernetes.io/name": product, "app.kubernetes.io/instance": product}
        core.create_namespaced_service(
            namespace,
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": product},
                "spec": {
                    "selector": labels,
                    "ports": [{"name": "http", "port": 80, "targetPort": _PORTS[product]}],
                },
            },
        )
        apps.create_namespaced_stateful_set(
            namespace, statefulset_manifest(product, product, replicas, version)
        )
        return {"namespace": namespace, "statefulset": product, "service": product, "port": _PORTS[product]}

    return build


def create_eks_cluster(
    aws_client: Callable[[str], Any],
    name: str = "atl",
    nodes: int = 3,
    instance_type: str = "m5.xlarge",
    zones: tuple[str, ...] = ("us-east-1a", "us-east-1b", "us-east-1c"),
) -> dict[str, Any]:
    """VPC + one subnet per zone + EKS cluster + one managed node group of ``nodes`` nodes, via boto3."""
    ec2 = aws_client("ec2")
    eks = aws_client("eks")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{i + 1}.0/24", AvailabilityZone=z)["Subnet"]["SubnetId"]
        for i, z in enumerate(zones)
    ]
    role = "arn:aws:iam::123456789012:role/eks"
    eks.create_cluster(name=name, version="1.29", roleArn=role, resourcesVpcConfig={"subnetIds": subnets})
    eks.create_nodegroup(
        clusterName=name,
        nodegroupName=f"{name}-ng",
        nodeRole=role,
        subnets=subnets,
        instanceTypes=[instance_type],
        scalingConfig={"minSize": 1, "maxSize": max(nodes, 1) * 2, "desiredSize": nodes},
    )
    return {"cluster": name, "nodegroup": f"{name}-ng", "subnets": subnets, "vpc": vpc}


@pytest.fixture
def eks_cluster(aws_client: Callable[[str], Any]) -> Callable[..., dict[str, Any]]:
    """``eks_cluster(nodes=3)`` creates an EKS cluster and node group through boto3 (nodes mirrored)."""

    def build(**kwargs: Any) -> dict[str, Any]:
        return create_eks_cluster(aws_client, **kwargs)

    return build


def wait_until(pred: Callable[[], Any], timeout: float = 30.0, what: str = "condition") -> Any:
    """Poll ``pred`` (wall time) until it returns something truthy; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = pred()
        except Exception as e:  # noqa: BLE001 - keep polling
            last = e
        else:
            if last:
                return last
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}; last: {last!r}")
