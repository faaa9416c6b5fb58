"""Observed state: what exists now, read through the clients (never a mutating call).

AWS: one describe/list per desired resource, normalised to the desired request's shape (see
``_aws.HANDLERS``). Kubernetes: **one list per kind per namespace** (not a GET per object), each
desired object matched by name; objects that carry this stack's label (``atlbook.io/stack``) but are
not desired are returned as ``extra`` (the plan reports them). Late-bound outputs (VPC id, subnet ids,
EFS id, RDS endpoint, the ingress load balancer's host name) are collected on the way.

The Kubernetes API is reached through the target's kubeconfig context when it names one, else
through the EKS cluster (``describe_cluster`` + an EKS token) once that cluster exists; before then
every Kubernetes object is simply absent.
"""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any

from atlbook import errors
from atlbook.clients import k8s
from atlbook.clients.bundle import Clients
from atlbook.provisioning import _aws, databases
from atlbook.provisioning.desired import INGRESS_LB, LABEL_STACK
from atlbook.provisioning.diff import Observed
from atlbook.provisioning.kinds import KINDS
from atlbook.provisioning.model import DesiredState, Resource

__all__ = ["k8s_api", "observe", "observe_aws", "observe_k8s"]


def k8s_api(clients: Clients, cluster: str, *, cluster_exists: bool) -> Any | None:
    """The Kubernetes ApiClient: the target's kubeconfig context, else the EKS cluster once it exists."""
    if clients.target.kubeconfig is not None:
        return clients.k8s
    if not cluster_exists:
        return None
    return clients.k8s_from_eks(cluster)


def observe_aws(
    clients: Clients, state: DesiredState
) -> tuple[dict[str, dict[str, Any] | None], dict[str, Any]]:
    """Observe every AWS resource of ``state``: (objects by key, late-bound outputs)."""
    ctx = _aws.Ctx(clients=clients, stack=state.stack, outputs={})
    objects: dict[str, dict[str, Any] | None] = {}
    for r in state.aws():
        objects[r.key] = _aws.HANDLERS[r.kind].observe(ctx, r)
    return objects, ctx.outputs


def _item_key(kind: str, item: dict[str, Any]) -> str:
    meta = item.get("metadata") or {}
    ns = meta.get("namespace") if KINDS[kind].namespaced else ""
    return f"k8s/{kind}/{ns or '-'}/{meta.get('name')}"


def observe_k8s(
    api: Any, state: DesiredState
) -> tuple[dict[str, dict[str, Any] | None], dict[str, dict[str, Any]], dict[str, Any]]:
    """Observe every Kubernetes object of ``state`` with one list per kind per namespace.

    Returns (objects by key, extra objects labelled for this stack but not desired, outputs).
    """
    groups: dict[tuple[str, str], list[Resource]] = defaultdict(list)
    for r in state.k8s():
        groups[(r.kind, r.namespace if KINDS[r.kind].namespaced else "")].append(r)
    objects: dict[str, dict[str, Any] | None] = {}
    extra: dict[str, dict[str, Any]] = {}
    outputs: dict[str, Any] = {}
    wanted = {r.key for r in state.k8s()}
    for (kind, ns), resources in groups.items():
        items = k8s.list(api, kind, ns or None)
        by_key = {_item_key(kind, item): item for item in items}
        for r in resources:
            objects[r.key] = by_key.get(r.key)
        for key, item in by_key.items():
            labels = (item.get("metadata") or {}).get("labels") or {}
            if key not in wanted and labels.get(LABEL_STACK) == state.stack:
                extra[key] = item
    lb = objects.get(f"k8s/Service/{INGRESS_LB[0]}/{INGRESS_LB[1]}")
    if lb:
        ingress = ((lb.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
        if ingress:
            host = ingress[0].get("hostname") or ingress[0].get("ip")
            outputs[f"k8s:Service/{INGRESS_LB[0]}/{INGRESS_LB[1]}.hostname"] = host
    return objects, extra, outputs


def _engine(
    api: Any | None, aws_objects: dict[str, dict[str, Any] | None], stack: str, outputs: dict[str, Any]
) -> str | None:
    addon = aws_objects.get(f"aws/EksAddon/{stack}-vpc-cni")
    if addon and outputs.get(f"aws:EksAddon/{stack}-vpc-cni.Status") == "ACTIVE":
        try:
            config = json.loads(addon.get("configurationValues") or "{}")
        except ValueError:
            config = {}
        if str(config.get("enableNetworkPolicy", "")).lower() == "true":
            if api is None:
                return "vpc-cni"
            # the add-on says enabled; the agent that enforces policies runs in the aws-node DaemonSet
            for ds in k8s.list(api, "DaemonSet", "kube-system"):
                if (ds.get("metadata") or {}).get("name") == "aws-node" and (ds.get("status") or {}).get(
                    "numberReady"
                ):
                    return "vpc-cni"
    if api is not None:
        for ns in ("calico-system", "kube-system"):
            for ds in k8s.list(api, "DaemonSet", ns):
                if (ds.get("metadata") or {}).get("name") == "calico-node" and (ds.get("status") or {}).get(
                    "numberReady"
                ):
                    return "calico"
    return None


def _aws_extra(clients: Clients, state: DesiredState, cluster_exists: bool) -> dict[str, dict[str, Any]]:
    """Node groups and add-ons of the stack's cluster that are not desired (e.g. a zone removed)."""
    if not cluster_exists:
        return {}
    cluster = str(state.facts.get("cluster", state.stack))
    wanted = {r.key for r in state.aws()}
    extra: dict[str, dict[str, Any]] = {}
    groups = clients.aws_call("eks", "list_nodegroups", idempotent=True, clusterName=cluster).get(
        "nodegroups"
    )
    for name in groups or []:
        key = f"aws/EksNodegroup/{name}"
        if key not in wanted and str(name).startswith(f"{state.stack}-"):
            extra[key] = {"nodegroupName": name}
    return extra


def observe(clients: Clients, state: DesiredState) -> Observed:
    """Everything ``state`` names, as it exists now. Read-only: no mutating call is made.

    Raises the ``ApiError`` family when a read fails (e.g. the target is unreachable).
    """
    aws_objects, outputs = observe_aws(clients, state)
    cluster = str(state.facts.get("cluster", state.stack))
    exists = aws_objects.get(f"aws/EksCluster/{cluster}") is not None
    api = k8s_api(clients, cluster, cluster_exists=exists)
    k8s_objects: dict[str, dict[str, Any] | None] = {r.key: None for r in state.k8s()}
    extra: dict[str, dict[str, Any]] = _aws_extra(clients, state, exists)
    notes: list[str] = []
    if api is not None:
        try:
            k8s_objects, k8s_extra, k8s_outputs = observe_k8s(api, state)
            extra.update(k8s_extra)
            outputs.update(k8s_outputs)
        except errors.Unavailable:
            if exists:
                raise
            notes.append("the Kubernetes API is not reachable yet: every object is planned as a create")
    else:
        notes.append("the EKS cluster does not exist yet: every Kubernetes object is planned as a create")
    db_objects = databases.observe(clients, state, outputs)  # product databases: one read-only SELECT
    return Observed(
        objects={**aws_objects, **k8s_objects, **db_objects},
        outputs=outputs,
        extra=extra,
        engine=_engine(api, aws_objects, cluster, outputs),
        notes=tuple(notes),
    )
