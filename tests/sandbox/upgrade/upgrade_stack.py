"""Builds one product's HA cluster in the sandbox through the official clients, ready for an upgrade.

EKS cluster + one managed node group over three zones, the RDS instance ``sandbox-db``; in namespace
``atlassian``: the product's admin Secret, Service, StatefulSet (required hostname anti-affinity,
``replicas`` nodes on ``VERSIONS[product]``) and PDB. The matching :class:`~atlbook.stack.StackSpec`
is ``parameters/sandbox.yaml`` with the sandbox database user.
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
VERSIONS = {"jira": "11.3.1", "confluence": "10.2.7", "bitbucket": "9.4.16"}
NEXT = {"jira": "11.3.2", "confluence": "10.2.8", "bitbucket": "9.4.17"}
ZONES = ("us-east-1a", "us-east-1b", "us-east-1c")
DB_USER, DB_PASSWORD = "atlbook", "atlbook-sandbox"
PORTS = {"jira": 8080, "confluence": 8090, "bitbucket": 7990}


def load_spec() -> Any:
    doc = yaml.safe_load((ROOT / "parameters" / "sandbox.yaml").read_text())["stack"]
    doc["database"]["master_username"] = DB_USER
    return parameters.load_stack(doc)


def _labels(product: str) -> dict[str, str]:
    return {"app.kubernetes.io/name": product, "app.kubernetes.io/instance": product}


def build(
    api: Any,
    aws_client: Any,
    product: str = "jira",
    replicas: int = 2,
    *,
    pdb: bool = True,
    rds: bool = True,
) -> dict[str, Any]:
    """Create everything; return names. Does not wait."""
    create_eks_cluster(aws_client, name="sandbox", nodes=3, instance_type="m5.2xlarge", zones=ZONES)
    if rds:
        aws_client("rds").create_db_instance(
            DBInstanceIdentifier="sandbox-db",
            DBInstanceClass="db.t3.large",
            Engine="postgres",
            MasterUsername=DB_USER,
            MasterUserPassword=DB_PASSWORD,
            AllocatedStorage=20,
        )
    try:
        k8s.create(api, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}})
    except Exception:  # noqa: BLE001 - exists
        pass
    labels = _labels(product)
    k8s.create(
        api,
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": f"{product}-admin", "namespace": NAMESPACE},
            "data": {
                "username": base64.b64encode(ADMIN_USER.encode()).decode(),
                "password": base64.b64encode(ADMIN_PASSWORD.encode()).decode(),
            },
        },
    )
    k8s.create(
        api,
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": product, "namespace": NAMESPACE},
            "spec": {
                "selector": labels,
                "ports": [{"name": "http", "port": 80, "targetPort": PORTS[product]}],
            },
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
    if pdb:
        k8s.create(
            api,
            {
                "apiVersion": "policy/v1",
                "kind": "PodDisruptionBudget",
                "metadata": {"name": product, "namespace": NAMESPACE},
                "spec": {"maxUnavailable": 1, "selector": {"matchLabels": labels}},
            },
        )
    return {"product": product, "replicas": replicas, "version": VERSIONS[product], "next": NEXT[product]}


def wait_ready(api: Any, product: str, replicas: int, timeout: float = 40.0) -> None:
    """Until every product pod is Ready (its node RUNNING)."""
    deadline = time.monotonic() + timeout
    while True:
        pods = k8s.list(api, "Pod", NAMESPACE, label_selector=f"app.kubernetes.io/name={product}")
        ready = [
            p
            for p in pods
            if any(
                c.get("type") == "Ready" and c.get("status") == "True"
                for c in (p.get("status") or {}).get("conditions") or []
            )
            and not (p.get("metadata") or {}).get("deletionTimestamp")
        ]
        if len(ready) >= replicas:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"stack not ready after {timeout} s: {len(ready)} pods Ready")
        time.sleep(0.1)
