"""``notebooks/40-diagnose.ipynb`` executed headless by ``atlbook run`` against the sandbox.

Aspects: the injected index fault is the most likely cause in the record; the timeline is in the
executed notebook as a PNG (the figure shows itself: no ``%matplotlib`` magic, no pyplot) and so in the
offline HTML record, next to the ``timeline_png`` record value.
"""

from __future__ import annotations

import json
import pathlib

from atlbook import records, runner

ROOT = pathlib.Path(__file__).resolve().parents[3]


def test_notebook_ranks_the_fault_and_shows_the_timeline_offline(stack, tmp_path) -> None:
    built = stack()
    built.box.fault("index-corrupt", "jira-0")
    built.first("product.jira-index-drift")
    result = runner.run(
        "40-diagnose",
        [ROOT / "parameters" / "sandbox.yaml"],
        [],
        output_root=tmp_path / "records",
        directory=ROOT / "notebooks",
    )
    assert result.outcome == "succeeded", result.error
    values = records.read(result.record.path)
    assert values["most_likely"]["check"] == "product.jira-index-drift"
    assert values["timeline_png"]
    nb = json.loads((result.record.path / "notebook.ipynb").read_text())
    assert not any("%matplotlib" in "".join(c["source"]) for c in nb["cells"])
    timeline = next(c for c in nb["cells"] if "result.timeline()" in "".join(c["source"]))
    assert any("image/png" in o.get("data", {}) for o in timeline["outputs"])
    assert "data:image/png;base64," in (result.record.path / "record.html").read_text()
