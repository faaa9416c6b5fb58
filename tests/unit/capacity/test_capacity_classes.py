"""Pod-class model, mixed instance types, bound validity, Karpenter-like baseline, determinism, progress.

Aspects: which workloads the class model applies to; its proven optimum equals the set-level exact
model's on small random cases, and is never above a feasible plan (bound validity); a hand case where
mixing two types is cheaper than either alone; the Karpenter-like provisioner launches the cheapest
type that holds each claim; same inputs and seed give the same plan, also under a competing CPU load;
progress reports reach the callback and end with ``done``; bad inputs.
"""

from __future__ import annotations

import random

import pytest
from capacity_builders import busy_cpu, pset, shape, wl

from atlbook.capacity import baselines, classes, heuristics, plan, solver, survivability
from atlbook.errors import ConfigError

Z3 = ["a", "b", "c"]


def _ha(name: str, replicas: int, cpu: int, mem: int = 1000) -> object:
    return pset(name, replicas, cpu, mem, anti_affinity=True, zone_spread=True, ebs=True)


def test_aggregatable_only_with_one_replica_per_zone() -> None:
    assert classes.aggregatable(wl(_ha("a", 3, 100)), Z3)  # type: ignore[arg-type]
    assert not classes.aggregatable(wl(_ha("a", 4, 100)), Z3)  # type: ignore[arg-type]
    assert not classes.aggregatable(wl(pset("a", 2, 100)), Z3)  # no zone spread
    pinned = pset("p", 1, 100, zone_spread=True, ebs=True, pinned_zones=("a",))
    assert not classes.aggregatable(wl(pinned), Z3)


def test_classes_group_interchangeable_sets() -> None:
    w = wl(_ha("j1", 2, 1000), _ha("j2", 2, 1000), _ha("c", 2, 900), _ha("j3", 3, 1000))  # type: ignore[arg-type]
    got = {(c.cpu_m, c.replicas): c.sets for c in classes.pod_classes(w)}
    assert got == {(1000, 2): (0, 1), (900, 2): (2,), (1000, 3): (3,)}


@pytest.mark.parametrize("seed", range(6))
def test_class_optimum_equals_set_model_and_bounds_feasible_plans(seed: int) -> None:
    """Small random EBS-pinned HA stacks: both exact models prove the same optimum, and the class
    model's proven bound is ≤ the cost of every feasible plan we can build (heuristic, set model)."""
    rng = random.Random(seed)
    sets = [
        _ha(f"s{i}", rng.randint(1, 3), rng.choice([500, 1000, 1500, 2000]), rng.choice([1000, 3000]))
        for i in range(rng.randint(2, 4))
    ]
    w = wl(*sets)  # type: ignore[arg-type]
    sh = shape(cpu_m=4000, memory_mi=8000)
    heur = heuristics.plan_for_shape(w, sh, Z3)
    cap = {z: 4 for z in Z3}
    ref = solver.solve_shape(w, sh, Z3, cap, time_limit=20, seed=0, workers=1)
    got = classes.solve_classes(w, [sh], Z3, cap, max_types=1, deterministic_time=20, workers=1)
    assert ref.status == "OPTIMAL" and got.status == "OPTIMAL" and got.exact
    assert got.cost == pytest.approx(ref.nodes * sh.price)  # type: ignore[operator]
    if set(heuristics.nodes_per_zone(heur).values()) != {0}:  # the planner's space: a node per zone
        if min(heuristics.nodes_per_zone(heur).values()) >= 1:
            assert got.bound_cost <= heur.cost() + 1e-9
    assert got.state is not None and got.state.violations() == []
    assert survivability.simulate(got.state).node_pct == 100.0


def test_mixing_two_types_beats_either_alone() -> None:
    """One zone, one 6-CPU pod and three 1.5-CPU pods (each its own set, EBS).

    Big nodes only (8 CPU, $1): the 6-CPU pod needs a second big node with 6 CPU free, and the three
    small pods cannot all ride on the first → 3 big = $3. Small nodes (2 CPU, $0.2) cannot hold it.
    Mixed: two big (the 6-CPU pod, one small pod) + two small (one small pod each) = $2.4 survives
    every node loss.
    """
    big = shape("big", cpu_m=8000, memory_mi=32000, price=1.0)
    small = shape("small", cpu_m=2000, memory_mi=32000, price=0.2)
    w = wl(_ha("app", 1, 6000), _ha("s1", 1, 1500), _ha("s2", 1, 1500), _ha("s3", 1, 1500))  # type: ignore[arg-type]
    alone = classes.solve_classes(w, [big], ["a"], {"a": 6}, max_types=1, workers=1)
    mixed = classes.solve_classes(w, [big, small], ["a"], {"a": 6}, max_types=2, workers=1)
    assert alone.status == "OPTIMAL" and alone.cost == pytest.approx(3.0)
    assert mixed.status == "OPTIMAL" and mixed.cost == pytest.approx(2.4)
    assert mixed.state is not None
    assert {mixed.state.nodes[n].shape.name for n in mixed.state.used_nodes()} == {"big", "small"}
    assert survivability.simulate(mixed.state).node_pct == 100.0


def test_max_types_one_keeps_one_type() -> None:
    big = shape("big", cpu_m=8000, memory_mi=32000, price=1.0)
    small = shape("small", cpu_m=2000, memory_mi=32000, price=0.2)
    w = wl(_ha("app", 1, 6000), _ha("s1", 1, 1500), _ha("s2", 1, 1500), _ha("s3", 1, 1500))  # type: ignore[arg-type]
    res = classes.solve_classes(w, [big, small], ["a"], {"a": 6}, max_types=1, workers=1)
    assert res.state is not None
    assert len({res.state.nodes[n].shape.name for n in res.state.used_nodes()}) == 1


def test_class_model_refuses_bad_inputs() -> None:
    sh = shape()
    with pytest.raises(ConfigError, match="one replica per zone"):
        classes.solve_classes(wl(_ha("a", 4, 100)), [sh], Z3, {z: 2 for z in Z3})  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="instance type"):
        classes.solve_classes(wl(_ha("a", 1, 100)), [], Z3, {z: 2 for z in Z3})  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="max_types"):
        classes.solve_classes(wl(_ha("a", 1, 100)), [sh], Z3, {z: 2 for z in Z3}, max_types=0)  # type: ignore[arg-type]


def test_karpenter_like_launches_the_cheapest_type_that_holds_each_claim() -> None:
    small = shape("small", cpu_m=2000, memory_mi=8000, price=0.1)
    big = shape("big", cpu_m=8000, memory_mi=32000, price=0.5)
    w = wl(pset("a", 3, 1500, 1000, anti_affinity=True, zone_spread=True), pset("b", 4, 500, 500))
    st = baselines.karpenter_like(w, [small, big], Z3, seed=0)
    assert st.violations() == []
    for n in st.used_nodes():
        used_cpu = sum(st.cpu[s] * k for s, k in st.count[n].items())
        used_mem = sum(st.mem[s] * k for s, k in st.count[n].items())
        fits = [t for t in (small, big) if t.cpu_m >= used_cpu and t.memory_mi >= used_mem]
        assert st.nodes[n].shape.price == min(t.price for t in fits)


def test_karpenter_like_refuses_no_types() -> None:
    with pytest.raises(ConfigError):
        baselines.karpenter_like(wl(pset("a", 1)), [], Z3)


def _w1(w1_doc: dict[str, object]) -> object:
    from atlbook.capacity import workload

    return workload.workload_from_dict(w1_doc)


@pytest.mark.parametrize("replicas", [2, 4], ids=["pattern-model", "set-model"])
def test_same_plan_under_competing_load(w1_doc: dict[str, object], replicas: int) -> None:
    """Deterministic limits: the plan does not depend on how busy the machine is (both search paths:
    ≤ 1 replica per zone → pattern model; 4 replicas on 3 zones → heuristics + set-level CP-SAT)."""
    from atlbook.capacity import catalogue, workload

    doc = dict(w1_doc)
    doc["sets"] = [dict(s, replicas=replicas) if s["name"] == "jira" else s for s in w1_doc["sets"]]  # type: ignore[attr-defined]
    w = workload.workload_from_dict(doc)
    cat = catalogue.load_catalogue(["m5", "c6i"], ["large", "xlarge", "2xlarge"])
    a = plan.recommend(w, cat, Z3, time_limit=3, seed=3, workers=2)
    with busy_cpu():
        b = plan.recommend(w, cat, Z3, time_limit=3, seed=3, workers=2)
    assert a.placement == b.placement and a.node_groups == b.node_groups
    assert a.bounds == b.bounds and a.solver_status == b.solver_status


def test_progress_reaches_the_callback(w1_doc: dict[str, object]) -> None:
    from atlbook.capacity import catalogue

    seen: list[plan.PlanProgress] = []
    cat = catalogue.load_catalogue(["m5"], ["xlarge", "2xlarge"])
    rec = plan.recommend(_w1(w1_doc), cat, Z3, time_limit=5, on_progress=seen.append)  # type: ignore[arg-type]
    phases = [p.phase for p in seen]
    assert phases[0] == "heuristic" and phases[-1] == "done"
    assert "bounds" in phases
    assert seen[-1].best_cost == pytest.approx(rec.cost_per_hour)


def test_recommend_refuses_max_types_zero(w1_doc: dict[str, object]) -> None:
    from atlbook.capacity import catalogue

    with pytest.raises(ConfigError, match="max_types"):
        plan.recommend(_w1(w1_doc), catalogue.load_catalogue(["m5"]), Z3, max_types=0)  # type: ignore[arg-type]
