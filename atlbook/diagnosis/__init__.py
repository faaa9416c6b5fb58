"""Cross-layer incident diagnosis for Atlassian DC on EKS (runbook ``40-diagnose``).

::

    from atlbook import clients, diagnosis, parameters
    spec = parameters.load_stack("sandbox")
    scope = diagnosis.scope.scope(alert_file="page.json")        # or scope.manual("jira", "jira-1", 60)
    result = diagnosis.diagnose(clients.connect(spec.target), spec, scope)
    result.most_likely, result.table(), result.timeline()

The parts: :mod:`.scope` (alert payload or hand-given product/node/window), :mod:`.collect` (evidence,
one LIST per kind per namespace, logs only of pods in trouble, product nodes through the pod proxy, AWS,
the database), :mod:`.checks` (the catalogue: pure functions over the evidence), :mod:`.report`
(ranking into a most-likely cause, tables, timeline plot). :func:`catalogue` lists the checks (the
``atlbook checks`` command, see :mod:`.cli`).

**Read-only.** A diagnosis makes no mutating call: Kubernetes LIST/GET, ``pods/log`` and ``pods/proxy``
GETs, AWS describe/list/get, SQL SELECTs. The identity needs no more than ``rbac/diagnose-role.yaml``
(``get/list/watch`` on the kinds read, ``get`` on ``pods/log`` and ``pods/proxy``; ``nodes`` cluster-wide).

Refuses nothing at run time: every source that cannot be read is a finding of its own.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from atlbook.diagnosis import checks, evidence, report, scope
from atlbook.diagnosis.checks import Check, Finding
from atlbook.diagnosis.evidence import Evidence, Severity
from atlbook.diagnosis.scope import Scope

if TYPE_CHECKING:
    import pandas
    from matplotlib.figure import Figure

__all__ = [
    "Check",
    "Diagnosis",
    "Evidence",
    "Finding",
    "Scope",
    "Severity",
    "analyse",
    "catalogue",
    "checks",
    "diagnose",
    "evidence",
    "report",
    "scope",
]


@dataclass
class Diagnosis:
    """The outcome of one diagnosis: ranked findings, the evidence they cite, the calls it took."""

    scope: Scope
    evidence: Evidence
    findings: list[Finding] = field(default_factory=list)
    """Ranked: the most likely cause first, then the rest by severity."""
    seconds: float = 0.0

    @property
    def most_likely(self) -> Finding | None:
        """The most likely cause (``None`` when nothing reaches warning)."""
        causes = self.causes
        return causes[0] if causes else None

    @property
    def causes(self) -> list[Finding]:
        """Every root finding (explained by no other) of warning or above, in rank order."""
        return [f for f in self.findings if not f.explained_by and f.impact >= Severity.WARNING]

    def at_least(self, severity: Severity) -> list[Finding]:
        """Findings of ``severity`` or worse, in rank order."""
        return [f for f in self.findings if f.severity >= severity]

    @property
    def healthy(self) -> bool:
        """True when no finding reaches warning."""
        return not self.at_least(Severity.WARNING)

    @property
    def api_calls(self) -> dict[str, int]:
        """Calls made per kind."""
        return dict(self.evidence.api_calls)

    def table(self, min_severity: Severity = Severity.INFO) -> pandas.DataFrame:
        """The findings as a pandas table (ranked)."""
        return report.findings_table(self.findings, min_severity=min_severity)

    def sections(self) -> dict[str, pandas.DataFrame]:
        """One table per layer."""
        return report.layer_sections(self.findings)

    def timeline(self) -> Figure:
        """The timeline plot (matplotlib Figure)."""
        return report.timeline(self.evidence, self.findings)

    def timeline_png(self) -> str:
        """The timeline plot as a base64 PNG (for the record)."""
        return report.figure_png(self.timeline())

    def summary(self) -> dict[str, Any]:
        """A JSON-friendly summary for the record."""
        top = self.most_likely
        return {
            "scope": self.scope.to_dict(),
            "healthy": self.healthy,
            "most_likely": top.to_dict() if top else None,
            "causes": [f.key for f in self.causes],
            "findings": [f.to_dict() for f in self.findings],
            "counts": {str(s): len([f for f in self.findings if f.severity == s]) for s in Severity},
            "api_calls": self.api_calls,
            "source_errors": [e.source for e in self.evidence.source_errors],
            "evidence": {
                "namespace": self.evidence.namespace,
                "pods": len(self.evidence.pods),
                "workers": len(self.evidence.nodes),
                "product_nodes_asked": sorted(self.evidence.product_nodes),
                "logs_read": sorted(self.evidence.logs),
                "database": self.evidence.db is not None,
                "rds": self.evidence.rds.identifier if self.evidence.rds else None,
                "efs": [fs.file_system_id for fs in self.evidence.efs],
            },
            "seconds": round(self.seconds, 3),
        }

    def explain(self) -> str:
        """A few lines of text: the most likely cause and why, then the other causes."""
        if self.healthy:
            return "No finding of warning or above: the stack looks healthy."
        lines = []
        for f in self.causes[:3]:
            lines.append(f"#{f.rank} [{f.severity}] {f.summary} — {f.reasoning}. Remedy: {f.remedy}")
        return "\n".join(lines)


def analyse(ev: Evidence, sc: Scope | None = None, *, seconds: float = 0.0) -> Diagnosis:
    """Run the catalogue over already-collected evidence and rank the findings (pure; no I/O)."""
    sc = sc or Scope(window=ev.window)
    findings = report.rank(checks.run_checks(ev), product=sc.product, pod=sc.pod)
    return Diagnosis(scope=sc, evidence=ev, findings=findings, seconds=seconds)


def diagnose(clients: Any, spec: Any, sc: Scope, *, options: Any = None) -> Diagnosis:
    """Collect evidence from the stack ``spec`` through ``clients`` within ``sc``, check it and rank it.

    ``clients`` is an :class:`atlbook.clients.Clients`; ``spec`` an :class:`atlbook.stack.StackSpec`;
    ``options`` a :class:`atlbook.diagnosis.collect.CollectOptions`. Read-only; never raises for a source
    that cannot be read (it becomes a finding).
    """
    from atlbook.diagnosis import collect

    started = time.monotonic()
    ev = collect.collect(clients, spec, sc, options=options)
    return analyse(ev, sc, seconds=time.monotonic() - started)


def catalogue() -> list[Check]:
    """Every check: id, layer, title, severity rule, remedy (see :mod:`atlbook.diagnosis.checks`)."""
    return checks.catalogue()
