"""Measurements of 30-upgrade: overhead math, the timeline, the load generator's statistics.

Aspects: overhead = rolling wall time beyond the sum of the nodes' windows, in seconds and % (none when
nothing rolled, never negative); the timeline built from plan progress events with a fake clock (skipped
steps take no time, node windows separate); percentiles by linear interpolation; per-phase stats
(requests, failures, p50/p99, re-pins, an ``all`` row, phase order kept); what counts as a failed
request; the figure renders to PNG.
"""

from __future__ import annotations

import base64

import pytest

from atlbook import plan
from atlbook.upgrade import load, timeline


@pytest.mark.parametrize(
    "rolling, nodes, pct, extra",
    [
        (10.5, [5.0, 5.0], 5.0, 0.5),
        (10.0, [5.0, 5.0], 0.0, 0.0),
        (9.0, [5.0, 5.0], 0.0, 0.0),  # polling noise never makes it negative
        (3.3, [1.0, 1.0, 1.0], 10.0, 0.3),
    ],
)
def test_overhead(rolling, nodes, pct, extra) -> None:
    out = timeline.overhead(rolling, nodes)
    assert out["overhead_pct"] == pytest.approx(pct)
    assert out["overhead_s"] == pytest.approx(extra)
    assert out["pods_s"] == pytest.approx(sum(nodes))


def test_overhead_without_nodes() -> None:
    assert timeline.overhead(0.0, [])["overhead_pct"] is None


class FakeClock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def _event(step_id: str, status: str) -> plan.StepEvent:
    return plan.StepEvent(1, 1, plan.Step(step_id, step_id, kind="update"), status)  # type: ignore[arg-type]


def test_timeline_from_progress_events() -> None:
    clock = FakeClock()
    tline = timeline.Timeline(clock)
    phases: list[str] = []
    tline.phase_listeners.append(phases.append)
    tline.on_step(_event("preflight", "skipped"))
    for step, node, seconds in [
        ("zdu-start", None, 0.1),
        ("node-jira-1", "jira-1", 2.0),
        ("node-jira-0", "jira-0", 2.0),
    ]:
        tline.on_step(_event(step, "start"))
        clock.t += 0.05
        if node:
            tline.begin(node, kind="node")
        clock.t += seconds
        if node:
            tline.end(node, kind="node")
        tline.on_step(_event(step, "done"))
    out = tline.overhead()
    assert out["pods_s"] == pytest.approx(4.0)
    assert out["rolling_s"] == pytest.approx(4.25)
    assert out["overhead_pct"] == pytest.approx(6.25)
    assert phases == ["preflight", "zdu-start", "node-jira-1", "node-jira-0"]
    rows = tline.rows()
    assert rows[0]["status"] == "skipped" and rows[0]["seconds"] == 0
    assert [r["name"] for r in rows if r["kind"] == "node"] == ["jira-1", "jira-0"]


def test_percentile() -> None:
    assert load.percentile([], 50) is None
    assert load.percentile([7.0], 99) == 7.0
    assert load.percentile([1, 2, 3, 4], 50) == pytest.approx(2.5)
    assert load.percentile(list(range(1, 101)), 99) == pytest.approx(99.01)
    assert load.percentile([3, 1, 2], 0) == 1 and load.percentile([3, 1, 2], 100) == 3


def _s(phase: str, ms: float, ok: bool = True, repinned: bool = False) -> load.Sample:
    return load.Sample(0.0, phase, ms / 1000.0, ok, 200 if ok else 503, 0, repinned)


def test_phase_stats() -> None:
    samples = [
        _s("node-jira-1", 10),
        _s("start", 5),
        _s("node-jira-1", 30, ok=False),
        _s("node-jira-1", 20, repinned=True),
    ]
    rows = load.phase_stats(samples, ["start", "zdu-start", "node-jira-1"])
    assert [r["phase"] for r in rows] == ["start", "node-jira-1", "all"]  # empty phases left out
    node = rows[1]
    assert node == {
        "phase": "node-jira-1",
        "requests": 3,
        "failures": 1,
        "p50_ms": 20.0,
        "p99_ms": 29.8,
        "repins": 1,
    }
    assert rows[-1]["requests"] == 4 and rows[-1]["failures"] == 1


@pytest.mark.parametrize(
    "status, body, ok",
    [
        (200, b'{"state":"RUNNING"}', True),
        (200, b'{"state":"STARTING"}', False),
        (503, b"503 Service Temporarily Unavailable", False),
        (500, b'{"state":"ERROR"}', False),
        (200, b"<html>ok</html>", True),
        (None, b"", False),
    ],
)
def test_judge(status, body, ok) -> None:
    assert load.judge(status, body)[0] is ok


def test_load_report_dict() -> None:
    report = load.LoadReport("http://x", "/status", 2, 1.0, [_s("a", 1), _s("a", 2, ok=False)], ["a"])
    doc = report.to_dict()
    assert doc["requests"] == 2 and doc["failures"] == 1 and len(doc["failed_samples"]) == 1
    assert report.overall()["phase"] == "all"


def test_plot_renders() -> None:
    clock = FakeClock()
    tline = timeline.Timeline(clock)
    tline.on_step(_event("zdu-start", "start"))
    clock.t += 1
    tline.on_step(_event("zdu-start", "done"))
    png = timeline.png(timeline.plot(tline, [_s("zdu-start", 3), _s("zdu-start", 9, ok=False)]))
    assert base64.b64decode(png).startswith(b"\x89PNG")
