"""The zone-scenario bound (any mix of instance types): valid, and tight on W1-like stacks.

Aspects (validity on random stacks against the class model's proven any-mix optimum is in
test_capacity_patterns, beside the pattern bound's): dominated shapes are dropped; the bound does not
apply to stacks with a set without EBS volumes; on a W1-like stack with the m5 and c6i families it
reaches the recommended (mixed) plan's cost.
"""

from __future__ import annotations

import pytest
from capacity_builders import pset, shape, wl

from atlbook.capacity import catalogue, patterns, plan, workload

Z3 = ["a", "b", "c"]


def _ha(name: str, replicas: int, cpu: int, mem: int = 1000) -> object:
    return pset(name, replicas, cpu, mem, anti_affinity=True, zone_spread=True, ebs=True)


def test_dominated_shapes_are_dropped() -> None:
    a = shape("a", cpu_m=4000, memory_mi=8000, pods=10, price=0.2)
    worse = shape("worse", cpu_m=4000, memory_mi=7000, pods=10, price=0.2)
    dearer = shape("dearer", cpu_m=4000, memory_mi=8000, pods=10, price=0.3)
    other = shape("other", cpu_m=2000, memory_mi=16000, pods=10, price=0.25)
    assert [s.name for s in patterns.undominated([worse, dearer, a, other])] == ["a", "other"]


def test_scenario_bound_needs_ebs_everywhere() -> None:
    w = wl(_ha("a", 2, 500), pset("b", 1, 500, zone_spread=True, ebs=False))  # type: ignore[arg-type]
    assert patterns.scenario_bound(w, [shape()], Z3) is None


def test_scenario_bound_proves_the_w1_plan_over_any_mix(w1_doc: dict[str, object]) -> None:
    w = workload.workload_from_dict(w1_doc)
    cat = catalogue.load_catalogue(["m5", "c6i"])
    rec = plan.recommend(w, cat, Z3, time_limit=5)
    space = plan.mix_space(cat, w, max_types=2)
    bound = patterns.scenario_bound(w, space, Z3)
    assert bound is not None
    assert bound <= rec.cost_per_hour + 1e-9
    assert bound >= rec.bounds.any_mix - 1e-9
    assert bound == pytest.approx(rec.cost_per_hour)  # the mixed plan is optimal over any mix
