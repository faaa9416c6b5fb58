"""Product-layer checks: what the Jira/Confluence/Bitbucket nodes say about themselves.

Pure functions over the ``/status``, cluster-node, ZDU and index-summary answers in the evidence. A pod
Ready for Kubernetes is not enough: the KB says "It has to be status 200 and RUNNING together".
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator

from atlbook.diagnosis.checks._base import Check, Finding, check
from atlbook.diagnosis.evidence import ClusterNodeView, Evidence, Pod, Severity

__all__ = [
    "INDEX_DRIFT_ERROR",
    "INDEX_DRIFT_TOLERANCE",
    "REPLICATION_QUEUE_ERROR",
    "REPLICATION_QUEUE_WARNING",
    "cluster_node_missing",
    "index_drift",
    "mixed_versions",
    "not_running",
    "replication_lag",
    "zdu_stuck",
]

INDEX_DRIFT_TOLERANCE = 10
"""Issues that may differ between database and index while replication catches up (no finding)."""
INDEX_DRIFT_ERROR = 100
"""Drift above this many issues (or an unreadable index) is an error; above the tolerance, a warning."""
REPLICATION_QUEUE_WARNING = 100
REPLICATION_QUEUE_ERROR = 1000

_UPGRADING = {"READY_TO_UPGRADE", "MIXED", "READY_TO_RUN_UPGRADE_TASKS", "RUNNING_UPGRADE_TASKS"}


def _kw(ev: Evidence, pod: Pod | None, product: str | None) -> dict[str, object]:
    if pod is None:
        return {"product": product}
    node = ev.node(pod.node_name)
    return {
        "product": product,
        "pods": (pod.name,),
        "workers": (pod.node_name,) if pod.node_name else (),
        "zones": (node.zone,) if node and node.zone else (),
    }


@check(
    "product.not-running",
    layer="product",
    title="Ready but not RUNNING (or /status unhealthy)",
    severity="error when Kubernetes routes traffic to it (Ready), warning when it is not Ready anyway",
    remedy="The node is in service but the application is not RUNNING: read its log and /status; restart the "
    "pod once the cause is fixed (a reindex shows MAINTENANCE: wait or 50-index-recovery).",
    weight=25,
)
def not_running(self: Check, ev: Evidence) -> Iterator[Finding]:
    for pod in ev.product_pods():
        node = ev.product_nodes.get(pod.name)
        if node is None or pod.phase != "Running" or pod.deleting:
            continue
        if node.state == "RUNNING":
            continue
        shown = node.state or f"unreachable ({node.error or 'no answer'})"
        lines = [f"pod/{pod.name}: Kubernetes Ready={pod.ready}, /status {node.http_status or '-'} {shown}"]
        sev = Severity.ERROR if pod.ready else Severity.WARNING
        what = "Ready but not RUNNING" if pod.ready else "not Ready"
        yield self.new(
            sev,
            f"pod/{pod.name}",
            f"{pod.name} is {what}: /status {shown}",
            lines,
            **_kw(ev, pod, pod.product),
        )


def _cluster_view(ev: Evidence, product: str) -> tuple[str, list[ClusterNodeView]] | None:
    """The cluster list as a RUNNING node of ``product`` reports it (the first that answered)."""
    for pod in ev.product_pods(product):
        node = ev.product_nodes.get(pod.name)
        if node and node.cluster_nodes is not None and node.state == "RUNNING":
            return pod.name, node.cluster_nodes
    return None


def _match(view: list[ClusterNodeView], pod: str) -> ClusterNodeView | None:
    for entry in view:
        if entry.node_id == pod or entry.node_id.startswith(pod + ".") or entry.node_id.endswith("/" + pod):
            return entry
    return None


@check(
    "product.cluster-node-missing",
    layer="product",
    title="Node missing or not alive in the product's cluster list",
    severity="error for a running pod absent or dead in the list; warning for a dead entry without a pod",
    remedy="A pod the cluster does not count is not sharing caches/locks: restart it once its cause "
    "is fixed. "
    "Stale OFFLINE entries of removed pods can be deleted (Jira: DELETE /rest/api/2/cluster/node/{id}).",
    weight=20,
)
def cluster_node_missing(self: Check, ev: Evidence) -> Iterator[Finding]:
    for product in sorted({p.product for p in ev.product_pods() if p.product}):
        found = _cluster_view(ev, product)
        if found is None:
            continue
        reporter, view = found
        pods = {p.name: p for p in ev.product_pods(product)}
        for name, pod in sorted(pods.items()):
            if pod.phase != "Running" or pod.deleting:
                continue
            entry = _match(view, name)
            if entry is None:
                yield self.new(
                    Severity.ERROR,
                    f"pod/{name}",
                    f"{name} is not in {product}'s cluster list",
                    [f"{reporter} lists: {', '.join(e.node_id for e in view) or 'nothing'}"],
                    **_kw(ev, pod, product),
                )
            elif not entry.alive or entry.state in {"OFFLINE", "ERROR"}:
                yield self.new(
                    Severity.ERROR,
                    f"pod/{name}",
                    f"{name} is {entry.state}/alive={entry.alive} in the cluster",
                    [f"{reporter} lists {entry.node_id}: state {entry.state}, alive {entry.alive}"],
                    **_kw(ev, pod, product),
                )
        for entry in view:
            if any(_match([entry], name) for name in pods):
                continue
            if entry.alive and entry.state not in {"OFFLINE"}:
                yield self.new(
                    Severity.WARNING,
                    f"cluster/{product}/{entry.node_id}",
                    f"{entry.node_id} is alive in {product}'s cluster list but has no pod",
                    [f"{reporter} lists {entry.node_id}: state {entry.state}, alive {entry.alive}"],
                    product=product,
                    pods=(entry.node_id,),
                )
            elif entry.state != "OFFLINE":
                yield self.new(
                    Severity.WARNING,
                    f"cluster/{product}/{entry.node_id}",
                    f"{entry.node_id} is dead in {product}'s cluster list (state {entry.state})",
                    [f"{reporter} lists {entry.node_id}: state {entry.state}, alive {entry.alive}"],
                    product=product,
                    pods=(entry.node_id,),
                )


def _versions(ev: Evidence, product: str) -> dict[str, list[str]]:
    by_version: dict[str, list[str]] = defaultdict(list)
    for pod in ev.product_pods(product):
        if pod.deleting:
            continue
        node = ev.product_nodes.get(pod.name)
        version = (node.version if node else None) or pod.image_tag
        if version:
            by_version[version].append(pod.name)
    return by_version


def _zdu(ev: Evidence, product: str) -> str | None:
    for pod in ev.product_pods(product):
        node = ev.product_nodes.get(pod.name)
        if node and node.zdu_state:
            return node.zdu_state
    return None


@check(
    "product.zdu-stuck",
    layer="product",
    title="Upgrade stuck: new version not becoming ready / ZDU failed",
    severity="error",
    remedy="The new version does not come up: halt the rollout and roll the node back to the old image "
    "(30-upgrade resumes or rolls back; cancel ZDU only before MIXED); read the new pod's log.",
    weight=70,
)
def zdu_stuck(self: Check, ev: Evidence) -> Iterator[Finding]:
    for sts in ev.statefulsets:
        pods = [p for p in ev.pods if p.owner == sts.name and not p.deleting]
        product = next((p.product for p in pods if p.product), None)
        if product is None:
            continue
        zdu = _zdu(ev, product)
        rolling = bool(
            sts.update_revision and sts.current_revision and sts.update_revision != sts.current_revision
        )
        new_tag = sts.image.rsplit(":", 1)[1] if ":" in sts.image else None
        stuck = []
        for pod in pods:
            on_new = (rolling and pod.revision == sts.update_revision) or (
                new_tag is not None and pod.image_tag == new_tag and len(_versions(ev, product)) > 1
            )
            node = ev.product_nodes.get(pod.name)
            healthy = pod.ready and (node is None or node.state in (None, "RUNNING"))
            if on_new and not healthy:
                stuck.append(pod)
        lines = []
        for pod in stuck:
            node = ev.product_nodes.get(pod.name)
            lines.append(
                f"pod/{pod.name}: image {pod.image_tag}, Ready={pod.ready}, /status "
                f"{node.state if node else '-'}, restarts {pod.restarts}"
            )
        if stuck:
            lines.append(
                f"statefulset/{sts.name}: updateRevision {sts.update_revision}, currentRevision "
                f"{sts.current_revision}, updated {sts.updated_replicas}/{sts.replicas}"
            )
            if zdu:
                lines.append(f"ZDU state: {zdu}")
            yield self.new(
                Severity.ERROR,
                f"statefulset/{sts.name}",
                f"{product} upgrade to {new_tag or sts.update_revision} is stuck: "
                f"{', '.join(p.name for p in stuck)} not ready",
                lines,
                product=product,
                pods=tuple(p.name for p in stuck),
                workers=tuple(p.node_name for p in stuck if p.node_name),
            )
        elif zdu == "UPGRADE_TASKS_FAILED":
            yield self.new(
                Severity.ERROR,
                f"zdu/{product}",
                f"{product} upgrade tasks failed",
                [f"ZDU state: {zdu}"],
                product=product,
            )


@check(
    "product.mixed-versions",
    layer="product",
    title="Mixed versions in one cluster",
    severity="error outside upgrade mode; info while a ZDU is in progress",
    remedy="Nodes on different versions outside upgrade mode corrupt caches: finish or roll back the upgrade "
    "with 30-upgrade.",
    weight=40,
)
def mixed_versions(self: Check, ev: Evidence) -> Iterator[Finding]:
    for product in sorted({p.product for p in ev.product_pods() if p.product}):
        versions = _versions(ev, product)
        if len(versions) < 2:
            continue
        zdu = _zdu(ev, product)
        lines = [f"version {v}: {', '.join(sorted(pods))}" for v, pods in sorted(versions.items())]
        lines.append(f"ZDU state: {zdu or 'unknown'}")
        upgrading = zdu in _UPGRADING
        sev = Severity.INFO if upgrading else Severity.ERROR
        pods = tuple(sorted(p for names in versions.values() for p in names))
        yield self.new(
            sev,
            f"versions/{product}",
            f"{product} runs {len(versions)} versions ({', '.join(sorted(versions))}), ZDU {zdu or '?'}",
            lines,
            product=product,
            pods=pods,
        )


@check(
    "product.jira-index-drift",
    layer="product",
    title="Jira index drift (countInDatabase vs countInIndex)",
    severity="error when the index is unreadable or drifts by more than 100 issues, warning above 10",
    remedy="Run 50-index-recovery: snapshot the index on a healthy node and restart this one so it restores "
    "from the snapshot (seconds), instead of a full reindex (hours).",
    weight=65,
)
def index_drift(self: Check, ev: Evidence) -> Iterator[Finding]:
    for name, node in sorted(ev.product_nodes.items()):
        idx = node.index
        if idx is None or node.product != "jira":
            continue
        db, ix = idx.count_in_database, idx.count_in_index
        drift = abs(db - ix) if db is not None and ix is not None else 0
        if idx.readable and drift <= INDEX_DRIFT_TOLERANCE:
            continue
        big = not idx.readable or (drift > INDEX_DRIFT_ERROR)
        pod = ev.pod(name)
        yield self.new(
            Severity.ERROR if big else Severity.WARNING,
            f"pod/{name}",
            f"{name}'s index {'is unreadable' if not idx.readable else f'drifts by {drift} issues'}",
            [
                f"pod/{name} index summary: indexReadable={idx.readable}, countInDatabase={db}, "
                f"countInIndex={ix}"
            ],
            **(_kw(ev, pod, "jira") if pod else {"product": "jira", "pods": (name,)}),
        )


@check(
    "product.jira-index-replication-lag",
    layer="product",
    title="Jira index replication lag (queueSize)",
    severity="warning above 100 queued operations, error above 1000",
    remedy="A node consuming its replication queue slowly: check its CPU/GC and the DB; if the queue "
    "does not "
    "drain, 50-index-recovery resets its index from a snapshot.",
    weight=35,
)
def replication_lag(self: Check, ev: Evidence) -> Iterator[Finding]:
    for name, node in sorted(ev.product_nodes.items()):
        if node.index is None:
            continue
        worst = {src: q for src, q in node.index.queue_sizes.items() if q > REPLICATION_QUEUE_WARNING}
        if not worst:
            continue
        top = max(worst.values())
        pod = ev.pod(name)
        yield self.new(
            Severity.ERROR if top > REPLICATION_QUEUE_ERROR else Severity.WARNING,
            f"pod/{name}",
            f"{name} is {top} index operations behind",
            [f"pod/{name} replication queue from {src}: queueSize={q}" for src, q in sorted(worst.items())],
            **(_kw(ev, pod, node.product) if pod else {"product": node.product, "pods": (name,)}),
        )
