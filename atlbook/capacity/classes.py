"""Exact N+1 planning per zone on *pod classes*, with up to ``max_types`` instance types per plan.

When every pod set has zone spread (maxSkew 1) and at most one replica per zone (``replicas ≤
zones``), required hostname anti-affinity is implied (two pods of a set are never in one zone), and
sets with the same requests and replica count are interchangeable: they form one *class*. The model
then has one integer per (class, node slot) instead of one per (set, node slot), and per-zone node-loss
recourse: for each slot ``f`` of a zone, the pods on ``f`` re-place on the zone's other used slots.
Same-zone recourse is what EBS volumes force; for pods without EBS volumes it is a restriction (the plan
is still survivable, but optimality is only claimed when every set has EBS volumes).

Each slot chooses its instance type among the candidate ``shapes`` (or stays unused); at most
``max_types`` types are used in the plan (one node group per type and zone). The objective is $/h.
Symmetric slots are ordered (type, then memory load). Search limits are *deterministic*
(``max_deterministic_time``, fixed ``num_workers``, ``random_seed``, ``interleave_search``), so the same
inputs and seed give the same plan whatever the machine load.

The planner uses the much smaller pattern model (:mod:`.patterns`) built on the classes, zone split and
solver helpers defined here; :func:`solve_classes`, which models every node-loss recourse explicitly, is
the independent exact reference the tests hold it to (it does not scale: on W3-150 it found no better
plan than the heuristic in 10 s).
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable, Sequence
from typing import Any

from ortools.sat.python import cp_model

from atlbook.capacity.cluster import ClusterState, Node
from atlbook.capacity.eks import NodeShape
from atlbook.capacity.workload import Workload
from atlbook.errors import ConfigError

__all__ = [
    "MAX_RECOURSE_VARS",
    "PRICE_SCALE",
    "ClassResult",
    "CostProgress",
    "PodClass",
    "ZoneSplit",
    "aggregatable",
    "check_model_inputs",
    "pod_classes",
    "recourse_size",
    "run_deterministic",
    "sets_in_zones",
    "solve_classes",
    "zone_split_vars",
]

MAX_RECOURSE_VARS = 5000
"""Above this many recourse variables the class model is not built."""
PRICE_SCALE = 10000
"""$/h are scaled by this to integers in CP-SAT objectives."""


@dataclasses.dataclass(frozen=True)
class PodClass:
    """Interchangeable pod sets: same requests, same replica count (each replica in its own zone)."""

    cpu_m: int
    memory_mi: int
    replicas: int
    sets: tuple[int, ...]
    """Indices of the member sets in ``workload.sets``."""

    @property
    def pods(self) -> int:
        """Pods of the class."""
        return self.replicas * len(self.sets)


def aggregatable(workload: Workload, zones: Sequence[str]) -> bool:
    """True when the class model applies: every set spreads over zones with ≤ 1 replica per zone, no
    live pins, and at most 4 zones (zone subsets are enumerated)."""
    z = len(zones)
    if not 1 <= z <= 4:
        return False
    for s in workload.sets:
        if not s.replicas:
            continue
        if s.pinned_zones or s.replicas > z or (s.replicas > 1 and not s.zone_spread):
            return False
    return True


def pod_classes(workload: Workload) -> list[PodClass]:
    """The workload's pod classes, in first-appearance order."""
    groups: dict[tuple[int, int, int], list[int]] = {}
    for i, s in enumerate(workload.sets):
        if s.replicas:
            groups.setdefault((s.cpu_m, s.memory_mi, s.replicas), []).append(i)
    return [PodClass(c, m, r, tuple(ix)) for (c, m, r), ix in groups.items()]


@dataclasses.dataclass
class ClassResult:
    """Outcome of one class-model solve."""

    state: ClusterState | None
    status: str
    cost: float | None
    bound_cost: float
    """Proven lower bound on $/h for plans within the model's limits (types, slots per zone)."""
    exact: bool
    """True when the model is exact for the problem (every set has EBS volumes): then ``bound_cost`` is a
    lower bound on any survivable plan over these types with at most these many nodes per zone."""


def check_model_inputs(
    workload: Workload, zones: Sequence[str], shapes: Sequence[NodeShape], max_types: int, model: str
) -> None:
    """Refuse (``ConfigError``) what the class and pattern models cannot take."""
    if not aggregatable(workload, zones):
        raise ConfigError(f"the {model} model needs zone-spread sets with at most one replica per zone")
    if not shapes:
        raise ConfigError("at least one instance type is required")
    if max_types < 1:
        raise ConfigError(f"max_types must be ≥ 1, got {max_types}")


ZoneSplit = dict[tuple[int, tuple[int, ...]], cp_model.IntVar]
"""(class, zone subset) → how many sets of the class put one replica in each zone of the subset."""


def zone_split_vars(
    m: cp_model.CpModel, classes: Sequence[PodClass], z_n: int
) -> tuple[ZoneSplit, dict[int, list[tuple[int, ...]]]]:
    """Add the zone-split variables of every class (each set's replicas in distinct zones)."""
    subsets = {c: list(itertools.combinations(range(z_n), cl.replicas)) for c, cl in enumerate(classes)}
    ksub = {
        (c, S): m.new_int_var(0, len(cl.sets), f"k{c}_{'_'.join(map(str, S))}")
        for c, cl in enumerate(classes)
        for S in subsets[c]
    }
    for c, cl in enumerate(classes):
        m.add(sum(ksub[c, S] for S in subsets[c]) == len(cl.sets))
    return ksub, subsets


def sets_in_zones(
    solver: cp_model.CpSolver,
    classes: Sequence[PodClass],
    ksub: ZoneSplit,
    subsets: dict[int, list[tuple[int, ...]]],
) -> dict[tuple[int, int], list[int]]:
    """From a solution: (class, zone) → the sets with a replica there."""
    out: dict[tuple[int, int], list[int]] = {}
    for c, cl in enumerate(classes):
        members = list(cl.sets)
        for S in subsets[c]:
            for _ in range(solver.value(ksub[c, S])):
                s = members.pop(0)
                for z in S:
                    out.setdefault((c, z), []).append(s)
    return out


def run_deterministic(
    m: cp_model.CpModel,
    deterministic_time: float,
    seed: int,
    workers: int,
    on_solution: Callable[[float, float], None] | None,
) -> tuple[cp_model.CpSolver, Any, str, float]:
    """Solve ``m`` with deterministic limits only (same result whatever the machine load); return
    (solver, status, status name, proven objective bound in $/h)."""
    solver = cp_model.CpSolver()
    p = solver.parameters
    p.random_seed = seed
    p.num_workers = max(1, workers)
    p.interleave_search = True
    p.max_deterministic_time = deterministic_time
    status = solver.solve(m, CostProgress(on_solution) if on_solution else None)
    return solver, status, solver.status_name(status), float(solver.best_objective_bound) / PRICE_SCALE


def recourse_size(n_classes: int, slots_per_zone: dict[str, int]) -> int:
    """Number of recourse variables of the model."""
    return sum(k * (k - 1) * n_classes for k in slots_per_zone.values())


class CostProgress(cp_model.CpSolverSolutionCallback):
    """CP-SAT solution callback that reports (cost, proven bound) in $/h on every improving solution."""

    def __init__(self, report: Callable[[float, float], None]) -> None:
        """``report(cost, bound)`` is called from the solver thread."""
        super().__init__()
        self._report = report

    def on_solution_callback(self) -> None:
        """Forward the objective and bound, unscaled."""
        self._report(self.objective_value / PRICE_SCALE, self.best_objective_bound / PRICE_SCALE)


def solve_classes(
    workload: Workload,
    shapes: Sequence[NodeShape],
    zones: Sequence[str],
    slots_per_zone: dict[str, int],
    *,
    max_types: int = 2,
    hint: ClusterState | None = None,
    deterministic_time: float = 5.0,
    seed: int = 0,
    workers: int = 2,
    on_solution: Callable[[float, float], None] | None = None,
) -> ClassResult:
    """Solve the per-zone N+1 placement on pod classes over ``shapes`` (see module docstring).

    ``slots_per_zone`` caps nodes per zone. ``on_solution(cost, bound)`` is called on every improving
    solution. Refuses (``ConfigError``) a workload the class model does not
    apply to, no shapes, and ``max_types < 1``. Returns status ``TOO_LARGE`` (no model built) instead
    of building a huge model.
    """
    zs = list(zones)
    check_model_inputs(workload, zs, shapes, max_types, "class")
    classes = pod_classes(workload)
    exact = all(workload.sets[s].ebs for c in classes for s in c.sets)
    if recourse_size(len(classes), slots_per_zone) > MAX_RECOURSE_VARS:
        return ClassResult(None, "TOO_LARGE", None, 0.0, exact)
    z_n = len(zs)
    T = list(shapes)
    C = range(len(classes))
    m = cp_model.CpModel()
    ksub, subsets = zone_split_vars(m, classes, z_n)
    a: dict[tuple[int, int], cp_model.LinearExpr] = {}
    for c in C:
        for z in range(z_n):
            a[c, z] = cp_model.LinearExpr.sum([ksub[c, S] for S in subsets[c] if z in S])
    req = [(cl.cpu_m, cl.memory_mi, 1) for cl in classes]
    alloc = [(t.cpu_m, t.memory_mi, t.pods) for t in T]
    used_type = [m.new_bool_var(f"t{t}") for t in range(len(T))]
    m.add(sum(used_type) <= max_types)
    u: dict[tuple[int, int, int], cp_model.IntVar] = {}
    used: dict[tuple[int, int], cp_model.LinearExpr] = {}
    cap: dict[tuple[int, int, int], cp_model.LinearExpr] = {}
    x: dict[tuple[int, int, int], cp_model.IntVar] = {}
    cost_terms = []
    for z, zname in enumerate(zs):
        K = slots_per_zone[zname]
        for k in range(K):
            for t in range(len(T)):
                u[z, k, t] = m.new_bool_var(f"u{z}_{k}_{t}")
                m.add_implication(u[z, k, t], used_type[t])
                cost_terms.append(round(T[t].price * PRICE_SCALE) * u[z, k, t])
            m.add(sum(u[z, k, t] for t in range(len(T))) <= 1)
            used[z, k] = cp_model.LinearExpr.sum([u[z, k, t] for t in range(len(T))])
            for r in range(3):
                cap[z, k, r] = cp_model.LinearExpr.weighted_sum(
                    [u[z, k, t] for t in range(len(T))], [alloc[t][r] for t in range(len(T))]
                )
            for c in C:
                hi = min(len(classes[c].sets), max(a_[2] for a_ in alloc))
                x[c, z, k] = m.new_int_var(0, hi, f"x{c}_{z}_{k}")
            for r in range(3):
                m.add(sum(req[c][r] * x[c, z, k] for c in C) <= cap[z, k, r])
        if K:
            m.add(used[z, 0] == 1)
        for c in C:
            m.add(sum(x[c, z, k] for k in range(K)) == a[c, z])
        # symmetry: used slots first, ordered by type index, then by memory load within a type
        tidx = [sum(t * u[z, k, t] for t in range(len(T))) + len(T) * (1 - used[z, k]) for k in range(K)]
        for k in range(K - 1):
            same = m.new_bool_var(f"same{z}_{k}")
            m.add(tidx[k + 1] == tidx[k]).only_enforce_if(same)
            m.add(tidx[k + 1] >= tidx[k] + 1).only_enforce_if(~same)
            m.add(
                sum(req[c][1] * x[c, z, k] for c in C) >= sum(req[c][1] * x[c, z, k + 1] for c in C)
            ).only_enforce_if(same)
        # N+1: the pods of any slot f re-place on the zone's other slots
        for f in range(K):
            y = {
                (c, k): m.new_int_var(0, len(classes[c].sets), f"y{z}_{f}_{c}_{k}")
                for c in C
                for k in range(K)
                if k != f
            }
            for c in C:
                m.add(sum(y[c, k] for k in range(K) if k != f) == x[c, z, f])
            for k in range(K):
                if k == f:
                    continue
                for r in range(3):
                    m.add(sum(req[c][r] * (x[c, z, k] + y[c, k]) for c in C) <= cap[z, k, r])
    m.minimize(sum(cost_terms))
    v = _Vars(classes, zs, slots_per_zone, T, u, x, ksub, subsets)
    if hint is not None:
        _hint(m, hint, v)
    solver, status, name, bound = run_deterministic(m, deterministic_time, seed, workers, on_solution)
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return ClassResult(None, name, None, bound, exact)
    state = _extract(solver, workload, v)
    return ClassResult(state, name, state.cost(), bound, exact)


@dataclasses.dataclass
class _Vars:
    """The model's variables and the data they are indexed by."""

    classes: list[PodClass]
    zs: list[str]
    slots_per_zone: dict[str, int]
    T: list[NodeShape]
    u: dict[tuple[int, int, int], cp_model.IntVar]
    x: dict[tuple[int, int, int], cp_model.IntVar]
    ksub: dict[tuple[int, tuple[int, ...]], cp_model.IntVar]
    subsets: dict[int, list[tuple[int, ...]]]


def _extract(solver: cp_model.CpSolver, workload: Workload, v: _Vars) -> ClusterState:
    classes, zs, slots_per_zone, T = v.classes, v.zs, v.slots_per_zone, v.T
    u, x, ksub, subsets = v.u, v.x, v.ksub, v.subsets
    nodes: list[Node] = []
    slot_node: dict[tuple[int, int], int] = {}
    per_type: dict[tuple[str, str], int] = {}
    for z, zname in enumerate(zs):
        for k in range(slots_per_zone[zname]):
            for t, sh in enumerate(T):
                if solver.value(u[z, k, t]):
                    i = per_type.get((zname, sh.name), 0)
                    per_type[zname, sh.name] = i + 1
                    slot_node[z, k] = len(nodes)
                    nodes.append(Node(f"{zname}/{sh.name}/{i}", zname, sh))
    state = ClusterState(workload, nodes, zs)
    where = sets_in_zones(solver, classes, ksub, subsets)
    for c in range(len(classes)):
        for z, zname in enumerate(zs):
            queue = where.get((c, z), [])
            for k in range(slots_per_zone[zname]):
                for _ in range(solver.value(x[c, z, k])):
                    state.place(queue.pop(0), slot_node[z, k])
    return state


def _hint(m: cp_model.CpModel, hint: ClusterState, v: _Vars) -> None:
    classes, zs, slots_per_zone, T = v.classes, v.zs, v.slots_per_zone, v.T
    u, x, ksub, subsets = v.u, v.x, v.ksub, v.subsets
    tindex = {sh.name: i for i, sh in enumerate(T)}
    cls_of = {s: c for c, cl in enumerate(classes) for s in cl.sets}
    sets = hint.workload.sets
    for z, zname in enumerate(zs):
        nodes = [
            n
            for n in hint.used_nodes()
            if hint.node_zone[n] == z and hint.nodes[n].shape.name in tindex and hint.count[n]
        ]
        nodes.sort(
            key=lambda n: (
                tindex[hint.nodes[n].shape.name],
                -sum(sets[s].memory_mi * k for s, k in hint.count[n].items()),
            )
        )
        for k in range(slots_per_zone[zname]):
            node = nodes[k] if k < len(nodes) else None
            for t in range(len(T)):
                on = node is not None and tindex[hint.nodes[node].shape.name] == t
                m.add_hint(u[z, k, t], int(on))
            for c in range(len(classes)):
                cnt = 0
                if node is not None:
                    cnt = sum(v for s, v in hint.count[node].items() if cls_of.get(s) == c)
                m.add_hint(x[c, z, k], cnt)
    for c, cl in enumerate(classes):
        got: dict[tuple[int, ...], int] = {}
        for s in cl.sets:
            S = tuple(z for z in range(len(zs)) if hint.zone_count[s][z])
            got[S] = got.get(S, 0) + 1
        for S in subsets[c]:
            m.add_hint(ksub[c, S], got.get(S, 0))
