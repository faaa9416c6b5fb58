"""Matplotlib figures of a plan. Each function returns a :class:`matplotlib.figure.Figure` built without
pyplot (no global state, any backend); the notebook displays it, a record can save it.

- :func:`plot_nodes`: per node, stacked CPU / memory / pod-slot requests by application, one column of
  panels per zone, allocatable as the bar outline and the free part hatched as the N+1 reserve;
- :func:`plot_survivability`: heatmap of stranded pods, scenario (node or zone removed) × pod set;
- :func:`plot_cost_vs_bound`: cost of each plan against its lower bound, with the 1.0× and 1.05× lines.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from typing import Any

from matplotlib.figure import Figure

from atlbook.capacity.cluster import ClusterState
from atlbook.capacity.survivability import SurvivabilityReport
from atlbook.errors import ConfigError

__all__ = ["PlanFigure", "plot_cost_vs_bound", "plot_nodes", "plot_survivability"]


class PlanFigure(Figure):
    """A matplotlib Figure that shows itself as PNG in Jupyter (``_repr_png_``), pyplot or not."""

    def _repr_png_(self) -> bytes:
        buf = io.BytesIO()
        self.savefig(buf, format="png", dpi=90)
        return buf.getvalue()


_RES = (("CPU (cores)", "cpu", 1000.0), ("memory (GiB)", "mem", 1024.0), ("pod slots", "pods", 1.0))


def plot_nodes(state: ClusterState, *, title: str = "", max_nodes_per_zone: int = 40) -> Figure:
    """Per-node stacked bars of requests by app, zone facets, N+1 reserve (free allocatable) hatched.

    Large clusters show the first ``max_nodes_per_zone`` nodes of each zone (the title says so).
    Refuses (``ConfigError``) a state without nodes.
    """
    used = state.used_nodes()
    if not used:
        raise ConfigError("no nodes to plot")
    zones = [z for z in state.zones if any(state.nodes[n].zone == z for n in used)]
    per_zone = {z: [n for n in used if state.nodes[n].zone == z] for z in zones}
    cut = any(len(v) > max_nodes_per_zone for v in per_zone.values())
    per_zone = {z: v[:max_nodes_per_zone] for z, v in per_zone.items()}
    shown = sum(len(v) for v in per_zone.values())
    apps = sorted({s.app for s in state.workload.sets})
    colors = {a: f"C{i % 10}" for i, a in enumerate(apps)}
    fig = PlanFigure(
        figsize=(min(30.0, max(6.0, 2.2 * len(zones) + 0.35 * shown)), 7.5), layout="constrained"
    )
    axes = fig.subplots(3, len(zones), squeeze=False, sharey="row")
    sets = state.workload.sets
    for col, z in enumerate(zones):
        nodes = per_zone[z]
        for row, (label, key, scale) in enumerate(_RES):
            ax = axes[row][col]
            for x, n in enumerate(nodes):
                sh = state.nodes[n].shape
                alloc = {"cpu": sh.cpu_m, "mem": sh.memory_mi, "pods": sh.pods}[key] / scale
                bottom = 0.0
                for a in apps:
                    v = 0.0
                    for s, k in state.count[n].items():
                        if sets[s].app == a:
                            v += k * {"cpu": sets[s].cpu_m, "mem": sets[s].memory_mi, "pods": 1}[key]
                    v /= scale
                    if v:
                        ax.bar(x, v, bottom=bottom, color=colors[a], width=0.7)
                        bottom += v
                ax.bar(
                    x,
                    alloc - bottom,
                    bottom=bottom,
                    width=0.7,
                    color="none",
                    hatch="//",
                    edgecolor="0.6",
                    linewidth=0.0,
                )
                ax.bar(x, alloc, width=0.7, fill=False, edgecolor="0.2", linewidth=0.8)
            ax.set_xticks(range(len(nodes)))
            ax.set_xticklabels([state.nodes[n].name.rsplit("/", 1)[-1] for n in nodes], fontsize=7)
            if row == 0:
                ax.set_title(z)
            if col == 0:
                ax.set_ylabel(label)
    handles = [axes[0][0].bar([0], [0], color=colors[a], label=a) for a in apps]
    handles.append(
        axes[0][0].bar([0], [0], color="none", hatch="//", edgecolor="0.6", label="free (N+1 reserve)")
    )
    fig.legend(handles=handles, labels=[*apps, "free (N+1 reserve)"], loc="outside right upper", fontsize=8)
    default = f"{len(used)} × {state.nodes[used[0]].shape.name}: requests per node by app"
    if cut:
        default += f" (first {max_nodes_per_zone} nodes per zone shown)"
    fig.suptitle(title or default)
    return fig


def plot_survivability(report: SurvivabilityReport, *, title: str = "") -> Figure:
    """Heatmap of stranded pods per scenario (rows) and pod set (columns); 0 everywhere = survivable.

    EBS-pinned pods stranded by a zone loss are shown in a separate column ``(pinned)``.
    """
    scen = [*report.nodes, *report.zones]
    if not scen:
        raise ConfigError("no scenarios to plot")
    sets = sorted({k for s in scen for k in s.stranded} | {"(none)"})
    if len(sets) > 1:
        sets.remove("(none)")
    cols = [*sets, "(pinned)"]
    data = [
        [float(s.stranded.get(c, 0)) for c in sets] + [float(sum(s.stranded_pinned.values()))] for s in scen
    ]
    fig = PlanFigure(
        figsize=(max(5.0, 0.7 * len(cols) + 3), max(3.0, 0.28 * len(scen) + 1.5)), layout="constrained"
    )
    ax = fig.subplots()
    im = ax.imshow(data, aspect="auto", cmap="Reds", vmin=0, vmax=max(1.0, max(max(r) for r in data)))
    ax.set_xticks(range(len(cols)))
    ax.set_xticklabels(cols, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(len(scen)))
    ax.set_yticklabels([f"{s.kind}: {s.target}" for s in scen], fontsize=7)
    for i, r in enumerate(data):
        for j, v in enumerate(r):
            if v:
                ax.text(j, i, f"{int(v)}", ha="center", va="center", fontsize=7)
    fig.colorbar(im, ax=ax, label="stranded pods")
    ax.set_title(title or f"N+1: node {report.node_pct:.0f}% · zone {report.zone_pct:.0f}% survivable")
    return fig


def plot_cost_vs_bound(rows: Sequence[Mapping[str, Any]], *, title: str = "") -> Figure:
    """Scatter of ``cost`` against ``bound`` per row (keys ``label``, ``cost``, ``bound``).

    Refuses (``ConfigError``) an empty list or rows missing those keys.
    """
    if not rows:
        raise ConfigError("no rows to plot")
    try:
        pts = [(str(r["label"]), float(r["cost"]), float(r["bound"])) for r in rows]
    except KeyError as e:
        raise ConfigError(f"cost-vs-bound rows need label, cost and bound: missing {e}") from e
    fig = PlanFigure(figsize=(6.5, 5.0), layout="constrained")
    ax = fig.subplots()
    labels = sorted({p[0] for p in pts})
    for i, lab in enumerate(labels):
        xs = [p[2] for p in pts if p[0] == lab]
        ys = [p[1] for p in pts if p[0] == lab]
        ax.scatter(xs, ys, label=lab, color=f"C{i % 10}", s=30)
    hi = max(max(p[1], p[2]) for p in pts) * 1.1
    ax.plot([0, hi], [0, hi], color="0.3", linewidth=0.8, label="= bound")
    ax.plot([0, hi], [0, 1.05 * hi], color="0.6", linestyle="--", linewidth=0.8, label="1.05 × bound")
    ax.set_xlim(0, hi)
    ax.set_ylim(0, hi * 1.1)
    ax.set_xlabel("lower bound ($/h)")
    ax.set_ylabel("plan cost ($/h)")
    ax.legend(fontsize=8)
    ax.set_title(title or "cost vs lower bound")
    return fig
