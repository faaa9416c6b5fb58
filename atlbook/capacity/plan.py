"""The planner's front door: :func:`recommend` (new plan) and :func:`compare_live` (current vs recommended).

``recommend`` takes one of two deterministic searches. When every set keeps at most one replica per
zone (the usual Atlassian stack), the pattern model of :mod:`.patterns` is exact: one CP-SAT solve per
distinct node shape whose bound is below the best plan proves that shape's optimum, then one solve over
the best few types may mix them (``max_types``). Otherwise: a fast survivable plan (FFD → N+1 repair →
compaction) per type, pruned by each type's lower bound, then the set-level CP-SAT model (N+1 built in)
on the promising types. The result carries its lower bounds, the solver status, a survivability report
and a violations list that must be empty.
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
from collections.abc import Callable, Sequence
from typing import Any

from atlbook.capacity import bounds as bounds_mod
from atlbook.capacity import classes, heuristics, patterns, solver, zonewise
from atlbook.capacity.catalogue import InstanceType
from atlbook.capacity.cluster import ClusterState, Node
from atlbook.capacity.eks import NodeShape, node_shape
from atlbook.capacity.survivability import SurvivabilityReport, simulate
from atlbook.capacity.workload import PRIORITY_APPS, PodSet, Workload
from atlbook.errors import CapacityExceeded, ConfigError

__all__ = [
    "MAX_EXACT_TYPES",
    "MIX_MIN_SAVING",
    "MIX_PARTIAL",
    "MIX_TYPES",
    "PATTERN_TYPES",
    "WORK_UNITS_PER_SECOND",
    "PlanProgress",
    "Bounds",
    "LiveComparison",
    "LiveNode",
    "LivePod",
    "NodeGroup",
    "Recommendation",
    "compare_live",
    "node_rows",
    "mix_space",
    "placement_rows",
    "recommend",
    "shapes_for",
]


@dataclasses.dataclass(frozen=True)
class NodeGroup:
    """Nodes of one instance type in one zone."""

    zone: str
    instance_type: str
    count: int
    price_per_hour: float

    @property
    def cost_per_hour(self) -> float:
        """count × price."""
        return self.count * self.price_per_hour


@dataclasses.dataclass(frozen=True)
class Bounds:
    """Lower bounds on $/h: ``lp``, ``aggregate`` and ``patterns`` hold for any mix of the types the
    planner may use, ``homogeneous`` for single-type plans; ``best`` is the largest of these (a mixed
    plan may be cheaper than ``best``: then it beats every single-type plan)."""

    lp: float
    aggregate: float
    homogeneous: float
    patterns: float = 0.0
    """:func:`.patterns.mixed_bound` (one-replica-per-zone EBS stacks; 0 when it does not apply)."""

    @property
    def any_mix(self) -> float:
        """Best bound valid for any mix of instance types."""
        return max(self.lp, self.aggregate, self.patterns)

    @property
    def best(self) -> float:
        """Best bound for the single-type plan space."""
        return max(self.any_mix, self.homogeneous)


MAX_EXACT_TYPES = 3
"""CP-SAT is run on at most this many instance types (those with the cheapest heuristic plans)."""
WORK_UNITS_PER_SECOND = 30000
"""Heuristic work units (:class:`.heuristics.Effort`) granted per second of ``time_limit``: about what
this machine class does per second, so budgets end near the time limit without reading a clock."""
MIX_TYPES = 3
"""The mixed-type model chooses among this many types (those with the cheapest single-type plans)..."""
MIX_PARTIAL = 2
"""... and this many of the cheapest types that hold some pods but not all."""
MIX_MIN_SAVING = 0.02
"""A mixed plan is recommended only when it is at least this share cheaper than the best single-type
plan (a second node group type is an operating cost of its own)."""


@dataclasses.dataclass(frozen=True)
class PlanProgress:
    """One progress report of :func:`recommend`.

    ``phase`` is ``heuristic`` (one step per instance type), ``exact`` (CP-SAT per type), ``mixed``
    (the mixed-type model), ``bounds`` or ``done``; ``step``/``steps`` count within the phase;
    ``detail`` names the instance type(s); ``best_cost`` is the cheapest survivable plan so far ($/h).
    """

    phase: str
    step: int
    steps: int
    detail: str
    best_cost: float | None


def placement_rows(state: ClusterState) -> list[dict[str, Any]]:
    """One row per (node, pod set): node, zone, instance type, set, app, pods, CPU and memory requested."""
    rows: list[dict[str, Any]] = []
    for n in state.used_nodes():
        node = state.nodes[n]
        for s, k in sorted(state.count[n].items()):
            ps = state.workload.sets[s]
            rows.append(
                {
                    "node": node.name,
                    "zone": node.zone,
                    "instance_type": node.shape.name,
                    "set": ps.name,
                    "app": ps.app,
                    "pods": k,
                    "cpu_m": k * ps.cpu_m,
                    "memory_mi": k * ps.memory_mi,
                }
            )
    return rows


def node_rows(state: ClusterState) -> list[dict[str, Any]]:
    """One row per node: zone, type, requested vs allocatable CPU / memory / pod slots, $/h."""
    out: list[dict[str, Any]] = []
    for n in state.used_nodes():
        node = state.nodes[n]
        sh = node.shape
        out.append(
            {
                "node": node.name,
                "zone": node.zone,
                "instance_type": sh.name,
                "cpu_m": sh.cpu_m - state.free_cpu[n],
                "cpu_alloc_m": sh.cpu_m,
                "memory_mi": sh.memory_mi - state.free_mem[n],
                "memory_alloc_mi": sh.memory_mi,
                "pods": sh.pods - state.free_pods[n],
                "pods_alloc": sh.pods,
                "price_per_hour": sh.price,
            }
        )
    return out


@dataclasses.dataclass
class Recommendation:
    """A recommended node layout with its placement, survivability, bounds and provenance."""

    node_groups: list[NodeGroup]
    placement: list[dict[str, Any]]
    survivability: SurvivabilityReport
    bounds: Bounds
    solver_status: str
    algorithm: str
    violations: list[str]
    candidates: list[dict[str, Any]]
    wall_s: float
    state: ClusterState = dataclasses.field(repr=False)

    @property
    def nodes(self) -> int:
        """Total nodes."""
        return sum(g.count for g in self.node_groups)

    @property
    def cost_per_hour(self) -> float:
        """Total on-demand $/h."""
        return sum(g.cost_per_hour for g in self.node_groups)

    @property
    def instance_type(self) -> str:
        """The plan's instance type(s), ``+``-joined when the plan mixes types."""
        return "+".join(sorted({g.instance_type for g in self.node_groups}))

    @property
    def mixed(self) -> bool:
        """True when the plan uses more than one instance type."""
        return len({g.instance_type for g in self.node_groups}) > 1

    def ratio_to_bound(self) -> float:
        """Cost / best applicable lower bound: the single-type bound for a single-type plan, the any-mix
        bound for a plan that mixes types."""
        b = self.bounds.any_mix if self.mixed else self.bounds.best
        return self.cost_per_hour / b if b > 0 else math.inf

    def cost_rows(self) -> list[dict[str, Any]]:
        """Per instance type tried: plan cost against that type's lower bound (for the cost plot)."""
        rows: list[dict[str, Any]] = []
        for c in self.candidates:
            if "heuristic_cost" in c:
                rows.append(
                    {
                        "label": "heuristic",
                        "type": c["instance_type"],
                        "cost": c["heuristic_cost"],
                        "bound": c["lb_cost"],
                    }
                )
        rows.append(
            {
                "label": "recommended",
                "type": self.instance_type,
                "cost": self.cost_per_hour,
                "bound": self.bounds.any_mix if self.mixed else self.bounds.best,
            }
        )
        return rows

    def placement_frame(self) -> Any:
        """The placement table as a pandas DataFrame."""
        import pandas as pd

        return pd.DataFrame(self.placement)

    def nodes_frame(self) -> Any:
        """Per-node usage as a pandas DataFrame."""
        import pandas as pd

        return pd.DataFrame(node_rows(self.state))

    def summary(self) -> dict[str, Any]:
        """JSON-able summary for records: groups, cost, bounds, N+1 %, status, violations."""
        return {
            "instance_type": self.instance_type,
            "nodes": self.nodes,
            "cost_per_hour": round(self.cost_per_hour, 4),
            "node_groups": [dataclasses.asdict(g) for g in self.node_groups],
            "bound_lp": round(self.bounds.lp, 4),
            "bound_aggregate": round(self.bounds.aggregate, 4),
            "bound_patterns": round(self.bounds.patterns, 4),
            "bound_homogeneous": round(self.bounds.homogeneous, 4),
            "ratio_to_bound": round(self.ratio_to_bound(), 4),
            "node_n1_pct": self.survivability.node_pct,
            "zone_n1_pct": self.survivability.zone_pct,
            "stranded_pinned_on_zone_loss": sum(
                sum(s.stranded_pinned.values()) for s in self.survivability.zones
            ),
            "solver_status": self.solver_status,
            "algorithm": self.algorithm,
            "violations": len(self.violations),
            "wall_s": round(self.wall_s, 3),
        }


def shapes_for(
    catalogue: Sequence[InstanceType], workload: Workload, *, prefix_delegation: bool = False
) -> list[NodeShape]:
    """Node shapes of the catalogue types that can hold every pod of ``workload`` (DaemonSets included).

    Refuses (``CapacityExceeded``) when no type can hold the largest pod.
    """
    shapes: list[NodeShape] = []
    for t in catalogue:
        try:
            sh = node_shape(t, workload.daemonsets, prefix_delegation=prefix_delegation)
        except CapacityExceeded:
            continue
        if heuristics.shape_fits_workload(workload, sh):
            shapes.append(sh)
    if not shapes:
        big = max(workload.sets, key=lambda s: (s.cpu_m, s.memory_mi))
        raise CapacityExceeded(
            f"no instance type in the catalogue holds a pod of {big.name} "
            f"({big.cpu_m}m CPU, {big.memory_mi}Mi) after kube-reserved and DaemonSets"
        )
    return shapes


def _partial_shapes(
    catalogue: Sequence[InstanceType], workload: Workload, full: Sequence[NodeShape], prefix_delegation: bool
) -> list[NodeShape]:
    """Shapes of catalogue types that hold some pod of ``workload`` but not all (mixing candidates)."""
    names = {sh.name for sh in full}
    out: list[NodeShape] = []
    for t in catalogue:
        if t.name in names:
            continue
        try:
            sh = node_shape(t, workload.daemonsets, prefix_delegation=prefix_delegation)
        except CapacityExceeded:
            continue
        if any(s.replicas and s.cpu_m <= sh.cpu_m and s.memory_mi <= sh.memory_mi for s in workload.sets):
            out.append(sh)
    return out


def mix_space(
    catalogue: Sequence[InstanceType],
    workload: Workload,
    *,
    max_types: int = 2,
    prefix_delegation: bool = False,
) -> list[NodeShape]:
    """Every node shape :func:`recommend` may put in a plan: the types that hold every pod and, when
    ``max_types`` > 1, those that hold only some (any-mix bounds are computed over this space)."""
    shapes = shapes_for(catalogue, workload, prefix_delegation=prefix_delegation)
    if max_types <= 1:
        return shapes
    return [*shapes, *_partial_shapes(catalogue, workload, shapes, prefix_delegation)]


def _check_inputs(workload: Workload, zones: Sequence[str]) -> None:
    if not zones:
        raise ConfigError("at least one zone is required")
    if len(set(zones)) != len(zones):
        raise ConfigError(f"zones must be unique: {list(zones)}")
    if workload.pods == 0:
        raise ConfigError("the workload has no pods")
    for s in workload.sets:
        bad = sorted(set(s.pinned_zones) - set(zones))
        if bad:
            raise ConfigError(f"{s.name}: pinned zones {bad} are not among {list(zones)}")


def _groups(state: ClusterState) -> list[NodeGroup]:
    counts: dict[tuple[str, str], int] = {}
    price: dict[str, float] = {}
    for n in state.used_nodes():
        node = state.nodes[n]
        counts[node.zone, node.shape.name] = counts.get((node.zone, node.shape.name), 0) + 1
        price[node.shape.name] = node.shape.price
    order = {z: i for i, z in enumerate(state.zones)}
    return [
        NodeGroup(z, t, c, price[t]) for (z, t), c in sorted(counts.items(), key=lambda kv: order[kv[0][0]])
    ]


def _survives(state: ClusterState, require_zone: bool) -> bool:
    rep = simulate(state, zones=require_zone)
    return rep.node_pct == 100.0 and (not require_zone or rep.zone_pct == 100.0)


PATTERN_TYPES = 6
"""The pattern model is solved for at most this many distinct node shapes (cheapest bounds first)."""
ZONEWISE_RANKED = 40
"""Type sets whose zone-by-zone pattern LP bound is computed (the best by the capacity bound)."""
ZONEWISE_SOLVES = 3
"""At most this many type sets are planned zone by zone (:class:`.zonewise.ZonewisePlanner`)."""


def _pattern_search(
    workload: Workload,
    order: list[NodeShape],
    zs: list[str],
    proven: dict[str, float],
    cands: dict[str, dict[str, Any]],
    time_limit: float,
    seed: int,
    max_types: int,
    report: Callable[[str, int, int, str, float | None], None],
    partial: Sequence[NodeShape] = (),
) -> tuple[ClusterState, str, str]:
    """Deterministic search with the pattern model (:mod:`.patterns`): one exact solve per distinct
    node shape whose bound is below the best plan (cheapest bounds first, at most
    :data:`PATTERN_TYPES`), then one solve mixing the best few types with the cheapest ``partial``
    types (types too small for some pod, useful beside a bigger one), then zone-by-zone plans
    (:mod:`.zonewise`) of the one- and two-type sets whose bounds say they can still win (at most
    :data:`ZONEWISE_SOLVES`). Updates ``proven`` (per-type bounds) and ``cands`` (one row per type
    or type set tried); returns (plan, algorithm, status)."""
    groups: dict[tuple[int, int, int, float], list[NodeShape]] = {}
    for sh in order:  # identical allocatable and price → identical plans: solve once
        groups.setdefault((sh.cpu_m, sh.memory_mi, sh.pods, sh.price), []).append(sh)
    for sh in order:
        cands[sh.name] = {"instance_type": sh.name, "lb_cost": proven[sh.name]}
    per_solve = max(0.25, time_limit * 0.6 / (PATTERN_TYPES + 1))  # deterministic seconds
    first = order[0]
    report("heuristic", 0, 1, first.name, None)
    best = heuristics.plan_for_shape(workload, first, zs)  # a fallback; fast on these stacks
    cands[first.name].update(heuristic_nodes=len(best.used_nodes()), heuristic_cost=best.cost())
    alg = "heuristic"
    plans: dict[str, ClusterState] = {first.name: best}
    solved = 0
    for gi, group in enumerate(groups.values()):
        sh = group[0]
        if proven[sh.name] >= best.cost() - 1e-9 or solved >= PATTERN_TYPES:
            for g in group:
                cands[g.name]["skipped"] = "bound" if proven[sh.name] >= best.cost() - 1e-9 else "limit"
            continue
        report("exact", gi, len(groups), sh.name, best.cost())

        def on_solution(
            cost: float, bound: float, gi: int = gi, name: str = sh.name, cap: float = best.cost()
        ) -> None:
            report("exact", gi, len(groups), f"{name}: ${cost:.2f}/h, bound ${bound:.2f}/h", min(cap, cost))

        res = patterns.solve_patterns(
            workload,
            [sh],
            zs,
            max_types=1,
            hint_cost=best.cost(),
            deterministic_time=per_solve,
            seed=seed,
            workers=1,
            on_solution=on_solution,
        )
        solved += 1
        for g in group:
            cands[g.name].update(cpsat_model="patterns", cpsat_status=res.status, cpsat_cost=res.cost)
            if res.exact:
                proven[g.name] = max(proven[g.name], res.bound_cost)
        st = _survivable_or_none(res.state)
        if st is not None:
            plans[sh.name] = st
            if st.cost() < best.cost() - 1e-9:
                best, alg = st, "cp-sat/patterns"
    if max_types > 1:
        mshapes = [
            next(sh for sh in order if sh.name == n)
            for n in sorted(plans, key=lambda n: (plans[n].cost(), n))
        ]
        mshapes = mshapes[:MIX_TYPES] + sorted(partial, key=lambda sh: (sh.price, sh.name))[:MIX_PARTIAL]
        mix = [sh.name for sh in mshapes]
        if len(mix) > 1:
            report("mixed", 0, 1, "+".join(mix), best.cost())
            res = patterns.solve_patterns(
                workload,
                mshapes,
                zs,
                max_types=max_types,
                hint_cost=best.cost() * (1 - MIX_MIN_SAVING),
                deterministic_time=per_solve,
                seed=seed,
                workers=1,
            )
            cands["mixed"] = {
                "instance_type": "+".join(mix),
                "cpsat_model": "patterns-mixed",
                "cpsat_status": res.status,
                "cpsat_cost": res.cost,
            }
            st = _survivable_or_none(res.state)
            if st is not None and st.cost() <= best.cost() * (1 - MIX_MIN_SAVING) + 1e-9:
                best, alg = st, "cp-sat/patterns-mixed"

    # zone by zone (.zonewise): fast where the whole-stack model runs out of time (bigger types,
    # mixes). Type sets are ranked by a capacity bound, the best few re-ranked by their zones' pattern
    # LP bounds, then solved while one can still win.
    def cap_for(combo: tuple[NodeShape, ...]) -> float:
        if len(combo) > 1:
            return best.cost() * (1 - MIX_MIN_SAVING)
        # one type: only if cheaper than the best plan, and the type's proven optimum allows it
        if proven.get(combo[0].name, 0.0) >= best.cost() - 1e-9:
            return float("-inf")
        return best.cost() - 1e-6

    zw = zonewise.ZonewisePlanner(workload, zs)
    ranked = [c for estimate, c in zw.rank([*order, *partial], max_types) if estimate < cap_for(c)]
    by_lp = []
    for combo in ranked[:ZONEWISE_RANKED]:
        zb = zw.bound(combo)
        if zb is not None and zb < cap_for(combo):
            by_lp.append((zb, combo))
    by_lp.sort(key=lambda o: (o[0], len(o[1]), [sh.name for sh in o[1]]))
    by_lp = by_lp[:ZONEWISE_SOLVES]
    for i, (zb, combo) in enumerate(by_lp):
        cap = cap_for(combo)
        if zb >= cap:
            continue
        names = "+".join(sh.name for sh in combo)
        report("zonewise", i, len(by_lp), names, best.cost())
        res = zw.solve(combo, seed=seed)
        cands[f"zonewise:{names}"] = {
            "instance_type": names,
            "cpsat_model": "zonewise",
            "cpsat_status": res.status,
            "cpsat_cost": res.cost,
            "lb_cost_split": zb,
        }
        st = _survivable_or_none(res.state)
        if st is not None and st.cost() <= cap + 1e-9:
            best, alg = st, "zonewise"
    # OPTIMAL: no single-type plan is cheaper (every type's proven bound reaches the plan's cost)
    status = "OPTIMAL" if min(proven.values()) >= best.cost() - 1e-6 else "FEASIBLE"
    return best, alg, status


def _survivable_or_none(state: ClusterState | None) -> ClusterState | None:
    """A solver's state made N+1 (the simulator is the judge), or None when it has no valid placement."""
    if state is None or state.violations():
        return None
    return state if _survives(state, False) else heuristics.make_survivable(state)


def recommend(
    workload: Workload,
    catalogue: Sequence[InstanceType],
    zones: Sequence[str],
    require_zone_survival: bool = False,
    time_limit: float = 10.0,
    seed: int = 0,
    *,
    prefix_delegation: bool = False,
    workers: int | None = None,
    exact: bool = True,
    max_types: int = 2,
    on_progress: Callable[[PlanProgress], None] | None = None,
) -> Recommendation:
    """Recommend instance type and node count per zone at minimum cost, surviving any single node loss.

    With ``require_zone_survival`` the plan also survives the loss of any zone (pods pinned by EBS to the
    lost zone excepted: they are reported as stranded). ``time_limit`` (seconds) sizes the search, but
    as *deterministic* budgets (CP-SAT deterministic time, heuristic work units), never by reading a
    clock: the same inputs and ``seed`` give the same plan whatever the machine load (wall time then
    varies). Zone-by-zone plans (:mod:`.zonewise`, at most :data:`ZONEWISE_SOLVES` type sets, each
    zone's MIP limited to :data:`.zonewise.ZONE_MIP_NODES` nodes) have their own fixed work limit on
    top: about 5 s on a 500-pod stack. ``exact=False`` skips CP-SAT and them. Refuses
    (``ConfigError``) empty/duplicate zones, pins to unknown zones and an empty workload;
    (``CapacityExceeded``) a pod that no catalogue type can hold; (``ConfigError``) ``max_types < 1``.

    ``max_types`` > 1 lets the plan mix instance types (at most that many types in the plan, one node
    group per type and zone), when every set spreads over zones with at most one replica per zone
    (:mod:`.patterns`), and only when the mix is :data:`MIX_MIN_SAVING` cheaper than the best
    single-type plan. A mixed plan's ratio and status are judged against the any-mix bound.
    ``on_progress`` receives a :class:`PlanProgress` at every phase and step (no widget is imported here;
    notebooks pass a callable that drives a progress bar).
    """
    t0 = time.monotonic()
    _check_inputs(workload, zones)
    if max_types < 1:
        raise ConfigError(f"max_types must be ≥ 1, got {max_types}")

    def report(phase: str, step: int, steps: int, detail: str, best_cost: float | None) -> None:
        if on_progress is not None:
            on_progress(PlanProgress(phase, step, steps, detail, best_cost))

    zs = list(zones)
    shapes = shapes_for(catalogue, workload, prefix_delegation=prefix_delegation)
    partial = _partial_shapes(catalogue, workload, shapes, prefix_delegation) if max_types > 1 else []
    workers = workers or max(1, os.cpu_count() or 1)
    hb: dict[str, tuple[int, dict[str, int]]] = {
        sh.name: bounds_mod.homogeneous_node_bound(workload, sh, zs) for sh in shapes
    }
    order = sorted(shapes, key=lambda sh: (hb[sh.name][0] * sh.price, sh.name))
    bound_time = min(1.0, max(0.2, time_limit / 10))
    effort = heuristics.Effort(
        int((time_limit - bound_time) * (0.5 if exact else 0.95) * WORK_UNITS_PER_SECOND)
    )
    exact_budget = (time_limit - bound_time) * 0.5  # CP-SAT deterministic seconds
    proven: dict[str, float] = {sh.name: hb[sh.name][0] * sh.price for sh in shapes}
    cands: dict[str, dict[str, Any]] = {}
    best: ClusterState | None = None
    pattern_path = exact and not require_zone_survival and classes.aggregatable(workload, zs)
    if pattern_path:
        best, best_alg, best_status = _pattern_search(
            workload, order, zs, proven, cands, time_limit, seed, max_types, report, partial
        )
    else:
        best_alg, best_status = "heuristic", "HEURISTIC"
        hints: dict[str, ClusterState] = {}
        for i_sh, sh in enumerate(order):
            report("heuristic", i_sh, len(order), sh.name, best.cost() if best is not None else None)
            lb_cost = hb[sh.name][0] * sh.price
            row: dict[str, Any] = {"instance_type": sh.name, "lb_nodes": hb[sh.name][0], "lb_cost": lb_cost}
            cands[sh.name] = row
            if best is not None and (lb_cost >= best.cost() - 1e-9 or effort.exhausted):
                row["skipped"] = "bound" if lb_cost >= best.cost() - 1e-9 else "effort"
                continue
            try:
                st = heuristics.plan_for_shape(
                    workload, sh, zs, require_zone=require_zone_survival, effort=effort
                )
            except CapacityExceeded as e:
                row["skipped"] = str(e)
                continue
            hints[sh.name] = st
            row["heuristic_nodes"] = len(st.used_nodes())
            row["heuristic_cost"] = st.cost()
            if best is None or st.cost() < best.cost() - 1e-9:
                best = st
        if best is None:
            raise CapacityExceeded("no survivable plan found on any instance type")
        if exact:
            todo = [sh for sh in order if sh.name in hints and proven[sh.name] < best.cost() - 1e-9]
            # spend the exact-solver time on the most promising types: cheapest heuristic plans first
            todo = sorted(todo, key=lambda sh: (hints[sh.name].cost(), sh.name))[:MAX_EXACT_TYPES]
            for i, sh in enumerate(todo):
                if proven[sh.name] >= best.cost() - 1e-9:
                    continue
                report("exact", i, len(todo), sh.name, best.cost())
                hint = hints[sh.name]
                per = heuristics.nodes_per_zone(hint)
                best_nodes = math.floor(best.cost() / sh.price + 1e-9)
                lbz = hb[sh.name][1]
                # full range: any per-zone split no costlier than the best plan so far → optimality is proof
                mx = {z: max(per[z], best_nodes - sum(lbz[o] for o in zs if o != z)) for z in zs}
                row = cands[sh.name]
                full = recourse = True
                if solver.model_size(workload, zs, mx) > solver.MAX_RECOURSE_VARS:
                    # too large for N+1 scenarios in the model: optimise the packing, then add the reserve
                    mx, full, recourse = dict(per), False, False
                res = solver.solve_shape(
                    workload,
                    sh,
                    zs,
                    mx,
                    hint=hint,
                    time_limit=exact_budget / len(todo),
                    seed=seed,
                    workers=workers,
                    recourse=recourse,
                )
                row["cpsat_model"] = "n+1" if recourse else "packing"
                row["cpsat_status"] = res.status
                row["cpsat_nodes"] = res.nodes
                if full and res.status == "OPTIMAL" and res.nodes is not None:
                    proven[sh.name] = max(proven[sh.name], res.nodes * sh.price)
                elif full and res.status == "INFEASIBLE":
                    proven[sh.name] = max(proven[sh.name], (best_nodes + 1) * sh.price)
                elif full and res.bound_nodes:
                    proven[sh.name] = max(proven[sh.name], math.ceil(res.bound_nodes - 1e-6) * sh.price)
                st2 = res.state
                if st2 is None or st2.violations():
                    continue
                if not _survives(st2, require_zone_survival):
                    st2 = heuristics.make_survivable(st2, require_zone=require_zone_survival)
                if st2.cost() < best.cost() - 1e-9:
                    best, best_alg = st2, "cp-sat" if recourse else "heuristic+cp-sat"
                    best_status = res.status if recourse else f"PACKING_{res.status}"
                elif recourse and st2.cost() <= best.cost() + 1e-9 and best.nodes[0].shape.name == sh.name:
                    best_status = res.status
    report("bounds", 0, 1, "", best.cost())
    # any-mix bounds over every type the plan may use (partial types too when mixing is allowed)
    mix_space = [*shapes, *partial] if max_types > 1 else shapes
    agg = bounds_mod.aggregate_bound(workload, mix_space, zs, time_limit=bound_time * 0.8)
    pattern_bound = None
    if pattern_path:
        pattern_bound = patterns.mixed_bound(workload, mix_space, zs, deterministic_time=0.3, seed=seed)
    bounds = Bounds(
        lp=bounds_mod.lp_bound(workload, mix_space),
        aggregate=agg,
        homogeneous=min(proven.values()),
        patterns=pattern_bound or 0.0,
    )
    if len({best.nodes[n].shape.name for n in best.used_nodes()}) > 1:  # judged against any-mix bounds
        best_status = "OPTIMAL" if bounds.any_mix >= best.cost() - 1e-6 else "FEASIBLE"
    rep = simulate(best)
    report("done", 1, 1, best_alg, best.cost())
    return Recommendation(
        node_groups=_groups(best),
        placement=placement_rows(best),
        survivability=rep,
        bounds=bounds,
        solver_status=best_status,
        algorithm=best_alg,
        violations=best.violations(),
        candidates=list(cands.values()),
        wall_s=time.monotonic() - t0,
        state=best,
    )


@dataclasses.dataclass(frozen=True)
class LiveNode:
    """A node of a live cluster, as the diagnosis layer reads it.

    ``cpu_m``/``memory_mi``/``pods`` are the node's allocatable *minus DaemonSet requests*; when None they
    are computed from ``instance_type`` with the EKS formulas.
    """

    name: str
    zone: str
    instance_type: str
    cpu_m: int | None = None
    memory_mi: int | None = None
    pods: int | None = None


@dataclasses.dataclass(frozen=True)
class LivePod:
    """A workload pod of a live cluster: its owner (StatefulSet/ReplicaSet), requests, node, volume zone."""

    name: str
    owner: str
    cpu_m: int
    memory_mi: int
    node: str | None = None
    pv_zone: str | None = None
    """Zone of its EBS volume, if any (pins the pod to the zone)."""
    app: str = ""
    anti_affinity: bool = True
    zone_spread: bool = True
    priority: int = PRIORITY_APPS


@dataclasses.dataclass
class LiveComparison:
    """Current layout vs a recommendation for the same pods."""

    current_nodes: int
    current_cost_per_hour: float
    current_survivability: SurvivabilityReport
    current_violations: list[str]
    unplaced_pods: list[str]
    recommendation: Recommendation
    current_state: ClusterState = dataclasses.field(repr=False)

    def summary(self) -> dict[str, Any]:
        """JSON-able current vs recommended figures."""
        rec = self.recommendation
        return {
            "current_nodes": self.current_nodes,
            "current_cost_per_hour": round(self.current_cost_per_hour, 4),
            "current_node_n1_pct": self.current_survivability.node_pct,
            "current_zone_n1_pct": self.current_survivability.zone_pct,
            "current_violations": len(self.current_violations),
            "unplaced_pods": len(self.unplaced_pods),
            "recommended_nodes": rec.nodes,
            "recommended_instance_type": rec.instance_type,
            "recommended_cost_per_hour": round(rec.cost_per_hour, 4),
            "saving_per_hour": round(self.current_cost_per_hour - rec.cost_per_hour, 4),
        }


def _live_workload(pods: Sequence[LivePod], daemonsets: Any) -> tuple[Workload, dict[str, int]]:
    groups: dict[str, list[LivePod]] = {}
    for p in pods:
        groups.setdefault(p.owner, []).append(p)
    sets: list[PodSet] = []
    index: dict[str, int] = {}
    for owner in sorted(groups):
        ps = groups[owner]
        pins = tuple(p.pv_zone for p in ps if p.pv_zone)
        first = ps[0]
        sets.append(
            PodSet(
                name=owner,
                app=first.app or owner,
                replicas=len(ps),
                cpu_m=max(p.cpu_m for p in ps),
                memory_mi=max(p.memory_mi for p in ps),
                anti_affinity=first.anti_affinity,
                zone_spread=first.zone_spread,
                ebs=bool(pins),
                priority=first.priority,
                pinned_zones=pins,
            )
        )
        index[owner] = len(sets) - 1
    return Workload(tuple(sets), daemonsets, name="live"), index


def compare_live(
    current_nodes: Sequence[LiveNode],
    pods: Sequence[LivePod],
    catalogue: Sequence[InstanceType],
    *,
    zones: Sequence[str] | None = None,
    daemonsets: Any = None,
    require_zone_survival: bool = False,
    time_limit: float = 10.0,
    seed: int = 0,
) -> LiveComparison:
    """Judge a live cluster (N+1, violations, cost) and recommend a layout for the same pods.

    Pods of one owner are one set (largest requests); pods with a volume zone stay pinned there.
    Refuses (``ConfigError``) nodes of types unknown to the catalogue without explicit allocatable, pods
    bound to unknown nodes, and an empty pod list.
    """
    from atlbook.capacity.eks import DEFAULT_DAEMONSETS

    if not pods:
        raise ConfigError("no pods given")
    ds = daemonsets or DEFAULT_DAEMONSETS
    workload, index = _live_workload(pods, ds)
    zs = (
        list(zones)
        if zones
        else sorted({n.zone for n in current_nodes} | {p.pv_zone for p in pods if p.pv_zone})
    )
    by_type = {t.name: t for t in catalogue}
    nodes: list[Node] = []
    for ln in current_nodes:
        if ln.instance_type in by_type:
            sh = node_shape(by_type[ln.instance_type], ds)
            if ln.cpu_m is not None or ln.memory_mi is not None or ln.pods is not None:
                sh = dataclasses.replace(
                    sh,
                    cpu_m=ln.cpu_m if ln.cpu_m is not None else sh.cpu_m,
                    memory_mi=ln.memory_mi if ln.memory_mi is not None else sh.memory_mi,
                    pods=ln.pods if ln.pods is not None else sh.pods,
                )
        elif ln.cpu_m is not None and ln.memory_mi is not None and ln.pods is not None:
            inst = InstanceType(ln.instance_type, max(1, ln.cpu_m // 1000), ln.memory_mi, 1, 2, 0.0)
            sh = NodeShape(inst, ln.pods, 0, 0, ln.cpu_m, ln.memory_mi, ln.pods)
        else:
            raise ConfigError(f"node {ln.name}: instance type {ln.instance_type!r} not in the catalogue")
        if ln.zone not in zs:
            raise ConfigError(f"node {ln.name}: zone {ln.zone!r} not among {zs}")
        nodes.append(Node(ln.name, ln.zone, sh))
    state = ClusterState(workload, nodes, zs)
    pos = {n.name: i for i, n in enumerate(nodes)}
    unplaced: list[str] = []
    for p in pods:
        if p.node is None:
            unplaced.append(p.name)
            continue
        if p.node not in pos:
            raise ConfigError(f"pod {p.name}: bound to unknown node {p.node!r}")
        state.place(index[p.owner], pos[p.node])
    violations = [v for v in state.violations() if "pods placed" not in v]
    rep = simulate(state) if nodes else SurvivabilityReport((), ())
    rec = recommend(workload, catalogue, zs, require_zone_survival, time_limit, seed)
    return LiveComparison(
        current_nodes=len(nodes),
        current_cost_per_hour=state.cost(),
        current_survivability=rep,
        current_violations=violations,
        unplaced_pods=unplaced,
        recommendation=rec,
        current_state=state,
    )
