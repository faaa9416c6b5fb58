"""``KubeEmulator``: the emulated Kubernetes API server and its control loop, started on loopback.

Public surface (HACKING.md "Sandbox contract"): ``start()``, ``stop()``, ``url``, ``reset()``,
``write_kubeconfig(path, context=...)``, ``store`` (in-process object access), the hook setters, and a
few fault-injection helpers (``stop_kubelet``, ``start_kubelet``, ``kill_container``, ``append_log``).

The control loop is one thread: it runs every controller in turn (garbage collector, namespaces,
volumes, scheduler, kubelets, node lifecycle, workloads, endpoints, disruption budgets), then waits
``tick_seconds`` of simulated time or until the store changes. Controllers never block each other and
see a consistent store (writes take the store lock).
"""

from __future__ import annotations

import os
import threading
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ..clock import SimClock
from .admission import Admission
from .cluster import ClusterControllers
from .errors import BadRequest, Conflict, NotFound, ServiceUnavailable
from .events import EventRecorder
from .exec import ExecFiles
from .hooks import (
    LogSource,
    MemoryUsageHook,
    PodListener,
    ProxyRequest,
    ProxyResolver,
    ProxyResponse,
    ReadinessHook,
    RequestInterceptor,
    RequestObserver,
    TokenAuthenticator,
)
from .kubelet import Kubelets, NodeLifecycle
from .models import Obj, Store, WatchEvent, rfc3339
from .rbac import Rbac
from .routes import ApiServer
from .scheduler import Scheduler
from .volumes import VolumeController
from .workloads import WorkloadControllers

__all__ = ["DEFAULT_TOKEN", "HookAlreadySet", "KubeEmulator", "KubeSettings"]

DEFAULT_TOKEN = "atlbook-sandbox-token"


class HookAlreadySet(RuntimeError):
    """A hook that may be set once was set twice."""


@dataclass
class KubeSettings:
    """Timings of the simulated cluster, in simulated seconds."""

    image_pull_seconds: float = 3.0
    """From binding to containers running: image pull."""
    container_start_seconds: float = 1.0
    """From image pulled to container running."""
    termination_seconds: float = 2.0
    """How long a container takes to stop after SIGTERM (capped by the pod's grace period)."""
    backoff_initial_seconds: float = 10.0
    """First crash-loop back-off; doubles per restart."""
    backoff_max_seconds: float = 300.0
    """Crash-loop back-off cap (kubelet's 5 minutes)."""
    node_status_report_seconds: float = 300.0
    """How often a kubelet rewrites an unchanged Node status (it renews its lease every tick)."""
    lease_renew_seconds: float = 10.0
    """How often a kubelet renews its Lease in ``kube-node-lease`` (kubelet's 10 s)."""
    node_monitor_grace_seconds: float = 40.0
    """Silence after which the node controller marks a node unreachable."""
    tick_seconds: float = 1.0
    """Control loop period when nothing changes."""
    min_tick_wall_seconds: float = 0.02
    """Lower bound of the wall time between two control-loop passes (keeps the loop from spinning)."""
    idle_tick_wall_seconds: float = 0.05
    """Lower bound of the wall time between passes when nothing changed (timers still fire, coarser)."""


class KubeEmulator:
    """An emulated Kubernetes API server with controllers, on ``host:port`` (port 0 = a free port)."""

    def __init__(
        self,
        clock: SimClock | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        settings: KubeSettings | None = None,
        seed_defaults: bool = True,
    ) -> None:
        """Build the emulator (nothing listens until :meth:`start`); refuses non-loopback hosts."""
        if host not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError(f"the emulator binds loopback only, not {host!r}")
        self.clock = clock or SimClock(1.0)
        self.host = host
        self._port = port
        self.settings = settings or KubeSettings()
        self.seed_defaults = seed_defaults
        self.store = Store(self.clock)
        self.store.admission = Admission(self.store)
        self.events = EventRecorder(self.store)
        self.volumes = VolumeController(self)
        self.scheduler = Scheduler(self)
        self.kubelets = Kubelets(self)
        self.node_lifecycle = NodeLifecycle(self)
        self.workloads = WorkloadControllers(self)
        self.cluster = ClusterControllers(self)
        self.proxy_resolver: ProxyResolver | None = None
        self.readiness_hook: ReadinessHook | None = None
        self.log_source: LogSource | None = None
        self.memory_usage_hook: MemoryUsageHook | None = None
        self.request_interceptor: RequestInterceptor | None = None
        self.token_authenticator: TokenAuthenticator | None = None
        self.request_observers: list[RequestObserver] = []
        self.rbac = Rbac(self.store)
        """ServiceAccount tokens (TokenRequest) and RBAC for their requests (:mod:`.rbac`)."""
        self.exec_files = ExecFiles()
        """The in-memory volumes ``pods/exec`` commands read and write (:mod:`.exec`)."""
        self._lifecycle: list[tuple[PodListener, PodListener]] = []
        self.last_error: str | None = None
        self.last_connection_error: str | None = None
        self.stopping = False
        self._server: ApiServer | None = None
        self._threads: list[threading.Thread] = []
        self._dirty = threading.Event()
        self._changed_kinds = False
        self._loop_lock = threading.Lock()
        self.store.add_listener(self._on_change)
        self._seed()

    # -- lifecycle -------------------------------------------------------------------------------------
    @property
    def port(self) -> int:
        """The bound port (after :meth:`start`), else the requested one."""
        return self._server.server_address[1] if self._server else self._port

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``; refuses to answer before :meth:`start` (``RuntimeError``)."""
        if self._server is None:
            raise RuntimeError("the emulator is not started")
        return f"http://{self.host}:{self.port}"

    def start(self) -> KubeEmulator:
        """Listen and start the control loop; returns ``self``. Refuses a second start (``RuntimeError``)."""
        if self._server is not None:
            raise RuntimeError("the emulator is already started")
        self.stopping = False
        self._server = ApiServer(self, self.host, self._port)
        serve = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.1},
            name="kube-emulator-http",
            daemon=True,
        )
        loop = threading.Thread(target=self._loop, name="kube-emulator-controllers", daemon=True)
        self._threads = [serve, loop]
        serve.start()
        loop.start()
        return self

    def stop(self) -> None:
        """Stop serving and the control loop (open watches end); idempotent."""
        self.stopping = True
        self._dirty.set()
        self.clock.notify()
        self.store.close_watches()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        for t in self._threads:
            t.join(timeout=5)
        self._threads = []

    def __enter__(self) -> KubeEmulator:
        """Start on entering a ``with`` block."""
        return self.start()

    def __exit__(self, *exc: object) -> None:
        """Stop on leaving a ``with`` block."""
        self.stop()

    def reset(self) -> None:
        """Drop every object and controller state, then re-seed the default namespaces (like moto's reset)."""
        with self._loop_lock, self.store.lock:
            self.store.clear()
            self.events.reset()
            self.scheduler.reset()
            self.volumes.reset()
            self.kubelets.reset()
            self.node_lifecycle.reset()
            self.exec_files.reset()
            self._seed()
        self._dirty.set()

    def _seed(self) -> None:
        for ns in ("default", "kube-system", "kube-public", "kube-node-lease"):
            self.store.create("namespaces", {"metadata": {"name": ns}})
        self.store.create(
            "services",
            {
                "metadata": {
                    "name": "kubernetes",
                    "namespace": "default",
                    "labels": {"component": "apiserver", "provider": "kubernetes"},
                },
                "spec": {
                    "clusterIP": "172.20.0.1",
                    "ports": [{"name": "https", "port": 443, "targetPort": 443}],
                },
            },
        )
        if self.seed_defaults:
            self.store.create(
                "storageclasses",
                {
                    "metadata": {
                        "name": "gp2",
                        "annotations": {"storageclass.kubernetes.io/is-default-class": "true"},
                    },
                    "provisioner": "kubernetes.io/aws-ebs",
                    "parameters": {"type": "gp2", "fsType": "ext4"},
                    "reclaimPolicy": "Delete",
                    "volumeBindingMode": "WaitForFirstConsumer",
                },
            )

    def write_kubeconfig(self, path: str | os.PathLike[str], context: str = "atlbook-sandbox") -> Path:
        """Write a kubeconfig for this emulator (token auth, plain HTTP on loopback); returns the path."""
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        doc = {
            "apiVersion": "v1",
            "kind": "Config",
            "preferences": {},
            "current-context": context,
            "clusters": [{"name": context, "cluster": {"server": self.url}}],
            "users": [{"name": context, "user": {"token": DEFAULT_TOKEN}}],
            "contexts": [
                {"name": context, "context": {"cluster": context, "user": context, "namespace": "default"}}
            ],
        }
        p.write_text(yaml.safe_dump(doc, sort_keys=False))
        return p

    # -- hooks -----------------------------------------------------------------------------------------
    def _set_once(self, attr: str, fn: Any) -> None:
        if fn is not None and getattr(self, attr) is not None:
            raise HookAlreadySet(f"{attr} is already set")
        setattr(self, attr, fn)

    def set_proxy_resolver(self, fn: ProxyResolver | None) -> None:
        """``fn(namespace, pod, port) -> handler | None`` serves ``pods/<pod>:<port>/proxy``; set once."""
        self._set_once("proxy_resolver", fn)

    def set_readiness_hook(self, fn: ReadinessHook | None) -> None:
        """``fn(pod) -> bool | None`` decides a started pod's readiness (``None`` = Ready); set once."""
        self._set_once("readiness_hook", fn)

    def set_log_source(self, fn: LogSource | None) -> None:
        """``fn(pod, container, previous) -> lines | None`` supplies logs (``None``: kubelet's); set once."""
        self._set_once("log_source", fn)

    def set_memory_usage_hook(self, fn: MemoryUsageHook | None) -> None:
        """``fn(pod, container) -> bytes | None``; above the memory limit → OOMKilled; set once."""
        self._set_once("memory_usage_hook", fn)

    def set_request_interceptor(self, fn: RequestInterceptor | None) -> None:
        """``fn(ApiRequest) -> ProxyResponse | None`` answers a request before routing (faults); set once."""
        self._set_once("request_interceptor", fn)

    def set_token_authenticator(self, fn: TokenAuthenticator | None) -> None:
        """``fn(token) -> username | None``; when set, requests without a valid token get 401; set once."""
        self._set_once("token_authenticator", fn)

    def add_pod_lifecycle_listener(self, on_started: PodListener, on_stopped: PodListener) -> None:
        """Call ``on_started(pod)`` when all of a pod's containers run, ``on_stopped(pod)`` when they stop."""
        self._lifecycle.append((on_started, on_stopped))

    def add_request_observer(self, fn: RequestObserver) -> None:
        """Call ``fn(AuditEntry)`` after every served request (the audit log)."""
        self.request_observers.append(fn)

    def notify_started(self, pod: Obj) -> None:
        """Tell lifecycle listeners a pod started (called by the kubelet)."""
        for on_started, _ in self._lifecycle:
            self._call(on_started, pod)

    def notify_stopped(self, pod: Obj) -> None:
        """Tell lifecycle listeners a pod stopped (called by the kubelet)."""
        for _, on_stopped in self._lifecycle:
            self._call(on_stopped, pod)

    def _call(self, fn: Any, *args: Any) -> Any:
        if fn is None:
            return None
        try:
            return fn(*args)
        except Exception:  # noqa: BLE001 - a hook must not break the cluster
            self.last_error = traceback.format_exc()
            return None

    # -- faults and helpers ------------------------------------------------------------------------------
    def stop_kubelet(self, node: str) -> None:
        """Stop ``node``'s kubelet (node lost): pods freeze, the lease expires. Refuses unknown nodes."""
        if self.store.peek("nodes", None, node) is None:
            raise NotFound.of("nodes", node)
        self.kubelets.stopped.add(node)
        self._dirty.set()

    def start_kubelet(self, node: str) -> None:
        """Start the kubelet of ``node`` again."""
        self.kubelets.stopped.discard(node)
        self._dirty.set()

    def kill_container(
        self,
        namespace: str,
        pod: str,
        container: str | None = None,
        reason: str = "Error",
        exit_code: int = 1,
    ) -> None:
        """Crash a running container (restart policy and back-off apply). Refuses pods not running (409)."""
        obj = self.store.peek("pods", namespace, pod)
        if obj is None:
            raise NotFound.of("pods", pod)
        if not self.kubelets.kill(obj["metadata"]["uid"], container, reason, exit_code):
            raise Conflict(f'pod "{pod}" is not running')
        self._dirty.set()

    def append_log(self, namespace: str, pod: str, container: str, line: str) -> None:
        """Append a line to a running container's log. Refuses unknown pods/containers (404)."""
        obj = self.store.peek("pods", namespace, pod)
        if obj is None or not self.kubelets.append_log(obj["metadata"]["uid"], container, line):
            raise NotFound.of("pods", pod)

    def wait_for(self, predicate: Any, sim_timeout: float = 600.0) -> bool:
        """Wait (simulated time) until ``predicate()`` is true; ``False`` on timeout. For tests and tools."""
        deadline = self.clock.monotonic() + sim_timeout
        while self.clock.monotonic() < deadline:
            if predicate():
                return True
            time.sleep(0.01)
        return bool(predicate())

    # -- API-side operations used by routes ----------------------------------------------------------------
    def evict(self, namespace: str, name: str, body: Obj) -> Obj:
        """The ``pods/eviction`` subresource (see :mod:`.cluster`)."""
        out = self.cluster.evict(namespace, name, body)
        self._dirty.set()
        return out

    def bind(self, namespace: str, binding: Obj) -> Obj:
        """The ``pods/binding`` subresource: set ``spec.nodeName``; refuses an already bound pod (409)."""
        name = (binding.get("metadata") or {}).get("name", "")
        target = (binding.get("target") or {}).get("name")
        if not target:
            raise BadRequest("binding target name is required")
        with self.store.lock:
            pod = self.store.peek("pods", namespace, name)
            if pod is None:
                raise NotFound.of("pods", name)
            if pod["spec"].get("nodeName"):
                raise Conflict(
                    f'Operation cannot be fulfilled on pods/binding "{name}": pod {name} is already '
                    f'assigned to node "{pod["spec"]["nodeName"]}"'
                )

            def fn(p: Obj) -> Obj:
                p["spec"]["nodeName"] = target
                return p

            self.store.mutate("pods", namespace, name, fn)
        return {
            "apiVersion": "v1",
            "kind": "Binding",
            "metadata": {"name": name, "namespace": namespace},
            "target": {"kind": "Node", "name": target},
        }

    def pod_logs(
        self,
        namespace: str,
        name: str,
        container: str | None,
        previous: bool = False,
        tail_lines: int | None = None,
        since_seconds: int | None = None,
        timestamps: bool = False,
    ) -> str:
        """Text of a container's log; refuses (400) ambiguous containers, waiting containers, no previous."""
        pod = self.store.peek("pods", namespace, name)
        if pod is None:
            raise NotFound.of("pods", name)
        names = [c["name"] for c in pod["spec"].get("containers") or []]
        if container is None:
            if len(names) != 1:
                raise BadRequest(
                    f"a container name must be specified for pod {name}, choose one of: [{' '.join(names)}]"
                )
            container = names[0]
        if container not in names:
            raise BadRequest(f"container {container} is not valid for pod {name}")
        lines: list[tuple[float | None, str]]
        custom = self.log_source(pod, container, previous) if self.log_source is not None else None
        if custom is not None:
            lines = [(None, line) for line in custom]
        else:
            kept = self.kubelets.logs(pod["metadata"]["uid"], container, previous)
            if kept is None:
                if previous:
                    raise BadRequest(f'previous terminated container "{container}" in pod "{name}" not found')
                raise BadRequest(
                    f'container "{container}" in pod "{name}" is waiting to start: ContainerCreating'
                )
            lines = [(t, line) for t, line in kept]
        if since_seconds is not None:
            cutoff = self.clock.time() - since_seconds
            lines = [(t, line) for t, line in lines if t is None or t >= cutoff]
        if tail_lines is not None:
            lines = lines[-tail_lines:] if tail_lines > 0 else []
        out = []
        for t, line in lines:
            if timestamps:
                ts = (
                    rfc3339(self.clock.now())
                    if t is None
                    else time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))
                )
                line = f"{ts} {line}"
            out.append(line.rstrip("\n") + "\n")
        return "".join(out)

    def metrics(
        self, kind: str, namespace: str | None, name: str | None, label_selector: str | None = None
    ) -> list[Obj]:
        """``metrics.k8s.io`` PodMetrics/NodeMetrics of running pods (memory from the memory hook, else half
        the memory request; cpu a tenth of the cpu request). Refuses unknown objects (404)."""
        from .quantity import parse_quantity

        now = rfc3339(self.clock.now())
        pods = [
            p
            for p in self.store.list_refs("pods", namespace, label_selector)[0]
            if (p.get("status") or {}).get("phase") == "Running"
        ]

        def usage(pod: Obj, c: Obj) -> tuple[float, float]:
            req = (c.get("resources") or {}).get("requests") or {}
            mem = self.memory_usage_hook(pod, c["name"]) if self.memory_usage_hook is not None else None
            mem_b = float(mem) if mem is not None else parse_quantity(req.get("memory")) / 2
            return parse_quantity(req.get("cpu")) / 10, mem_b

        def fmt(cpu: float, mem: float) -> dict[str, str]:
            return {"cpu": f"{int(cpu * 1000)}m", "memory": f"{int(mem // 1024)}Ki"}

        if kind == "PodMetrics":
            out = []
            for p in pods:
                if name and p["metadata"]["name"] != name:
                    continue
                containers = [
                    {"name": c["name"], "usage": fmt(*usage(p, c))} for c in p["spec"]["containers"]
                ]
                out.append(
                    {
                        "kind": "PodMetrics",
                        "apiVersion": "metrics.k8s.io/v1beta1",
                        "metadata": {
                            "name": p["metadata"]["name"],
                            "namespace": p["metadata"]["namespace"],
                            "creationTimestamp": now,
                            "labels": p["metadata"].get("labels") or {},
                        },
                        "timestamp": now,
                        "window": "10s",
                        "containers": containers,
                    }
                )
            if name and not out:
                raise NotFound(
                    f'podmetrics.metrics.k8s.io "{name}" not found', {"name": name, "kind": "pods"}
                )
            return out
        all_pods = [p for p in self.store.iter("pods") if (p.get("status") or {}).get("phase") == "Running"]
        out = []
        for node in self.store.iter("nodes"):
            n = node["metadata"]["name"]
            if name and n != name:
                continue
            cpu = mem = 0.0
            for p in all_pods:
                if p["spec"].get("nodeName") == n:
                    for c in p["spec"]["containers"]:
                        u = usage(p, c)
                        cpu, mem = cpu + u[0], mem + u[1]
            out.append(
                {
                    "kind": "NodeMetrics",
                    "apiVersion": "metrics.k8s.io/v1beta1",
                    "metadata": {
                        "name": n,
                        "creationTimestamp": now,
                        "labels": node["metadata"].get("labels") or {},
                    },
                    "timestamp": now,
                    "window": "20s",
                    "usage": fmt(cpu + 0.1, mem + 512 * 1024**2),
                }
            )
        if name and not out:
            raise NotFound(f'nodemetrics.metrics.k8s.io "{name}" not found', {"name": name, "kind": "nodes"})
        return out

    def container_running(self, namespace: str, name: str, container: str | None) -> bool:
        """Whether the pod's container (the only one when ``None``) is running now."""
        pod = self.store.peek("pods", namespace, name)
        if pod is None:
            return False
        state = self.kubelets.pods.get(pod["metadata"]["uid"])
        if state is None:
            return False
        if container is None:
            return any(c.running for c in state.containers.values())
        c = state.containers.get(container)
        return bool(c is not None and c.running)

    def proxy_to_pod(self, namespace: str, name: str, port: str, request: ProxyRequest) -> ProxyResponse:
        """Forward a request to the handler registered for ``name:port``; 503 like a refused connection."""
        pod = self.store.peek("pods", namespace, name)
        if pod is None:
            raise NotFound.of("pods", name)
        port_n = self._resolve_port(pod, port)
        ip = (pod.get("status") or {}).get("podIP")
        if not ip or (pod.get("status") or {}).get("phase") != "Running":
            raise ServiceUnavailable(
                f"error trying to reach service: dial tcp {ip or '<nil>'}:{port_n}: "
                f"connect: connection refused"
            )
        handler = self.proxy_resolver(namespace, name, port_n) if self.proxy_resolver is not None else None
        if handler is None:
            raise ServiceUnavailable(
                f"error trying to reach service: dial tcp {ip}:{port_n}: connect: connection refused"
            )
        result = handler(request)
        if not isinstance(result, ProxyResponse):
            raise ServiceUnavailable("error trying to reach service: the backend gave no response")
        return result

    def proxy_to_service(self, namespace: str, name: str, port: str, request: ProxyRequest) -> ProxyResponse:
        """Forward to the first ready endpoint of a Service (``services/<name>:<port>/proxy``)."""
        svc = self.store.peek("services", namespace, name)
        if svc is None:
            raise NotFound.of("services", name)
        ports = (svc.get("spec") or {}).get("ports") or []
        sp = next((p for p in ports if not port or str(p.get("port")) == port or p.get("name") == port), None)
        if sp is None:
            raise ServiceUnavailable(f'no service port "{port}" found for service "{name}"')
        ep = self.store.peek("endpoints", namespace, name) or {}
        for subset in ep.get("subsets") or []:
            for addr in subset.get("addresses") or []:
                ref = addr.get("targetRef") or {}
                pod = self.store.peek("pods", namespace, ref.get("name", ""))
                if pod is None:
                    continue
                target = sp.get("targetPort", sp.get("port"))
                return self.proxy_to_pod(namespace, ref["name"], str(target), request)
        raise ServiceUnavailable(f'no endpoints available for service "{name}"')

    @staticmethod
    def _resolve_port(pod: Obj, port: str) -> int:
        if port.isdigit():
            return int(port)
        for c in pod["spec"].get("containers") or []:
            for cp in c.get("ports") or []:
                if not port or cp.get("name") == port:
                    return int(cp.get("containerPort", 80))
        if not port:
            return 80
        raise BadRequest(f'no port named "{port}" in pod "{pod["metadata"]["name"]}"')

    # -- control loop ----------------------------------------------------------------------------------
    def _on_change(self, ev: WatchEvent) -> None:
        if ev.key not in ("events", "leases.coordination.k8s.io"):
            if ev.type == "DELETED" or ev.obj["metadata"].get("deletionTimestamp"):
                self.cluster.gc_pending = True
            if (
                ev.key in ("nodes", "persistentvolumeclaims", "persistentvolumes")
                or ev.type == "DELETED"
                or (ev.key == "pods" and ev.type == "ADDED")
            ):
                self._changed_kinds = True
            self._dirty.set()

    def _loop(self) -> None:
        while not self.stopping:
            start = time.monotonic()
            changed = self._changed_kinds
            self._changed_kinds = False
            self._dirty.clear()
            with self._loop_lock:
                self.run_controllers(changed)
            spent = time.monotonic() - start
            rest = self.settings.min_tick_wall_seconds - spent
            if rest > 0:
                time.sleep(rest)
            if not self._dirty.is_set():
                self._dirty.wait(
                    max(
                        self.clock.wall_seconds(self.settings.tick_seconds),
                        self.settings.idle_tick_wall_seconds,
                    )
                )

    def run_controllers(self, changed: bool = True) -> None:
        """One pass of every controller (the loop calls this; tests may too)."""
        for step in (
            self.cluster.reconcile,
            self.volumes.reconcile,
            lambda: self.scheduler.reconcile(changed),
            self.kubelets.reconcile,
            self.node_lifecycle.reconcile,
            self.workloads.reconcile,
        ):
            if self.stopping:
                return
            try:
                step()
            except Exception:  # noqa: BLE001 - keep the loop alive, remember why
                self.last_error = traceback.format_exc()
