"""The data of an upgrade: options, what is upgraded (:class:`Facts`), and what was observed.

Nothing here talks to the stack. :class:`Observation` is what :mod:`atlbook.upgrade.observe` read in one
pass (the StatefulSet, its pods, the product's own view of its cluster, PDBs, capacity, ledgers, RDS);
:mod:`atlbook.upgrade.gates` judges it; :mod:`atlbook.upgrade.sequence` turns :class:`Facts` into plans.

:class:`Facts` is written into the ledger by the plan's first step, so that a rerun after an interruption
rebuilds *the same* plan (same step ids and digests) even though the stack now looks half-upgraded.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable, Mapping
from typing import Any

from atlbook.products import catalogue
from atlbook.products import client as pclient

__all__ = [
    "RUNBOOK_PREFIX",
    "Facts",
    "LedgerView",
    "Observation",
    "Options",
    "PodView",
    "match_node",
    "runbook_name",
    "same_version",
]

RUNBOOK_PREFIX = "30-upgrade"
"""Ledger runbook names are ``30-upgrade-<product>`` (ConfigMap ``atlbook-ledger-30-upgrade-<product>``)."""


def runbook_name(product: str) -> str:
    """The ledger runbook name of an upgrade of ``product``."""
    return f"{RUNBOOK_PREFIX}-{product}"


@dataclasses.dataclass
class Options:
    """Timeouts, polling and load settings of an upgrade (tests inject short ones).

    Waits poll with back-off: the first poll after ``first_poll`` seconds, then 1.5× longer each time up
    to ``max_poll`` — never a fixed sleep.
    """

    node_timeout: float = 900.0
    """Seconds one node may take from its partition being lowered to RUNNING + ACTIVE on the new version."""
    tasks_timeout: float = 1800.0
    """Seconds to wait for READY_TO_RUN_UPGRADE_TASKS, and for STABLE after approval."""
    snapshot_timeout: float = 3600.0
    """Seconds to wait for the RDS snapshot to become ``available``."""
    first_poll: float = 0.02
    max_poll: float = 2.0
    error_polls: int = 3
    """Consecutive polls answering ``/status`` ERROR (or a crash-looping container) that halt a node."""
    index_tolerance: int = 10
    """Issues a Jira index may lag the database by and still count as healthy."""
    index_max_queue: int = 100
    """Longest replication queue a healthy Jira index may have."""
    db_instance: str = ""
    """RDS instance to snapshot; empty: ``<stack>-db``, else the only instance / the one naming the stack."""
    load_users: int = 4
    """Virtual users of the load generator (each one cookie-pinned session)."""
    load_think: float = 0.02
    """Seconds a virtual user waits between two requests (pacing, not a wait for state)."""
    load_timeout: float = 5.0
    """Seconds before one load request counts as failed."""
    log_tail: int = 50
    """Lines of the failing pod's log kept in the record when a node halts."""
    after_action: Callable[[str], None] | None = None
    """Test seam: called with the step id after a step's action, before its verification (kill tests)."""
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep


@dataclasses.dataclass(frozen=True)
class Facts:
    """What one upgrade changes: recorded in the ledger by its first step, reused by every rerun."""

    product: str
    namespace: str
    statefulset: str
    container: str
    """Name of the product container in the pod template."""
    replicas: int
    from_version: str
    to_version: str
    image_from: str
    image_to: str
    partition_before: int
    service: str = ""
    """The product's Service (load generator, whole-cluster calls)."""
    snapshot_id: str = ""
    db_instance: str = ""

    @property
    def ordinals(self) -> list[int]:
        """Ordinals in upgrade order: highest first."""
        return list(range(self.replicas - 1, -1, -1))

    def pod(self, ordinal: int) -> str:
        """The pod name of ``ordinal``."""
        return f"{self.statefulset}-{ordinal}"

    def to_json(self) -> str:
        """Compact JSON (the ledger detail of the first step)."""
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Facts:
        """Inverse of :meth:`to_json`; unknown keys are ignored."""
        doc = json.loads(text)
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in doc.items() if k in names})

    def to_dict(self) -> dict[str, Any]:
        """For the record."""
        return dataclasses.asdict(self)


@dataclasses.dataclass
class PodView:
    """One product pod as Kubernetes and the product itself see it."""

    name: str
    ordinal: int
    uid: str = ""
    node: str | None = None
    ip: str | None = None
    phase: str | None = None
    ready: bool = False
    terminating: bool = False
    image: str = ""
    revision: str = ""
    restarts: int = 0
    waiting_reason: str | None = None
    status_state: str | None = None
    """``/status`` state through the pod proxy (``None`` when it could not be asked)."""
    status_http: int | None = None
    error: str | None = None

    @property
    def running(self) -> bool:
        """``/status`` RUNNING with HTTP 200 (reference §8.1: Ready is not enough)."""
        return self.status_state == "RUNNING" and self.status_http == 200


@dataclasses.dataclass(frozen=True)
class LedgerView:
    """Another (or this) runbook's ledger as found in the namespace."""

    runbook: str
    configmap: str
    holder: str | None
    since: str | None
    lease_until: str | None
    live_lock: bool
    unfinished: bool
    steps_done: int
    detail: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    dead_holder: bool = False
    """The lock's holder is a process on this host that no longer exists: the next run recovers it."""


@dataclasses.dataclass
class Observation:
    """Everything the gates judge, read in one pass (see :mod:`atlbook.upgrade.observe`)."""

    product: str
    namespace: str
    statefulset: str | None
    replicas: int = 0
    container: str = ""
    image: str = ""
    partition: int = 0
    strategy: str = "RollingUpdate"
    current_revision: str = ""
    update_revision: str = ""
    service: str = ""
    context_path: str = ""
    pods: list[PodView] = dataclasses.field(default_factory=list)
    cluster_nodes: list[pclient.ClusterNode] = dataclasses.field(default_factory=list)
    cluster_error: str | None = None
    zdu: pclient.ZduState | None = None
    zdu_error: str | None = None
    pdbs: list[str] = dataclasses.field(default_factory=list)
    room: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    """Per pod: ``{"pod", "fits", "evidence"}`` from :mod:`atlbook.capacity`."""
    room_error: str | None = None
    pdb_error: str | None = None
    index: dict[str, pclient.IndexSummary | str] = dataclasses.field(default_factory=dict)
    """Jira: per pod its index summary, or the error reading it."""
    ledgers: list[LedgerView] = dataclasses.field(default_factory=list)
    own_ledger: LedgerView | None = None
    resume: Facts | None = None
    """Facts of an unfinished upgrade of this product found in the ledger: this run resumes it."""
    resume_failed_step: str | None = None
    rds: dict[str, Any] | None = None
    rds_error: str | None = None
    error: str | None = None
    """A failure that prevented observing the product at all (no StatefulSet, …)."""

    @property
    def info(self) -> catalogue.ProductInfo:
        """The product's catalogue entry."""
        return catalogue.get(self.product)

    def versions(self) -> list[str]:
        """Distinct versions of the live cluster nodes (normalised ``major.minor.patch``), sorted."""
        out = set()
        for node in self.cluster_nodes:
            if node.alive and node.version:
                out.add(_norm(node.version))
        return sorted(out)

    def node_for(self, pod: PodView) -> pclient.ClusterNode | None:
        """The product's cluster node of ``pod`` (by node id = pod name, else by IP)."""
        return match_node(self.cluster_nodes, pod.name, pod.ip)


def _norm(version: str) -> str:
    try:
        return str(catalogue.parse_version(version))
    except Exception:  # noqa: BLE001 - an unparsable version is shown as is
        return version


def match_node(nodes: list[pclient.ClusterNode], pod: str, ip: str | None) -> pclient.ClusterNode | None:
    """The node with id ``pod`` (the charts set the node id to the pod name), else the one with ``ip``."""
    for node in nodes:
        if node.node_id == pod:
            return node
    if ip:
        for node in nodes:
            if node.ip == ip:
                return node
    return None


def same_version(a: str | None, b: str | None) -> bool:
    """Whether two version strings name the same ``major.minor.patch`` (``9.12.3-jdk17`` = ``9.12.3``)."""
    if a is None or b is None:
        return False
    return _norm(a) == _norm(b)
