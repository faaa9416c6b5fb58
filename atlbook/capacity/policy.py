"""The Kubernetes placement policy objects provisioning applies, as plain dicts (no client types).

Per pod set: required pod anti-affinity on ``kubernetes.io/hostname``, a zone topology spread
constraint (maxSkew 1, DoNotSchedule), a PodDisruptionBudget (maxUnavailable 1) and a PriorityClass
name. Per cluster: PriorityClasses (apps > Synchrony/OpenSearch/NFS/Mesh > extras > −10 buffer). Per
namespace: a ResourceQuota sized to the namespace's requests plus one rolling-update surge pod, and a
LimitRange giving containers without requests a default. The dicts use the Kubernetes API field names
(camelCase), so they can be sent as bodies or passed to ``ApiClient().deserialize``-style builders.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from atlbook.capacity.workload import (
    PRIORITY_APPS,
    PRIORITY_BUFFER,
    PRIORITY_EXTRAS,
    PRIORITY_SERVICES,
    PodSet,
    Workload,
)
from atlbook.errors import ConfigError

__all__ = [
    "PRIORITY_CLASS_NAMES",
    "affinity",
    "helm_values",
    "labels_for",
    "limit_range",
    "pod_disruption_budget",
    "policy_objects",
    "priority_class_name",
    "priority_classes",
    "resource_quota",
    "topology_spread",
]

PRIORITY_CLASS_NAMES = {
    PRIORITY_APPS: "atlbook-apps",
    PRIORITY_SERVICES: "atlbook-services",
    PRIORITY_EXTRAS: "atlbook-extras",
    PRIORITY_BUFFER: "atlbook-buffer",
}
"""PriorityClass name per value."""

HOSTNAME = "kubernetes.io/hostname"
ZONE = "topology.kubernetes.io/zone"


def labels_for(s: PodSet, instance: str | None = None) -> dict[str, str]:
    """The selector labels of a set's pods (Helm chart conventions)."""
    return {"app.kubernetes.io/name": s.app, "app.kubernetes.io/instance": instance or s.name}


def _selector(labels: Mapping[str, str]) -> dict[str, Any]:
    if not labels:
        raise ConfigError("a label selector needs at least one label")
    return {"matchLabels": dict(labels)}


def affinity(labels: Mapping[str, str]) -> dict[str, Any]:
    """``affinity`` with required pod anti-affinity on the hostname for pods matching ``labels``."""
    return {
        "podAntiAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": [
                {"labelSelector": _selector(labels), "topologyKey": HOSTNAME}
            ]
        }
    }


def topology_spread(labels: Mapping[str, str]) -> list[dict[str, Any]]:
    """``topologySpreadConstraints``: zone, maxSkew 1, DoNotSchedule."""
    return [
        {
            "maxSkew": 1,
            "topologyKey": ZONE,
            "whenUnsatisfiable": "DoNotSchedule",
            "labelSelector": _selector(labels),
        }
    ]


def pod_disruption_budget(name: str, namespace: str, labels: Mapping[str, str]) -> dict[str, Any]:
    """policy/v1 PodDisruptionBudget with maxUnavailable 1."""
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {"name": name, "namespace": namespace, "labels": dict(labels)},
        "spec": {"maxUnavailable": 1, "selector": _selector(labels)},
    }


def priority_classes() -> list[dict[str, Any]]:
    """scheduling.k8s.io/v1 PriorityClasses; the buffer class never preempts."""
    out = []
    for value, name in sorted(PRIORITY_CLASS_NAMES.items(), reverse=True):
        pc: dict[str, Any] = {
            "apiVersion": "scheduling.k8s.io/v1",
            "kind": "PriorityClass",
            "metadata": {"name": name},
            "value": value,
            "globalDefault": False,
            "description": f"atlbook: {name.removeprefix('atlbook-')}",
        }
        if value < 0:
            pc["preemptionPolicy"] = "Never"
        out.append(pc)
    return out


def priority_class_name(s: PodSet) -> str:
    """PriorityClass of a set: the class with the highest value ≤ the set's priority."""
    values = sorted(v for v in PRIORITY_CLASS_NAMES if v <= s.priority)
    return PRIORITY_CLASS_NAMES[values[-1] if values else PRIORITY_BUFFER]


def helm_values(s: PodSet, instance: str | None = None) -> dict[str, Any]:
    """The chart values that put one set's rules in place: ``affinity``, spread, priority, PDB and
    ``resources`` (memory limit = request, as DESIGN.md asks for JVMs; no CPU limit)."""
    labels = labels_for(s, instance)
    vals: dict[str, Any] = {"priorityClassName": priority_class_name(s)}
    if s.anti_affinity:
        vals["affinity"] = affinity(labels)
    if s.zone_spread:
        vals["topologySpreadConstraints"] = topology_spread(labels)
    vals["podDisruptionBudget"] = {"enabled": True, "maxUnavailable": 1}
    # JVM pods: memory limit = request (Guaranteed memory, no overcommit); no CPU limit (no throttling)
    vals["resources"] = {
        "requests": {"cpu": _qty_cpu(s.cpu_m), "memory": _qty_mem(s.memory_mi)},
        "limits": {"memory": _qty_mem(s.memory_mi)},
    }
    return vals


def _qty_cpu(m: int) -> str:
    return f"{m}m"


def _qty_mem(mi: int) -> str:
    return f"{mi}Mi"


def resource_quota(namespace: str, sets: list[PodSet], *, headroom: float = 1.0) -> dict[str, Any]:
    """v1 ResourceQuota: the namespace's requests (×``headroom``) plus one surge pod of its largest set.

    Memory limits get the same figure (JVM requests = limits). Refuses an empty set list.
    """
    if not sets:
        raise ConfigError(f"namespace {namespace}: no pod sets for a ResourceQuota")
    if headroom < 1.0:
        raise ConfigError("headroom must be ≥ 1.0")
    big = max(sets, key=lambda s: (s.cpu_m, s.memory_mi))
    cpu = int(sum(s.replicas * s.cpu_m for s in sets) * headroom) + big.cpu_m
    mem = int(sum(s.replicas * s.memory_mi for s in sets) * headroom) + big.memory_mi
    pods = sum(s.replicas for s in sets) + 1 + 10  # + surge + a few for jobs/tests
    return {
        "apiVersion": "v1",
        "kind": "ResourceQuota",
        "metadata": {"name": "atlbook-quota", "namespace": namespace},
        "spec": {
            "hard": {
                "requests.cpu": _qty_cpu(cpu),
                "requests.memory": _qty_mem(mem),
                "limits.memory": _qty_mem(mem),
                "pods": str(pods),
            }
        },
    }


def limit_range(namespace: str) -> dict[str, Any]:
    """v1 LimitRange: containers without requests get 100m / 128Mi (limit 512Mi) so none is unbounded."""
    return {
        "apiVersion": "v1",
        "kind": "LimitRange",
        "metadata": {"name": "atlbook-defaults", "namespace": namespace},
        "spec": {
            "limits": [
                {
                    "type": "Container",
                    "defaultRequest": {"cpu": "100m", "memory": "128Mi"},
                    "default": {"memory": "512Mi"},
                }
            ]
        },
    }


def policy_objects(workload: Workload, namespace: str) -> dict[str, Any]:
    """Everything for one namespace: per-set pod placement fields and PDBs, PriorityClasses, quota, limits.

    Returns ``{"pod_placement": {set: {...}}, "pod_disruption_budgets": [...], "priority_classes": [...],
    "resource_quota": {...}, "limit_range": {...}}``.
    """
    sets = [s for s in workload.sets if s.replicas]
    placement = {}
    pdbs = []
    for s in sets:
        v = helm_values(s)
        v.pop("podDisruptionBudget")
        placement[s.name] = v
        pdbs.append(pod_disruption_budget(s.name, namespace, labels_for(s)))
    return {
        "pod_placement": placement,
        "pod_disruption_budgets": pdbs,
        "priority_classes": priority_classes(),
        "resource_quota": resource_quota(namespace, sets),
        "limit_range": limit_range(namespace),
    }
