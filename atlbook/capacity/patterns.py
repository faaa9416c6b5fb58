"""Exact N+1 plans by node *patterns*, for stacks whose sets keep at most one replica per zone.

Why this is exact (single instance type, every set with EBS volumes): when a set has zone spread
maxSkew 1 and ``replicas ≤ zones``, no two pods of a set share a zone, so anti-affinity holds by itself
and pods with equal requests are interchangeable. Lose node ``i`` of zone ``z``: its pods may only move
inside ``z`` (EBS), so the other ``n_z − 1`` nodes of ``z`` hold all of ``z``'s pods — ``n_z − 1 ≥
OPT_pack(pods of z)``. A plan with ``OPT_pack`` packed nodes plus one **empty reserve node** per zone
reaches that bound (the reserve takes any lost node's pods). So the optimum is: choose each set's zones
and pack every zone optimally, plus one reserve per zone.

Packing uses *patterns* (Gilmore–Gomory): a pattern is a maximal vector of pod counts per request
size that fits one node (CPU, memory, pod slots). The CP-SAT model chooses each class's zone subsets and
how many nodes of each pattern every zone gets. With several candidate instance types, patterns of
every type are offered, each zone's reserve is one node of a type that holds every pattern used in the
zone, and at most ``max_types`` types are used (then the reserve rule is a sufficient design, not
proven optimal). Limits are deterministic (``max_deterministic_time``, fixed workers, seed).
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable, Sequence

from ortools.sat.python import cp_model

from atlbook.capacity.classes import (
    PRICE_SCALE,
    PodClass,
    ZoneSplit,
    check_model_inputs,
    pod_classes,
    run_deterministic,
    sets_in_zones,
    zone_split_vars,
)
from atlbook.capacity.cluster import ClusterState, Node
from atlbook.capacity.eks import NodeShape
from atlbook.capacity.workload import Workload
from atlbook.errors import ConfigError

__all__ = [
    "BOUND_PATTERNS",
    "MAX_PATTERNS",
    "PatternResult",
    "enumerate_patterns",
    "mixed_bound",
    "scenario_bound",
    "solve_patterns",
    "undominated",
]

MAX_PATTERNS = 4000
"""Per instance type; above this many maximal patterns the type is left out of the model."""
BOUND_PATTERNS = 300
"""In :func:`mixed_bound`, types with more patterns than this pack fractionally (a smaller model)."""


@dataclasses.dataclass
class PatternResult:
    """Outcome of one pattern-model solve."""

    state: ClusterState | None
    status: str
    cost: float | None
    bound_cost: float
    """Proven lower bound on $/h of the model's plans (see :attr:`exact`)."""
    exact: bool
    """True for one instance type and EBS volumes on every set: ``bound_cost`` then bounds every
    survivable plan on that type (any node count)."""
    skipped_types: tuple[str, ...] = ()
    """Types left out because they have more than :data:`MAX_PATTERNS` patterns."""


def enumerate_patterns(
    sizes: Sequence[tuple[int, int]], caps: Sequence[int], shape: NodeShape, *, limit: int = MAX_PATTERNS
) -> list[tuple[int, ...]] | None:
    """Maximal count vectors (one count per request size, at most ``caps``) that fit one ``shape`` node.

    Returns None when there are more than ``limit``. Refuses (``ConfigError``) mismatched lengths.
    """
    if len(sizes) != len(caps):
        raise ConfigError("sizes and caps must have the same length")
    out: list[tuple[int, ...]] = []
    k = len(sizes)
    cur = [0] * k

    def fits(cpu: int, mem: int, pods: int, i: int) -> bool:
        return (
            cur[i] < caps[i]
            and cpu + sizes[i][0] <= shape.cpu_m
            and mem + sizes[i][1] <= shape.memory_mi
            and pods + 1 <= shape.pods
        )

    def rec(i: int, cpu: int, mem: int, pods: int) -> bool:
        if i == k:
            if any(fits(cpu, mem, pods, j) for j in range(k)):
                return True  # not maximal
            out.append(tuple(cur))
            return len(out) <= limit
        n = 0
        while True:
            cur[i] = n
            if not rec(i + 1, cpu + n * sizes[i][0], mem + n * sizes[i][1], pods + n):
                return False
            if not fits(cpu + n * sizes[i][0], mem + n * sizes[i][1], pods + n, i):
                break
            n += 1
        cur[i] = 0
        return True

    if not rec(0, 0, 0, 0):
        return None
    return out


def _sizes(workload: Workload) -> tuple[list[PodClass], list[tuple[int, int]], dict[int, int], list[int]]:
    """Classes, distinct request sizes (largest memory first), class → size, and per-size cap (sets)."""
    classes = pod_classes(workload)
    size_list = sorted({(c.cpu_m, c.memory_mi) for c in classes}, key=lambda s: (-s[1], -s[0]))
    size_of = {c: size_list.index((cl.cpu_m, cl.memory_mi)) for c, cl in enumerate(classes)}
    caps = [
        sum(len(cl.sets) for c, cl in enumerate(classes) if size_of[c] == s) for s in range(len(size_list))
    ]
    return classes, size_list, size_of, caps


def mixed_bound(
    workload: Workload,
    shapes: Sequence[NodeShape],
    zones: Sequence[str],
    *,
    deterministic_time: float = 1.0,
    seed: int = 0,
) -> float | None:
    """A lower bound on $/h of every N+1 plan over any mix of ``shapes`` (None when it does not apply).

    Why it holds (every set with EBS volumes and at most one replica per zone): in each zone take the
    most expensive node ``i*``; after losing it the zone's other nodes hold all the zone's pods, so they
    are a packing of them with types no dearer than ``i*``. The relaxation therefore chooses per zone a
    packing (patterns; types with too many patterns pack *fractionally*, by capacity only) plus one
    extra node ``i*`` whose price is at least that of every type the packing uses, and minimises the
    total; CP-SAT's proven objective bound is returned (valid even when the solve stops early).
    Dominated shapes are left out (:func:`undominated`: the optimum over all shapes is the same, and a
    smaller model proves a higher bound in the same time). Refuses (``ConfigError``) what
    :func:`solve_patterns` refuses.
    """
    zs = list(zones)
    check_model_inputs(workload, zs, shapes, 1, "pattern")
    classes, size_list, size_of, caps = _sizes(workload)
    if not all(workload.sets[s].ebs for cl in classes for s in cl.sets):
        return None
    shapes = undominated(shapes)
    z_n = len(zs)
    m = cp_model.CpModel()
    ksub, subsets = zone_split_vars(m, classes, z_n)
    total = max(1, sum(caps))
    cost = []
    for z in range(z_n):
        w = [m.new_bool_var(f"w{z}_{t}") for t in range(len(shapes))]
        m.add(sum(w) == 1)
        reserve_price = sum(round(sh.price * PRICE_SCALE) * w[t] for t, sh in enumerate(shapes))
        cost.append(reserve_price)
        cover: list[list[cp_model.LinearExpr]] = [[] for _ in size_list]
        for t, sh in enumerate(shapes):
            price = round(sh.price * PRICE_SCALE)
            used = m.new_bool_var(f"used{z}_{t}")
            m.add(reserve_price >= price).only_enforce_if(used)
            found = enumerate_patterns(size_list, caps, sh, limit=BOUND_PATTERNS)
            if found is not None:
                for p, pat in enumerate(found):
                    if not any(pat):
                        continue
                    ub = max(-(-caps[i] // n) for i, n in enumerate(pat) if n)
                    y = m.new_int_var(0, ub, f"y{z}_{t}_{p}")
                    m.add(y <= ub * used)
                    cost.append(price * y)
                    for i, n in enumerate(pat):
                        if n:
                            cover[i].append(n * y)
            else:  # fractional packing: items assigned to these nodes fit by total capacity
                nodes = m.new_int_var(0, total, f"n{z}_{t}")
                m.add(nodes <= total * used)
                cost.append(price * nodes)
                f = [m.new_int_var(0, caps[i], f"f{z}_{t}_{i}") for i in range(len(size_list))]
                m.add(sum(size_list[i][0] * f[i] for i in range(len(size_list))) <= sh.cpu_m * nodes)
                m.add(sum(size_list[i][1] * f[i] for i in range(len(size_list))) <= sh.memory_mi * nodes)
                m.add(sum(f) <= sh.pods * nodes)
                for i in range(len(size_list)):
                    cover[i].append(cp_model.LinearExpr.sum([f[i]]))
        for i in range(len(size_list)):
            need = [ksub[c, S] for c in range(len(classes)) if size_of[c] == i for S in subsets[c] if z in S]
            if need:
                m.add(sum(cover[i]) >= sum(need))
    m.minimize(sum(cost))
    return _proven_bound(m, deterministic_time, seed)


def _proven_bound(m: cp_model.CpModel, deterministic_time: float, seed: int) -> float | None:
    """CP-SAT's proven objective bound of ``m`` in $/h (one worker, deterministic); None if infeasible."""
    _, status, _, bound = run_deterministic(m, deterministic_time, seed, 1, None)
    return None if status == cp_model.INFEASIBLE else max(0.0, bound)


def solve_patterns(
    workload: Workload,
    shapes: Sequence[NodeShape],
    zones: Sequence[str],
    *,
    max_types: int = 2,
    hint_cost: float | None = None,
    deterministic_time: float = 2.0,
    seed: int = 0,
    workers: int = 2,
    on_solution: Callable[[float, float], None] | None = None,
) -> PatternResult:
    """Solve the pattern model (module docstring) over ``shapes``; ``hint_cost`` caps the objective.

    Refuses (``ConfigError``) a workload with a set that may have two pods in one zone, live pins, no
    shapes, or ``max_types < 1``. Types with too many patterns are skipped (``skipped_types``); status
    ``TOO_LARGE`` when every type is.
    """
    zs = list(zones)
    check_model_inputs(workload, zs, shapes, max_types, "pattern")
    classes, size_list, size_of, caps = _sizes(workload)
    T: list[NodeShape] = []
    pats: list[list[tuple[int, ...]]] = []
    skipped: list[str] = []
    for sh in shapes:
        if all(sz[0] > sh.cpu_m or sz[1] > sh.memory_mi for sz in size_list) or sh.pods < 1:
            skipped.append(sh.name)
            continue
        found = enumerate_patterns(size_list, caps, sh)
        if found is None:
            skipped.append(sh.name)
            continue
        T.append(sh)
        pats.append(found)
    exact = len(shapes) == 1 and all(workload.sets[s].ebs for cl in classes for s in cl.sets)
    if not T:
        return PatternResult(None, "TOO_LARGE", None, 0.0, exact, tuple(skipped))
    z_n = len(zs)
    m = cp_model.CpModel()
    ksub, subsets = zone_split_vars(m, classes, z_n)
    used_type = [m.new_bool_var(f"t{t}") for t in range(len(T))]
    m.add(sum(used_type) <= max_types)
    y: dict[tuple[int, int, int], cp_model.IntVar] = {}
    w: dict[tuple[int, int], cp_model.IntVar] = {}
    cost = []
    total = max(1, sum(caps))
    for z in range(z_n):
        for t, sh in enumerate(T):
            w[z, t] = m.new_bool_var(f"w{z}_{t}")
            m.add_implication(w[z, t], used_type[t])
            cost.append(round(sh.price * PRICE_SCALE) * w[z, t])
            for p, pat in enumerate(pats[t]):
                # copies beyond covering every size the pattern holds are useless
                ub = max((-(-caps[s] // n) for s, n in enumerate(pat) if n), default=0)
                y[z, t, p] = m.new_int_var(0, ub, f"y{z}_{t}_{p}")
                cost.append(round(sh.price * PRICE_SCALE) * y[z, t, p])
        m.add(sum(w[z, t] for t in range(len(T))) == 1)
        for s in range(len(size_list)):
            need = [ksub[c, S] for c in range(len(classes)) if size_of[c] == s for S in subsets[c] if z in S]
            if not need:
                continue
            m.add(
                sum(pats[t][p][s] * y[z, t, p] for t in range(len(T)) for p in range(len(pats[t])))
                >= sum(need)
            )
        if len(T) == 1:
            continue
        for t in range(len(T)):
            for p, pat in enumerate(pats[t]):
                # a used pattern's pods must fit on the zone's reserve (mixed types only)
                on = m.new_bool_var(f"b{z}_{t}_{p}")
                m.add(y[z, t, p] <= total * on)
                m.add_implication(on, used_type[t])
                load = (
                    sum(n * size_list[s][0] for s, n in enumerate(pat)),
                    sum(n * size_list[s][1] for s, n in enumerate(pat)),
                    sum(pat),
                )
                for tt, sh in enumerate(T):
                    if load[0] > sh.cpu_m or load[1] > sh.memory_mi or load[2] > sh.pods:
                        m.add_bool_or([~on, ~w[z, tt]])
    objective = sum(cost)
    if hint_cost is not None:
        m.add(objective <= round(hint_cost * PRICE_SCALE))
    m.minimize(objective)
    solver, status, name, bound = run_deterministic(m, deterministic_time, seed, workers, on_solution)
    if status == cp_model.INFEASIBLE and hint_cost is not None:
        bound = hint_cost  # nothing cheaper than the cap exists
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return PatternResult(None, name, None, bound, exact, tuple(skipped))
    state = _extract(solver, workload, classes, size_of, subsets, ksub, zs, T, pats, y, w)
    return PatternResult(state, name, state.cost(), bound, exact, tuple(skipped))


def _extract(
    solver: cp_model.CpSolver,
    workload: Workload,
    classes: list[PodClass],
    size_of: dict[int, int],
    subsets: dict[int, list[tuple[int, ...]]],
    ksub: ZoneSplit,
    zs: list[str],
    T: list[NodeShape],
    pats: list[list[tuple[int, ...]]],
    y: dict[tuple[int, int, int], cp_model.IntVar],
    w: dict[tuple[int, int], cp_model.IntVar],
) -> ClusterState:
    # which sets have a pod in each zone, by size
    queue: dict[tuple[int, int], list[int]] = {}
    for (c, z), members in sets_in_zones(solver, classes, ksub, subsets).items():
        queue.setdefault((z, size_of[c]), []).extend(members)
    state = ClusterState(workload, [], zs, all_zones_are_domains=True)
    per: dict[tuple[str, str], int] = {}

    def new_node(z: int, sh: NodeShape) -> int:
        i = per.get((zs[z], sh.name), 0)
        per[zs[z], sh.name] = i + 1
        return state.add_node(Node(f"{zs[z]}/{sh.name}/{i}", zs[z], sh))

    for z in range(len(zs)):
        for t, sh in enumerate(T):
            for p, pat in enumerate(pats[t]):
                for _ in range(solver.value(y[z, t, p])):
                    items = [
                        queue[z, s].pop() for s, n in enumerate(pat) for _ in range(n) if queue.get((z, s))
                    ]
                    if not items:
                        continue  # over-covering pattern copy: no node needed
                    n_i = new_node(z, sh)
                    for s in items:
                        state.place(s, n_i)
        for t, sh in enumerate(T):
            if solver.value(w[z, t]):
                new_node(z, sh)  # the zone's empty reserve
    state.all_zones_are_domains = False
    state._refresh_domains()
    return state


def undominated(shapes: Sequence[NodeShape]) -> list[NodeShape]:
    """Shapes no other shape beats (as much CPU, memory and pod slots for no more $/h; ties keep the
    cheapest, then first by name). Bounds may drop dominated shapes: swapping every dominated node of a
    survivable plan for its dominator keeps the placement and every node-loss re-placement valid (each
    node only gains capacity), never adds a type, and costs no more — so the optimum over the
    undominated shapes equals the optimum over all of them."""
    keyed = sorted(shapes, key=lambda sh: (sh.price, -sh.cpu_m, -sh.memory_mi, -sh.pods, sh.name))
    out: list[NodeShape] = []
    for sh in keyed:
        if not any(
            o.cpu_m >= sh.cpu_m and o.memory_mi >= sh.memory_mi and o.pods >= sh.pods and o.price <= sh.price
            for o in out
        ):
            out.append(sh)
    return out


MAX_ZONE_CONTENTS = 400
""":func:`scenario_bound` applies when a zone can hold at most this many distinct pod contents."""


def _zone_min_cost(
    need: Sequence[int],
    size_list: Sequence[tuple[int, int]],
    T: Sequence[NodeShape],
    pats: Sequence[list[tuple[int, ...]] | None],
    deterministic_time: float,
    seed: int,
) -> float:
    """Proven lower bound on $/h of one zone's nodes such that, for every node, the other nodes hold
    ``need`` pods of each size (patterns, or capacity only where ``pats`` is None); inf if none can.
    A zone without pods still has one node (the cheapest), as the planner and every bound assume."""
    if not any(need):
        return min(round(sh.price * PRICE_SCALE) for sh in T) / PRICE_SCALE
    m = cp_model.CpModel()
    total = sum(need)
    y = [m.new_int_var(0, total + 1, f"y{t}") for t in range(len(T))]
    m.add(sum(y) >= 1)
    load = (
        sum(size_list[i][0] * n for i, n in enumerate(need)),
        sum(size_list[i][1] * n for i, n in enumerate(need)),
        total,
    )
    for lost, lsh in enumerate(T):
        present = m.new_bool_var(f"p{lost}")
        m.add(y[lost] >= 1).only_enforce_if(present)
        m.add(y[lost] == 0).only_enforce_if(present.negated())
        caps_t = (lsh.cpu_m, lsh.memory_mi, lsh.pods)
        for r, attr in enumerate(("cpu_m", "memory_mi", "pods")):  # redundant capacity cut
            m.add(
                sum(getattr(sh, attr) * y[t] for t, sh in enumerate(T)) - caps_t[r] >= load[r]
            ).only_enforce_if(present)
        cover: list[list[cp_model.LinearExpr]] = [[] for _ in size_list]
        for t, sh in enumerate(T):
            left = y[t] - 1 if t == lost else y[t]
            found = pats[t]
            if found is not None:
                xs = []
                for p, pat in enumerate(found):
                    if not any(n for i, n in enumerate(pat) if need[i]):
                        continue
                    ub = max(-(-need[i] // n) for i, n in enumerate(pat) if n and need[i])
                    x = m.new_int_var(0, ub, f"x{lost}_{t}_{p}")
                    xs.append(x)
                    for i, n in enumerate(pat):
                        if n and need[i]:
                            cover[i].append(n * x)
                if xs:
                    m.add(sum(xs) <= left).only_enforce_if(present)
            else:  # fractional packing: the pods given to these nodes fit by total capacity
                f = [
                    m.new_int_var(
                        0,
                        need[i] if size_list[i][0] <= sh.cpu_m and size_list[i][1] <= sh.memory_mi else 0,
                        f"f{lost}_{t}_{i}",
                    )
                    for i in range(len(size_list))
                ]
                m.add(sum(size_list[i][0] * f[i] for i in range(len(f))) <= sh.cpu_m * left).only_enforce_if(
                    present
                )
                m.add(
                    sum(size_list[i][1] * f[i] for i in range(len(f))) <= sh.memory_mi * left
                ).only_enforce_if(present)
                m.add(sum(f) <= sh.pods * left).only_enforce_if(present)
                for i in range(len(f)):
                    cover[i].append(cp_model.LinearExpr.sum([f[i]]))
        for i, n in enumerate(need):
            if n:
                m.add(sum(cover[i]) >= n).only_enforce_if(present)
    m.minimize(sum(round(sh.price * PRICE_SCALE) * y[t] for t, sh in enumerate(T)))
    bound = _proven_bound(m, deterministic_time, seed)
    return float("inf") if bound is None else bound


def scenario_bound(
    workload: Workload,
    shapes: Sequence[NodeShape],
    zones: Sequence[str],
    *,
    deterministic_time: float = 0.2,
    seed: int = 0,
) -> float | None:
    """A lower bound on $/h of every N+1 plan over any mix of ``shapes``; None when it does not apply
    (a set without EBS volumes or zone spread, a live pin, a set with more replicas than zones and no
    hostname anti-affinity, or more than :data:`MAX_ZONE_CONTENTS` possible zone contents).

    Why it holds: EBS-pinned pods can only re-place inside their zone, so for *every* node of a zone
    the zone's other nodes hold all of the zone's pods — an integral packing of them in which a node
    holds at most one pod per set (anti-affinity, or ≤ 1 replica per zone). Zone spread (maxSkew 1,
    every zone a domain, as the planner and every bound assume) gives each set ⌊r/Z⌋ or ⌈r/Z⌉ pods
    in each zone, ⌈r/Z⌉ in exactly ``r mod Z`` zones. For each possible *zone content* (per class,
    how many of its sets have the ⌈r/Z⌉ in the zone) a one-zone CP-SAT model chooses node counts per
    type such that, for every type present, the zone's nodes minus one node of that type pack the
    content (patterns over request sizes, at most the size's set count per node; types with more
    than :data:`BOUND_PATTERNS` patterns pack *fractionally*, by capacity only); its *proven* bound
    ``f(content)`` is kept (valid even when a solve stops early). The bound is the minimum, over
    zone contents whose ⌈⌉ counts sum to each class's ``sets × (r mod Z)``, of Σ_zones f(content) (a
    zone without pods keeps one node). It drops the cluster-autoscaler rule that surviving pods stay
    where they are, which sets of a class are which, and anti-affinity between a set's pods in one
    zone (all only lower it), and dominated shapes (:func:`undominated`: the optimum is unchanged).
    Refuses (``ConfigError``) missing or duplicate zones and an empty ``shapes``.
    """
    zs = list(zones)
    if not zs or len(set(zs)) != len(zs):
        raise ConfigError(f"zones must be given and unique: {zs}")
    if not shapes:
        raise ConfigError("at least one instance type is required")
    z_n = len(zs)
    for ps in workload.sets:
        if ps.replicas and (
            not (ps.ebs and ps.zone_spread) or ps.pinned_zones or (ps.replicas > z_n and not ps.anti_affinity)
        ):
            return None
    classes, size_list, size_of, caps = _sizes(workload)
    # zone spread (maxSkew 1, every zone a domain): each set has ⌊r/Z⌋ or ⌈r/Z⌉ pods in a zone, and
    # exactly r mod Z zones get the ⌈⌉; a content counts, per class, the sets with the ⌈⌉ in the zone
    base = [len(cl.sets) * (cl.replicas // z_n) for cl in classes]
    ranges = [range(len(cl.sets) + 1 if cl.replicas % z_n else 1) for cl in classes]
    n_contents = 1
    for r in ranges:
        n_contents *= len(r)
    if n_contents > MAX_ZONE_CONTENTS:
        return None
    T = [sh for sh in undominated(shapes) if sh.pods >= 1]
    pats = [enumerate_patterns(size_list, caps, sh, limit=BOUND_PATTERNS) for sh in T]
    contents = list(itertools.product(*ranges))
    totals = tuple(len(cl.sets) * (cl.replicas % z_n) for cl in classes)
    memo: dict[tuple[int, ...], float] = {}

    def f(content: tuple[int, ...]) -> float:
        if content not in memo:
            need = [0] * len(size_list)
            for c, n in enumerate(content):
                need[size_of[c]] += base[c] + n
            memo[content] = _zone_min_cost(need, size_list, T, pats, deterministic_time, seed)
        return memo[content]

    # zones are interchangeable (no live pins): enumerate multisets of contents, the last one forced
    best = float("inf")

    def rec(z: int, start: int, left: tuple[int, ...], acc: float) -> None:
        nonlocal best
        if z == z_n - 1:
            if all(0 <= left[c] <= len(cl.sets) for c, cl in enumerate(classes)) and (
                z_n == 1 or contents.index(left) >= start
            ):
                best = min(best, acc + f(left))
            return
        for k in range(start, len(contents)):
            ct = contents[k]
            rest = tuple(a - b for a, b in zip(left, ct, strict=True))
            if any(r < 0 or r > len(classes[c].sets) * (z_n - z - 1) for c, r in enumerate(rest)):
                continue
            rec(z + 1, k, rest, acc + f(ct))

    rec(0, 0, totals, 0.0)
    return None if best == float("inf") else best
