"""The calls ``notebooks/10-provision.ipynb`` makes, one per cell, so the notebook holds no logic.

``make_plan`` (desired → observed → diff), ``plan_table`` / ``gate`` (what the plan shows and what the
confirm widget counts), ``export`` (``export_dir``), ``apply_plan`` (through the ledger, with progress
lines), ``applier`` (the same, as the callable the Apply button runs), ``postcheck_table`` and
``require`` (the post-check table, and failing the run when an applied stack does not pass).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from atlbook import errors
from atlbook import plan as planmod
from atlbook import stack as stackmod
from atlbook.clients.bundle import Clients
from atlbook.provisioning import apply as applymod
from atlbook.provisioning import desired, diff, observe, postchecks
from atlbook.provisioning import export as exportmod

__all__ = [
    "applier",
    "apply_plan",
    "export",
    "gate",
    "make_plan",
    "plan_table",
    "postcheck_table",
    "require",
]


def make_plan(
    clients: Clients, spec: stackmod.StackSpec, *, delete_undesired: bool = False
) -> diff.ProvisionPlan:
    """Desired state of ``spec``, observed state through ``clients``, and the plan between them.

    Read-only. The plan may be blocked (budget, engine, missing VPC): see ``ProvisionPlan.findings``.
    """
    state = desired.build(spec)
    return diff.plan(state, observe.observe(clients, state), delete_undesired=delete_undesired)


def plan_table(pplan: diff.ProvisionPlan, *, everything: bool = False) -> Any:
    """The plan as a pandas DataFrame: changed rows (every row with ``everything``), findings first."""
    import pandas as pd

    rows = [
        {
            "action": f.severity,
            "provider": "",
            "kind": "finding",
            "namespace": "",
            "name": f.code,
            "changes": f.message,
            "note": "",
        }
        for f in pplan.findings
    ]
    rows += [r for r in pplan.rows() if everything or r["action"] not in ("unchanged", "found")]
    if not rows:
        rows = [
            {
                "action": "none",
                "provider": "",
                "kind": "",
                "namespace": "",
                "name": "",
                "changes": f"0 changes ({pplan.counts['unchanged']} unchanged)",
                "note": "",
            }
        ]
    return pd.DataFrame(rows)


def gate(pplan: diff.ProvisionPlan) -> dict[str, Any]:
    """What the confirm widget counts: creates / updates / deletes and the stack."""
    counts = pplan.counts
    return {
        "creates": counts["create"],
        "updates": counts["update"],
        "deletes": counts["delete"],
        "stack": pplan.stack,
        "blocked": pplan.blocked,
    }


def export(pplan: diff.ProvisionPlan, export_dir: str) -> list[str]:
    """Write the Kubernetes objects of the plan to ``export_dir`` (nothing when it is empty)."""
    if not export_dir:
        return []
    return [str(p) for p in exportmod.export_dir(pplan.desired, export_dir, outputs=pplan.outputs)]


def _say(event: planmod.StepEvent) -> None:
    if event.status != "start":
        text = f"[{event.index}/{event.total}] {event.status}: {event.step.description} {event.message}"
        print(text.rstrip(), flush=True)  # noqa: T201 - progress lines are the headless UI


def apply_plan(
    clients: Clients,
    pplan: diff.ProvisionPlan,
    *,
    confirmed: bool = True,
    progress: Callable[[planmod.StepEvent], None] | None = None,
) -> dict[str, Any]:
    """Apply the plan (see :func:`atlbook.provisioning.apply.apply`); the report as a dict for the record.

    Refuses (``PlanError``) a blocked plan. Raises ``ApplyFailed`` at the first failing step.
    """
    report = applymod.apply(clients, pplan, confirmed=confirmed, progress=progress or _say)
    return report.to_dict()


def applier(clients: Clients, pplan: diff.ProvisionPlan) -> Callable[[], dict[str, Any]]:
    """:func:`apply_plan` bound to its arguments: what the JupyterLab Apply button calls."""
    return functools.partial(apply_plan, clients, pplan)


def postcheck_table(clients: Clients, pplan: diff.ProvisionPlan) -> list[dict[str, Any]]:
    """The post-check table (rows of check / subject / ok / detail). Read-only."""
    return postchecks.table(postchecks.run(clients, pplan.desired))


def require(rows: list[dict[str, Any]], applied: bool) -> str:
    """Fail the run (``RunbookFailed``) when the stack was applied and a post-check failed."""
    failed = [f"{r['check']} {r['subject']}: {r['detail']}" for r in rows if not r["ok"]]
    if applied and failed:
        raise errors.RunbookFailed("post-checks failed after apply: " + " | ".join(failed))
    if failed:
        return f"{len(failed)} of {len(rows)} post-checks fail (plan only: nothing was applied)"
    return f"all {len(rows)} post-checks pass"
