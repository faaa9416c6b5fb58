"""atlbook.widgets without a kernel: the logic behind the panels and buttons.

Aspects covered:
- parameter panel: values in force with their source (default / file / override / injected / given
  provenance), edits re-validated with atlbook.parameters' messages, an invalid edit changes nothing,
  a valid one bumps the revision, tells listeners and sets the notebook's variables;
- secrets: shown as their reference only; a literal secret typed in is refused without being echoed;
- plan / apply: stale after a parameter edit (Apply disabled, apply=True refused), blocked disables
  Apply, the confirmation names creates / updates / deletes and the stack, a click applies with
  progress rows and shows ``after``;
- headless: no widget is ever built and nothing waits — apply=False is "plan only", apply=True runs
  at once with progress lines;
- static twins: every widget is one output with a widget view *and* a text/html twin, updated in
  place with the final state;
- step progress: a step's ``waiting`` events fill its status-table row (a log line headless) and never
  advance the bar, in a bar of its own and under the Apply gate;
- figures: ``widgets.figure`` displays itself as a PNG through IPython's own formatter (no magic).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from atlbook import errors, widgets

ROOT = Path(__file__).resolve().parents[2]
VIEW = widgets.WIDGET_VIEW_MIME


class FakeDisplay:
    """Stands in for IPython.display: keeps every output by display id, applies updates in place."""

    def __init__(self) -> None:
        self.outputs: list[dict[str, Any]] = []
        self.ids: dict[str, int] = {}

    def display(self, obj: Any, raw: bool = False, display_id: str | None = None) -> None:
        bundle = obj if raw else {"text/html": obj.data}
        if display_id is not None:
            self.ids[display_id] = len(self.outputs)
        self.outputs.append(dict(bundle))

    def update_display(self, obj: Any, raw: bool = False, display_id: str | None = None) -> None:
        assert display_id in self.ids, "update of an output never displayed"
        self.outputs[self.ids[display_id]] = dict(obj)

    class HTML:
        def __init__(self, data: str) -> None:
            self.data = data

    def html(self) -> str:
        return "\n".join(o.get("text/html", "") for o in self.outputs)


@pytest.fixture(autouse=True)
def no_latest_panel(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(widgets, "_LATEST_PANEL", None)


@pytest.fixture
def shown(monkeypatch: pytest.MonkeyPatch) -> FakeDisplay:
    fake = FakeDisplay()
    monkeypatch.setattr(widgets, "_ipd", lambda: fake)
    return fake


@pytest.fixture
def interactive(monkeypatch: pytest.MonkeyPatch, shown: FakeDisplay) -> FakeDisplay:
    monkeypatch.delenv(widgets.HEADLESS_ENV, raising=False)
    monkeypatch.setattr(widgets, "is_headless", lambda: False)
    return shown


@pytest.fixture
def headless(monkeypatch: pytest.MonkeyPatch, shown: FakeDisplay) -> FakeDisplay:
    monkeypatch.setenv(widgets.HEADLESS_ENV, "1")

    def no_widgets() -> Any:
        raise AssertionError("a widget was built headless")

    monkeypatch.setattr(widgets, "_w", no_widgets)
    return shown


def panel(stack: Any = "sandbox", **kwargs: Any) -> widgets.ParameterPanel:
    options = kwargs.pop("options", {"apply": False, "export_dir": ""})
    return widgets.ParameterPanel(stack, options, base_dir=ROOT / "notebooks", display=False, **kwargs)


def row(p: widgets.ParameterPanel, key: str) -> dict[str, str]:
    return next(r for r in p.rows() if r["key"] == key)


# --- parameter panel ------------------------------------------------------------------------------


def test_panel_shows_values_and_where_they_came_from() -> None:
    p = panel()
    assert row(p, "apply") == {"key": "apply", "value": "false", "source": "default"}
    assert row(p, "stack.products.jira.replicas")["source"] == "file parameters/sandbox.yaml"
    assert row(p, "stack.products.jira.replicas")["value"] == "2"
    assert p.spec.name == "sandbox" and p.options == {"apply": False, "export_dir": ""}


def test_panel_injected_mapping_and_given_provenance() -> None:
    mapping = panel().stack
    p = panel(mapping, provenance={"apply": "-p", "stack.name": "parameters/prod.yaml"})
    assert row(p, "stack.products.jira.replicas")["source"] == "injected"
    assert row(p, "apply")["source"] == "override"
    assert row(p, "stack.name")["source"] == "file parameters/prod.yaml"


def test_provenance_from_a_runner(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(widgets.PROVENANCE_ENV, '{"apply": "-p", "stack.products.jira.replicas": "default"}')
    p = panel(panel().stack)
    assert row(p, "apply")["source"] == "override"
    assert row(p, "stack.products.jira.replicas")["source"] == "default"
    assert row(p, "stack.name")["source"] == "injected"


def test_invalid_edit_shows_the_schema_message_and_changes_nothing() -> None:
    p = panel()
    seen: list[int] = []
    p.on_change(lambda q: seen.append(q.revision))
    assert p.set("stack.products.jira.replicas", "0") is False
    assert p.error is not None
    assert "stack.products.jira.replicas" in p.error and "too small" in p.error and ">= 1" in p.error
    assert p.revision == 0 and seen == [] and p.spec.products.jira.replicas == 2
    assert "too small" in p.to_html()
    assert p.set("apply", "maybe") is False and "true or false" in (p.error or "")
    assert p.set("stack.products.jira.replicass", "3") is False and "replicas" in (p.error or "")


def test_valid_edit_is_in_force_marked_override_and_published() -> None:
    ns: dict[str, Any] = {"stack": "sandbox", "apply": False}
    p = panel(namespace=ns)
    seen: list[int] = []
    p.on_change(lambda q: seen.append(q.revision))
    assert p.set("stack.products.jira.replicas", "3") is True
    assert p.error is None and p.revision == 1 and seen == [1]
    assert p.spec.products.jira.replicas == 3
    assert row(p, "stack.products.jira.replicas") == {
        "key": "stack.products.jira.replicas",
        "value": "3",
        "source": "override",
    }
    assert ns["stack"]["products"]["jira"]["replicas"] == 3 and ns["apply"] is False
    assert p.set("apply", "true") and ns["apply"] is True
    p.reset()
    assert p.edits == [] and p.spec.products.jira.replicas == 2 and ns["apply"] is False


def test_panel_refuses_invalid_parameters_as_given() -> None:
    with pytest.raises(errors.ParameterError):
        panel(options={"apply": False}, stack="no-such-stack")


def test_secrets_show_as_references_and_literals_are_never_echoed() -> None:
    p = panel()
    assert row(p, "stack.database.master_password")["value"] == "env:ATLBOOK_SANDBOX_DB_PASSWORD"
    literal = "hunter2-very-secret"
    assert p.set("stack.database.master_password", literal) is False
    assert literal not in (p.error or "") and "reference" in (p.error or "")
    assert literal not in p.to_html()
    assert p.set("stack.database.master_password", "env:OTHER_DB_PASSWORD") is True
    assert row(p, "stack.database.master_password")["value"] == "env:OTHER_DB_PASSWORD"
    assert widgets._shown("api_token", "plain-value") == "•••• (hidden: not a reference)"


def test_panel_widget_clears_a_typed_secret(interactive: FakeDisplay) -> None:
    p = widgets.ParameterPanel("sandbox", {"apply": False}, base_dir=ROOT / "notebooks", namespace={})
    key, value = p._widgets["key"], p._widgets["value"]
    key.value = "stack.database.master_password"
    value.value = "hunter2-very-secret"  # typing + Enter: validated on change
    assert value.value == "" and p.error is not None and "hunter2" not in interactive.html()
    key.value = "stack.products.jira.replicas"
    value.value = "0"
    assert "too small" in p._widgets["body"].value
    assert "too small" not in interactive.outputs[0]["text/html"]  # the twin keeps the values in force
    value.value = "3"
    assert "too small" not in p._widgets["body"].value
    assert "override" in interactive.outputs[0]["text/html"] and VIEW in interactive.outputs[0]


# --- plan / apply ------------------------------------------------------------------------------------


@dataclasses.dataclass
class FakePlan:
    n: int
    blocked: bool = False

    @property
    def counts(self) -> dict[str, int]:
        return {"create": self.n, "update": 1, "delete": 0}

    def fingerprint(self) -> str:
        return f"fp{self.n}"

    def to_html(self) -> str:
        return f"<table><tr><td>{self.n} steps</td></tr></table>"


@dataclasses.dataclass
class Event:
    index: int
    total: int
    step: Any
    status: str
    message: str = ""


@dataclasses.dataclass
class Step:
    id: str
    description: str = ""


class Builder:
    def __init__(self, *, blocked: bool = False) -> None:
        self.calls = 0
        self.blocked = blocked

    def __call__(self) -> FakePlan:
        self.calls += 1
        return FakePlan(self.calls + 1, blocked=self.blocked)


def gate(plan: FakePlan) -> dict[str, Any]:
    return {"creates": plan.n, "updates": 1, "deletes": 0, "blocked": ["x"] if plan.blocked else []}


class Runner:
    def __init__(self) -> None:
        self.plans: list[Any] = []

    def __call__(self, plan: Any, *, progress: Any) -> dict[str, Any]:
        self.plans.append(plan)
        for i in (1, 2):
            progress(Event(i, 2, Step(f"s{i}", f"step {i}"), "start"))
            progress(Event(i, 2, Step(f"s{i}", f"step {i}"), "done", f"made s{i}"))
        return {"counts": {"done": 2}}


def test_plan_is_stale_after_a_parameter_edit_and_apply_is_refused(headless: FakeDisplay) -> None:
    p = panel()
    planner = widgets.PlanApply(Builder(), stack="sandbox", gate=gate, panel=p, display=False)
    assert not planner.stale and planner.why_not() is None
    assert p.set("stack.products.jira.replicas", "3")
    assert planner.stale and "edited" in (planner.why_not() or "")
    run = Runner()
    with pytest.raises(errors.PlanError, match="stale"):
        planner.apply_gate(True, run)
    assert run.plans == []


def test_apply_button_disabled_while_stale_or_blocked(interactive: FakeDisplay) -> None:
    p = panel()
    planner = widgets.PlanApply(Builder(), stack="sandbox", gate=gate, panel=p)
    assert planner.apply_gate(False, Runner()) is None  # returns at once: nothing waits for a click
    apply_button = _button(interactive, planner, "Apply")
    assert not apply_button.disabled
    p.set("stack.products.jira.replicas", "3")
    assert apply_button.disabled
    assert "parameters were edited" in interactive.outputs[-1]["text/html"]

    blocked = widgets.PlanApply(Builder(blocked=True), stack="sandbox", gate=gate, panel=None)
    blocked.apply_gate(False, Runner())
    assert _button(interactive, blocked, "Apply").disabled
    assert "blocked" in interactive.outputs[-1]["text/html"]


def _button(shown: FakeDisplay, planner: Any, name: str) -> Any:
    box = planner._widgets["gate"]
    assert shown.outputs[-1][VIEW]["model_id"] == box.model_id  # the gate is the last output
    return next(b for b in box.children[0].children if b.description.startswith(name))


def test_click_apply_confirm_runs_with_progress_and_shows_after(interactive: FakeDisplay) -> None:
    builder = Builder()
    planner = widgets.PlanApply(builder, stack="sandbox", gate=gate, panel=None)
    run = Runner()
    planner.apply_gate(False, run, after=lambda plan: [{"check": "running", "ok": True}])
    assert run.plans == []
    _button(interactive, planner, "Apply").click()
    confirm = _button(interactive, planner, "Confirm")
    assert confirm.description == "Confirm: 2 create(s), 1 update(s), 0 delete(s) on stack 'sandbox'"
    assert run.plans == []
    confirm.click()
    assert run.plans == [planner.plan] and planner.applied
    twin = interactive.outputs[-1]["text/html"]
    assert "applied 2 create(s)" in twin and "made s2" in twin
    assert "Post-checks" in twin and "running" in twin


def test_refreshed_plan_under_the_question_asks_again(interactive: FakeDisplay) -> None:
    planner = widgets.PlanApply(Builder(), stack="sandbox", gate=gate, panel=None)
    run = Runner()
    planner.apply_gate(False, run)
    _button(interactive, planner, "Apply").click()
    confirm = _button(interactive, planner, "Confirm")
    planner.refresh()  # the Plan button: 3 creates now
    confirm.click()
    assert run.plans == []
    assert "3 create(s)" in planner.plan_html()


# --- headless --------------------------------------------------------------------------------------


def test_headless_never_builds_a_widget_or_waits(
    headless: FakeDisplay, capsys: pytest.CaptureFixture
) -> None:
    planner = widgets.plan_apply(Builder(), stack="sandbox", gate=gate)
    run = Runner()
    assert planner.apply_gate(False, run) is None and run.plans == []
    assert "Plan only" in capsys.readouterr().out
    assert planner.apply_gate(True, run, after=lambda plan: [{"check": "x", "ok": True}]) == {
        "counts": {"done": 2}
    }
    out = capsys.readouterr().out
    assert "Applying: 2 create(s)" in out and "[2/2] done: step 2 made s2" in out
    assert widgets.confirm_apply({"creates": 1}, False, stack="s") is False
    assert widgets.confirm_apply({"creates": 1}, True, stack="s") is True
    widgets.ParameterPanel("sandbox", {"apply": False}, base_dir=ROOT / "notebooks")
    assert "file parameters/sandbox.yaml" in headless.html()
    for _ in widgets.progress(range(3), description="Waiting"):
        pass
    assert "Waiting: 3/3 (100 %)" in capsys.readouterr().out
    assert all(VIEW not in o for o in headless.outputs)


def test_progress_status_rows_headless(headless: FakeDisplay, capsys: pytest.CaptureFixture) -> None:
    bar = widgets.progress(total=2, description="Pods")
    bar.set_row("jira-0", status="Pending")
    bar.set_row("jira-0", status="Pending")
    bar.set_row("jira-0", status="Ready")
    bar.update(2)
    bar.close()
    out = capsys.readouterr().out.splitlines()
    assert out.count("Pods: jira-0 — status=Pending") == 1 and "Pods: jira-0 — status=Ready" in out


# --- static twins ----------------------------------------------------------------------------------


def test_every_widget_is_one_output_with_its_html_twin(interactive: FakeDisplay) -> None:
    widgets.ParameterPanel("sandbox", {"apply": False}, base_dir=ROOT / "notebooks")
    planner = widgets.PlanApply(Builder(), stack="sandbox", gate=gate, panel=None)
    planner.apply_gate(False, Runner())
    widgets.confirm_apply({"creates": 1, "updates": 0, "deletes": 2}, False, stack="s")
    with widgets.progress(total=2, description="Counting") as bar:
        bar.set_row("a", status="ok")
        bar.update(2)
    assert len(interactive.outputs) == 5
    for out in interactive.outputs:
        assert VIEW in out and out["text/html"] and out["text/plain"]
    html = interactive.html()
    assert "Parameters" in html and "file parameters/sandbox.yaml" in html
    assert "2 create(s), 1 update(s), 0 delete(s) on stack &#x27;sandbox&#x27;" in html
    assert "1 create(s), 0 update(s), 2 delete(s)" in html
    assert "Counting</b>: 2/2" in html and "— done" in html


# --- step reporter: waiting events -------------------------------------------------------------------


def test_waiting_events_fill_the_status_table_and_never_advance_the_bar(
    interactive: FakeDisplay,
) -> None:
    bar = widgets.progress(total=2, description="Upgrading")
    report = widgets.step_reporter(bar)
    node = Step("node-jira-1", "jira-1 restarts")
    report(Event(1, 2, node, "start"))
    report(Event(1, 2, node, "waiting", "jira-1: still on 11.3.1"))
    assert bar.n == 0 and bar.rows["node-jira-1"]["status"] == "waiting"
    assert "still on 11.3.1" in bar._status.value
    report(Event(1, 2, node, "done", "jira-1 RUNNING"))
    assert bar.n == 1 and bar.rows["node-jira-1"]["status"] == "done"
    bar.close()
    assert "jira-1 RUNNING" in interactive.outputs[-1]["text/html"]


def test_waiting_events_are_log_lines_headless(headless: FakeDisplay, capsys: pytest.CaptureFixture) -> None:
    bar = widgets.progress(total=1, description="Recovering")
    report = widgets.step_reporter(bar)
    step = Step("restart-jira-0", "restart jira-0")
    report(Event(1, 1, step, "start"))
    report(Event(1, 1, step, "waiting", "jira-0 to come back RUNNING: not Ready yet"))
    assert bar.n == 0
    report(Event(1, 1, step, "done"))
    out = capsys.readouterr().out
    assert "[1/1] waiting: restart jira-0 jira-0 to come back RUNNING: not Ready yet" in out
    assert "Recovering: 1/1 (100 %)" in out


def test_click_path_shows_waiting_rows_without_advancing(interactive: FakeDisplay) -> None:
    planner = widgets.PlanApply(Builder(), stack="sandbox", gate=gate, panel=None)
    seen: list[int] = []

    def run(plan: Any, *, progress: Any) -> str:
        step = Step("node-jira-1")
        progress(Event(1, 2, step, "start"))
        progress(Event(1, 2, step, "waiting", "not Ready"))
        seen.append(planner._widgets["gate"].children[2].value)  # the bar
        progress(Event(1, 2, step, "done"))
        return "ok"

    planner.apply_gate(False, run)
    _button(interactive, planner, "Apply").click()
    _button(interactive, planner, "Confirm").click()
    assert seen == [0] and planner.result == "ok"


# --- figures -----------------------------------------------------------------------------------------


def test_figure_displays_itself_as_png() -> None:
    from IPython.core.formatters import PNGFormatter

    fig = widgets.figure(figsize=(2, 1))
    fig.subplots().plot([0, 1], [1, 0])
    png = fig._repr_png_()
    assert png.startswith(b"\x89PNG")
    assert PNGFormatter()(fig).startswith(b"\x89PNG")  # what IPython shows, with no %matplotlib magic
    with pytest.raises(AttributeError, match="no_such_option"):
        widgets.figure(no_such_option=1)


def test_gate_counts_of_a_plan() -> None:
    from atlbook import plan

    p = plan.Plan("x", stack="s")
    p.add(plan.Step("a", "make a", kind="create"))
    p.add(plan.Step("b", "drop b", kind="delete", blocked=("not yet",)))
    assert widgets.gate_counts(p, "s") == {
        "creates": 1,
        "updates": 0,
        "deletes": 1,
        "stack": "s",
        "blocked": ["b: not yet"],
    }
    with pytest.raises(TypeError, match="not a plan"):
        widgets.gate_counts({"creates": 1})
