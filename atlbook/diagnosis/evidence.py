"""The evidence a diagnosis reasons over: plain dataclasses, no client, no I/O.

:mod:`atlbook.diagnosis.collect` fills an :class:`Evidence` from the live stack (one LIST per kind,
the pod proxy, AWS, the database); the checks in :mod:`atlbook.diagnosis.checks` are pure functions
over it. Unit tests build an :class:`Evidence` by hand. The ``*_from_json`` parsers turn the
Kubernetes wire format (camelCase dicts, as a LIST returns them) into these records, keeping only
what a check reads; they never raise on a missing field (a half-filled object is itself evidence).

Times are timezone-aware UTC ``datetime`` objects. Log lines are stored already redacted
(:func:`redact_line`): a check may quote them in a finding.
"""

from __future__ import annotations

import datetime as dt
import enum
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "PRODUCTS",
    "ClusterNodeView",
    "ContainerState",
    "DbActivity",
    "DbConnections",
    "Efs",
    "Endpoints",
    "Event",
    "Evidence",
    "IndexSummary",
    "Ingress",
    "LogTail",
    "MetricSeries",
    "NetworkPolicy",
    "Node",
    "NodeGroup",
    "Pdb",
    "Pod",
    "ProductExpectation",
    "ProductNode",
    "Pvc",
    "Rds",
    "Severity",
    "SourceError",
    "StatefulSet",
    "Window",
    "endpoints_from_json",
    "event_from_json",
    "ingress_from_json",
    "network_policy_from_json",
    "node_from_json",
    "context_path_of",
    "parse_time",
    "pdb_from_json",
    "pod_from_json",
    "pvc_from_json",
    "redact_line",
    "statefulset_from_json",
]

PRODUCTS: tuple[str, ...] = ("jira", "confluence", "bitbucket")
"""The Atlassian products a pod can belong to."""


class Severity(enum.IntEnum):
    """How bad a finding is; the report sorts on it. ``WARNING`` and above need an operator."""

    INFO = 10
    WARNING = 20
    ERROR = 30
    CRITICAL = 40

    def __str__(self) -> str:
        return self.name.lower()


@dataclass(frozen=True)
class Window:
    """The time window the incident is looked at over (UTC)."""

    start: dt.datetime
    end: dt.datetime

    @classmethod
    def last(cls, minutes: float, *, now: dt.datetime | None = None) -> Window:
        """The ``minutes`` up to ``now`` (default: the wall clock)."""
        end = now or dt.datetime.now(dt.UTC)
        return cls(end - dt.timedelta(minutes=minutes), end)

    def contains(self, when: dt.datetime | None) -> bool:
        """True when ``when`` is at or after the window's start (``None``: unknown time, counts as inside).

        Times after ``end`` count too: they are recent, only stamped by a clock ahead of ours (skew, or the
        sandbox's simulated clock, which runs faster than the wall clock).
        """
        return when is None or self.start <= when


# --- Kubernetes -----------------------------------------------------------------------------------


@dataclass
class ContainerState:
    """One container of a pod, from ``status.containerStatuses``."""

    name: str
    ready: bool = True
    restart_count: int = 0
    state: str = "running"
    """``running``, ``waiting`` or ``terminated``."""
    reason: str | None = None
    """Reason of the current state (e.g. ``CrashLoopBackOff``, ``OOMKilled``)."""
    exit_code: int | None = None
    """Exit code of the current state when it is ``terminated``."""
    last_reason: str | None = None
    """Reason the previous instance terminated (``OOMKilled``, ``Error``, ``Completed``)."""
    last_exit_code: int | None = None
    last_finished: dt.datetime | None = None
    image: str = ""


@dataclass
class Pod:
    """A pod as one LIST saw it."""

    name: str
    namespace: str = ""
    product: str | None = None
    """``jira``/``confluence``/``bitbucket`` when the pod is a product node, else ``None``."""
    node_name: str | None = None
    phase: str = "Running"
    ready: bool = True
    labels: dict[str, str] = field(default_factory=dict)
    containers: list[ContainerState] = field(default_factory=list)
    scheduled: bool = True
    unschedulable_reason: str | None = None
    """The scheduler's message when ``PodScheduled`` is False (e.g. ``0/3 nodes are available: ...``)."""
    owner: str | None = None
    """Name of the owning StatefulSet/ReplicaSet."""
    revision: str | None = None
    """``controller-revision-hash`` label (StatefulSet revision)."""
    created: dt.datetime | None = None
    deleting: bool = False
    ready_since: dt.datetime | None = None
    context_path: str = ""
    """Where the product serves (``/jira``): from the readiness probe path, else the context-path env."""

    @property
    def image_tag(self) -> str | None:
        """Tag of the first container's image (the product version, for product pods)."""
        if not self.containers or ":" not in self.containers[0].image:
            return None
        return self.containers[0].image.rsplit(":", 1)[1]

    @property
    def restarts(self) -> int:
        """Restarts summed over containers."""
        return sum(c.restart_count for c in self.containers)


@dataclass
class Node:
    """A worker node."""

    name: str
    zone: str | None = None
    ready: bool | None = True
    """``None`` is status Unknown (the kubelet stopped reporting)."""
    not_ready_reason: str | None = None
    pressure: list[str] = field(default_factory=list)
    """Conditions among MemoryPressure/DiskPressure/PIDPressure/NetworkUnavailable that are True."""
    unschedulable: bool = False
    nodegroup: str | None = None
    instance_type: str | None = None
    transition: dt.datetime | None = None
    """When the Ready condition last changed."""


@dataclass
class Event:
    """A Kubernetes event in the namespace."""

    reason: str
    message: str = ""
    type: str = "Normal"
    kind: str = ""
    name: str = ""
    count: int = 1
    last_seen: dt.datetime | None = None


@dataclass
class StatefulSet:
    """A StatefulSet (one per product)."""

    name: str
    replicas: int = 0
    ready_replicas: int = 0
    updated_replicas: int = 0
    current_revision: str | None = None
    update_revision: str | None = None
    selector: dict[str, str] = field(default_factory=dict)
    image: str = ""


@dataclass
class Pvc:
    """A PersistentVolumeClaim."""

    name: str
    phase: str = "Bound"
    storage_class: str | None = None
    access_modes: list[str] = field(default_factory=list)


@dataclass
class Pdb:
    """A PodDisruptionBudget."""

    name: str
    selector: dict[str, str] = field(default_factory=dict)
    disruptions_allowed: int = 1
    current_healthy: int = 0
    desired_healthy: int = 0
    expected_pods: int = 0


@dataclass
class Endpoints:
    """A Service's endpoints: ready and not-ready pod names."""

    name: str
    ready: list[str] = field(default_factory=list)
    not_ready: list[str] = field(default_factory=list)


@dataclass
class Ingress:
    """An Ingress: its annotations and the Services it routes to."""

    name: str
    annotations: dict[str, str] = field(default_factory=dict)
    services: list[str] = field(default_factory=list)
    ingress_class: str | None = None


@dataclass
class NetworkPolicy:
    """A NetworkPolicy reduced to what coverage needs."""

    name: str
    pod_selector: dict[str, str] = field(default_factory=dict)
    """``matchLabels``; empty selects every pod of the namespace."""
    selector_has_expressions: bool = False
    policy_types: list[str] = field(default_factory=list)
    ingress_rules: int = 0
    egress_rules: int = 0

    @property
    def default_deny_ingress(self) -> bool:
        """True for the classic default-deny: selects all pods, type Ingress, no ingress rule."""
        return (
            not self.pod_selector
            and not self.selector_has_expressions
            and "Ingress" in self.policy_types
            and self.ingress_rules == 0
        )

    def selects(self, labels: Mapping[str, str]) -> bool:
        """True when the policy's ``matchLabels`` select a pod with ``labels`` (expressions: assumed yes)."""
        return all(labels.get(k) == v for k, v in self.pod_selector.items())


# --- product nodes --------------------------------------------------------------------------------


@dataclass
class ClusterNodeView:
    """One entry of a product's cluster node list (Jira ``/rest/api/2/cluster/nodes`` and the like)."""

    node_id: str
    state: str = "ACTIVE"
    alive: bool = True
    version: str | None = None


@dataclass
class IndexSummary:
    """Jira ``/rest/api/2/index/summary`` for one node."""

    node_id: str
    readable: bool = True
    count_in_database: int | None = None
    count_in_index: int | None = None
    queue_sizes: dict[str, int] = field(default_factory=dict)
    """``replicationQueues`` per source node: ``queueSize``."""


@dataclass
class ProductNode:
    """What one product pod answered through the pod proxy."""

    pod: str
    product: str
    http_status: int | None = None
    state: str | None = None
    """``/status`` JSON ``state`` (RUNNING, STARTING, MAINTENANCE, ERROR, ...); ``None`` if not reached."""
    error: str | None = None
    """Why ``/status`` could not be read."""
    cluster_nodes: list[ClusterNodeView] | None = None
    zdu_state: str | None = None
    version: str | None = None
    index: IndexSummary | None = None


# --- logs -----------------------------------------------------------------------------------------

_REDACTIONS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"(?i)(password|passwd|pwd|secret|token|apikey|api_key)(\s*[=:]\s*)(\S+)"), r"\1\2***"),
    (re.compile(r"(?i)(authorization:\s*)(basic|bearer)\s+\S+"), r"\1\2 ***"),
    (re.compile(r"(?i)(postgres(?:ql)?://[^:/\s]+:)([^@\s]+)(@)"), r"\1***\3"),
    (re.compile(r"\bAKIA[0-9A-Z]{16}\b"), "AKIA***"),
)


def redact_line(line: str, *, secrets: Sequence[str] = (), limit: int = 400) -> str:
    """``line`` with credentials masked (key=value secrets, auth headers, URL passwords, AWS key ids,
    and every literal in ``secrets``) and capped at ``limit`` characters."""
    for pattern, repl in _REDACTIONS:
        line = pattern.sub(repl, line)
    for secret in secrets:
        if secret:
            line = line.replace(secret, "***")
    return line if len(line) <= limit else line[: limit - 1] + "…"


@dataclass
class LogTail:
    """The last lines of a pod's main container (and of its previous instance when it restarted)."""

    pod: str
    container: str = ""
    lines: list[str] = field(default_factory=list)
    previous: list[str] = field(default_factory=list)


# --- AWS + database -------------------------------------------------------------------------------


@dataclass
class MetricSeries:
    """A CloudWatch metric over the window: ``(timestamp, value)`` sorted by time."""

    name: str
    points: list[tuple[dt.datetime, float]] = field(default_factory=list)
    unit: str = ""

    @property
    def latest(self) -> float | None:
        """The newest value, or ``None`` without data."""
        return self.points[-1][1] if self.points else None

    @property
    def maximum(self) -> float | None:
        """The largest value, or ``None`` without data."""
        return max(v for _, v in self.points) if self.points else None

    @property
    def minimum(self) -> float | None:
        """The smallest value, or ``None`` without data."""
        return min(v for _, v in self.points) if self.points else None


@dataclass
class Rds:
    """The RDS instance and its metrics."""

    identifier: str
    status: str = "available"
    instance_class: str = ""
    multi_az: bool = True
    allocated_storage_gib: float = 0.0
    metrics: dict[str, MetricSeries] = field(default_factory=dict)
    """``CPUUtilization``, ``DatabaseConnections``, ``FreeStorageSpace``."""


@dataclass
class Efs:
    """An EFS file system and its metrics."""

    file_system_id: str
    name: str = ""
    throughput_mode: str = "bursting"
    lifecycle_state: str = "available"
    size_bytes: int = 0
    metrics: dict[str, MetricSeries] = field(default_factory=dict)
    """``BurstCreditBalance``, ``PercentIOLimit``, ``MeteredIOBytes``/``PermittedThroughput``."""


@dataclass
class NodeGroup:
    """An EKS managed node group."""

    name: str
    status: str = "ACTIVE"
    desired: int = 0
    health_issues: list[str] = field(default_factory=list)
    zones: list[str] = field(default_factory=list)


@dataclass
class DbConnections:
    """``pg_stat_activity`` grouped: one row per (application_name, state)."""

    application: str
    state: str
    count: int
    database: str = ""


@dataclass
class DbActivity:
    """What the database said about itself."""

    max_connections: int
    reserved_connections: int = 3
    connections: list[DbConnections] = field(default_factory=list)
    waiting_locks: list[str] = field(default_factory=list)
    """One line per waiting lock: pid, application, relation, seconds waited."""
    long_transactions: list[tuple[str, float]] = field(default_factory=list)
    """``(application_name, age in seconds)`` of transactions open longer than the threshold."""

    @property
    def total(self) -> int:
        """All client connections."""
        return sum(c.count for c in self.connections)

    def by_application(self) -> dict[str, int]:
        """Connections per application_name."""
        out: dict[str, int] = {}
        for c in self.connections:
            out[c.application] = out.get(c.application, 0) + c.count
        return out


@dataclass(frozen=True)
class SourceError:
    """A source that could not be read: itself a finding, never a crash."""

    source: str
    """e.g. ``k8s:pods``, ``product:jira-0:/status``, ``aws:rds``, ``database``."""
    message: str


@dataclass
class ProductExpectation:
    """What the stack description says a product should look like."""

    replicas: int = 2
    pool_max: int = 100
    """DB pool max size per node."""
    http_port: int = 8080
    version: str | None = None


@dataclass
class Evidence:
    """Everything one diagnosis collected; the input of every check."""

    namespace: str
    window: Window
    products: dict[str, ProductExpectation] = field(default_factory=dict)
    pods: list[Pod] = field(default_factory=list)
    nodes: list[Node] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    statefulsets: list[StatefulSet] = field(default_factory=list)
    pvcs: list[Pvc] = field(default_factory=list)
    pdbs: list[Pdb] = field(default_factory=list)
    endpoints: list[Endpoints] = field(default_factory=list)
    services: list[str] = field(default_factory=list)
    ingresses: list[Ingress] = field(default_factory=list)
    network_policies: list[NetworkPolicy] = field(default_factory=list)
    product_nodes: dict[str, ProductNode] = field(default_factory=dict)
    logs: dict[str, LogTail] = field(default_factory=dict)
    rds: Rds | None = None
    efs: list[Efs] = field(default_factory=list)
    nodegroups: list[NodeGroup] = field(default_factory=list)
    db: DbActivity | None = None
    source_errors: list[SourceError] = field(default_factory=list)
    api_calls: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    """Wall seconds the collection took."""
    scope_product: str | None = None
    scope_pod: str | None = None

    def product_pods(self, product: str | None = None) -> list[Pod]:
        """Pods that are product nodes (of ``product`` when given)."""
        return [p for p in self.pods if p.product and (product is None or p.product == product)]

    def node(self, name: str | None) -> Node | None:
        """The worker called ``name``, if listed."""
        for n in self.nodes:
            if n.name == name:
                return n
        return None

    def pod(self, name: str) -> Pod | None:
        """The pod called ``name``, if listed."""
        for p in self.pods:
            if p.name == name:
                return p
        return None


# --- parsers from the Kubernetes wire format ------------------------------------------------------


def parse_time(value: Any) -> dt.datetime | None:
    """An RFC 3339 timestamp (or datetime) as an aware UTC datetime; ``None`` when absent or unreadable."""
    if value is None or value == "":
        return None
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    if isinstance(value, (int, float)):
        seconds = value / 1000 if value > 1e11 else value
        return dt.datetime.fromtimestamp(seconds, dt.UTC)
    text = str(value).strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    try:
        parsed = dt.datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def _d(obj: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(obj, Mapping):
            return None
        obj = obj.get(key)
    return obj


def _product_of(labels: Mapping[str, str], owner: str | None, name: str) -> str | None:
    """The product whose *node* this pod is, or None (helpers such as Synchrony, NFS, OpenSearch are not).

    A chart label naming something else (``app.kubernetes.io/name: bitbucket-nfs``) wins over names:
    ``bitbucket-nfs-0`` is Bitbucket's NFS server, not a Bitbucket node. Unlabelled pods count when their
    owner is the product's StatefulSet (``jira``) or their name is ``<product>-<ordinal>``.
    """
    for key in ("app.kubernetes.io/name", "app", "atlbook/product"):
        value = labels.get(key)
        if value in PRODUCTS:
            return value
    if labels.get("app.kubernetes.io/name") or labels.get("app"):
        return None
    if owner in PRODUCTS:
        return owner
    for product in PRODUCTS:
        if name.startswith(product + "-") and name[len(product) + 1 :].isdigit():
            return product
    return None


def _container(raw: Mapping[str, Any]) -> ContainerState:
    state = raw.get("state") or {}
    last = raw.get("lastState") or {}
    kind = next(iter(state), "running") if isinstance(state, Mapping) and state else "running"
    current = state.get(kind) if isinstance(state, Mapping) else None
    last_term = last.get("terminated") if isinstance(last, Mapping) else None
    return ContainerState(
        name=str(raw.get("name", "")),
        ready=bool(raw.get("ready", False)),
        restart_count=int(raw.get("restartCount") or 0),
        state=str(kind),
        reason=_d(current, "reason"),
        exit_code=_d(current, "exitCode") if kind == "terminated" else None,
        last_reason=_d(last_term, "reason"),
        last_exit_code=_d(last_term, "exitCode"),
        last_finished=parse_time(_d(last_term, "finishedAt")),
        image=str(raw.get("image", "")),
    )


_CONTEXT_ENV = ("ATL_TOMCAT_CONTEXTPATH", "SERVER_CONTEXT_PATH")


def context_path_of(raw: Mapping[str, Any]) -> str:
    """The product's context path in a pod object: the readiness probe's ``<context>/status``, else the
    ``ATL_TOMCAT_CONTEXTPATH``/``SERVER_CONTEXT_PATH`` env of its first container, else ``""``."""
    containers = _d(raw, "spec", "containers") or []
    first = containers[0] if containers and isinstance(containers[0], Mapping) else {}
    probe = _d(first, "readinessProbe", "httpGet", "path")
    if isinstance(probe, str) and probe.rstrip("/").endswith("/status"):
        return probe.rstrip("/")[: -len("/status")].rstrip("/")
    for env in first.get("env") or []:
        if isinstance(env, Mapping) and env.get("name") in _CONTEXT_ENV and env.get("value"):
            return "/" + str(env["value"]).strip("/")
    return ""


def pod_from_json(raw: Mapping[str, Any]) -> Pod:
    """A :class:`Pod` from a pod object of a LIST."""
    meta = raw.get("metadata") or {}
    spec = raw.get("spec") or {}
    status = raw.get("status") or {}
    labels = dict(meta.get("labels") or {})
    owners = meta.get("ownerReferences") or []
    owner = str(owners[0].get("name")) if owners and isinstance(owners[0], Mapping) else None
    name = str(meta.get("name", ""))
    conditions = {c.get("type"): c for c in status.get("conditions") or [] if isinstance(c, Mapping)}
    sched = conditions.get("PodScheduled")
    ready_cond = conditions.get("Ready")
    scheduled = not (sched and sched.get("status") == "False")
    containers = [_container(c) for c in status.get("containerStatuses") or [] if isinstance(c, Mapping)]
    if not containers:
        containers = [
            ContainerState(
                name=str(c.get("name", "")), ready=False, state="waiting", image=str(c.get("image", ""))
            )
            for c in spec.get("containers") or []
            if isinstance(c, Mapping)
        ]
    reason = None
    if sched and sched.get("status") == "False":
        reason = str(sched.get("message") or sched.get("reason") or "Unschedulable")
    return Pod(
        name=name,
        namespace=str(meta.get("namespace", "")),
        product=_product_of(labels, owner, name),
        node_name=spec.get("nodeName"),
        phase=str(status.get("phase", "Pending")),
        ready=bool(ready_cond and ready_cond.get("status") == "True"),
        labels=labels,
        containers=containers,
        scheduled=scheduled,
        unschedulable_reason=reason,
        owner=owner,
        revision=labels.get("controller-revision-hash"),
        created=parse_time(meta.get("creationTimestamp")),
        deleting=meta.get("deletionTimestamp") is not None,
        ready_since=parse_time(ready_cond.get("lastTransitionTime")) if ready_cond else None,
        context_path=context_path_of(raw),
    )


_PRESSURES = ("MemoryPressure", "DiskPressure", "PIDPressure", "NetworkUnavailable")


def node_from_json(raw: Mapping[str, Any]) -> Node:
    """A :class:`Node` from a node object of a LIST."""
    meta = raw.get("metadata") or {}
    labels = meta.get("labels") or {}
    status = raw.get("status") or {}
    conditions = {c.get("type"): c for c in status.get("conditions") or [] if isinstance(c, Mapping)}
    ready_cond = conditions.get("Ready")
    ready: bool | None
    if ready_cond is None:
        ready = None
    else:
        ready = {"True": True, "False": False}.get(str(ready_cond.get("status")))
    return Node(
        name=str(meta.get("name", "")),
        zone=labels.get("topology.kubernetes.io/zone")
        or labels.get("failure-domain.beta.kubernetes.io/zone"),
        ready=ready,
        not_ready_reason=(ready_cond or {}).get("reason") if ready is not True else None,
        pressure=[t for t in _PRESSURES if _d(conditions, t, "status") == "True"],
        unschedulable=bool(_d(raw, "spec", "unschedulable")),
        nodegroup=labels.get("eks.amazonaws.com/nodegroup"),
        instance_type=labels.get("node.kubernetes.io/instance-type"),
        transition=parse_time((ready_cond or {}).get("lastTransitionTime")),
    )


def event_from_json(raw: Mapping[str, Any]) -> Event:
    """An :class:`Event` from a core/v1 event of a LIST."""
    involved = raw.get("involvedObject") or raw.get("regarding") or {}
    last = raw.get("lastTimestamp") or raw.get("eventTime") or _d(raw, "series", "lastObservedTime")
    last = last or raw.get("firstTimestamp") or _d(raw, "metadata", "creationTimestamp")
    return Event(
        reason=str(raw.get("reason", "")),
        message=str(raw.get("message") or raw.get("note") or ""),
        type=str(raw.get("type", "Normal")),
        kind=str(involved.get("kind", "")),
        name=str(involved.get("name", "")),
        count=int(str(raw.get("count") or _d(raw, "series", "count") or 1)),
        last_seen=parse_time(last),
    )


def statefulset_from_json(raw: Mapping[str, Any]) -> StatefulSet:
    """A :class:`StatefulSet` from a LIST item."""
    spec = raw.get("spec") or {}
    status = raw.get("status") or {}
    containers = _d(spec, "template", "spec", "containers") or []
    return StatefulSet(
        name=str(_d(raw, "metadata", "name") or ""),
        replicas=int(spec["replicas"]) if spec.get("replicas") is not None else 1,
        ready_replicas=int(status.get("readyReplicas") or 0),
        updated_replicas=int(status.get("updatedReplicas") or 0),
        current_revision=status.get("currentRevision"),
        update_revision=status.get("updateRevision"),
        selector=dict(_d(spec, "selector", "matchLabels") or {}),
        image=str(containers[0].get("image", "")) if containers else "",
    )


def pvc_from_json(raw: Mapping[str, Any]) -> Pvc:
    """A :class:`Pvc` from a LIST item."""
    return Pvc(
        name=str(_d(raw, "metadata", "name") or ""),
        phase=str(_d(raw, "status", "phase") or "Pending"),
        storage_class=_d(raw, "spec", "storageClassName"),
        access_modes=list(_d(raw, "spec", "accessModes") or []),
    )


def pdb_from_json(raw: Mapping[str, Any]) -> Pdb:
    """A :class:`Pdb` from a LIST item."""
    status = raw.get("status") or {}
    return Pdb(
        name=str(_d(raw, "metadata", "name") or ""),
        selector=dict(_d(raw, "spec", "selector", "matchLabels") or {}),
        disruptions_allowed=int(status.get("disruptionsAllowed") or 0),
        current_healthy=int(status.get("currentHealthy") or 0),
        desired_healthy=int(status.get("desiredHealthy") or 0),
        expected_pods=int(status.get("expectedPods") or 0),
    )


def endpoints_from_json(raw: Mapping[str, Any]) -> Endpoints:
    """An :class:`Endpoints` from a LIST item (addresses named by their pod ``targetRef``)."""
    ready: list[str] = []
    not_ready: list[str] = []
    for subset in raw.get("subsets") or []:
        for key, bucket in (("addresses", ready), ("notReadyAddresses", not_ready)):
            for addr in subset.get(key) or []:
                bucket.append(str(_d(addr, "targetRef", "name") or addr.get("ip", "")))
    return Endpoints(name=str(_d(raw, "metadata", "name") or ""), ready=ready, not_ready=not_ready)


def ingress_from_json(raw: Mapping[str, Any]) -> Ingress:
    """An :class:`Ingress` from a LIST item."""
    spec = raw.get("spec") or {}
    services: list[str] = []
    default = _d(spec, "defaultBackend", "service", "name")
    if default:
        services.append(str(default))
    for rule in spec.get("rules") or []:
        for path in _d(rule, "http", "paths") or []:
            name = _d(path, "backend", "service", "name")
            if name and name not in services:
                services.append(str(name))
    return Ingress(
        name=str(_d(raw, "metadata", "name") or ""),
        annotations=dict(_d(raw, "metadata", "annotations") or {}),
        services=services,
        ingress_class=spec.get("ingressClassName"),
    )


def network_policy_from_json(raw: Mapping[str, Any]) -> NetworkPolicy:
    """A :class:`NetworkPolicy` from a LIST item."""
    spec = raw.get("spec") or {}
    selector = spec.get("podSelector") or {}
    types = list(spec.get("policyTypes") or [])
    if not types:
        types = ["Ingress"] + (["Egress"] if spec.get("egress") else [])
    return NetworkPolicy(
        name=str(_d(raw, "metadata", "name") or ""),
        pod_selector=dict(selector.get("matchLabels") or {}),
        selector_has_expressions=bool(selector.get("matchExpressions")),
        policy_types=types,
        ingress_rules=len(spec.get("ingress") or []),
        egress_rules=len(spec.get("egress") or []),
    )
