"""Baselines: what EKS + cluster-autoscaler would build, and plain first-fit decreasing.

:func:`ks_ca` re-implements kube-scheduler's default profile for our pods (``eks-capacity.md`` §a):
PrioritySort queue (priority, then creation order); Filter = NodeResourcesFit (cpu, memory, pod slots),
InterPodAffinity (required anti-affinity), PodTopologySpread (DoNotSchedule), VolumeZone (pinned pods);
Score = NodeResourcesFit LeastAllocated cpu:1/mem:1 (weight 1; ``strategy="most"`` gives MostAllocated),
NodeResourcesBalancedAllocation (1), PodTopologySpread (2; system defaults hostname 3 / zone 5 for pods
without constraints), InterPodAffinity (2; zero for pods with only required terms), integer scores as
in Go, ties broken uniformly at random (seeded reservoir sampling). TaintToleration, NodeAffinity and
ImageLocality score the same on every node and are left out. Nodes are added like cluster-autoscaler: a
binpacking estimate per node group (one per instance type and zone; FFD by the DecreasingPodOrderer
score, scheduler filters only, new nodes only) and the least-waste expander with random ties; then the
scheduler runs again, until no pod is pending or no group helps.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence

from atlbook.capacity.cluster import ClusterState, Node
from atlbook.capacity.eks import NodeShape
from atlbook.capacity.heuristics import ffd_place, shape_fits_workload
from atlbook.capacity.workload import Workload
from atlbook.errors import CapacityExceeded, ConfigError

__all__ = ["ffd_baseline", "karpenter_like", "ks_ca", "ks_schedule_pod"]

MAX_NODE_SCORE = 100


def _queue(workload: Workload) -> list[tuple[int, int]]:
    """PrioritySort: higher priority first, then creation order (set order, replica order)."""
    out: list[tuple[int, int, int, int]] = []
    for i, s in enumerate(workload.sets):
        for k in range(s.replicas):
            pin = k if k < len(s.pinned_zones) else -1
            out.append((-s.priority, i, k, pin))
    out.sort()
    return [(i, pin) for _, i, _, pin in out]


def _pin_zone(state: ClusterState, s: int, pin: int) -> int | None:
    if pin < 0:
        return None
    return state.zone_index[state.workload.sets[s].pinned_zones[pin]]


def ks_schedule_pod(
    state: ClusterState, s: int, zone: int | None, rng: random.Random, strategy: str = "least"
) -> int:
    """Pick a node for one pod of set ``s`` like the default kube-scheduler; −1 if none passes the filters."""
    feasible = [n for n in state.used_nodes() if state.fits(s, n, zone)]
    if not feasible:
        return -1
    ds = state.workload.daemonsets
    cpu, mem = state.cpu[s], state.mem[s]
    ps = state.workload.sets[s]
    # PodTopologySpread scoring: system defaults only for pods without constraints
    spread_raw: list[float] = []
    soft = not ps.zone_spread
    if soft:
        n_nodes = len(state.used_nodes())
        n_zones = len(state._domains)
        for n in feasible:
            host = state.count[n].get(s, 0)
            zc = state.zone_count[s][state.node_zone[n]]
            spread_raw.append(host * math.log(n_nodes + 2) + (3 - 1) + zc * math.log(n_zones + 2) + (5 - 1))
        mx, mn = max(spread_raw), min(spread_raw)
    best_score = -1
    chosen = -1
    ties = 0
    for j, n in enumerate(feasible):
        sh = state.nodes[n].shape
        a_cpu = sh.cpu_m + ds.cpu_m
        a_mem = sh.memory_mi + ds.memory_mi
        r_cpu = a_cpu - state.free_cpu[n] + cpu
        r_mem = a_mem - state.free_mem[n] + mem
        if strategy == "least":
            f_cpu = (a_cpu - r_cpu) * MAX_NODE_SCORE // a_cpu if r_cpu <= a_cpu else 0
            f_mem = (a_mem - r_mem) * MAX_NODE_SCORE // a_mem if r_mem <= a_mem else 0
        else:
            f_cpu = min(r_cpu, a_cpu) * MAX_NODE_SCORE // a_cpu
            f_mem = min(r_mem, a_mem) * MAX_NODE_SCORE // a_mem
        fit = (f_cpu + f_mem) // 2
        fc = min(1.0, r_cpu / a_cpu)
        fm = min(1.0, r_mem / a_mem)
        balanced = int((1 - abs(fc - fm) / 2) * MAX_NODE_SCORE)
        spread = 0
        if soft:
            spread = int(MAX_NODE_SCORE * (mx + mn - spread_raw[j]) / mx) if mx > 0 else MAX_NODE_SCORE
        score = fit + balanced + 2 * spread
        if score > best_score:
            best_score, chosen, ties = score, n, 1
        elif score == best_score:
            ties += 1
            if rng.randrange(ties) == 0:
                chosen = n
    return chosen


def _schedule_all(
    state: ClusterState, pending: list[tuple[int, int]], rng: random.Random, strategy: str
) -> list[tuple[int, int]]:
    left: list[tuple[int, int]] = []
    for s, pin in pending:
        n = ks_schedule_pod(state, s, _pin_zone(state, s, pin), rng, strategy)
        if n < 0:
            left.append((s, pin))
        else:
            state.place(s, n)
    return left


def _estimate(
    state: ClusterState, shape: NodeShape, zone: str, pending: list[tuple[int, int]], limit: int
) -> tuple[int, int, int, list[int]]:
    """CA binpacking estimate for one group: (new nodes, pods fitted cpu, mem, fitted set ids)."""
    order = sorted(
        pending,
        key=lambda p: -(state.cpu[p[0]] / shape.cpu_m + state.mem[p[0]] / shape.memory_mi),
    )
    new: list[int] = []
    placed: list[tuple[int, int]] = []
    zi = state.zone_index[zone]
    for s, pin in order:
        pz = _pin_zone(state, s, pin)
        if pz is not None and pz != zi:
            continue
        target = -1
        if new and state.fits(s, new[-1]):
            target = new[-1]
        else:
            for n in new:
                if state.fits(s, n):
                    target = n
                    break
        if target < 0:
            if new and not state.count[new[-1]]:
                continue  # the last new node is still empty and this pod does not fit on it
            if len(new) >= limit:
                continue
            n = state.add_node(Node(f"~est/{len(new)}", zone, shape))
            new.append(n)
            if not state.fits(s, n):
                continue
            target = n
        state.place(s, target)
        placed.append((s, target))
    cpu = sum(state.cpu[s] for s, _ in placed)
    mem = sum(state.mem[s] for s, _ in placed)
    used = sum(1 for n in new if state.count[n])
    for s, n in reversed(placed):
        state.unplace(s, n)
    for _ in new:
        state.pop_node()
    return used, cpu, mem, [s for s, _ in placed]


def ks_ca(
    workload: Workload,
    shapes: Sequence[NodeShape],
    zones: Sequence[str],
    *,
    seed: int = 0,
    initial: NodeShape | None = None,
    strategy: str = "least",
    max_nodes: int = 6000,
) -> ClusterState:
    """Build a cluster the way kube-scheduler + cluster-autoscaler would, from one node per zone.

    ``initial`` is the type of the starting nodes (default: the first of ``shapes``). Pods that no group
    can ever hold stay unplaced (visible in ``violations()``). Refuses (``ConfigError``) no shapes/zones.
    """
    if not shapes or not zones:
        raise ConfigError("ks_ca needs at least one instance type and one zone")
    if strategy not in ("least", "most"):
        raise ConfigError(f"strategy must be 'least' or 'most', got {strategy!r}")
    rng = random.Random(seed)
    first = initial or shapes[0]
    state = ClusterState(workload, [Node(f"{z}/{first.name}/0", z, first) for z in zones], list(zones))
    per: dict[tuple[str, str], int] = {(z, first.name): 1 for z in zones}
    pending = _queue(workload)
    while True:
        pending = _schedule_all(state, pending, rng, strategy)
        if not pending:
            break
        options: list[tuple[float, int, NodeShape, str, int]] = []
        room = max_nodes - len(state.used_nodes())
        for sh in shapes:
            for z in zones:
                k, cpu, mem, fitted = _estimate(state, sh, z, pending, room)
                if not fitted or not k:
                    continue
                waste = (k * sh.cpu_m - cpu) / (k * sh.cpu_m) + (k * sh.memory_mi - mem) / (k * sh.memory_mi)
                options.append((waste, len(options), sh, z, k))
        if not options:
            break
        lo = min(o[0] for o in options)
        best = [o for o in options if abs(o[0] - lo) < 1e-12]
        _, _, sh, z, k = best[rng.randrange(len(best))]
        for _ in range(k):
            i = per.get((z, sh.name), 0)
            per[z, sh.name] = i + 1
            state.add_node(Node(f"{z}/{sh.name}/{i}", z, sh))
    # drop empty nodes the way scale-down would (never the last node of a zone)
    return state


def ffd_baseline(workload: Workload, shapes: Sequence[NodeShape], zones: Sequence[str]) -> ClusterState:
    """Plain first-fit decreasing with the hard constraints, no N+1 reserve: cheapest type wins.

    Refuses (``CapacityExceeded``) when no shape holds every pod.
    """
    best: ClusterState | None = None
    for sh in shapes:
        if not shape_fits_workload(workload, sh):
            continue
        st = ffd_place(workload, sh, zones)
        if best is None or st.cost() < best.cost() - 1e-9:
            best = st
    if best is None:
        raise CapacityExceeded("no instance type holds every pod")
    return best


class _Claim:
    """An in-flight Karpenter NodeClaim: a zone, its pods, and the instance types that still fit."""

    def __init__(self, zone: int, types: list[NodeShape]) -> None:
        self.zone = zone
        self.types = types
        self.cpu = 0
        self.mem = 0
        self.pods = 0
        self.count: dict[int, int] = {}


def karpenter_like(
    workload: Workload, shapes: Sequence[NodeShape], zones: Sequence[str], *, seed: int = 0
) -> ClusterState:
    """Provision nodes the way Karpenter's scheduler does, without consolidation (reference §b).

    Pods are queued by CPU then memory request, descending. Each pod goes to an in-flight NodeClaim
    (fewest pods first) whose remaining instance-type set still holds it with the filters kept
    (anti-affinity, zone spread maxSkew 1, pinned zone), else to a new claim in a zone that the spread
    rule allows (random among the least-loaded, seeded). Every claim launches as the cheapest type of
    its set. Refuses (``ConfigError``) no shapes/zones and (``CapacityExceeded``) a pod no type holds.
    """
    if not shapes or not zones:
        raise ConfigError("karpenter_like needs at least one instance type and one zone")
    rng = random.Random(seed)
    zs = list(zones)
    sets = workload.sets
    queue: list[tuple[int, int, int, int, int]] = []
    for i, member in enumerate(sets):
        for k in range(member.replicas):
            pin = zs.index(member.pinned_zones[k]) if k < len(member.pinned_zones) else -1
            queue.append((-member.cpu_m, -member.memory_mi, i, k, pin))
    queue.sort()
    claims: list[_Claim] = []
    zone_count = [[0] * len(zs) for _ in sets]

    def spread_ok(s: int, z: int) -> bool:
        if not sets[s].zone_spread:
            return True
        zc = zone_count[s]
        return zc[z] + 1 - min(zc) <= 1

    def still(c: _Claim, s: int) -> list[NodeShape]:
        cpu, mem, pods = c.cpu + sets[s].cpu_m, c.mem + sets[s].memory_mi, c.pods + 1
        return [t for t in c.types if t.cpu_m >= cpu and t.memory_mi >= mem and t.pods >= pods]

    for _, _, s, _, pin in queue:
        ps = sets[s]
        placed = False
        for c in sorted(claims, key=lambda c: c.pods):
            if pin >= 0 and c.zone != pin:
                continue
            if ps.anti_affinity and c.count.get(s, 0):
                continue
            if not spread_ok(s, c.zone):
                continue
            left = still(c, s)
            if not left:
                continue
            c.types = left
            placed = True
            break
        if not placed:
            if pin >= 0:
                allowed = [pin]
            else:
                allowed = [z for z in range(len(zs)) if spread_ok(s, z)]
                lo = min(zone_count[s][z] for z in allowed)
                allowed = [z for z in allowed if zone_count[s][z] == lo]
            z = allowed[rng.randrange(len(allowed))]
            fit = [t for t in shapes if t.cpu_m >= ps.cpu_m and t.memory_mi >= ps.memory_mi and t.pods >= 1]
            if not fit:
                raise CapacityExceeded(f"no instance type holds a pod of {ps.name}")
            c = _Claim(z, fit)
            claims.append(c)
        c.cpu += ps.cpu_m
        c.mem += ps.memory_mi
        c.pods += 1
        c.count[s] = c.count.get(s, 0) + 1
        zone_count[s][c.zone] += 1
    nodes: list[Node] = []
    per: dict[tuple[str, str], int] = {}
    for c in claims:
        t = min(c.types, key=lambda t: (t.price, t.name))
        i = per.get((zs[c.zone], t.name), 0)
        per[zs[c.zone], t.name] = i + 1
        nodes.append(Node(f"{zs[c.zone]}/{t.name}/{i}", zs[c.zone], t))
    state = ClusterState(workload, nodes, zs)
    for n, c in enumerate(claims):
        for s, k in c.count.items():
            for _ in range(k):
                state.place(s, n)
    return state
