"""The database connection budget of a shared RDS PostgreSQL (reference §11).

``need = Σ_products replicas × pool_max + surge + reserve`` where *surge* is one extra pool of the
largest product (a pod being replaced during a rolling restart briefly holds its pool while the old
one drains) and *reserve* is kept for admin sessions, replication and RDS's own connections.

``max_connections`` for a class is RDS's default ``LEAST(DBInstanceClassMemory / 9531392, 5000)``,
computed on the class's nominal memory (the real ``DBInstanceClassMemory`` is a few percent lower;
the parameter group we create sets exactly this value, so what we check is what the server enforces).
"""

from __future__ import annotations

import dataclasses

from atlbook.provisioning._spec import SpecView

__all__ = ["Budget", "budget", "max_connections"]

_GIB = 1024**3
#: Nominal memory (GiB) per RDS instance class size; families share sizes.
_SIZE_GIB = {
    "micro": 1,
    "small": 2,
    "medium": 4,
    "large": 8,
    "xlarge": 16,
    "2xlarge": 32,
    "4xlarge": 64,
    "8xlarge": 128,
    "12xlarge": 192,
    "16xlarge": 256,
    "24xlarge": 384,
}
#: Memory-optimised families have twice the memory of the general-purpose ones at the same size.
_MEMORY_FAMILIES = ("r5", "r6g", "r6i", "r7g", "r7i", "r8g", "x2g")
_ORDER = (
    "db.t3.medium",
    "db.t3.large",
    "db.m5.large",
    "db.m5.xlarge",
    "db.r6g.xlarge",
    "db.m5.2xlarge",
    "db.r6g.2xlarge",
    "db.m5.4xlarge",
    "db.r6g.4xlarge",
)


def max_connections(instance_class: str) -> int:
    """RDS PostgreSQL's default ``max_connections`` for ``instance_class`` (e.g. ``db.m5.large`` → 901)."""
    parts = instance_class.split(".")
    family, size = (parts[1], parts[2]) if len(parts) == 3 else ("m5", "large")
    gib = _SIZE_GIB.get(size, 8)
    if family.startswith(_MEMORY_FAMILIES):
        gib *= 2
    return min(int(gib * _GIB / 9531392), 5000)


@dataclasses.dataclass(frozen=True)
class Budget:
    """The numbers of the connection budget, and the two fixes when it does not fit."""

    per_product: dict[str, int]
    """replicas × pool_max per product."""
    surge: int
    reserve: int
    need: int
    instance_class: str
    max_connections: int
    fits: bool
    bigger_class: str | None
    """Smallest class (of a fixed ladder) whose max_connections covers ``need``."""
    pool_max_that_fits: int | None
    """The largest uniform pool max per node that fits the current class (``None`` if none does)."""

    def explain(self) -> str:
        """One line with the numbers: ``need 620 = jira 2×100 + … + surge 100 + reserve 10 ≤ 901``."""
        parts = " + ".join(f"{k} {v}" for k, v in self.per_product.items())
        verdict = "fits" if self.fits else "does NOT fit"
        text = (
            f"DB connections: need {self.need} = {parts} + surge {self.surge} + reserve {self.reserve}; "
            f"{self.instance_class} allows max_connections {self.max_connections}: {verdict}"
        )
        if not self.fits:
            fixes = []
            if self.bigger_class:
                fixes.append(
                    f"use a bigger class: {self.bigger_class} "
                    f"(max_connections {max_connections(self.bigger_class)})"
                )
            if self.pool_max_that_fits:
                fixes.append(f"or lower every product's pool max to ≤ {self.pool_max_that_fits}")
            text += ". Fix: " + "; ".join(fixes)
        return text


def budget(spec: SpecView) -> Budget:
    """Compute the connection budget of ``spec``'s enabled products against its database class."""
    per = {p.name: p.replicas * p.pool_max for p in spec.enabled}
    surge = max((p.pool_max for p in spec.enabled), default=0)
    reserve = spec.database.reserved_connections
    need = sum(per.values()) + surge + reserve
    limit = max_connections(spec.database.instance_class)
    bigger = next((c for c in _ORDER if max_connections(c) >= need), None)
    nodes = sum(p.replicas for p in spec.enabled) + (1 if spec.enabled else 0)
    pool_fit = (limit - reserve) // nodes if nodes else None
    return Budget(
        per_product=per,
        surge=surge,
        reserve=reserve,
        need=need,
        instance_class=spec.database.instance_class,
        max_connections=limit,
        fits=need <= limit,
        bigger_class=bigger,
        pool_max_that_fits=pool_fit if pool_fit and pool_fit > 0 else None,
    )
