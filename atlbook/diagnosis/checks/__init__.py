"""The checks catalogue: every check is a pure function over an :class:`~atlbook.diagnosis.evidence.Evidence`.

Split by layer: :mod:`.kubernetes` (pods, workers, zones, placement, PDBs), :mod:`.product` (``/status``,
cluster list, ZDU, Jira index), :mod:`.platform` (database, RDS, EFS, ingress, NetworkPolicies),
:mod:`.logs` (known log signatures, unreadable sources). Each check has an id, a layer, a severity rule,
the evidence it cites and a remedy naming the runbook to run. :func:`run_checks` never raises because of
one check: a check that fails becomes a ``collect.check-failed`` finding of its own.
"""

from __future__ import annotations

from atlbook.diagnosis.checks import kubernetes, logs, platform, product
from atlbook.diagnosis.checks._base import LAYERS, REGISTRY, Check, Finding, check
from atlbook.diagnosis.evidence import Evidence, Severity

__all__ = [
    "LAYERS",
    "REGISTRY",
    "Check",
    "Finding",
    "catalogue",
    "check",
    "kubernetes",
    "logs",
    "platform",
    "product",
    "run_checks",
]


def catalogue() -> list[Check]:
    """Every check, ordered by layer then id."""
    order = {layer: i for i, layer in enumerate(LAYERS)}
    return sorted(REGISTRY.values(), key=lambda c: (order[c.layer], c.id))


def run_checks(evidence: Evidence, only: list[str] | None = None) -> list[Finding]:
    """Run the catalogue (or the ids in ``only``) over ``evidence``; findings in catalogue order."""
    findings: list[Finding] = []
    for entry in catalogue():
        if only is not None and entry.id not in only:
            continue
        try:
            findings.extend(entry.run(evidence))
        except Exception as e:  # noqa: BLE001 - one broken check must not hide the others
            findings.append(
                Finding(
                    check="collect.check-failed",
                    layer="collection",
                    severity=Severity.WARNING,
                    title="A check failed to run",
                    subject=f"check/{entry.id}",
                    summary=f"check {entry.id} raised {type(e).__name__}",
                    evidence=[f"{entry.id}: {type(e).__name__}: {str(e)[:200]}"],
                    remedy="Report this as a bug in atlbook.diagnosis (the other checks ran).",
                )
            )
    return findings
