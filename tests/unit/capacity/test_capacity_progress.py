"""The planner's progress bar: headless progress lines from ``recommend(on_progress=...)``.

Aspects: each phase fills its share of the bar and names the step and the best plan so far; the bar
ends at 100 %; an unknown phase is refused.
"""

from __future__ import annotations

import pytest

from atlbook import widgets
from atlbook.capacity import catalogue, plan, progress, workload


@pytest.fixture
def headless(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(widgets.HEADLESS_ENV, "1")


def test_recommend_drives_the_bar(
    headless: None, capsys: pytest.CaptureFixture[str], w1_doc: dict[str, object]
) -> None:
    w = workload.workload_from_dict(w1_doc)
    with progress.plan_progress("Planning") as bar:
        rec = plan.recommend(
            w, catalogue.load_catalogue(["m5"]), ["a", "b", "c"], time_limit=3, on_progress=bar
        )
    out = capsys.readouterr().out.splitlines()
    assert any(line.startswith("Planning: heuristic") for line in out)
    assert any(line.startswith("Planning: exact") for line in out)
    assert "Planning: 100/100 (100 %)" in out
    assert out[-1].startswith("Planning: done")
    assert any(f"best=${rec.cost_per_hour:.2f}/h" in line for line in out)


def test_unknown_phase_refused(headless: None) -> None:
    bar = progress.plan_progress()
    with pytest.raises(ValueError, match="phase"):
        bar(plan.PlanProgress("guessing", 0, 1, "", None))
    bar.close()
