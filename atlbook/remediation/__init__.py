"""Remediation runbooks' logic: plans that fix what a diagnosis found (``50-index-recovery``, …).

Each module builds an :class:`atlbook.plan.Plan` (plan → confirm → apply, resumable through the stack's
ledger). Layering: independent of :mod:`atlbook.diagnosis` (a remedy is named by a finding, not imported
by it); uses ``plan``, ``products``, ``clients``, ``errors``.
"""

from __future__ import annotations

from atlbook.remediation import index_recovery

__all__ = ["index_recovery"]
