"""00-sandbox's wait for the product nodes to settle (``rehearsal.wait_settled``), without a sandbox.

Aspects: polls until no node is STARTING (RUNNING and ERROR are settled), then returns the nodes as a
table; headless it says so in progress lines (one per node state change, none per unchanged poll); a
node still starting at the timeout is returned as not settled, never raised; no product nodes returns
at once; a negative timeout or a poll that is not positive is refused.
"""

from __future__ import annotations

import pytest

from atlbook import widgets
from atlbook.sandbox import rehearsal


class FakeControl:
    def __init__(self, *states: list[str]) -> None:
        self.states = list(states)
        self.calls = 0

    def status(self) -> dict:
        now = self.states[min(self.calls, len(self.states) - 1)]
        self.calls += 1
        return {
            "products": [
                {
                    "namespace": "atlassian",
                    "pod": f"jira-{i}",
                    "product": "jira",
                    "version": "11.3.1",
                    "state": s,
                }
                for i, s in enumerate(now)
            ]
        }


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture(autouse=True)
def headless(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(widgets.HEADLESS_ENV, "1")


def test_waits_until_no_node_is_starting(capsys: pytest.CaptureFixture) -> None:
    control = FakeControl(["STARTING", "RUNNING"], ["STARTING", "RUNNING"], ["ERROR", "RUNNING"])
    clock = Clock()
    table = rehearsal.wait_settled(control, clock=clock, sleep=clock.sleep, poll=1.0)
    assert control.calls == 3 and clock.now == 2.0
    assert table.to_dict(orient="records") == [
        {
            "pod": "atlassian/jira-0",
            "product": "jira",
            "version": "11.3.1",
            "state": "ERROR",
            "settled": True,
        },
        {
            "pod": "atlassian/jira-1",
            "product": "jira",
            "version": "11.3.1",
            "state": "RUNNING",
            "settled": True,
        },
    ]
    out = capsys.readouterr().out.splitlines()
    assert out.count("Product nodes settling: atlassian/jira-0 — version=11.3.1, state=STARTING") == 1
    assert "Product nodes settling: atlassian/jira-0 — version=11.3.1, state=ERROR" in out
    assert "Product nodes settling: 2/2 (100 %)" in out


def test_a_node_still_starting_at_the_timeout_is_returned_not_raised() -> None:
    clock = Clock()
    table = rehearsal.wait_settled(
        FakeControl(["STARTING"]), timeout=3, poll=1.0, clock=clock, sleep=clock.sleep
    )
    assert table["settled"].tolist() == [False] and clock.now == 3.0


def test_no_product_nodes_returns_at_once() -> None:
    control = FakeControl([])
    assert rehearsal.wait_settled(control).empty and control.calls == 1


@pytest.mark.parametrize("timeout, poll", [(-1, 1.0), (10, 0.0)])
def test_bad_timing_is_refused(timeout: float, poll: float) -> None:
    with pytest.raises(ValueError, match="timeout must be"):
        rehearsal.wait_settled(FakeControl([]), timeout=timeout, poll=poll)
