"""The kubelets (one per Node) and the node lifecycle controller, on the simulated clock.

Kubelet, per pod bound to its node: waits for the pod's claims to be bound, "pulls" the image and
starts the containers after ``image_pull_seconds + container_start_seconds`` (``ContainerCreating`` →
``Running``), asks the readiness hook (default: Ready once started), kills a container with
``OOMKilled`` (exit 137) when the memory hook reports more than its limit, restarts crashed containers
with back-off (10 s doubling to 5 min, ``CrashLoopBackOff`` in between), honours ``restartPolicy``,
restarts a container whose image changed, and terminates a deleted pod after
``min(grace period, termination_seconds)``. It keeps each container's log (current and previous).
A kubelet can be stopped (node lost) and started again.

Node lifecycle: a node whose kubelet has not renewed its lease for ``node_monitor_grace_seconds`` turns
``Ready=Unknown`` and gets the ``node.kubernetes.io/unreachable`` NoSchedule/NoExecute taints; its pods
turn not Ready; pods not tolerating the NoExecute taint are deleted when their ``tolerationSeconds``
run out (they stay Terminating while the kubelet is away, as on a real cluster); pods bound to a Node
that no longer exists are force-deleted (pod GC), so their controllers recreate them elsewhere.
"""

from __future__ import annotations

import datetime as _dt
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .errors import KubeApiError
from .models import Obj, rfc3339
from .quantity import parse_quantity
from .scheduler import tolerates

if TYPE_CHECKING:
    from .emulator import KubeEmulator

__all__ = ["Kubelets", "NodeLifecycle", "UNREACHABLE_TAINT", "NOT_READY_TAINT"]

UNREACHABLE_TAINT = "node.kubernetes.io/unreachable"
NOT_READY_TAINT = "node.kubernetes.io/not-ready"
LOG_LINES = 5000


@dataclass
class _Container:
    name: str
    image: str
    running: bool = False
    started_at: str = ""
    started_mono: float = 0.0
    restart_count: int = 0
    restart_at: float | None = None
    waiting_reason: str = "ContainerCreating"
    waiting_message: str = ""
    last_terminated: dict[str, Any] | None = None
    terminated: dict[str, Any] | None = None
    logs: deque[tuple[float, str]] = field(default_factory=lambda: deque(maxlen=LOG_LINES))
    previous_logs: list[tuple[float, str]] | None = None


@dataclass
class _PodState:
    uid: str
    start_at: float
    containers: dict[str, _Container]
    started: bool = False
    ip: str = ""
    stop_at: float | None = None
    listeners_started: bool = False
    last_ready: bool | None = None
    written_rv: str = ""
    kill_requests: list[tuple[str | None, str, int]] = field(default_factory=list)


class Kubelets:
    """All kubelets: pod lifecycle on every node whose kubelet is running, plus lease renewal."""

    component = "kubelet"

    def __init__(self, emu: KubeEmulator) -> None:
        """Kubelets for ``emu``'s nodes."""
        self.emu = emu
        self.pods: dict[str, _PodState] = {}
        self.leases: dict[str, float] = {}
        self.stopped: set[str] = set()
        self._status_written: dict[str, float] = {}
        self._lease_written: dict[str, float] = {}
        self._node_ips: dict[str, int] = {}

    def reset(self) -> None:
        """Forget every pod's runtime state and every lease."""
        self.pods.clear()
        self.leases.clear()
        self.stopped.clear()
        self._status_written.clear()
        self._lease_written.clear()

    # -- node ------------------------------------------------------------------------------------------
    def reconcile(self) -> None:
        """One pass over every node and the pods bound to it."""
        store = self.emu.store
        now = self.emu.clock.monotonic()
        for node in store.iter("nodes"):
            name = node["metadata"]["name"]
            if name in self.stopped:
                continue
            self.leases[name] = now
            self._renew_lease(node, now)
            self._node_status(node, now)
            for pod in store.pods_on_node(name):
                try:
                    self._sync_pod(pod, node, now)
                except Exception:  # noqa: BLE001 - one bad pod must not stop the kubelet
                    import traceback

                    self.emu.last_error = traceback.format_exc()

    def _node_ip(self, name: str) -> str:
        n = self._node_ips.setdefault(name, len(self._node_ips))
        return f"10.0.{128 + (n // 250) % 120}.{n % 250 + 4}"

    def _renew_lease(self, node: Obj, now: float) -> None:
        """The node's Lease in ``kube-node-lease`` (renewed every ``lease_renew_seconds``)."""
        name = node["metadata"]["name"]
        last = self._lease_written.get(name)
        if last is not None and now - last < self.emu.settings.lease_renew_seconds:
            return
        self._lease_written[name] = now
        store = self.emu.store
        renew = self.emu.clock.now().strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        lease = store.peek("leases.coordination.k8s.io", "kube-node-lease", name)
        try:
            if lease is None:
                if store.peek("namespaces", None, "kube-node-lease") is None:
                    return
                store.create(
                    "leases.coordination.k8s.io",
                    {
                        "metadata": {
                            "name": name,
                            "namespace": "kube-node-lease",
                            "ownerReferences": [
                                {
                                    "apiVersion": "v1",
                                    "kind": "Node",
                                    "name": name,
                                    "uid": node["metadata"]["uid"],
                                }
                            ],
                        },
                        "spec": {"holderIdentity": name, "leaseDurationSeconds": 40, "renewTime": renew},
                    },
                    "kube-node-lease",
                    admit=False,
                )
            else:

                def fn(o: Obj) -> Obj:
                    o.setdefault("spec", {})["renewTime"] = renew
                    return o

                store.mutate("leases.coordination.k8s.io", "kube-node-lease", name, fn)
        except KubeApiError:
            return

    def _node_status(self, node: Obj, now: float) -> None:
        name = node["metadata"]["name"]
        last = self._status_written.get(name)
        st = node.get("status") or {}
        conds = {c.get("type"): c for c in st.get("conditions") or []}
        ready = conds.get("Ready", {}).get("status") == "True"
        period = self.emu.settings.node_status_report_seconds
        if ready and last is not None and now - last < period and st.get("allocatable"):
            return
        self._status_written[name] = now
        ts = rfc3339(self.emu.clock.now())
        new = dict(st)
        cap = dict(st.get("capacity") or {"cpu": "4", "memory": "16Gi", "pods": "110"})
        cap.setdefault("pods", "110")
        new["capacity"] = cap
        new.setdefault("allocatable", dict(cap))
        new["allocatable"] = {**cap, **(st.get("allocatable") or {})}

        def cond(typ: str, status: str, reason: str, message: str) -> dict[str, Any]:
            old = conds.get(typ) or {}
            changed = old.get("status") != status
            return {
                "type": typ,
                "status": status,
                "lastHeartbeatTime": ts,
                "lastTransitionTime": ts if changed else old.get("lastTransitionTime", ts),
                "reason": reason,
                "message": message,
            }

        new["conditions"] = [
            cond(
                "MemoryPressure",
                "False",
                "KubeletHasSufficientMemory",
                "kubelet has sufficient memory available",
            ),
            cond("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
            cond("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
            cond("Ready", "True", "KubeletReady", "kubelet is posting ready status"),
        ]
        new.setdefault(
            "addresses",
            [{"type": "InternalIP", "address": self._node_ip(name)}, {"type": "Hostname", "address": name}],
        )
        new.setdefault(
            "nodeInfo",
            {
                "machineID": name,
                "systemUUID": name,
                "bootID": name,
                "kernelVersion": "5.10.227-219.884.amzn2.x86_64",
                "osImage": "Amazon Linux 2",
                "containerRuntimeVersion": "containerd://1.7.22",
                "kubeletVersion": "v1.32.0-eks",
                "kubeProxyVersion": "v1.32.0-eks",
                "operatingSystem": "linux",
                "architecture": "amd64",
            },
        )
        new.setdefault("daemonEndpoints", {"kubeletEndpoint": {"Port": 10250}})
        self.emu.store.write_status("nodes", None, name, new)

    # -- pods ------------------------------------------------------------------------------------------
    def _sync_pod(self, pod: Obj, node: Obj, now: float) -> None:
        meta, spec = pod["metadata"], pod["spec"]
        uid = meta["uid"]
        phase = (pod.get("status") or {}).get("phase", "Pending")
        state = self.pods.get(uid)
        settings = self.emu.settings
        if meta.get("deletionTimestamp"):
            if state is None:
                self.emu.store.force_remove("pods", meta["namespace"], meta["name"])
                return
            if state.stop_at is None:
                grace = float(
                    meta.get("deletionGracePeriodSeconds", spec.get("terminationGracePeriodSeconds", 30))
                )
                state.stop_at = now + min(grace, settings.termination_seconds)
                if state.started:
                    self._event(
                        pod, "Normal", "Killing", f"Stopping container {spec['containers'][0]['name']}"
                    )
            if now >= state.stop_at:
                if state.listeners_started:
                    self.emu.notify_stopped(pod)
                self.emu.store.force_remove("pods", meta["namespace"], meta["name"])
                self.pods.pop(uid, None)
            return
        if phase in ("Succeeded", "Failed"):
            return
        if state is None:
            if not self._claims_bound(pod):
                return
            containers = {
                c["name"]: _Container(c["name"], c.get("image", "")) for c in spec.get("containers") or []
            }
            state = _PodState(
                uid,
                now + settings.image_pull_seconds + settings.container_start_seconds,
                containers,
                ip=self.emu.store.next_pod_ip(),
            )
            self.pods[uid] = state
            for c in spec.get("containers") or []:
                self._event(pod, "Normal", "Pulling", f'Pulling image "{c.get("image", "")}"')
            self._write(pod, node, state, now)
            return
        changed = False
        images = {c["name"]: c.get("image", "") for c in spec.get("containers") or []}
        for name, c in state.containers.items():
            if name in images and images[name] != c.image and state.started:
                c.image = images[name]
                self._terminate(pod, state, c, now, "Completed", 0, restart_delay=settings.image_pull_seconds)
                changed = True
        if not state.started and now >= state.start_at:
            state.started = True
            for c in state.containers.values():
                self._event(pod, "Normal", "Pulled", f'Successfully pulled image "{c.image}"')
                self._event(pod, "Normal", "Created", f"Created container {c.name}")
                self._event(pod, "Normal", "Started", f"Started container {c.name}")
                c.running, c.started_at, c.waiting_reason = True, rfc3339(self.emu.clock.now()), ""
                c.started_mono = now
                c.logs.append((self.emu.clock.time(), f"container {c.name} started"))
            changed = True
        if state.started:
            changed |= self._check_containers(pod, state, now)
        if (
            state.started
            and not state.listeners_started
            and all(c.running for c in state.containers.values())
        ):
            state.listeners_started = True
            self.emu.notify_started(pod)
        self._write(pod, node, state, now, force=changed)

    def _check_containers(self, pod: Obj, state: _PodState, now: float) -> bool:
        changed = False
        spec = pod["spec"]
        limits = {
            c["name"]: parse_quantity(((c.get("resources") or {}).get("limits") or {}).get("memory"))
            for c in spec.get("containers") or []
        }
        while state.kill_requests:
            cname, reason, code = state.kill_requests.pop(0)
            for c in state.containers.values():
                if c.running and (cname is None or cname == c.name):
                    self._terminate(pod, state, c, now, reason, code)
                    changed = True
        hook = self.emu.memory_usage_hook
        for c in state.containers.values():
            if c.running and hook is not None and limits.get(c.name):
                used = hook(pod, c.name)
                if used is not None and used > limits[c.name]:
                    self._terminate(pod, state, c, now, "OOMKilled", 137)
                    changed = True
            if not c.running and c.restart_at is not None and now >= c.restart_at:
                c.running, c.restart_at = True, None
                c.started_at = rfc3339(self.emu.clock.now())
                c.started_mono = now
                c.waiting_reason, c.waiting_message, c.terminated = "", "", None
                c.previous_logs = list(c.logs)
                c.logs.clear()
                c.logs.append((self.emu.clock.time(), f"container {c.name} started"))
                self._event(pod, "Normal", "Started", f"Started container {c.name}")
                if state.listeners_started and all(x.running for x in state.containers.values()):
                    self.emu.notify_started(pod)
                changed = True
        return changed

    def _terminate(
        self,
        pod: Obj,
        state: _PodState,
        c: _Container,
        now: float,
        reason: str,
        code: int,
        restart_delay: float | None = None,
    ) -> None:
        settings = self.emu.settings
        finished = rfc3339(self.emu.clock.now())
        term = {"exitCode": code, "reason": reason, "startedAt": c.started_at, "finishedAt": finished}
        was_all_running = all(x.running for x in state.containers.values())
        c.running = False
        c.last_terminated = term
        policy = pod["spec"].get("restartPolicy", "Always")
        if policy == "Never" or (policy == "OnFailure" and code == 0):
            c.terminated = term
            c.restart_at = None
        else:
            if restart_delay is None:
                # like the kubelet: the first restart is immediate, then 10 s, 20 s, 40 s … capped at 5 min
                delay = 0.0
                c.waiting_reason, c.waiting_message = "ContainerCreating", ""
                if c.restart_count > 0:
                    delay = min(
                        settings.backoff_initial_seconds * (2 ** (c.restart_count - 1)),
                        settings.backoff_max_seconds,
                    )
                    c.waiting_reason = "CrashLoopBackOff"
                    c.waiting_message = (
                        f"back-off {int(delay)}s restarting failed container={c.name} "
                        f"pod={pod['metadata']['name']}_{pod['metadata']['namespace']}"
                        f"({pod['metadata']['uid']})"
                    )
            else:
                delay = restart_delay
                c.waiting_reason, c.waiting_message = "ContainerCreating", ""
            c.restart_count += 1
            c.restart_at = now + delay
        if reason == "OOMKilled":
            self._event(
                pod,
                "Warning",
                "OOMKilling",
                f"Memory cgroup out of memory: Killed process in container {c.name}",
            )
        elif code:
            self._event(
                pod,
                "Warning",
                "BackOff",
                f"Back-off restarting failed container {c.name} in pod "
                f"{pod['metadata']['name']}_{pod['metadata']['namespace']}"
                f"({pod['metadata']['uid']})",
            )
        if was_all_running and state.listeners_started:
            self.emu.notify_stopped(pod)

    def _claims_bound(self, pod: Obj) -> bool:
        ns = pod["metadata"]["namespace"]
        for v in pod["spec"].get("volumes") or []:
            claim = (v.get("persistentVolumeClaim") or {}).get("claimName")
            if claim:
                pvc = self.emu.store.peek("persistentvolumeclaims", ns, claim)
                if pvc is None or (pvc.get("status") or {}).get("phase") != "Bound":
                    return False
        return True

    def _write(self, pod: Obj, node: Obj, state: _PodState, now: float, force: bool = True) -> None:
        spec = pod["spec"]
        old = pod.get("status") or {}
        ts = rfc3339(self.emu.clock.now())
        running = all(c.running for c in state.containers.values()) and state.started
        ready = False
        delays = {
            c["name"]: float((c.get("readinessProbe") or {}).get("initialDelaySeconds", 0) or 0)
            for c in spec.get("containers") or []
        }
        if running:
            hook = self.emu.readiness_hook
            verdict = hook(pod) if hook is not None else None
            ready = True if verdict is None else bool(verdict)
            # probes count after initialDelaySeconds: not Ready before, whatever the hook says (the hook is
            # still asked, so a simulated product keeps ticking)
            if any(now - c.started_mono < delays.get(c.name, 0.0) for c in state.containers.values()):
                ready = False
            if self.emu.node_lifecycle.unreachable(node["metadata"]["name"]):
                ready = False
        # nothing new since our last write (and nobody else wrote the pod since): skip the status build
        if (
            not force
            and ready == state.last_ready
            and pod["metadata"].get("resourceVersion") == state.written_rv
        ):
            return
        state.last_ready = ready
        statuses = []
        for cspec in spec.get("containers") or []:
            c = state.containers.get(cspec["name"])
            if c is None:
                continue
            cs: dict[str, Any] = {
                "name": c.name,
                "image": c.image,
                "imageID": f"{c.image}@sha256:sandbox",
                "ready": ready and c.running,
                "restartCount": c.restart_count,
                "started": c.running,
            }
            if c.running:
                cs["state"] = {"running": {"startedAt": c.started_at}}
                cs["containerID"] = f"containerd://{state.uid[:8]}{c.name}{c.restart_count}"
            elif c.terminated is not None:
                cs["state"] = {"terminated": c.terminated}
            else:
                w: dict[str, Any] = {"reason": c.waiting_reason or "ContainerCreating"}
                if c.waiting_message:
                    w["message"] = c.waiting_message
                cs["state"] = {"waiting": w}
            if c.last_terminated is not None:
                cs["lastState"] = {"terminated": c.last_terminated}
            else:
                cs["lastState"] = {}
            statuses.append(cs)
        phase = "Running" if state.started else "Pending"
        if state.started and all(c.terminated is not None for c in state.containers.values()):
            phase = (
                "Failed"
                if any(c.terminated and c.terminated["exitCode"] for c in state.containers.values())
                else "Succeeded"
            )
        old_conds = {c.get("type"): c for c in old.get("conditions") or []}

        def cond(typ: str, ok: bool, reason: str = "") -> dict[str, Any]:
            prev = old_conds.get(typ) or {}
            status = "True" if ok else "False"
            c: dict[str, Any] = {
                "type": typ,
                "status": status,
                "lastProbeTime": None,
                "lastTransitionTime": prev.get("lastTransitionTime", ts)
                if prev.get("status") == status
                else ts,
            }
            if not ok and reason:
                c["reason"] = reason
                if reason == "ContainersNotReady":
                    names = [c.name for c in state.containers.values() if not (ready and c.running)]
                    c["message"] = f"containers with unready status: [{' '.join(names)}]"
            return c

        conds = [
            cond("PodReadyToStartContainers", True),
            cond("Initialized", True),
            cond("Ready", ready, "ContainersNotReady"),
            cond("ContainersReady", ready, "ContainersNotReady"),
            cond("PodScheduled", True),
        ]
        addresses = {
            a.get("type"): a.get("address") for a in (node.get("status") or {}).get("addresses") or []
        }
        new = {
            "phase": phase,
            "conditions": conds,
            "hostIP": addresses.get("InternalIP", "10.0.255.1"),
            "hostIPs": [{"ip": addresses.get("InternalIP", "10.0.255.1")}],
            "podIP": state.ip,
            "podIPs": [{"ip": state.ip}],
            "startTime": old.get("startTime", ts),
            "containerStatuses": statuses,
            "qosClass": old.get("qosClass", "BestEffort"),
        }
        comparable = {k: v for k, v in new.items()}
        prev = {k: old.get(k) for k in new}
        if _same(prev, comparable):
            state.written_rv = pod["metadata"].get("resourceVersion", "")
            return
        written = self.emu.store.write_status(
            "pods", pod["metadata"]["namespace"], pod["metadata"]["name"], new
        )
        state.written_rv = (written or pod)["metadata"].get("resourceVersion", "")

    def _event(self, pod: Obj, type_: str, reason: str, message: str) -> None:
        self.emu.events.record(pod, type_, reason, message, self.component, pod["spec"].get("nodeName", ""))

    # -- API for the emulator ------------------------------------------------------------------------------
    def kill(self, uid: str, container: str | None, reason: str, exit_code: int) -> bool:
        """Ask the kubelet to kill a running container (faults); ``False`` if the pod is not running."""
        st = self.pods.get(uid)
        if st is None or not st.started:
            return False
        st.kill_requests.append((container, reason, exit_code))
        return True

    def append_log(self, uid: str, container: str, line: str) -> bool:
        """Append a line to a container's current log; ``False`` if unknown."""
        st = self.pods.get(uid)
        if st is None or container not in st.containers:
            return False
        st.containers[container].logs.append((self.emu.clock.time(), line))
        return True

    def logs(self, uid: str, container: str, previous: bool) -> list[tuple[float, str]] | None:
        """(time, line) pairs of a container's log, ``None`` when there is no such (previous) container."""
        st = self.pods.get(uid)
        if st is None or container not in st.containers:
            return None
        c = st.containers[container]
        if previous:
            return None if c.previous_logs is None else list(c.previous_logs)
        return list(c.logs)


def _same(a: dict[str, Any], b: dict[str, Any]) -> bool:
    def strip(d: Any) -> Any:
        if isinstance(d, dict):
            return {k: strip(v) for k, v in d.items() if k not in ("lastTransitionTime",)}
        if isinstance(d, list):
            return [strip(x) for x in d]
        return d

    return bool(strip(a) == strip(b))


class NodeLifecycle:
    """Marks silent nodes unreachable, taints them, evicts pods by NoExecute taints, GCs orphaned pods."""

    component = "node-controller"

    def __init__(self, emu: KubeEmulator) -> None:
        """Watch the kubelets' leases of ``emu``."""
        self.emu = emu
        self._unreachable: set[str] = set()

    def reset(self) -> None:
        """Forget which nodes were unreachable."""
        self._unreachable.clear()

    def unreachable(self, node: str) -> bool:
        """Whether the controller considers ``node`` unreachable right now."""
        return node in self._unreachable

    def reconcile(self) -> None:
        """Check leases, taint/untaint nodes, evict pods whose toleration ran out, GC orphaned pods."""
        store = self.emu.store
        now = self.emu.clock.monotonic()
        grace = self.emu.settings.node_monitor_grace_seconds
        names = set()
        for node in store.iter("nodes"):
            name = node["metadata"]["name"]
            names.add(name)
            lease = self.emu.kubelets.leases.get(name)
            if lease is None:
                self.emu.kubelets.leases[name] = now
                continue
            silent = now - lease > grace
            if silent and name not in self._unreachable:
                self._unreachable.add(name)
                self._mark_unreachable(node)
            elif not silent and name in self._unreachable:
                self._unreachable.discard(name)
                self._clear(node)
            if name in self._unreachable:
                self._evict(node)
        for pod in store.iter("pods"):
            n = pod["spec"].get("nodeName")
            if n and n not in names:
                store.force_remove("pods", pod["metadata"]["namespace"], pod["metadata"]["name"])
                self.emu.kubelets.pods.pop(pod["metadata"]["uid"], None)

    def _mark_unreachable(self, node: Obj) -> None:
        ts = rfc3339(self.emu.clock.now())
        name = node["metadata"]["name"]

        def fn(o: Obj) -> Obj:
            st = o.setdefault("status", {})
            conds = []
            for c in st.get("conditions") or []:
                c = dict(c)
                c.update(
                    status="Unknown",
                    reason="NodeStatusUnknown",
                    message="Kubelet stopped posting node status.",
                    lastTransitionTime=ts,
                )
                conds.append(c)
            st["conditions"] = conds
            taints = [
                t for t in (o.get("spec") or {}).get("taints") or [] if t.get("key") != UNREACHABLE_TAINT
            ]
            taints.append({"key": UNREACHABLE_TAINT, "effect": "NoSchedule", "timeAdded": ts})
            taints.append({"key": UNREACHABLE_TAINT, "effect": "NoExecute", "timeAdded": ts})
            o.setdefault("spec", {})["taints"] = taints
            return o

        self.emu.store.mutate("nodes", None, name, fn)
        self.emu.events.record(
            node, "Normal", "NodeNotReady", f"Node {name} status is now: NodeNotReady", self.component
        )
        for pod in self.emu.store.pods_on_node(name):

            def notready(p: Obj) -> Obj:
                for c in (p.get("status") or {}).get("conditions") or []:
                    if c.get("type") in ("Ready", "ContainersReady"):
                        c["status"] = "False"
                        c["lastTransitionTime"] = ts
                for cs in (p.get("status") or {}).get("containerStatuses") or []:
                    cs["ready"] = False
                return p

            self.emu.store.mutate(
                "pods", pod["metadata"]["namespace"], pod["metadata"]["name"], notready, subresource="status"
            )

    def _clear(self, node: Obj) -> None:
        def fn(o: Obj) -> Obj:
            taints = [
                t for t in (o.get("spec") or {}).get("taints") or [] if t.get("key") != UNREACHABLE_TAINT
            ]
            if taints:
                o["spec"]["taints"] = taints
            else:
                o.get("spec", {}).pop("taints", None)
            return o

        self.emu.store.mutate("nodes", None, node["metadata"]["name"], fn)
        self.emu.kubelets._status_written.pop(node["metadata"]["name"], None)

    def _evict(self, node: Obj) -> None:
        taints = [t for t in (node.get("spec") or {}).get("taints") or [] if t.get("effect") == "NoExecute"]
        if not taints:
            return
        now = self.emu.clock.now()
        for pod in self.emu.store.pods_on_node(node["metadata"]["name"]):
            if pod["metadata"].get("deletionTimestamp"):
                continue
            deadline: _dt.datetime | None = None
            evict_now = False
            for t in taints:
                tol = [x for x in pod["spec"].get("tolerations") or [] if tolerates([x], t)]
                if not tol:
                    evict_now = True
                    break
                secs = [x.get("tolerationSeconds") for x in tol]
                if any(s is None for s in secs):
                    continue
                added = _parse(t.get("timeAdded")) or now
                d = added + _dt.timedelta(seconds=min(int(s or 0) for s in secs))
                deadline = d if deadline is None else min(deadline, d)
            if evict_now or (deadline is not None and deadline <= now):
                self.emu.events.record(
                    pod,
                    "Normal",
                    "TaintManagerEviction",
                    f"Marking for deletion Pod {pod['metadata']['namespace']}/{pod['metadata']['name']}",
                    "taint-eviction-controller",
                )
                self.emu.store.delete("pods", pod["metadata"]["namespace"], pod["metadata"]["name"])


def _parse(ts: str | None) -> _dt.datetime | None:
    if not ts:
        return None
    return _dt.datetime.strptime(ts, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=_dt.UTC)
