"""Database connection budget of the shared RDS PostgreSQL (reference ``atlassian-dc.md`` §11).

``need = Σ nodes × pool max + surge + reserve``: *surge* is one more pool of the largest product (during
a rolling upgrade the pod being replaced still holds its pool while the new one opens its own; products
are upgraded one at a time), *reserve* covers admin sessions, replication and RDS's own connections.
RDS's default ``max_connections = LEAST(DBInstanceClassMemory / 9531392, 5000)`` is computed on the
class's nominal memory (the real DBInstanceClassMemory is a little lower; set ``max_connections`` in
the parameter group to exactly this value so that the check holds). When the budget does not fit, two
fixes are returned: the smallest bigger class that fits, and the largest uniform pool max that fits.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from atlbook.capacity.workload import Workload
from atlbook.errors import CapacityExceeded, ConfigError

__all__ = [
    "BYTES_PER_CONNECTION",
    "DB_CLASS_MEMORY_GIB",
    "ConnectionBudget",
    "budget_for_stack",
    "budget_from_workload",
    "connection_budget",
    "max_connections",
]

BYTES_PER_CONNECTION = 9531392
"""RDS PostgreSQL default: one connection per this many bytes of DBInstanceClassMemory."""

_GP = {
    "large": 8,
    "xlarge": 16,
    "2xlarge": 32,
    "4xlarge": 64,
    "8xlarge": 128,
    "12xlarge": 192,
    "16xlarge": 256,
    "24xlarge": 384,
}
_MEM = {k: 2 * v for k, v in _GP.items()}
DB_CLASS_MEMORY_GIB: dict[str, float] = {
    "db.t3.micro": 1,
    "db.t3.small": 2,
    "db.t3.medium": 4,
    "db.t3.large": 8,
    "db.t3.xlarge": 16,
    "db.t3.2xlarge": 32,
    "db.t4g.micro": 1,
    "db.t4g.small": 2,
    "db.t4g.medium": 4,
    "db.t4g.large": 8,
    "db.t4g.xlarge": 16,
    "db.t4g.2xlarge": 32,
    **{f"db.{fam}.{size}": gib for fam in ("m5", "m6g", "m6i", "m7g", "m7i") for size, gib in _GP.items()},
    **{f"db.{fam}.{size}": gib for fam in ("r5", "r6g", "r6i", "r7g", "r7i") for size, gib in _MEM.items()},
}
"""Nominal memory (GiB) per RDS DB instance class."""


def max_connections(instance_class: str) -> int:
    """Default ``max_connections`` of an RDS PostgreSQL class. Refuses (``ConfigError``) unknown classes."""
    gib = DB_CLASS_MEMORY_GIB.get(instance_class)
    if gib is None:
        raise ConfigError(
            f"unknown DB instance class {instance_class!r}; known e.g. db.m5.large, db.r6g.xlarge"
        )
    return int(min(gib * 2**30 // BYTES_PER_CONNECTION, 5000))


@dataclasses.dataclass(frozen=True)
class ConnectionBudget:
    """Need vs limit, and the two fixes when it does not fit."""

    per_product: dict[str, int]
    surge: int
    reserve: int
    need: int
    instance_class: str
    max_connections: int
    bigger_class: str | None
    """Smallest known class whose max_connections covers ``need`` (None if already fits or none does)."""
    pool_max_that_fits: int | None
    """Largest uniform pool max per pod that fits the current class (None if already fits or none does)."""

    @property
    def fits(self) -> bool:
        """True when need ≤ max_connections."""
        return self.need <= self.max_connections

    @property
    def deficit(self) -> int:
        """Connections missing (0 when it fits)."""
        return max(0, self.need - self.max_connections)

    def summary(self) -> dict[str, Any]:
        """JSON-able figures for records."""
        return {
            "need": self.need,
            "max_connections": self.max_connections,
            "instance_class": self.instance_class,
            "fits": self.fits,
            "deficit": self.deficit,
            "per_product": dict(self.per_product),
            "surge": self.surge,
            "reserve": self.reserve,
            "bigger_class": self.bigger_class,
            "pool_max_that_fits": self.pool_max_that_fits,
        }

    def explain(self) -> str:
        """One line with the numbers and, if it does not fit, the fixes."""
        parts = " + ".join(f"{k} {v}" for k, v in self.per_product.items())
        text = (
            f"DB connections: need {self.need} = {parts} + surge {self.surge} + reserve {self.reserve}; "
            f"{self.instance_class} max_connections {self.max_connections}: "
            + ("fits" if self.fits else f"short by {self.deficit}")
        )
        if not self.fits:
            fixes = []
            if self.bigger_class:
                fixes.append(f"use {self.bigger_class} ({max_connections(self.bigger_class)})")
            if self.pool_max_that_fits:
                fixes.append(f"set every pool max ≤ {self.pool_max_that_fits}")
            text += "; fix: " + " or ".join(fixes) if fixes else "; no fix within the known classes"
        return text


def connection_budget(
    pools: Mapping[str, tuple[int, int]], instance_class: str, *, reserve: int = 10
) -> ConnectionBudget:
    """Budget for ``pools`` = {product: (nodes, pool max per node)} against ``instance_class``.

    Refuses (``ConfigError``) negative numbers and unknown classes.
    """
    for name, (nodes, pool) in pools.items():
        if nodes < 0 or pool < 0:
            raise ConfigError(f"{name}: nodes and pool max must be ≥ 0")
    if reserve < 0:
        raise ConfigError("reserve must be ≥ 0")
    per = {name: nodes * pool for name, (nodes, pool) in pools.items()}
    surge = max((pool for nodes, pool in pools.values() if nodes), default=0)
    need = sum(per.values()) + surge + reserve
    limit = max_connections(instance_class)
    bigger = pool_fit = None
    if need > limit:
        ladder = sorted(DB_CLASS_MEMORY_GIB, key=lambda c: (DB_CLASS_MEMORY_GIB[c], c))
        bigger = next(
            (c for c in ladder if max_connections(c) >= need and not c.startswith(("db.t3", "db.t4g"))), None
        )
        pods = sum(nodes for nodes, _ in pools.values()) + 1
        fit = (limit - reserve) // pods if pods else 0
        pool_fit = fit if fit > 0 else None
    return ConnectionBudget(per, surge, reserve, need, instance_class, limit, bigger, pool_fit)


def budget_from_workload(
    workload: Workload, instance_class: str, *, reserve: int = 10, require_fit: bool = False
) -> ConnectionBudget:
    """Budget from the pod sets' ``db_pool_max`` (sets with 0 open no connections).

    With ``require_fit`` a budget that does not fit raises ``CapacityExceeded`` with the explanation.
    """
    pools = {s.name: (s.replicas, s.db_pool_max) for s in workload.sets if s.db_pool_max}
    b = connection_budget(pools, instance_class, reserve=reserve)
    if require_fit and not b.fits:
        raise CapacityExceeded(b.explain())
    return b


def budget_for_stack(spec: Any, *, reserve: int | None = None) -> ConnectionBudget:
    """Budget of a ``StackSpec`` (duck-typed): its enabled products' replicas × ``db_pool_max`` against
    ``database.instance_class``; ``reserve`` defaults to ``database.reserved_connections`` or 10.

    Refuses (``ConfigError``) a stack without a database class.
    """
    from atlbook.capacity.workload import workload_from_stack

    db = getattr(spec, "database", None) if not isinstance(spec, Mapping) else spec.get("database")
    cls = getattr(db, "instance_class", None) if not isinstance(db, Mapping) else db.get("instance_class")
    if not cls:
        raise ConfigError("stack has no database.instance_class")
    if reserve is None:
        got = (
            getattr(db, "reserved_connections", None)
            if not isinstance(db, Mapping)
            else db.get("reserved_connections")
        )
        reserve = int(got) if got is not None else 10
    return budget_from_workload(workload_from_stack(spec), str(cls), reserve=reserve)
