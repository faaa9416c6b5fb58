"""notebooks/10-provision.ipynb headless (papermill) against the sandbox, asserting on its records.

Covers: the default run (apply: false) shows and records the plan and makes 0 mutating calls; with
apply: true and export_dir it builds the stack, records the apply report, every post-check passes and
one YAML file per Kubernetes object is exported.
"""

from __future__ import annotations

import pathlib

import papermill as pm

from atlbook import records

ROOT = pathlib.Path(__file__).resolve().parents[3]
NOTEBOOK = ROOT / "notebooks" / "10-provision.ipynb"


def _run(tmp_path: pathlib.Path, name: str, **parameters):
    out = tmp_path / f"{name}.ipynb"
    pm.execute_notebook(str(NOTEBOOK), str(out), parameters=parameters, cwd=str(ROOT), progress_bar=False)
    return records.read(out)


def test_notebook_plan_only_then_apply(clients, sandbox_reset, tmp_path):
    mark = sandbox_reset.audit.mark()
    plan_only = _run(tmp_path, "plan")
    assert plan_only["plan"]["counts"]["create"] > 80 and plan_only["apply"] is None
    assert plan_only["postchecks_passed"] is False
    assert sandbox_reset.audit.mutations(mark) == []

    export = tmp_path / "export"
    applied = _run(tmp_path, "apply", apply=True, export_dir=str(export))
    assert applied["apply"]["counts"] == {"done": applied["plan"]["mutations"]}
    assert applied["postchecks_passed"] is True, [r for r in applied["postchecks"] if not r["ok"]]
    assert len(applied["exported"]) == len(list(export.glob("*.yaml"))) > 50
