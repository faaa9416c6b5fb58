"""A progress bar for :func:`atlbook.capacity.recommend`: the callable its ``on_progress`` takes.

The planner itself only calls a function with :class:`~atlbook.capacity.plan.PlanProgress` reports; this
module turns them into :func:`atlbook.widgets.progress` — a bar and a live status table in JupyterLab,
progress lines headless (the papermill log). Each phase owns a share of the bar (heuristics, exact
solves, mixed types, bounds); the status table has one row per phase with the step and the cheapest
plan so far.
"""

from __future__ import annotations

import threading
from types import TracebackType
from typing import Any

from atlbook import widgets
from atlbook.capacity.plan import PlanProgress

__all__ = ["PHASE_SHARE", "PlanProgressBar", "plan_progress"]

PHASE_SHARE = {
    "heuristic": (0, 30),
    "exact": (30, 85),
    "mixed": (85, 92),
    "bounds": (92, 99),
    "done": (100, 100),
}
"""Percent range of the bar each phase fills."""


class PlanProgressBar:
    """Callable for ``recommend(on_progress=...)`` that drives a :func:`atlbook.widgets.progress` bar.

    Safe to call from CP-SAT's solver thread. Use as a context manager (closes the bar) or call
    :meth:`close`.
    """

    def __init__(self, description: str = "Capacity plan") -> None:
        """Open a bar of 100 steps (percent) named ``description``."""
        self._bar: widgets.Progress[Any] = widgets.progress(total=100, description=description)
        self._lock = threading.Lock()
        self._pct = 0

    def __call__(self, report: PlanProgress) -> None:
        """Advance to the report's share of the bar and update its phase row.

        Refuses (``ValueError``) an unknown phase.
        """
        if report.phase not in PHASE_SHARE:
            raise ValueError(f"unknown planning phase {report.phase!r}")
        lo, hi = PHASE_SHARE[report.phase]
        frac = report.step / report.steps if report.steps else 1.0
        pct = min(hi, lo + int((hi - lo) * frac))
        best = "" if report.best_cost is None else f"${report.best_cost:.2f}/h"
        with self._lock:
            if pct > self._pct:
                self._bar.update(pct - self._pct)
                self._pct = pct
            self._bar.set_row(report.phase, step=f"{report.step}/{report.steps}", on=report.detail, best=best)

    def close(self) -> None:
        """Fill and close the bar."""
        with self._lock:
            if self._pct < 100:
                self._bar.update(100 - self._pct)
                self._pct = 100
            self._bar.close()

    def __enter__(self) -> PlanProgressBar:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def plan_progress(description: str = "Capacity plan") -> PlanProgressBar:
    """A :class:`PlanProgressBar` to pass as ``recommend(..., on_progress=...)``."""
    return PlanProgressBar(description)
