"""Builders for capacity tests: node shapes and workloads with hand-checkable numbers."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

from atlbook.capacity.catalogue import InstanceType
from atlbook.capacity.eks import DaemonSetOverhead, NodeShape
from atlbook.capacity.workload import PodSet, Workload

NO_DS = DaemonSetOverhead(cpu_m=0, memory_mi=0, pods=0)


def shape(
    name: str = "t.box", cpu_m: int = 4000, memory_mi: int = 16384, pods: int = 50, price: float = 1.0
) -> NodeShape:
    inst = InstanceType(name, max(1, cpu_m // 1000), memory_mi, 1, 2, price)
    return NodeShape(inst, pods, 0, 0, cpu_m, memory_mi, pods)


def wl(*sets: PodSet) -> Workload:
    return Workload(tuple(sets), NO_DS)


def pset(name: str, replicas: int, cpu_m: int = 1000, memory_mi: int = 1024, **kw: object) -> PodSet:
    kw.setdefault("anti_affinity", False)
    kw.setdefault("zone_spread", False)
    kw.setdefault("ebs", False)
    return PodSet(name=name, replicas=replicas, cpu_m=cpu_m, memory_mi=memory_mi, **kw)  # type: ignore[arg-type]


@contextlib.contextmanager
def busy_cpu() -> Iterator[None]:
    """A thread spinning on the CPU for the duration (a competing load for determinism tests)."""
    stop = threading.Event()

    def spin() -> None:
        x = 0
        while not stop.is_set():
            x += 1

    t = threading.Thread(target=spin, daemon=True)
    t.start()
    try:
        yield
    finally:
        stop.set()
        t.join()
