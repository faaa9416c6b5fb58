"""Workloads: sets of identical pods (a StatefulSet / ReplicaSet each) with their placement rules.

A :class:`PodSet` is ``replicas`` pods with the same requests and rules: required anti-affinity on
``kubernetes.io/hostname`` (one pod of the set per node), zone spread (``topologySpreadConstraints``
zone ``maxSkew: 1``, ``DoNotSchedule``) and EBS volumes (``ebs``: a pod stays in the zone of its volume;
in plan mode the zone is chosen by the planner, in live mode ``pinned_zones`` gives the volume zones).

:func:`workload_from_stack` builds the workload of one stack from an :class:`atlbook.stack.StackSpec`
(duck-typed: attributes or mapping keys). What it reads:

- ``products.{jira,confluence,bitbucket}.{enabled, replicas, resources.requests.{cpu,memory}}``;
- ``products.confluence.synchrony.{enabled, replicas, resources.requests}``;
- ``products.bitbucket.nfs.resources.requests`` (only when ``storage.bitbucket_shared_home`` is ``nfs``,
  the default), ``products.bitbucket.opensearch.{enabled, replicas, resources.requests}``,
  ``products.bitbucket.mesh.{enabled, replicas, resources.requests}``;
- optional ``extras``: a list of ``{name, replicas, cpu, memory, anti_affinity, zone_spread, ebs}``
  (eazyBI-style add-ons); optional ``daemonsets: {cpu, memory, pods}``.

Requests may be written flat (``cpu: "2"``, ``memory: "2Gi"``) as well.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from atlbook import stack as stack_model
from atlbook.capacity.eks import DEFAULT_DAEMONSETS, DaemonSetOverhead
from atlbook.errors import ConfigError

__all__ = [
    "PRIORITY_APPS",
    "PRIORITY_BUFFER",
    "PRIORITY_EXTRAS",
    "PRIORITY_SERVICES",
    "PodSet",
    "Workload",
    "parse_cpu_m",
    "parse_memory_mi",
    "workload_from_dict",
    "workload_from_stack",
]

PRIORITY_APPS = 100000
"""PriorityClass value of the Atlassian application pods."""
PRIORITY_SERVICES = 90000
"""Synchrony, OpenSearch, NFS server, Mesh."""
PRIORITY_EXTRAS = 50000
"""eazyBI-style extras and batch."""
PRIORITY_BUFFER = -10
"""Overprovisioning pause pods (cluster-autoscaler's expendable cut-off)."""


def parse_cpu_m(value: object) -> int:
    """CPU quantity (``"2"``, ``"500m"``, ``1.5`` cores) → millicores.

    Refuses (``ConfigError``) malformed or non-positive quantities.
    """
    try:
        return stack_model.cpu_millicores(value)  # type: ignore[arg-type]
    except (ValueError, TypeError) as e:
        raise ConfigError(f"bad CPU request {value!r}: {e}") from e


def parse_memory_mi(value: object) -> int:
    """Memory quantity (``"2Gi"``, ``"2.5G"``, bytes) → MiB, rounded up. Refuses malformed values."""
    try:
        b = stack_model.memory_bytes(value)  # type: ignore[arg-type]
    except (ValueError, TypeError) as e:
        raise ConfigError(f"bad memory request {value!r}: {e}") from e
    return -(-b // 2**20)


@dataclasses.dataclass(frozen=True)
class PodSet:
    """``replicas`` identical pods with their requests and hard placement rules."""

    name: str
    replicas: int
    cpu_m: int
    memory_mi: int
    app: str = ""
    """Label for grouping in tables and plots (product name); defaults to ``name``."""
    anti_affinity: bool = True
    """Required pod anti-affinity on ``kubernetes.io/hostname`` within the set."""
    zone_spread: bool = True
    """Zone topologySpreadConstraint maxSkew 1 DoNotSchedule within the set."""
    ebs: bool = True
    """Pods have EBS-backed volumes: a pod never leaves the zone it was placed in."""
    priority: int = PRIORITY_APPS
    pinned_zones: tuple[str, ...] = ()
    """Live mode: the zone of the volume of the first ``len(pinned_zones)`` replicas."""
    db_pool_max: int = 0
    """DB connections one pod may open (for the connection budget)."""

    def __post_init__(self) -> None:
        if self.replicas < 0:
            raise ConfigError(f"pod set {self.name}: replicas must be ≥ 0, got {self.replicas}")
        if self.cpu_m < 0 or self.memory_mi < 0:
            raise ConfigError(f"pod set {self.name}: requests must be ≥ 0")
        if len(self.pinned_zones) > self.replicas:
            raise ConfigError(f"pod set {self.name}: more pinned zones than replicas")
        if not self.app:
            object.__setattr__(self, "app", self.name)


@dataclasses.dataclass(frozen=True)
class Workload:
    """All pod sets to place, plus the DaemonSet overhead every node carries."""

    sets: tuple[PodSet, ...]
    daemonsets: DaemonSetOverhead = DEFAULT_DAEMONSETS
    name: str = ""

    def __post_init__(self) -> None:
        names = [s.name for s in self.sets]
        if len(set(names)) != len(names):
            raise ConfigError(f"pod set names must be unique: {sorted(names)}")

    @property
    def pods(self) -> int:
        """Number of workload pods."""
        return sum(s.replicas for s in self.sets)

    @property
    def cpu_m(self) -> int:
        """Total CPU requests, millicores."""
        return sum(s.replicas * s.cpu_m for s in self.sets)

    @property
    def memory_mi(self) -> int:
        """Total memory requests, MiB."""
        return sum(s.replicas * s.memory_mi for s in self.sets)

    def rows(self) -> list[dict[str, Any]]:
        """One row per pod set, for a table."""
        return [
            {
                "set": s.name,
                "app": s.app,
                "replicas": s.replicas,
                "cpu_m": s.cpu_m,
                "memory_mi": s.memory_mi,
                "anti_affinity": s.anti_affinity,
                "zone_spread": s.zone_spread,
                "ebs": s.ebs,
                "priority": s.priority,
            }
            for s in self.sets
        ]


def _get(obj: Any, key: str, default: Any = None) -> Any:
    if obj is None:
        return default
    if isinstance(obj, Mapping):
        return obj.get(key, default)
    return getattr(obj, key, default)


def _requests(obj: Any, what: str) -> tuple[int, int]:
    req = _get(_get(obj, "resources"), "requests")
    cpu = _get(req, "cpu", _get(obj, "cpu"))
    mem = _get(req, "memory", _get(obj, "memory"))
    if cpu is None or mem is None:
        raise ConfigError(f"{what}: cpu and memory requests are required")
    return parse_cpu_m(cpu), parse_memory_mi(mem)


def _set(obj: Any, name: str, app: str, priority: int, default_replicas: int, **kw: Any) -> PodSet:
    cpu, mem = _requests(obj, name)
    return PodSet(
        name=name,
        app=app,
        replicas=int(_get(obj, "replicas", default_replicas)),
        cpu_m=cpu,
        memory_mi=mem,
        priority=priority,
        **kw,
    )


def workload_from_stack(spec: Any, *, prefix: str = "") -> Workload:
    """Build the workload of one stack from a ``StackSpec`` (attributes) or its plain-dict form.

    ``prefix`` is prepended to set names (several stacks in one cluster). Refuses (``ConfigError``)
    missing requests and a stack with no enabled product.
    """
    products = _get(spec, "products")
    if products is None:
        raise ConfigError("stack has no 'products'")
    sets: list[PodSet] = []
    p = prefix
    for product in ("jira", "confluence", "bitbucket"):
        ps = _get(products, product)
        if ps is None or not _get(ps, "enabled", True):
            continue
        sets.append(
            _set(ps, f"{p}{product}", product, PRIORITY_APPS, 1, db_pool_max=int(_get(ps, "db_pool_max", 0)))
        )
        if product == "confluence":
            syn = _get(ps, "synchrony", _get(spec, "synchrony"))
            if syn is not None and _get(syn, "enabled", True):
                sets.append(_set(syn, f"{p}synchrony", "synchrony", PRIORITY_SERVICES, 1))
        if product == "bitbucket":
            shared = _get(_get(spec, "storage"), "bitbucket_shared_home", "nfs")
            nfs = _get(ps, "nfs", _get(spec, "nfs"))
            if nfs is not None and shared == "nfs" and _get(nfs, "enabled", True):
                sets.append(_set(nfs, f"{p}bitbucket-nfs", "nfs", PRIORITY_SERVICES, 1))
            osr = _get(ps, "opensearch", _get(spec, "opensearch"))
            if osr is not None and _get(osr, "enabled", True):
                sets.append(_set(osr, f"{p}opensearch", "opensearch", PRIORITY_SERVICES, 1))
            mesh = _get(ps, "mesh")
            if mesh is not None and _get(mesh, "enabled", False):
                sets.append(_set(mesh, f"{p}mesh", "mesh", PRIORITY_SERVICES, 3))
    for extra in _get(spec, "extras", None) or []:
        name = str(_get(extra, "name", "extra"))
        sets.append(
            _set(
                extra,
                f"{p}{name}",
                str(_get(extra, "app", name)),
                int(_get(extra, "priority", PRIORITY_EXTRAS)),
                1,
                anti_affinity=bool(_get(extra, "anti_affinity", True)),
                zone_spread=bool(_get(extra, "zone_spread", True)),
                ebs=bool(_get(extra, "ebs", True)),
            )
        )
    if not sets:
        raise ConfigError("stack has no enabled product: nothing to place")
    ds = _get(spec, "daemonsets")
    daemonsets = DEFAULT_DAEMONSETS
    if ds is not None:
        daemonsets = DaemonSetOverhead(
            cpu_m=parse_cpu_m(_get(ds, "cpu", "155m")),
            memory_mi=parse_memory_mi(_get(ds, "memory", "104Mi")),
            pods=int(_get(ds, "pods", 3)),
        )
    return Workload(tuple(sets), daemonsets, name=str(_get(spec, "name", "") or ""))


def workload_from_dict(doc: Mapping[str, Any]) -> Workload:
    """Build a workload from a plain mapping: ``{name, daemonsets: {cpu, memory, pods}, sets: [...]}``.

    Each set: ``{name, replicas, cpu, memory, app?, anti_affinity?, zone_spread?, ebs?, priority?,
    pinned_zones?, db_pool_max?}``. A mapping with ``products`` is passed to :func:`workload_from_stack`.
    Refuses (``ConfigError``) a document with neither ``sets`` nor ``products``.
    """
    if "products" in doc:
        return workload_from_stack(doc)
    raw_sets = doc.get("sets")
    if not isinstance(raw_sets, Sequence) or isinstance(raw_sets, str):
        raise ConfigError("workload document needs a 'sets' list (or a 'products' mapping)")
    sets = []
    for i, s in enumerate(raw_sets):
        if not isinstance(s, Mapping):
            raise ConfigError(f"sets[{i}] must be a mapping")
        try:
            sets.append(
                PodSet(
                    name=str(s["name"]),
                    replicas=int(s["replicas"]),
                    cpu_m=parse_cpu_m(s["cpu"]),
                    memory_mi=parse_memory_mi(s["memory"]),
                    app=str(s.get("app", "")),
                    anti_affinity=bool(s.get("anti_affinity", True)),
                    zone_spread=bool(s.get("zone_spread", True)),
                    ebs=bool(s.get("ebs", True)),
                    priority=int(s.get("priority", PRIORITY_APPS)),
                    pinned_zones=tuple(s.get("pinned_zones", ())),
                    db_pool_max=int(s.get("db_pool_max", 0)),
                )
            )
        except KeyError as e:
            raise ConfigError(f"sets[{i}] misses key {e}") from e
    ds = doc.get("daemonsets")
    daemonsets = DEFAULT_DAEMONSETS
    if isinstance(ds, Mapping):
        daemonsets = DaemonSetOverhead(
            cpu_m=parse_cpu_m(ds.get("cpu", "155m")),
            memory_mi=parse_memory_mi(ds.get("memory", "104Mi")),
            pods=int(ds.get("pods", 3)),
        )
    return Workload(tuple(sets), daemonsets, name=str(doc.get("name", "")))
