"""``notebooks/50-index-recovery.ipynb`` executed headless by ``atlbook run`` against the sandbox.

Aspects: with ``apply: false`` it plans only (its log says so with the counts and the stack; nothing
recovered); with ``apply: true`` the corrupt node is recovered (record: the plan, the recovery applied,
no bad node after), its log has the step progress lines with what the restart waited for, and its
offline HTML record shows the plan table and every index after the recovery — no widget needed.
"""

from __future__ import annotations

import json
import pathlib
import re

from atlbook import records, runner

ROOT = pathlib.Path(__file__).resolve().parents[3]


def _run(tmp_path: pathlib.Path, apply: bool) -> runner.RunResult:
    return runner.run(
        "50-index-recovery",
        [ROOT / "parameters" / "sandbox.yaml"],
        [],
        apply=apply,
        output_root=tmp_path / "records",
        directory=ROOT / "notebooks",
    )


def _stdout(result: runner.RunResult) -> str:
    nb = json.loads((result.record.path / "notebook.ipynb").read_text())
    return "".join(
        "".join(o.get("text", ""))
        for c in nb["cells"]
        for o in c.get("outputs", [])
        if o.get("name") == "stdout"
    )


def test_notebook_plans_then_recovers_the_corrupt_index(stack, tmp_path) -> None:
    built = stack()
    built.box.fault("index-corrupt", "jira-0")
    built.first("product.jira-index-drift")

    planned = _run(tmp_path, apply=False)
    assert planned.outcome == "succeeded", planned.error
    values = records.read(planned.record.path)
    assert values["recovery"] is None and values["bad_after"] == ["jira-0"]
    assert "Plan only: 0 create(s), 1 update(s), 1 delete(s) on stack 'sandbox'" in _stdout(planned)

    applied = _run(tmp_path, apply=True)
    assert applied.outcome == "succeeded", applied.error
    values = records.read(applied.record.path)
    assert [s["id"] for s in values["plan"]["steps"]] == [
        "healthy-node",
        "snapshot",
        "restart-jira-0",
        "verify-jira-0",
    ]
    assert values["recovery"]["applied"] is True and values["bad_after"] == []
    said = _stdout(applied)
    assert re.search(r"\[3/4\] waiting: restart jira-0 .* jira-0 to come back RUNNING: ", said)
    assert re.search(r"\[3/4\] done: restart jira-0", said)
    page = (applied.record.path / "record.html").read_text()
    assert "<b>Plan</b> (built" in page and "restart-jira-0" in page
    assert "Every Jira index after the recovery" in page
