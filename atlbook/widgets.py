"""The JupyterLab face of a runbook: parameter panel, plan / apply, progress — plain output headless.

- :func:`parameter_panel` — the values in force (the stack and the runbook's options), where each came
  from (default / file / override / injected), editable: every edit is re-validated with
  :func:`atlbook.parameters.resolve`, so the operator sees the schema's own error messages. A secret is
  never shown: only its reference (``env:…``). A valid edit bumps :attr:`ParameterPanel.revision`,
  marks every plan built before it stale, and (in JupyterLab) sets the notebook's variables of the same
  names, so re-running the cells below the panel uses the edited values. An invalid edit changes
  nothing.
- :func:`plan_apply` — the plan table with a *Plan* button (re-runs the callable that builds the plan)
  and :meth:`PlanApply.apply_gate`: an *Apply* button that asks for confirmation naming the creates /
  updates / deletes and the stack, then runs the apply with a progress bar and a live status table, and
  shows what ``after`` returns (e.g. the post-checks). *Apply* is disabled while the plan is stale
  (parameters edited since it was built) or blocked.
- :func:`confirm_apply` — the bare gate (counts only, no plan table) for runbooks that build their
  plan themselves.
- :func:`progress` — wraps an iterable (or counts to ``total``): a bar and a live status table in
  JupyterLab, progress lines on stdout headless (the papermill log), at most one every ~10 %;
  :func:`step_reporter` draws plan-step events (and a step's ``waiting`` reasons) on one;
  :class:`StepRelay` turns a step's wait polls into those ``waiting`` events.
- :func:`figure` — a matplotlib ``Figure`` that displays itself as a PNG (no ``%matplotlib`` magic), so
  the executed notebook and its offline HTML hold the picture.

Headless — ``ATLBOOK_HEADLESS=1`` (set by ``atlbook run`` for its kernel) or no IPython kernel — no
widget is created and nothing ever waits for a click: ``apply=True`` applies at once, ``apply=False``
says "plan only" (papermill #400, #723). In a kernel that is not headless (JupyterLab, or plain
papermill), buttons are shown and the cell returns at once; a click runs later, in the kernel.

Records read offline: every widget is displayed as *one* output carrying both the widget view and a
``text/html`` twin of its state, updated in place when its state settles. JupyterLab shows the widget;
nbconvert (whose widget renderer comes from a CDN, see :func:`atlbook.records.render_html`) shows the
twin. The environment is read when a function is called, never at import.

What this refuses: :func:`parameter_panel` raises the :class:`~atlbook.errors.ParameterError` of the
parameters as given (an invalid *edit* is shown, not raised); :meth:`PlanApply.apply_gate` with
``apply=True`` lets ``run`` refuse a blocked plan (``PlanError``) and refuses (``PlanError``) a stale one.
"""

from __future__ import annotations

import dataclasses
import functools
import html
import importlib
import inspect
import io
import json
import logging
import os
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence, Sized
from pathlib import Path
from typing import Any, Generic, TypeVar

from atlbook import errors
from atlbook import parameters as params_mod
from atlbook import stack as stackmod

__all__ = [
    "FIGURE_DPI",
    "HEADLESS_ENV",
    "ONGOING",
    "PROVENANCE_ENV",
    "ParameterPanel",
    "PlanApply",
    "Progress",
    "StepRelay",
    "WaitingEvent",
    "confirm_apply",
    "figure",
    "gate_counts",
    "is_headless",
    "parameter_panel",
    "plan_apply",
    "progress",
    "step_reporter",
]

ONGOING = ("start", "running", "waiting")
"""Progress event statuses of a step still under way (they do not advance a bar)."""

HEADLESS_ENV = "ATLBOOK_HEADLESS"
"""Set to ``1`` by the runner for the kernels it starts."""

WIDGET_VIEW_MIME = "application/vnd.jupyter.widget-view+json"

T = TypeVar("T")
P = TypeVar("P")

log = logging.getLogger(__name__)


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


def _w() -> Any:
    """ipywidgets, imported only when a widget is built (never headless)."""
    return importlib.import_module("ipywidgets")


def _say(text: str) -> None:
    """Say it as a plain output line: reads in the papermill log, the notebook and the offline HTML."""
    print(text, flush=True)  # noqa: T201 - progress lines are the headless UI


def _plain(html_text: str) -> str:
    """A rough text/plain of an HTML twin (tags dropped)."""
    import re

    text = re.sub(r"<(br|/p|/tr|/h\d|/summary)>", "\n", html_text)
    text = re.sub(r"<[^>]+>", " ", text)
    text = re.sub(r"[ \t]+", " ", html.unescape(text))
    return "\n".join(line.strip() for line in text.splitlines() if line.strip())[:4000]


class _View:
    """One output holding a widget view (may be ``None``) and its ``text/html`` twin, updated in place."""

    def __init__(self, widget: Any, html_text: str) -> None:
        self._id = f"atlbook-{uuid.uuid4().hex}"
        self._widget = widget
        self.html = html_text
        _ipd().display(self._bundle(html_text), raw=True, display_id=self._id)

    def _bundle(self, html_text: str) -> dict[str, Any]:
        bundle: dict[str, Any] = {"text/plain": _plain(html_text), "text/html": html_text}
        if self._widget is not None:
            bundle[WIDGET_VIEW_MIME] = {
                "version_major": 2,
                "version_minor": 0,
                "model_id": self._widget.model_id,
            }
        return bundle

    def update(self, html_text: str) -> None:
        """Replace the twin (and re-show the widget) when the state settled; no-op when unchanged."""
        if html_text == self.html:
            return
        self.html = html_text
        _ipd().update_display(self._bundle(html_text), raw=True, display_id=self._id)


def _table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str] | None = None, *, css: str = "") -> str:
    """An escaped HTML table of ``rows`` (columns: the keys of the first row unless given)."""
    if not rows:
        return "<p><i>(no rows)</i></p>"
    cols = list(columns or list(rows[0]))
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in cols)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(_cell(r.get(c)))}</td>" for c in cols) + "</tr>" for r in rows
    )
    cls = f' class="{html.escape(css)}"' if css else ""
    return f"<table{cls}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, dict | list):
        return json.dumps(value, default=str)
    return str(value)


def _as_html(value: Any, css: str = "") -> str:
    """HTML for anything a runbook call returns: a DataFrame, a Plan, rows (list of dicts), or text."""
    if value is None:
        return ""
    to_html = getattr(value, "to_html", None)
    if callable(to_html):
        try:
            return str(to_html(escape=True, border=0))
        except TypeError:
            return str(to_html())
    repr_html = getattr(value, "_repr_html_", None)
    if callable(repr_html):
        return str(repr_html())
    if isinstance(value, list) and all(isinstance(r, Mapping) for r in value):
        return _table(value, css=css)
    if isinstance(value, Mapping):
        return _table([{"key": k, "value": v} for k, v in value.items()], css=css)
    return f"<pre>{html.escape(str(value))}</pre>"


# --- the apply gate --------------------------------------------------------------------------------


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

    ``plan_summary`` holds the counts (``creates``/``updates``/``deletes``), optionally ``stack`` and
    ``blocked`` (a non-empty value disables *Apply*). ``apply=True`` proceeds without a widget.
    ``apply=False``: headless returns ``False`` ("plan only"); in JupyterLab shows *Apply* → *Confirm* and
    calls ``on_confirm`` on the confirming click, returning ``False`` now (cells never block waiting for a
    click). A plan with zero changes is still shown, and the button says so.
    """
    what = _describe(plan_summary, stack)
    if apply:
        _say(f"Applying: {what} (apply: true).")
        return True
    if is_headless():
        _say(f"Plan only: {what}. Nothing changed; re-run with apply: true (or --apply) to apply.")
        return False

    w = _w()
    blocked = plan_summary.get("blocked")
    state = f"waiting — {html.escape(what)}. Not applied."
    if blocked:
        state = f"blocked — {html.escape(what)}. Not applied: the plan is blocked."
    button = w.Button(description="Apply", button_style="warning", icon="play", disabled=bool(blocked))
    confirm = w.Button(
        description=f"Confirm: {what}", button_style="danger", layout=w.Layout(display="none", width="auto")
    )
    cancel = w.Button(description="Cancel", layout=w.Layout(display="none"))
    status = w.HTML(f"<p><b>Apply gate</b>: {state}</p>")
    out = w.Output()  # what on_confirm prints or displays (a click's output has no cell of its own)
    box = w.VBox([w.HBox([button, confirm, cancel]), status, out])
    box.add_class("atlbook-apply-gate")
    view = _View(box, status.value)

    def set_state(text: str, *, settle: bool = True) -> None:
        status.value = f"<p><b>Apply gate</b>: {text}</p>"
        if settle:
            view.update(status.value)

    def ask(_: Any) -> None:
        button.disabled = True
        confirm.layout.display = ""
        cancel.layout.display = ""
        set_state(f"confirm to apply {html.escape(what)}.", settle=False)

    def back(_: Any) -> None:
        button.disabled = False
        confirm.layout.display = "none"
        cancel.layout.display = "none"
        set_state(f"cancelled — {html.escape(what)}. Not applied.")

    def go(_: Any) -> None:
        confirm.disabled = cancel.disabled = True
        set_state(f"confirmed — applying {html.escape(what)}.", settle=False)
        try:
            if on_confirm is not None:
                with out:
                    on_confirm()
        except Exception as e:
            log.exception("apply failed")
            set_state(f"apply failed ({html.escape(type(e).__name__)}: {html.escape(str(e)[:500])}).")
            return
        set_state(f"applied {html.escape(what)}.")

    button.on_click(ask)
    cancel.on_click(back)
    confirm.on_click(go)
    return False


# --- progress --------------------------------------------------------------------------------------


class Progress(Iterator[T]):
    """Progress over an iterable or up to ``total``: bar + live status table interactive, lines headless.

    Use as an iterator (``for x in progress(items, "Waiting for pods")``) or by hand with
    :meth:`update`, :meth:`set_row` (one row of the live status table, e.g. per pod or per step) and
    :meth:`close`. The final state is left as the static HTML twin.
    """

    def __init__(self, iterable: Iterable[T] | None, total: int | None, description: str) -> None:
        self._it = iter(iterable) if iterable is not None else None
        if total is None and isinstance(iterable, Sized):
            total = len(iterable)
        self.total = total
        self.description = description
        self.n = 0
        self.rows: dict[str, dict[str, Any]] = {}
        self._start = time.monotonic()
        self._last_decile = -1
        self._closed = False
        self._headless = is_headless()
        self._bar: Any = None
        self._view: _View | None = None
        if not self._headless:
            w = _w()
            self._bar = w.IntProgress(value=0, min=0, max=max(total or 1, 1), description=description[:30])
            self._label = w.HTML(self._head())
            self._status = w.HTML("")
            box = w.VBox([w.HBox([self._bar, self._label]), self._status])
            box.add_class("atlbook-progress")
            self._view = _View(box, self._html())

    def _head(self) -> str:
        of = f"/{self.total}" if self.total else ""
        return f"<b>{html.escape(self.description)}</b>: {self.n}{of} ({self._elapsed():.1f} s)"

    def _html(self) -> str:
        done = " — done" if self._closed else ""
        table = _table(list(self.rows.values()), css="atlbook-status") if self.rows else ""
        return f"<p>{self._head()}{done}</p>{table}"

    def _elapsed(self) -> float:
        return time.monotonic() - self._start

    def set_total(self, total: int) -> None:
        """Set (or change) the number of steps."""
        self.total = total
        if self._bar is not None:
            self._bar.max = max(total, 1)

    def set_row(self, key: str, **fields: Any) -> None:
        """Add or update the status table's row ``key`` (e.g. ``set_row("jira-1", status="Ready")``).

        Headless, a line is printed when the row's fields change.
        """
        row = self.rows.setdefault(key, {"item": key})
        changed = any(row.get(k) != v for k, v in fields.items())
        row.update(fields)
        if self._bar is not None:
            self._status.value = _table(list(self.rows.values()), css="atlbook-status")
        elif changed:
            shown = ", ".join(f"{k}={_cell(v)}" for k, v in fields.items())
            _say(f"{self.description}: {key} — {shown}")

    def update(self, n: int = 1) -> None:
        """Advance by ``n`` steps."""
        self.n += n
        if self._bar is not None:
            self._bar.value = min(self.n, self._bar.max)
            self._label.value = self._head()
            return
        if self.total:
            decile = min(10, self.n * 10 // self.total)
            if decile > self._last_decile:
                self._last_decile = decile
                _say(f"{self.description}: {self.n}/{self.total} ({decile * 10} %)")
        elif self.n == 1 or self.n % 10 == 0:
            _say(f"{self.description}: {self.n}")

    def close(self) -> None:
        """Finish: a last line headless; the final state as the HTML twin in JupyterLab."""
        if self._closed:
            return
        self._closed = True
        if self._view is not None:
            self._label.value = self._head()
            self._view.update(self._html())
        else:
            _say(f"{self.description}: done, {self.n} in {self._elapsed():.1f} s")

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


def step_reporter(bar: Progress[Any]) -> Callable[[Any], None]:
    """A ``progress`` callback for plan steps, drawn on ``bar``: one status-table row per step.

    Takes events with ``index``, ``total``, ``step``, ``status``, ``message`` (e.g.
    :class:`atlbook.plan.StepEvent`; a ``waiting`` event carries what a step waits for now). The bar
    advances on finished steps only (statuses in :data:`ONGOING` do not). Headless: one line per event
    but a step's start (the papermill log).
    """

    def report(event: Any) -> None:
        total = getattr(event, "total", None)
        if isinstance(total, int) and bar.total != total:
            bar.set_total(total)
        step = getattr(event, "step", None)
        key = str(getattr(step, "id", step))
        status = str(getattr(event, "status", ""))
        message = str(getattr(event, "message", "") or "")
        description = str(getattr(step, "description", "") or "")
        index = getattr(event, "index", None)
        if bar._bar is None and status != "start":
            _say(f"[{index}/{total}] {status}: {description or key} {message}".rstrip())
        elif bar._bar is not None:
            shown = "running" if status == "start" else status
            bar.set_row(key, step=index, description=description, status=shown, message=message[:200])
        if status not in ONGOING and isinstance(index, int):
            bar.update(max(0, index - bar.n))

    return report


@dataclasses.dataclass(frozen=True)
class WaitingEvent:
    """A progress event while step ``index`` of ``total`` waits: ``message`` says for what, why not yet."""

    index: int
    total: int
    step: Any
    status: str
    message: str


class StepRelay:
    """Relays a plan's step events to ``tell``, and a step's wait polls as ``waiting`` events.

    Pass :meth:`step` as :func:`atlbook.plan.apply`'s ``progress`` and :meth:`wait` to whatever polls
    (``wait(what, reason)`` after each poll). A poll is relayed only while a step runs and only when its
    text changed, so a long wait is a handful of rows / lines, not one per poll. ``tell=None``: silent.
    """

    def __init__(self, tell: Callable[[Any], None] | None) -> None:
        self.tell = tell
        self._current: Any = None
        self._last = ""

    def step(self, event: Any) -> None:
        """A step event (``start`` opens the step's waits, anything else closes them)."""
        self._current = event if getattr(event, "status", "") == "start" else None
        self._last = ""
        if self.tell is not None:
            self.tell(event)

    def wait(self, what: str, reason: str) -> None:
        """A poll of the running step: waiting for ``what``, not yet because ``reason``."""
        text = f"{what}: {reason}"
        now = self._current
        if self.tell is None or now is None or text == self._last:
            return
        self._last = text
        self.tell(WaitingEvent(now.index, now.total, now.step, "waiting", text))


# --- figures ---------------------------------------------------------------------------------------


@functools.cache
def _png_figure_class() -> type[Any]:
    """A ``matplotlib.figure.Figure`` that shows itself as a PNG (defined when first needed)."""
    from matplotlib.figure import Figure

    class PngFigure(Figure):
        """Displayed by IPython as ``image/png`` without any ``%matplotlib`` magic or pyplot state."""

        def _repr_png_(self) -> bytes:
            buf = io.BytesIO()
            self.savefig(buf, format="png", dpi=FIGURE_DPI)
            return buf.getvalue()

    return PngFigure


FIGURE_DPI = 90
"""Resolution of a self-displaying figure's PNG."""


def figure(**kwargs: Any) -> Any:
    """A matplotlib ``Figure`` (``Figure(**kwargs)``) that displays itself as a PNG in any kernel.

    The returned figure is the last value of a cell → its PNG is the output, so the executed notebook
    (and its offline HTML) holds the picture; no pyplot, no global backend, nothing left open. Refuses
    what ``Figure`` refuses (``AttributeError`` naming an unknown keyword).
    """
    return _png_figure_class()(**kwargs)


# --- the parameter panel ---------------------------------------------------------------------------

_INJECTED = "injected"
_OVERRIDE = "override"


def _source_label(source: str) -> str:
    """default / override / file (path) / injected, from a provenance value of :mod:`atlbook.parameters`."""
    if source in ("default", "notebook default"):
        return "default"
    if source == "-p":
        return _OVERRIDE
    if source.startswith(_INJECTED) or source.startswith("stack (injected"):
        return _INJECTED
    parts = []
    for piece in source.split(" + "):
        path = Path(piece)
        if path.suffix in (".yaml", ".yml"):
            if path.parent.name == "parameters":
                shown = f"parameters/{path.name}"
            else:
                try:
                    shown = str(path.resolve().relative_to(Path.cwd().resolve()))
                except ValueError:
                    shown = str(path)
            parts.append(f"file {shown}")
        else:
            parts.append(piece)
    return " + ".join(parts)


def _is_secret(key: str, value: Any) -> bool:
    last = key.rsplit(".", 1)[-1]
    if params_mod.is_secret_key(last):
        return True
    if isinstance(value, str) and value.split(":", 1)[0] in stackmod.SECRET_REF_KINDS:
        return True
    return False


def _shown(key: str, value: Any) -> str:
    """The value as the panel shows it: a secret only as its reference, never a value."""
    if _is_secret(key, value):
        if isinstance(value, str):
            try:
                stackmod.parse_secret_ref(value)
            except ValueError:
                return "•••• (hidden: not a reference)"
            return value
        return "" if value is None or isinstance(value, bool) else "•••• (hidden)"
    if isinstance(value, str):
        return value
    return json.dumps(value, default=str)


def _leaves(value: Any, prefix: str) -> Iterator[tuple[str, Any]]:
    if isinstance(value, dict) and value:
        for k, v in value.items():
            yield from _leaves(v, f"{prefix}.{k}")
    elif isinstance(value, list) and value and any(isinstance(v, dict) for v in value):
        for i, v in enumerate(value):
            yield from _leaves(v, f"{prefix}.{i}")
    else:
        yield prefix, value


PROVENANCE_ENV = "ATLBOOK_PARAMETER_PROVENANCE"
"""A JSON mapping dotted key → source (``Resolved.provenance``) a runner may give its kernel."""


def _provenance_from_env() -> dict[str, str] | None:
    """The provenance a runner passed in :data:`PROVENANCE_ENV`, if any (ignored when malformed)."""
    text = os.environ.get(PROVENANCE_ENV)
    if not text:
        return None
    try:
        data = json.loads(text)
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    return {str(k): str(v) for k, v in data.items()}


class ParameterPanel:
    """The parameters in force, where each came from, editable and re-validated (see the module doc).

    ``values``: every parameter (``values["stack"]`` the validated stack mapping); ``spec``: the typed
    stack; ``options``: the runbook options; ``provenance``: dotted key → source label; ``edits``: the
    ``(key, text)`` edits in force; ``error``: the last edit's error message, or ``None``;
    ``revision``: bumped by every valid edit (plans remember it to know they are stale).
    """

    def __init__(
        self,
        stack: str | Mapping[str, Any] | stackmod.StackSpec,
        options: Mapping[str, Any],
        provenance: Mapping[str, str] | None = None,
        *,
        base_dir: Path | None = None,
        namespace: dict[str, Any] | None = None,
        display: bool = True,
    ) -> None:
        if isinstance(stack, stackmod.StackSpec):
            stack = stack.model_dump(mode="json")
        if provenance is None:
            provenance = _provenance_from_env()
        self._declared: dict[str, Any] = {"stack": stack, **dict(options)}
        self._option_names = list(options)
        self._stack_injected = isinstance(stack, Mapping)
        self._given = dict(provenance or {})
        self._base_dir = base_dir
        self._namespace = namespace
        self.edits: list[tuple[str, str]] = []
        self.error: str | None = None
        self.revision = 0
        self._listeners: list[Callable[[ParameterPanel], None]] = []
        self._resolved = self._resolve([])
        self._widgets: dict[str, Any] = {}
        self._view: _View | None = None
        global _LATEST_PANEL
        _LATEST_PANEL = self
        if display:
            self._show()

    # state
    def _resolve(self, edits: Sequence[tuple[str, str]]) -> params_mod.Resolved:
        return params_mod.resolve(
            self._declared, [], list(edits), known_options=list(self._declared), base_dir=self._base_dir
        )

    @property
    def values(self) -> dict[str, Any]:
        """Every parameter in force (the stack as its validated mapping)."""
        return dict(self._resolved.values)

    @property
    def spec(self) -> stackmod.StackSpec:
        """The typed stack in force."""
        return self._resolved.stack

    @property
    def stack(self) -> dict[str, Any]:
        """The stack in force as a mapping (what ``parameters.load_stack`` accepts)."""
        value: dict[str, Any] = self._resolved.values["stack"]
        return value

    @property
    def options(self) -> dict[str, Any]:
        """The runbook options in force."""
        return {k: self._resolved.values.get(k) for k in self._option_names}

    @property
    def provenance(self) -> dict[str, str]:
        """Dotted key → where its value came from (default, file …, override, injected)."""
        out: dict[str, str] = {}
        edited = {k for k, _ in self.edits}
        for key, source in self._resolved.provenance.items():
            if source == "-p" or key in edited:
                out[key] = _OVERRIDE
            elif key in self._given:
                out[key] = _source_label(self._given[key])
            elif key.startswith("stack.") and self._stack_injected and source == "default":
                out[key] = _INJECTED
            else:
                out[key] = _source_label(source)
        return out

    def rows(self) -> list[dict[str, str]]:
        """One row per value: ``key``, ``value`` (secrets as references only), ``source``."""
        prov = self.provenance
        rows = []
        for name in self._option_names:
            value = self._resolved.values.get(name)
            rows.append({"key": name, "value": _shown(name, value), "source": prov.get(name, "default")})
        for key, value in _leaves(self.stack, "stack"):
            source = prov.get(key) or self._source_above(key, prov)
            rows.append({"key": key, "value": _shown(key, value), "source": source})
        return rows

    @staticmethod
    def _source_above(key: str, prov: Mapping[str, str]) -> str:
        below = sorted({v for k, v in prov.items() if k.startswith(key + ".")})
        if below:
            return " + ".join(below)
        while "." in key:
            key = key.rsplit(".", 1)[0]
            if key in prov:
                return prov[key]
        return "default"

    def keys(self) -> list[str]:
        """The keys an edit may name: the options and every leaf of the stack."""
        return [r["key"] for r in self.rows()]

    def on_change(self, listener: Callable[[ParameterPanel], None]) -> None:
        """Call ``listener(panel)`` after every valid edit (plans use it to mark themselves stale)."""
        self._listeners.append(listener)

    def set(self, key: str, text: str) -> bool:
        """Edit ``key`` to ``text`` (read as a YAML scalar, like ``-p KEY VALUE``) and re-validate.

        Returns ``True`` when valid (the edit is in force); otherwise ``False`` with :attr:`error` set to
        the schema's message — the values in force are unchanged. Never raises for bad input.
        """
        key = key.strip()
        if not key:
            self.error = "name a parameter to edit (e.g. stack.products.jira.replicas)"
            self._render(settle=False)
            return False
        edits = [e for e in self.edits if e[0] != key] + [(key, text)]
        try:
            resolved = self._resolve(edits)
        except errors.ParameterError as e:
            text = str(e)
            self.error = "panel edit: " + text[4:] if text.startswith("-p: ") else text
            self._render(settle=False)
            return False
        self._resolved = resolved
        self.edits = edits
        self.error = None
        self.revision += 1
        self._publish()
        self._render()
        for listener in list(self._listeners):
            listener(self)
        return True

    def reset(self) -> None:
        """Drop every edit: back to the parameters as given."""
        if self.edits:
            self.edits = []
            self._resolved = self._resolve([])
            self.revision += 1
            self._publish()
            for listener in list(self._listeners):
                listener(self)
        self.error = None
        self._render()

    def _publish(self) -> None:
        """Set the notebook's variables (``stack`` and the options) to the values in force."""
        ns = self._namespace
        if ns is None and not is_headless():
            from IPython import get_ipython

            shell = get_ipython()
            ns = getattr(shell, "user_ns", None)
        if ns is None:
            return
        ns["stack"] = self.stack
        for name, value in self.options.items():
            ns[name] = value

    # rendering
    def to_html(self) -> str:
        """The panel's state as static HTML: options, the stack's values with their sources, the error."""
        rows = self.rows()
        options = [r for r in rows if not r["key"].startswith("stack.")]
        stack_rows = [r for r in rows if r["key"].startswith("stack.")]
        edited = {k for k, _ in self.edits}
        name = self.spec.name
        sources = sorted({r["source"] for r in stack_rows})
        parts = [f"<p><b>Parameters</b> — stack <code>{html.escape(name)}</code>"]
        if self.edits:
            parts.append(
                f"; {len(self.edits)} edit(s) in force: "
                + ", ".join(f"<code>{html.escape(k)}</code>" for k in sorted(edited))
                + " (re-run the cells below to use them)"
            )
        parts.append("</p>")
        if self.error:
            parts.append(f'<p class="atlbook-param-error"><b>Invalid:</b> {html.escape(self.error)}</p>')
        if options:
            parts.append(_table(options, css="atlbook-params"))
        parts.append(
            f"<details><summary>stack: {len(stack_rows)} values ({html.escape(', '.join(sources))})"
            f"</summary>{_table(stack_rows, css='atlbook-params')}</details>"
        )
        return "".join(parts)

    def _show(self) -> None:
        if is_headless():
            _ipd().display(_ipd().HTML(self.to_html()))
            return
        w = _w()
        key = w.Combobox(
            placeholder="parameter, e.g. stack.products.jira.replicas",
            options=self.keys(),
            ensure_option=False,
            layout=w.Layout(width="28em"),
        )
        key.add_class("atlbook-param-key")
        value = w.Text(placeholder="new value (YAML, like -p)", continuous_update=False)
        value.add_class("atlbook-param-value")
        set_button = w.Button(description="Set", button_style="primary")
        reset_button = w.Button(description="Reset")
        body = w.HTML(self.to_html())
        body.add_class("atlbook-param-table")
        box = w.VBox([body, w.HBox([key, value, set_button, reset_button])])
        box.add_class("atlbook-parameter-panel")
        self._widgets = {"key": key, "value": value, "body": body}
        busy = {"clearing": False}

        def submit(*_: Any) -> None:
            if busy["clearing"]:
                return
            self.set(str(key.value), str(value.value))
            if _is_secret(str(key.value), value.value):
                busy["clearing"] = True  # never keep a typed secret in the widget (or its saved state)
                value.value = ""
                busy["clearing"] = False

        def on_value(change: Mapping[str, Any]) -> None:
            if change.get("name") == "value":
                submit()

        value.observe(on_value, names="value")
        set_button.on_click(submit)
        reset_button.on_click(lambda _: self.reset())
        self._view = _View(box, self.to_html())

    def _render(self, *, settle: bool = True) -> None:
        """Show the state in the widget; ``settle``: also in the static twin (the values in force).

        An invalid edit does not settle: its error is shown in the widget only, so correcting it does
        not re-render the panel under the operator's cursor, and the twin keeps the values in force.
        """
        text = self.to_html()
        body = self._widgets.get("body")
        if body is not None:
            body.value = text
            self._widgets["key"].options = self.keys()
        if self._view is not None and settle:
            self._view.update(text)


_LATEST_PANEL: ParameterPanel | None = None


def parameter_panel(
    stack: str | Mapping[str, Any] | stackmod.StackSpec,
    options: Mapping[str, Any],
    provenance: Mapping[str, str] | None = None,
) -> ParameterPanel:
    """Show the parameter panel for ``stack`` (the runbook's ``stack`` parameter) and ``options``.

    ``options``: the runbook's other parameters, name → value in force (e.g. ``{"apply": apply}``).
    ``provenance``: dotted key → source, when the caller knows it (``atlbook.parameters.Resolved``),
    else the JSON in ``$ATLBOOK_PARAMETER_PROVENANCE`` (a runner's kernel); otherwise a name such as
    ``"sandbox"`` gives file provenance for the stack, an injected mapping shows as ``injected``, and
    options as ``default``. Refuses (``ParameterError``) parameters that do
    not validate — like :func:`atlbook.parameters.load_stack` would. Headless it shows the static table.
    """
    return ParameterPanel(stack, options, provenance)


# --- plan / apply ----------------------------------------------------------------------------------


def _plan_counts(plan: Any, gate: Callable[[Any], Mapping[str, Any]] | None) -> dict[str, Any]:
    if gate is not None:
        return dict(gate(plan))
    counts = getattr(plan, "counts", None)
    if isinstance(counts, Mapping):
        return {
            "creates": counts.get("create", 0),
            "updates": counts.get("update", 0),
            "deletes": counts.get("delete", 0),
            "blocked": getattr(plan, "blocked", None),
        }
    return {}


def gate_counts(plan: Any, stack: str | None = None) -> dict[str, Any]:
    """What an Apply gate counts for an :class:`atlbook.plan.Plan`: ``creates`` / ``updates`` /
    ``deletes``, the ``stack``, and ``blocked`` (``"step: reason"`` each; empty when it may be applied).

    Refuses (``TypeError``) what has no ``counts`` mapping and ``blocked`` list of a plan.
    """
    counts = getattr(plan, "counts", None)
    blocked = getattr(plan, "blocked", None)
    if not isinstance(counts, Mapping) or not isinstance(blocked, list):
        raise TypeError(f"not a plan (no counts / blocked): {type(plan).__name__}")
    return {
        "creates": counts.get("create", 0),
        "updates": counts.get("update", 0),
        "deletes": counts.get("delete", 0),
        "stack": stack,
        "blocked": [f"{step}: {why}" for step, why in blocked],
    }


def _fingerprint(plan: Any) -> str:
    fp = getattr(plan, "fingerprint", None)
    if callable(fp):
        return str(fp())
    if isinstance(fp, str):
        return fp
    return hex(id(plan))


def _accepts_progress(fn: Callable[..., Any]) -> bool:
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return False
    return "progress" in sig.parameters or any(
        p.kind is inspect.Parameter.VAR_KEYWORD for p in sig.parameters.values()
    )


class PlanApply(Generic[P]):
    """A plan shown as a table with a *Plan* refresh button, and its apply gate (see the module doc).

    ``plan``: the current plan (rebuilt by *Plan*); ``stale``: parameters were edited since it was
    built; ``blocked``: the plan says it must not be applied; ``result`` / ``after_result``: what the
    apply and ``after`` returned, once applied.
    """

    def __init__(
        self,
        build: Callable[[], P],
        *,
        stack: str | None = None,
        table: Callable[[P], Any] | None = None,
        gate: Callable[[P], Mapping[str, Any]] | None = None,
        panel: ParameterPanel | None = None,
        display: bool = True,
    ) -> None:
        self._build = build
        self._table = table
        self._gate = gate
        self.stack_name = stack
        self.panel = panel if panel is not None else _LATEST_PANEL
        self.revision = self.panel.revision if self.panel is not None else 0
        self.plan: P = build()
        self.fingerprint = _fingerprint(self.plan)
        self.built_at = time.strftime("%H:%M:%S")
        self.message = ""
        self.result: Any = None
        self.after_result: Any = None
        self.applied = False
        self._plan_view: _View | None = None
        self._gate_refresh: Callable[[], None] | None = None
        self._widgets: dict[str, Any] = {}
        if self.panel is not None:
            self.panel.on_change(lambda _p: self._changed())
        if display:
            self._show_plan()

    # state
    @property
    def counts(self) -> dict[str, Any]:
        """What the gate counts: creates / updates / deletes (and ``blocked``, ``stack`` if known)."""
        return _plan_counts(self.plan, self._gate)

    @property
    def stale(self) -> bool:
        """True when parameters were edited in the panel after this plan was built."""
        return self.panel is not None and self.panel.revision != self.revision

    @property
    def blocked(self) -> bool:
        """True when the plan is blocked (it must not be applied)."""
        return bool(self.counts.get("blocked"))

    def describe(self) -> str:
        """``N create(s), N update(s), N delete(s) on stack 'S'``."""
        return _describe(self.counts, self.stack_name)

    def why_not(self) -> str | None:
        """Why *Apply* is disabled now, or ``None`` when it may be applied."""
        if self.stale:
            return (
                "the parameters were edited after this plan was built: re-run the cells from "
                "'Load the stack' (Run ▸ Run Selected Cell and All Below) to plan with them"
            )
        if self.blocked:
            return "the plan is blocked: fix what its findings say, then Plan again"
        return None

    def refresh(self) -> P:
        """Rebuild the plan (what *Plan* does): observes the stack again. Returns the new plan."""
        self.plan = self._build()
        self.fingerprint = _fingerprint(self.plan)
        self.built_at = time.strftime("%H:%M:%S")
        self._changed()
        return self.plan

    def _changed(self) -> None:
        self._render_plan()
        if self._gate_refresh is not None:
            self._gate_refresh()

    # the plan part
    def plan_html(self) -> str:
        """The plan table as static HTML, with its summary and state line."""
        head = f"<p><b>Plan</b> (built {self.built_at}): {html.escape(self.describe())}"
        if self.stale:
            head += " — <b>stale</b>: parameters edited since"
        if self.blocked:
            head += " — <b>blocked</b>"
        head += "</p>"
        shown = self._table(self.plan) if self._table is not None else self.plan
        return head + _as_html(shown, css="atlbook-plan")

    def _show_plan(self) -> None:
        if is_headless():
            _ipd().display(_ipd().HTML(self.plan_html()))
            return
        w = _w()
        button = w.Button(description="Plan", icon="refresh", tooltip="rebuild the plan from the stack")
        body = w.HTML(self.plan_html())
        note = w.HTML("")
        box = w.VBox([w.HBox([button, note]), body])
        box.add_class("atlbook-plan")
        self._widgets.update(plan_body=body, plan_note=note, plan_button=button)

        def again(_: Any) -> None:
            button.disabled = True
            note.value = "<i>planning…</i>"
            try:
                self.refresh()
                note.value = ""
            except Exception as e:
                log.exception("planning failed")
                note.value = (
                    f"<b>Plan failed</b>: {html.escape(type(e).__name__)}: {html.escape(str(e)[:500])}"
                )
            finally:
                button.disabled = False

        button.on_click(again)
        self._plan_view = _View(box, self.plan_html())

    def _render_plan(self) -> None:
        body = self._widgets.get("plan_body")
        text = self.plan_html()
        if body is not None:
            body.value = text
        if self._plan_view is not None:
            self._plan_view.update(text)

    # the apply part
    def _run(self, run: Callable[..., Any], report: Callable[[Any], None]) -> Any:
        if _accepts_progress(run):
            return run(self.plan, progress=report)
        return run(self.plan)

    def apply_gate(
        self,
        apply: bool,
        run: Callable[..., Any],
        *,
        after: Callable[[P], Any] | None = None,
        after_title: str = "Post-checks",
    ) -> Any:
        """Apply the plan now (``apply=True``), or show *Apply* → *Confirm* in JupyterLab.

        ``run(plan[, progress=callback])`` applies; it gets ``progress`` when it accepts it (events with
        ``index``, ``total``, ``step``, ``status``, ``message``, e.g. :class:`atlbook.plan.StepEvent`),
        shown as a bar and a live status table (lines headless). ``after(plan)`` runs after a successful
        apply and its result (rows, a DataFrame) is shown under ``after_title``.

        Returns what ``run`` returned when applied now, else ``None`` — headless "plan only", or in
        JupyterLab the buttons (the cell never waits for a click). Refuses (``PlanError``) to apply a
        stale plan; a blocked plan is ``run``'s to refuse.
        """
        what = self.describe()
        if apply:
            if self.stale:
                raise errors.PlanError(f"the plan is stale: {self.why_not()}")
            _say(f"Applying: {what} (apply: true).")
            bar = Progress[Any](None, None, f"Applying {self.stack_name or ''}".strip())
            result = self._run(run, self._reporter(bar))
            bar.close()
            self.result, self.applied = result, True
            if after is not None:
                self.after_result = after(self.plan)
                _ipd().display(
                    _ipd().HTML(f"<h4>{html.escape(after_title)}</h4>{_as_html(self.after_result)}")
                )
            return result
        if is_headless():
            _say(f"Plan only: {what}. Nothing changed; re-run with apply: true (or --apply) to apply.")
            return None
        self._show_gate(run, after, after_title)
        return None

    def _reporter(self, bar: Progress[Any]) -> Callable[[Any], None]:
        return step_reporter(bar)

    def _show_gate(self, run: Callable[..., Any], after: Callable[[P], Any] | None, after_title: str) -> None:
        w = _w()
        button = w.Button(description="Apply", button_style="warning", icon="play")
        confirm = w.Button(button_style="danger", layout=w.Layout(display="none", width="auto"))
        cancel = w.Button(description="Cancel", layout=w.Layout(display="none"))
        status = w.HTML("")
        bar = w.IntProgress(value=0, min=0, max=1, layout=w.Layout(display="none"))
        table = w.HTML("")
        outcome = w.HTML("")
        out = w.Output()  # what run / after print or display (a click's output has no cell of its own)
        box = w.VBox([w.HBox([button, confirm, cancel]), status, bar, table, outcome, out])
        box.add_class("atlbook-apply-gate")
        self._widgets.update(gate=box, apply_button=button, confirm_button=confirm)
        view = _View(box, "")
        rows: dict[str, dict[str, Any]] = {}
        phase = {"now": "idle"}  # idle | asking | applying | applied | failed

        def settle() -> None:
            parts = [status.value, table.value, outcome.value]
            view.update("".join(p for p in parts if p))

        def refresh() -> None:
            what = html.escape(self.describe())
            if phase["now"] in ("applying", "applied"):
                return
            reason = self.why_not()
            button.disabled = reason is not None
            if phase["now"] == "asking" and (reason is not None or confirm.tooltip != self.fingerprint):
                phase["now"] = "idle"  # the plan changed under the question: ask again
                confirm.layout.display = cancel.layout.display = "none"
            if reason is not None:
                status.value = f"<p><b>Apply gate</b>: disabled — {html.escape(reason)}. Not applied.</p>"
            elif phase["now"] == "failed":
                pass
            else:
                status.value = f"<p><b>Apply gate</b>: waiting — {what}. Not applied.</p>"
            settle()

        def ask(_: Any) -> None:
            if self.why_not() is not None:
                refresh()
                return
            phase["now"] = "asking"
            button.disabled = True
            confirm.description = f"Confirm: {self.describe()}"
            confirm.tooltip = self.fingerprint
            confirm.disabled = cancel.disabled = False
            confirm.layout.display = cancel.layout.display = ""
            status.value = f"<p><b>Apply gate</b>: confirm to apply {html.escape(self.describe())}.</p>"

        def back(_: Any) -> None:
            phase["now"] = "idle"
            confirm.layout.display = cancel.layout.display = "none"
            refresh()
            status.value = status.value.replace("waiting", "cancelled", 1)
            settle()

        def on_event(event: Any) -> None:
            total = getattr(event, "total", None)
            index = getattr(event, "index", None)
            step = getattr(event, "step", None)
            key = str(getattr(step, "id", step))
            if isinstance(total, int):
                bar.max = max(total, 1)
            state = str(getattr(event, "status", ""))
            if isinstance(index, int):
                bar.value = index if state not in ONGOING else max(index - 1, 0)
            rows[key] = {
                "#": index,
                "step": key,
                "status": "running" if state == "start" else state,
                "message": str(getattr(event, "message", "") or "")[:200],
            }
            table.value = _table(list(rows.values()), css="atlbook-status")

        def go(_: Any) -> None:
            if self.why_not() is not None or confirm.tooltip != self.fingerprint:
                refresh()
                return
            phase["now"] = "applying"
            what = html.escape(self.describe())
            confirm.disabled = cancel.disabled = True
            confirm.layout.display = cancel.layout.display = "none"
            bar.layout.display = ""
            status.value = f"<p><b>Apply gate</b>: confirmed — applying {what}…</p>"
            started = time.monotonic()
            try:
                with out:
                    self.result = self._run(run, on_event)
            except Exception as e:
                log.exception("apply failed")
                phase["now"] = "failed"
                button.disabled = self.why_not() is not None
                status.value = (
                    f"<p><b>Apply gate</b>: apply failed — {html.escape(type(e).__name__)}: "
                    f"{html.escape(str(e)[:800])}</p>"
                )
                settle()
                return
            self.applied = True
            phase["now"] = "applied"
            bar.value = bar.max
            seconds = time.monotonic() - started
            status.value = f"<p><b>Apply gate</b>: applied {what} in {seconds:.0f} s.</p>"
            if after is not None:
                try:
                    with out:
                        self.after_result = after(self.plan)
                    outcome.value = (
                        f'<div class="atlbook-after"><h4>{html.escape(after_title)}</h4>'
                        f"{_as_html(self.after_result, css='atlbook-after-table')}</div>"
                    )
                except Exception as e:
                    log.exception("after apply failed")
                    outcome.value = (
                        f"<p><b>{html.escape(after_title)} failed</b>: {html.escape(type(e).__name__)}: "
                        f"{html.escape(str(e)[:800])}</p>"
                    )
            settle()

        button.on_click(ask)
        cancel.on_click(back)
        confirm.on_click(go)
        self._gate_refresh = refresh
        refresh()


def plan_apply(
    build: Callable[[], P],
    *,
    stack: str | None = None,
    table: Callable[[P], Any] | None = None,
    gate: Callable[[P], Mapping[str, Any]] | None = None,
    panel: ParameterPanel | None = None,
) -> PlanApply[P]:
    """Build the plan with ``build()`` and show it with a *Plan* refresh button; returns the
    :class:`PlanApply` (its ``.plan``; call ``.apply_gate(apply, run, after=...)`` where the runbook
    applies).

    ``table(plan)`` gives what is shown (default: the plan's own HTML); ``gate(plan)`` the counts
    (default: ``plan.counts`` of :class:`atlbook.plan.Plan`); ``panel`` the parameter panel whose edits
    make the plan stale (default: the last panel shown in this kernel). Headless: the static table.
    """
    return PlanApply(build, stack=stack, table=table, gate=gate, panel=panel)
