"""Confirm gates and progress for runbooks: widgets in JupyterLab, plain lines headless.

First version, deliberately small:

- :func:`confirm_apply` — the gate before a plan changes anything. With ``apply=True`` (the
  parameter, or ``atlbook run --apply``) it proceeds at once and shows no widget, so nothing ever waits
  for a click headless. With ``apply=False`` in JupyterLab it shows an *Apply* button; a click asks
  for confirmation naming the creates / updates / deletes and the stack, and a second click calls
  ``on_confirm``. Headless with ``apply=False`` it says "plan only" and returns ``False``.
- :func:`progress` — wraps an iterable (or counts to ``total``): a bar in JupyterLab, progress
  lines on stdout headless (the papermill log), at most one every ~10 %.

Every widget also emits a **static HTML twin** (a ``text/html`` display updated with the widget's
final state), because nbconvert's HTML loads widget renderers from a CDN and records must read
offline.

Headless means: ``ATLBOOK_HEADLESS=1`` (set by ``atlbook run`` for its kernel) or no IPython kernel at
all. The environment is read when a function is called, never at import.

Not done yet (the JupyterLab issue): parameter panel, plan table with a *Plan* refresh button, Apply
disabled while a plan is stale, live status tables, browser tests.
"""

from __future__ import annotations

import html
import importlib
import os
import sys
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sized
from typing import Any, TypeVar

__all__ = ["HEADLESS_ENV", "Progress", "confirm_apply", "is_headless", "progress"]

HEADLESS_ENV = "ATLBOOK_HEADLESS"
"""Set to ``1`` by the runner for the kernels it starts."""

T = TypeVar("T")


def is_headless() -> bool:
    """True when no one can click: ``ATLBOOK_HEADLESS=1`` or not inside an IPython kernel."""
    if os.environ.get(HEADLESS_ENV) == "1":
        return True
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython is a dependency
        return True
    shell = get_ipython()
    return shell is None or not hasattr(shell, "kernel")


def _ipd() -> Any:
    """IPython.display, imported when first needed (typed as Any: IPython is untyped)."""
    return importlib.import_module("IPython.display")


class _Twin:
    """A ``text/html`` display that mirrors a widget's state, updated in place."""

    def __init__(self, html_text: str) -> None:
        self._id = f"atlbook-twin-{uuid.uuid4().hex}"
        ipd = _ipd()
        ipd.display(ipd.HTML(html_text), display_id=self._id)

    def update(self, html_text: str) -> None:
        ipd = _ipd()
        ipd.update_display(ipd.HTML(html_text), display_id=self._id)


def _counts(plan_summary: Mapping[str, Any]) -> tuple[int, int, int]:
    def n(*keys: str) -> int:
        for k in keys:
            v = plan_summary.get(k)
            if isinstance(v, int):
                return v
        return 0

    return n("creates", "create"), n("updates", "update"), n("deletes", "delete")


def _describe(plan_summary: Mapping[str, Any], stack: str | None) -> str:
    c, u, d = _counts(plan_summary)
    where = stack or str(plan_summary.get("stack") or "the stack")
    return f"{c} create(s), {u} update(s), {d} delete(s) on stack '{where}'"


def confirm_apply(
    plan_summary: Mapping[str, Any],
    apply: bool,
    *,
    stack: str | None = None,
    on_confirm: Callable[[], Any] | None = None,
) -> bool:
    """The gate before a plan is applied. Returns ``True`` when the caller should apply now.

    ``plan_summary`` holds the counts (``creates``/``updates``/``deletes``) and optionally ``stack``.
    ``apply=True`` proceeds without a widget. ``apply=False``: headless returns ``False`` ("plan
    only"); in JupyterLab shows *Apply* → *Confirm* and calls ``on_confirm`` on the confirming click,
    returning ``False`` now (cells do not block waiting for a click). It refuses nothing else: a plan
    with zero changes is still shown, and the button says so.
    """
    what = _describe(plan_summary, stack)
    if apply:
        _say(f"Applying: {what} (apply: true).")
        return True
    if is_headless():
        _say(f"Plan only: {what}. Nothing changed; re-run with apply: true (or --apply) to apply.")
        return False

    import ipywidgets as w

    twin_text = f"<p><b>Apply gate</b>: waiting — {html.escape(what)}. Not applied.</p>"
    button = w.Button(description="Apply", button_style="warning", icon="play")
    confirm = w.Button(description=f"Confirm: {what}", button_style="danger", layout=w.Layout(display="none"))
    cancel = w.Button(description="Cancel", layout=w.Layout(display="none"))
    status = w.HTML(twin_text)
    _ipd().display(w.VBox([w.HBox([button, confirm, cancel]), status]))
    twin = _Twin(twin_text)

    def set_state(text: str) -> None:
        status.value = text
        twin.update(text)

    def ask(_: Any) -> None:
        button.disabled = True
        confirm.layout.display = ""
        cancel.layout.display = ""
        set_state(f"<p><b>Apply gate</b>: confirm to apply {html.escape(what)}.</p>")

    def back(_: Any) -> None:
        button.disabled = False
        confirm.layout.display = "none"
        cancel.layout.display = "none"
        set_state(f"<p><b>Apply gate</b>: cancelled — {html.escape(what)}. Not applied.</p>")

    def go(_: Any) -> None:
        confirm.disabled = cancel.disabled = True
        set_state(f"<p><b>Apply gate</b>: confirmed — applying {html.escape(what)}.</p>")
        try:
            if on_confirm is not None:
                on_confirm()
        except Exception as e:
            set_state(
                f"<p><b>Apply gate</b>: apply failed ({html.escape(type(e).__name__)}); see the output.</p>"
            )
            raise
        set_state(f"<p><b>Apply gate</b>: applied {html.escape(what)}.</p>")

    button.on_click(ask)
    cancel.on_click(back)
    confirm.on_click(go)
    return False


def _say(text: str) -> None:
    """Say it as a plain output line: reads in the papermill log, the notebook and the offline HTML."""
    print(text, flush=True)  # noqa: T201 - progress lines are the headless UI


class Progress(Iterator[T]):
    """Progress over an iterable or up to ``total``: widget bar interactive, lines headless.

    Use as an iterator (``for x in progress(items, "Waiting for pods")``) or by hand with
    :meth:`update` and :meth:`close`. The final state is left as a static HTML twin.
    """

    def __init__(self, iterable: Iterable[T] | None, total: int | None, description: str) -> None:
        self._it = iter(iterable) if iterable is not None else None
        if total is None and isinstance(iterable, Sized):
            total = len(iterable)
        self.total = total
        self.description = description
        self.n = 0
        self._start = time.monotonic()
        self._last_decile = -1
        self._closed = False
        self._headless = is_headless()
        self._bar: Any = None
        self._twin: _Twin | None = None
        if not self._headless:
            import ipywidgets as w

            self._bar = w.IntProgress(value=0, min=0, max=max(total or 1, 1), description=description[:30])
            self._label = w.HTML("")
            _ipd().display(w.HBox([self._bar, self._label]))
            self._twin = _Twin(self._html())

    def _html(self) -> str:
        of = f"/{self.total}" if self.total else ""
        return f"<p><b>{html.escape(self.description)}</b>: {self.n}{of} ({self._elapsed():.1f} s)</p>"

    def _elapsed(self) -> float:
        return time.monotonic() - self._start

    def update(self, n: int = 1) -> None:
        """Advance by ``n`` steps."""
        self.n += n
        if self._bar is not None:
            self._bar.value = min(self.n, self._bar.max)
            self._label.value = self._html()
            return
        if self.total:
            decile = min(10, self.n * 10 // self.total)
            if decile > self._last_decile:
                self._last_decile = decile
                sys.stdout.write(f"{self.description}: {self.n}/{self.total} ({decile * 10} %)\n")
                sys.stdout.flush()
        elif self.n == 1 or self.n % 10 == 0:
            sys.stdout.write(f"{self.description}: {self.n}\n")
            sys.stdout.flush()

    def close(self) -> None:
        """Finish: a last line headless; the final state as the HTML twin in JupyterLab."""
        if self._closed:
            return
        self._closed = True
        if self._twin is not None:
            self._twin.update(self._html())
        else:
            sys.stdout.write(f"{self.description}: done, {self.n} in {self._elapsed():.1f} s\n")
            sys.stdout.flush()

    def __iter__(self) -> Progress[T]:
        return self

    def __next__(self) -> T:
        if self._it is None:
            raise StopIteration
        try:
            item = next(self._it)
        except StopIteration:
            self.close()
            raise
        self.update()
        return item

    def __enter__(self) -> Progress[T]:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def progress(
    iterable: Iterable[T] | None = None, total: int | None = None, description: str = "Progress"
) -> Progress[T]:
    """A :class:`Progress` over ``iterable`` (or a counter to ``total`` driven by ``update``)."""
    return Progress(iterable, total, description)
