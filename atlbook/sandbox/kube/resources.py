"""The resource types the emulator serves, and the discovery documents that describe them.

One :class:`ResourceType` per REST resource (group, version, plural, kind, scope, verbs, short names,
subresources). Discovery (``/api``, ``/apis``, ``/api/v1``, ``/apis/<group>/<version>``) is generated
from this table, so a kind is served exactly when it is listed here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "RESOURCES",
    "ResourceType",
    "api_group",
    "api_group_list",
    "api_resource_list",
    "api_versions",
    "by_key",
    "by_kind",
    "find",
    "group_versions",
    "openapi_v3_document",
    "openapi_v3_index",
    "version_info",
]

_RW = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")


@dataclass(frozen=True)
class ResourceType:
    """One REST resource: ``group``/``version``/``plural`` plus its kind, scope and subresources."""

    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    subresources: tuple[str, ...] = ()
    verbs: tuple[str, ...] = _RW
    categories: tuple[str, ...] = ()
    singular: str = field(default="")

    @property
    def api_version(self) -> str:
        """``v1`` for the core group, else ``group/version``."""
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def key(self) -> str:
        """``plural`` or ``plural.group``: the store's key for this resource."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def has_status(self) -> bool:
        """Whether writes to the main resource ignore ``status`` (a status subresource exists)."""
        return "status" in self.subresources


def _r(
    group: str,
    plural: str,
    kind: str,
    namespaced: bool,
    short: tuple[str, ...] = (),
    sub: tuple[str, ...] = (),
    verbs: tuple[str, ...] = _RW,
    cat: tuple[str, ...] = (),
    version: str = "v1",
) -> ResourceType:
    return ResourceType(group, version, plural, kind, namespaced, short, sub, verbs, cat, kind.lower())


RESOURCES: tuple[ResourceType, ...] = (
    _r(
        "",
        "namespaces",
        "Namespace",
        False,
        ("ns",),
        ("status", "finalize"),
        ("create", "delete", "get", "list", "patch", "update", "watch"),
    ),
    _r("", "nodes", "Node", False, ("no",), ("status", "proxy")),
    _r(
        "",
        "pods",
        "Pod",
        True,
        ("po",),
        ("status", "log", "eviction", "binding", "proxy", "exec"),
        cat=("all",),
    ),
    _r("", "bindings", "Binding", True, (), (), ("create",)),
    _r(
        "",
        "services",
        "Service",
        True,
        ("svc",),
        ("status", "proxy"),
        ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"),
        ("all",),
    ),
    _r("", "endpoints", "Endpoints", True, ("ep",)),
    _r("", "configmaps", "ConfigMap", True, ("cm",)),
    _r("", "secrets", "Secret", True),
    _r("", "events", "Event", True, ("ev",)),
    _r("", "serviceaccounts", "ServiceAccount", True, ("sa",)),
    _r("", "persistentvolumeclaims", "PersistentVolumeClaim", True, ("pvc",), ("status",)),
    _r("", "persistentvolumes", "PersistentVolume", False, ("pv",), ("status",)),
    _r("", "resourcequotas", "ResourceQuota", True, ("quota",), ("status",)),
    _r("", "limitranges", "LimitRange", True, ("limits",)),
    _r("apps", "statefulsets", "StatefulSet", True, ("sts",), ("status", "scale"), cat=("all",)),
    _r("apps", "deployments", "Deployment", True, ("deploy",), ("status", "scale"), cat=("all",)),
    _r("apps", "replicasets", "ReplicaSet", True, ("rs",), ("status", "scale"), cat=("all",)),
    _r("apps", "daemonsets", "DaemonSet", True, ("ds",), ("status",), cat=("all",)),
    _r("apps", "controllerrevisions", "ControllerRevision", True),
    _r("networking.k8s.io", "ingresses", "Ingress", True, ("ing",), ("status",)),
    _r("networking.k8s.io", "ingressclasses", "IngressClass", False),
    _r("networking.k8s.io", "networkpolicies", "NetworkPolicy", True, ("netpol",)),
    _r("policy", "poddisruptionbudgets", "PodDisruptionBudget", True, ("pdb",), ("status",)),
    _r("rbac.authorization.k8s.io", "roles", "Role", True),
    _r("rbac.authorization.k8s.io", "rolebindings", "RoleBinding", True),
    _r("rbac.authorization.k8s.io", "clusterroles", "ClusterRole", False),
    _r("rbac.authorization.k8s.io", "clusterrolebindings", "ClusterRoleBinding", False),
    _r("coordination.k8s.io", "leases", "Lease", True),
    _r("metrics.k8s.io", "pods", "PodMetrics", True, verbs=("get", "list"), version="v1beta1"),
    _r("metrics.k8s.io", "nodes", "NodeMetrics", False, verbs=("get", "list"), version="v1beta1"),
    _r("scheduling.k8s.io", "priorityclasses", "PriorityClass", False, ("pc",)),
    _r("storage.k8s.io", "storageclasses", "StorageClass", False, ("sc",)),
)

_BY_PATH: dict[tuple[str, str, str], ResourceType] = {(r.group, r.version, r.plural): r for r in RESOURCES}
_BY_KIND: dict[tuple[str, str], ResourceType] = {(r.api_version, r.kind): r for r in RESOURCES}
_BY_KEY: dict[str, ResourceType] = {r.key: r for r in RESOURCES}


def find(group: str, version: str, plural: str) -> ResourceType | None:
    """The resource served at ``group/version/plural``, or ``None`` when it is not served."""
    return _BY_PATH.get((group, version, plural))


def by_kind(api_version: str, kind: str) -> ResourceType:
    """The resource of ``apiVersion``/``kind``; raises ``KeyError`` when the kind is not served."""
    return _BY_KIND[(api_version, kind)]


def by_key(key: str) -> ResourceType:
    """The resource for a store key (``pods``, ``statefulsets.apps``); ``KeyError`` when unknown."""
    return _BY_KEY[key]


def group_versions() -> dict[str, list[str]]:
    """Named API groups and their versions (the core group is not included)."""
    out: dict[str, list[str]] = {}
    for r in RESOURCES:
        if r.group and r.version not in out.setdefault(r.group, []):
            out[r.group].append(r.version)
    return out


def api_versions(server_address: str) -> dict[str, Any]:
    """The ``/api`` document (``APIVersions``)."""
    return {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}],
    }


def api_group(group: str) -> dict[str, Any]:
    """The ``/apis/<group>`` document (``APIGroup``)."""
    versions = group_versions()[group]
    gvs = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions]
    return {
        "kind": "APIGroup",
        "apiVersion": "v1",
        "name": group,
        "versions": gvs,
        "preferredVersion": gvs[0],
    }


def api_group_list() -> dict[str, Any]:
    """The ``/apis`` document (``APIGroupList``)."""
    groups = []
    for g in group_versions():
        doc = api_group(g)
        doc.pop("kind")
        doc.pop("apiVersion")
        groups.append(doc)
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}


def api_resource_list(group: str, version: str) -> dict[str, Any] | None:
    """The ``APIResourceList`` of one group version, or ``None`` when it is not served."""
    items: list[dict[str, Any]] = []
    for r in RESOURCES:
        if r.group != group or r.version != version:
            continue
        entry: dict[str, Any] = {
            "name": r.plural,
            "singularName": r.singular,
            "namespaced": r.namespaced,
            "kind": r.kind,
            "verbs": list(r.verbs),
        }
        if r.short_names:
            entry["shortNames"] = list(r.short_names)
        if r.categories:
            entry["categories"] = list(r.categories)
        items.append(entry)
        for sub in r.subresources:
            sub_entry: dict[str, Any] = {
                "name": f"{r.plural}/{sub}",
                "singularName": "",
                "namespaced": r.namespaced,
                "kind": r.kind,
                "verbs": ["get", "patch", "update"],
            }
            if sub == "scale":
                sub_entry.update(group="autoscaling", version="v1", kind="Scale")
            elif sub == "eviction":
                sub_entry.update(group="policy", version="v1", kind="Eviction", verbs=["create"])
            elif sub == "binding":
                sub_entry.update(kind="Binding", verbs=["create"])
            elif sub == "log":
                sub_entry.update(kind="Pod", verbs=["get"])
            elif sub == "proxy":
                sub_entry.update(
                    kind="PodProxyOptions" if r.plural == "pods" else f"{r.kind}ProxyOptions",
                    verbs=["create", "delete", "get", "patch", "update"],
                )
            elif sub == "exec":
                sub_entry.update(kind="PodExecOptions", verbs=["create", "get"])
            elif sub == "finalize":
                sub_entry.update(verbs=["update"])
            items.append(sub_entry)
    if not items:
        return None
    gv = f"{group}/{version}" if group else version
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": items}


def openapi_v3_index() -> dict[str, Any]:
    """The ``/openapi/v3`` index: one document per group version (kubectl's field-validation probe)."""
    paths: dict[str, Any] = {"api/v1": {"serverRelativeURL": "/openapi/v3/api/v1?hash=sandbox"}}
    for g, versions in group_versions().items():
        for v in versions:
            paths[f"apis/{g}/{v}"] = {"serverRelativeURL": f"/openapi/v3/apis/{g}/{v}?hash=sandbox"}
    return {"paths": paths}


def openapi_v3_document(group: str, version: str) -> dict[str, Any] | None:
    """A minimal OpenAPI v3 document of a group version: PATCH operations tagged with their GVK and the
    ``fieldValidation`` query parameter, so kubectl validates server-side instead of downloading schemas.
    ``None`` when the group version is not served."""
    paths: dict[str, Any] = {}
    for r in RESOURCES:
        if r.group != group or r.version != version or "patch" not in r.verbs:
            continue
        prefix = f"/apis/{group}/{version}" if group else f"/api/{version}"
        path = (
            f"{prefix}/namespaces/{{namespace}}/{r.plural}/{{name}}"
            if r.namespaced
            else f"{prefix}/{r.plural}/{{name}}"
        )
        paths[path] = {
            "patch": {
                "operationId": f"patch{r.kind}",
                "x-kubernetes-group-version-kind": {"group": group, "version": version, "kind": r.kind},
                "x-kubernetes-action": "patch",
                "parameters": [
                    {
                        "name": "fieldValidation",
                        "in": "query",
                        "schema": {"type": "string", "uniqueItems": True},
                    },
                    {
                        "name": "fieldManager",
                        "in": "query",
                        "schema": {"type": "string", "uniqueItems": True},
                    },
                ],
                "responses": {"200": {"description": "OK"}},
            }
        }
    if not paths:
        return None
    return {
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": "v1.32.0"},
        "paths": paths,
        "components": {"schemas": {}},
    }


def version_info() -> dict[str, str]:
    """The ``/version`` document; every field the official client's ``VersionInfo`` requires."""
    return {
        "major": "1",
        "minor": "32",
        "gitVersion": "v1.32.0-atlbook-sandbox",
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2026-01-01T00:00:00Z",
        "goVersion": "go1.23.4",
        "compiler": "gc",
        "platform": "linux/amd64",
    }
