"""The zero-downtime-upgrade state machine shared by the nodes of one product cluster.

States and moves (Atlassian's ZDU docs; the same enum for Jira, Confluence and Bitbucket)::

    STABLE ──start──▶ READY_TO_UPGRADE ──a node on another version──▶ MIXED
       ▲                 │   ▲                                          │ all nodes on the new version
       │               cancel └──────── all nodes back on the old ──────┤
       │                 ▼                                              ▼
       └──────────── STABLE                              READY_TO_RUN_UPGRADE_TASKS
                                                                        │ approve
       STABLE ◀── tasks done ── RUNNING_UPGRADE_TASKS ◀─────────────────┘
                                    │ tasks fail                ▲ retryUpgrade
                                    ▼                           │
                             UPGRADE_TASKS_FAILED ──────────────┘

Rules it refuses (:class:`ZduConflict`, HTTP 409 on the wire): ``start`` outside STABLE, ``cancel``
once a node runs the new version (MIXED or later), ``approve`` outside READY_TO_RUN_UPGRADE_TASKS,
``retryUpgrade`` outside UPGRADE_TASKS_FAILED. Outside upgrade mode a node on another version cannot
join a cluster that has live nodes (:meth:`ZduStateMachine.may_join` is ``False``); with no live node
left, the first node to start sets the cluster version (a full-downtime upgrade).

Pure: time is passed in (simulated seconds), no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

__all__ = [
    "CANCEL_MIXED_MSG",
    "STATES",
    "ZduConflict",
    "ZduStateMachine",
]

STABLE = "STABLE"
READY_TO_UPGRADE = "READY_TO_UPGRADE"
MIXED = "MIXED"
READY_TO_RUN_UPGRADE_TASKS = "READY_TO_RUN_UPGRADE_TASKS"
RUNNING_UPGRADE_TASKS = "RUNNING_UPGRADE_TASKS"
UPGRADE_TASKS_FAILED = "UPGRADE_TASKS_FAILED"
STATES = (
    STABLE,
    READY_TO_UPGRADE,
    MIXED,
    READY_TO_RUN_UPGRADE_TASKS,
    RUNNING_UPGRADE_TASKS,
    UPGRADE_TASKS_FAILED,
)
"""Every ZDU state, in the order of a successful upgrade."""

START_MSG = "Cannot start upgrade mode: the cluster is in state {state}, not STABLE"
CANCEL_MIXED_MSG = "Cannot cancel upgrade mode once a node has been upgraded (state {state})"
CANCEL_MSG = "Upgrade mode is not enabled (state {state})"
APPROVE_MSG = "Cannot run upgrade tasks in state {state}: every node must be on the new version first"
RETRY_MSG = "Nothing to retry: upgrade tasks have not failed (state {state})"


class ZduConflict(Exception):
    """A ZDU call not allowed in the current state (409 on the wire)."""


@dataclass
class ZduStateMachine:
    """State of one product cluster's upgrade. ``version`` is the cluster's committed version."""

    version: str
    """The version every node ran before the upgrade (``originalVersion``); the new one after tasks."""
    task_seconds: float = 60.0
    """Simulated seconds the upgrade tasks run after ``approve``."""
    state: str = STABLE
    target_version: str | None = None
    """The new version once a node runs it."""
    tasks_done_at: float | None = None
    fail_tasks: bool = False
    """Set by a fault: the next upgrade tasks fail."""

    @property
    def upgrade_mode(self) -> bool:
        """Whether upgrade mode is enabled (any state but STABLE)."""
        return self.state != STABLE

    def refresh(self, now: float) -> str:
        """Finish running upgrade tasks whose time has come; returns the state."""
        if (
            self.state == RUNNING_UPGRADE_TASKS
            and self.tasks_done_at is not None
            and now >= self.tasks_done_at
        ):
            self.tasks_done_at = None
            if self.fail_tasks:
                self.state = UPGRADE_TASKS_FAILED
            else:
                self.version = self.target_version or self.version
                self.target_version = None
                self.state = STABLE
        return self.state

    def may_join(self, node_version: str, live_versions: Iterable[str]) -> bool:
        """Whether a node on ``node_version`` may join now (``live_versions``: the other live nodes)."""
        live = list(live_versions)
        if not live:
            return True
        if self.state == STABLE:
            return node_version == self.version
        if self.state in (RUNNING_UPGRADE_TASKS, UPGRADE_TASKS_FAILED):
            return node_version == (self.target_version or self.version)
        return True

    def observe(self, live_versions: Iterable[str], now: float) -> str:
        """Recompute the state from the versions of the live nodes (call on every join/leave)."""
        versions = set(live_versions)
        self.refresh(now)
        if not versions:
            if self.state == STABLE:
                return self.state
        if self.state == STABLE:
            if len(versions) == 1:
                (only,) = versions
                self.version = only
            return self.state
        if self.state in (READY_TO_UPGRADE, MIXED, READY_TO_RUN_UPGRADE_TASKS):
            new = versions - {self.version}
            if not new:
                self.state = READY_TO_UPGRADE
                self.target_version = None
            else:
                self.target_version = sorted(new)[-1]
                self.state = READY_TO_RUN_UPGRADE_TASKS if self.version not in versions else MIXED
        return self.state

    def start(self, now: float) -> str:
        """Enable upgrade mode (STABLE → READY_TO_UPGRADE)."""
        self.refresh(now)
        if self.state != STABLE:
            raise ZduConflict(START_MSG.format(state=self.state))
        self.state = READY_TO_UPGRADE
        return self.state

    def cancel(self, now: float) -> str:
        """Disable upgrade mode; only before any node is upgraded (READY_TO_UPGRADE → STABLE)."""
        self.refresh(now)
        if self.state == STABLE:
            raise ZduConflict(CANCEL_MSG.format(state=self.state))
        if self.state != READY_TO_UPGRADE:
            raise ZduConflict(CANCEL_MIXED_MSG.format(state=self.state))
        self.state = STABLE
        return self.state

    def approve(self, now: float) -> str:
        """Run the upgrade tasks (READY_TO_RUN_UPGRADE_TASKS → RUNNING_UPGRADE_TASKS → STABLE later)."""
        self.refresh(now)
        if self.state != READY_TO_RUN_UPGRADE_TASKS:
            raise ZduConflict(APPROVE_MSG.format(state=self.state))
        self.state = RUNNING_UPGRADE_TASKS
        self.tasks_done_at = now + self.task_seconds
        return self.state

    def retry(self, now: float) -> str:
        """Run failed upgrade tasks again (UPGRADE_TASKS_FAILED → RUNNING_UPGRADE_TASKS)."""
        self.refresh(now)
        if self.state != UPGRADE_TASKS_FAILED:
            raise ZduConflict(RETRY_MSG.format(state=self.state))
        self.state = RUNNING_UPGRADE_TASKS
        self.tasks_done_at = now + self.task_seconds
        return self.state
