"""The placement state shared by every placer: nodes, free capacity, per-set counts, and the filters.

Filters are kube-scheduler's for our pods (``eks-capacity.md`` §a): NodeResourcesFit on CPU, memory and
pod slots (requests only); InterPodAffinity for required anti-affinity on ``kubernetes.io/hostname``
within a set; PodTopologySpread on ``topology.kubernetes.io/zone`` with ``maxSkew: 1`` and
``DoNotSchedule`` (a zone is an eligible domain while it has a node, ghosts included); VolumeZone for pods
pinned to a zone by an EBS volume. A *ghost* node is unschedulable but still counts as a spread domain
(cluster-autoscaler's SimulateNodeRemoval); a *gone* node counts for nothing.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from atlbook.capacity.eks import NodeShape
from atlbook.capacity.workload import Workload

__all__ = ["ClusterState", "Node"]


@dataclasses.dataclass(frozen=True)
class Node:
    """One worker node: a name, its zone and its shape (allocatable after DaemonSets)."""

    name: str
    zone: str
    shape: NodeShape


class ClusterState:
    """Mutable placement of a workload's pods on nodes, with O(1) filter checks."""

    def __init__(
        self,
        workload: Workload,
        nodes: Sequence[Node],
        zones: Sequence[str],
        *,
        all_zones_are_domains: bool = False,
    ) -> None:
        """Start empty on ``nodes``; ``zones`` lists every zone a node may be in.

        With ``all_zones_are_domains`` every zone counts as a spread domain even before it has a node
        (a planner that will put nodes in every zone builds with this).
        """
        self.all_zones_are_domains = all_zones_are_domains
        self.workload = workload
        self.zones = list(zones)
        self.zone_index = {z: i for i, z in enumerate(self.zones)}
        s = workload.sets
        self.cpu = [p.cpu_m for p in s]
        self.mem = [p.memory_mi for p in s]
        self.anti = [p.anti_affinity for p in s]
        self.spread = [p.zone_spread for p in s]
        self.ebs = [p.ebs for p in s]
        self.nodes: list[Node] = []
        self.node_zone: list[int] = []
        self.free_cpu: list[int] = []
        self.free_mem: list[int] = []
        self.free_pods: list[int] = []
        self.count: list[dict[int, int]] = []
        self.schedulable: list[bool] = []
        self.gone: list[bool] = []
        self.zone_count = [[0] * len(self.zones) for _ in s]
        self.domain_nodes = [0] * len(self.zones)
        self._domains: list[int] = []
        self._refresh_domains()
        for n in nodes:
            self.add_node(n)

    def _refresh_domains(self) -> None:
        if self.all_zones_are_domains:
            self._domains = list(range(len(self.zones)))
        else:
            self._domains = [i for i, c in enumerate(self.domain_nodes) if c > 0]

    # --- nodes -----------------------------------------------------------------------------------
    def add_node(self, node: Node) -> int:
        """Add an empty node and return its index."""
        self.nodes.append(node)
        self.node_zone.append(self.zone_index[node.zone])
        self.free_cpu.append(node.shape.cpu_m)
        self.free_mem.append(node.shape.memory_mi)
        self.free_pods.append(node.shape.pods)
        self.count.append({})
        self.schedulable.append(True)
        self.gone.append(False)
        self.domain_nodes[self.zone_index[node.zone]] += 1
        self._refresh_domains()
        return len(self.nodes) - 1

    def pop_node(self) -> None:
        """Remove the last node added; it must be empty (used by estimators to undo a trial)."""
        n = len(self.nodes) - 1
        if self.count[n]:
            raise ValueError("pop_node: node is not empty")
        if not self.gone[n]:
            self.domain_nodes[self.node_zone[n]] -= 1
            self._refresh_domains()
        for lst in (
            self.nodes,
            self.node_zone,
            self.free_cpu,
            self.free_mem,
            self.free_pods,
            self.count,
            self.schedulable,
            self.gone,
        ):
            lst.pop()

    def set_ghost(self, n: int, ghost: bool) -> None:
        """Make node ``n`` unschedulable (ghost) or schedulable again; it stays a spread domain."""
        self.schedulable[n] = not ghost

    def set_gone(self, n: int, gone: bool) -> None:
        """Remove node ``n`` entirely (no domain) or bring it back."""
        if gone == self.gone[n]:
            return
        self.gone[n] = gone
        self.schedulable[n] = not gone
        self.domain_nodes[self.node_zone[n]] += -1 if gone else 1
        self._refresh_domains()

    # --- pods ------------------------------------------------------------------------------------
    def fits(self, s: int, n: int, zone: int | None = None) -> bool:
        """True if one pod of set ``s`` passes every filter on node ``n`` (optionally pinned to ``zone``)."""
        if not self.schedulable[n]:
            return False
        nz = self.node_zone[n]
        if zone is not None and nz != zone:
            return False
        if self.free_pods[n] < 1 or self.free_cpu[n] < self.cpu[s] or self.free_mem[n] < self.mem[s]:
            return False
        if self.anti[s] and self.count[n].get(s, 0):
            return False
        if self.spread[s]:
            zc = self.zone_count[s]
            if zc[nz] + 1 - min(zc[d] for d in self._domains) > 1:
                return False
        return True

    def fits_resources(self, s: int, n: int) -> bool:
        """True if node ``n`` (schedulable) has the requests and a slot for one pod of ``s``."""
        return (
            self.schedulable[n]
            and self.free_pods[n] >= 1
            and self.free_cpu[n] >= self.cpu[s]
            and self.free_mem[n] >= self.mem[s]
        )

    def place(self, s: int, n: int) -> None:
        """Bind one pod of set ``s`` to node ``n`` (no checks)."""
        self.free_cpu[n] -= self.cpu[s]
        self.free_mem[n] -= self.mem[s]
        self.free_pods[n] -= 1
        c = self.count[n]
        c[s] = c.get(s, 0) + 1
        self.zone_count[s][self.node_zone[n]] += 1

    def unplace(self, s: int, n: int) -> None:
        """Remove one pod of set ``s`` from node ``n``."""
        self.free_cpu[n] += self.cpu[s]
        self.free_mem[n] += self.mem[s]
        self.free_pods[n] += 1
        c = self.count[n]
        c[s] -= 1
        if not c[s]:
            del c[s]
        self.zone_count[s][self.node_zone[n]] -= 1

    # --- views -----------------------------------------------------------------------------------
    def used_nodes(self) -> list[int]:
        """Indices of nodes that are not gone."""
        return [i for i in range(len(self.nodes)) if not self.gone[i]]

    def placed(self) -> int:
        """Pods currently bound."""
        return sum(sum(c.values()) for c in self.count)

    def cost(self) -> float:
        """USD per hour of the nodes that are not gone."""
        return sum(self.nodes[i].shape.price for i in self.used_nodes())

    def assignment(self) -> list[dict[int, int]]:
        """A copy of the per-node pod counts by set index."""
        return [dict(c) for c in self.count]

    def violations(self) -> list[str]:
        """Hard-constraint violations of the current placement (empty when valid)."""
        out: list[str] = []
        for n, c in enumerate(self.count):
            if self.free_cpu[n] < 0 or self.free_mem[n] < 0 or self.free_pods[n] < 0:
                out.append(f"node {self.nodes[n].name} over allocatable")
            for s, k in c.items():
                if self.anti[s] and k > 1:
                    out.append(f"{k} pods of {self.workload.sets[s].name} on {self.nodes[n].name}")
        for si, ps in enumerate(self.workload.sets):
            s_zc = self.zone_count[si]
            placed = sum(s_zc)
            if placed != ps.replicas:
                out.append(f"{ps.name}: {placed} of {ps.replicas} pods placed")
            if self.spread[si] and self._domains:
                zc = [s_zc[d] for d in self._domains]
                if max(zc) - min(zc) > 1:
                    out.append(f"{ps.name}: zone skew {max(zc) - min(zc)} > 1")
            pins: dict[int, int] = {}
            for zname in ps.pinned_zones:
                pins[self.zone_index[zname]] = pins.get(self.zone_index[zname], 0) + 1
            for zi, k in pins.items():
                if s_zc[zi] < k:
                    out.append(f"{ps.name}: {k} pods pinned to {self.zones[zi]}, {s_zc[zi]} there")
        return out
