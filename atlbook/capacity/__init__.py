"""Capacity planning for HA Atlassian DC on EKS: pure numbers in, plans out (no SDK clients).

Public entry points (see each module for details):

- :func:`recommend` — instance type(s) and node count per zone at minimum cost, surviving any node loss;
- :func:`compare_live` — the same for a live cluster's pods, against its current nodes;
- :mod:`.catalogue`, :mod:`.eks` — instance data and EKS allocatable;
- :mod:`.workload` — pod sets, :func:`workload_from_stack`;
- :mod:`.policy` — the Kubernetes placement objects provisioning applies;
- :mod:`.budget` — the RDS connection budget;
- :mod:`.plots` — matplotlib figures; :func:`plan_progress` — a progress bar for ``recommend``;
- :mod:`.baselines`, :mod:`.bounds`, :mod:`.survivability`, :mod:`.solver`, :mod:`.heuristics`,
  :mod:`.patterns` (exact for one-replica-per-zone stacks), :mod:`.zonewise` (fast plans zone by zone,
  mixing types), :mod:`.classes`.
"""

from __future__ import annotations

from atlbook.capacity.catalogue import InstanceType, load_catalogue, refresh_from_describe
from atlbook.capacity.eks import DaemonSetOverhead, NodeShape, node_shape
from atlbook.capacity.plan import (
    Bounds,
    LiveComparison,
    LiveNode,
    LivePod,
    NodeGroup,
    PlanProgress,
    Recommendation,
    compare_live,
    recommend,
)
from atlbook.capacity.progress import plan_progress
from atlbook.capacity.survivability import SurvivabilityReport
from atlbook.capacity.workload import PodSet, Workload, workload_from_dict, workload_from_stack

__all__ = [
    "Bounds",
    "DaemonSetOverhead",
    "InstanceType",
    "LiveComparison",
    "LiveNode",
    "LivePod",
    "NodeGroup",
    "NodeShape",
    "PlanProgress",
    "PodSet",
    "Recommendation",
    "SurvivabilityReport",
    "Workload",
    "compare_live",
    "load_catalogue",
    "node_shape",
    "plan_progress",
    "recommend",
    "refresh_from_describe",
    "workload_from_dict",
    "workload_from_stack",
]
