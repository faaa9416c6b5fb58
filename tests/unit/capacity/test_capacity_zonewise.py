"""Zone-by-zone planning (atlbook.capacity.zonewise): valid N+1 plans, never below a proven optimum.

Aspects: the balanced split puts each set's replicas in distinct zones and balances load; each zone's
packing plus reserve survives every single node loss (the simulator is the judge) with 0 violations
and every pod placed; on random EBS-pinned stacks the plan is never cheaper than the optimum the
class model proves (a cheaper "plan" would be an invalid one) nor than its own split bound; the hand
case of the pattern tests gives the same optimum; plans are deterministic; ``recommend`` takes a
zone-by-zone mix when it is cheaper than every single type; bad inputs are refused.
"""

from __future__ import annotations

import random
from collections import Counter

import pytest
from capacity_builders import busy_cpu, pset, shape, wl

from atlbook.capacity import catalogue, classes, plan, survivability, workload, zonewise
from atlbook.capacity.workload import PodSet
from atlbook.errors import ConfigError

Z3 = ["a", "b", "c"]


def _ha(name: str, replicas: int, cpu: int, mem: int = 1000) -> PodSet:
    return pset(name, replicas, cpu, mem, anti_affinity=True, zone_spread=True, ebs=True)


def _random_stack(seed: int) -> workload.Workload:
    rng = random.Random(300 + seed)
    return wl(
        *[
            _ha(f"s{i}", rng.randint(1, 3), rng.choice([500, 1200, 2000]), rng.choice([1000, 3000, 5000]))
            for i in range(rng.randint(2, 5))
        ]
    )


def test_balanced_split_spreads_every_set_and_balances_load() -> None:
    w = wl(*[_ha(f"s{i}", 1 + i % 3, 1000 + 100 * i, 2000) for i in range(12)])
    split = zonewise.balanced_split(w, Z3)
    seen = Counter(s for members in split for s in members)
    for i, ps in enumerate(w.sets):
        assert seen[i] == ps.replicas  # one replica per zone it is in
        assert all(members.count(i) <= 1 for members in split)
    cpu = [sum(w.sets[s].cpu_m for s in members) for members in split]
    assert max(cpu) - min(cpu) <= max(ps.cpu_m for ps in w.sets)  # greedy: within one set's share


def test_balanced_split_refuses_two_replicas_in_a_zone() -> None:
    with pytest.raises(ConfigError, match="one replica per zone"):
        zonewise.balanced_split(wl(_ha("a", 4, 100)), Z3)


def test_mixing_in_one_zone_matches_the_hand_proved_optimum() -> None:
    """The pattern tests' hand case (one 6-CPU pod, three 1.5-CPU pods; big $1 / small $0.2 nodes):
    big alone needs 3 nodes ($3); mixed, a big node (the 6-CPU pod and a small one), two small and a
    big reserve ($2.4) is optimal."""
    big = shape("big", cpu_m=8000, memory_mi=32000, price=1.0)
    small = shape("small", cpu_m=2000, memory_mi=32000, price=0.2)
    w = wl(_ha("app", 1, 6000), _ha("s1", 1, 1500), _ha("s2", 1, 1500), _ha("s3", 1, 1500))
    planner = zonewise.ZonewisePlanner(w, ["a"])
    alone, mixed = planner.solve([big]), planner.solve([big, small])
    assert alone.cost == pytest.approx(3.0) and mixed.cost == pytest.approx(2.4)
    assert mixed.state is not None
    assert Counter(mixed.state.nodes[n].shape.name for n in mixed.state.used_nodes()) == {
        "big": 2,
        "small": 2,
    }
    assert survivability.simulate(mixed.state).node_pct == 100.0
    assert planner.bound([big, small]) == pytest.approx(2.4)  # the LP is tight here
    assert planner.solve([small]).status == "TOO_LARGE"  # the 6-CPU pod fits no small node


def test_the_packing_mip_finds_the_optimum_the_rounding_misses() -> None:
    """Eight pods, 9.6 CPU and 20,000 Mi in all; nodes of 8,000 Mi either way (a: 4 CPU $0.2, b: 8
    CPU $0.34). Memory needs ≥ 3 packed nodes and N+1 one more, so ≥ 4 × $0.2 = $0.8; three a-nodes
    do hold the pods. Rounding the LP alone ends at $0.94 (it opens a b-node)."""
    cpu_mem = [(1500, 1000), (700, 2500), (1100, 1000), (2300, 1000), (1100, 4000), (700, 4000)]
    cpu_mem += [(700, 4000), (1500, 2500)]
    w = wl(*[_ha(f"s{i}", 1, c, m) for i, (c, m) in enumerate(cpu_mem)])
    a = shape("a", cpu_m=4000, memory_mi=8000, pods=20, price=0.2)
    b = shape("b", cpu_m=8000, memory_mi=8000, pods=20, price=0.34)
    res = zonewise.ZonewisePlanner(w, ["z"]).solve([a, b])
    assert res.cost == pytest.approx(0.8) and res.state is not None
    assert survivability.simulate(res.state).node_pct == 100.0


@pytest.mark.parametrize("seed", range(8))
def test_plans_are_valid_and_never_below_the_proven_optimum(seed: int) -> None:
    w = _random_stack(seed)
    small = shape("small", cpu_m=2500, memory_mi=6000, pods=5, price=0.1)
    big = shape("big", cpu_m=6000, memory_mi=12000, pods=10, price=0.21)
    planner = zonewise.ZonewisePlanner(w, Z3)
    res = planner.solve([small, big], seed=seed)
    assert res.state is not None and res.cost is not None
    assert res.state.violations() == [] and res.state.placed() == w.pods
    assert survivability.simulate(res.state).node_pct == 100.0
    bound = planner.bound([small, big])
    assert bound is not None and bound <= res.cost + 1e-9
    ref = classes.solve_classes(
        w, [small, big], Z3, {z: 5 for z in Z3}, max_types=2, deterministic_time=60, workers=1
    )
    assert ref.status == "OPTIMAL" and ref.cost is not None
    assert res.cost >= ref.cost - 1e-9


def _fifteen_sets() -> workload.Workload:
    return wl(*[_ha(f"s{i}", 1 + i % 3, 500 + 300 * (i % 5), 1000 + 1000 * (i % 4)) for i in range(15)])


def test_the_same_input_gives_the_same_plan() -> None:
    w = _fifteen_sets()
    shapes = [shape("small", cpu_m=2500, memory_mi=6000, price=0.1), shape("big", 6000, 12000, price=0.21)]

    def layout() -> list[tuple[str, tuple[tuple[int, int], ...]]]:
        st = zonewise.ZonewisePlanner(w, Z3).solve(shapes).state
        assert st is not None
        return [(st.nodes[n].name, tuple(sorted(st.count[n].items()))) for n in st.used_nodes()]

    assert layout() == layout()


def test_cached_lps_follow_the_order_the_types_are_given_in() -> None:
    shapes = [shape("small", cpu_m=2500, memory_mi=6000, price=0.1), shape("big", 6000, 12000, price=0.21)]
    w = _fifteen_sets()
    planner = zonewise.ZonewisePlanner(w, Z3)
    assert planner.bound(shapes) is not None
    for zone in planner._zones:  # the cached LP solution still covers the zone, column by column
        for _, _, cols, (_, frac, _, _) in zone.options(list(reversed(shapes))) or []:
            for i, n in enumerate(zone.need):
                assert sum(x * p[i] for x, (_, p) in zip(frac, cols, strict=True)) >= n - 1e-6
    again = planner.solve(list(reversed(shapes)))
    fresh = zonewise.ZonewisePlanner(w, Z3).solve(list(reversed(shapes)))
    assert again.cost == pytest.approx(fresh.cost) and again.state is not None
    assert survivability.simulate(again.state).node_pct == 100.0


def test_rank_puts_cheaper_bounds_first_and_keeps_at_most_two_types() -> None:
    w = _random_stack(1)
    shapes = [shape(f"t{i}", 2000 * (i + 1), 4000 * (i + 1), price=0.1 * (i + 1) ** 0.9) for i in range(4)]
    planner = zonewise.ZonewisePlanner(w, Z3)
    ranked = planner.rank(shapes, max_types=2)
    assert [e for e, _ in ranked] == sorted(e for e, _ in ranked)
    assert all(1 <= len(c) <= 2 for _, c in ranked) and any(len(c) == 2 for _, c in ranked)
    assert all(len(c) == 1 for _, c in planner.rank(shapes, max_types=1))
    for estimate, combo in ranked:  # a valid lower bound on the plan it ranks
        res = planner.solve(list(combo))
        if res.cost is not None:
            assert estimate <= res.cost + 1e-9


def test_refuses_bad_inputs() -> None:
    planner = zonewise.ZonewisePlanner(_random_stack(0), Z3)
    with pytest.raises(ConfigError, match="instance type"):
        planner.solve([])
    with pytest.raises(ConfigError, match="max_types"):
        planner.rank([shape()], max_types=0)


def _cpu_and_memory_heavy() -> workload.Workload:
    sets = []
    for i in range(15):
        sets.append({"name": f"cpu{i}", "replicas": 1 + i % 3, "cpu": "7", "memory": "4Gi"})
        sets.append({"name": f"mem{i}", "replicas": 1 + (i + 1) % 3, "cpu": "1", "memory": "30Gi"})
    return workload.workload_from_dict({"sets": sets})


def test_recommend_takes_a_zone_by_zone_mix_when_it_is_cheaper() -> None:
    """CPU-heavy (7 CPU, 4 GiB) and memory-heavy (1 CPU, 30 GiB) sets: every single type wastes one
    resource (best: m5.8xlarge, $19.97/h, proven); m5.4xlarge for the CPU pods beside r6i.4xlarge for
    the memory pods costs less."""
    w = _cpu_and_memory_heavy()
    cat = catalogue.load_catalogue(["m5", "c6i", "r6i"])
    single = plan.recommend(w, cat, Z3, time_limit=3, max_types=1)
    mixed = plan.recommend(w, cat, Z3, time_limit=3, max_types=2)
    assert single.solver_status == "OPTIMAL" and not single.mixed
    assert mixed.algorithm == "zonewise" and mixed.mixed
    assert mixed.cost_per_hour <= single.cost_per_hour * (1 - plan.MIX_MIN_SAVING) + 1e-9
    assert mixed.violations == [] and mixed.survivability.node_pct == 100.0
    assert mixed.ratio_to_bound() >= 1.0 - 1e-9  # judged against the bound valid for any mix
    assert any(c.get("cpsat_model") == "zonewise" for c in mixed.candidates)


def test_the_zone_by_zone_mix_is_the_same_under_competing_load() -> None:
    """Node limits, never a clock: a busy machine changes nothing in the plan."""
    w, cat = _cpu_and_memory_heavy(), catalogue.load_catalogue(["m5", "c6i", "r6i"])
    quiet = plan.recommend(w, cat, Z3, time_limit=3, max_types=2, workers=2)
    with busy_cpu():
        busy = plan.recommend(w, cat, Z3, time_limit=3, max_types=2, workers=2)
    assert quiet.algorithm == busy.algorithm == "zonewise"
    assert quiet.placement == busy.placement and quiet.node_groups == busy.node_groups
