"""Lower bounds on cost and node counts, so every plan can be judged against what is provably needed.

- :func:`lp_bound`: LP relaxation (OR-Tools GLOP; scipy is not installed) of
  min Σ price_t·y_t s.t. Σ_t alloc_{t,r}·y_t ≥ Σ requests_r for r ∈ {cpu, memory, pod slots} and, per set
  with required hostname anti-affinity, Σ_{t fits the pod} y_t ≥ replicas + 1 (N+1). Valid for any
  mix of instance types.
- :func:`aggregate_bound`: an integer relaxation of the N+1 problem solved with CP-SAT (node counts per
  type and zone, no placement): for every type used, the cluster minus one such node still covers the
  requests, each zone minus one of its nodes still covers the EBS-pinned pods that zone spread forces
  into it, and capacity minus one node per zone covers all EBS-pinned pods (a pinned pod can only move
  inside its zone). Its *proven* objective bound is returned, so it is valid even when the solve times out.
- :func:`homogeneous_node_bound`: node counts (total, per zone) for a single-type plan.

All bounds assume, as the planner does, that every zone has at least one node.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from ortools.linear_solver import pywraplp
from ortools.sat.python import cp_model

from atlbook.capacity.eks import NodeShape
from atlbook.capacity.workload import PodSet, Workload
from atlbook.errors import CapacityExceeded, ConfigError

__all__ = [
    "aggregate_bound",
    "homogeneous_node_bound",
    "lp_bound",
    "packing_node_bound",
    "zone_min_load",
]

_R = ("cpu_m", "memory_mi", "pods")


def _alloc(shape: NodeShape) -> tuple[int, int, int]:
    return (shape.cpu_m, shape.memory_mi, shape.pods)


def _req(s: PodSet) -> tuple[int, int, int]:
    return (s.cpu_m, s.memory_mi, 1)


def _load(workload: Workload) -> tuple[int, int, int]:
    return (workload.cpu_m, workload.memory_mi, workload.pods)


def _fits(s: PodSet, shape: NodeShape) -> bool:
    return s.cpu_m <= shape.cpu_m and s.memory_mi <= shape.memory_mi


def zone_min_load(workload: Workload, n_zones: int, *, pinned_only: bool) -> tuple[int, int, int]:
    """Requests zone spread (maxSkew 1) forces into *every* zone: Σ ⌊replicas / zones⌋ × request."""
    cpu = mem = pods = 0
    for s in workload.sets:
        if not s.zone_spread or (pinned_only and not s.ebs):
            continue
        k = s.replicas // n_zones
        cpu += k * s.cpu_m
        mem += k * s.memory_mi
        pods += k
    return (cpu, mem, pods)


def homogeneous_node_bound(
    workload: Workload, shape: NodeShape, zones: Sequence[str]
) -> tuple[int, dict[str, int]]:
    """Fewest nodes (total, per zone) a survivable single-type plan on ``shape`` can have.

    Refuses (``CapacityExceeded``) a shape that cannot hold some pod.
    """
    if not zones:
        raise ConfigError("at least one zone is required")
    for s in workload.sets:
        if s.replicas and not _fits(s, shape):
            raise CapacityExceeded(f"a pod of {s.name} does not fit on {shape.name}")
    alloc = _alloc(shape)
    load = _load(workload)
    total = max(math.ceil(load[r] / alloc[r]) for r in range(3)) + 1
    anti = [s.replicas for s in workload.sets if s.anti_affinity and s.replicas]
    if anti:
        total = max(total, max(anti) + 1)
    z = len(zones)
    # capacity minus one node per zone must hold every EBS-pinned pod (each can only move in its zone)
    pinned_all = [sum(_req(s)[r] * s.replicas for s in workload.sets if s.ebs) for r in range(3)]
    if any(pinned_all):
        total = max(total, max(math.ceil(pinned_all[r] / alloc[r]) for r in range(3)) + z)
    pinned = zone_min_load(workload, z, pinned_only=True)
    per = 1
    if any(pinned):
        per = max(per, max(math.ceil(pinned[r] / alloc[r]) for r in range(3)) + 1)
    for s in workload.sets:
        k = s.replicas // z
        if s.anti_affinity and s.zone_spread and k:
            per = max(per, k + 1 if s.ebs else k)
    per_zone = {zz: per for zz in zones}
    return max(total, per * z), per_zone


def packing_node_bound(workload: Workload, shape: NodeShape) -> int:
    """Fewest nodes of ``shape`` that hold the requests at all (no N+1): max over resources and
    anti-affinity set sizes."""
    alloc = _alloc(shape)
    load = _load(workload)
    n = max(math.ceil(load[r] / alloc[r]) for r in range(3))
    anti = [s.replicas for s in workload.sets if s.anti_affinity and s.replicas]
    return max(n, max(anti, default=0), 1)


def lp_bound(workload: Workload, shapes: Sequence[NodeShape]) -> float:
    """LP relaxation lower bound on $/h over ``shapes`` (see module docstring).

    Refuses (``CapacityExceeded``) a workload that no shape can hold at all.
    """
    solver = pywraplp.Solver.CreateSolver("GLOP")
    if solver is None:  # pragma: no cover - GLOP ships with ortools
        raise ConfigError("OR-Tools GLOP is not available")
    ys = [solver.NumVar(0.0, solver.infinity(), f"y{i}") for i in range(len(shapes))]
    load = _load(workload)
    for r in range(3):
        solver.Add(sum(_alloc(t)[r] * y for t, y in zip(shapes, ys, strict=True)) >= load[r])
    for s in workload.sets:
        if not s.replicas:
            continue
        fit = [y for t, y in zip(shapes, ys, strict=True) if _fits(s, t)]
        if not fit:
            raise CapacityExceeded(f"no instance type fits a pod of {s.name}")
        need = s.replicas + 1 if s.anti_affinity else 1
        solver.Add(sum(fit) >= need)
    solver.Minimize(sum(t.price * y for t, y in zip(shapes, ys, strict=True)))
    status = solver.Solve()
    if status not in (pywraplp.Solver.OPTIMAL, pywraplp.Solver.FEASIBLE):
        raise CapacityExceeded("LP bound: infeasible workload")
    return float(solver.Objective().Value())


_PRICE_SCALE = 10000


def aggregate_bound(
    workload: Workload,
    shapes: Sequence[NodeShape],
    zones: Sequence[str],
    *,
    time_limit: float = 1.0,
    seed: int = 0,
    workers: int = 1,
) -> float:
    """Integer N+1 relaxation (see module docstring) solved by CP-SAT; returns its proven bound in $/h.

    Refuses (``CapacityExceeded``) a workload that no shape can hold.
    """
    if not zones:
        raise ConfigError("at least one zone is required")
    m = cp_model.CpModel()
    z_n = len(zones)
    load = _load(workload)
    pinned = zone_min_load(workload, z_n, pinned_only=True)
    ub = max(workload.pods, 1) + 2
    y = {(t, z): m.new_int_var(0, ub, f"y{t}_{z}") for t in range(len(shapes)) for z in range(z_n)}
    b = {k: m.new_bool_var(f"b{k[0]}_{k[1]}") for k in y}
    for k, v in y.items():
        m.add(v >= 1).only_enforce_if(b[k])
        m.add(v == 0).only_enforce_if(b[k].negated())
    for z in range(z_n):
        m.add(sum(y[t, z] for t in range(len(shapes))) >= 1)
    for (t, z), bv in b.items():
        a = _alloc(shapes[t])
        for r in range(3):
            m.add(
                sum(_alloc(shapes[tt])[r] * y[tt, zz] for tt in range(len(shapes)) for zz in range(z_n))
                - a[r]
                >= load[r]
            ).only_enforce_if(bv)
            if pinned[r]:
                m.add(
                    sum(_alloc(shapes[tt])[r] * y[tt, z] for tt in range(len(shapes))) - a[r] >= pinned[r]
                ).only_enforce_if(bv)
    # Every zone keeps one node's worth of spare for its own EBS-pinned pods: summed over zones,
    # capacity − Σ_z (a designated used node of z) ≥ all pinned requests.
    pinned_total = [sum(_req(s)[r] * s.replicas for s in workload.sets if s.ebs) for r in range(3)]
    if any(pinned_total):
        designated = {k: m.new_bool_var(f"d{k[0]}_{k[1]}") for k in y}
        for z in range(z_n):
            m.add(sum(designated[t, z] for t in range(len(shapes))) == 1)
        for k, dv in designated.items():
            m.add_implication(dv, b[k])
        for r in range(3):
            m.add(sum(_alloc(shapes[t])[r] * (y[t, z] - designated[t, z]) for (t, z) in y) >= pinned_total[r])
    for s in workload.sets:
        if not s.replicas:
            continue
        fit = [t for t in range(len(shapes)) if _fits(s, shapes[t])]
        if not fit:
            raise CapacityExceeded(f"no instance type fits a pod of {s.name}")
        need = s.replicas + 1 if s.anti_affinity else 1
        m.add(sum(y[t, z] for t in fit for z in range(z_n)) >= need)
        per_zone = s.replicas // z_n
        if s.anti_affinity and s.zone_spread and per_zone:
            for z in range(z_n):
                m.add(sum(y[t, z] for t in fit) >= (per_zone + 1 if s.ebs else per_zone))
    m.minimize(
        sum(round(shapes[t].price * _PRICE_SCALE) * y[t, z] for t in range(len(shapes)) for z in range(z_n))
    )
    solver = cp_model.CpSolver()
    solver.parameters.max_deterministic_time = time_limit  # deterministic: same bound whatever the load
    solver.parameters.num_workers = workers
    solver.parameters.random_seed = seed
    status = solver.solve(m)
    if status == cp_model.INFEASIBLE:
        raise CapacityExceeded("aggregate bound: infeasible workload")
    return float(solver.best_objective_bound) / _PRICE_SCALE
