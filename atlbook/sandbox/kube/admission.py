"""Admission on the emulated API server: defaulting, validation and the admission plugins that matter.

Runs inside :class:`~atlbook.sandbox.kube.models.Store` writes, under the store lock. What it does,
per kind: namespace lifecycle (no new content in a Terminating namespace, 403); Pod defaults
(restartPolicy, grace period, scheduler, service account, priority from its PriorityClass — unknown
class 403 — the DefaultTolerationSeconds not-ready/unreachable tolerations, LimitRange defaults,
requests defaulted from limits, QoS class) and ResourceQuota (403 when exceeded); Service cluster IP
and node port allocation; workload defaults and ``selector`` must match template labels (422); PVC
default StorageClass; Secret ``stringData``; immutable fields on update (Pod spec, workload selectors,
422). Validation is deliberately partial: names, required fields the controllers rely on.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import re
from typing import TYPE_CHECKING, Any

from . import resources as res
from .errors import FORBIDDEN_TERMINATING_NS_MSG, Forbidden, Invalid
from .quantity import parse_quantity
from .selectors import match_label_selector

if TYPE_CHECKING:
    from .models import Obj, Store

__all__ = [
    "DNS1123_SUBDOMAIN_MSG",
    "POD_UPDATE_FORBIDDEN_MSG",
    "QUOTA_EXCEEDED_MSG",
    "SELECTOR_MISMATCH_MSG",
    "Admission",
    "pod_requests",
    "qos_class",
    "quota_format",
    "quota_usage",
    "template_hash",
]

DNS1123_SUBDOMAIN_MSG = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must "
    "start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is "
    "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)
SELECTOR_MISMATCH_MSG = "`selector` does not match template `labels`"
POD_UPDATE_FORBIDDEN_MSG = (
    "Forbidden: pod updates may not change fields other than `spec.containers[*].image`,"
    "`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` "
    "(only additions to existing tolerations),`spec.terminationGracePeriodSeconds` "
    "(allow it to be set to 1 if it was previously negative)"
)
QUOTA_EXCEEDED_MSG = (
    '{resource} "{name}" is forbidden: exceeded quota: {quota}, requested: {requested}, used: {used}, '
    "limited: {limited}"
)
_DNS1123 = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_WORKLOADS = ("statefulsets.apps", "deployments.apps", "replicasets.apps", "daemonsets.apps")


def template_hash(template: Any) -> str:
    """A short stable hash of a pod template (the ``pod-template-hash``/revision suffix)."""
    import json

    digest = hashlib.sha1(json.dumps(template, sort_keys=True).encode()).hexdigest()
    alphabet = "bcdfghjklmnpqrstvwxz2456789"
    n = int(digest[:16], 16)
    out = ""
    for _ in range(10):
        n, r = divmod(n, len(alphabet))
        out += alphabet[r]
    return out


def pod_requests(pod: Obj) -> dict[str, float]:
    """Effective requests of a pod: cpu (cores), memory (bytes), as the scheduler counts them.

    Sum over containers, max with each init container, plus ``spec.overhead``.
    """
    spec = pod.get("spec", {})
    total = {"cpu": 0.0, "memory": 0.0}
    for c in spec.get("containers") or []:
        req = (c.get("resources") or {}).get("requests") or {}
        for k in total:
            total[k] += parse_quantity(req.get(k))
    for c in spec.get("initContainers") or []:
        req = (c.get("resources") or {}).get("requests") or {}
        for k in total:
            total[k] = max(total[k], parse_quantity(req.get(k)))
    for k, v in (spec.get("overhead") or {}).items():
        if k in total:
            total[k] += parse_quantity(v)
    return total


def qos_class(pod: Obj) -> str:
    """Guaranteed / Burstable / BestEffort from the containers' requests and limits."""
    containers = (pod.get("spec", {}).get("containers") or []) + (
        pod.get("spec", {}).get("initContainers") or []
    )
    any_set = False
    guaranteed = True
    for c in containers:
        r = c.get("resources") or {}
        req, lim = r.get("requests") or {}, r.get("limits") or {}
        if req or lim:
            any_set = True
        for k in ("cpu", "memory"):
            if k not in lim or parse_quantity(req.get(k, lim.get(k))) != parse_quantity(lim[k]):
                guaranteed = False
    if not any_set:
        return "BestEffort"
    return "Guaranteed" if guaranteed else "Burstable"


class Admission:
    """Defaulting, validation and admission plugins, bound to a store."""

    def __init__(self, store: Store) -> None:
        """Admission for ``store`` (reads namespaces, PriorityClasses, LimitRanges, quotas)."""
        self.store = store
        self._ips = itertools.count(10)
        self._node_ports = itertools.count(30000)

    # -- entry points --------------------------------------------------------------------------------
    def on_create(self, rt: res.ResourceType, obj: Obj) -> None:
        """Default and validate a new object in place; raises 403/422 errors."""
        meta = obj["metadata"]
        name = meta["name"]
        if rt.namespaced:
            ns = self.store.peek("namespaces", None, meta["namespace"])
            if ns is not None and ns["metadata"].get("deletionTimestamp"):
                raise Forbidden(
                    FORBIDDEN_TERMINATING_NS_MSG.format(
                        resource=rt.plural, name=name, namespace=meta["namespace"]
                    )
                )
        if not _DNS1123.match(name) or len(name) > 253:
            raise Invalid.of(
                rt.kind,
                name,
                [("metadata.name", "FieldValueInvalid", f'Invalid value: "{name}": {DNS1123_SUBDOMAIN_MSG}')],
                rt.group,
            )
        handler = getattr(self, "_create_" + rt.kind.lower(), None)
        if handler is not None:
            handler(rt, obj)
        if rt.key in _WORKLOADS:
            self._workload(rt, obj)

    def on_update(self, rt: res.ResourceType, old: Obj, new: Obj, subresource: str | None) -> None:
        """Validate an update (immutable fields); raises 422."""
        if subresource is not None:
            return
        name = new["metadata"]["name"]
        if rt.key == "pods":

            def strip(spec: Any) -> Any:
                s = dict(spec or {})
                for f in ("containers", "initContainers"):
                    s[f] = [{k: v for k, v in c.items() if k != "image"} for c in s.get(f) or []]
                for f in ("tolerations", "activeDeadlineSeconds", "terminationGracePeriodSeconds"):
                    s.pop(f, None)
                return s

            old_spec, new_spec = old.get("spec", {}), new.get("spec", {})
            if new_spec.get("nodeName") is None and old_spec.get("nodeName"):
                new_spec["nodeName"] = old_spec["nodeName"]
            self._default_pod_spec(new, new_spec)
            if strip(old_spec) != strip(new_spec):
                raise Invalid.of("Pod", name, [("spec", "FieldValueForbidden", POD_UPDATE_FORBIDDEN_MSG)])
        if rt.key in _WORKLOADS:
            self._workload(rt, new)
            if (old.get("spec") or {}).get("selector") != (new.get("spec") or {}).get("selector"):
                raise Invalid.of(
                    rt.kind,
                    name,
                    [("spec.selector", "FieldValueInvalid", "Invalid value: field is immutable")],
                    rt.group,
                )
        if rt.key == "services":
            spec, ospec = new.setdefault("spec", {}), old.get("spec", {})
            for k in ("clusterIP", "clusterIPs", "ipFamilies", "ipFamilyPolicy"):
                if k in ospec and k not in spec:
                    spec[k] = ospec[k]
            self._service_defaults(spec)

    # -- kinds ---------------------------------------------------------------------------------------
    def _create_namespace(self, rt: res.ResourceType, obj: Obj) -> None:
        obj["metadata"].setdefault("labels", {})["kubernetes.io/metadata.name"] = obj["metadata"]["name"]
        obj["spec"] = {"finalizers": ["kubernetes"]}
        obj["status"] = {"phase": "Active"}

    def _create_secret(self, rt: res.ResourceType, obj: Obj) -> None:
        obj.setdefault("type", "Opaque")
        string_data = obj.pop("stringData", None) or {}
        data = obj.setdefault("data", {})
        for k, v in string_data.items():
            data[k] = base64.b64encode(str(v).encode()).decode()

    def _create_persistentvolumeclaim(self, rt: res.ResourceType, obj: Obj) -> None:
        spec = obj.setdefault("spec", {})
        if "storageClassName" not in spec:
            for sc in self.store.iter("storageclasses"):
                if (sc["metadata"].get("annotations") or {}).get(
                    "storageclass.kubernetes.io/is-default-class"
                ) == "true":
                    spec["storageClassName"] = sc["metadata"]["name"]
                    break
        spec.setdefault("volumeMode", "Filesystem")
        if not spec.get("accessModes"):
            raise Invalid.of(
                "PersistentVolumeClaim",
                obj["metadata"]["name"],
                [
                    (
                        "spec.accessModes",
                        "FieldValueRequired",
                        "Required value: at least 1 access mode is required",
                    )
                ],
            )
        obj["status"] = {"phase": "Pending"}

    def _create_persistentvolume(self, rt: res.ResourceType, obj: Obj) -> None:
        obj.setdefault("spec", {}).setdefault("persistentVolumeReclaimPolicy", "Retain")
        obj.setdefault("status", {"phase": "Available" if not obj["spec"].get("claimRef") else "Bound"})

    def _create_service(self, rt: res.ResourceType, obj: Obj) -> None:
        spec = obj.setdefault("spec", {})
        self._service_defaults(spec)
        obj["status"] = {"loadBalancer": {}}

    def _service_defaults(self, spec: Obj) -> None:
        spec.setdefault("type", "ClusterIP")
        spec.setdefault("sessionAffinity", "None")
        if spec["type"] != "ExternalName":
            if "clusterIP" not in spec:
                n = next(self._ips)
                spec["clusterIP"] = f"172.20.{(n // 250) % 250}.{n % 250 + 1}"
            spec.setdefault("clusterIPs", [spec["clusterIP"]])
            spec.setdefault("ipFamilies", ["IPv4"])
            spec.setdefault("ipFamilyPolicy", "SingleStack")
            spec.setdefault("internalTrafficPolicy", "Cluster")
        for p in spec.get("ports") or []:
            p.setdefault("protocol", "TCP")
            p.setdefault("targetPort", p.get("port"))
            if spec["type"] in ("NodePort", "LoadBalancer") and "nodePort" not in p:
                p["nodePort"] = next(self._node_ports)
        if spec["type"] in ("NodePort", "LoadBalancer"):
            spec.setdefault("externalTrafficPolicy", "Cluster")

    def _create_pod(self, rt: res.ResourceType, obj: Obj) -> None:
        meta = obj["metadata"]
        spec = obj.setdefault("spec", {})
        containers = spec.get("containers")
        causes: list[tuple[str, str, str]] = []
        if not containers:
            causes.append(("spec.containers", "FieldValueRequired", "Required value"))
        for i, c in enumerate(containers or []):
            if not c.get("name"):
                causes.append((f"spec.containers[{i}].name", "FieldValueRequired", "Required value"))
            if not c.get("image"):
                causes.append((f"spec.containers[{i}].image", "FieldValueRequired", "Required value"))
        if causes:
            raise Invalid.of("Pod", meta["name"], causes)
        self._default_pod_spec(obj, spec)
        pc_name = spec.get("priorityClassName")
        if pc_name:
            pc = self.store.peek("priorityclasses", None, pc_name)
            if pc is None:
                raise Forbidden(
                    f'pods "{meta["name"]}" is forbidden: no PriorityClass with name {pc_name} was found'
                )
            spec["priority"] = int(pc.get("value", 0))
            spec.setdefault("preemptionPolicy", pc.get("preemptionPolicy", "PreemptLowerPriority"))
        else:
            default = next((p for p in self.store.iter("priorityclasses") if p.get("globalDefault")), None)
            if default is not None:
                spec["priorityClassName"] = default["metadata"]["name"]
                spec["priority"] = int(default.get("value", 0))
            else:
                spec.setdefault("priority", 0)
            spec.setdefault("preemptionPolicy", "PreemptLowerPriority")
        self._limit_ranges(obj)
        self._quota(obj)
        obj["status"] = {"phase": "Pending", "qosClass": qos_class(obj)}

    def _default_pod_spec(self, obj: Obj, spec: Obj) -> None:
        spec.setdefault("restartPolicy", "Always")
        spec.setdefault("terminationGracePeriodSeconds", 30)
        spec.setdefault("dnsPolicy", "ClusterFirst")
        spec.setdefault("schedulerName", "default-scheduler")
        spec.setdefault("serviceAccountName", spec.get("serviceAccount") or "default")
        spec.setdefault("serviceAccount", spec["serviceAccountName"])
        spec.setdefault("securityContext", {})
        spec.setdefault("enableServiceLinks", True)
        tolerations = spec.setdefault("tolerations", [])
        for key in ("node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable"):
            if not any(
                t.get("key") == key and t.get("effect") in (None, "", "NoExecute") for t in tolerations
            ) and not any(t.get("operator") == "Exists" and not t.get("key") for t in tolerations):
                tolerations.append(
                    {"key": key, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}
                )
        for c in (spec.get("containers") or []) + (spec.get("initContainers") or []):
            image = str(c.get("image", ""))
            tag = image.rsplit("/", 1)[-1]
            latest = ":" not in tag or tag.endswith(":latest")
            c.setdefault("imagePullPolicy", "Always" if latest and "@" not in image else "IfNotPresent")
            c.setdefault("terminationMessagePath", "/dev/termination-log")
            c.setdefault("terminationMessagePolicy", "File")
            r = c.setdefault("resources", {})
            lim = r.get("limits") or {}
            if lim:
                req = r.setdefault("requests", {})
                for k, v in lim.items():
                    req.setdefault(k, v)
            for p in c.get("ports") or []:
                p.setdefault("protocol", "TCP")

    def _limit_ranges(self, pod: Obj) -> None:
        for lr in self.store.iter("limitranges", pod["metadata"]["namespace"]):
            for limit in (lr.get("spec") or {}).get("limits") or []:
                if limit.get("type") != "Container":
                    continue
                for c in pod["spec"].get("containers") or []:
                    r = c.setdefault("resources", {})
                    for k, v in (limit.get("default") or {}).items():
                        r.setdefault("limits", {}).setdefault(k, v)
                    for k, v in (limit.get("defaultRequest") or {}).items():
                        r.setdefault("requests", {}).setdefault(k, v)
                    for k, v in (r.get("limits") or {}).items():
                        r.setdefault("requests", {}).setdefault(k, v)

    def _quota(self, pod: Obj) -> None:
        ns = pod["metadata"]["namespace"]
        quotas = list(self.store.iter("resourcequotas", ns))
        if not quotas:
            return
        pods = [
            p
            for p in self.store.iter("pods", ns)
            if p.get("status", {}).get("phase") not in ("Succeeded", "Failed")
        ]
        used = quota_usage(pods)
        want = quota_usage([pod])
        for q in quotas:
            hard = (q.get("spec") or {}).get("hard") or {}
            for key, limit in hard.items():
                if key not in want:
                    continue
                if used.get(key, 0.0) + want[key] > parse_quantity(limit):
                    raise Forbidden(
                        QUOTA_EXCEEDED_MSG.format(
                            resource="pods",
                            name=pod["metadata"]["name"],
                            quota=q["metadata"]["name"],
                            requested=f"{key}={quota_format(key, want[key])}",
                            used=f"{key}={quota_format(key, used.get(key, 0.0))}",
                            limited=f"{key}={limit}",
                        )
                    )

    def _workload(self, rt: res.ResourceType, obj: Obj) -> None:
        spec = obj.setdefault("spec", {})
        name = obj["metadata"]["name"]
        selector = spec.get("selector")
        labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
        if not selector:
            raise Invalid.of(
                rt.kind, name, [("spec.selector", "FieldValueRequired", "Required value")], rt.group
            )
        if not match_label_selector(selector, labels):
            raise Invalid.of(
                rt.kind,
                name,
                [
                    (
                        "spec.template.metadata.labels",
                        "FieldValueInvalid",
                        f"Invalid value: {_go_map(labels)}: {SELECTOR_MISMATCH_MSG}",
                    )
                ],
                rt.group,
            )
        if rt.kind != "DaemonSet":
            spec.setdefault("replicas", 1)
        spec.setdefault("revisionHistoryLimit", 10)
        tpl_spec = spec.setdefault("template", {}).setdefault("spec", {})
        self._default_pod_spec_template(tpl_spec)
        if rt.kind == "StatefulSet":
            spec.setdefault("podManagementPolicy", "OrderedReady")
            us = spec.setdefault("updateStrategy", {"type": "RollingUpdate"})
            if us.get("type", "RollingUpdate") == "RollingUpdate":
                us["type"] = "RollingUpdate"
                us.setdefault("rollingUpdate", {}).setdefault("partition", 0)
            spec.setdefault(
                "persistentVolumeClaimRetentionPolicy", {"whenDeleted": "Retain", "whenScaled": "Retain"}
            )
            for t in spec.get("volumeClaimTemplates") or []:
                t.setdefault("apiVersion", "v1")
                t.setdefault("kind", "PersistentVolumeClaim")
                t.setdefault("spec", {}).setdefault("volumeMode", "Filesystem")
        elif rt.kind == "Deployment":
            st = spec.setdefault("strategy", {"type": "RollingUpdate"})
            if st.get("type", "RollingUpdate") == "RollingUpdate":
                st["type"] = "RollingUpdate"
                ru = st.setdefault("rollingUpdate", {})
                ru.setdefault("maxSurge", "25%")
                ru.setdefault("maxUnavailable", "25%")
            spec.setdefault("progressDeadlineSeconds", 600)
        elif rt.kind == "DaemonSet":
            us = spec.setdefault("updateStrategy", {"type": "RollingUpdate"})
            if us.get("type", "RollingUpdate") == "RollingUpdate":
                us["type"] = "RollingUpdate"
                us.setdefault("rollingUpdate", {"maxUnavailable": 1, "maxSurge": 0})

    @staticmethod
    def _default_pod_spec_template(spec: Obj) -> None:
        spec.setdefault("restartPolicy", "Always")
        spec.setdefault("terminationGracePeriodSeconds", 30)
        spec.setdefault("dnsPolicy", "ClusterFirst")
        spec.setdefault("schedulerName", "default-scheduler")
        spec.setdefault("securityContext", {})


def quota_usage(pods: list[Obj]) -> dict[str, float]:
    """What ``pods`` count against ResourceQuota keys (``pods``, ``requests.cpu``, ``limits.memory``…)."""
    out = {
        "pods": float(len(pods)),
        "count/pods": float(len(pods)),
        "requests.cpu": 0.0,
        "requests.memory": 0.0,
        "limits.cpu": 0.0,
        "limits.memory": 0.0,
        "cpu": 0.0,
        "memory": 0.0,
    }
    for p in pods:
        for c in p.get("spec", {}).get("containers") or []:
            r = c.get("resources") or {}
            for kind in ("requests", "limits"):
                for k in ("cpu", "memory"):
                    v = parse_quantity((r.get(kind) or {}).get(k))
                    out[f"{kind}.{k}"] += v
                    if kind == "requests":
                        out[k] += v
    return out


def quota_format(key: str, v: float) -> str:
    """A quota amount as the API shows it (memory in binary units, cpu in millicores)."""
    if key.endswith("memory"):
        from .quantity import format_bytes

        return format_bytes(v)
    if key.endswith("cpu"):
        return f"{int(round(v * 1000))}m" if v != int(v) else str(int(v))
    return str(int(v))


def _go_map(labels: dict[str, str]) -> str:
    return "map[string]string{" + ", ".join(f'"{k}":"{v}"' for k, v in sorted(labels.items())) + "}"
