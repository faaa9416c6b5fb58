"""EKS add-ons, which moto lacks: state and rules (``AddonBackend``) plus their REST-JSON wire form.

Serves ``CreateAddon``, ``DescribeAddon``, ``ListAddons``, ``DeleteAddon``, ``UpdateAddon`` and
``DescribeAddonVersions`` the way EKS answers them (paths, fields, ``x-amzn-ErrorType`` errors). An add-on
is ``CREATING`` for :data:`ADDON_CREATE_SECONDS` simulated seconds, then ``ACTIVE``; deleting removes it.
It refuses add-ons outside :data:`ADDON_CATALOGUE`, versions not in the catalogue, clusters moto does not
know, and a second add-on of the same name (``ResourceInUseException``).

Listeners (``on_change(cluster, addon_name, present)``) let the EKS mirror show an add-on's workloads
(DaemonSets/Deployments) in the emulated cluster.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

__all__ = [
    "ADDON_CATALOGUE",
    "ADDON_CREATE_SECONDS",
    "ADDON_NOT_FOUND_MSG",
    "ADDON_WORKLOADS",
    "Addon",
    "AddonBackend",
    "AddonError",
    "handle_addon_request",
]

ADDON_CREATE_SECONDS = 30.0
"""Simulated seconds an add-on stays CREATING."""

ADDON_NOT_FOUND_MSG = "No addon: {addon} found in cluster: {cluster}"
CLUSTER_NOT_FOUND_MSG = "No cluster found for name: {cluster}."
ADDON_EXISTS_MSG = "Addon already exists."

_KUBE_VERSIONS = ("1.19", "1.24", "1.25", "1.26", "1.27", "1.28", "1.29", "1.30", "1.31", "1.32", "1.33")

ADDON_CATALOGUE: dict[str, dict[str, Any]] = {
    "vpc-cni": {"type": "networking", "versions": ["v1.19.2-eksbuild.1", "v1.18.6-eksbuild.1"]},
    "kube-proxy": {"type": "networking", "versions": ["v1.31.3-eksbuild.2", "v1.30.7-eksbuild.2"]},
    "coredns": {"type": "networking", "versions": ["v1.11.4-eksbuild.2", "v1.11.3-eksbuild.1"]},
    "aws-ebs-csi-driver": {"type": "storage", "versions": ["v1.38.1-eksbuild.2", "v1.37.0-eksbuild.1"]},
    "aws-efs-csi-driver": {"type": "storage", "versions": ["v2.1.4-eksbuild.1", "v2.1.0-eksbuild.1"]},
    "eks-pod-identity-agent": {"type": "security", "versions": ["v1.3.4-eksbuild.1"]},
    "metrics-server": {"type": "observability", "versions": ["v0.7.2-eksbuild.1"]},
}
"""Add-ons the sandbox knows, newest version first (the first is the default)."""

ADDON_WORKLOADS: dict[str, list[tuple[str, str, int]]] = {
    "vpc-cni": [("DaemonSet", "aws-node", 0)],
    "kube-proxy": [("DaemonSet", "kube-proxy", 0)],
    "coredns": [("Deployment", "coredns", 2)],
    "aws-ebs-csi-driver": [("Deployment", "ebs-csi-controller", 2), ("DaemonSet", "ebs-csi-node", 0)],
    "aws-efs-csi-driver": [("Deployment", "efs-csi-controller", 2), ("DaemonSet", "efs-csi-node", 0)],
    "eks-pod-identity-agent": [("DaemonSet", "eks-pod-identity-agent", 0)],
    "metrics-server": [("Deployment", "metrics-server", 2)],
}
"""Workloads in ``kube-system`` per add-on: (kind, name, replicas; 0 for DaemonSets)."""


class AddonError(Exception):
    """An EKS error with its wire form (``code`` is the ``x-amzn-ErrorType``)."""

    def __init__(self, status: int, code: str, message: str, **extra: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.extra = extra

    def body(self) -> dict[str, Any]:
        """The JSON error body."""
        return {"message": self.message, **self.extra}


@dataclass
class Addon:
    """One installed add-on."""

    cluster: str
    name: str
    version: str
    region: str
    account: str
    created_sim: float
    role_arn: str | None = None
    configuration_values: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    deleting: bool = False

    def status(self, now_sim: float) -> str:
        """CREATING until the create delay has passed on the simulated clock, then ACTIVE."""
        if self.deleting:
            return "DELETING"
        return "ACTIVE" if now_sim - self.created_sim >= ADDON_CREATE_SECONDS else "CREATING"

    def to_json(self, now_sim: float) -> dict[str, Any]:
        """The ``Addon`` structure of the EKS API."""
        out: dict[str, Any] = {
            "addonName": self.name,
            "clusterName": self.cluster,
            "status": self.status(now_sim),
            "addonVersion": self.version,
            "health": {"issues": []},
            "addonArn": f"arn:aws:eks:{self.region}:{self.account}:addon/{self.cluster}/{self.name}/"
            f"{uuid.uuid5(uuid.NAMESPACE_URL, self.cluster + self.name)}",
            "createdAt": self.created_at.timestamp(),
            "modifiedAt": self.created_at.timestamp(),
            "tags": self.tags,
        }
        if self.role_arn:
            out["serviceAccountRoleArn"] = self.role_arn
        if self.configuration_values:
            out["configurationValues"] = self.configuration_values
        return out


Listener = Callable[[str, str, bool], None]


class AddonBackend:
    """Add-ons per (account, region, cluster). ``cluster_exists`` asks moto whether a cluster exists."""

    def __init__(self, now: Callable[[], float], cluster_exists: Callable[[str, str, str], bool]) -> None:
        self._now = now
        self._cluster_exists = cluster_exists
        self._lock = threading.Lock()
        self._addons: dict[tuple[str, str, str], dict[str, Addon]] = {}
        self._listeners: list[Listener] = []

    def add_listener(self, fn: Listener) -> None:
        """Call ``fn(cluster, addon_name, present)`` after a create or delete."""
        self._listeners.append(fn)

    def reset(self) -> None:
        """Forget every add-on."""
        with self._lock:
            self._addons.clear()

    def _cluster(self, account: str, region: str, cluster: str) -> dict[str, Addon]:
        if not self._cluster_exists(account, region, cluster):
            raise AddonError(
                404,
                "ResourceNotFoundException",
                CLUSTER_NOT_FOUND_MSG.format(cluster=cluster),
                clusterName=cluster,
            )
        return self._addons.setdefault((account, region, cluster), {})

    def _notify(self, cluster: str, name: str, present: bool) -> None:
        for fn in self._listeners:
            fn(cluster, name, present)

    def create(self, account: str, region: str, cluster: str, body: dict[str, Any]) -> Addon:
        """CreateAddon."""
        name = str(body.get("addonName", ""))
        if name not in ADDON_CATALOGUE:
            raise AddonError(400, "InvalidParameterException", f"Addon {name} specified is not supported")
        versions = ADDON_CATALOGUE[name]["versions"]
        version = str(body.get("addonVersion") or versions[0])
        if version not in versions:
            raise AddonError(
                400, "InvalidParameterException", f"Addon version specified is not supported: {version}"
            )
        with self._lock:
            addons = self._cluster(account, region, cluster)
            if name in addons:
                raise AddonError(
                    409, "ResourceInUseException", ADDON_EXISTS_MSG, clusterName=cluster, addonName=name
                )
            addon = Addon(
                cluster=cluster,
                name=name,
                version=version,
                region=region,
                account=account,
                created_sim=self._now(),
                role_arn=body.get("serviceAccountRoleArn"),
                configuration_values=body.get("configurationValues"),
                tags=dict(body.get("tags") or {}),
            )
            addons[name] = addon
        self._notify(cluster, name, True)
        return addon

    def get(self, account: str, region: str, cluster: str, name: str) -> Addon:
        """DescribeAddon."""
        with self._lock:
            addons = self._cluster(account, region, cluster)
            if name not in addons:
                raise AddonError(
                    404,
                    "ResourceNotFoundException",
                    ADDON_NOT_FOUND_MSG.format(addon=name, cluster=cluster),
                    clusterName=cluster,
                    addonName=name,
                )
            return addons[name]

    def names(self, account: str, region: str, cluster: str) -> list[str]:
        """ListAddons."""
        with self._lock:
            return sorted(self._cluster(account, region, cluster))

    def delete(self, account: str, region: str, cluster: str, name: str) -> Addon:
        """DeleteAddon (gone at once; the answer says DELETING)."""
        addon = self.get(account, region, cluster, name)
        with self._lock:
            self._addons[(account, region, cluster)].pop(name, None)
        addon.deleting = True
        self._notify(cluster, name, False)
        return addon

    def update(
        self, account: str, region: str, cluster: str, name: str, body: dict[str, Any]
    ) -> dict[str, Any]:
        """UpdateAddon (version / role / configuration)."""
        addon = self.get(account, region, cluster, name)
        params = []
        if body.get("addonVersion"):
            version = str(body["addonVersion"])
            if version not in ADDON_CATALOGUE[name]["versions"]:
                raise AddonError(
                    400, "InvalidParameterException", f"Addon version specified is not supported: {version}"
                )
            addon.version = version
            params.append({"type": "AddonVersion", "value": version})
        if body.get("serviceAccountRoleArn"):
            addon.role_arn = str(body["serviceAccountRoleArn"])
            params.append({"type": "ServiceAccountRoleArn", "value": addon.role_arn})
        if body.get("configurationValues"):
            addon.configuration_values = str(body["configurationValues"])
            params.append({"type": "ConfigurationValues", "value": addon.configuration_values})
        return {
            "id": str(uuid.uuid4()),
            "status": "Successful",
            "type": "AddonUpdate",
            "params": params,
            "createdAt": datetime.now(UTC).timestamp(),
            "errors": [],
        }

    @staticmethod
    def versions(query: dict[str, str]) -> list[dict[str, Any]]:
        """DescribeAddonVersions, filtered by ``addonName`` and ``kubernetesVersion``."""
        kube = query.get("kubernetesVersion")
        out = []
        for name, info in ADDON_CATALOGUE.items():
            if query.get("addonName") and query["addonName"] != name:
                continue
            if kube and kube not in _KUBE_VERSIONS:
                continue
            clusters = [kube] if kube else list(_KUBE_VERSIONS)
            out.append(
                {
                    "addonName": name,
                    "type": info["type"],
                    "addonVersions": [
                        {
                            "addonVersion": v,
                            "architecture": ["amd64", "arm64"],
                            "compatibilities": [
                                {"clusterVersion": c, "platformVersions": ["*"], "defaultVersion": i == 0}
                                for c in clusters
                            ],
                            "requiresConfiguration": False,
                        }
                        for i, v in enumerate(info["versions"])
                    ],
                    "publisher": "eks",
                    "owner": "aws",
                }
            )
        return out


def handle_addon_request(
    backend: AddonBackend,
    method: str,
    path: str,
    query: dict[str, str],
    body: bytes,
    account: str,
    region: str,
) -> tuple[int, dict[str, str], bytes] | None:
    """Answer an EKS add-on call, or ``None`` when the path is not an add-on path (moto's then)."""
    parts = [p for p in path.split("/") if p]
    try:
        payload: dict[str, Any] = json.loads(body) if body else {}
    except ValueError:
        payload = {}
    now = backend._now()  # noqa: SLF001 - same module family
    try:
        if parts == ["addons", "supported-versions"] and method == "GET":
            return _ok({"addons": backend.versions(query)})
        if len(parts) >= 3 and parts[0] == "clusters" and parts[2] == "addons":
            cluster = parts[1]
            if len(parts) == 3 and method == "POST":
                return _ok({"addon": backend.create(account, region, cluster, payload).to_json(now)})
            if len(parts) == 3 and method == "GET":
                return _ok({"addons": backend.names(account, region, cluster)})
            if len(parts) == 4 and method == "GET":
                return _ok({"addon": backend.get(account, region, cluster, parts[3]).to_json(now)})
            if len(parts) == 4 and method == "DELETE":
                return _ok({"addon": backend.delete(account, region, cluster, parts[3]).to_json(now)})
            if len(parts) == 5 and parts[4] == "update" and method == "POST":
                return _ok({"update": backend.update(account, region, cluster, parts[3], payload)})
    except AddonError as e:
        return (
            e.status,
            {"Content-Type": "application/json", "x-amzn-ErrorType": e.code},
            json.dumps(e.body()).encode(),
        )
    return None


def _ok(data: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
    return 200, {"Content-Type": "application/json"}, json.dumps(data).encode()
