"""Rank findings into a most-likely cause, and present them: tables per layer and a timeline plot.

**Ranking.** A table of causal rules says which kind of finding explains which other kind, and on what
they must agree (the same pod, the same worker, the same zone, the same product, or nothing more). A
finding explained by no other is a *root*. Roots come first, ordered by the worst severity among what
they explain (transitively), then by how much they explain, then by the check's prior weight; everything
else follows by severity. Two findings that would explain each other keep only the edge from the one
with the higher prior weight. The reasoning of each finding says what it explains and what explains it.

**Presentation.** :func:`findings_table` (pandas), :func:`layer_sections` (one table per layer) and
:func:`timeline` (a matplotlib ``Figure`` aligning Kubernetes events, container restarts, readiness
changes and RDS/EFS metrics over the window). Built with ``matplotlib.figure.Figure`` directly (the
self-displaying one of :func:`atlbook.widgets.figure`): no pyplot state, safe in threads and headless,
and the last value of a cell shows as a PNG without ``%matplotlib inline`` — so the record holds it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from atlbook import widgets
from atlbook.diagnosis.checks import LAYERS, Finding
from atlbook.diagnosis.evidence import Evidence, Severity

if TYPE_CHECKING:
    import pandas
    from matplotlib.figure import Figure

__all__ = ["RULES", "figure_png", "findings_table", "layer_sections", "rank", "timeline"]

_POD_LOSS_SYMPTOMS = (
    "k8s.pod-pending",
    "k8s.statefulset-degraded",
    "k8s.pdb-blocking",
    "k8s.service-no-endpoints",
    "product.cluster-node-missing",
    "product.jira-index-replication-lag",
    "placement.colocated",
    "logs.cache-replication-failure",
    "logs.hazelcast-split-brain",
)
_POD_DOWN_SYMPTOMS = ("product.not-running", "collect.source-failed", "product.cluster-node-missing")
_PRODUCT_DEGRADED = ("k8s.statefulset-degraded", "k8s.pdb-blocking", "k8s.service-no-endpoints")
_DB_SYMPTOMS = (
    "logs.db-pool-timeout",
    "database.pool-saturation",
    "database.waiting-locks",
    "database.long-transactions",
    "product.not-running",
)


def _rules() -> list[tuple[str, str, str]]:
    rules: list[tuple[str, str, str]] = []
    for cause in ("k8s.zone-outage", "k8s.node-not-ready", "aws.nodegroup-health"):
        rules += [(cause, s, "any") for s in _POD_LOSS_SYMPTOMS]
        rules += [(cause, s, "worker") for s in _POD_DOWN_SYMPTOMS]
    rules += [
        ("k8s.zone-outage", "k8s.node-not-ready", "zone"),
        ("k8s.zone-outage", "aws.nodegroup-health", "zone"),
        ("k8s.zone-outage", "product.not-running", "any"),
        ("aws.nodegroup-health", "k8s.node-not-ready", "any"),
        ("k8s.node-not-ready", "k8s.node-pressure", "worker"),
        ("k8s.node-pressure", "k8s.pod-pending", "any"),
        ("k8s.pvc-not-bound", "k8s.pod-pending", "any"),
    ]
    for cause in ("k8s.pod-oomkilled", "k8s.pod-crash-loop", "product.zdu-stuck", "k8s.pod-pending"):
        rules += [(cause, s, "pod") for s in _POD_DOWN_SYMPTOMS]
        rules += [(cause, s, "product") for s in _PRODUCT_DEGRADED]
        rules += [(cause, "product.jira-index-replication-lag", "product")]
    rules += [
        ("k8s.pod-oomkilled", "k8s.pod-crash-loop", "pod"),
        ("k8s.pod-oomkilled", "logs.out-of-memory", "pod"),
        ("logs.out-of-memory", "k8s.pod-crash-loop", "pod"),
        ("logs.out-of-memory", "product.not-running", "pod"),
        ("logs.too-many-open-files", "k8s.pod-crash-loop", "pod"),
        ("logs.too-many-open-files", "product.not-running", "pod"),
        ("product.zdu-stuck", "k8s.pod-crash-loop", "pod"),
        ("product.zdu-stuck", "product.mixed-versions", "product"),
        ("product.zdu-stuck", "logs.cache-replication-failure", "product"),
        ("k8s.pod-pending", "placement.colocated", "product"),
        ("product.not-running", "product.cluster-node-missing", "pod"),
        ("product.not-running", "logs.cache-replication-failure", "product"),
        ("product.jira-index-drift", "logs.index-corruption", "pod"),
        ("product.jira-index-drift", "product.jira-index-replication-lag", "pod"),
        ("product.jira-index-drift", "product.not-running", "pod"),
        ("logs.index-corruption", "product.jira-index-replication-lag", "pod"),
        ("aws.efs-burst-credits", "product.not-running", "any"),
        ("aws.efs-burst-credits", "product.jira-index-replication-lag", "any"),
        ("aws.efs-burst-credits", "logs.index-corruption", "any"),
        ("aws.rds-status", "database.max-connections", "any"),
        ("aws.rds-cpu", "database.long-transactions", "any"),
        ("aws.rds-cpu", "database.waiting-locks", "any"),
        ("logs.hazelcast-split-brain", "product.cluster-node-missing", "product"),
        ("logs.cache-replication-failure", "product.cluster-node-missing", "product"),
        ("network.no-default-deny", "logs.cache-replication-failure", "never"),
    ]
    for cause in (
        "aws.rds-status",
        "database.max-connections",
        "database.pool-saturation",
        "aws.rds-cpu",
        "database.long-transactions",
    ):
        rules += [
            (cause, s, "product" if cause == "database.pool-saturation" else "any") for s in _DB_SYMPTOMS
        ]
    rules += [
        ("database.max-connections", "database.pool-saturation", "any"),
        ("database.max-connections", "aws.rds-cpu", "any"),
        ("database.max-connections", "collect.source-failed", "db-source"),
        ("aws.rds-status", "collect.source-failed", "db-source"),
        ("database.pool-saturation", "aws.rds-cpu", "any"),
    ]
    return [r for r in rules if r[2] != "never" and r[0] != r[1]]


RULES: tuple[tuple[str, str, str], ...] = tuple(_rules())
"""``(cause check, symptom check, what they must share)``: pod, worker, zone, product, any, or db-source
(the symptom is the unreadable database source)."""

_BY_CAUSE: dict[str, list[tuple[str, str]]] = defaultdict(list)
for _cause, _symptom, _rel in RULES:
    _BY_CAUSE[_cause].append((_symptom, _rel))


def _related(cause: Finding, symptom: Finding, relation: str) -> bool:
    if relation == "any":
        return True
    if relation == "pod":
        return bool(set(cause.pods) & set(symptom.pods))
    if relation == "worker":
        return bool(set(cause.workers) & set(symptom.workers)) or bool(set(cause.pods) & set(symptom.pods))
    if relation == "zone":
        return bool(set(cause.zones) & set(symptom.zones))
    if relation == "db-source":
        return symptom.subject == "source/database"
    if relation == "product":
        return cause.product is None or symptom.product is None or cause.product == symptom.product
    return False


def _explains(cause: Finding, symptom: Finding) -> bool:
    return any(
        s == symptom.check and _related(cause, symptom, rel) for s, rel in _BY_CAUSE.get(cause.check, ())
    )


def _closure(start: Finding, edges: dict[str, list[str]]) -> set[str]:
    seen: set[str] = set()
    todo = list(edges.get(start.key, []))
    while todo:
        key = todo.pop()
        if key in seen or key == start.key:
            continue
        seen.add(key)
        todo.extend(edges.get(key, []))
    return seen


def rank(findings: Sequence[Finding], *, product: str | None = None, pod: str | None = None) -> list[Finding]:
    """Fill ``rank``, ``explains``, ``explained_by``, ``impact``, ``in_scope`` and ``reasoning``.

    Returns the findings, most likely cause first. ``product``/``pod`` (the scope) break ties between
    causes of equal impact: a cause about the scoped node or product, or explaining a finding about it,
    comes first.
    """
    by_key = {f.key: f for f in findings}
    for f in findings:
        f.explains, f.explained_by = [], []
    for cause in findings:
        for symptom in findings:
            if cause is symptom or not _explains(cause, symptom):
                continue
            if _explains(symptom, cause) and (symptom.weight, symptom.severity) > (
                cause.weight,
                cause.severity,
            ):
                continue  # mutual: the stronger prior keeps the edge
            cause.explains.append(symptom.key)
            symptom.explained_by.append(cause.key)
    edges = {f.key: list(f.explains) for f in findings}
    reach = {f.key: _closure(f, edges) for f in findings}

    def effective(f: Finding) -> Severity:
        return max([f.severity, *(by_key[k].severity for k in reach[f.key])])

    def own_scope(f: Finding) -> bool:
        if pod:
            return pod in f.pods
        if product:
            return f.product == product
        return True

    def scoped(f: Finding) -> bool:
        return own_scope(f) or any(own_scope(by_key[k]) for k in reach[f.key])

    roots = [f for f in findings if not f.explained_by and effective(f) >= Severity.WARNING]
    roots.sort(key=lambda f: (effective(f), scoped(f), len(reach[f.key]), f.weight, f.severity), reverse=True)
    root_keys = {f.key for f in roots}
    rest = [f for f in findings if f.key not in root_keys]
    rest.sort(key=lambda f: (f.severity, f.weight), reverse=True)
    ordered = roots + rest
    for i, f in enumerate(ordered, start=1):
        f.rank = i
        f.impact = effective(f)
        f.in_scope = scoped(f)
        parts = []
        if f.key in root_keys:
            parts.append("likely cause: nothing else found explains it")
        if f.explains:
            names = ", ".join(by_key[k].summary for k in f.explains[:6])
            more = f" (+{len(f.explains) - 6} more)" if len(f.explains) > 6 else ""
            parts.append(f"explains {len(reach[f.key])} other finding(s): {names}{more}")
        if f.explained_by:
            parts.append("symptom of: " + ", ".join(by_key[k].summary for k in f.explained_by[:3]))
        f.reasoning = "; ".join(parts) or "independent finding"
    return ordered


# --- tables ----------------------------------------------------------------------------------------

_COLUMNS = ["rank", "severity", "layer", "check", "subject", "summary", "remedy", "evidence", "reasoning"]


def _rows(findings: Iterable[Finding]) -> list[dict[str, Any]]:
    return [
        {
            "rank": f.rank,
            "severity": str(f.severity),
            "layer": f.layer,
            "check": f.check,
            "subject": f.subject,
            "summary": f.summary,
            "remedy": f.remedy,
            "evidence": " | ".join(f.evidence),
            "reasoning": f.reasoning,
        }
        for f in findings
    ]


def findings_table(
    findings: Sequence[Finding], *, min_severity: Severity = Severity.INFO
) -> pandas.DataFrame:
    """One row per finding at or above ``min_severity``, in ranked order."""
    import pandas

    return pandas.DataFrame(_rows(f for f in findings if f.severity >= min_severity), columns=_COLUMNS)


def layer_sections(findings: Sequence[Finding]) -> dict[str, pandas.DataFrame]:
    """A table per layer (layers with no finding are left out), worst first inside each."""
    import pandas

    out: dict[str, pandas.DataFrame] = {}
    for layer in LAYERS:
        rows = sorted((f for f in findings if f.layer == layer), key=lambda f: (-f.severity, f.rank))
        if rows:
            out[layer] = pandas.DataFrame(_rows(rows), columns=_COLUMNS)
    return out


# --- timeline ---------------------------------------------------------------------------------------

_GIB = float(1 << 30)


def timeline(evidence: Evidence, findings: Sequence[Finding] = ()) -> Figure:
    """Events, restarts, readiness changes and RDS/EFS metrics over the window, on one time axis."""
    fig: Figure = widgets.figure(figsize=(11, 7.5), layout="constrained")  # shows itself as a PNG
    axes = fig.subplots(4, 1, sharex=True, height_ratios=[2.2, 1, 1, 1])
    ax_k8s, ax_cpu, ax_conn, ax_efs = axes
    window = evidence.window
    focus = {p for f in findings if f.severity >= Severity.WARNING for p in f.pods}
    pods = sorted({p.name for p in evidence.product_pods()} | focus)
    rows = {name: i for i, name in enumerate(pods)}
    nodes = sorted(n.name for n in evidence.nodes if n.ready is not True)
    for name in nodes:
        rows.setdefault(f"node/{name}", len(rows))

    right = [window.end]

    def put(row: str, when: Any, marker: str, color: str, label: str) -> None:
        if when is None or not window.contains(when):
            return
        right.append(when)
        if row not in rows:
            rows[row] = len(rows)
        ax_k8s.scatter([when], [rows[row]], marker=marker, color=color, s=46, label=label, zorder=3)

    for pod in evidence.pods:
        if pod.name not in rows:
            continue
        for c in pod.containers:
            put(pod.name, c.last_finished, "x", "tab:red", f"restart ({c.last_reason or 'exit'})")
        put(
            pod.name,
            pod.ready_since,
            "^" if pod.ready else "v",
            "tab:green" if pod.ready else "tab:orange",
            "became Ready" if pod.ready else "became not Ready",
        )
    for node in evidence.nodes:
        if node.ready is not True:
            put(f"node/{node.name}", node.transition, "s", "black", "node NotReady")
    for event in evidence.events:
        if event.type != "Warning":
            continue
        row = event.name if event.name in rows else (f"node/{event.name}" if event.kind == "Node" else None)
        if row is None:
            continue
        put(row, event.last_seen, "o", "tab:purple", f"event {event.reason}")
    handles, labels = ax_k8s.get_legend_handles_labels()
    unique = dict(zip(labels, handles, strict=False))
    if unique:
        ax_k8s.legend(unique.values(), unique.keys(), loc="upper left", fontsize=7, ncols=3)
    ax_k8s.set_yticks(range(len(rows)), list(rows), fontsize=7)
    ax_k8s.set_ylim(-0.7, max(len(rows), 1) - 0.3)
    ax_k8s.set_title("Kubernetes: restarts, readiness, warning events, lost workers", fontsize=9, loc="left")

    def series(ax: Any, metrics: dict[str, Any], name: str, scale: float, label: str, color: str) -> None:
        s = metrics.get(name)
        if s is not None and s.points:
            ax.plot([t for t, _ in s.points], [v / scale for _, v in s.points], color=color, label=label)
            ax.legend(loc="upper left", fontsize=7)
        else:
            ax.text(0.01, 0.5, f"{label}: no data", transform=ax.transAxes, fontsize=8, color="grey")

    rds_metrics = evidence.rds.metrics if evidence.rds else {}
    series(ax_cpu, rds_metrics, "CPUUtilization", 1.0, "RDS CPU %", "tab:blue")
    ax_cpu.set_ylim(0, 100)
    series(ax_conn, rds_metrics, "DatabaseConnections", 1.0, "RDS connections", "tab:brown")
    if evidence.db is not None:
        ax_conn.axhline(evidence.db.max_connections, color="tab:red", linestyle="--", linewidth=1)
    efs_metrics = evidence.efs[0].metrics if evidence.efs else {}
    series(ax_efs, efs_metrics, "BurstCreditBalance", _GIB, "EFS burst credits (GiB)", "tab:olive")
    for ax in axes:
        ax.set_xlim(window.start, max(right))
        ax.grid(True, alpha=0.3)
    ax_efs.set_xlabel("UTC")
    fig.suptitle(f"{evidence.namespace}: {window.start:%Y-%m-%d %H:%M} – {window.end:%H:%M} UTC", fontsize=10)
    return fig


def figure_png(fig: Figure, *, dpi: int = 90) -> str:
    """``fig`` as a base64 PNG string (JSON-friendly, for ``records.record``)."""
    import base64
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return base64.b64encode(buf.getvalue()).decode("ascii")
