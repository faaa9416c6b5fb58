"""``meta.k8s.io/v1`` Table rendering, so ``kubectl get`` prints the columns the real server sends.

kubectl asks for ``application/json;as=Table;v=v1;g=meta.k8s.io``; rows carry a
``PartialObjectMetadata`` (kubectl adds the NAMESPACE column for ``-A`` from it). Columns with
``priority`` 1 appear only with ``-o wide``. Kinds without a dedicated printer get Name + Age, like
the server's default table convertor.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable
from typing import Any

from . import resources as res

__all__ = ["human_age", "to_table"]

Col = tuple[str, str, int]  # name, type, priority


def human_age(created: str | None, now: _dt.datetime) -> str:
    """``5s``, ``3m``, ``2h``, ``4d`` like ``duration.HumanDuration`` (``<unknown>`` without a timestamp)."""
    if not created:
        return "<unknown>"
    t = _dt.datetime.strptime(created, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=_dt.UTC)
    s = max(0, int((now - t).total_seconds()))
    if s < 120:
        return f"{s}s"
    m = s // 60
    if m < 10:
        return f"{m}m{s % 60}s" if s % 60 else f"{m}m"
    if m < 180:
        return f"{m}m"
    h = m // 60
    if h < 48:
        return f"{h}h"
    return f"{h // 24}d"


def _pod_row(o: dict[str, Any], now: _dt.datetime) -> list[Any]:
    st = o.get("status") or {}
    cs = st.get("containerStatuses") or []
    total = len(o.get("spec", {}).get("containers") or [])
    ready = sum(1 for c in cs if c.get("ready"))
    reason = st.get("reason") or st.get("phase") or "Unknown"
    restarts = sum(int(c.get("restartCount", 0)) for c in cs)
    for c in cs:
        state = c.get("state") or {}
        if "waiting" in state and state["waiting"].get("reason"):
            reason = state["waiting"]["reason"]
        elif "terminated" in state and state["terminated"].get("reason"):
            reason = state["terminated"]["reason"]
    if o["metadata"].get("deletionTimestamp"):
        reason = "Terminating"
    node = o.get("spec", {}).get("nodeName") or "<none>"
    return [
        o["metadata"]["name"],
        f"{ready}/{total}",
        reason,
        str(restarts),
        human_age(o["metadata"].get("creationTimestamp"), now),
        st.get("podIP") or "<none>",
        node,
        st.get("nominatedNodeName") or "<none>",
        "<none>",
    ]


def _node_row(o: dict[str, Any], now: _dt.datetime) -> list[Any]:
    st = o.get("status") or {}
    cond = {c.get("type"): c.get("status") for c in st.get("conditions") or []}
    status = "Ready" if cond.get("Ready") == "True" else ("NotReady" if "Ready" in cond else "Unknown")
    if (o.get("spec") or {}).get("unschedulable"):
        status += ",SchedulingDisabled"
    labels = o["metadata"].get("labels") or {}
    roles = sorted(k.split("/", 1)[1] for k in labels if k.startswith("node-role.kubernetes.io/"))
    info = st.get("nodeInfo") or {}
    addrs = {a.get("type"): a.get("address") for a in st.get("addresses") or []}
    return [
        o["metadata"]["name"],
        status,
        ",".join(roles) or "<none>",
        human_age(o["metadata"].get("creationTimestamp"), now),
        info.get("kubeletVersion", ""),
        addrs.get("InternalIP", "<none>"),
        addrs.get("ExternalIP", "<none>"),
        info.get("osImage", "<unknown>"),
        info.get("kernelVersion", "<unknown>"),
        info.get("containerRuntimeVersion", "<unknown>"),
    ]


def _sts_row(o: dict[str, Any], now: _dt.datetime) -> list[Any]:
    st = o.get("status") or {}
    return [
        o["metadata"]["name"],
        f"{st.get('readyReplicas', 0)}/{o.get('spec', {}).get('replicas', 1)}",
        human_age(o["metadata"].get("creationTimestamp"), now),
    ]


def _deploy_row(o: dict[str, Any], now: _dt.datetime) -> list[Any]:
    st = o.get("status") or {}
    return [
        o["metadata"]["name"],
        f"{st.get('readyReplicas', 0)}/{o.get('spec', {}).get('replicas', 1)}",
        st.get("updatedReplicas", 0),
        st.get("availableReplicas", 0),
        human_age(o["metadata"].get("creationTimestamp"), now),
    ]


def _node_port(p: dict[str, Any]) -> str:
    return f":{p['nodePort']}" if p.get("nodePort") else ""


def _svc_row(o: dict[str, Any], now: _dt.datetime) -> list[Any]:
    spec = o.get("spec") or {}
    ports = (
        ",".join(
            f"{p.get('port')}{_node_port(p)}/{p.get('protocol', 'TCP')}" for p in spec.get("ports") or []
        )
        or "<none>"
    )
    lb = ((o.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
    ext = ",".join(i.get("hostname") or i.get("ip", "") for i in lb) or (
        "<pending>" if spec.get("type") == "LoadBalancer" else "<none>"
    )
    return [
        o["metadata"]["name"],
        spec.get("type", "ClusterIP"),
        spec.get("clusterIP", "<none>"),
        ext,
        ports,
        human_age(o["metadata"].get("creationTimestamp"), now),
    ]


def _pvc_row(o: dict[str, Any], now: _dt.datetime) -> list[Any]:
    st, spec = o.get("status") or {}, o.get("spec") or {}
    modes = ",".join(
        {
            "ReadWriteOnce": "RWO",
            "ReadWriteMany": "RWX",
            "ReadOnlyMany": "ROX",
            "ReadWriteOncePod": "RWOP",
        }.get(m, m)
        for m in st.get("accessModes") or []
    )
    return [
        o["metadata"]["name"],
        st.get("phase", "Pending"),
        spec.get("volumeName", ""),
        (st.get("capacity") or {}).get("storage", ""),
        modes,
        spec.get("storageClassName", "<unset>"),
        human_age(o["metadata"].get("creationTimestamp"), now),
    ]


def _ns_row(o: dict[str, Any], now: _dt.datetime) -> list[Any]:
    return [
        o["metadata"]["name"],
        (o.get("status") or {}).get("phase", "Active"),
        human_age(o["metadata"].get("creationTimestamp"), now),
    ]


def _event_row(o: dict[str, Any], now: _dt.datetime) -> list[Any]:
    inv = o.get("involvedObject") or {}
    return [
        human_age(o.get("lastTimestamp") or o["metadata"].get("creationTimestamp"), now),
        o.get("type", ""),
        o.get("reason", ""),
        f"{(inv.get('kind') or '').lower()}/{inv.get('name', '')}",
        o.get("message", ""),
    ]


_MODES = {"ReadWriteOnce": "RWO", "ReadWriteMany": "RWX", "ReadOnlyMany": "ROX", "ReadWriteOncePod": "RWOP"}


def _age(o: dict[str, Any], now: _dt.datetime) -> str:
    return human_age(o["metadata"].get("creationTimestamp"), now)


def _pv_row(o: dict[str, Any], now: _dt.datetime) -> list[Any]:
    spec, st = o.get("spec") or {}, o.get("status") or {}
    ref = spec.get("claimRef") or {}
    claim = f"{ref.get('namespace')}/{ref.get('name')}" if ref else ""
    modes = ",".join(_MODES.get(m, m) for m in spec.get("accessModes") or [])
    return [
        o["metadata"]["name"],
        (spec.get("capacity") or {}).get("storage", ""),
        modes,
        spec.get("persistentVolumeReclaimPolicy", ""),
        st.get("phase", ""),
        claim,
        spec.get("storageClassName", ""),
        "<unset>",
        "",
        _age(o, now),
    ]


def _rs_row(o: dict[str, Any], now: _dt.datetime) -> list[Any]:
    st = o.get("status") or {}
    return [
        o["metadata"]["name"],
        (o.get("spec") or {}).get("replicas", 1),
        st.get("replicas", 0),
        st.get("readyReplicas", 0),
        _age(o, now),
    ]


def _ds_row(o: dict[str, Any], now: _dt.datetime) -> list[Any]:
    st = o.get("status") or {}
    sel = ((o.get("spec") or {}).get("template") or {}).get("spec", {}).get("nodeSelector") or {}
    return [
        o["metadata"]["name"],
        st.get("desiredNumberScheduled", 0),
        st.get("currentNumberScheduled", 0),
        st.get("numberReady", 0),
        st.get("updatedNumberScheduled", 0),
        st.get("numberAvailable", 0),
        ",".join(f"{k}={v}" for k, v in sorted(sel.items())) or "<none>",
        _age(o, now),
    ]


def _pdb_row(o: dict[str, Any], now: _dt.datetime) -> list[Any]:
    spec, st = o.get("spec") or {}, o.get("status") or {}
    return [
        o["metadata"]["name"],
        str(spec.get("minAvailable", "N/A")),
        str(spec.get("maxUnavailable", "N/A")),
        st.get("disruptionsAllowed", 0),
        _age(o, now),
    ]


def _ing_row(o: dict[str, Any], now: _dt.datetime) -> list[Any]:
    spec = o.get("spec") or {}
    hosts = ",".join(r.get("host", "*") for r in spec.get("rules") or []) or "*"
    lb = ((o.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
    addr = ",".join(i.get("hostname") or i.get("ip", "") for i in lb)
    ports = "80, 443" if spec.get("tls") else "80"
    return [o["metadata"]["name"], spec.get("ingressClassName") or "<none>", hosts, addr, ports, _age(o, now)]


def _default_row(o: dict[str, Any], now: _dt.datetime) -> list[Any]:
    return [o["metadata"]["name"], human_age(o["metadata"].get("creationTimestamp"), now)]


_NAME: Col = ("Name", "string", 0)
_AGE: Col = ("Age", "string", 0)
_PRINTERS: dict[str, tuple[list[Col], Callable[[dict[str, Any], _dt.datetime], list[Any]]]] = {
    "pods": (
        [
            _NAME,
            ("Ready", "string", 0),
            ("Status", "string", 0),
            ("Restarts", "string", 0),
            _AGE,
            ("IP", "string", 1),
            ("Node", "string", 1),
            ("Nominated Node", "string", 1),
            ("Readiness Gates", "string", 1),
        ],
        _pod_row,
    ),
    "nodes": (
        [
            _NAME,
            ("Status", "string", 0),
            ("Roles", "string", 0),
            _AGE,
            ("Version", "string", 0),
            ("Internal-IP", "string", 1),
            ("External-IP", "string", 1),
            ("OS-Image", "string", 1),
            ("Kernel-Version", "string", 1),
            ("Container-Runtime", "string", 1),
        ],
        _node_row,
    ),
    "statefulsets.apps": ([_NAME, ("Ready", "string", 0), _AGE], _sts_row),
    "deployments.apps": (
        [_NAME, ("Ready", "string", 0), ("Up-to-date", "integer", 0), ("Available", "integer", 0), _AGE],
        _deploy_row,
    ),
    "services": (
        [
            _NAME,
            ("Type", "string", 0),
            ("Cluster-IP", "string", 0),
            ("External-IP", "string", 0),
            ("Port(s)", "string", 0),
            _AGE,
        ],
        _svc_row,
    ),
    "persistentvolumeclaims": (
        [
            _NAME,
            ("Status", "string", 0),
            ("Volume", "string", 0),
            ("Capacity", "string", 0),
            ("Access Modes", "string", 0),
            ("StorageClass", "string", 0),
            _AGE,
        ],
        _pvc_row,
    ),
    "namespaces": ([_NAME, ("Status", "string", 0), _AGE], _ns_row),
    "persistentvolumes": (
        [
            _NAME,
            ("Capacity", "string", 0),
            ("Access Modes", "string", 0),
            ("Reclaim Policy", "string", 0),
            ("Status", "string", 0),
            ("Claim", "string", 0),
            ("StorageClass", "string", 0),
            ("VolumeAttributesClass", "string", 0),
            ("Reason", "string", 0),
            _AGE,
        ],
        _pv_row,
    ),
    "replicasets.apps": (
        [_NAME, ("Desired", "integer", 0), ("Current", "integer", 0), ("Ready", "integer", 0), _AGE],
        _rs_row,
    ),
    "daemonsets.apps": (
        [
            _NAME,
            ("Desired", "integer", 0),
            ("Current", "integer", 0),
            ("Ready", "integer", 0),
            ("Up-to-date", "integer", 0),
            ("Available", "integer", 0),
            ("Node Selector", "string", 0),
            _AGE,
        ],
        _ds_row,
    ),
    "poddisruptionbudgets.policy": (
        [
            _NAME,
            ("Min Available", "string", 0),
            ("Max Unavailable", "string", 0),
            ("Allowed Disruptions", "integer", 0),
            _AGE,
        ],
        _pdb_row,
    ),
    "ingresses.networking.k8s.io": (
        [
            _NAME,
            ("Class", "string", 0),
            ("Hosts", "string", 0),
            ("Address", "string", 0),
            ("Ports", "string", 0),
            _AGE,
        ],
        _ing_row,
    ),
    "events": (
        [
            ("Last Seen", "string", 0),
            ("Type", "string", 0),
            ("Reason", "string", 0),
            ("Object", "string", 0),
            ("Message", "string", 0),
        ],
        _event_row,
    ),
}


def to_table(
    rt: res.ResourceType,
    items: list[dict[str, Any]],
    rv: str,
    now: _dt.datetime,
    include_object: str = "Metadata",
) -> dict[str, Any]:
    """A ``Table`` of ``items``; ``include_object`` ``Metadata`` (default), ``Object`` or ``None``."""
    cols, row_fn = _PRINTERS.get(rt.key, ([_NAME, _AGE], _default_row))
    rows = []
    for o in items:
        row: dict[str, Any] = {"cells": row_fn(o, now)}
        if include_object == "Object":
            row["object"] = o
        elif include_object != "None":
            row["object"] = {
                "kind": "PartialObjectMetadata",
                "apiVersion": "meta.k8s.io/v1",
                "metadata": o["metadata"],
            }
        rows.append(row)
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": rv},
        "columnDefinitions": [
            {"name": n, "type": t, "format": "name" if n == "Name" else "", "description": n, "priority": p}
            for n, t, p in cols
        ],
        "rows": rows,
    }
