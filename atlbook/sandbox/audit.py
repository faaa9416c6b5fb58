"""The sandbox's request audit log: every mutating call, Kubernetes and AWS, with verb, path and caller.

Tests use it to prove that a dry run changed nothing (``audit.mutations(since=mark)`` is empty) and that
an apply made exactly the calls it should. Reads (GET/HEAD/LIST/WATCH, AWS ``Describe*``/``List*``/
``Get*``) are not recorded. The sandbox's own bookkeeping calls (the CloudWatch feeder) are tagged with
the caller :data:`SANDBOX_CALLER` and left out.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["SANDBOX_CALLER", "AuditEntry", "AuditLog", "is_mutating_aws_action", "is_mutating_http_verb"]

SANDBOX_CALLER = "atlbook-sandbox"
"""Caller name (and dummy access key id) of calls the sandbox makes to itself; never audited."""

_READ_PREFIXES = (
    "Describe",
    "List",
    "Get",
    "Head",
    "Lookup",
    "Search",
    "Batch_Get",
    "Select",
    "Scan",
    "Query",
)


def is_mutating_http_verb(verb: str) -> bool:
    """Whether an HTTP method (or Kubernetes verb) changes state."""
    return verb.upper() in {"POST", "PUT", "PATCH", "DELETE", "CREATE", "UPDATE", "DELETECOLLECTION"}


def is_mutating_aws_action(action: str) -> bool:
    """Whether an AWS API action name (``CreateCluster``, ``DescribeAddon`` …) changes state."""
    return not action.startswith(_READ_PREFIXES)


@dataclass(frozen=True)
class AuditEntry:
    """One mutating call."""

    seq: int
    """Position in the log (monotonic; use it as a mark)."""
    source: str
    """``"k8s"`` or ``"aws"``."""
    verb: str
    """HTTP method (Kubernetes) or ``service:Action`` (AWS)."""
    path: str
    """Request path (with query for Kubernetes)."""
    caller: str
    """Kubernetes user name, or the AWS access key id."""
    status: int | None = None
    """Response status when known."""
    wall_time: float = field(default_factory=time.time)
    """Wall-clock time of the call."""

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able copy."""
        return asdict(self)


class AuditLog:
    """Thread-safe append-only list of :class:`AuditEntry`; ``clear()`` on reset."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: list[AuditEntry] = []
        self._seq = 0

    def record(self, source: str, verb: str, path: str, caller: str, status: int | None = None) -> None:
        """Append one entry (callers filter to mutating calls first)."""
        if caller == SANDBOX_CALLER:
            return
        with self._lock:
            self._seq += 1
            self._entries.append(AuditEntry(self._seq, source, verb, path, caller, status))

    def mark(self) -> int:
        """The sequence number of the last entry (0 if none): pass it to :meth:`mutations` as ``since``."""
        with self._lock:
            return self._seq

    def mutations(self, since: int = 0, source: str | None = None) -> list[AuditEntry]:
        """Entries after ``since``, optionally only from ``source`` (``"k8s"``/``"aws"``)."""
        with self._lock:
            return [e for e in self._entries if e.seq > since and (source is None or e.source == source)]

    def clear(self) -> None:
        """Forget every entry (sequence numbers keep counting)."""
        with self._lock:
            self._entries.clear()

    def extend(self, entries: Iterable[AuditEntry]) -> None:
        """Append entries recorded elsewhere (kept for symmetry with tests)."""
        with self._lock:
            for e in entries:
                self._seq += 1
                self._entries.append(
                    AuditEntry(self._seq, e.source, e.verb, e.path, e.caller, e.status, e.wall_time)
                )
