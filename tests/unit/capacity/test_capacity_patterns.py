"""Pattern model: exact optimum per zone split, bound validity, mixed instance types.

Aspects: maximal patterns enumerated (and refused when too many); on small random EBS-pinned HA stacks
the pattern model's proven optimum equals the set-level N+1 model's and the class model's (three
independent formulations), and its bound is never above a feasible plan; a hand case where mixing
types is cheaper than either alone; recommend on such stacks proves its plan optimal.
"""

from __future__ import annotations

import random

import pytest
from capacity_builders import pset, shape, wl

from atlbook.capacity import classes, heuristics, patterns, plan, solver, survivability
from atlbook.errors import ConfigError

Z3 = ["a", "b", "c"]


def _ha(name: str, replicas: int, cpu: int, mem: int = 1000) -> object:
    return pset(name, replicas, cpu, mem, anti_affinity=True, zone_spread=True, ebs=True)


def test_patterns_are_maximal_and_fit() -> None:
    sh = shape(cpu_m=4000, memory_mi=8000, pods=3)
    got = patterns.enumerate_patterns([(2000, 1000), (1000, 1000)], [5, 5], sh)
    assert got is not None
    assert sorted(got) == [(0, 3), (1, 2), (2, 0)]  # (1,2) fills CPU; (0,3) fills pod slots


def test_too_many_patterns_is_none() -> None:
    sh = shape(cpu_m=64000, memory_mi=256000, pods=200)
    sizes = [(100 * (i + 1), 100) for i in range(6)]
    assert patterns.enumerate_patterns(sizes, [50] * 6, sh, limit=100) is None


def test_enumerate_refuses_mismatched_lengths() -> None:
    with pytest.raises(ConfigError):
        patterns.enumerate_patterns([(1, 1)], [1, 2], shape())


@pytest.mark.parametrize("seed", range(8))
def test_three_exact_models_agree_and_the_bound_holds(seed: int) -> None:
    rng = random.Random(100 + seed)
    sets = [
        _ha(f"s{i}", rng.randint(1, 3), rng.choice([500, 1200, 1800, 2500]), rng.choice([1000, 3000, 5000]))
        for i in range(rng.randint(2, 5))
    ]
    w = wl(*sets)  # type: ignore[arg-type]
    sh = shape(cpu_m=4000, memory_mi=8000)
    pat = patterns.solve_patterns(w, [sh], Z3, max_types=1, deterministic_time=20, workers=1)
    assert pat.status == "OPTIMAL" and pat.exact
    cap = {z: 6 for z in Z3}
    ref = solver.solve_shape(w, sh, Z3, cap, time_limit=30, seed=0, workers=1)
    cls = classes.solve_classes(w, [sh], Z3, cap, max_types=1, deterministic_time=30, workers=1)
    assert ref.status == "OPTIMAL" and cls.status == "OPTIMAL"
    assert pat.cost == pytest.approx(ref.nodes * sh.price) == pytest.approx(cls.cost)  # type: ignore[operator]
    heur = heuristics.plan_for_shape(w, sh, Z3)
    if min(heuristics.nodes_per_zone(heur).values()) >= 1:
        assert pat.bound_cost <= heur.cost() + 1e-9
    assert pat.state is not None and pat.state.violations() == []
    assert survivability.simulate(pat.state).node_pct == 100.0


def test_mixed_types_beat_either_alone() -> None:
    """One zone: one 6-CPU pod, three 1.5-CPU pods (own sets, EBS). Big nodes (8 CPU, $1) only:
    3 big = $3 (the packed node and a reserve for it, and the small pods do not all fit beside the big
    one). Small (2 CPU, $0.2) cannot hold the big pod. Mixed, reserve design: big (6-CPU pod and a
    small one), two small, big reserve = $2.4."""
    big = shape("big", cpu_m=8000, memory_mi=32000, price=1.0)
    small = shape("small", cpu_m=2000, memory_mi=32000, price=0.2)
    w = wl(_ha("app", 1, 6000), _ha("s1", 1, 1500), _ha("s2", 1, 1500), _ha("s3", 1, 1500))  # type: ignore[arg-type]
    alone = patterns.solve_patterns(w, [big], ["a"], max_types=1, workers=1)
    mixed = patterns.solve_patterns(w, [big, small], ["a"], max_types=2, workers=1)
    assert alone.cost is not None and mixed.cost is not None
    assert alone.cost == pytest.approx(3.0) and mixed.cost == pytest.approx(2.4)
    assert mixed.state is not None
    assert {mixed.state.nodes[n].shape.name for n in mixed.state.used_nodes()} == {"big", "small"}
    assert survivability.simulate(mixed.state).node_pct == 100.0
    assert not mixed.exact  # several types: the reserve design is not proven optimal


def test_pattern_model_refuses_bad_inputs() -> None:
    with pytest.raises(ConfigError, match="one replica per zone"):
        patterns.solve_patterns(wl(_ha("a", 4, 100)), [shape()], Z3)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="instance type"):
        patterns.solve_patterns(wl(_ha("a", 1, 100)), [], Z3)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="max_types"):
        patterns.solve_patterns(wl(_ha("a", 1, 100)), [shape()], Z3, max_types=0)  # type: ignore[arg-type]


def test_recommend_proves_its_plan_on_one_replica_per_zone_stacks(w1_doc: dict[str, object]) -> None:
    from atlbook.capacity import catalogue, workload

    w = workload.workload_from_dict(w1_doc)
    cat = catalogue.load_catalogue(["m5", "c6i"])
    rec = plan.recommend(w, cat, Z3, time_limit=5, max_types=1)
    assert rec.algorithm.startswith("cp-sat/patterns") or rec.algorithm == "heuristic"
    assert rec.solver_status == "OPTIMAL" and rec.ratio_to_bound() == pytest.approx(1.0)
    assert rec.violations == [] and rec.survivability.node_pct == 100.0
    two = plan.recommend(w, cat, Z3, time_limit=5, max_types=2)  # mixing may only make it cheaper
    assert two.cost_per_hour <= rec.cost_per_hour + 1e-9 and two.survivability.node_pct == 100.0


def test_recommend_mixes_a_big_node_with_small_ones() -> None:
    """One 28-CPU pod and two small 3-replica sets, c6i family: a single type must be c6i.8xlarge in
    every zone (6 × $1.36); mixing puts the big pod and its reserve on two 8xlarge in one zone and the
    small pods on c6i.large nodes elsewhere — and the any-mix bound proves that mix optimal."""
    from atlbook.capacity import catalogue, workload

    w = workload.workload_from_dict(
        {
            "sets": [
                {"name": "big", "replicas": 1, "cpu": "28", "memory": "8Gi"},
                {"name": "web", "replicas": 3, "cpu": "1", "memory": "2Gi"},
                {"name": "api", "replicas": 3, "cpu": "1", "memory": "2Gi"},
            ]
        }
    )
    cat = catalogue.load_catalogue(["c6i"])
    single = plan.recommend(w, cat, Z3, time_limit=3, max_types=1)
    mixed = plan.recommend(w, cat, Z3, time_limit=3, max_types=2)
    assert not single.mixed and single.instance_type == "c6i.8xlarge"
    assert mixed.mixed and mixed.cost_per_hour < single.cost_per_hour
    assert mixed.violations == [] and mixed.survivability.node_pct == 100.0
    assert mixed.ratio_to_bound() >= 1.0 - 1e-9  # against the bound valid for any mix of types
    assert mixed.solver_status == "OPTIMAL" and mixed.ratio_to_bound() == pytest.approx(1.0)


@pytest.mark.parametrize("seed", range(12))
def test_mixed_bound_below_the_exact_mixed_optimum(seed: int) -> None:
    """The any-mix pattern and scenario bounds are ≤ the optimum over every mix of the two types that
    the class model (explicit recourse for every node loss) proves, and ≤ every single-type optimum;
    the scenario bound is at least the pattern bound (its relaxation is stronger)."""
    rng = random.Random(200 + seed)
    sets = [
        _ha(f"s{i}", rng.randint(1, 3), rng.choice([500, 1200, 2000]), rng.choice([1000, 3000, 5000]))
        for i in range(rng.randint(2, 4))
    ]
    w = wl(*sets)  # type: ignore[arg-type]
    small = shape("small", cpu_m=2500, memory_mi=6000, pods=5, price=0.1)
    big = shape("big", cpu_m=6000, memory_mi=12000, pods=10, price=0.21)
    mixed = patterns.mixed_bound(w, [small, big], Z3, deterministic_time=5)
    scenario = patterns.scenario_bound(w, [small, big], Z3, deterministic_time=5)
    assert mixed is not None and scenario is not None
    assert scenario >= mixed - 1e-9
    ref = classes.solve_classes(
        w, [small, big], Z3, {z: 5 for z in Z3}, max_types=2, deterministic_time=60, workers=1
    )
    assert ref.status == "OPTIMAL" and ref.cost is not None
    assert scenario <= ref.cost + 1e-9
    for t in (small, big):
        one = patterns.solve_patterns(w, [t], Z3, max_types=1, deterministic_time=20, workers=1)
        if one.cost is not None:
            assert scenario <= one.cost + 1e-9


def test_mixed_bound_needs_ebs_everywhere() -> None:
    w = wl(_ha("a", 2, 500), pset("b", 1, 500, zone_spread=True, ebs=False))  # type: ignore[arg-type]
    assert patterns.mixed_bound(w, [shape()], Z3) is None
