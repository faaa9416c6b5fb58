"""Exact placement with N+1 built in: an OR-Tools CP-SAT model per instance type.

For one instance type and up to ``K_z`` node slots per zone the model chooses which slots are used and
how many pods of each set go to each slot (identical pods aggregated into one integer per (set, node)),
minimising the number of nodes (hence cost). Constraints: requests and pod slots fit allocatable;
required hostname anti-affinity (≤ 1 pod of a set per node); zone spread maxSkew 1; pinned pods in their
zone; ≥ 1 node per zone. **N+1 is part of the model**: for every slot ``f`` a recourse assignment moves
``f``'s pods onto the other used nodes (same-zone only for EBS pods) such that all the above still
holds with ``f``'s zone kept as a spread domain (the ghost) — so any single node loss is survivable.

The homogeneous lower bound is added as a redundant constraint (it lets CP-SAT prove optimality), the
heuristic plan is the hint, symmetric slots are ordered. Determinism: ``interleave_search`` with a
deterministic-time limit (no wall-clock limit) gives the same plan for the same seed whatever the
machine load.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Sequence

from ortools.sat.python import cp_model

from atlbook.capacity.bounds import homogeneous_node_bound, packing_node_bound
from atlbook.capacity.cluster import ClusterState, Node
from atlbook.capacity.eks import NodeShape
from atlbook.capacity.workload import Workload

__all__ = ["MAX_PACKING_VARS", "MAX_RECOURSE_VARS", "SolveResult", "model_size", "solve_shape"]

MAX_RECOURSE_VARS = 40000
"""Above this many recourse variables the exact model is not built (the heuristic plan stands)."""
MAX_PACKING_VARS = 40000
"""Above this many (set, node) variables the packing-only model is not built."""


@dataclasses.dataclass
class SolveResult:
    """Outcome of one CP-SAT solve on one instance type."""

    state: ClusterState | None
    status: str
    nodes: int | None
    bound_nodes: float
    wall_s: float


def _slots(zones: Sequence[str], max_per_zone: dict[str, int]) -> list[tuple[int, int]]:
    return [(zi, k) for zi, z in enumerate(zones) for k in range(max_per_zone[z])]


def model_size(workload: Workload, zones: Sequence[str], max_per_zone: dict[str, int]) -> int:
    """Number of recourse variables the exact model would have."""
    n = sum(max_per_zone.values())
    per_zone = max(max_per_zone.values()) if max_per_zone else 0
    size = 0
    for s in workload.sets:
        if s.replicas:
            size += n * (per_zone - 1 if s.ebs else n - 1)
    return size


def solve_shape(
    workload: Workload,
    shape: NodeShape,
    zones: Sequence[str],
    max_per_zone: dict[str, int],
    *,
    hint: ClusterState | None = None,
    time_limit: float = 5.0,
    seed: int = 0,
    workers: int | None = None,
    recourse: bool = True,
) -> SolveResult:
    """Solve the exact N+1 placement on ``shape`` with at most ``max_per_zone`` nodes per zone.

    With ``recourse=False`` only the packing is solved (no N+1 scenarios; the caller adds the reserve,
    e.g. one empty node per zone, which always restores zone-pinned pods of a homogeneous cluster).
    Returns ``status`` ``OPTIMAL``/``FEASIBLE``/``INFEASIBLE``/``UNKNOWN``/``TOO_LARGE`` and the state
    (None unless a solution was found). Never raises for an infeasible or oversized model.
    """
    t0 = time.monotonic()
    zs = list(zones)
    z_n = len(zs)
    n_sets = sum(1 for s in workload.sets if s.replicas)
    if recourse and model_size(workload, zs, max_per_zone) > MAX_RECOURSE_VARS:
        return SolveResult(None, "TOO_LARGE", None, 0.0, 0.0)
    if not recourse and n_sets * sum(max_per_zone.values()) > MAX_PACKING_VARS:
        return SolveResult(None, "TOO_LARGE", None, 0.0, 0.0)
    sets = workload.sets
    S = [i for i, s in enumerate(sets) if s.replicas]
    slots = _slots(zs, max_per_zone)
    idx = {sl: i for i, sl in enumerate(slots)}
    m = cp_model.CpModel()
    u = [m.new_bool_var(f"u{i}") for i in range(len(slots))]
    ub = {s: (1 if sets[s].anti_affinity else min(sets[s].replicas, shape.pods)) for s in S}
    x = {(s, n): m.new_int_var(0, ub[s], f"x{s}_{n}") for s in S for n in range(len(slots))}
    for zi in range(z_n):
        zslots = [idx[zi, k] for k in range(max_per_zone[zs[zi]])]
        if zslots:
            m.add(u[zslots[0]] == 1)
        for a, b in zip(zslots, zslots[1:], strict=False):
            m.add(u[a] >= u[b])
            m.add(sum(sets[s].cpu_m * x[s, a] for s in S) >= sum(sets[s].cpu_m * x[s, b] for s in S))
    alloc = (shape.cpu_m, shape.memory_mi, shape.pods)

    def _req(s: int) -> tuple[int, int, int]:
        return (sets[s].cpu_m, sets[s].memory_mi, 1)

    for n in range(len(slots)):
        for s in S:
            m.add(x[s, n] <= ub[s] * u[n])
        for r in range(3):
            m.add(sum(_req(s)[r] * x[s, n] for s in S) <= alloc[r] * u[n])
    zone_cnt: dict[tuple[int, int], cp_model.LinearExpr] = {}
    for s in S:
        m.add(sum(x[s, n] for n in range(len(slots))) == sets[s].replicas)
        for zi in range(z_n):
            zone_cnt[s, zi] = cp_model.LinearExpr.sum([x[s, idx[zi, k]] for k in range(max_per_zone[zs[zi]])])
        pins: dict[int, int] = {}
        for z in sets[s].pinned_zones:
            pins[zs.index(z)] = pins.get(zs.index(z), 0) + 1
        for zi, k in pins.items():
            m.add(zone_cnt[s, zi] >= k)
        if sets[s].zone_spread:
            for a in range(z_n):
                for b in range(z_n):
                    if a != b:
                        m.add(zone_cnt[s, a] - zone_cnt[s, b] <= 1)
    # N+1 recourse: for each failed slot f, re-place its pods on the other used slots.
    for f, (fz, _) in enumerate(slots if recourse else []):
        y: dict[tuple[int, int], cp_model.IntVar] = {}
        for s in S:
            targets = [n for n, (nz, _) in enumerate(slots) if n != f and (not sets[s].ebs or nz == fz)]
            for n in targets:
                y[s, n] = m.new_int_var(0, ub[s], f"y{f}_{s}_{n}")
                m.add(y[s, n] <= ub[s] * u[n])
                if sets[s].anti_affinity:
                    m.add(x[s, n] + y[s, n] <= 1)
            m.add(sum(y[s, n] for n in targets) == x[s, f])
            if sets[s].zone_spread:
                after = []
                for zi in range(z_n):
                    moved = cp_model.LinearExpr.sum([y[s, n] for n in targets if slots[n][0] == zi])
                    expr = zone_cnt[s, zi] + moved
                    if zi == fz:
                        expr = expr - x[s, f]
                    after.append(expr)
                for a in range(z_n):
                    for b in range(z_n):
                        if a != b:
                            m.add(after[a] - after[b] <= 1).only_enforce_if(u[f])
        for n in range(len(slots)):
            if n == f:
                continue
            terms = [s for s in S if (s, n) in y]
            if not terms:
                continue
            for r in range(3):
                m.add(
                    sum(_req(s)[r] * (x[s, n] + y[s, n]) for s in terms)
                    + sum(_req(s)[r] * x[s, n] for s in S if (s, n) not in y)
                    <= alloc[r] * u[n]
                )
    if recourse:
        lb_total, lb_zone = homogeneous_node_bound(workload, shape, zs)
    else:
        lb_total, lb_zone = packing_node_bound(workload, shape), {z: 1 for z in zs}
    m.add(sum(u) >= lb_total)
    for zi, z in enumerate(zs):
        m.add(sum(u[idx[zi, k]] for k in range(max_per_zone[z])) >= min(lb_zone[z], max_per_zone[z]))
    m.minimize(sum(u))
    if hint is not None:
        _add_hint(m, hint, zs, max_per_zone, idx, u, x, S)
    solver = cp_model.CpSolver()
    p = solver.parameters
    p.random_seed = seed
    p.num_workers = workers or max(1, os.cpu_count() or 1)
    p.interleave_search = True
    p.max_deterministic_time = time_limit  # deterministic: no wall-clock limit, same plan under load
    status = solver.solve(m)
    name = solver.status_name(status)
    wall = time.monotonic() - t0
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return SolveResult(None, name, None, float(solver.best_objective_bound), wall)
    nodes: list[Node] = []
    used_slots = [n for n in range(len(slots)) if solver.value(u[n])]
    for n in used_slots:
        zi, k = slots[n]
        nodes.append(Node(f"{zs[zi]}/{shape.name}/{k}", zs[zi], shape))
    state = ClusterState(workload, nodes, zs)
    for j, n in enumerate(used_slots):
        for s in S:
            for _ in range(solver.value(x[s, n])):
                state.place(s, j)
    return SolveResult(state, name, len(used_slots), float(solver.best_objective_bound), wall)


def _add_hint(
    m: cp_model.CpModel,
    hint: ClusterState,
    zs: list[str],
    max_per_zone: dict[str, int],
    idx: dict[tuple[int, int], int],
    u: list[cp_model.IntVar],
    x: dict[tuple[int, int], cp_model.IntVar],
    S: list[int],
) -> None:
    by_zone: dict[int, list[int]] = {zi: [] for zi in range(len(zs))}
    for n in hint.used_nodes():
        if hint.count[n]:  # empty (reserve) nodes are hinted as unused
            by_zone[hint.node_zone[n]].append(n)
    for zi, z in enumerate(zs):
        # slots are ordered by CPU load: sort the hint's nodes the same way
        nodes = sorted(by_zone[zi], key=lambda n: -sum(hint.cpu[s] * c for s, c in hint.count[n].items()))
        for k in range(max_per_zone[z]):
            slot = idx[zi, k]
            if k < len(nodes):
                m.add_hint(u[slot], 1)
                for s in S:
                    m.add_hint(x[s, slot], hint.count[nodes[k]].get(s, 0))
            else:
                m.add_hint(u[slot], 0)
                for s in S:
                    m.add_hint(x[s, slot], 0)
