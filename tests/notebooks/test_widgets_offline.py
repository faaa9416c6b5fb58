"""Widgets in a kernel that is not headless (plain papermill, as JupyterLab would run it).

Aspects covered:
- ``widgets.progress`` and ``widgets.confirm_apply(apply=False)`` show widgets and never block a
  cell (the notebook completes without any click);
- every widget leaves a static ``text/html`` twin with its final state, so the HTML render shows it
  offline: no widget view and no CDN script in ``records.render_html``;
- the apply gate says what it would do (creates / updates / deletes and the stack) and reports
  ``applied: false`` through ``records``.
"""

from __future__ import annotations

import re
from pathlib import Path

import papermill

from atlbook import records, widgets

ECHO = Path(__file__).resolve().parents[1] / "data" / "notebooks" / "91-echo.ipynb"


def test_widgets_have_static_twins_and_render_offline(monkeypatch) -> None:
    monkeypatch.delenv(widgets.HEADLESS_ENV, raising=False)
    nb = papermill.execute_notebook(
        str(ECHO), None, parameters={"stack": "x"}, progress_bar=False, kernel_name="python3"
    )
    outputs = [o for c in nb.cells for o in c.get("outputs", [])]
    views = [o for o in outputs if "application/vnd.jupyter.widget-view+json" in o.get("data", {})]
    twins = [o["data"]["text/html"] for o in outputs if "text/html" in o.get("data", {})]
    assert len(views) == 2  # the progress bar and the apply gate
    assert any("Counting</b>: 3/3" in t for t in twins)
    assert any("Apply gate" in t and "2 create(s), 1 update(s), 0 delete(s)" in t for t in twins)
    assert records.read_notebook(nb)["applied"] is False

    page = records.render_html(nb)
    assert "Counting" in page and "Apply gate" in page
    assert "widget-view" not in page
    assert not re.search(r"<script[^>]*\bsrc=[\"']https?://", page)
