"""N+1 check: cluster-autoscaler's ``SimulateNodeRemoval`` for every node and every zone.

For a node scenario the node becomes a *ghost* (unschedulable, still a spread domain, as CA's tainted
ghost), its pods are unbound and re-placed one by one (priority, then largest first) on the remaining
nodes with the same filters and no new nodes. Pods with EBS volumes may only move inside their zone.
A zone scenario removes every node of the zone (no ghost: the domain is gone once the nodes are deleted);
its EBS-pinned pods cannot move at all and are reported apart as ``stranded_pinned``; the zone is
survivable when every other pod re-places.

Note: while an unreachable zone's Node objects still exist, PodTopologySpread (nodeTaintsPolicy Ignore)
keeps counting that zone, and ``DoNotSchedule`` spread sets cannot re-place anywhere else; the zone
scenario here models the state after those Node objects are deleted.
"""

from __future__ import annotations

import dataclasses

from atlbook.capacity.cluster import ClusterState

__all__ = ["Scenario", "SurvivabilityReport", "simulate", "simulate_node", "simulate_zone"]


@dataclasses.dataclass(frozen=True)
class Scenario:
    """One removal: what was removed, how many pods moved, which could not (by set name)."""

    kind: str
    """``node`` or ``zone``."""
    target: str
    displaced: int
    stranded: dict[str, int]
    """Pods that could move but found no node, by set name."""
    stranded_pinned: dict[str, int]
    """Pods that cannot leave a lost zone (EBS volume), by set name (zone scenarios only)."""

    @property
    def survivable(self) -> bool:
        """True when every pod that is allowed to move found a node."""
        return not self.stranded


@dataclasses.dataclass(frozen=True)
class SurvivabilityReport:
    """All node and zone scenarios of one placement."""

    nodes: tuple[Scenario, ...]
    zones: tuple[Scenario, ...]

    @property
    def node_pct(self) -> float:
        """% of single-node removals after which every pod re-places (100 when there are no nodes)."""
        return _pct(self.nodes)

    @property
    def zone_pct(self) -> float:
        """% of single-zone removals after which every movable pod re-places."""
        return _pct(self.zones)

    @property
    def stranded_pods(self) -> int:
        """Pods stranded over all node scenarios (movable pods without a node)."""
        return sum(sum(s.stranded.values()) for s in self.nodes)

    def rows(self) -> list[dict[str, object]]:
        """One row per scenario, for a table."""
        return [
            {
                "kind": s.kind,
                "target": s.target,
                "displaced": s.displaced,
                "survivable": s.survivable,
                "stranded": sum(s.stranded.values()),
                "stranded_pinned": sum(s.stranded_pinned.values()),
                "stranded_sets": ", ".join(f"{k}×{v}" for k, v in sorted(s.stranded.items())),
            }
            for s in (*self.nodes, *self.zones)
        ]


def _pct(scenarios: tuple[Scenario, ...]) -> float:
    if not scenarios:
        return 100.0
    return 100.0 * sum(1 for s in scenarios if s.survivable) / len(scenarios)


def _order(state: ClusterState, pods: list[tuple[int, int]]) -> list[tuple[int, int]]:
    sets = state.workload.sets
    return sorted(pods, key=lambda p: (-sets[p[0]].priority, -(state.cpu[p[0]] + state.mem[p[0]] // 4), p[0]))


def _replace(
    state: ClusterState, pods: list[tuple[int, int]], candidates: list[int]
) -> tuple[list[tuple[int, int]], dict[str, int]]:
    """Place (set, zone-or-−1) pods first-fit on ``candidates``; return moves made and stranded counts."""
    moved: list[tuple[int, int]] = []
    stranded: dict[str, int] = {}
    for s, zone in _order(state, pods):
        target = -1
        for m in candidates:
            if state.fits(s, m, zone if zone >= 0 else None):
                target = m
                break
        if target < 0:
            name = state.workload.sets[s].name
            stranded[name] = stranded.get(name, 0) + 1
        else:
            state.place(s, target)
            moved.append((s, target))
    return moved, stranded


def simulate_node(state: ClusterState, n: int) -> Scenario:
    """Remove node ``n`` (ghost kept), re-place its pods, restore the state, return the scenario."""
    pods: list[tuple[int, int]] = []
    zone = state.node_zone[n]
    original = dict(state.count[n])
    for s, k in original.items():
        for _ in range(k):
            state.unplace(s, n)
            pods.append((s, zone if state.ebs[s] else -1))
    state.set_ghost(n, True)
    candidates = [m for m in state.used_nodes() if m != n]
    moved, stranded = _replace(state, pods, candidates)
    for s, m in moved:
        state.unplace(s, m)
    state.set_ghost(n, False)
    for s, k in original.items():
        for _ in range(k):
            state.place(s, n)
    return Scenario("node", state.nodes[n].name, len(pods), stranded, {})


def simulate_zone(state: ClusterState, zone: str) -> Scenario:
    """Remove every node of ``zone`` (no ghost), re-place movable pods, restore, return the scenario."""
    z = state.zone_index[zone]
    lost = [n for n in state.used_nodes() if state.node_zone[n] == z]
    saved = {n: dict(state.count[n]) for n in lost}
    pods: list[tuple[int, int]] = []
    pinned: dict[str, int] = {}
    for n in lost:
        for s, k in saved[n].items():
            for _ in range(k):
                state.unplace(s, n)
                if state.ebs[s]:
                    name = state.workload.sets[s].name
                    pinned[name] = pinned.get(name, 0) + 1
                else:
                    pods.append((s, -1))
        state.set_gone(n, True)
    candidates = state.used_nodes()
    moved, stranded = _replace(state, pods, candidates)
    for s, m in moved:
        state.unplace(s, m)
    for n in lost:
        state.set_gone(n, False)
        for s, k in saved[n].items():
            for _ in range(k):
                state.place(s, n)
    displaced = len(pods) + sum(pinned.values())
    return Scenario("zone", zone, displaced, stranded, pinned)


def simulate(state: ClusterState, *, zones: bool = True) -> SurvivabilityReport:
    """Run every single-node scenario (and, if ``zones``, every single-zone scenario) on ``state``.

    The state is left exactly as it was. Zones without nodes are skipped.
    """
    node_s = tuple(simulate_node(state, n) for n in state.used_nodes())
    zone_s: tuple[Scenario, ...] = ()
    if zones:
        present = sorted({state.zones[state.node_zone[n]] for n in state.used_nodes()}, key=state.zones.index)
        if len(present) > 1:
            zone_s = tuple(simulate_zone(state, z) for z in present)
    return SurvivabilityReport(node_s, zone_s)
