"""``notebooks/30-upgrade.ipynb`` executed headless by ``atlbook run`` against the sandbox.

Aspects: with ``apply: true`` the runbook upgrades Jira under load and its record holds the gates (all
passed), the plan, the steps done, the figures (0 failed requests), the per-phase load stats, the
overhead and a timeline PNG; its offline HTML record shows the plan table, the post-checks and the
timeline as a picture (no widget, no ``%matplotlib``), and its log has the step progress lines.
(Refusals are covered through the Python API in test_upgrade_sandbox.)
"""

from __future__ import annotations

import json
import pathlib
import re

import upgrade_stack as stackbuilder

from atlbook import records, runner

ROOT = pathlib.Path(__file__).resolve().parents[3]


def _run(tmp_path: pathlib.Path, **params: str):
    return runner.run(
        "30-upgrade",
        [ROOT / "parameters" / "sandbox.yaml"],
        list(params.items()),
        apply=True,
        output_root=tmp_path / "records",
        directory=ROOT / "notebooks",
    )


def test_notebook_upgrades_jira_and_records_it(stack, tmp_path) -> None:
    built = stack("jira", 2)
    result = _run(tmp_path, product="jira", target_version=stackbuilder.NEXT["jira"])
    values = records.read(result.record.path)
    assert result.outcome == "succeeded", result.error
    assert values["gates"]["passed"] is True
    assert values["mode"] == "upgrade"
    assert values["figures"]["outcome"] == "upgraded"
    assert values["figures"]["failures"] == 0 and values["figures"]["requests"] > 0
    assert "node-jira-1" in values["steps_done"] and "approve" in values["steps_done"]
    assert values["load"]["failures"] == 0
    assert values["overhead"]["overhead_pct"] is not None
    assert values["timeline_png"]
    assert set(built.versions().values()) == {stackbuilder.NEXT["jira"]}

    page = (result.record.path / "record.html").read_text()
    assert "<b>Plan</b> (built" in page and "node-jira-1" in page  # the plan table
    assert "Post-checks" in page  # shown under the gate after apply: true
    assert page.count("data:image/png;base64,") >= 1  # the timeline figure, self-displayed
    nb = json.loads((result.record.path / "notebook.ipynb").read_text())
    said = "".join(
        "".join(o.get("text", ""))
        for c in nb["cells"]
        for o in c.get("outputs", [])
        if o.get("name") == "stdout"
    )
    assert "Applying: " in said and "on stack 'sandbox'" in said  # the gate's line, headless
    assert re.search(r"\[\d+/\d+\] waiting: partition → 1: jira-1 .*: ", said)  # a node's restart, live
    assert re.search(r"\[\d+/\d+\] done: .*jira-1 RUNNING and ACTIVE on 11\.3\.2", said)
