"""The check contract: :class:`Check` (catalogue entry) and :class:`Finding` (what a check reports).

A check is a pure function ``Evidence -> list[Finding]`` registered with :func:`check`. Each carries
an id (``layer.name``), a layer, a title, its severity rule in words, the remedy (naming the runbook
to run) and a prior ``weight`` (0–100): how likely a finding of this kind is a root cause rather than
a symptom. The ranking in :mod:`atlbook.diagnosis.report` uses the weight and the causal rules.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from atlbook.diagnosis.evidence import Evidence, Severity

__all__ = ["LAYERS", "REGISTRY", "Check", "CheckFn", "Finding", "check"]

LAYERS: tuple[str, ...] = (
    "aws",
    "kubernetes",
    "placement",
    "network",
    "product",
    "database",
    "logs",
    "collection",
)
"""Layers in report order: the platform first, the symptoms in logs last."""


@dataclass
class Finding:
    """One thing found wrong (or worth knowing), with the evidence that shows it."""

    check: str
    layer: str
    severity: Severity
    title: str
    subject: str
    """The object(s) it is about, e.g. ``pod/jira-1``, ``node/ip-10-0-1-5``, ``efs/fs-123``."""
    summary: str
    evidence: list[str] = field(default_factory=list)
    """Object names, metric values and redacted log lines that show it."""
    remedy: str = ""
    product: str | None = None
    pods: tuple[str, ...] = ()
    workers: tuple[str, ...] = ()
    zones: tuple[str, ...] = ()
    weight: int = 0
    rank: int = 0
    """1 = the most likely cause; filled in by the ranking."""
    explains: list[str] = field(default_factory=list)
    """Keys of the findings this one explains (ranking)."""
    explained_by: list[str] = field(default_factory=list)
    impact: Severity = Severity.INFO
    """The worst severity among this finding and everything it explains (ranking)."""
    in_scope: bool = True
    """About the scoped node/product, or explaining something that is (ranking)."""
    reasoning: str = ""

    @property
    def key(self) -> str:
        """Unique within a diagnosis: ``check@subject``."""
        return f"{self.check}@{self.subject}"

    def to_dict(self) -> dict[str, object]:
        """A JSON-friendly view (for records)."""
        return {
            "rank": self.rank,
            "check": self.check,
            "layer": self.layer,
            "severity": str(self.severity),
            "impact": str(self.impact),
            "in_scope": self.in_scope,
            "title": self.title,
            "subject": self.subject,
            "summary": self.summary,
            "evidence": list(self.evidence),
            "remedy": self.remedy,
            "product": self.product,
            "pods": list(self.pods),
            "explains": list(self.explains),
            "explained_by": list(self.explained_by),
            "reasoning": self.reasoning,
        }


CheckFn = Callable[[Evidence], Iterable[Finding]]


@dataclass(frozen=True)
class Check:
    """A catalogue entry."""

    id: str
    layer: str
    title: str
    severity_rule: str
    remedy: str
    weight: int
    fn: CheckFn

    def run(self, evidence: Evidence) -> list[Finding]:
        """The findings of this check over ``evidence`` (id, layer, remedy and weight filled in)."""
        out = []
        for finding in self.fn(evidence):
            finding.check = self.id
            finding.layer = self.layer
            finding.weight = self.weight
            if not finding.remedy:
                finding.remedy = self.remedy
            out.append(finding)
        return out

    def new(
        self,
        severity: Severity,
        subject: str,
        summary: str,
        evidence: Iterable[str] = (),
        **kw: object,
    ) -> Finding:
        """A finding of this check (helper for the check functions)."""
        return Finding(
            check=self.id,
            layer=self.layer,
            severity=severity,
            title=self.title,
            subject=subject,
            summary=summary,
            evidence=list(evidence),
            **kw,  # type: ignore[arg-type]
        )


REGISTRY: dict[str, Check] = {}
"""Every registered check by id, in registration order."""


def check(
    id: str,
    *,
    layer: str,
    title: str,
    severity: str,
    remedy: str,
    weight: int,
) -> Callable[[Callable[[Check, Evidence], Iterable[Finding]]], Check]:
    """Register ``fn(check, evidence)`` as a catalogue entry and return the :class:`Check`."""
    if layer not in LAYERS:
        raise ValueError(f"unknown layer {layer!r}")

    def decorate(fn: Callable[[Check, Evidence], Iterable[Finding]]) -> Check:
        holder: list[Check] = []

        def bound(evidence: Evidence) -> Iterable[Finding]:
            return fn(holder[0], evidence)

        entry = Check(
            id=id, layer=layer, title=title, severity_rule=severity, remedy=remedy, weight=weight, fn=bound
        )
        holder.append(entry)
        if id in REGISTRY:
            raise ValueError(f"check {id!r} registered twice")
        REGISTRY[id] = entry
        return entry

    return decorate
