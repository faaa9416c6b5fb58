"""Simulated Jira / Confluence / Bitbucket / Synchrony nodes: state, rules and their REST endpoints.

A :class:`ProductNode` backs one pod. Its version is the pod's image tag; it is ``STARTING`` for its
startup time on the simulated clock, then ``RUNNING``; it is ``ERROR`` when its version is named by the
``bad-upgrade`` fault, when it crash-loops, or when it may not join its cluster (another version
outside upgrade mode). The nodes of one product in one namespace form a :class:`ProductCluster`, which
holds the shared ZDU state machine, the issue count, index snapshots and reindex tasks.

Endpoints (paths and fields from Atlassian's REST docs; where those are unsure both variants work):

- all: ``GET /status`` (no auth; 200 STARTING/RUNNING, 503 MAINTENANCE, 500 ERROR)
- Jira: ``/rest/api/2/cluster/nodes``, ``/rest/api/2/cluster/node/{id}/offline`` (PUT),
  ``/rest/api/2/cluster/node/{id}`` (DELETE), ``/rest/api/2/cluster/zdu/{state,start,cancel,approve,
  retryUpgrade}``, ``/rest/api/2/index/summary``, ``/rest/api/2/index-snapshot[/isRunning]``,
  ``/rest/api/2/cluster/index-snapshot/{id}``, ``/rest/api/2/reindex[/progress]``
- Confluence: ``/rest/zdu/cluster``, ``/rest/zdu/nodes/{id}``, ``/rest/zdu/state``,
  ``/rest/zdu/{start,cancel,approve,retryUpgrade}`` and the ``/rest/zdu/cluster/zdu/...`` variants,
  ``/rest/synchrony-interop/status``
- Bitbucket: ``/rest/api/latest/admin/cluster``, ``/rest/zdu/...`` as Confluence plus the
  ``/rest/zdu/cluster/{start,cancel,approve}`` variant
- Synchrony: ``/synchrony/heartbeat``

Every path but ``/status`` and the Synchrony heartbeat needs admin basic auth matching the cluster's
admin Secret (401 otherwise). Requests other than ``/status`` answer 503 while the node is not RUNNING.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from atlbook.sandbox.products.http import Request, Response, basic_auth, json_response, query_params
from atlbook.sandbox.products.pool import DbPool
from atlbook.sandbox.products.zdu import ZduConflict, ZduStateMachine

__all__ = [
    "HTTP_PORTS",
    "PRODUCTS",
    "STARTUP_SECONDS",
    "ProductCluster",
    "ProductNode",
]

PRODUCTS = ("jira", "confluence", "bitbucket", "synchrony")
HTTP_PORTS = {"jira": 8080, "confluence": 8090, "synchrony": 8091, "bitbucket": 7990}
"""The HTTP port each product serves on (chart defaults)."""
STARTUP_SECONDS = {"jira": 120.0, "confluence": 150.0, "bitbucket": 90.0, "synchrony": 45.0}
"""Simulated seconds from container start to RUNNING (``slow-start`` multiplies them)."""
SLOW_START_FACTOR = 10.0
SNAPSHOT_DIR = "/var/atlassian/application-data/shared-home/export/indexsnapshots"
DISPLAY = {
    "jira": "Jira Software",
    "confluence": "Confluence",
    "bitbucket": "Bitbucket",
    "synchrony": "Synchrony",
}
_LOGGER = {
    "jira": "c.a.jira.startup.JiraStartupLogger",
    "confluence": "c.a.c.setup.ConfluenceConfigurationListener",
    "bitbucket": "c.a.b.internal.boot.BootstrapApplication",
    "synchrony": "synchrony.core",
}
POOL_TIMEOUT_MSG = {
    "jira": "Cannot get a connection, pool error Timeout waiting for idle object, borrowMaxWait=PT30S",
    "confluence": "HikariPool-1 - Connection is not available, request timed out after 30000ms.",
    "bitbucket": "HikariPool-1 - Connection is not available, request timed out after 30000ms.",
    "synchrony": "HikariPool-1 - Connection is not available, request timed out after 30000ms.",
}


def _build_number(version: str) -> int:
    digits = [int(p) if p.isdigit() else 0 for p in version.split(".")[:3]] + [0, 0, 0]
    return digits[0] * 10000 + digits[1] * 100 + digits[2]


def _iso(t: float) -> str:
    return _dt.datetime.fromtimestamp(t, _dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class ProductCluster:
    """The nodes of one product in one namespace and the state they share."""

    namespace: str
    product: str
    clock_time: Callable[[], float]
    """Simulated POSIX seconds."""
    admin_credentials: Callable[[], tuple[str, str] | None] = lambda: None
    """Reads the admin Secret each time (so rotating it works)."""
    zdu: ZduStateMachine = field(default_factory=lambda: ZduStateMachine(version=""))
    nodes: dict[str, ProductNode] = field(default_factory=dict)
    """Every node ever seen (live or not), by node id (= pod name)."""
    offline: set[str] = field(default_factory=set)
    issue_count: int = 12873
    snapshot_until: float | None = None
    snapshots: list[dict[str, Any]] = field(default_factory=list)
    reindex: dict[str, Any] | None = None
    lock: threading.RLock = field(default_factory=threading.RLock)

    def live(self) -> list[ProductNode]:
        """Nodes whose pods run now, that have joined, and that the others can reach."""
        return [n for n in self.nodes.values() if n.alive and n.joined and not n.unreachable]

    def observe(self) -> None:
        """Recompute the ZDU state from the live nodes' versions."""
        with self.lock:
            self.zdu.observe([n.version for n in self.live()], self.clock_time())

    def authorized(self, req: Request) -> bool:
        """Whether ``req`` carries the admin credentials of the Secret."""
        creds = self.admin_credentials()
        given = basic_auth(req)
        return creds is not None and given is not None and given == creds


@dataclass
class ProductNode:
    """One simulated product node backing one pod."""

    cluster: ProductCluster
    pod_name: str
    version: str
    ip: str
    started_at: float
    """Simulated POSIX seconds when the container started."""
    startup_seconds: float
    is_bad_version: Callable[[str], bool] = lambda v: False
    context_path: str = ""
    """Tomcat context path (``ATL_TOMCAT_CONTEXTPATH`` / ``SERVER_CONTEXT_PATH``), e.g. ``/jira``."""
    pool: DbPool | None = None
    alive: bool = True
    joined: bool = True
    crash: bool = False
    index_drift: int = 0
    pool_errors: int = 0
    logs: list[str] = field(default_factory=list)
    previous_logs: list[str] = field(default_factory=list)
    _announced: set[str] = field(default_factory=set)
    _last_pool_log: float = float("-inf")
    _last_efs_log: float = float("-inf")
    efs_slow: bool = False
    memory_pressure: bool = False
    unreachable: bool = False
    """Set while the node's worker node is lost: the other nodes see it stop heart-beating."""
    """Set while ``pod-oom`` targets the node: it logs GC distress before the kubelet OOM-kills it."""
    """Set while the ``efs-credits-exhausted`` fault holds: the node logs slow shared-home I/O."""

    @property
    def product(self) -> str:
        """``jira``, ``confluence``, ``bitbucket`` or ``synchrony``."""
        return self.cluster.product

    @property
    def node_id(self) -> str:
        """The cluster node id (the pod name, as the charts set it)."""
        return self.pod_name

    # --- state --------------------------------------------------------------------------------------

    def now(self) -> float:
        """Simulated POSIX seconds."""
        return self.cluster.clock_time()

    def state(self) -> str:
        """``STARTING``, ``RUNNING`` or ``ERROR`` (``/status`` state)."""
        if self.crash or not self.joined:
            return "ERROR"
        if self.now() - self.started_at < self.startup_seconds:
            return "STARTING"
        if self.is_bad_version(self.version):
            return "ERROR"
        return "RUNNING"

    def ready(self) -> bool:
        """Readiness: the node is RUNNING (the STARTING window is not Ready in the sandbox)."""
        return self.state() == "RUNNING"

    # --- logs ---------------------------------------------------------------------------------------

    def log(self, level: str, message: str, logger: str | None = None, at: float | None = None) -> None:
        """Append one log line in the product's log format."""
        t = _dt.datetime.fromtimestamp(at if at is not None else self.now(), _dt.UTC)
        stamp = t.strftime("%Y-%m-%d %H:%M:%S,") + f"{t.microsecond // 1000:03d}+0000"
        self.logs.append(f"{stamp} main {level:<5} [{logger or _LOGGER[self.product]}] {message}")
        if len(self.logs) > 2000:
            del self.logs[:500]

    def startup_logs(self) -> None:
        """The lines a node writes when its container starts."""
        name = DISPLAY[self.product]
        t = self.started_at
        self.log("INFO", f"Starting {name} {self.version} (build #{_build_number(self.version)})", at=t)
        self.log("INFO", f"Node id: {self.node_id}, address {self.ip}", at=t + 1)
        self.log("INFO", "Database configuration OK (postgres72, pool min 2)", at=t + 2)
        if not self.joined:
            self.log(
                "ERROR",
                f"This node's version {self.version} does not match the cluster version "
                f"{self.cluster.zdu.version}; enable upgrade mode before starting a node on a new version",
                logger="c.a.cluster.ClusterManager",
                at=t + 3,
            )

    def tick(self) -> None:
        """Advance log-visible state (the started line, the error lines of faults) and the pool."""
        self.announce()
        self._maintain_pool()

    def announce(self) -> None:
        """Write the log lines the node's state and faults call for (no I/O besides the log)."""
        state = self.state()
        if state == "RUNNING" and "running" not in self._announced:
            self._announced.add("running")
            name = DISPLAY[self.product]
            self.log(
                "INFO", f"{name} {self.version} started. You can now access {name} through your web browser."
            )
        if state == "ERROR" and self.is_bad_version(self.version) and "bad" not in self._announced:
            self._announced.add("bad")
            self.log(
                "ERROR",
                f"Plugin system failed to start: upgrade task for build {_build_number(self.version)} failed "
                "(com.atlassian.upgrade.UpgradeTaskFailedException)",
                logger="c.a.plugin.manager.DefaultPluginManager",
            )
            self.log("FATAL", f"{DISPLAY[self.product]} {self.version} failed to start: node is unhealthy")
        if self.crash and "crash" not in self._announced:
            self._announced.add("crash")
            self.log(
                "FATAL",
                "Unrecoverable error during startup: java.lang.IllegalStateException: "
                "Failed to initialise the shared home (exit code 1)",
            )
        if self.index_drift and self.product == "jira":
            self.index_drift += 3
            if "index" not in self._announced:
                self._announced.add("index")
                self.log(
                    "ERROR",
                    "Index consistency check failed: issue index count differs from the database "
                    f"({self.cluster.issue_count - self.index_drift} in index, "
                    f"{self.cluster.issue_count} in database)",
                    logger="c.a.j.issue.index.DefaultIndexManager",
                )
        if self.memory_pressure and "oom" not in self._announced:
            self._announced.add("oom")
            self.log(
                "WARN",
                "Pause Young (Allocation Failure) took 4213 ms; heap after GC 98% of the container "
                "memory limit (native memory and metaspace leave no headroom)",
                logger="gc",
            )
        if self.efs_slow and self.product != "synchrony" and state == "RUNNING":
            now = self.now()
            if now - self._last_efs_log >= 60.0:
                self._last_efs_log = now
                self.log(
                    "WARN",
                    "Slow I/O on the shared home: writing /var/atlassian/application-data/shared-home/caches "
                    "took 12840 ms (expected < 500 ms); the NFS/EFS file system may be throttled",
                    logger="c.a.sharedhome.SharedHomeMonitor",
                )

    def _maintain_pool(self) -> None:
        if self.pool is not None:
            errors = self.pool.maintain()
            if self.pool.demand > self.pool.max_size and self.pool.size >= self.pool.max_size:
                errors.append(f"all {self.pool.size} of {self.pool.max_size} connections in use")
            now = self.now()
            if errors and now - self._last_pool_log >= 30.0:
                self._last_pool_log = now
                self.pool_errors += len(errors)
                self.log(
                    "ERROR", f"{POOL_TIMEOUT_MSG[self.product]} ({errors[0]})", logger="c.a.db.ConnectionPool"
                )

    def all_logs(self, previous: bool = False) -> list[str]:
        """The current (or previous container's) log lines."""
        self.announce()
        return list(self.previous_logs if previous else self.logs)

    # --- HTTP -------------------------------------------------------------------------------------------

    def handle(self, req: Request) -> Response:
        """Answer one HTTP request to this node."""
        path = "/" + req.path.lstrip("/")
        path = path.rstrip("/") or "/"
        if self.context_path:
            if path != self.context_path and not path.startswith(self.context_path + "/"):
                return json_response(
                    404, {"message": f"Not found: {path} (context path {self.context_path})"}
                )
            path = path[len(self.context_path) :] or "/"
        method = req.method.upper()
        self.announce()
        state = self.state()
        if path == "/status":
            code = {"RUNNING": 200, "STARTING": 200, "ERROR": 500, "MAINTENANCE": 503}[state]
            return json_response(code, {"state": state})
        if self.product == "synchrony":
            if path == "/synchrony/heartbeat":
                return Response(
                    200 if state == "RUNNING" else 503,
                    {"Content-Type": "text/plain"},
                    b"OK" if state == "RUNNING" else b"STARTING",
                )
            return json_response(404, {"message": f"Not found: {path}"})
        if state != "RUNNING":
            return json_response(
                503, {"message": f"{DISPLAY[self.product]} is {state.lower()}", "state": state}
            )
        if not self.cluster.authorized(req):
            return json_response(
                401,
                {"message": "Client must be authenticated to access this resource.", "status-code": 401},
                {"WWW-Authenticate": 'Basic realm="protected-area"'},
            )
        with self.cluster.lock:
            try:
                return self._route(method, path, req)
            except ZduConflict as e:
                return json_response(409, {"errors": [{"message": str(e)}], "message": str(e)})

    def _route(self, method: str, path: str, req: Request) -> Response:
        p = self.product
        if p == "jira":
            return self._jira(method, path, req)
        if p in ("confluence", "bitbucket"):
            if p == "bitbucket" and path == "/rest/api/latest/admin/cluster" and method == "GET":
                return json_response(200, self._bitbucket_cluster())
            if p == "confluence" and path == "/rest/synchrony-interop/status" and method == "GET":
                return json_response(200, {"status": "running", "synchronyEnabled": True})
            return self._zdu_plugin(method, path)
        return json_response(404, {"message": f"Not found: {path}"})

    # --- shared ZDU plugin (Confluence, Bitbucket) ---------------------------------------------------

    def _zdu_node(self, n: ProductNode) -> dict[str, Any]:
        st = n.state()
        node_state = (
            {"RUNNING": "ACTIVE", "STARTING": "STARTING", "ERROR": "ERROR"}[st] if n.alive else "OFFLINE"
        )
        return {
            "id": n.node_id,
            "name": n.node_id,
            "ipAddress": n.ip,
            "state": node_state,
            "buildNumber": str(_build_number(n.version)),
            "version": n.version,
            "local": n is self,
            "activeUserCount": 3 if node_state == "ACTIVE" else 0,
            "tasksTotal": 0,
            "portNumber": HTTP_PORTS[n.product],
            "finalization": {"lastRequested": None, "errors": []},
        }

    def _zdu_overview(self) -> dict[str, Any]:
        c = self.cluster
        state = c.zdu.refresh(self.now())
        return {
            "upgradeModeEnabled": c.zdu.upgrade_mode,
            "state": state,
            "originalVersion": c.zdu.version,
            "hasFinalizationTasks": state == "READY_TO_RUN_UPGRADE_TASKS",
            "nodes": [self._zdu_node(n) for n in c.nodes.values() if n.alive],
            "buildInfo": self._zdu_node(self),
        }

    def _zdu_action(self, action: str) -> Response:
        z = self.cluster.zdu
        now = self.now()
        if action == "start":
            z.start(now)
        elif action == "cancel":
            z.cancel(now)
        elif action in ("approve", "finalize"):
            z.approve(now)
        elif action in ("retryUpgrade", "retry"):
            z.retry(now)
        else:
            return json_response(404, {"message": f"Unknown ZDU action {action}"})
        self.cluster.observe()
        return json_response(200, self._zdu_overview())

    def _zdu_plugin(self, method: str, path: str) -> Response:
        for prefix in ("/rest/zdu/cluster/zdu", "/rest/zdu/cluster", "/rest/zdu"):
            if path == prefix or path.startswith(prefix + "/"):
                rest = path[len(prefix) :].strip("/")
                break
        else:
            return json_response(404, {"message": f"Not found: {path}"})
        if method == "GET" and rest in ("", "state", "cluster"):
            overview = self._zdu_overview()
            if rest == "state":
                return json_response(
                    200,
                    {
                        "state": overview["state"],
                        "buildInfo": overview["buildInfo"],
                        "upgradeModeEnabled": overview["upgradeModeEnabled"],
                    },
                )
            return json_response(200, overview)
        if method == "GET" and rest.startswith("nodes/"):
            node = self.cluster.nodes.get(rest.split("/", 1)[1])
            if node is None:
                return json_response(404, {"message": "No such node"})
            return json_response(200, self._zdu_node(node))
        if method == "POST" and rest in ("start", "cancel", "approve", "finalize", "retryUpgrade", "retry"):
            return self._zdu_action(rest)
        return json_response(404, {"message": f"Not found: {path}"})

    def _bitbucket_cluster(self) -> dict[str, Any]:
        def node(n: ProductNode) -> dict[str, Any]:
            return {
                "id": n.node_id,
                "name": n.node_id,
                "address": {"hostName": n.ip, "port": 5701},
                "local": n is self,
                "buildVersion": n.version,
            }

        return {"localNode": node(self), "nodes": [node(n) for n in self.cluster.live()], "running": True}

    # --- Jira ---------------------------------------------------------------------------------------------

    def _jira_node(self, n: ProductNode) -> dict[str, Any]:
        c = self.cluster
        if n.node_id in c.offline:
            state = "OFFLINE"
        elif not n.alive or n.unreachable:
            state = "ACTIVE"  # Jira keeps reporting a dead node as active until marked offline
        else:
            state = {"RUNNING": "ACTIVE", "STARTING": "ACTIVATING", "ERROR": "ACTIVE"}[n.state()]
        return {
            "nodeId": n.node_id,
            "state": state,
            "alive": n.alive and not n.unreachable and n.state() != "ERROR",
            "ip": n.ip,
            "cacheListenerPort": 40001,
            "nodeBuildNumber": _build_number(n.version),
            "nodeVersion": n.version,
            "lastStateChangeTimestamp": int(n.started_at * 1000),
        }

    def _jira(self, method: str, path: str, req: Request) -> Response:
        c = self.cluster
        now = self.now()
        base = "/rest/api/2"
        if not path.startswith(base):
            return json_response(404, {"message": f"Not found: {path}"})
        sub = path[len(base) :]
        if sub == "/cluster/nodes" and method == "GET":
            return json_response(200, [self._jira_node(n) for n in c.nodes.values()])
        if sub.startswith("/cluster/node/"):
            parts = sub.split("/")
            node_id = parts[3]
            node = c.nodes.get(node_id)
            if node is None:
                return json_response(404, {"errorMessages": [f"Node {node_id} does not exist"]})
            if len(parts) == 5 and parts[4] == "offline" and method == "PUT":
                if node.alive and not node.unreachable:
                    return json_response(
                        400, {"errorMessages": [f"Node {node_id} is alive; cannot mark offline"]}
                    )
                c.offline.add(node_id)
                return Response(204)
            if len(parts) == 4 and method == "DELETE":
                if node_id not in c.offline:
                    return json_response(400, {"errorMessages": [f"Node {node_id} is not OFFLINE"]})
                del c.nodes[node_id]
                c.offline.discard(node_id)
                return Response(204)
        if sub.startswith("/cluster/zdu"):
            action = sub[len("/cluster/zdu") :].strip("/")
            if action == "state" and method == "GET":
                state = c.zdu.refresh(now)
                build = {"buildNumber": str(_build_number(c.zdu.version)), "version": c.zdu.version}
                return json_response(200, {"state": state, "buildInfo": build, "build": build})
            if method == "POST" and action in ("start", "cancel", "approve", "retryUpgrade"):
                self._zdu_action(action)
                state = c.zdu.refresh(now)
                return json_response(200, {"state": state})
        if sub == "/index/summary" and method == "GET":
            return json_response(200, self._index_summary())
        if sub == "/index-snapshot" and method == "POST":
            if c.snapshot_until is not None and now < c.snapshot_until:
                return json_response(409, {"errorMessages": ["Index snapshot creation is already running"]})
            c.snapshot_until = now + 30.0
            stamp = _dt.datetime.fromtimestamp(now, _dt.UTC).strftime("%Y-%b-%d--%H%M")
            path_out = f"{SNAPSHOT_DIR}/IndexSnapshot_{stamp}.tar.sz"
            c.snapshots.append({"path": path_out, "created": _iso(now), "nodeId": self.node_id})
            return json_response(202, {"futureAbsolutePath": path_out})
        if sub == "/index-snapshot" and method == "GET":
            return json_response(200, list(c.snapshots))
        if sub == "/index-snapshot/isRunning" and method == "GET":
            return json_response(200, {"running": c.snapshot_until is not None and now < c.snapshot_until})
        if sub.startswith("/cluster/index-snapshot/") and method == "PUT":
            return Response(202)
        if sub == "/reindex" and method == "POST":
            if c.reindex and c.reindex["finish"] > now:
                return json_response(409, {"errorMessages": ["A reindex is already running"]})
            kind = query_params(req).get("type", "BACKGROUND_PREFERRED")
            task = str(uuid.uuid4().int % 100000)
            c.reindex = {
                "taskId": task,
                "type": kind,
                "start": now,
                "finish": now + 120.0,
                "node": self.node_id,
            }
            return json_response(202, self._reindex_progress())
        if sub in ("/reindex", "/reindex/progress") and method == "GET":
            if not c.reindex:
                return json_response(404, {"errorMessages": ["No reindex task"]})
            return json_response(200, self._reindex_progress())
        return json_response(404, {"errorMessages": [f"Not found: {path}"]})

    def _reindex_progress(self) -> dict[str, Any]:
        c = self.cluster
        r = c.reindex or {}
        now = self.now()
        done = now >= r["finish"]
        if done:
            for n in c.nodes.values():
                if n.node_id == r["node"] or r["type"] != "FOREGROUND":
                    if n.index_drift:
                        n.index_drift = 0
                        n._announced.discard("index")  # noqa: SLF001 - same class
                        n.log(
                            "INFO",
                            "Re-indexing completed; index is consistent with the database",
                            logger="c.a.j.issue.index.DefaultIndexManager",
                        )
        progress = 100 if done else int(100 * (now - r["start"]) / (r["finish"] - r["start"]))
        return {
            "progressUrl": f"/secure/admin/jira/IndexProgress.jspa?taskId={r['taskId']}",
            "currentProgress": progress,
            "currentSubTask": "Indexing issues" if not done else "",
            "type": r["type"],
            "submittedTime": _iso(r["start"]),
            "startTime": _iso(r["start"]),
            "finishTime": _iso(r["finish"]) if done else None,
            "success": done,
        }

    def _index_summary(self) -> dict[str, Any]:
        c = self.cluster
        now = self.now()
        in_index = c.issue_count - self.index_drift
        queues = {}
        for other in c.live():
            if other is self:
                continue
            size = 0 if not self.index_drift else 250 + self.index_drift
            last = int(now * 1000)
            queues[other.node_id] = {
                "lastConsumedOperation": {
                    "id": last - size,
                    "replicationTime": _iso(now - (60 if size else 1)),
                },
                "lastOperationInQueue": {"id": last, "replicationTime": _iso(now)},
                "queueSize": size,
            }
        return {
            "nodeId": self.node_id,
            "reportTime": _iso(now),
            "issueIndex": {
                "indexReadable": True,
                "countInDatabase": c.issue_count,
                "countInIndex": in_index,
                "lastUpdatedInDatabase": _iso(now - 5),
                "lastUpdatedInIndex": _iso(now - (3600 if self.index_drift else 5)),
            },
            "replicationQueues": queues,
        }

    # --- memory ------------------------------------------------------------------------------------------

    def memory_fraction(self) -> float:
        """Share of the memory limit in use (stable per node, 0.55–0.75)."""
        h = int(hashlib.sha1(self.pod_name.encode()).hexdigest()[:4], 16)  # noqa: S324 - not security
        return 0.55 + (h % 200) / 1000.0
