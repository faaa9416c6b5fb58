"""Node draining in the heuristic placer: swaps in ``drain_light_nodes`` and pool-based ``consolidate``.

The cases are seeded anti-correlated stacks (the bench's W4 generator, 300 pods, 3 zones) on a
m5.8xlarge-sized node: CPU binds, memory-heavy pods leave CPU gaps that first-fit moves cannot use.
"""

from __future__ import annotations

import random

from capacity_builders import pset, shape, wl

from atlbook.capacity import heuristics
from atlbook.capacity.survivability import simulate
from atlbook.capacity.workload import Workload

Z3 = ["a", "b", "c"]
BIG = shape("t.big", 31695, 118208, 231)


def anticorrelated(seed: int, pods: int = 300) -> Workload:
    """The bench's W4 anti-correlated generator: sets of 2–5 replicas, CPU up as memory goes down."""
    r = random.Random(seed)
    sets = []
    n = i = 0
    while n < pods:
        reps = min(r.randint(2, 5), pods - n)
        u = r.random()
        cpu, mem = int(100 + u * 5900), int(128 + (1 - u) * 16000 * r.uniform(0.8, 1.0))
        sets.append(
            pset(
                f"s{i}",
                reps,
                cpu,
                mem,
                anti_affinity=r.random() < 0.3,
                zone_spread=r.random() < 0.5,
                ebs=r.random() < 0.2,
                priority=r.choice([100000, 90000, 50000]),
            )
        )
        n += reps
        i += 1
    return wl(*sets)


def test_drain_swaps_empty_a_node_first_fit_cannot() -> None:
    w = anticorrelated(1)
    st = heuristics.ffd_place(w, BIG, Z3)
    assert len(st.used_nodes()) == 31
    heuristics.drain_light_nodes(st)
    assert len(st.used_nodes()) <= 28  # first-fit moves alone stop at 29
    assert st.violations() == []


def test_consolidate_empties_a_node_drain_cannot() -> None:
    w = anticorrelated(6)
    st = heuristics.drain_light_nodes(heuristics.dot_place(w, BIG, Z3))
    before = len(st.used_nodes())
    heuristics.consolidate(st)
    assert len(st.used_nodes()) == before - 1
    assert st.violations() == []


def test_consolidate_without_effort_changes_nothing() -> None:
    w = anticorrelated(6)
    st = heuristics.drain_light_nodes(heuristics.dot_place(w, BIG, Z3))
    before = st.assignment()
    heuristics.consolidate(st, effort=heuristics.Effort(0))
    assert st.assignment() == before


def test_plan_for_shape_is_smaller_survivable_and_deterministic() -> None:
    w = anticorrelated(1)
    st = heuristics.plan_for_shape(w, BIG, Z3)
    assert len(st.used_nodes()) <= 31  # 32 before drains swapped pods
    assert st.violations() == []
    assert simulate(st).node_pct == 100.0
    again = heuristics.plan_for_shape(w, BIG, Z3)
    assert again.assignment() == st.assignment()
