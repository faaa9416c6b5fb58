"""Hard constraints, N+1 simulation, bounds and the solver on hand-built cases.

Aspects: required anti-affinity, zone spread maxSkew 1, pod slots as a resource (kubecost#1384),
zone pinning by EBS volumes; node and zone removal with CA ghost semantics; lower bounds; a case with a
hand-proved optimum found and proved by CP-SAT; determinism for a seed; bad inputs.
"""

from __future__ import annotations

import pytest
from capacity_builders import NO_DS, pset, shape, wl

from atlbook.capacity import bounds, heuristics, plan, solver, survivability
from atlbook.capacity.catalogue import InstanceType
from atlbook.capacity.cluster import ClusterState, Node
from atlbook.capacity.workload import Workload
from atlbook.errors import CapacityExceeded, ConfigError

Z3 = ["a", "b", "c"]


def test_anti_affinity_one_pod_per_node() -> None:
    w = wl(pset("app", 3, 100, 100, anti_affinity=True))
    st = heuristics.ffd_place(w, shape(), ["a"])
    assert len(st.used_nodes()) == 3
    assert all(st.count[n] == {0: 1} for n in st.used_nodes())
    assert not st.fits(0, 0)  # a second replica is refused by the filter


def test_zone_spread_max_skew_one() -> None:
    w = wl(pset("app", 4, 100, 100, zone_spread=True))
    st = heuristics.ffd_place(w, shape(), Z3)
    assert sorted(st.zone_count[0]) == [1, 1, 2]
    assert st.violations() == []


def test_pod_slots_bind_like_kubecost_1384() -> None:
    """160 tiny pods: CPU and memory say one node, 55 pod slots per m5.2xlarge say three."""
    w = Workload((pset("tiny", 160, 10, 10),))  # default DaemonSets take 3 of 58 slots
    cat = [InstanceType("m5.2xlarge", 8, 32768, 4, 15, 0.384)]
    (sh,) = plan.shapes_for(cat, w)
    assert sh.pods == 55
    assert bounds.packing_node_bound(w, sh) == 3
    st = heuristics.ffd_place(w, sh, ["a"])
    assert len(st.used_nodes()) == 3
    rec = plan.recommend(w, cat, ["a"], time_limit=2)
    assert rec.nodes >= 4  # three to hold them, one more for N+1
    assert rec.survivability.node_pct == 100.0 and rec.violations == []


def test_zone_pinned_pods_stay_in_their_zone() -> None:
    w = wl(pset("db", 2, 100, 100, ebs=True, pinned_zones=("b", "b")))
    st = heuristics.ffd_place(w, shape(), Z3)
    assert st.zone_count[0] == [0, 2, 0]
    # losing the node holding them: no other node in b → stranded even though a and c have room
    node_b = next(n for n in st.used_nodes() if st.nodes[n].zone == "b")
    sc = survivability.simulate_node(st, node_b)
    assert sc.stranded == {"db": 2}


def _state(w: Workload, nodes: list[tuple[str, str]], placement: dict[int, list[int]]) -> ClusterState:
    sh = shape()
    st = ClusterState(w, [Node(name, zone, sh) for name, zone in nodes], sorted({z for _, z in nodes}))
    for n, sets in placement.items():
        for s in sets:
            st.place(s, n)
    return st


def test_node_removal_needs_a_spare_for_anti_affinity() -> None:
    w = wl(pset("app", 2, 100, 100, anti_affinity=True))
    two = _state(w, [("n0", "a"), ("n1", "a")], {0: [0], 1: [0]})
    assert survivability.simulate(two).node_pct == 0.0
    three = _state(w, [("n0", "a"), ("n1", "a"), ("n2", "a")], {0: [0], 1: [0]})
    rep = survivability.simulate(three)
    assert rep.node_pct == 100.0
    assert two.count == [{0: 1}, {0: 1}]  # the simulation leaves the state as it was


def test_ghost_keeps_the_spread_domain() -> None:
    """One node per zone, a spread set one pod per zone: losing a node strands its pod (the ghost keeps
    the zone as a domain with count 0, so other zones would reach skew 2); with a second node in the
    zone it re-places there."""
    w = wl(pset("app", 3, 100, 100, zone_spread=True))
    one_each = _state(w, [("a0", "a"), ("b0", "b"), ("c0", "c")], {0: [0], 1: [0], 2: [0]})
    assert survivability.simulate_node(one_each, 0).stranded == {"app": 1}
    with_spare = _state(w, [("a0", "a"), ("b0", "b"), ("c0", "c"), ("a1", "a")], {0: [0], 1: [0], 2: [0]})
    assert survivability.simulate_node(with_spare, 0).survivable


def test_zone_loss_reports_pinned_pods_apart() -> None:
    w = wl(pset("web", 2, 100, 100), pset("db", 1, 100, 100, ebs=True))
    st = _state(w, [("a0", "a"), ("b0", "b")], {0: [0, 1], 1: [0]})
    sc = survivability.simulate_zone(st, "a")
    assert sc.survivable and sc.stranded_pinned == {"db": 1} and sc.displaced == 2


def test_hand_proved_optimum_found_and_proved() -> None:
    """Two replicas with required anti-affinity, each over half a node, one zone.

    Two nodes cannot survive a node loss (the displaced pod may not join its sibling), three can
    (place on n0, n1; n2 empty): the optimum is 3 nodes, and CP-SAT must find and prove it.
    """
    w = wl(pset("app", 2, 2500, 1000, anti_affinity=True))
    sh = shape(cpu_m=4000)
    res = solver.solve_shape(w, sh, ["a"], {"a": 5}, time_limit=2, seed=1, workers=1)
    assert res.status == "OPTIMAL" and res.nodes == 3
    assert res.state is not None and survivability.simulate(res.state).node_pct == 100.0


def test_pinned_spread_needs_a_spare_per_zone() -> None:
    """One replica per zone, EBS-pinned: each zone needs its own second node → optimum 6 on 3 zones."""
    w = wl(pset("app", 3, 2500, 1000, anti_affinity=True, zone_spread=True, ebs=True))
    sh = shape(cpu_m=4000)
    total, per = bounds.homogeneous_node_bound(w, sh, Z3)
    assert total == 6 and per == {"a": 2, "b": 2, "c": 2}
    res = solver.solve_shape(w, sh, Z3, {"a": 3, "b": 3, "c": 3}, time_limit=2, seed=1, workers=1)
    assert res.status == "OPTIMAL" and res.nodes == 6


def test_cp_sat_never_worse_than_its_hint() -> None:
    w = wl(
        pset("j", 2, 2000, 2000, anti_affinity=True, zone_spread=True),
        pset("c", 2, 2000, 2000, anti_affinity=True, zone_spread=True),
        pset("m", 3, 1000, 2000, anti_affinity=True, zone_spread=True),
    )
    sh = shape(cpu_m=3800, memory_mi=14000)
    hint = heuristics.plan_for_shape(w, sh, Z3)
    per = heuristics.nodes_per_zone(hint)
    res = solver.solve_shape(
        w, sh, Z3, {z: per[z] + 1 for z in Z3}, hint=hint, time_limit=2, seed=0, workers=1
    )
    assert res.nodes is not None and res.nodes <= len(hint.used_nodes())
    total, _ = bounds.homogeneous_node_bound(w, sh, Z3)
    assert res.nodes >= total


def test_bounds_are_below_the_plan(w1_doc: dict[str, object]) -> None:
    from atlbook.capacity import catalogue, workload

    w = workload.workload_from_dict(w1_doc)
    cat = catalogue.load_catalogue(["m5", "c6i"])
    rec = plan.recommend(w, cat, Z3, time_limit=2)
    assert rec.violations == [] and rec.survivability.node_pct == 100.0
    assert 0 < rec.bounds.lp <= rec.bounds.any_mix <= rec.cost_per_hour + 1e-9
    if not rec.mixed:  # the single-type bound holds for single-type plans only
        assert rec.bounds.best <= rec.cost_per_hour + 1e-9
    assert rec.ratio_to_bound() >= 1.0


def test_same_seed_same_plan(w1_doc: dict[str, object]) -> None:
    from atlbook.capacity import catalogue, workload

    w = workload.workload_from_dict(w1_doc)
    cat = catalogue.load_catalogue(["m5"], ["xlarge", "2xlarge"])
    a = plan.recommend(w, cat, Z3, time_limit=1.5, seed=7)
    b = plan.recommend(w, cat, Z3, time_limit=1.5, seed=7)
    assert a.placement == b.placement and a.node_groups == b.node_groups


def test_zone_survival_when_asked() -> None:
    w = wl(pset("web", 4, 1500, 1000, anti_affinity=True, zone_spread=False))
    cat = [InstanceType("x.large", 4, 16384, 3, 10, 0.1)]
    rec = plan.recommend(Workload(w.sets, NO_DS), cat, Z3, require_zone_survival=True, time_limit=2)
    assert rec.survivability.zone_pct == 100.0 and rec.survivability.node_pct == 100.0


@pytest.mark.parametrize(
    "zones, exc",
    [([], ConfigError), (["a", "a"], ConfigError)],
    ids=["no-zones", "duplicate-zones"],
)
def test_bad_zones_refused(zones: list[str], exc: type[Exception]) -> None:
    cat = [InstanceType("x.large", 4, 16384, 3, 10, 0.1)]
    with pytest.raises(exc):
        plan.recommend(wl(pset("a", 1)), cat, zones, time_limit=1)


def test_pod_larger_than_any_type_refused() -> None:
    cat = [InstanceType("x.large", 2, 8192, 3, 10, 0.1)]
    with pytest.raises(CapacityExceeded, match="no instance type"):
        plan.recommend(wl(pset("huge", 1, 64000, 1000)), cat, ["a"], time_limit=1)


def test_unknown_pinned_zone_refused() -> None:
    cat = [InstanceType("x.large", 4, 16384, 3, 10, 0.1)]
    with pytest.raises(ConfigError, match="pinned zones"):
        plan.recommend(wl(pset("a", 1, pinned_zones=("z",))), cat, ["a"], time_limit=1)


@pytest.mark.parametrize("key, pods", [("W1", 14), ("W2", 21)])
def test_bench_fixtures_load(key: str, pods: int) -> None:
    import pathlib

    import yaml

    from atlbook.capacity import workload

    root = pathlib.Path(__file__).resolve().parents[3]
    doc = yaml.safe_load((root / "bench" / "workloads" / f"{key}.yaml").read_text())
    w = workload.workload_from_dict(doc)
    assert w.pods == pods and len(doc["zones"]) == 3
