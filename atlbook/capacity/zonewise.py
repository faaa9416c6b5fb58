"""N+1 plans zone by zone, for stacks whose sets keep at most one replica per zone (fast, not proven).

The whole-stack pattern model (:mod:`.patterns`) chooses the zone split and every zone's packing in
one CP-SAT model; with bigger instance types (thousands of patterns) or a mix of types it runs out of
time long before it finds a good plan. Here the split is fixed first (:func:`balanced_split`), and
each zone is then a small cutting-stock problem over the patterns of the chosen types: pack the
zone's pods, plus one empty *reserve* node of a type that holds every pattern the zone uses (so it
takes over any lost node's pods — the N+1 design of :mod:`.patterns`). Each zone is solved as:

1. the LP relaxation (GLOP), for a bound and row duals;
2. its whole columns, the rest covered greedily by dual value per $ (an upper bound);
3. a MIP (SCIP, :data:`ZONE_MIP_NODES` branch-and-bound nodes — a work limit, never a clock, so the
   plan does not depend on machine load) over the columns whose reduced cost leaves room to improve
   on the upper bound (the others are in no cheaper packing), warm-started from step 2.

:class:`ZonewisePlanner` ranks type sets (one or two types) by cheap bounds, so the planner solves
only the few that can beat its best plan. The bounds here hold for *this split* only, not for every
plan; :func:`.patterns.mixed_bound` and :func:`.patterns.scenario_bound` bound every plan.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

from ortools.linear_solver import pywraplp

from atlbook.capacity.classes import PRICE_SCALE, aggregatable
from atlbook.capacity.cluster import ClusterState, Node
from atlbook.capacity.eks import NodeShape
from atlbook.capacity.patterns import MAX_PATTERNS, PatternResult, enumerate_patterns, undominated
from atlbook.capacity.workload import Workload
from atlbook.errors import ConfigError

__all__ = ["ZONE_MIP_NODES", "ZonewisePlanner", "balanced_split"]

ZONE_MIP_NODES = 200
"""Branch-and-bound node limit of each zone's packing MIP."""

Column = tuple[int, tuple[int, ...]]
"""(type index, pattern: pods of each request size on one node)."""
LPSolution = tuple[float, list[float], list[float], dict[int, float]]
"""(value in scaled $/h, column values, reduced costs, row duals by size)."""
Option = tuple[float, int, list[Column], LPSolution]
"""(LP bound in $/h incl. the reserve, reserve type index, columns that fit on the reserve, LP)."""
Packing = tuple[float, int, list[tuple[int, tuple[int, ...], int]]]
"""($/h incl. the reserve, reserve type index, [(type index, pattern, nodes)])."""


def balanced_split(workload: Workload, zones: Sequence[str]) -> list[list[int]]:
    """Each zone's sets (a set is listed in every zone that gets one of its replicas): largest sets
    first, each set's replicas go to the zones with the least load so far (a zone's load is the
    larger of its shares of all CPU and all memory requested). Deterministic. Refuses
    (``ConfigError``) a set that may have two pods in one zone or a live pin."""
    zs = list(zones)
    if not aggregatable(workload, zs):
        raise ConfigError("planning zone by zone needs zone-spread sets with at most one replica per zone")
    cpu_t = max(1, sum(s.cpu_m * s.replicas for s in workload.sets))
    mem_t = max(1, sum(s.memory_mi * s.replicas for s in workload.sets))
    share = {i: (s.cpu_m / cpu_t, s.memory_mi / mem_t) for i, s in enumerate(workload.sets) if s.replicas}
    load = [(0.0, 0.0) for _ in zs]
    out: list[list[int]] = [[] for _ in zs]
    for i in sorted(share, key=lambda i: (-max(share[i]), i)):
        c, m = share[i]
        pick = sorted(range(len(zs)), key=lambda z: (max(load[z][0] + c, load[z][1] + m), z))
        for z in pick[: workload.sets[i].replicas]:
            load[z] = (load[z][0] + c, load[z][1] + m)
            out[z].append(i)
    return out


def _lp(cols: Sequence[Column], scaled: Sequence[int], need: Sequence[int]) -> LPSolution | None:
    """LP relaxation of covering ``need`` (pods per size) with ``cols``; None when infeasible."""
    lp = pywraplp.Solver.CreateSolver("GLOP")
    x = [lp.NumVar(0.0, lp.infinity(), f"x{j}") for j in range(len(cols))]
    rows = {}
    for i, n in enumerate(need):
        if n > 0:
            row = rows[i] = lp.Constraint(float(n), lp.infinity())
            for j, (_, p) in enumerate(cols):
                if p[i]:
                    row.SetCoefficient(x[j], float(p[i]))
    obj = lp.Objective()
    for j in range(len(cols)):
        obj.SetCoefficient(x[j], float(scaled[j]))
    obj.SetMinimization()
    if lp.Solve() != pywraplp.Solver.OPTIMAL:
        return None
    duals = {i: row.dual_value() for i, row in rows.items()}
    return obj.Value(), [v.solution_value() for v in x], [v.reduced_cost() for v in x], duals


def _round(cols: Sequence[Column], scaled: Sequence[int], need: Sequence[int], sol: LPSolution) -> list[int]:
    """Column counts covering ``need``: the LP's whole columns, the rest greedily by dual value per $."""
    _, frac, _, dual = sol
    counts = [int(v + 1e-9) for v in frac]
    left = list(need)
    for (_, p), c in zip(cols, counts, strict=True):
        for i, n in enumerate(p):
            left[i] -= n * c
    while any(v > 0 for v in left):
        j = max(
            range(len(cols)),
            key=lambda j: (
                sum(min(n, left[i]) * dual.get(i, 0.0) for i, n in enumerate(cols[j][1]) if left[i] > 0)
                / scaled[j],
                -j,
            ),
        )
        counts[j] += 1
        for i, n in enumerate(cols[j][1]):
            left[i] -= n
    return counts


def _improve(
    cols: Sequence[Column],
    scaled: Sequence[int],
    need: Sequence[int],
    sol: LPSolution,
    counts: list[int],
    seed: int,
) -> list[int]:
    """``counts`` or a cheaper covering found by a node-limited MIP over the columns that can be in one."""
    upper = sum(s * c for s, c in zip(scaled, counts, strict=True))
    lower, _, reduced, _ = sol
    keep = [j for j in range(len(cols)) if reduced[j] <= upper - lower + 1e-6]
    if upper <= lower + 1e-6 or not keep:
        return counts
    mip = pywraplp.Solver.CreateSolver("SCIP")
    mip.SetSolverSpecificParametersAsString(
        f"limits/nodes = {ZONE_MIP_NODES}\nrandomization/randomseedshift = {seed}\n"
    )
    y = {
        j: mip.IntVar(0, max(-(-need[i] // n) for i, n in enumerate(cols[j][1]) if n), f"y{j}") for j in keep
    }
    for i, n in enumerate(need):
        if n:
            row = mip.Constraint(n, mip.infinity())
            for j in keep:
                if cols[j][1][i]:
                    row.SetCoefficient(y[j], cols[j][1][i])
    obj = mip.Objective()
    for j in keep:
        obj.SetCoefficient(y[j], scaled[j])
    obj.SetMinimization()
    mip.SetHint(list(y.values()), [float(counts[j]) for j in keep])
    if mip.Solve() in (pywraplp.Solver.OPTIMAL, pywraplp.Solver.FEASIBLE) and obj.Value() < upper - 0.5:
        return [round(y[j].solution_value()) if j in y else 0 for j in range(len(cols))]
    return counts


class _Zone:
    """One zone of the split: its request sizes, the sets of each size, and patterns per shape."""

    def __init__(self, workload: Workload, members: Sequence[int]) -> None:
        sets = workload.sets
        self.sizes = sorted(
            {(sets[s].cpu_m, sets[s].memory_mi) for s in members}, key=lambda sz: (-sz[1], -sz[0])
        )
        self.queue: dict[int, list[int]] = {}
        for s in members:
            self.queue.setdefault(self.sizes.index((sets[s].cpu_m, sets[s].memory_mi)), []).append(s)
        self.need = [len(self.queue.get(i, [])) for i in range(len(self.sizes))]
        self.load = (
            sum(sets[s].cpu_m for s in members),
            sum(sets[s].memory_mi for s in members),
            len(members),
        )
        self._pats: dict[str, list[tuple[int, ...]] | None] = {}
        self._lp: dict[tuple[str, ...], LPSolution | None] = {}

    def patterns(self, sh: NodeShape) -> list[tuple[int, ...]] | None:
        """Non-empty maximal patterns of ``sh`` for this zone's pods; None above :data:`MAX_PATTERNS`."""
        if sh.name not in self._pats:
            found = enumerate_patterns(self.sizes, self.need, sh, limit=MAX_PATTERNS)
            self._pats[sh.name] = None if found is None else [p for p in found if any(p)]
        return self._pats[sh.name]

    def holds(self, sh: NodeShape, pat: tuple[int, ...]) -> bool:
        """Whether one ``sh`` node holds the pods of ``pat``."""
        return (
            sum(n * self.sizes[i][0] for i, n in enumerate(pat)) <= sh.cpu_m
            and sum(n * self.sizes[i][1] for i, n in enumerate(pat)) <= sh.memory_mi
            and sum(pat) <= sh.pods
        )

    def options(self, T: Sequence[NodeShape]) -> list[Option] | None:
        """Per reserve type of ``T``: (LP bound in $/h incl. the reserve, type index, the columns that
        fit on the reserve, LP solution), best bound first; None when a type has too many patterns."""
        pats = [self.patterns(sh) for sh in T]
        if any(p is None for p in pats):
            return None
        out: list[Option] = []
        for r, res in enumerate(T):
            cols = [(t, p) for t in range(len(T)) for p in pats[t] or [] if self.holds(res, p)]
            if not any(self.need):
                out.append((res.price, r, [], (0.0, [], [], {})))
                continue
            key = (res.name, *(sh.name for sh in T))  # the columns' order follows T's
            if key not in self._lp:
                self._lp[key] = _lp(cols, [round(T[t].price * PRICE_SCALE) for t, _ in cols], self.need)
            sol = self._lp[key]
            if sol is not None:  # None: some size fits on no node the reserve can stand in for
                out.append((sol[0] / PRICE_SCALE + res.price, r, cols, sol))
        out.sort(key=lambda o: (o[0], T[o[1]].price, T[o[1]].name))
        return out

    def pack(self, T: Sequence[NodeShape], seed: int) -> Packing | None:
        """The cheapest packing found plus its reserve: ($/h, reserve type index, [(type, pattern,
        nodes)]). Reserve types are tried best LP bound first, until the bound reaches the best
        found. None when no type set of ``T`` can pack the zone."""
        options = self.options(T)
        if not options:
            return None
        best: Packing | None = None
        for bound, r, cols, sol in options:
            if best is not None and bound >= best[0] - 1e-9:
                break
            scaled = [round(T[t].price * PRICE_SCALE) for t, _ in cols]
            counts = (
                _improve(cols, scaled, self.need, sol, _round(cols, scaled, self.need, sol), seed)
                if cols
                else []
            )
            cost = sum(T[t].price * c for (t, _), c in zip(cols, counts, strict=True)) + T[r].price
            if best is None or cost < best[0] - 1e-9:
                best = (cost, r, [(t, p, c) for (t, p), c in zip(cols, counts, strict=True) if c])
        return best


class ZonewisePlanner:
    """Plans one workload zone by zone over chosen instance types (module docstring).

    Refuses (``ConfigError``) what :func:`balanced_split` refuses.
    """

    def __init__(self, workload: Workload, zones: Sequence[str]) -> None:
        self.workload = workload
        self.zones = list(zones)
        self._zones = [_Zone(workload, members) for members in balanced_split(workload, self.zones)]

    def rank(self, shapes: Sequence[NodeShape], max_types: int) -> list[tuple[float, tuple[NodeShape, ...]]]:
        """Every set of at most ``min(max_types, 2)`` undominated ``shapes`` that can plan every zone,
        with a lower bound on $/h of its :meth:`solve` plan — per zone, the capacity LP of the zone's
        requests plus the cheapest type of the set that holds a pod of every size (as the reserve
        must) — cheapest first. Refuses (``ConfigError``) ``max_types < 1``."""
        if max_types < 1:
            raise ConfigError(f"max_types must be ≥ 1, got {max_types}")
        T = [sh for sh in undominated(shapes) if sh.pods >= 1]
        combos: list[tuple[NodeShape, ...]] = [(sh,) for sh in T]
        if max_types >= 2:
            combos += list(itertools.combinations(T, 2))
        out = []
        for combo in combos:
            total = 0.0
            for zone in self._zones:
                reserves = [
                    sh.price
                    for sh in combo
                    if all(c <= sh.cpu_m and m <= sh.memory_mi for c, m in zone.sizes)
                ]
                if not reserves:
                    total = float("inf")
                    break
                lp = pywraplp.Solver.CreateSolver("GLOP")
                x = [lp.NumVar(0.0, lp.infinity(), sh.name) for sh in combo]
                for need, attr in zip(zone.load, ("cpu_m", "memory_mi", "pods"), strict=True):
                    lp.Add(sum(getattr(sh, attr) * x[t] for t, sh in enumerate(combo)) >= need)
                lp.Minimize(sum(sh.price * x[t] for t, sh in enumerate(combo)))
                lp.Solve()
                total += lp.Objective().Value() + min(reserves)
            if total < float("inf"):
                out.append((total, combo))
        out.sort(key=lambda o: (o[0], len(o[1]), [sh.name for sh in o[1]]))
        return out

    def bound(self, shapes: Sequence[NodeShape]) -> float | None:
        """A lower bound on $/h of :meth:`solve`'s plan over ``shapes`` (each zone's best LP bound over
        its reserve types; for this split only); None when a zone cannot be packed."""
        total = 0.0
        for zone in self._zones:
            options = zone.options(list(shapes))
            if not options:
                return None
            total += options[0][0]
        return total

    def solve(self, shapes: Sequence[NodeShape], *, seed: int = 0) -> PatternResult:
        """A plan over ``shapes`` (any of them may be used): every zone packed and given its reserve.
        ``bound_cost`` is 0 (the split is a heuristic); status ``TOO_LARGE`` when a zone cannot be
        packed (a type with too many patterns, or no type holds some pod). Refuses (``ConfigError``)
        an empty ``shapes``."""
        if not shapes:
            raise ConfigError("at least one instance type is required")
        T = list(shapes)
        state = ClusterState(self.workload, [], self.zones, all_zones_are_domains=True)
        count: dict[tuple[str, str], int] = {}

        def new_node(z: str, sh: NodeShape) -> int:
            i = count.get((z, sh.name), 0)
            count[z, sh.name] = i + 1
            return state.add_node(Node(f"{z}/{sh.name}/{i}", z, sh))

        for z, zone in zip(self.zones, self._zones, strict=True):
            packed = zone.pack(T, seed)
            if packed is None:
                return PatternResult(None, "TOO_LARGE", None, 0.0, False)
            _, reserve, nodes = packed
            queue = {i: list(sets) for i, sets in zone.queue.items()}
            for t, pat, n_nodes in nodes:
                for _ in range(n_nodes):
                    pods = [queue[i].pop() for i, n in enumerate(pat) for _ in range(n) if queue.get(i)]
                    if pods:
                        node = new_node(z, T[t])
                        for s in pods:
                            state.place(s, node)
            new_node(z, T[reserve])
        state.all_zones_are_domains = False
        state._refresh_domains()
        return PatternResult(state, "FEASIBLE", state.cost(), 0.0, False)
