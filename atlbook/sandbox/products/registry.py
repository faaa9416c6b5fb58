"""Binds simulated product nodes to the emulated cluster's pods through the emulator's hooks.

:class:`SimulatedProducts` recognises product pods (label ``app.kubernetes.io/name`` or the image name:
``jira``, ``confluence``, ``bitbucket``; Synchrony by ``app.kubernetes.io/component: synchrony`` or its
name), creates a :class:`~atlbook.sandbox.products.node.ProductNode` when the kubelet starts the pod and
retires it when the pod stops. It implements the emulator hooks: proxy resolver (the product's HTTP
port), readiness (RUNNING), log source (node log), memory usage (share of the limit; over it under
``pod-oom``). Pods it does not recognise get the emulator's default behaviour.

Admin credentials come from a Secret in the pod's namespace named ``<product>-admin`` (Synchrony uses
Confluence's), or any Secret labelled ``atlbook.io/admin-credentials: <product>``, with keys
``username`` and ``password``. Without one every authenticated endpoint answers 401.

A maintenance thread ticks every node a few times per wall second: connection pools (real psycopg
connections, ``application_name`` = pod name), fault log lines, ZDU state.
"""

from __future__ import annotations

import base64
import logging
import threading
from collections.abc import Callable
from typing import Any

import psycopg

from atlbook.sandbox.products.faultbook import FaultBook
from atlbook.sandbox.products.http import Response
from atlbook.sandbox.products.node import (
    HTTP_PORTS,
    PRODUCTS,
    SLOW_START_FACTOR,
    STARTUP_SECONDS,
    ProductCluster,
    ProductNode,
)
from atlbook.sandbox.products.pool import DbPool
from atlbook.sandbox.products.zdu import ZduStateMachine

__all__ = ["ADMIN_LABEL", "PRODUCTS", "SimulatedProducts", "context_path_of", "image_version", "product_of"]

log = logging.getLogger(__name__)

ADMIN_LABEL = "atlbook.io/admin-credentials"
"""Label naming the product whose admin credentials a Secret holds."""

Pod = dict[str, Any]
Connect = Callable[[str, str], psycopg.Connection[tuple[object, ...]]]
"""``connect(dbname, application_name)`` → a new connection to the sandbox PostgreSQL."""


def image_version(image: str) -> str:
    """The tag of an image reference (``atlassian/jira-software:9.12.3`` → ``9.12.3``; none → ``latest``)."""
    name = image.split("@", 1)[0]
    last = name.rsplit("/", 1)[-1]
    return last.split(":", 1)[1] if ":" in last else "latest"


_CONTEXT_ENV = ("ATL_TOMCAT_CONTEXTPATH", "SERVER_CONTEXT_PATH", "SERVER_SERVLET_CONTEXT_PATH")


def context_path_of(pod: Pod) -> str:
    """The Tomcat context path a product container is configured with (``""`` for the root)."""
    for c in (pod.get("spec") or {}).get("containers") or []:
        for env in c.get("env") or []:
            if env.get("name") in _CONTEXT_ENV and env.get("value"):
                value = "/" + str(env["value"]).strip("/")
                return "" if value == "/" else value
    return ""


def product_of(pod: Pod) -> tuple[str, str] | None:
    """``(product, version)`` of a product pod, else ``None``."""
    meta = pod.get("metadata") or {}
    labels = meta.get("labels") or {}
    containers = (pod.get("spec") or {}).get("containers") or []
    if not containers:
        return None
    name = str(meta.get("name", ""))
    component = str(labels.get("app.kubernetes.io/component", ""))
    label_product = str(labels.get("app.kubernetes.io/name", ""))
    product = None
    for c in containers:
        image = str(c.get("image", ""))
        head, _, last = image.split("@", 1)[0].rpartition("/")
        repo = (head + "/" + last.split(":", 1)[0]).lower()
        cname = str(c.get("name", ""))
        if component == "synchrony" or "synchrony" in name or cname == "synchrony":
            if "confluence" in repo or "synchrony" in repo or label_product == "confluence":
                return "synchrony", image_version(image)
        for p in ("jira", "confluence", "bitbucket"):
            if (label_product == p or p in repo) and ("mesh" not in repo and "mesh" not in cname):
                if p in repo or cname == p:
                    return p, image_version(image)
                product = (p, image_version(image))
    return product


class SimulatedProducts:
    """Every simulated product node of the emulated cluster, and the emulator hooks that reach them."""

    def __init__(
        self,
        store: Any,
        clock: Any,
        connect: Connect | None,
        faults: FaultBook,
        *,
        pool_min: int = 2,
        pool_max: int = 10,
        tick_seconds: float = 0.25,
    ) -> None:
        self.store = store
        self.clock = clock
        self.connect = connect
        self.faults = faults
        self.pool_min = pool_min
        self.pool_max = pool_max
        self._lock = threading.RLock()
        self._clusters: dict[tuple[str, str], ProductCluster] = {}
        self._pods: dict[tuple[str, str], ProductNode] = {}
        self._previous: dict[tuple[str, str], list[str]] = {}
        self._stop = threading.Event()
        self._tick_seconds = tick_seconds
        self._thread: threading.Thread | None = None
        self._tick_listeners: list[Callable[[], None]] = []
        self.pod_down: Callable[[str, str], bool] = lambda namespace, pod: False
        """Whether a pod's worker node is lost (set by the sandbox from its fault manager)."""

    def add_tick_listener(self, fn: Callable[[], None]) -> None:
        """Call ``fn()`` after every maintenance tick (fault upkeep)."""
        self._tick_listeners.append(fn)

    # --- lifecycle ------------------------------------------------------------------------------------

    def start(self) -> None:
        """Start the maintenance thread."""
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._loop, name="atlbook-products", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Stop the thread and close every pool."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        self.reset()

    def reset(self) -> None:
        """Forget every node and cluster (pools closed)."""
        with self._lock:
            nodes = list(self._pods.values())
            self._pods.clear()
            self._clusters.clear()
            self._previous.clear()
        for n in nodes:
            if n.pool is not None:
                n.pool.close()

    def _loop(self) -> None:
        while not self._stop.wait(self._tick_seconds):
            self.tick()

    def tick(self) -> None:
        """Tick every live node once (pools, fault lines) and refresh the ZDU states."""
        with self._lock:
            nodes = list(self._pods.values())
            clusters = list(self._clusters.values())
        for n in nodes:
            try:
                self._apply_faults(n)
                n.tick()
            except Exception:  # noqa: BLE001 - one node must not stop the others
                log.debug("tick failed for %s", n.pod_name, exc_info=True)
        for c in clusters:
            c.observe()
        for fn in self._tick_listeners:
            try:
                fn()
            except Exception:  # noqa: BLE001 - upkeep must not stop the loop
                log.debug("tick listener failed", exc_info=True)

    def _apply_faults(self, n: ProductNode) -> None:
        ns = n.cluster.namespace
        attrs = (n.pod_name, f"{ns}/{n.pod_name}", n.product, ns)
        if n.pool is not None:
            exhausted = self.faults.applies("db-pool-exhausted", *attrs)
            n.pool.demand = n.pool.max_size * 2 if exhausted else n.pool.min_size
        n.crash = self.faults.applies("crash-loop", *attrs)
        n.unreachable = self.pod_down(ns, n.pod_name)
        n.efs_slow = "efs-credits-exhausted" in self.faults.active()
        n.memory_pressure = self.faults.applies("pod-oom", n.pod_name, f"{ns}/{n.pod_name}")

    # --- clusters ----------------------------------------------------------------------------------

    def cluster(self, namespace: str, product: str) -> ProductCluster:
        """The cluster of ``product`` in ``namespace`` (created on first use)."""
        with self._lock:
            key = (namespace, product)
            if key not in self._clusters:
                self._clusters[key] = ProductCluster(
                    namespace=namespace,
                    product=product,
                    clock_time=self.clock.time,
                    admin_credentials=lambda: self.admin_credentials(namespace, product),
                    zdu=ZduStateMachine(version=""),
                )
            return self._clusters[key]

    def admin_credentials(self, namespace: str, product: str) -> tuple[str, str] | None:
        """``(username, password)`` from the product's admin Secret, or ``None``."""
        want = "confluence" if product == "synchrony" else product
        secret = self.store.peek("secrets", namespace, f"{want}-admin")
        if secret is None:
            for s in self.store.iter("secrets", namespace):
                if ((s.get("metadata") or {}).get("labels") or {}).get(ADMIN_LABEL) == want:
                    secret = s
                    break
        if secret is None:
            return None
        data = secret.get("data") or {}
        string_data = secret.get("stringData") or {}
        try:
            user = string_data.get("username") or base64.b64decode(data.get("username", "")).decode()
            password = string_data.get("password") or base64.b64decode(data.get("password", "")).decode()
        except (ValueError, UnicodeDecodeError):
            return None
        return (user, password) if user else None

    def nodes(self) -> list[ProductNode]:
        """Live nodes."""
        with self._lock:
            return list(self._pods.values())

    def node(self, namespace: str, pod: str) -> ProductNode | None:
        """The live node of a pod."""
        with self._lock:
            return self._pods.get((namespace, pod))

    def clusters(self) -> list[ProductCluster]:
        """Every product cluster seen."""
        with self._lock:
            return list(self._clusters.values())

    # --- pod lifecycle (emulator listener) ----------------------------------------------------------

    def on_started(self, pod: Pod) -> None:
        """A pod's containers started: create its node (pools connect in the maintenance thread)."""
        found = product_of(pod)
        if found is None:
            return
        product, version = found
        meta = pod.get("metadata") or {}
        ns, name = str(meta.get("namespace", "default")), str(meta["name"])
        cluster = self.cluster(ns, product)
        attrs = (name, f"{ns}/{name}", product, ns, version)
        startup = STARTUP_SECONDS[product] * (
            SLOW_START_FACTOR if self.faults.applies("slow-start", *attrs) else 1
        )
        pool = None
        if self.connect is not None:
            db = "confluence" if product == "synchrony" else product
            connect = self.connect
            pool = DbPool(lambda: connect(db, name), self.pool_min, self.pool_max)
        with cluster.lock:
            live = [n.version for n in cluster.live() if n.pod_name != name]
            joined = cluster.zdu.may_join(version, live)
            node = ProductNode(
                cluster=cluster,
                pod_name=name,
                version=version,
                ip=str((pod.get("status") or {}).get("podIP") or "10.0.0.1"),
                started_at=self.clock.time(),
                startup_seconds=startup,
                is_bad_version=lambda v: self.faults.applies("bad-upgrade", v, f"{product}:{v}"),
                pool=pool,
                joined=joined,
                previous_logs=self._previous.get((ns, name), []),
                context_path="" if product == "synchrony" else context_path_of(pod),
            )
            cluster.nodes[name] = node
            cluster.offline.discard(name)
            node.startup_logs()
            self._apply_faults(node)
            with self._lock:
                old = self._pods.get((ns, name))
                self._pods[(ns, name)] = node
            if old is not None and old.pool is not None:
                old.pool.close()
            cluster.observe()

    def on_stopped(self, pod: Pod) -> None:
        """A pod's containers stopped: the node leaves its cluster (kept as not alive), pool closed."""
        meta = pod.get("metadata") or {}
        key = (str(meta.get("namespace", "default")), str(meta.get("name", "")))
        with self._lock:
            node = self._pods.pop(key, None)
        if node is None:
            return
        self._apply_faults(node)
        node.announce()
        node.log("INFO", f"Shutting down {node.product} node {node.node_id}")
        node.alive = False
        self._previous[key] = list(node.logs)
        if node.pool is not None:
            node.pool.close()
        node.cluster.observe()

    # --- emulator hooks --------------------------------------------------------------------------------

    def resolve(self, namespace: str, pod: str, port: int) -> Callable[[Any], Any] | None:
        """Proxy resolver: the node's handler on its HTTP port."""
        node = self.node(namespace, pod)
        if node is None or HTTP_PORTS.get(node.product) != int(port):
            return None
        from . import debug_echo  # test-only leak, off unless a test turns it on

        return lambda req: self._to_proxy(debug_echo.answer(self.faults, node, req, node.handle(req)))

    @staticmethod
    def _to_proxy(resp: Response) -> Any:
        try:
            from atlbook.sandbox.kube.hooks import ProxyResponse
        except ImportError:  # pragma: no cover - emulator not present
            return resp
        return ProxyResponse(resp.status, dict(resp.headers), resp.body)

    def readiness(self, pod: Pod) -> bool | None:
        """Readiness hook: RUNNING product nodes are Ready; other pods keep the default."""
        meta = pod.get("metadata") or {}
        node = self.node(str(meta.get("namespace", "default")), str(meta.get("name", "")))
        if node is None:
            return None if product_of(pod) is None else False
        node.announce()
        return node.ready()

    def logs(self, pod: Pod, container: str, previous: bool) -> list[str] | None:
        """Log source: a product node's log lines (current or previous container)."""
        meta = pod.get("metadata") or {}
        key = (str(meta.get("namespace", "default")), str(meta.get("name", "")))
        node = self.node(*key)
        if node is None:
            prev = self._previous.get(key)
            return list(prev) if prev is not None and product_of(pod) is not None else None
        if container and container not in self._product_containers(pod):
            return None
        return node.all_logs(previous)

    @staticmethod
    def _product_containers(pod: Pod) -> set[str]:
        return {str(c.get("name")) for c in (pod.get("spec") or {}).get("containers") or []}

    def memory(self, pod: Pod, container: str) -> int | None:
        """Memory hook: bytes in use; over the limit under ``pod-oom``."""
        meta = pod.get("metadata") or {}
        ns, name = str(meta.get("namespace", "default")), str(meta.get("name", ""))
        limit = _memory_limit(pod, container)
        oom = self.faults.applies("pod-oom", name, f"{ns}/{name}")
        if oom and limit:
            return limit + 64 * 1024 * 1024
        node = self.node(ns, name)
        if node is None or not limit:
            return None
        return int(limit * node.memory_fraction())


def _memory_limit(pod: Pod, container: str) -> int | None:
    from atlbook.sandbox.kube.quantity import parse_quantity

    for c in (pod.get("spec") or {}).get("containers") or []:
        if container and c.get("name") != container:
            continue
        lim = ((c.get("resources") or {}).get("limits") or {}).get("memory")
        if lim:
            return int(parse_quantity(str(lim)))
    return None
