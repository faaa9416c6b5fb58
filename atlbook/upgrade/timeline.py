"""The upgrade timeline: when each step ran, each node's restart window, the orchestration overhead, a plot.

:class:`Timeline` is fed by :func:`atlbook.plan.apply`'s progress events (steps) and by the node steps
(each node's window: from its partition being lowered to the node answering RUNNING and listed ACTIVE on
the new version — the pod's own restart-to-RUNNING time as the orchestrator sees it).

Orchestration overhead (:func:`overhead`) is the wall time of the rolling part of the upgrade — from
enabling upgrade mode to the last node ACTIVE on the new version — beyond the sum of the nodes' own
windows: the API calls between nodes, the ledger writes, the polling lag between a node being ready and
the next partition step. Goal: ≤ 5 % of the nodes' own time. The RDS snapshot and the upgrade tasks
after approval are the cloud's and the product's own time and are reported as phases, not as overhead.
"""

from __future__ import annotations

import base64
import dataclasses
import io
import time
from collections.abc import Callable, Sequence
from typing import Any

from atlbook import plan, widgets

__all__ = ["ROLLING_FIRST_STEP", "Span", "Timeline", "overhead", "plot", "png"]

ROLLING_FIRST_STEP = "zdu-start"
"""The rolling part of an upgrade starts with this step."""


@dataclasses.dataclass
class Span:
    """One interval on the timeline (seconds since the timeline started)."""

    name: str
    kind: str
    """``step`` or ``node``."""
    start: float
    end: float | None = None
    status: str = "running"

    @property
    def seconds(self) -> float | None:
        """Its length (``None`` while open)."""
        return None if self.end is None else self.end - self.start


def overhead(rolling_seconds: float, node_seconds: Sequence[float]) -> dict[str, float | None]:
    """``rolling − Σ node windows`` in seconds and as % of Σ node windows (``None`` when nothing rolled)."""
    pods = float(sum(node_seconds))
    extra = max(0.0, rolling_seconds - pods)
    return {
        "rolling_s": round(rolling_seconds, 4),
        "pods_s": round(pods, 4),
        "overhead_s": round(extra, 4),
        "overhead_pct": round(100.0 * extra / pods, 2) if pods > 0 else None,
    }


class Timeline:
    """Spans of steps and node windows, on one monotonic clock."""

    def __init__(self, clock: Callable[[], float] = time.perf_counter) -> None:
        self.clock = clock
        self.t0 = clock()
        self.spans: list[Span] = []
        self.phase_listeners: list[Callable[[str], None]] = []

    def now(self) -> float:
        """Seconds since the timeline started."""
        return self.clock() - self.t0

    def begin(self, name: str, kind: str = "step") -> Span:
        """Open a span."""
        span = Span(name, kind, self.now())
        self.spans.append(span)
        if kind == "step":
            for fn in self.phase_listeners:
                fn(name)
        return span

    def end(self, name: str, status: str = "done", kind: str = "step") -> None:
        """Close the last open span named ``name``."""
        for span in reversed(self.spans):
            if span.name == name and span.kind == kind and span.end is None:
                span.end = self.now()
                span.status = status
                return

    def on_step(self, event: plan.StepEvent) -> None:
        """A :func:`atlbook.plan.apply` progress callback."""
        if event.status == "start":
            self.begin(event.step.id)
        elif event.status == "skipped":
            span = self.begin(event.step.id)
            span.end, span.status = span.start, "skipped"
        else:
            self.end(event.step.id, event.status)

    def nodes(self) -> list[Span]:
        """Closed node windows."""
        return [s for s in self.spans if s.kind == "node" and s.end is not None]

    def overhead(self) -> dict[str, float | None]:
        """:func:`overhead` of this run's rolling part (only what ran in this run)."""
        steps = [s for s in self.spans if s.kind == "step" and s.status != "skipped"]
        node_steps = [s for s in steps if s.name.startswith("node-") and s.end is not None]
        if not node_steps:
            return overhead(0.0, [])
        first = next((s for s in steps if s.name == ROLLING_FIRST_STEP), None)
        start = first.start if first is not None else min(s.start for s in node_steps)
        end = max(s.end for s in node_steps if s.end is not None)
        return overhead(end - start, [s.seconds or 0.0 for s in self.nodes()])

    def rows(self) -> list[dict[str, Any]]:
        """Every span, for a table and the record."""
        return [
            {
                "name": s.name,
                "kind": s.kind,
                "start_s": round(s.start, 4),
                "end_s": None if s.end is None else round(s.end, 4),
                "seconds": None if s.seconds is None else round(s.seconds, 4),
                "status": s.status,
            }
            for s in self.spans
        ]


def plot(timeline: Timeline, samples: Sequence[Any] = ()) -> Any:
    """A matplotlib Figure: steps and node windows as bars, load latency (and failures) over time."""
    fig = widgets.figure(figsize=(11, 5.5), layout="tight")  # shows itself as a PNG; no pyplot state
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=[2, 1.3])
    rows = [s for s in timeline.spans if s.end is not None and s.status != "skipped"]
    names = list(dict.fromkeys(s.name + (" (node)" if s.kind == "node" else "") for s in rows))
    for s in rows:
        label = s.name + (" (node)" if s.kind == "node" else "")
        y = names.index(label)
        color = {"failed": "tab:red", "node": "tab:green"}.get(
            s.status if s.status == "failed" else s.kind, "tab:blue"
        )
        top.broken_barh([(s.start, max(s.seconds or 0.0, 1e-3))], (y - 0.35, 0.7), color=color)
    top.set_yticks(range(len(names)))
    top.set_yticklabels(names, fontsize=7)
    top.invert_yaxis()
    top.set_title("Upgrade timeline: steps (blue), node restart-to-RUNNING windows (green), failures (red)")
    ok = [s for s in samples if getattr(s, "ok", True)]
    bad = [s for s in samples if not getattr(s, "ok", True)]
    offset = 0.0
    if ok:
        bottom.scatter(
            [s.t + offset for s in ok], [s.latency * 1000 for s in ok], s=3, alpha=0.5, label="served"
        )
    if bad:
        bottom.scatter(
            [s.t + offset for s in bad],
            [s.latency * 1000 for s in bad],
            s=12,
            color="tab:red",
            label="failed",
        )
    bottom.set_ylabel("latency (ms)")
    bottom.set_xlabel("seconds since the upgrade started")
    if ok or bad:
        bottom.legend(loc="upper right", fontsize=7)
    return fig


def png(fig: Any) -> str:
    """The figure as a base64 PNG (for the record)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80)
    return base64.b64encode(buf.getvalue()).decode("ascii")
