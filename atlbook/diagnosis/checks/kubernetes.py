"""Kubernetes-layer and placement checks: pods, workers, zones, StatefulSets, PDBs, PVCs, endpoints.

Pure functions over :class:`~atlbook.diagnosis.evidence.Evidence`; they read only the LISTs.

A lost worker is ``k8s.node-not-ready``; a zone outage (``k8s.zone-outage``) needs every worker of the
zone down *and* at least two of them (or a node group of that zone alone): with one worker per zone the
two cannot be told apart from inside the cluster, and the finding says "node" rather than guess "zone".
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator

from atlbook.diagnosis.checks._base import Check, Finding, check
from atlbook.diagnosis.evidence import Evidence, Node, Pod, Severity

__all__ = [
    "CRASH_LOOP_RESTARTS",
    "colocated",
    "crash_loop",
    "node_not_ready",
    "node_pressure",
    "nodegroup_health",
    "oom_killed",
    "pdb_blocking",
    "pending",
    "pvc_not_bound",
    "service_no_endpoints",
    "statefulset_degraded",
    "zone_outage",
]

CRASH_LOOP_RESTARTS = 3
"""Restarts inside the window (or in total, when times are unknown) that count as a crash loop."""


def _worker_zone(ev: Evidence, pod: Pod) -> tuple[tuple[str, ...], tuple[str, ...]]:
    node = ev.node(pod.node_name)
    workers = (pod.node_name,) if pod.node_name else ()
    zones = (node.zone,) if node and node.zone else ()
    return workers, zones


def _pod_kw(ev: Evidence, pod: Pod) -> dict[str, object]:
    workers, zones = _worker_zone(ev, pod)
    return {"product": pod.product, "pods": (pod.name,), "workers": workers, "zones": zones}


def _all_affected(ev: Evidence, product: str | None, affected: set[str]) -> bool:
    pods = {p.name for p in ev.product_pods(product)} if product else set()
    return bool(pods) and pods <= affected


@check(
    "k8s.pod-oomkilled",
    layer="kubernetes",
    title="Pod OOMKilled",
    severity="error; critical when every node of the product was OOM-killed",
    remedy="Raise the container memory (request = limit) and keep -Xmx ≤ ~50% of it: run 20-capacity, then "
    "10-provision to apply; check the heap dump / GC log of the killed JVM.",
    weight=75,
)
def oom_killed(self: Check, ev: Evidence) -> Iterator[Finding]:
    hits: dict[str, tuple[Pod, list[str]]] = {}
    for pod in ev.pods:
        lines = []
        for c in pod.containers:
            if c.state == "terminated" and c.reason == "OOMKilled":
                lines.append(
                    f"pod/{pod.name} container {c.name}: terminated OOMKilled (exit {c.exit_code}) now"
                )
            elif c.last_reason == "OOMKilled" and ev.window.contains(c.last_finished):
                when = c.last_finished.isoformat() if c.last_finished else "unknown time"
                lines.append(
                    f"pod/{pod.name} container {c.name}: last terminated OOMKilled "
                    f"(exit {c.last_exit_code}) at {when}; restarts {c.restart_count}"
                )
        for e in ev.events:
            if e.name == pod.name and "OOM" in (e.reason + e.message) and ev.window.contains(e.last_seen):
                lines.append(f"event {e.reason} on pod/{pod.name}: {e.message} (x{e.count})")
        if lines:
            hits[pod.name] = (pod, lines)
    for name, (pod, lines) in hits.items():
        sev = Severity.CRITICAL if _all_affected(ev, pod.product, set(hits)) else Severity.ERROR
        yield self.new(
            sev, f"pod/{name}", f"{name} was killed for exceeding its memory limit", lines, **_pod_kw(ev, pod)
        )


_FATAL = ("FATAL", "Unrecoverable error", "failed to start", 'Exception in thread "main"')


@check(
    "k8s.pod-crash-loop",
    layer="kubernetes",
    title="Pod crash-looping or failing at startup",
    severity="error; critical when no pod of the product is Ready",
    remedy="Read the (previous) container log shown for the exception; fix config/secret/shared home/DB "
    "reachability; if it began with an upgrade, roll back with 30-upgrade.",
    weight=55,
)
def crash_loop(self: Check, ev: Evidence) -> Iterator[Finding]:
    for pod in ev.pods:
        lines = []
        for c in pod.containers:
            recent = c.last_finished is None or ev.window.contains(c.last_finished)
            if c.reason == "CrashLoopBackOff" or (c.restart_count >= CRASH_LOOP_RESTARTS and recent):
                lines.append(
                    f"pod/{pod.name} container {c.name}: {c.state} {c.reason or '-'}, "
                    f"restarts {c.restart_count}, last exit {c.last_reason or '?'} ({c.last_exit_code})"
                )
        log = ev.logs.get(pod.name)
        fatal = [line for line in (log.lines if log else []) if any(m in line for m in _FATAL)]
        node = ev.product_nodes.get(pod.name)
        failing = pod.phase == "Running" and not pod.ready and node is not None and node.state == "ERROR"
        if not lines and failing and fatal:
            lines.append(
                f"pod/{pod.name}: not Ready, /status {node.state if node else '-'}, fatal startup error"
            )
        if not lines:
            continue
        if log and log.previous:
            lines.extend(f"previous log: {line}" for line in log.previous[-3:])
        lines.extend(f"log: {line}" for line in fatal[-3:])
        ready = [p for p in ev.product_pods(pod.product) if p.ready] if pod.product else [pod]
        sev = Severity.CRITICAL if pod.product and not ready else Severity.ERROR
        yield self.new(sev, f"pod/{pod.name}", f"{pod.name} keeps failing", lines, **_pod_kw(ev, pod))


@check(
    "k8s.pod-pending",
    layer="kubernetes",
    title="Pod Pending (unschedulable)",
    severity="error for product pods, warning otherwise",
    remedy="Read the scheduler's reason: replace lost capacity (node group desired size, 10-provision) or "
    "re-plan placement with 20-capacity; a PVC pinned to a lost zone needs that zone back.",
    weight=35,
)
def pending(self: Check, ev: Evidence) -> Iterator[Finding]:
    for pod in ev.pods:
        if pod.phase != "Pending" or pod.deleting:
            continue
        if pod.scheduled and pod.node_name:
            continue
        reason = pod.unschedulable_reason
        events = [e for e in ev.events if e.name == pod.name and e.reason == "FailedScheduling"]
        events.sort(key=lambda e: e.last_seen.timestamp() if e.last_seen else 0.0)
        if not reason and events:
            reason = events[-1].message
        lines = [f"pod/{pod.name}: Pending, not scheduled: {reason or 'no reason reported yet'}"]
        lines.extend(f"event FailedScheduling (x{e.count}): {e.message}" for e in events[-2:])
        sev = Severity.ERROR if pod.product else Severity.WARNING
        yield self.new(
            sev,
            f"pod/{pod.name}",
            f"{pod.name} cannot be scheduled: {reason or 'unknown'}",
            lines,
            product=pod.product,
            pods=(pod.name,),
        )


def _pods_on(ev: Evidence, worker: str) -> list[Pod]:
    return [p for p in ev.pods if p.node_name == worker]


def _unavailable_nodes(ev: Evidence) -> dict[str, tuple[Node | None, str]]:
    """Workers that are down: NotReady/Unknown, or gone while pods are still bound to them."""
    out: dict[str, tuple[Node | None, str]] = {}
    for node in ev.nodes:
        if node.ready is not True:
            status = "Unknown" if node.ready is None else "False"
            out[node.name] = (node, f"Ready={status} ({node.not_ready_reason or 'no reason'})")
    if ev.nodes:
        listed = {n.name for n in ev.nodes}
        for pod in ev.pods:
            if pod.node_name and pod.node_name not in listed and pod.node_name not in out:
                out[pod.node_name] = (None, "no longer listed by the API but pods are still bound to it")
    return out


def _missing_by_nodegroup(ev: Evidence) -> list[str]:
    lines = []
    for group in ev.nodegroups:
        registered = [n for n in ev.nodes if n.nodegroup == group.name]
        ready = [n for n in registered if n.ready is True]
        if ev.nodes and group.desired and len(ready) < group.desired:
            lines.append(
                f"node group {group.name}: desired {group.desired}, registered {len(registered)}, "
                f"Ready {len(ready)}"
            )
    return lines


@check(
    "k8s.node-not-ready",
    layer="kubernetes",
    title="Worker node lost or NotReady",
    severity="critical when product pods ran on it, error otherwise",
    remedy="Check the EC2 instance and the node group (health issues, desired size); once capacity is back "
    "the StatefulSet pods reschedule in their volume's zone. Verify with 40-diagnose; re-plan with "
    "20-capacity.",
    weight=90,
)
def node_not_ready(self: Check, ev: Evidence) -> Iterator[Finding]:
    down = _unavailable_nodes(ev)
    group_lines = _missing_by_nodegroup(ev)
    for name, (node, why) in down.items():
        pods = _pods_on(ev, name)
        lines = [f"node/{name}: {why}"]
        if node and node.transition:
            lines.append(f"node/{name}: Ready condition changed at {node.transition.isoformat()}")
        if pods:
            lines.append(f"pods bound to it: {', '.join(sorted(p.name for p in pods))}")
        lines.extend(group_lines)
        products = {p.product for p in pods if p.product}
        sev = Severity.CRITICAL if products else Severity.ERROR
        yield self.new(
            sev,
            f"node/{name}",
            f"worker {name} is {'gone' if node is None else 'NotReady'}",
            lines,
            product=next(iter(products)) if len(products) == 1 else None,
            pods=tuple(sorted(p.name for p in pods)),
            workers=(name,),
            zones=(node.zone,) if node and node.zone else (),
        )
    if not down and group_lines:
        yield self.new(
            Severity.ERROR, "nodegroup", "fewer Ready workers than the node groups want", group_lines
        )


@check(
    "k8s.zone-outage",
    layer="kubernetes",
    title="Availability zone outage",
    severity="critical; needs every worker of a zone down and at least two of them (or a zone's own node "
    "group): a zone's only worker lost looks exactly like a node loss from inside the cluster",
    remedy="Fail over: the surviving zones must carry the load (N+1 per zone, see 20-capacity); pods "
    "with EBS local homes in the lost zone wait for it. Track the AWS Health dashboard; verify with "
    "40-diagnose.",
    weight=100,
)
def zone_outage(self: Check, ev: Evidence) -> Iterator[Finding]:
    by_zone: dict[str, list[Node]] = defaultdict(list)
    for node in ev.nodes:
        if node.zone:
            by_zone[node.zone].append(node)
    healthy_zones = {z for z, nodes in by_zone.items() if any(n.ready is True for n in nodes)}
    known_zones = set(by_zone) | {z for g in ev.nodegroups for z in g.zones}
    for zone in sorted(known_zones - healthy_zones):
        nodes = by_zone.get(zone, [])
        missing_groups = [g for g in ev.nodegroups if zone in g.zones and g.desired > 0 and len(g.zones) == 1]
        down = [n for n in nodes if n.ready is not True]
        if not healthy_zones:
            continue  # nothing is healthy anywhere: not a zone problem (or the API lies)
        if len(down) < 2 and not (down and missing_groups) and not (not nodes and missing_groups):
            continue  # one worker of a zone is a node loss, not a zone outage
        lines = [f"zone {zone}: {len(down)} of {len(nodes)} listed workers not Ready"]
        lines.extend(f"node/{n.name}: Ready={n.ready} ({n.not_ready_reason or '-'})" for n in down)
        lines.extend(f"node group {g.name} (zone {zone}) wants {g.desired}" for g in missing_groups)
        lines.append(f"healthy zones: {', '.join(sorted(healthy_zones))}")
        pods = [p for n in down for p in _pods_on(ev, n.name)]
        yield self.new(
            Severity.CRITICAL,
            f"zone/{zone}",
            f"no worker of zone {zone} is Ready",
            lines,
            pods=tuple(sorted(p.name for p in pods)),
            workers=tuple(n.name for n in down),
            zones=(zone,),
        )


@check(
    "k8s.node-pressure",
    layer="kubernetes",
    title="Worker node under pressure or cordoned",
    severity="warning for Memory/Disk/PID pressure; info for a cordoned node",
    remedy="Free or add capacity on the worker (20-capacity); a cordoned node left behind by a drain must be "
    "uncordoned or replaced.",
    weight=45,
)
def node_pressure(self: Check, ev: Evidence) -> Iterator[Finding]:
    for node in ev.nodes:
        if node.ready is not True:
            continue
        if node.pressure:
            pods = _pods_on(ev, node.name)
            yield self.new(
                Severity.WARNING,
                f"node/{node.name}",
                f"worker {node.name} reports {', '.join(node.pressure)}",
                [f"node/{node.name}: {c}=True" for c in node.pressure],
                pods=tuple(p.name for p in pods),
                workers=(node.name,),
                zones=(node.zone,) if node.zone else (),
            )
        elif node.unschedulable:
            yield self.new(
                Severity.INFO,
                f"node/{node.name}",
                f"worker {node.name} is cordoned",
                [f"node/{node.name}: spec.unschedulable=true"],
                workers=(node.name,),
            )


@check(
    "aws.nodegroup-health",
    layer="aws",
    title="EKS node group unhealthy",
    severity="error when not ACTIVE or with health issues",
    remedy="Read the node group health issues (AWS console / describe-nodegroup); fix the launch template, "
    "subnet capacity or IAM role, then 10-provision.",
    weight=85,
)
def nodegroup_health(self: Check, ev: Evidence) -> Iterator[Finding]:
    for group in ev.nodegroups:
        if group.status != "ACTIVE" or group.health_issues:
            lines = [f"node group {group.name}: status {group.status}, desired {group.desired}"]
            lines.extend(f"health issue: {h}" for h in group.health_issues)
            yield self.new(
                Severity.ERROR,
                f"nodegroup/{group.name}",
                f"node group {group.name} is {group.status}",
                lines,
                zones=tuple(group.zones),
            )


@check(
    "k8s.pdb-blocking",
    layer="kubernetes",
    title="PodDisruptionBudget blocks evictions",
    severity="warning (error when fewer pods are healthy than the budget wants)",
    remedy="Do not drain or upgrade nodes now: restore the unhealthy pods first (see the other findings); "
    "a PDB with 0 allowed disruptions makes drains hang.",
    weight=10,
)
def pdb_blocking(self: Check, ev: Evidence) -> Iterator[Finding]:
    for pdb in ev.pdbs:
        if pdb.expected_pods and pdb.disruptions_allowed <= 0:
            below = pdb.current_healthy < pdb.desired_healthy
            covered = [
                p
                for p in ev.pods
                if pdb.selector and all(p.labels.get(k) == v for k, v in pdb.selector.items())
            ]
            products = {p.product for p in covered if p.product}
            unhealthy = tuple(sorted(p.name for p in covered if not p.ready))
            yield self.new(
                Severity.ERROR if below else Severity.WARNING,
                f"pdb/{pdb.name}",
                f"PDB {pdb.name} allows 0 disruptions ({pdb.current_healthy} healthy, "
                f"{pdb.desired_healthy} wanted)",
                [
                    f"pdb/{pdb.name}: disruptionsAllowed={pdb.disruptions_allowed}, currentHealthy="
                    f"{pdb.current_healthy}, desiredHealthy={pdb.desired_healthy}, "
                    f"expectedPods={pdb.expected_pods}",
                    f"unhealthy pods: {', '.join(unhealthy) or 'none'}",
                ],
                product=next(iter(products)) if len(products) == 1 else None,
                pods=unhealthy,
            )


@check(
    "k8s.statefulset-degraded",
    layer="kubernetes",
    title="StatefulSet has fewer Ready pods than wanted",
    severity="critical when 0 Ready, warning otherwise",
    remedy="Follow the pod-level findings (why the missing pods are not Ready).",
    weight=10,
)
def statefulset_degraded(self: Check, ev: Evidence) -> Iterator[Finding]:
    for sts in ev.statefulsets:
        pods = [p for p in ev.pods if p.owner == sts.name]
        product = next((p.product for p in pods if p.product), None)
        wanted = ev.products.get(product) if product else None
        expected = wanted.replicas if wanted else None
        lines = []
        if sts.ready_replicas < sts.replicas:
            lines.append(f"statefulset/{sts.name}: {sts.ready_replicas}/{sts.replicas} Ready")
        if expected is not None and sts.replicas < expected:
            lines.append(
                f"statefulset/{sts.name}: spec.replicas {sts.replicas} < {expected} in the stack description"
            )
        if not lines:
            continue
        not_ready = tuple(sorted(p.name for p in pods if not p.ready))
        if not_ready:
            lines.append(f"not Ready: {', '.join(not_ready)}")
        sev = Severity.CRITICAL if sts.ready_replicas == 0 and sts.replicas > 0 else Severity.WARNING
        yield self.new(
            sev,
            f"statefulset/{sts.name}",
            f"{sts.name}: {sts.ready_replicas}/{sts.replicas} Ready",
            lines,
            product=product,
            pods=not_ready,
        )


@check(
    "k8s.pvc-not-bound",
    layer="kubernetes",
    title="PersistentVolumeClaim not Bound",
    severity="warning when Pending, error when Lost",
    remedy="Check the CSI driver (EBS/EFS) and the volume's zone; a Lost claim needs its volume restored.",
    weight=50,
)
def pvc_not_bound(self: Check, ev: Evidence) -> Iterator[Finding]:
    for pvc in ev.pvcs:
        if pvc.phase != "Bound":
            sev = Severity.ERROR if pvc.phase == "Lost" else Severity.WARNING
            yield self.new(
                sev,
                f"pvc/{pvc.name}",
                f"claim {pvc.name} is {pvc.phase}",
                [f"pvc/{pvc.name}: phase {pvc.phase}, class {pvc.storage_class}"],
            )


@check(
    "k8s.service-no-endpoints",
    layer="kubernetes",
    title="Product Service has no Ready endpoint",
    severity="critical (the product is down for users)",
    remedy="Users get 503s: bring one node back first (see the cause above); consider a maintenance page.",
    weight=15,
)
def service_no_endpoints(self: Check, ev: Evidence) -> Iterator[Finding]:
    product_names = {
        s.name: next((p.product for p in ev.pods if p.owner == s.name and p.product), None)
        for s in ev.statefulsets
    }
    for ep in ev.endpoints:
        product = product_names.get(ep.name) or (ep.name if ep.name in ev.products else None)
        if product is None:
            continue
        if not ep.ready:
            yield self.new(
                Severity.CRITICAL,
                f"service/{ep.name}",
                f"service {ep.name} has no Ready endpoint",
                [f"endpoints/{ep.name}: ready=[], notReady=[{', '.join(ep.not_ready)}]"],
                product=product,
                pods=tuple(ep.not_ready),
            )


@check(
    "placement.colocated",
    layer="placement",
    title="Two nodes of a product on one worker or zone",
    severity="warning",
    remedy="One worker or zone failure takes out several nodes of the product: apply required pod "
    "anti-affinity on hostname and zone spread (20-capacity emits them; 10-provision applies).",
    weight=30,
)
def colocated(self: Check, ev: Evidence) -> Iterator[Finding]:
    zones_available = {n.zone for n in ev.nodes if n.zone and n.ready is True}
    for product in sorted({p.product for p in ev.product_pods() if p.product}):
        pods = [
            p for p in ev.product_pods(product) if p.node_name and not p.deleting and p.phase == "Running"
        ]
        by_worker: dict[str, list[str]] = defaultdict(list)
        by_zone: dict[str, list[str]] = defaultdict(list)
        for pod in pods:
            by_worker[pod.node_name or ""].append(pod.name)
            node = ev.node(pod.node_name)
            if node and node.zone:
                by_zone[node.zone].append(pod.name)
        for worker, names in sorted(by_worker.items()):
            if len(names) > 1:
                yield self.new(
                    Severity.WARNING,
                    f"{product}@node/{worker}",
                    f"{len(names)} {product} nodes share worker {worker}",
                    [f"node/{worker}: {', '.join(sorted(names))}"],
                    product=product,
                    pods=tuple(sorted(names)),
                    workers=(worker,),
                )
        if len(pods) > 1 and len(by_zone) == 1 and len(zones_available) > 1:
            zone, names = next(iter(by_zone.items()))
            yield self.new(
                Severity.WARNING,
                f"{product}@zone/{zone}",
                f"every {product} node is in zone {zone}",
                [
                    f"zone {zone}: {', '.join(sorted(names))}",
                    f"zones with Ready workers: {', '.join(sorted(zones_available))}",
                ],
                product=product,
                pods=tuple(sorted(names)),
                zones=(zone,),
            )
