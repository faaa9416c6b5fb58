"""Lower bounds never exceed a proven optimum: small random stacks solved exactly by CP-SAT.

Aspects: for random workloads (one or several replicas per zone, EBS or not, anti-affinity or not) on
two small node shapes, the set-level N+1 model proves the single-type optimum of each shape with
every per-zone node count open; then the homogeneous bound of each shape is ≤ its optimum, and the LP
and aggregate bounds (valid for any mix of types) are ≤ the cheaper optimum.
"""

from __future__ import annotations

import random

import pytest
from capacity_builders import pset, shape, wl

from atlbook.capacity import bounds, patterns, solver

Z3 = ["a", "b", "c"]
SHAPES = [
    shape("s.small", cpu_m=3000, memory_mi=6000, pods=6, price=0.1),
    shape("s.big", cpu_m=6000, memory_mi=12000, pods=12, price=0.21),
]


def _random_workload(rng: random.Random) -> object:
    sets = []
    for i in range(rng.randint(1, 3)):
        anti = rng.random() < 0.7
        sets.append(
            pset(
                f"s{i}",
                rng.randint(1, 4),
                rng.choice([500, 1000, 1500]),
                rng.choice([1000, 2000, 3000]),
                anti_affinity=anti,
                zone_spread=rng.random() < 0.7,
                ebs=rng.random() < 0.6,
            )
        )
    return wl(*sets)


@pytest.mark.parametrize("seed", range(10))
def test_bounds_below_the_proven_optimum(seed: int) -> None:
    w = _random_workload(random.Random(seed))
    optimum: dict[str, float] = {}
    for sh in SHAPES:
        res = solver.solve_shape(w, sh, Z3, {z: 10 for z in Z3}, time_limit=30, seed=0, workers=1)  # type: ignore[arg-type]
        assert res.status == "OPTIMAL", (sh.name, res.status)
        # 10 slots per zone: a plan with 11 in one zone has ≥ 13 nodes, so ≤ 12 is the true optimum
        assert res.nodes is not None and res.nodes <= 12
        optimum[sh.name] = res.nodes * sh.price
        total, _ = bounds.homogeneous_node_bound(w, sh, Z3)  # type: ignore[arg-type]
        assert total * sh.price <= optimum[sh.name] + 1e-9
    best = min(optimum.values())
    assert bounds.lp_bound(w, SHAPES) <= best + 1e-9  # type: ignore[arg-type]
    assert bounds.aggregate_bound(w, SHAPES, Z3, time_limit=5) <= best + 1e-9  # type: ignore[arg-type]


@pytest.mark.parametrize("seed", range(10))
def test_scenario_bound_below_the_proven_optimum_with_several_replicas_per_zone(seed: int) -> None:
    """Sets of 1–5 replicas on 3 zones (so up to 2 per zone), all HA and EBS-pinned: the zone-scenario
    bound over one shape is ≤ that shape's proven optimum, and over both shapes ≤ the cheaper one."""
    rng = random.Random(1000 + seed)
    w = wl(
        *(
            pset(
                f"s{i}",
                rng.randint(1, 5),
                rng.choice([500, 1000, 1500]),
                rng.choice([1000, 2000, 3000]),
                anti_affinity=True,
                zone_spread=True,
                ebs=True,
            )
            for i in range(rng.randint(1, 3))
        )
    )
    optimum: dict[str, float] = {}
    for sh in SHAPES:
        res = solver.solve_shape(w, sh, Z3, {z: 10 for z in Z3}, time_limit=30, seed=0, workers=1)
        assert res.status == "OPTIMAL" and res.nodes is not None and res.nodes <= 12
        optimum[sh.name] = res.nodes * sh.price
        one = patterns.scenario_bound(w, [sh], Z3, deterministic_time=5)
        assert one is not None and one <= optimum[sh.name] + 1e-9
    both = patterns.scenario_bound(w, SHAPES, Z3, deterministic_time=5)
    assert both is not None and both <= min(optimum.values()) + 1e-9
