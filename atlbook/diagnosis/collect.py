"""Collect the evidence of a diagnosis, cheaply and read-only.

What is read, and how many calls it costs (counted per kind in ``Evidence.api_calls``):

- **Kubernetes**: ONE LIST per kind per namespace — pods, events, statefulsets, PVCs, PDBs, services,
  endpoints, ingresses, networkpolicies — plus one LIST of nodes. Never a GET per pod, so the number of
  calls does not grow with the number of pods.
- **Logs**: tails (current, and previous container when it restarted) only for pods in trouble — not
  Ready, restarted in the window, waiting, Pending with a container, not RUNNING for their product, or
  named by the scope; every running product node when the database is out of connections (their pool
  timeouts are the evidence) — fetched concurrently on a thread pool and redacted on arrival.
- **Products**, through the pod proxy, per product node: ``/status``; the cluster node list and the ZDU
  state from one node per product; the Jira index summary from every Jira node.
- **AWS**: RDS ``DescribeDBInstances``, EFS ``DescribeFileSystems``, EKS ``ListClusters`` +
  ``ListNodegroups`` + ``DescribeNodegroup`` per group, EC2 ``DescribeSubnets`` (zones of the groups),
  and ONE CloudWatch ``GetMetricData`` for every RDS and EFS metric over the window.
- **Database** (when the target has a tunnel): connections by application_name and state vs
  ``max_connections``, waiting locks, long transactions — four read-only queries, as the stack's master
  user on database ``postgres`` (application_name ``atlbook-diagnose``, excluded from the counts). A
  refused connection ("too many clients") is itself the evidence of a full server.

The product's context path comes from each pod (its readiness probe ``<context>/status``, else its
context-path env), so the same code reaches a chart-rendered pod and one serving at the root.

Every source that fails becomes a :class:`~atlbook.diagnosis.evidence.SourceError` (a finding of its
own), never an exception: a diagnosis is most needed when things are broken.

Read-only: only LIST/GET/``pods/log``/``pods/proxy`` GETs, describe/list/get AWS calls and SELECTs.
Nothing here creates, patches or deletes, and the retry policy is short: at most ten seconds per call,
in up to four quick attempts — a dead source fails fast, a flaky one (throttling, resets) is still read.

Adapters noted: ``atlbook.clients.k8s`` has no pod-log helper yet, so :func:`_read_log` calls
``CoreV1Api.read_namespaced_pod_log`` on the bundle's ApiClient under ``k8s.guard`` (error translation);
product REST goes through :class:`atlbook.products.client.ProductClient` over a pod-proxy transport
with the diagnosis' short retry policy.
"""

from __future__ import annotations

import concurrent.futures
import datetime as dt
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

from atlbook import errors
from atlbook.clients import aws as aws_mod
from atlbook.clients import db as db_mod
from atlbook.clients import k8s, retry
from atlbook.diagnosis import evidence as ev
from atlbook.diagnosis.scope import Scope
from atlbook.products import catalogue
from atlbook.products import client as pclient

__all__ = [
    "HTTP_PORTS",
    "LIST_KINDS",
    "CallCounter",
    "CollectOptions",
    "collect",
    "pods_in_trouble",
]

LIST_KINDS: tuple[str, ...] = (
    "Pod",
    "Event",
    "StatefulSet",
    "PersistentVolumeClaim",
    "PodDisruptionBudget",
    "Service",
    "Endpoints",
    "Ingress",
    "NetworkPolicy",
)
"""The namespaced kinds listed once per namespace (nodes are listed once, cluster-wide)."""

_PLURAL: dict[str, str] = {
    "Pod": "pods",
    "Event": "events",
    "StatefulSet": "statefulsets",
    "PersistentVolumeClaim": "persistentvolumeclaims",
    "PodDisruptionBudget": "poddisruptionbudgets",
    "Service": "services",
    "Endpoints": "endpoints",
    "Ingress": "ingresses",
    "NetworkPolicy": "networkpolicies",
}

HTTP_PORTS: dict[str, int] = {"jira": 8080, "confluence": 8090, "bitbucket": 7990}
"""Each product's HTTP port (chart defaults, reference §3.2)."""

_SHORT = retry.RetryPolicy(max_attempts=4, base_delay=0.2, max_delay=1.0, total_timeout=10.0)
T = TypeVar("T")


@dataclass
class CollectOptions:
    """Knobs of a collection run."""

    log_tail_lines: int = 200
    """Lines read from the end of each troubled pod's log."""
    max_workers: int = 8
    """Threads for the concurrent reads (logs, product nodes, AWS, database)."""
    long_transaction_seconds: float = 300.0
    """Transactions open longer than this are reported."""
    policy: retry.RetryPolicy = field(default_factory=lambda: _SHORT)
    """Retry policy of every call: short, a diagnosis must not hang on a dead source."""
    max_product_nodes: int = 32
    """At most this many product pods are probed (the rest are named in a source error)."""


class CallCounter:
    """Thread-safe count of calls per kind (``k8s:list Pod``, ``product:/status``, ``aws:rds.describe…``)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()

    def add(self, kind: str, n: int = 1) -> None:
        """Count ``n`` calls of ``kind``."""
        with self._lock:
            self._counts[kind] += n

    def as_dict(self) -> dict[str, int]:
        """The counts, sorted by kind."""
        with self._lock:
            return dict(sorted(self._counts.items()))


class _Sink:
    """Collects source errors from many threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.errors: list[ev.SourceError] = []

    def guard(self, source: str, fn: Callable[[], T]) -> T | None:
        try:
            return fn()
        except errors.AtlbookError as e:
            self.add(source, f"{type(e).__name__}: {e}")
        except Exception as e:  # noqa: BLE001 - a failing source is evidence, never a crash
            self.add(source, f"{type(e).__name__}: {str(e)[:300]}")
        return None

    def add(self, source: str, message: str) -> None:
        with self._lock:
            self.errors.append(ev.SourceError(source, ev.redact_line(message)))


# --- Kubernetes ---------------------------------------------------------------------------------------


def _list(
    clients: Any, kind: str, namespace: str | None, calls: CallCounter, opts: CollectOptions
) -> list[dict[str, Any]]:
    calls.add(f"k8s:list {kind}")
    return k8s.list(clients.k8s, kind, namespace, policy=opts.policy, page_size=5000)


def _read_log(
    clients: Any, namespace: str, pod: str, container: str | None, previous: bool, lines: int
) -> str:
    import kubernetes.client

    api = kubernetes.client.CoreV1Api(clients.k8s)
    op = f"read log pods/{namespace}/{pod}{' (previous)' if previous else ''}"

    def once() -> str:
        with k8s.guard(op):
            resp = api.read_namespaced_pod_log(
                pod,
                namespace,
                container=container,
                previous=previous,
                tail_lines=lines,
                _preload_content=False,
                _request_timeout=10,
            )
            data: Any = getattr(resp, "data", resp)
        return data.decode("utf-8", "replace") if isinstance(data, bytes) else str(data)

    return retry.call(once, idempotent=True, description=op, policy=_SHORT)


_DB_FULL = ("too many clients", "too many connections", "remaining connection slots")


def _db_troubled(evidence: ev.Evidence, sink: _Sink) -> bool:
    """Whether the database is (nearly) out of connections — then every product node's log matters."""
    db = evidence.db
    if db is not None and db.max_connections > 0:
        return db.total >= 0.8 * (db.max_connections - db.reserved_connections)
    return any(e.source == "database" and any(m in e.message.lower() for m in _DB_FULL) for e in sink.errors)


def pods_in_trouble(evidence: ev.Evidence, *, all_products: bool = False) -> list[ev.Pod]:
    """Pods whose logs are worth reading: not Ready, restarted, waiting, not RUNNING, or in scope
    (and every running product pod with ``all_products``, e.g. when the database is saturated)."""
    out = []
    for pod in evidence.pods:
        if all_products and pod.product and pod.phase == "Running" and pod.node_name:
            out.append(pod)
            continue
        node = evidence.product_nodes.get(pod.name)
        restarted = any(
            c.restart_count > 0 and evidence.window.contains(c.last_finished) for c in pod.containers
        )
        waiting = any(
            c.state == "waiting" and c.reason not in (None, "ContainerCreating") for c in pod.containers
        )
        if (
            pod.name == evidence.scope_pod
            or (pod.phase == "Running" and not pod.ready)
            or pod.phase == "Failed"
            or restarted
            or waiting
            or (node is not None and node.state not in (None, "RUNNING"))
        ):
            if pod.node_name:  # a pod never scheduled has no log
                out.append(pod)
    return out


# --- products -----------------------------------------------------------------------------------------


class _Shim:
    """What :class:`~atlbook.products.client.PodProxy` reads of a bundle: the ApiClient and a policy."""

    def __init__(self, clients: Any, policy: retry.RetryPolicy) -> None:
        self._clients = clients
        self.policy = policy

    @property
    def k8s(self) -> Any:
        """The bundle's ApiClient (built, or failing, on first use)."""
        return self._clients.k8s


class _ProductProbe:
    """The product REST calls a diagnosis makes, through the pod proxy (``atlbook.products.client``)."""

    def __init__(
        self,
        clients: Any,
        spec: Any,
        calls: CallCounter,
        opts: CollectOptions,
        auth: Mapping[str, pclient.BasicAuth | None],
    ) -> None:
        self.shim = _Shim(clients, opts.policy)
        self.spec = spec
        self.context: dict[str, str] = {}
        """Context path per pod (from the pod itself: its readiness probe or env)."""
        self.calls = calls
        self.auth = auth

    def client(self, product: str, namespace: str, pod: str) -> pclient.ProductClient:
        context = self.context.get(pod, "")
        port = catalogue.get(product).http_port
        transport = pclient.PodProxy(cast(Any, self.shim), namespace, pod, port, context_path=context)
        return pclient.ProductClient(transport, product, self.auth.get(product))

    def status(self, product: str, namespace: str, pod: str) -> ev.ProductNode:
        self.calls.add("product:/status")
        answer = self.client(product, namespace, pod).status()
        return ev.ProductNode(pod=pod, product=product, http_status=answer.http_status, state=answer.state)

    def cluster(self, product: str, namespace: str, pod: str, node: ev.ProductNode, sink: _Sink) -> None:
        api = self.client(product, namespace, pod)
        self.calls.add("product:cluster nodes")
        nodes = sink.guard(f"product:{pod}:cluster-nodes", api.cluster_nodes)
        if nodes is not None:
            node.cluster_nodes = [ev.ClusterNodeView(n.node_id, n.state, n.alive, n.version) for n in nodes]
        self.calls.add("product:zdu state")
        zdu = sink.guard(f"product:{pod}:zdu", api.zdu_state)
        if zdu is not None:
            node.zdu_state = zdu.state

    def index(self, namespace: str, pod: str, node: ev.ProductNode, sink: _Sink) -> None:
        self.calls.add("product:index summary")
        summary = sink.guard(
            f"product:{pod}:index-summary", self.client("jira", namespace, pod).index_summary
        )
        if summary is not None:
            node.index = ev.IndexSummary(
                node_id=summary.node_id or pod,
                readable=summary.readable,
                count_in_database=summary.count_in_database,
                count_in_index=summary.count_in_index,
                queue_sizes=dict(summary.queue_sizes),
            )


def _admin_auth(clients: Any, spec: Any, sink: _Sink) -> dict[str, pclient.BasicAuth | None]:
    out: dict[str, pclient.BasicAuth | None] = {}
    for product in ev.PRODUCTS:
        pspec = getattr(getattr(spec, "products", None), product, None)
        admin = getattr(pspec, "admin", None)
        if admin is None or not getattr(pspec, "enabled", True):
            out[product] = None
            continue

        def resolve(a: Any = admin) -> pclient.BasicAuth:
            return pclient.auth_from_spec(a, clients)

        out[product] = sink.guard(f"secret:{product}-admin", resolve)
    return out


# --- AWS ----------------------------------------------------------------------------------------------


def _aws(
    clients: Any, service: str, operation: str, calls: CallCounter, opts: CollectOptions, **params: Any
) -> dict[str, Any]:
    calls.add(f"aws:{service}.{operation}")
    return aws_mod.call(clients.aws(service), operation, idempotent=True, policy=opts.policy, **params)


def _pick(items: list[Mapping[str, Any]], key: str, name: str) -> Mapping[str, Any] | None:
    if not items:
        return None
    for item in items:
        if name and name in str(item.get(key, "")):
            return item
    for item in items:
        tags = item.get("Tags") or item.get("TagList") or []
        if any(name and name in str(t.get("Value", "")) for t in tags if isinstance(t, Mapping)):
            return item
    return items[0] if len(items) == 1 else None


def _collect_aws(
    clients: Any,
    spec: Any,
    window: ev.Window,
    out: ev.Evidence,
    calls: CallCounter,
    opts: CollectOptions,
    sink: _Sink,
) -> None:
    name = str(getattr(spec, "name", "") or "")
    rds_doc = sink.guard("aws:rds", lambda: _aws(clients, "rds", "describe_db_instances", calls, opts))
    if rds_doc is not None:
        inst = _pick(rds_doc.get("DBInstances") or [], "DBInstanceIdentifier", name)
        if inst is None:
            sink.add(
                "aws:rds", f"no RDS instance for stack {name!r} among {len(rds_doc.get('DBInstances') or [])}"
            )
        else:
            out.rds = ev.Rds(
                identifier=str(inst.get("DBInstanceIdentifier")),
                status=str(inst.get("DBInstanceStatus", "available")),
                instance_class=str(inst.get("DBInstanceClass", "")),
                multi_az=bool(inst.get("MultiAZ", False)),
                allocated_storage_gib=float(inst.get("AllocatedStorage") or 0),
            )
    efs_doc = sink.guard("aws:efs", lambda: _aws(clients, "efs", "describe_file_systems", calls, opts))
    if efs_doc is not None:
        systems = efs_doc.get("FileSystems") or []
        chosen = [
            fs
            for fs in systems
            if not name
            or name in str(fs.get("Name", ""))
            or any(name in str(t.get("Value", "")) for t in fs.get("Tags") or [])
        ] or systems
        for fs in chosen:
            out.efs.append(
                ev.Efs(
                    file_system_id=str(fs.get("FileSystemId")),
                    name=str(fs.get("Name") or ""),
                    throughput_mode=str(fs.get("ThroughputMode") or "bursting"),
                    lifecycle_state=str(fs.get("LifeCycleState") or "available"),
                    size_bytes=int((fs.get("SizeInBytes") or {}).get("Value") or 0),
                )
            )
    _collect_nodegroups(clients, name, out, calls, opts, sink)
    _collect_metrics(clients, window, out, calls, opts, sink)


def _collect_nodegroups(
    clients: Any, name: str, out: ev.Evidence, calls: CallCounter, opts: CollectOptions, sink: _Sink
) -> None:
    listed = sink.guard("aws:eks", lambda: _aws(clients, "eks", "list_clusters", calls, opts))
    if listed is None:
        return
    names = [str(c) for c in listed.get("clusters") or []]
    cluster = next((c for c in names if c == name), None) or next(
        (c for c in names if name and name in c), None
    )
    cluster = cluster or (names[0] if len(names) == 1 else None)
    if cluster is None:
        sink.add("aws:eks", f"no EKS cluster for stack {name!r} among {names}")
        return
    groups = sink.guard(
        "aws:eks", lambda: _aws(clients, "eks", "list_nodegroups", calls, opts, clusterName=cluster)
    )
    subnets: dict[str, list[str]] = {}
    for group in (groups or {}).get("nodegroups") or []:

        def describe(g: str = str(group)) -> dict[str, Any]:
            return _aws(
                clients, "eks", "describe_nodegroup", calls, opts, clusterName=cluster, nodegroupName=g
            )

        doc = sink.guard(f"aws:eks:{group}", describe)
        if doc is None:
            continue
        ng = doc.get("nodegroup") or {}
        issues = [
            f"{i.get('code')}: {i.get('message')}" for i in (ng.get("health") or {}).get("issues") or []
        ]
        out.nodegroups.append(
            ev.NodeGroup(
                name=str(ng.get("nodegroupName", group)),
                status=str(ng.get("status", "ACTIVE")),
                desired=int((ng.get("scalingConfig") or {}).get("desiredSize") or 0),
                health_issues=issues,
            )
        )
        subnets[str(ng.get("nodegroupName", group))] = [str(s) for s in ng.get("subnets") or []]
    all_subnets = sorted({s for ids in subnets.values() for s in ids})
    if not all_subnets:
        return
    doc = sink.guard(
        "aws:ec2", lambda: _aws(clients, "ec2", "describe_subnets", calls, opts, SubnetIds=all_subnets)
    )
    zone_of = {
        str(s.get("SubnetId")): str(s.get("AvailabilityZone")) for s in (doc or {}).get("Subnets") or []
    }
    for group in out.nodegroups:
        group.zones = sorted({zone_of[s] for s in subnets.get(group.name, []) if s in zone_of})


_RDS_METRICS = ("CPUUtilization", "DatabaseConnections", "FreeStorageSpace")
_EFS_METRICS = ("BurstCreditBalance", "PercentIOLimit", "MeteredIOBytes", "PermittedThroughput")


def _collect_metrics(
    clients: Any, window: ev.Window, out: ev.Evidence, calls: CallCounter, opts: CollectOptions, sink: _Sink
) -> None:
    queries: list[dict[str, Any]] = []
    where: dict[str, tuple[dict[str, ev.MetricSeries], str]] = {}
    stat = {"PercentIOLimit": "Maximum", "MeteredIOBytes": "Sum", "BurstCreditBalance": "Minimum"}
    targets: list[tuple[str, str, str, Iterable[str], dict[str, ev.MetricSeries]]] = []
    if out.rds:
        targets.append(("AWS/RDS", "DBInstanceIdentifier", out.rds.identifier, _RDS_METRICS, out.rds.metrics))
    for fs in out.efs:
        targets.append(("AWS/EFS", "FileSystemId", fs.file_system_id, _EFS_METRICS, fs.metrics))
    for namespace, dim, value, metrics, bucket in targets:
        for metric in metrics:
            qid = f"m{len(queries)}"
            queries.append(
                {
                    "Id": qid,
                    "MetricStat": {
                        "Metric": {
                            "Namespace": namespace,
                            "MetricName": metric,
                            "Dimensions": [{"Name": dim, "Value": value}],
                        },
                        "Period": 60,
                        "Stat": stat.get(metric, "Average"),
                    },
                    "ReturnData": True,
                }
            )
            where[qid] = (bucket, metric)
    if not queries:
        return
    start = window.start
    end = max(window.end, dt.datetime.now(dt.UTC)) + dt.timedelta(minutes=1)
    doc = sink.guard(
        "aws:cloudwatch",
        lambda: _aws(
            clients,
            "cloudwatch",
            "get_metric_data",
            calls,
            opts,
            MetricDataQueries=queries,
            StartTime=start,
            EndTime=end,
        ),
    )
    for result in (doc or {}).get("MetricDataResults") or []:
        bucket, metric = where.get(str(result.get("Id")), ({}, ""))
        if not metric:
            continue
        points = sorted(
            (when, float(v))
            for t, v in zip(result.get("Timestamps") or [], result.get("Values") or [], strict=False)
            if (when := ev.parse_time(t)) is not None
        )
        bucket[metric] = ev.MetricSeries(metric, points)


# --- database -----------------------------------------------------------------------------------------

_SQL_MAX = (
    "SELECT current_setting('max_connections')::int AS max, "
    "current_setting('superuser_reserved_connections')::int AS reserved"
)
_SQL_ACTIVITY = (
    "SELECT coalesce(application_name, '') AS app, coalesce(state, '') AS state, coalesce(datname, "
    "'') AS db, "
    "count(*)::int AS n FROM pg_stat_activity WHERE backend_type = 'client backend' AND pid <> "
    "pg_backend_pid() "
    "GROUP BY 1, 2, 3"
)
_SQL_LOCKS = (
    "SELECT a.pid, coalesce(a.application_name, '') AS app, coalesce(l.relation::regclass::text, "
    "l.locktype) AS rel, "
    "extract(epoch FROM now() - coalesce(a.state_change, a.query_start))::float AS waited "
    "FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid WHERE NOT l.granted ORDER BY waited "
    "DESC LIMIT 20"
)
_SQL_LONG = (
    "SELECT coalesce(application_name, '') AS app, extract(epoch FROM now() - xact_start)::float AS age "
    "FROM pg_stat_activity WHERE xact_start IS NOT NULL AND pid <> pg_backend_pid() "
    "AND now() - xact_start > make_interval(secs => %s) ORDER BY age DESC LIMIT 20"
)


def _collect_db(
    clients: Any, spec: Any, out: ev.Evidence, calls: CallCounter, opts: CollectOptions, sink: _Sink
) -> None:
    if getattr(getattr(clients, "target", None), "database_tunnel", None) is None:
        return  # no tunnel: the database is not reachable from here (not an error, it is optional)
    dbspec = getattr(spec, "database", None)
    if dbspec is None:
        return

    def run() -> None:
        calls.add("db:connect")
        host, port = clients.target.database_tunnel
        password = clients.resolve_secret(dbspec.master_password)
        conn = db_mod.connect(
            host,
            port,
            "postgres",
            str(dbspec.master_username),
            password,
            connect_timeout=5,
            application_name="atlbook-diagnose",
            policy=opts.policy,
        )
        try:
            calls.add("db:query", 4)
            top = db_mod.query(conn, _SQL_MAX)[0]
            activity = ev.DbActivity(
                max_connections=int(top["max"]), reserved_connections=int(top["reserved"])
            )
            activity.connections = [
                ev.DbConnections(str(r["app"]), str(r["state"]), int(r["n"]), str(r["db"]))
                for r in db_mod.query(conn, _SQL_ACTIVITY)
            ]
            activity.waiting_locks = [
                f"pid {r['pid']} ({r['app'] or '-'}) waits on {r['rel']} for {r['waited'] or 0:.0f} s"
                for r in db_mod.query(conn, _SQL_LOCKS)
            ]
            activity.long_transactions = [
                (str(r["app"]), float(r["age"] or 0))
                for r in db_mod.query(conn, _SQL_LONG, (opts.long_transaction_seconds,))
            ]
            out.db = activity
        finally:
            conn.close()

    sink.guard("database", run)


# --- the whole collection -----------------------------------------------------------------------------


def _namespaces(spec: Any) -> list[str]:
    base = str(getattr(spec, "namespace", "") or "default")
    names = [base]
    for product in ev.PRODUCTS:
        pspec = getattr(getattr(spec, "products", None), product, None)
        ns = getattr(pspec, "namespace", None)
        if ns and ns not in names:
            names.append(str(ns))
    return names


def _expectations(spec: Any) -> dict[str, ev.ProductExpectation]:
    out: dict[str, ev.ProductExpectation] = {}
    for product in ev.PRODUCTS:
        pspec = getattr(getattr(spec, "products", None), product, None)
        if pspec is None or not getattr(pspec, "enabled", True):
            continue
        out[product] = ev.ProductExpectation(
            replicas=int(getattr(pspec, "replicas", 2)),
            pool_max=int(getattr(pspec, "db_pool_max", 100)),
            http_port=HTTP_PORTS[product],
            version=getattr(pspec, "version", None),
        )
    return out


_PARSERS: dict[str, Callable[[Mapping[str, Any]], Any]] = {
    "Pod": ev.pod_from_json,
    "Event": ev.event_from_json,
    "StatefulSet": ev.statefulset_from_json,
    "PersistentVolumeClaim": ev.pvc_from_json,
    "PodDisruptionBudget": ev.pdb_from_json,
    "Endpoints": ev.endpoints_from_json,
    "Ingress": ev.ingress_from_json,
    "NetworkPolicy": ev.network_policy_from_json,
}
_FIELD: dict[str, str] = {
    "Pod": "pods",
    "Event": "events",
    "StatefulSet": "statefulsets",
    "PersistentVolumeClaim": "pvcs",
    "PodDisruptionBudget": "pdbs",
    "Endpoints": "endpoints",
    "Ingress": "ingresses",
    "NetworkPolicy": "network_policies",
}


def collect(clients: Any, spec: Any, scope: Scope, *, options: CollectOptions | None = None) -> ev.Evidence:
    """Read the stack described by ``spec`` through ``clients`` (an :class:`atlbook.clients.Clients`).

    Returns an :class:`Evidence` whose ``source_errors`` name every source that could not be read and whose
    ``api_calls`` count the calls per kind. Never raises for a failing source; makes no mutating call.
    """
    opts = options or CollectOptions()
    calls = CallCounter()
    sink = _Sink()
    namespaces = _namespaces(spec)
    out = ev.Evidence(
        namespace=", ".join(namespaces),
        window=scope.window,
        products=_expectations(spec),
        scope_product=scope.product,
        scope_pod=scope.pod,
    )
    started = time.monotonic()
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=opts.max_workers, thread_name_prefix="diagnose")
    try:
        aws_future = pool.submit(
            sink.guard, "aws", lambda: _collect_aws(clients, spec, scope.window, out, calls, opts, sink)
        )
        admin_future = pool.submit(_admin_auth, clients, spec, sink)
        lists: dict[tuple[str, str | None], concurrent.futures.Future[list[dict[str, Any]] | None]] = {}
        lists[("Node", None)] = pool.submit(
            sink.guard, "k8s:nodes", lambda: _list(clients, "Node", None, calls, opts)
        )
        for ns in namespaces:
            for kind in LIST_KINDS:
                source = f"k8s:{_PLURAL[kind]}" if len(namespaces) == 1 else f"k8s:{ns}/{_PLURAL[kind]}"
                lists[(kind, ns)] = pool.submit(
                    sink.guard, source, lambda k=kind, n=ns: _list(clients, k, n, calls, opts)
                )
        pod_ns: dict[str, str] = {}
        for (kind, where), future in lists.items():
            items = future.result() or []
            if kind == "Node":
                out.nodes = [ev.node_from_json(i) for i in items]
            elif kind == "Service":
                out.services.extend(str((i.get("metadata") or {}).get("name", "")) for i in items)
            else:
                parsed = [_PARSERS[kind](i) for i in items]
                getattr(out, _FIELD[kind]).extend(parsed)
                if kind == "Pod":
                    pod_ns.update({p.name: where or "" for p in parsed})
        db_future = pool.submit(_collect_db, clients, spec, out, calls, opts, sink)
        admin = admin_future.result() or {}
        sink.guard(
            "product:probe",
            lambda: _probe_products(clients, spec, out, pod_ns, admin, calls, opts, sink, pool),
        )
        db_future.result()  # before the logs: a saturated database puts every product node in trouble
        troubled = _db_troubled(out, sink)
        sink.guard("log", lambda: _read_logs(clients, out, pod_ns, calls, opts, sink, pool, extra=troubled))
        aws_future.result()
    finally:
        pool.shutdown(wait=True)
    out.source_errors = sink.errors
    out.api_calls = calls.as_dict()
    out.seconds = time.monotonic() - started
    return out


def _probe_products(
    clients: Any,
    spec: Any,
    out: ev.Evidence,
    pod_ns: Mapping[str, str],
    admin: Mapping[str, pclient.BasicAuth | None],
    calls: CallCounter,
    opts: CollectOptions,
    sink: _Sink,
    pool: concurrent.futures.ThreadPoolExecutor,
) -> None:
    targets = [p for p in out.product_pods() if p.phase == "Running" and p.node_name and not p.deleting]
    if len(targets) > opts.max_product_nodes:
        skipped = targets[opts.max_product_nodes :]
        sink.add("product:probe", f"{len(skipped)} product pods not probed (limit {opts.max_product_nodes})")
        targets = targets[: opts.max_product_nodes]
    probe = _ProductProbe(clients, spec, calls, opts, admin)
    probe.context = {p.name: p.context_path for p in targets}

    def status(pod: ev.Pod) -> ev.ProductNode | None:
        ns = pod_ns.get(pod.name, pod.namespace)
        return sink.guard(f"product:{pod.name}:/status", lambda: probe.status(str(pod.product), ns, pod.name))

    for node in pool.map(status, targets):
        if node is not None:
            out.product_nodes[node.pod] = node
    follow_ups = []
    asked: set[str] = set()
    for pod in targets:
        node = out.product_nodes.get(pod.name)
        if node is None or node.state != "RUNNING" or pod.product is None:
            continue
        ns = pod_ns.get(pod.name, pod.namespace)
        if pod.product not in asked:
            asked.add(pod.product)
            follow_ups.append(pool.submit(probe.cluster, pod.product, ns, pod.name, node, sink))
        if pod.product == "jira":
            follow_ups.append(pool.submit(probe.index, ns, pod.name, node, sink))
    for future in follow_ups:
        future.result()
    versions = {
        entry.node_id: entry.version
        for other in out.product_nodes.values()
        for entry in other.cluster_nodes or []
        if entry.version
    }
    for name, node in out.product_nodes.items():
        node.version = versions.get(name, node.version)


def _read_logs(
    clients: Any,
    out: ev.Evidence,
    pod_ns: Mapping[str, str],
    calls: CallCounter,
    opts: CollectOptions,
    sink: _Sink,
    pool: concurrent.futures.ThreadPoolExecutor,
    *,
    extra: bool = False,
) -> None:
    secrets = _known_secrets()

    def one(pod: ev.Pod) -> ev.LogTail:
        container = pod.containers[0].name if pod.containers else None
        tail = ev.LogTail(pod=pod.name, container=container or "")
        ns = pod_ns.get(pod.name, pod.namespace)
        calls.add("k8s:pods/log")
        text = sink.guard(
            f"log:{pod.name}", lambda: _read_log(clients, ns, pod.name, container, False, opts.log_tail_lines)
        )
        tail.lines = [ev.redact_line(line, secrets=secrets) for line in (text or "").splitlines()]
        if pod.containers and pod.containers[0].restart_count > 0:
            calls.add("k8s:pods/log")
            try:  # a missing previous log is normal (container replaced, node gone): not evidence
                prev = _read_log(clients, ns, pod.name, container, True, opts.log_tail_lines)
            except Exception:  # noqa: BLE001
                prev = ""
            tail.previous = [ev.redact_line(line, secrets=secrets) for line in (prev or "").splitlines()]
        return tail

    for tail in pool.map(one, pods_in_trouble(out, all_products=extra)):
        out.logs[tail.pod] = tail


def _known_secrets() -> list[str]:
    try:
        from atlbook.clients import secrets

        return sorted(secrets.resolved_values(), key=len, reverse=True)
    except Exception:  # noqa: BLE001 - redaction by patterns still applies
        return []
