"""Faults injected by name, optionally targeted, and cleared again — each with a symptom a runbook can
observe through the official clients only (Kubernetes API, boto3, product REST via the pod proxy,
PostgreSQL).

- ``node-lost`` (node name; default the node of the first product pod): Node ``Ready=Unknown``
  (NodeStatusUnknown) with the ``unreachable`` taints; its pods turn not Ready; product nodes on it stop
  answering the pod proxy (503).
- ``az-outage`` (zone; default the zone of the first node): ``node-lost`` for every node in the zone.
- ``pod-oom`` (pod or ns/pod; default the first product pod): memory above the limit, so the kubelet
  OOM-kills the container (``lastState.terminated.reason == OOMKilled``, restarts).
- ``crash-loop`` (pod or ns/pod; default the first product pod): ``/status`` 500 ``ERROR``, pod not
  Ready, FATAL lines in its log.
- ``efs-credits-exhausted`` (file-system id; default all): CloudWatch ``BurstCreditBalance`` 0 and
  ``PercentIOLimit`` 100.
- ``db-pool-exhausted`` (pod / product; default all nodes): real connections up to ``max_connections``
  (``pg_stat_activity``, CloudWatch ``DatabaseConnections``); nodes log pool-timeout errors.
- ``index-corrupt`` (Jira pod; default the first): ``/rest/api/2/index/summary`` ``countInIndex`` <
  ``countInDatabase``, the replication queue grows, the node logs the mismatch; a reindex fixes it.
- ``bad-upgrade`` (version, required): nodes on that version go ``ERROR`` after startup, never Ready.
- ``slow-start`` (product / pod / version; default all): nodes started from now on take 10x longer.

Refuses unknown fault names and ``bad-upgrade`` without a version (:class:`FaultError`).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import psycopg

from atlbook.sandbox.products.faultbook import FaultBook
from atlbook.sandbox.products.registry import SimulatedProducts

__all__ = ["FAULTS", "FaultError", "FaultInfo", "FaultManager"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FaultInfo:
    """What a fault does."""

    name: str
    target: str
    symptom: str


FAULTS: dict[str, FaultInfo] = {
    f.name: f
    for f in (
        FaultInfo(
            "node-lost",
            "node name (default: the node of the first product pod)",
            "Node Ready=Unknown + unreachable taints; its pods not Ready; its product nodes unreachable",
        ),
        FaultInfo(
            "az-outage", "zone (default: the zone of the first node)", "node-lost for every node of the zone"
        ),
        FaultInfo(
            "pod-oom",
            "pod or namespace/pod (default: the first product pod)",
            "container OOMKilled by the kubelet and restarted",
        ),
        FaultInfo(
            "crash-loop",
            "pod or namespace/pod (default: the first product pod)",
            "/status 500 ERROR, pod not Ready, FATAL log lines",
        ),
        FaultInfo(
            "efs-credits-exhausted",
            "file-system id (default: all)",
            "CloudWatch BurstCreditBalance 0, PercentIOLimit 100",
        ),
        FaultInfo(
            "db-pool-exhausted",
            "pod, namespace/pod or product (default: all nodes)",
            "connections up to max_connections in pg_stat_activity; pool-timeout errors in node logs",
        ),
        FaultInfo(
            "index-corrupt",
            "Jira pod (default: the first Jira node)",
            "index summary countInIndex < countInDatabase; replication queue grows; error log line",
        ),
        FaultInfo(
            "bad-upgrade",
            "version (required), e.g. 9.12.4 or jira:9.12.4",
            "nodes on that version go ERROR after startup and never become Ready",
        ),
        FaultInfo(
            "slow-start", "product, pod or version (default: all)", "nodes started afterwards take 10x longer"
        ),
    )
}
"""Every fault the sandbox knows."""

UNREACHABLE_TAINTS = [
    {"key": "node.kubernetes.io/unreachable", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/unreachable", "effect": "NoExecute"},
]


class FaultError(ValueError):
    """An unknown fault, or a fault that needs a target it did not get."""


class FaultManager:
    """Injects and clears faults against the running sandbox's parts."""

    def __init__(
        self,
        book: FaultBook,
        store: Any,
        products: SimulatedProducts,
        hog_connect: Callable[[int], psycopg.Connection[tuple[object, ...]]] | None = None,
    ) -> None:
        self.book = book
        self.store = store
        self.products = products
        self._hog_connect = hog_connect
        self._hogs: list[psycopg.Connection[tuple[object, ...]]] = []
        self._lock = threading.Lock()
        self.kube: Any = None
        """The emulator, when there is one: node faults stop its kubelets, crash-loop kills containers."""
        self._stopped_kubelets: set[str] = set()
        products.add_tick_listener(self.tick)
        products.pod_down = self.pod_name_down

    # --- queries used by hooks --------------------------------------------------------------------------

    def node_lost(self, node_name: str | None) -> bool:
        """Whether ``node_name`` is down (``node-lost`` or ``az-outage`` of its zone)."""
        if not node_name:
            return False
        if self.book.applies("node-lost", node_name):
            return True
        if "az-outage" in self.book.active():
            node = self.store.peek("Node", None, node_name)
            zone = (((node or {}).get("metadata") or {}).get("labels") or {}).get(
                "topology.kubernetes.io/zone"
            )
            return self.book.applies("az-outage", zone)
        return False

    def pod_name_down(self, namespace: str, name: str) -> bool:
        """Whether the named pod's node is down."""
        pod = self.store.peek("Pod", namespace, name)
        return pod is not None and self.pod_down(pod)

    def pod_down(self, pod: dict[str, Any]) -> bool:
        """Whether the pod's node is down."""
        return self.node_lost((pod.get("spec") or {}).get("nodeName"))

    # --- inject / clear ----------------------------------------------------------------------------

    def inject(self, name: str, target: str | None = None) -> str | None:
        """Inject ``name`` (on ``target``, or its default); returns the target it applied to."""
        if name not in FAULTS:
            raise FaultError(f"unknown fault {name!r}; known: {', '.join(FAULTS)}")
        target = target or self._default_target(name)
        if name == "bad-upgrade" and not target:
            raise FaultError("bad-upgrade needs a target version, e.g. --target 9.12.4")
        self.book.set(name, target)
        if name in ("node-lost", "az-outage"):
            self._mark_nodes()
        elif name == "index-corrupt":
            for n in self.products.nodes():
                if n.product == "jira" and (
                    target is None or target in (n.pod_name, f"{n.cluster.namespace}/{n.pod_name}")
                ):
                    n.index_drift = max(n.index_drift, 137)
        elif name == "db-pool-exhausted":
            self._hog()
        elif name == "crash-loop":
            self.products.tick()
        return target

    def clear(self, name: str, target: str | None = None) -> None:
        """Clear ``name`` (one target, or entirely)."""
        if name not in FAULTS:
            raise FaultError(f"unknown fault {name!r}; known: {', '.join(FAULTS)}")
        self.book.clear(name, target)
        if name in ("node-lost", "az-outage"):
            self._mark_nodes()
        elif name == "index-corrupt":
            for n in self.products.nodes():
                if target is None or target in (n.pod_name, f"{n.cluster.namespace}/{n.pod_name}"):
                    n.index_drift = 0
        elif name == "db-pool-exhausted" and "db-pool-exhausted" not in self.book.active():
            self._unhog()
        self.products.tick()

    def clear_all(self) -> None:
        """Clear every fault."""
        for name in list(self.book.active()):
            self.clear(name)
        self.book.clear_all()
        self._unhog()

    def forget(self) -> None:
        """After an emulator reset: no kubelet is stopped any more."""
        self._stopped_kubelets.clear()

    def active(self) -> dict[str, list[str]]:
        """Active faults and their targets."""
        return self.book.active()

    # --- effects ---------------------------------------------------------------------------------

    def _default_target(self, name: str) -> str | None:
        if name in ("pod-oom", "crash-loop", "node-lost", "index-corrupt"):
            nodes = sorted(self.products.nodes(), key=lambda n: (n.cluster.namespace, n.pod_name))
            if name == "index-corrupt":
                nodes = [n for n in nodes if n.product == "jira"]
            if nodes:
                n = nodes[0]
                if name != "node-lost":
                    return n.pod_name
                pod = self.store.peek("Pod", n.cluster.namespace, n.pod_name)
                node_name = ((pod or {}).get("spec") or {}).get("nodeName")
                if node_name:
                    return str(node_name)
            if name == "node-lost":
                names = sorted(o["metadata"]["name"] for o in self.store.iter("Node"))
                return names[0] if names else None
        if name == "az-outage":
            zones = sorted(
                ((o["metadata"].get("labels") or {}).get("topology.kubernetes.io/zone", ""))
                for o in self.store.iter("Node")
            )
            return zones[0] if zones and zones[0] else None
        return None

    def tick(self) -> None:
        """Keep faults that need repeating in force (crash-loop kills its container whenever it runs)."""
        if self.kube is None or "crash-loop" not in self.book.active():
            return
        for n in self.products.nodes():
            ns = n.cluster.namespace
            if not self.book.applies("crash-loop", n.pod_name, f"{ns}/{n.pod_name}", n.product, ns):
                continue
            try:
                self.kube.kill_container(ns, n.pod_name, None, "Error", 1)
            except Exception:  # noqa: BLE001 - not running right now (back-off): next tick
                log.debug("kill_container %s/%s failed", ns, n.pod_name, exc_info=True)

    def _mark_nodes(self) -> None:
        """Stop (or restart) the kubelets of lost nodes; without an emulator, write the Node status."""
        if self.kube is not None:
            down = {
                o["metadata"]["name"]
                for o in self.store.iter("Node")
                if self.node_lost(o["metadata"]["name"])
            }
            for name in sorted(down - self._stopped_kubelets):
                self.kube.stop_kubelet(name)
            for name in sorted(self._stopped_kubelets - down):
                try:
                    self.kube.start_kubelet(name)
                except Exception:  # noqa: BLE001 - node gone meanwhile
                    log.debug("start_kubelet %s failed", name, exc_info=True)
            self._stopped_kubelets = down
            return
        now = self.store.clock.now().strftime("%Y-%m-%dT%H:%M:%SZ")
        for node in list(self.store.iter("Node")):
            name = node["metadata"]["name"]
            lost = self.node_lost(name)

            def spec_fn(o: dict[str, Any], lost: bool = lost) -> dict[str, Any]:
                taints = [
                    t
                    for t in (o.get("spec") or {}).get("taints") or []
                    if t.get("key") != "node.kubernetes.io/unreachable"
                ]
                if lost:
                    taints += [dict(t, timeAdded=now) for t in UNREACHABLE_TAINTS]
                o.setdefault("spec", {})["taints"] = taints
                if not taints:
                    o["spec"].pop("taints", None)
                return o

            self.store.mutate("Node", None, name, spec_fn)
            current = self.store.peek("Node", None, name)
            if current is None:
                continue
            status = dict(current.get("status") or {})
            conds = []
            for c in status.get("conditions") or []:
                c = dict(c)
                if c.get("type") == "Ready":
                    want = "Unknown" if lost else "True"
                    if c.get("status") != want:
                        c["lastTransitionTime"] = now
                    c["status"] = want
                    c["reason"] = "NodeStatusUnknown" if lost else "KubeletReady"
                    c["message"] = (
                        "Kubelet stopped posting node status." if lost else "kubelet is posting ready status"
                    )
                elif lost:
                    c["status"] = "Unknown"
                    c["reason"] = "NodeStatusUnknown"
                    c["message"] = "Kubelet stopped posting node status."
                c["lastHeartbeatTime"] = now if not lost else c.get("lastHeartbeatTime", now)
                conds.append(c)
            status["conditions"] = conds
            self.store.write_status("Node", None, name, status)

    def _hog(self) -> None:
        if self._hog_connect is None:
            return
        with self._lock:
            while True:
                try:
                    self._hogs.append(self._hog_connect(len(self._hogs)))
                except psycopg.Error:
                    break
                if len(self._hogs) > 1000:
                    break
        self.products.tick()

    def _unhog(self) -> None:
        with self._lock:
            for c in self._hogs:
                c.close()
            self._hogs.clear()

    def hog_count(self) -> int:
        """Connections the ``db-pool-exhausted`` fault holds."""
        with self._lock:
            return len(self._hogs)

    def describe(self) -> list[dict[str, Any]]:
        """Every fault with its target meaning, symptom and active targets."""
        active = self.book.active()
        return [
            {"name": f.name, "target": f.target, "symptom": f.symptom, "active": active.get(f.name)}
            for f in FAULTS.values()
        ]
