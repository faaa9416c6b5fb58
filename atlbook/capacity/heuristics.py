"""Fast placers with the planner's hard constraints: first-fit / best-fit decreasing, node draining,
N+1 repair, compaction.

Used on their own for large inputs, as the CP-SAT warm start, and (without repair) as the plain FFD
baseline. One instance type per plan (one managed node group per zone); nodes per zone are opened as
needed, in the zone that the pod's rules allow and that has the fewest nodes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from atlbook.capacity.cluster import ClusterState, Node
from atlbook.capacity.eks import NodeShape
from atlbook.capacity.survivability import simulate
from atlbook.capacity.workload import Workload
from atlbook.errors import CapacityExceeded, ConfigError

__all__ = [
    "Effort",
    "compact",
    "consolidate",
    "dot_place",
    "drain_light_nodes",
    "ffd_place",
    "make_survivable",
    "nodes_per_zone",
    "plan_for_shape",
    "pod_order",
    "shape_fits_workload",
]


class Effort:
    """A deterministic work budget (instead of a wall-clock deadline), so the same inputs always take
    the same decisions whatever the machine load.

    Units are pod placements tried: an FFD pass costs one per pod, a dot-product pass
    :data:`DOT_COST` per pod, an N+1 simulation :data:`SIMULATE_COST` per pod, a drain attempt the pods
    of the drained node. ``None`` units = unlimited.
    """

    DOT_COST = 10
    SIMULATE_COST = 3

    def __init__(self, units: int | None) -> None:
        """Start with ``units`` (None: unlimited)."""
        self.left = units

    def spend(self, units: int) -> None:
        """Charge ``units`` of work."""
        if self.left is not None:
            self.left -= units

    @property
    def exhausted(self) -> bool:
        """True once the budget is used up."""
        return self.left is not None and self.left <= 0


def shape_fits_workload(workload: Workload, shape: NodeShape) -> bool:
    """True if every pod of the workload fits on an empty node of ``shape``."""
    return (
        all(s.cpu_m <= shape.cpu_m and s.memory_mi <= shape.memory_mi for s in workload.sets if s.replicas)
        and shape.pods >= 1
    )


def pod_order(workload: Workload, shape: NodeShape) -> list[tuple[int, int]]:
    """Pods as (set index, pinned-zone position or −1), largest first by cpu/A + mem/M + 1/P (then set)."""
    keys = []
    for i, s in enumerate(workload.sets):
        size = s.cpu_m / shape.cpu_m + s.memory_mi / shape.memory_mi + 1 / shape.pods
        keys.append((-s.priority, -size, -int(s.anti_affinity), i))
    pods: list[tuple[int, int]] = []
    for _, _, _, i in sorted(keys):
        s = workload.sets[i]
        pods.extend((i, k) for k in range(len(s.pinned_zones)))
        pods.extend((i, -1) for _ in range(s.replicas - len(s.pinned_zones)))
    return pods


def _node_name(zone: str, shape: NodeShape, k: int) -> str:
    return f"{zone}/{shape.name}/{k}"


def ffd_place(
    workload: Workload,
    shape: NodeShape,
    zones: Sequence[str],
    *,
    nodes_per_zone: Mapping[str, int] | None = None,
    open_nodes: bool = True,
    fit: str = "first",
) -> ClusterState:
    """Place every pod first-fit (``fit="first"``) or best-fit (``"best"``) decreasing.

    Starts from ``nodes_per_zone`` nodes (default one per zone) and, if ``open_nodes``, opens nodes as
    needed. Refuses (``CapacityExceeded``) a pod that fits nowhere (with ``open_nodes`` false, or a pod
    larger than the node), and (``ConfigError``) a pinned zone not in ``zones``.
    """
    if fit not in ("first", "best"):
        raise ConfigError(f"fit must be 'first' or 'best', got {fit!r}")
    zs = list(zones)
    start = dict(nodes_per_zone) if nodes_per_zone is not None else {z: 1 for z in zs}
    nodes = [Node(_node_name(z, shape, k), z, shape) for z in zs for k in range(start.get(z, 0))]
    state = ClusterState(workload, nodes, zs)
    per_zone = {z: start.get(z, 0) for z in zs}
    by_zone: dict[int, list[int]] = {i: [] for i in range(len(zs))}
    for n in range(len(state.nodes)):
        by_zone[state.node_zone[n]].append(n)
    all_nodes = list(range(len(state.nodes)))
    sets = workload.sets
    for s, pin in pod_order(workload, shape):
        zone: int | None = None
        if pin >= 0:
            zname = sets[s].pinned_zones[pin]
            if zname not in state.zone_index:
                raise ConfigError(f"{sets[s].name}: pinned zone {zname!r} is not one of {zs}")
            zone = state.zone_index[zname]
        cands = by_zone[zone] if zone is not None else all_nodes
        target = -1
        if fit == "first":
            for n in cands:
                if state.fits(s, n, zone):
                    target = n
                    break
        else:
            best = None
            for n in cands:
                if state.fits(s, n, zone):
                    left = (state.free_cpu[n] - state.cpu[s]) / shape.cpu_m + (
                        state.free_mem[n] - state.mem[s]
                    ) / shape.memory_mi
                    if best is None or left < best:
                        best, target = left, n
        if target < 0:
            if not open_nodes:
                raise CapacityExceeded(f"no node fits a pod of {sets[s].name} on {shape.name}")
            if zone is not None:
                allowed = [zone]
            elif state.spread[s]:
                zc = state.zone_count[s]
                dom = [i for i in range(len(zs)) if state.domain_nodes[i] > 0] or list(range(len(zs)))
                lo = min(zc[d] for d in dom)
                allowed = [i for i in range(len(zs)) if zc[i] <= lo]
            else:
                allowed = list(range(len(zs)))
            zi = min(allowed, key=lambda i: (per_zone[zs[i]], i))
            node = Node(_node_name(zs[zi], shape, per_zone[zs[zi]]), zs[zi], shape)
            per_zone[zs[zi]] += 1
            target = state.add_node(node)
            by_zone[zi].append(target)
            all_nodes.append(target)
            if not state.fits(s, target, zone):
                raise CapacityExceeded(
                    f"a pod of {sets[s].name} ({sets[s].cpu_m}m CPU, {sets[s].memory_mi}Mi) does not fit "
                    f"on an empty {shape.name} ({shape.cpu_m}m, {shape.memory_mi}Mi, {shape.pods} slots)"
                )
        state.place(s, target)
    return state


def dot_place(
    workload: Workload,
    shape: NodeShape,
    zones: Sequence[str],
    *,
    nodes_per_zone: Mapping[str, int] | None = None,
) -> ClusterState:
    """Bin-centric dot-product packing (Panigrahy et al.): fill one node at a time with the pod whose
    normalised (cpu, memory, slot) request has the largest dot product with the node's free capacity.

    Nodes are opened in the zone with the fewest nodes that can take a remaining pod. With
    ``nodes_per_zone`` no node beyond those counts is opened. Refuses (``CapacityExceeded``) pods left
    over, and (``ConfigError``) pinned zones not in ``zones``.
    """
    zs = list(zones)
    state = ClusterState(workload, [], zs, all_zones_are_domains=True)
    sets = workload.sets
    a_cpu, a_mem, a_pods = float(shape.cpu_m), float(shape.memory_mi), float(shape.pods)
    free_left = [s.replicas - len(s.pinned_zones) for s in sets]
    pinned_left: list[dict[int, int]] = []
    for s in sets:
        d: dict[int, int] = {}
        for z in s.pinned_zones:
            if z not in state.zone_index:
                raise ConfigError(f"{s.name}: pinned zone {z!r} is not one of {zs}")
            d[state.zone_index[z]] = d.get(state.zone_index[z], 0) + 1
        pinned_left.append(d)
    w = [(s.cpu_m / a_cpu, s.memory_mi / a_mem, 1.0 / a_pods) for s in sets]
    active = [i for i, s in enumerate(sets) if s.replicas]
    left = sum(s.replicas for s in sets)
    cap = dict(nodes_per_zone) if nodes_per_zone is not None else None
    per = {z: 0 for z in zs}
    while left:
        order = sorted(range(len(zs)), key=lambda i: (per[zs[i]], i))
        progressed = False
        for zi in order:
            z = zs[zi]
            if cap is not None and per[z] >= cap.get(z, 0):
                continue
            n = state.add_node(Node(_node_name(z, shape, per[z]), z, shape))
            placed_here = 0
            while True:
                best_i, best_key = -1, None
                fc = state.free_cpu[n] / a_cpu
                fm = state.free_mem[n] / a_mem
                fp = state.free_pods[n] / a_pods
                for i in active:
                    pin = pinned_left[i].get(zi, 0)
                    if free_left[i] <= 0 and pin <= 0:
                        continue
                    if not state.fits(i, n):
                        continue
                    wi = w[i]
                    key = (wi[0] * fc + wi[1] * fm + wi[2] * fp, pin > 0, -i)
                    if best_key is None or key > best_key:
                        best_i, best_key = i, key
                if best_i < 0:
                    break
                state.place(best_i, n)
                if pinned_left[best_i].get(zi, 0) > 0:
                    pinned_left[best_i][zi] -= 1
                else:
                    free_left[best_i] -= 1
                if free_left[best_i] <= 0 and not any(pinned_left[best_i].values()):
                    active.remove(best_i)
                left -= 1
                placed_here += 1
            if placed_here:
                per[z] += 1
                progressed = True
                break
            state.pop_node()
        if not progressed:
            raise CapacityExceeded(
                f"{left} pods do not fit on {shape.name}"
                + (f" within {dict(cap)} nodes per zone" if cap is not None else "")
            )
    state.all_zones_are_domains = False
    state._refresh_domains()
    return state


def _undo(state: ClusterState, log: list[tuple[bool, int, int]]) -> None:
    """Reverse a log of (placed?, set, node) moves, newest first."""
    for placed, s, m in reversed(log):
        if placed:
            state.unplace(s, m)
        else:
            state.place(s, m)


def _place_or_swap(
    state: ClusterState, s: int, others: list[int], log: list[tuple[bool, int, int]], effort: Effort | None
) -> bool:
    """Place one pod of ``s`` first-fit on ``others``; failing that, move it onto a node in place of one
    pod there that itself moves first-fit to another node of ``others``. Logs moves; False if neither."""
    for m in others:
        if state.fits(s, m):
            state.place(s, m)
            log.append((True, s, m))
            return True
    if effort is not None:
        effort.spend(1 + len(others) // SWAP_SCAN_DIVISOR)
    cs, ms = state.cpu[s], state.mem[s]
    roomy = sorted(others, key=lambda k: (-state.free_cpu[k], k))
    for m in others:
        if state.anti[s] and state.count[m].get(s, 0):
            continue
        fcm, fmm = state.free_cpu[m], state.free_mem[m]
        for q in list(state.count[m]):
            if q == s or fcm + state.cpu[q] < cs or fmm + state.mem[q] < ms:
                continue
            state.unplace(q, m)
            if state.fits(s, m):
                state.place(s, m)
                cq, mq = state.cpu[q], state.mem[q]
                for k in roomy:
                    if state.free_cpu[k] < cq:
                        break
                    if k != m and state.free_mem[k] >= mq and state.fits(q, k):
                        state.place(q, k)
                        log.extend([(False, q, m), (True, s, m), (True, q, k)])
                        return True
                state.unplace(s, m)
            state.place(q, m)
    return False


SWAP_SCAN_DIVISOR = 10
"""A swap search (or a :func:`consolidate` step) over N nodes costs 1 + N / this many effort units."""


def _load(state: ClusterState, n: int) -> float:
    sh = state.nodes[n].shape
    return (sh.cpu_m - state.free_cpu[n]) / sh.cpu_m + (sh.memory_mi - state.free_mem[n]) / sh.memory_mi


def _last_in_zone(state: ClusterState, n: int) -> bool:
    return sum(1 for m in state.used_nodes() if state.node_zone[m] == state.node_zone[n]) <= 1


def _empty(state: ClusterState, n: int) -> dict[int, int]:
    """Unbind every pod of node ``n`` and make it a ghost; return its former pod counts."""
    original = dict(state.count[n])
    for s, k in original.items():
        for _ in range(k):
            state.unplace(s, n)
    state.set_ghost(n, True)
    return original


def _refill(state: ClusterState, n: int, original: dict[int, int]) -> None:
    state.set_ghost(n, False)
    for s, k in original.items():
        for _ in range(k):
            state.place(s, n)


def drain_light_nodes(state: ClusterState, *, effort: Effort | None = None) -> ClusterState:
    """Local search: empty the least-loaded nodes one by one by moving their pods elsewhere (filters kept).

    A pod goes first-fit, or onto a full node in exchange for one of its pods that fits elsewhere. A node
    whose pods all find a place is removed (marked gone); the last node of a zone is kept. Works in place
    and returns ``state``.
    """
    sets = state.workload.sets
    for n in sorted(state.used_nodes(), key=lambda i: (_load(state, i), i)):
        if effort is not None and effort.exhausted:
            break
        if _last_in_zone(state, n):
            continue
        pods = sorted(
            ((s, c) for s, c in state.count[n].items() for _ in range(c)),
            key=lambda p: (-sets[p[0]].cpu_m - sets[p[0]].memory_mi // 4, p[0]),
        )
        if effort is not None:
            effort.spend(1 + len(pods))
        original = _empty(state, n)
        others = [m for m in state.used_nodes() if m != n]
        log: list[tuple[bool, int, int]] = []
        if all(_place_or_swap(state, s, others, log, effort) for s, _ in pods):
            state.set_gone(n, True)
            continue
        _undo(state, log)
        _refill(state, n, original)
    return state


CONSOLIDATE_NODES = 5
""":func:`consolidate` tries to empty this many of the least-loaded nodes..."""
CONSOLIDATE_STEPS = 200
"""... with at most this many moves each."""


def _size(state: ClusterState, s: int, shape: NodeShape) -> float:
    return state.cpu[s] / shape.cpu_m + state.mem[s] / shape.memory_mi


def _pool_step(
    state: ClusterState,
    shape: NodeShape,
    pool: list[int],
    others: list[int],
    log: list[tuple[bool, int, int]],
) -> bool:
    """One move for :func:`consolidate`: bind a pool pod first-fit, or swap it onto a node for one or two
    of that node's pods of smaller total size (the node gets fuller, the pool smaller pods)."""
    pool.sort(key=lambda s: (-_size(state, s, shape), s))
    for i, p in enumerate(pool):
        m = next((m for m in others if state.fits(p, m)), -1)
        if m >= 0:
            state.place(p, m)
            log.append((True, p, m))
            pool.pop(i)
            return True
    for i, p in enumerate(pool):
        vp = _size(state, p, shape) - 1e-12
        for m in others:
            fc, fm = state.free_cpu[m], state.free_mem[m]
            for q in list(state.count[m]):
                if q == p or _size(state, q, shape) >= vp:
                    continue
                if fc + state.cpu[q] < state.cpu[p] or fm + state.mem[q] < state.mem[p]:
                    continue
                state.unplace(q, m)
                if state.fits(p, m):
                    state.place(p, m)
                    log.extend([(False, q, m), (True, p, m)])
                    pool[i] = q
                    return True
                state.place(q, m)
    for i, p in enumerate(pool):
        vp = _size(state, p, shape) - 1e-12
        for m in others:
            fc, fm = state.free_cpu[m], state.free_mem[m]
            items = [q for q, k in state.count[m].items() for _ in range(k)]
            for a in range(len(items)):
                for b in range(a + 1, len(items)):
                    q1, q2 = items[a], items[b]
                    if _size(state, q1, shape) + _size(state, q2, shape) >= vp:
                        continue
                    if fc + state.cpu[q1] + state.cpu[q2] < state.cpu[p]:
                        continue
                    if fm + state.mem[q1] + state.mem[q2] < state.mem[p]:
                        continue
                    state.unplace(q1, m)
                    state.unplace(q2, m)
                    if state.fits(p, m):
                        state.place(p, m)
                        log.extend([(False, q1, m), (False, q2, m), (True, p, m)])
                        pool[i] = q1
                        pool.append(q2)
                        return True
                    state.place(q1, m)
                    state.place(q2, m)
    return False


def consolidate(
    state: ClusterState,
    *,
    nodes: int = CONSOLIDATE_NODES,
    max_steps: int = CONSOLIDATE_STEPS,
    effort: Effort | None = None,
) -> ClusterState:
    """Local search that empties nodes :func:`drain_light_nodes` cannot: the pods of one of the ``nodes``
    least-loaded nodes form a pool; a pool pod goes first-fit, or onto a node in place of one or two
    smaller pods there, which join the pool (every swap fills a node further, so the pool shrinks to
    pods small enough for the gaps). The node is removed when the pool empties within ``max_steps``
    moves; otherwise every move is undone. Filters are kept; the last node of a zone is kept. Works in
    place and returns ``state``.
    """
    for n in sorted(state.used_nodes(), key=lambda i: (_load(state, i), i))[:nodes]:
        if effort is not None and effort.exhausted:
            break
        if _last_in_zone(state, n):
            continue
        original = _empty(state, n)
        others = [m for m in state.used_nodes() if m != n]
        pool = [s for s, k in original.items() for _ in range(k)]
        log: list[tuple[bool, int, int]] = []
        for _ in range(max_steps):
            if not pool:
                break
            if effort is not None:
                effort.spend(1 + len(others) // SWAP_SCAN_DIVISOR)
            if not _pool_step(state, state.nodes[n].shape, pool, others, log):
                break
        if not pool:
            state.set_gone(n, True)
            continue
        _undo(state, log)
        _refill(state, n, original)
    return state


def nodes_per_zone(state: ClusterState) -> dict[str, int]:
    """Count of (not gone) nodes per zone."""
    out = {z: 0 for z in state.zones}
    for n in state.used_nodes():
        out[state.nodes[n].zone] += 1
    return out


def make_survivable(
    state: ClusterState, *, require_zone: bool = False, max_extra: int = 64, effort: Effort | None = None
) -> ClusterState:
    """Add empty nodes until every single-node (and, if asked, single-zone) removal re-places all pods.

    A failed node scenario adds a node in the failed node's zone; a failed zone scenario adds one to the
    emptiest other zone. Refuses (``CapacityExceeded``) when ``max_extra`` nodes do not suffice.
    """
    shape = state.nodes[0].shape
    for _ in range(max_extra + 1):
        if effort is not None:  # charged, never refused: the plan must survive
            effort.spend(state.placed() * Effort.SIMULATE_COST)
        rep = simulate(state, zones=require_zone)
        bad_nodes = [s for s in rep.nodes if not s.survivable]
        bad_zones = [s for s in rep.zones if not s.survivable]
        if not bad_nodes and not bad_zones:
            return state
        per = nodes_per_zone(state)
        if bad_nodes:
            counts: dict[str, int] = {}
            for sc in bad_nodes:
                z = sc.target.split("/", 1)[0]
                counts[z] = counts.get(z, 0) + 1
            zone = max(sorted(counts), key=lambda z: counts[z])
        else:
            lost = bad_zones[0].target
            zone = min((z for z in state.zones if z != lost), key=lambda z: (per[z], state.zones.index(z)))
        k = per[zone]
        while any(n.name == _node_name(zone, shape, k) for n in state.nodes):
            k += 1
        state.add_node(Node(_node_name(zone, shape, k), zone, shape))
    raise CapacityExceeded(f"no N+1-survivable placement on {shape.name} within {max_extra} extra nodes")


def _survives(state: ClusterState, require_zone: bool) -> bool:
    rep = simulate(state, zones=require_zone)
    return rep.node_pct == 100.0 and (not require_zone or rep.zone_pct == 100.0)


def compact(
    workload: Workload,
    state: ClusterState,
    *,
    require_zone: bool = False,
    effort: Effort | None = None,
    fit: str = "first",
    placer: str = "ffd",
) -> ClusterState:
    """Cluster compaction: drop one node at a time (largest zone first) while a re-placement survives.

    ``placer`` is ``ffd`` or ``dot``. Stops when ``effort`` is exhausted. Returns the
    smallest surviving state found.
    """
    shape = state.nodes[0].shape
    best = state
    per = nodes_per_zone(state)
    while True:
        improved = False
        for zone in sorted(per, key=lambda z: (-per[z], state.zones.index(z))):
            if effort is not None and effort.exhausted:
                return best
            if effort is not None:
                pods = workload.pods
                effort.spend(pods * (Effort.DOT_COST if placer == "dot" else 1))
            if per[zone] <= 1:
                continue
            trial = dict(per)
            trial[zone] -= 1
            try:
                if placer == "dot":
                    cand = dot_place(workload, shape, state.zones, nodes_per_zone=trial)
                else:
                    cand = ffd_place(
                        workload, shape, state.zones, nodes_per_zone=trial, open_nodes=False, fit=fit
                    )
            except CapacityExceeded:
                continue
            if effort is not None:  # the N+1 check is charged only when it runs
                effort.spend(workload.pods * Effort.SIMULATE_COST)
            if cand.violations() or not _survives(cand, require_zone):
                continue
            best, per, improved = cand, trial, True
            break
        if not improved:
            return best


def plan_for_shape(
    workload: Workload,
    shape: NodeShape,
    zones: Sequence[str],
    *,
    require_zone: bool = False,
    effort: Effort | None = None,
    fit: str = "first",
) -> ClusterState:
    """FFD and dot-product packing, each followed by node draining (:func:`drain_light_nodes`,
    :func:`consolidate`), N+1 repair and compaction; the cheaper plan wins.

    The second pass is skipped once ``effort`` is exhausted. Refuses (``CapacityExceeded``) a
    workload with a pod larger than the node.
    """
    if not shape_fits_workload(workload, shape):
        raise CapacityExceeded(f"some pod is larger than an empty {shape.name}")
    best: ClusterState | None = None
    for placer in ("ffd", "dot"):
        if best is not None and effort is not None and effort.exhausted:
            break
        if effort is not None:
            effort.spend(workload.pods * (Effort.DOT_COST if placer == "dot" else 1))
        try:
            if placer == "dot":
                state = dot_place(workload, shape, zones)
            else:
                state = ffd_place(workload, shape, zones, fit=fit)
        except CapacityExceeded:
            continue
        state = drain_light_nodes(state, effort=effort)
        state = consolidate(state, effort=effort)
        state = make_survivable(state, require_zone=require_zone, effort=effort)
        state = compact(workload, state, require_zone=require_zone, effort=effort, fit=fit, placer=placer)
        if best is None or len(state.used_nodes()) < len(best.used_nodes()):
            best = state
    if best is None:
        raise CapacityExceeded(f"no placement found on {shape.name}")
    return best
