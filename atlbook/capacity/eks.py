"""EKS arithmetic: from an instance type to what the scheduler can place on a node.

Formulas (reference ``eks-capacity.md`` §e, from ``awslabs/amazon-eks-ami`` nodeadm and Karpenter):

- max pods (VPC CNI secondary IPs) = ENIs × (IPv4 per ENI − 1) + 2; with prefix delegation
  ENIs × ((IPv4 per ENI − 1) × 16) + 2 capped at 110 (≤ 30 vCPU) or 250;
- kube-reserved CPU: 6 % of core 1, 1 % of core 2, 0.5 % of cores 3–4, 0.25 % of every further core;
- kube-reserved memory = 11 × max pods + 255 MiB; eviction threshold 100 MiB;
- kubelet memory capacity ≈ EC2 memory − ⌈7.5 %⌉ (Karpenter's ``vm-memory-overhead-percent``);
- allocatable = capacity − kube-reserved − eviction − per-node DaemonSet requests (and DaemonSet pods take
  pod slots).
"""

from __future__ import annotations

import dataclasses
import math

from atlbook.capacity.catalogue import InstanceType
from atlbook.errors import CapacityExceeded, ConfigError

__all__ = [
    "DEFAULT_DAEMONSETS",
    "EVICTION_HARD_MEMORY_MI",
    "OBSERVABILITY_DAEMONSETS",
    "VM_MEMORY_OVERHEAD",
    "DaemonSetOverhead",
    "NodeShape",
    "kube_reserved_cpu_m",
    "kube_reserved_memory_mi",
    "max_pods",
    "memory_capacity_mi",
    "node_shape",
]

EVICTION_HARD_MEMORY_MI = 100
"""kubelet ``evictionHard memory.available`` on EKS AMIs, MiB."""
VM_MEMORY_OVERHEAD = 0.075
"""Share of EC2 memory the kubelet does not see (Karpenter default estimate)."""


@dataclasses.dataclass(frozen=True)
class DaemonSetOverhead:
    """Per-node DaemonSet requests: they come off allocatable on every node and each takes a pod slot."""

    cpu_m: int = 155
    memory_mi: int = 104
    pods: int = 3


DEFAULT_DAEMONSETS = DaemonSetOverhead(cpu_m=155, memory_mi=104, pods=3)
"""aws-node 25m + ebs-csi-node 30m/104Mi + kube-proxy 100m (reference §e)."""
OBSERVABILITY_DAEMONSETS = DaemonSetOverhead(cpu_m=405, memory_mi=354, pods=5)
"""DEFAULT_DAEMONSETS plus aws-for-fluent-bit 50m/50Mi and cloudwatch-metrics 200m/200Mi."""


def max_pods(enis: int, ipv4_per_eni: int, *, prefix_delegation: bool = False, vcpu: int = 0) -> int:
    """Max pods the VPC CNI allows. Refuses (``ConfigError``) non-positive ENI or IP counts."""
    if enis < 1 or ipv4_per_eni < 2:
        raise ConfigError(f"ENIs ({enis}) must be ≥ 1 and IPv4 per ENI ({ipv4_per_eni}) ≥ 2")
    if prefix_delegation:
        return min(enis * ((ipv4_per_eni - 1) * 16) + 2, 110 if vcpu <= 30 else 250)
    return enis * (ipv4_per_eni - 1) + 2


def kube_reserved_cpu_m(vcpu: int) -> int:
    """kube-reserved CPU in millicores for ``vcpu`` cores (EKS ladder). Refuses ``vcpu < 1``."""
    if vcpu < 1:
        raise ConfigError(f"vCPU must be ≥ 1, got {vcpu}")
    m = vcpu * 1000
    res = (
        0.06 * min(m, 1000)
        + 0.01 * min(max(m - 1000, 0), 1000)
        + 0.005 * min(max(m - 2000, 0), 2000)
        + 0.0025 * max(m - 4000, 0)
    )
    return int(round(res))


def kube_reserved_memory_mi(pods: int) -> int:
    """kube-reserved memory in MiB for a node of ``pods`` max pods: 11 × pods + 255."""
    if pods < 1:
        raise ConfigError(f"max pods must be ≥ 1, got {pods}")
    return 11 * pods + 255


def memory_capacity_mi(ec2_memory_mib: int, overhead: float = VM_MEMORY_OVERHEAD) -> int:
    """Estimated kubelet memory capacity (MiB): EC2 memory minus ⌈overhead⌉."""
    if ec2_memory_mib <= 0:
        raise ConfigError(f"memory must be positive, got {ec2_memory_mib}")
    return ec2_memory_mib - math.ceil(ec2_memory_mib * overhead)


@dataclasses.dataclass(frozen=True)
class NodeShape:
    """What the scheduler can place on one node of an instance type (after DaemonSets)."""

    instance: InstanceType
    max_pods: int
    kube_reserved_cpu_m: int
    kube_reserved_memory_mi: int
    cpu_m: int
    """Allocatable CPU left for workload pods, millicores."""
    memory_mi: int
    """Allocatable memory left for workload pods, MiB."""
    pods: int
    """Pod slots left for workload pods."""

    @property
    def name(self) -> str:
        """Instance type name."""
        return self.instance.name

    @property
    def price(self) -> float:
        """On-demand USD per hour."""
        return self.instance.price_per_hour


def node_shape(
    instance: InstanceType,
    daemonsets: DaemonSetOverhead = DEFAULT_DAEMONSETS,
    *,
    prefix_delegation: bool = False,
    vm_memory_overhead: float = VM_MEMORY_OVERHEAD,
) -> NodeShape:
    """Allocatable CPU / memory / pod slots of ``instance`` for workload pods.

    Refuses (``CapacityExceeded``) an instance on which the DaemonSets alone do not fit.
    """
    pods = max_pods(
        instance.enis, instance.ipv4_per_eni, prefix_delegation=prefix_delegation, vcpu=instance.vcpu
    )
    rc = kube_reserved_cpu_m(instance.vcpu)
    rm = kube_reserved_memory_mi(pods)
    cpu = instance.vcpu * 1000 - rc - daemonsets.cpu_m
    mem = memory_capacity_mi(instance.memory_mib, vm_memory_overhead) - rm - EVICTION_HARD_MEMORY_MI
    mem -= daemonsets.memory_mi
    slots = pods - daemonsets.pods
    if cpu <= 0 or mem <= 0 or slots <= 0:
        raise CapacityExceeded(f"DaemonSets {daemonsets} do not fit on {instance.name}")
    return NodeShape(instance, pods, rc, rm, cpu, mem, slots)
