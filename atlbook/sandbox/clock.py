"""The simulated clock every sandbox component shares.

Simulated time runs ``factor`` times faster than wall time, so a StatefulSet rollout that takes
minutes on a real cluster takes seconds in the sandbox. Components never call ``time.sleep`` with
simulated seconds themselves: they call :meth:`SimClock.sleep` or :meth:`SimClock.wait`, which
convert to wall time. :meth:`SimClock.advance` jumps simulated time forward and wakes every waiter
(useful to expire a toleration or a back-off without waiting).
"""

from __future__ import annotations

import datetime as _dt
import threading
import time
from collections.abc import Callable

__all__ = ["SimClock"]


class SimClock:
    """Simulated time: ``factor`` simulated seconds pass per wall second; can also jump forward."""

    def __init__(self, factor: float = 1.0, start: _dt.datetime | None = None) -> None:
        """Start the clock now (or at ``start``, an aware UTC datetime); refuses ``factor <= 0``."""
        if factor <= 0:
            raise ValueError(f"clock factor must be > 0, got {factor!r}")
        self.factor = float(factor)
        self._wall0 = time.monotonic()
        self._epoch0 = (start or _dt.datetime.now(_dt.UTC)).timestamp()
        self._offset = 0.0
        self._cond = threading.Condition()
        self._generation = 0

    def monotonic(self) -> float:
        """Simulated seconds since the clock started (never goes backwards)."""
        return (time.monotonic() - self._wall0) * self.factor + self._offset

    def time(self) -> float:
        """Simulated POSIX time in seconds."""
        return self._epoch0 + self.monotonic()

    def now(self) -> _dt.datetime:
        """Simulated current time as an aware UTC datetime."""
        return _dt.datetime.fromtimestamp(self.time(), _dt.UTC)

    def wall_seconds(self, sim_seconds: float) -> float:
        """Wall seconds that ``sim_seconds`` of simulated time take (negative → 0)."""
        return max(0.0, sim_seconds) / self.factor

    def sleep(self, sim_seconds: float) -> None:
        """Sleep ``sim_seconds`` of simulated time (wall time / factor); :meth:`advance` cuts it short."""
        self.wait(sim_seconds)

    def wait(self, sim_seconds: float, until: Callable[[], bool] | None = None) -> bool:
        """Wait up to ``sim_seconds`` of simulated time, or until ``until()`` is true after a notify.

        Returns ``True`` when woken by :meth:`notify`/:meth:`advance` (or ``until`` became true),
        ``False`` on timeout. Controllers use it as their loop delay.
        """
        deadline = self.monotonic() + max(0.0, sim_seconds)
        with self._cond:
            gen = self._generation
            while True:
                if until is not None and until():
                    return True
                remaining = deadline - self.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(remaining / self.factor)
                if self._generation != gen:
                    if until is None or until():
                        return True
                    gen = self._generation

    def notify(self) -> None:
        """Wake every :meth:`wait`/:meth:`sleep` in progress (they re-check their condition)."""
        with self._cond:
            self._generation += 1
            self._cond.notify_all()

    def advance(self, sim_seconds: float) -> None:
        """Jump simulated time forward by ``sim_seconds``; refuses negative values."""
        if sim_seconds < 0:
            raise ValueError("the simulated clock cannot go backwards")
        with self._cond:
            self._offset += sim_seconds
            self._generation += 1
            self._cond.notify_all()
