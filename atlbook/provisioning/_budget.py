"""The database connection budget, from :mod:`atlbook.capacity.budget` (the same numbers 20-capacity shows).

``need = Σ_products replicas × pool_max + surge (one more pool of the largest product) + reserve`` against
RDS's default ``max_connections`` for the class, ``LEAST(DBInstanceClassMemory / 9531392, 5000)``; the
parameter group provisioning creates sets exactly that value, so what is checked is what the server
enforces.
"""

from __future__ import annotations

from atlbook.capacity import budget as capbudget
from atlbook.provisioning._spec import SpecView

__all__ = ["budget"]


def budget(spec: SpecView) -> capbudget.ConnectionBudget:
    """The connection budget of ``spec``'s enabled products against its database class.

    Refuses (``ConfigError``) an instance class the capacity catalogue does not know.
    """
    pools = {p.name: (p.replicas, p.pool_max) for p in spec.enabled}
    return capbudget.connection_budget(
        pools, spec.database.instance_class, reserve=spec.database.reserved_connections
    )
