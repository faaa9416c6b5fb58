"""Zero-downtime rolling upgrades of Jira, Confluence and Bitbucket through their ZDU APIs (``30-upgrade``).

Modules (import them as modules: ``from atlbook.upgrade import runbook``):

- :mod:`.model` — options, the :class:`~.model.Facts` of an upgrade, what was observed;
- :mod:`.observe` — reads the stack (Kubernetes, the product through the pod proxy, RDS, ledgers);
- :mod:`.gates` — the preflight gates, pure;
- :mod:`.sequence` — the upgrade, retry and rollback plans (:mod:`atlbook.plan` steps);
- :mod:`.load` — sticky-session load generator and its per-phase stats;
- :mod:`.timeline` — step and node spans, orchestration overhead, the plot;
- :mod:`.runbook` — the notebook's calls: ``prepare`` → ``planner`` (plan table, *Plan*) → ``apply_gate``
  (*Apply* → *Confirm*, or ``apply: true``) → ``UpgradeResult``.

Layering: uses ``capacity``, ``plan``, ``records``, ``widgets``, ``products``, ``clients``, ``errors``;
never ``atlbook.sandbox``. Identity: ``rbac/upgrade-role.yaml``.
"""

from __future__ import annotations

from atlbook.upgrade import gates, load, model, observe, runbook, sequence, timeline

__all__ = ["gates", "load", "model", "observe", "runbook", "sequence", "timeline"]
