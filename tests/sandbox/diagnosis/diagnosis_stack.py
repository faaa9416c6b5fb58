"""Builds a small HA stack in the sandbox through the official clients, the way 10-provision shapes it.

EKS cluster + one managed node group over three zones (``per_zone`` workers each), RDS instance, EFS
file system; in namespace ``atlassian``: Jira × 2 and Confluence × 2 StatefulSets with required
hostname anti-affinity, admin Secrets, Services, PDBs, a sticky Ingress and a default-deny
NetworkPolicy. The matching :class:`~atlbook.stack.StackSpec` comes from ``parameters/sandbox.yaml``
with Bitbucket disabled and the sandbox database role.
"""

from __future__ import annotations

import base64
import pathlib
import time
from typing import Any

import yaml

from atlbook import parameters
from atlbook.clients import k8s
from atlbook.testing import ADMIN_PASSWORD, ADMIN_USER, create_eks_cluster, statefulset_manifest

ROOT = pathlib.Path(__file__).resolve().parents[3]
NAMESPACE = "atlassian"
VERSIONS = {"jira": "11.3.1", "confluence": "10.2.7"}
ZONES = ("us-east-1a", "us-east-1b", "us-east-1c")
DB_USER, DB_PASSWORD = "atlbook", "atlbook-sandbox"


def spec_document() -> dict[str, Any]:
    doc = yaml.safe_load((ROOT / "parameters" / "sandbox.yaml").read_text())["stack"]
    doc["products"]["bitbucket"]["enabled"] = False
    doc["database"]["master_username"] = DB_USER
    return doc


def load_spec() -> Any:
    return parameters.load_stack(spec_document())


def _labels(product: str) -> dict[str, str]:
    return {"app.kubernetes.io/name": product, "app.kubernetes.io/instance": product}


def build(
    api: Any, aws_client: Any, *, per_zone: int = 1, products: tuple[str, ...] = ("jira",), replicas: int = 2
) -> dict[str, Any]:
    """Create everything; return names. Does not wait."""
    cluster = create_eks_cluster(
        aws_client, name="sandbox", nodes=3 * per_zone, instance_type="m5.2xlarge", zones=ZONES
    )
    aws_client("rds").create_db_instance(
        DBInstanceIdentifier="sandbox-db",
        DBInstanceClass="db.t3.large",
        Engine="postgres",
        MasterUsername=DB_USER,
        MasterUserPassword=DB_PASSWORD,
        AllocatedStorage=20,
        MultiAZ=True,
    )
    fs = aws_client("efs").create_file_system(
        CreationToken="sandbox-shared-home",
        PerformanceMode="generalPurpose",
        ThroughputMode="elastic",
        Tags=[{"Key": "Name", "Value": "sandbox-shared-home"}],
    )
    k8s.create(api, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}})
    for product in products:
        labels = _labels(product)
        secret = {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": f"{product}-admin", "namespace": NAMESPACE},
            "data": {
                "username": base64.b64encode(ADMIN_USER.encode()).decode(),
                "password": base64.b64encode(ADMIN_PASSWORD.encode()).decode(),
            },
        }
        k8s.create(api, secret)
        port = {"jira": 8080, "confluence": 8090, "bitbucket": 7990}[product]
        k8s.create(
            api,
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": product, "namespace": NAMESPACE},
                "spec": {"selector": labels, "ports": [{"name": "http", "port": 80, "targetPort": port}]},
            },
        )
        sts = statefulset_manifest(product, product, replicas, VERSIONS[product])
        sts["metadata"]["namespace"] = NAMESPACE
        sts["spec"]["podManagementPolicy"] = "Parallel"
        sts["spec"]["template"]["spec"]["affinity"] = {
            "podAntiAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": [
                    {"labelSelector": {"matchLabels": labels}, "topologyKey": "kubernetes.io/hostname"}
                ]
            }
        }
        k8s.create(api, sts)
        k8s.create(
            api,
            {
                "apiVersion": "policy/v1",
                "kind": "PodDisruptionBudget",
                "metadata": {"name": product, "namespace": NAMESPACE},
                "spec": {"maxUnavailable": 1, "selector": {"matchLabels": labels}},
            },
        )
    k8s.create(
        api,
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": {"name": "default-deny", "namespace": NAMESPACE},
            "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]},
        },
    )
    k8s.create(
        api,
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "Ingress",
            "metadata": {
                "name": "atlassian",
                "namespace": NAMESPACE,
                "annotations": {
                    "nginx.ingress.kubernetes.io/affinity": "cookie",
                    "nginx.ingress.kubernetes.io/affinity-mode": "persistent",
                },
            },
            "spec": {
                "ingressClassName": "nginx",
                "rules": [
                    {
                        "host": "atlassian.sandbox.localhost",
                        "http": {
                            "paths": [
                                {
                                    "path": f"/{p}",
                                    "pathType": "Prefix",
                                    "backend": {"service": {"name": p, "port": {"number": 80}}},
                                }
                                for p in products
                            ]
                        },
                    }
                ],
            },
        },
    )
    return {"cluster": cluster, "efs": fs["FileSystemId"], "products": products, "replicas": replicas}


def wait_ready(api: Any, products: tuple[str, ...], replicas: int, timeout: float = 40.0) -> None:
    """Until every product pod is Ready (its node RUNNING)."""
    deadline = time.monotonic() + timeout
    while True:
        pods = k8s.list(api, "Pod", NAMESPACE)
        ready = [
            p
            for p in pods
            if any(
                c.get("type") == "Ready" and c.get("status") == "True"
                for c in (p.get("status") or {}).get("conditions") or []
            )
            and not (p.get("metadata") or {}).get("deletionTimestamp")
        ]
        if len(ready) >= len(products) * replicas:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"stack not ready after {timeout} s: {len(ready)} pods Ready")
        time.sleep(0.2)
