"""Driving JupyterLab 4 with Playwright: open a notebook, Run All, wait for the kernel (tooling.md recipe)."""

from __future__ import annotations

import json
import re
import time
import urllib.request
from typing import Any

INDICATOR = ".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook-ExecutionIndicator"
"""The notebook toolbar's execution indicator; ``data-status`` is ``idle`` / ``busy``."""


def shutdown_sessions(lab: Any) -> None:
    """Stop every kernel session of the server: each test starts from a fresh kernel."""
    with urllib.request.urlopen(lab.url("api/sessions"), timeout=10) as r:  # noqa: S310 - loopback
        sessions = json.load(r)
    for s in sessions:
        req = urllib.request.Request(lab.url(f"api/sessions/{s['id']}"), method="DELETE")
        urllib.request.urlopen(req, timeout=30).close()  # noqa: S310 - loopback


def accept_dialogs(page: Any) -> None:
    """Accept any dialog JupyterLab put up (a stray "Select Kernel" would block a run)."""
    for button in page.locator(".jp-Dialog .jp-mod-accept").all():
        if button.is_visible():
            button.click()


def open_notebook(page: Any, lab: Any, name: str) -> None:
    """Open ``name`` alone (the workspace is reset) and wait until its kernel is idle."""
    page.goto(f"http://127.0.0.1:{lab.port}/lab/tree/{name}?reset&token={lab.token}")
    page.wait_for_selector(".jp-NotebookPanel .jp-Notebook .jp-Cell", timeout=90_000)
    accept_dialogs(page)
    # the indicator says "idle" before any kernel exists: wait for the kernel itself to be connected
    page.wait_for_function(
        "() => /\\(ipykernel\\) \\| Idle/.test("
        "(document.querySelector('#jp-main-statusbar')?.innerText || '').replace(/\\s*\\n\\s*/g, ' | '))",
        timeout=90_000,
    )
    wait_idle(page, 90_000)


def wait_idle(page: Any, timeout: float = 120_000) -> None:
    """Wait until the kernel of the notebook in view is idle."""
    page.wait_for_selector(f"{INDICATOR}[data-status='idle']", timeout=timeout)


def run_all(page: Any) -> None:
    """Run ▸ Run All Cells."""
    accept_dialogs(page)
    page.click(".lm-MenuBar-itemLabel:text-is('Run')")
    page.click(".lm-Menu-itemLabel:text-is('Run All Cells')")


ERRORS = ".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']"


def cell_errors(page: Any) -> list[str]:
    """Tracebacks shown in the notebook."""
    texts = [e.inner_text() for e in page.locator(ERRORS).all()]
    return [t for t in texts if "Traceback" in t or "Error" in t]


def run_all_and_wait(page: Any, until: str, timeout: float = 120_000) -> Any:
    """Run All, wait for ``until`` (a selector inside the notebook), then for the kernel to be idle.

    Fails at once, with the traceback, when a cell raises on the way.
    """
    run_all(page)
    found = page.locator(until).first
    deadline = time.monotonic() + timeout / 1000
    while not found.is_visible():
        errors = cell_errors(page)
        assert not errors, errors[0][-3000:]
        assert time.monotonic() < deadline, f"{until} did not appear in {timeout / 1000:.0f} s"
        page.wait_for_timeout(250)
    wait_idle(page, timeout)
    errors = cell_errors(page)
    assert not errors, errors[0][-3000:]
    return found


def scroll_to(locator: Any, attempts: int = 5) -> None:
    """Scroll ``locator`` into view, again if a widget re-render replaced it under the call."""
    for attempt in range(attempts):
        try:
            locator.scroll_into_view_if_needed(timeout=10_000)
            return
        except Exception as e:  # playwright Error: "not attached to the DOM" while re-rendered
            if "not attached" not in str(e) or attempt == attempts - 1:
                raise
            locator.page.wait_for_timeout(200)


def with_parameters(lab: Any, name: str, copy: str, **parameters: Any) -> str:
    """Write ``copy`` next to ``name`` in the lab's root, its parameters injected as papermill does.

    What ``atlbook run -p`` gives a kernel, for JupyterLab (which has no ``-p``): an
    ``injected-parameters`` cell after the ``parameters`` cell. Returns ``copy``.
    """
    import nbformat
    from papermill.iorw import load_notebook_node
    from papermill.parameterize import parameterize_notebook

    nb = load_notebook_node(str(lab.root / name))
    nbformat.write(parameterize_notebook(nb, parameters), lab.root / copy)
    return copy


COUNTS = re.compile(r"\d+ create\(s\), \d+ update\(s\), \d+ delete\(s\) on stack 'sandbox'")
"""What the confirmation must name: the creates / updates / deletes and the stack."""


def apply_and_confirm(page: Any, gate: Any, timeout: float = 180_000) -> Any:
    """Click *Apply* in ``gate``, check the question names the counts and the stack, *Confirm*, and
    wait for the table shown after the apply (e.g. the post-checks) and an idle kernel; returns it."""
    from playwright.sync_api import expect

    apply = gate.locator("button:has-text('Apply')")
    expect(apply).to_be_enabled()
    apply.click()
    confirm = gate.locator("button:has-text('Confirm:')")
    confirm.wait_for(state="visible")
    question = confirm.inner_text()
    assert COUNTS.search(question), question
    confirm.click()
    after = gate.locator(".atlbook-after table")
    after.wait_for(state="visible", timeout=timeout)
    wait_idle(page)
    expect(gate).to_contain_text("applied")
    return after
