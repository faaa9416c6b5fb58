"""ZDU state machine: every allowed move, every refused move, joins in and out of upgrade mode."""

from __future__ import annotations

import pytest

from atlbook.sandbox.products.zdu import STATES, ZduConflict, ZduStateMachine


def _at(state: str) -> ZduStateMachine:
    """A machine on 1.0 driven to ``state`` through legal moves."""
    m = ZduStateMachine(version="1.0", task_seconds=10)
    if state == "STABLE":
        return m
    m.start(0)
    if state == "READY_TO_UPGRADE":
        return m
    m.observe(["1.0", "1.1"], 0)
    if state == "MIXED":
        return m
    m.observe(["1.1", "1.1"], 0)
    if state == "READY_TO_RUN_UPGRADE_TASKS":
        return m
    if state == "UPGRADE_TASKS_FAILED":
        m.fail_tasks = True
    m.approve(0)
    if state == "RUNNING_UPGRADE_TASKS":
        return m
    m.refresh(10)
    assert m.state == state
    return m


def test_happy_path() -> None:
    m = _at("RUNNING_UPGRADE_TASKS")
    assert m.refresh(5) == "RUNNING_UPGRADE_TASKS"
    assert m.refresh(10) == "STABLE"
    assert m.version == "1.1" and m.target_version is None


ALLOWED = [
    ("STABLE", "start", "READY_TO_UPGRADE"),
    ("READY_TO_UPGRADE", "cancel", "STABLE"),
    ("READY_TO_RUN_UPGRADE_TASKS", "approve", "RUNNING_UPGRADE_TASKS"),
    ("UPGRADE_TASKS_FAILED", "retry", "RUNNING_UPGRADE_TASKS"),
]


@pytest.mark.parametrize("state, call, after", ALLOWED, ids=[f"{s}-{c}" for s, c, _ in ALLOWED])
def test_allowed(state: str, call: str, after: str) -> None:
    m = _at(state)
    assert getattr(m, call)(1) == after


REFUSED = [
    (s, c)
    for s in STATES
    for c in ("start", "cancel", "approve", "retry")
    if (s, c) not in {(a, b) for a, b, _ in ALLOWED}
]


@pytest.mark.parametrize("state, call", REFUSED, ids=[f"{s}-{c}" for s, c in REFUSED])
def test_refused(state: str, call: str) -> None:
    m = _at(state)
    with pytest.raises(ZduConflict):
        getattr(m, call)(1)
    assert m.state == state


def test_cancel_refused_once_mixed_mentions_upgrade() -> None:
    with pytest.raises(ZduConflict, match="once a node has been upgraded"):
        _at("MIXED").cancel(0)


def test_back_to_old_version_returns_to_ready() -> None:
    m = _at("MIXED")
    assert m.observe(["1.0", "1.0"], 0) == "READY_TO_UPGRADE"


@pytest.mark.parametrize(
    "state, version, live, ok",
    [
        ("STABLE", "1.0", ["1.0"], True),
        ("STABLE", "1.1", ["1.0"], False),
        ("STABLE", "1.1", [], True),
        ("READY_TO_UPGRADE", "1.1", ["1.0"], True),
        ("MIXED", "1.1", ["1.0", "1.1"], True),
    ],
)
def test_may_join(state: str, version: str, live: list[str], ok: bool) -> None:
    assert _at(state).may_join(version, live) is ok


def test_stable_cluster_adopts_version_of_sole_survivors() -> None:
    m = ZduStateMachine(version="1.0")
    assert m.observe(["2.0"], 0) == "STABLE"
    assert m.version == "2.0"
