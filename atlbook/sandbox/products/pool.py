"""A small, real connection pool per simulated node: psycopg connections to the sandbox PostgreSQL with
``application_name`` = the pod name, so ``pg_stat_activity`` shows each node's connections.

The pool holds ``min_size`` connections and grows towards ``demand`` (at most ``max_size``) when a fault
asks for more than it holds; a connection the server refuses (``too many clients``) is reported to the
caller as a pool timeout, the way the products' pools (DBCP, Hikari) report it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import psycopg

__all__ = ["DbPool"]


class DbPool:
    """Connections held open for one node. ``connect()`` opens one; errors are returned, never raised."""

    def __init__(
        self,
        connect: Callable[[], psycopg.Connection[tuple[object, ...]]],
        min_size: int = 2,
        max_size: int = 10,
    ) -> None:
        self._connect = connect
        self.min_size = min_size
        self.max_size = max_size
        self.demand = min_size
        """Connections the node needs right now (faults raise it)."""
        self._conns: list[psycopg.Connection[tuple[object, ...]]] = []
        self._lock = threading.Lock()
        self._closed = False

    @property
    def size(self) -> int:
        """Connections held."""
        return len(self._conns)

    def maintain(self) -> list[str]:
        """Grow to ``demand`` (or shrink to it); returns error texts of connections that failed."""
        errors: list[str] = []
        with self._lock:
            if self._closed:
                return errors
            want = max(self.min_size, min(self.demand, self.max_size))
            while len(self._conns) > want:
                self._conns.pop().close()
            while len(self._conns) < want:
                try:
                    self._conns.append(self._connect())
                except psycopg.Error as e:
                    errors.append(str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__)
                    break
            alive = []
            for c in self._conns:
                if c.closed or c.broken:
                    c.close()
                    continue
                alive.append(c)
            self._conns = alive
        return errors

    def ping(self) -> bool:
        """Run ``SELECT 1`` on a held connection (``False`` when none works)."""
        with self._lock:
            for c in self._conns:
                try:
                    c.execute("SELECT 1")
                    return True
                except psycopg.Error:
                    continue
        return False

    def close(self) -> None:
        """Close every connection; the pool stays closed."""
        with self._lock:
            self._closed = True
            for c in self._conns:
                c.close()
            self._conns.clear()
