"""Which faults are active, and on what: the book the simulated products and the feeder consult.

A fault is active with a set of targets; an empty set means "everything it can apply to". A target is
matched against any of the attributes a caller offers (pod name, ``namespace/pod``, product, version,
node name, zone, file-system id), so ``bad-upgrade`` with target ``9.12.4`` and ``pod-oom`` with target
``jira-1`` use the same book.
"""

from __future__ import annotations

import threading

__all__ = ["FaultBook"]


class FaultBook:
    """Thread-safe map fault name → targets."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._active: dict[str, set[str]] = {}

    def set(self, name: str, target: str | None = None) -> None:
        """Activate ``name`` (for ``target``, or for everything)."""
        with self._lock:
            targets = self._active.setdefault(name, set())
            if target:
                targets.add(target)
            else:
                targets.clear()
                targets.add("*")

    def clear(self, name: str, target: str | None = None) -> None:
        """Deactivate ``name`` (one target, or entirely)."""
        with self._lock:
            if target and name in self._active:
                self._active[name].discard(target)
                if not self._active[name]:
                    del self._active[name]
            else:
                self._active.pop(name, None)

    def clear_all(self) -> None:
        """Deactivate every fault."""
        with self._lock:
            self._active.clear()

    def active(self) -> dict[str, list[str]]:
        """Active faults and their targets (``["*"]`` = everything)."""
        with self._lock:
            return {k: sorted(v) for k, v in self._active.items()}

    def applies(self, name: str, *attrs: str | None) -> bool:
        """Whether fault ``name`` is active for something with these attributes."""
        with self._lock:
            targets = self._active.get(name)
            if not targets:
                return False
            if "*" in targets:
                return True
            return any(a is not None and a in targets for a in attrs)

    def targets(self, name: str) -> frozenset[str]:
        """The targets of ``name`` (empty when inactive)."""
        with self._lock:
            return frozenset(self._active.get(name, ()))
