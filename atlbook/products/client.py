"""REST clients for Jira / Confluence / Bitbucket: health, cluster nodes, ZDU, Jira index.

A :class:`ProductClient` talks to one product through a *transport*:

Admin credentials: with :class:`BaseUrl` they travel as HTTP basic auth. Through the API server
(:class:`PodProxy`, :class:`ServiceProxy`) the ``Authorization`` header cannot reach the product — the
API server authenticates with it and then strips it — so they travel as Atlassian's legacy
``os_username``/``os_password`` query parameters. Caution on a real cluster: query strings land in the
API server's audit log; prefer :class:`BaseUrl` for authenticated calls there, or a product version
that still honours these parameters.


- :class:`PodProxy` — one node, through the Kubernetes API server's pod proxy
  (``/api/v1/namespaces/{ns}/pods/{pod}:{port}/proxy/{path}``), so each node can be asked directly
  from an operator laptop;
- :class:`ServiceProxy` — the product's Service through the API server (whole-cluster calls when the
  ingress is not reachable from where the runbook runs);
- :class:`BaseUrl` — the product's base URL (ingress / load balancer), for whole-cluster calls.

Answers are normalised across products into small dataclasses (:class:`ProductStatus`,
:class:`ClusterNode`, :class:`ZduState`, :class:`IndexSummary`, :class:`SnapshotRequest`); the
``parse_*`` functions do that from recorded JSON and are unit-tested on their own. Every non-2xx
answer that is not part of a method's contract becomes the :class:`~atlbook.errors.ProductApiError`
family by status (401/403 Forbidden, 404 NotFound, 409 Conflict, 429 Throttled, 5xx Unavailable)
with the product's own message, scrubbed.

Where the ZDU paths are uncertain (**[verify]** in the catalogue) a mutation tries the candidates in
order, moving on only on 404, and remembers the one that answered.

Refuses: Jira-only calls (index) on other products (``ProductApiError``); credentials that are not
references (``LiteralSecretError`` from :func:`auth_from_spec`).
"""

from __future__ import annotations

import base64
import dataclasses
import json
from collections.abc import Mapping, Sequence
from typing import Any, Literal, Protocol

from atlbook import errors
from atlbook.clients import Clients, http, k8s, retry, secrets
from atlbook.clients.http import HttpResponse
from atlbook.products import catalogue

__all__ = [
    "BaseUrl",
    "BasicAuth",
    "ClusterNode",
    "IndexSummary",
    "K8sAccess",
    "PodProxy",
    "ProductClient",
    "ProductStatus",
    "ReindexProgress",
    "ServiceProxy",
    "SnapshotRequest",
    "Transport",
    "ZduState",
    "auth_from_spec",
    "parse_cluster_nodes",
    "parse_index_summary",
    "parse_reindex",
    "parse_status",
    "parse_zdu_state",
]

ZDU_STATES = (
    "STABLE",
    "READY_TO_UPGRADE",
    "MIXED",
    "READY_TO_RUN_UPGRADE_TASKS",
    "RUNNING_UPGRADE_TASKS",
    "UPGRADE_TASKS_FAILED",
)


# --- transports -----------------------------------------------------------------------------------------


class Transport(Protocol):
    """How a :class:`ProductClient` sends one request; returns the product's answer, any status."""

    description: str
    credentials: Literal["header", "query"]
    """How admin credentials travel: an ``Authorization`` header, or the ``os_username``/``os_password``
    query parameters (through the API server, which consumes the ``Authorization`` header)."""

    def request(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        body: Any = None,
        idempotent: bool | None = None,
        retry_statuses: tuple[int, ...] = http.RETRY_STATUSES,
    ) -> HttpResponse:
        """Send ``method`` ``path`` (relative to the product's context path)."""
        ...


class K8sAccess(Protocol):
    """What the API-server transports need of a :class:`~atlbook.clients.Clients` bundle."""

    @property
    def k8s(self) -> Any:
        """The kubernetes ApiClient."""
        ...

    @property
    def policy(self) -> retry.RetryPolicy:
        """The retry policy."""
        ...


class PodProxy:
    """One product node (pod) through the API server's pod proxy."""

    resource: Literal["pods", "services"] = "pods"
    """The proxied resource: ``pods`` here, ``services`` for :class:`ServiceProxy`."""

    def __init__(
        self, clients: K8sAccess, namespace: str, pod: str, port: int, *, context_path: str = ""
    ) -> None:
        self.clients = clients
        self.namespace = namespace
        self.pod = pod
        self.port = port
        self.context_path = context_path.rstrip("/")
        self.description = f"pod {namespace}/{pod}:{port}"
        self.credentials: Literal["header", "query"] = "query"

    def request(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        body: Any = None,
        idempotent: bool | None = None,
        retry_statuses: tuple[int, ...] = http.RETRY_STATUSES,
    ) -> HttpResponse:
        """See :func:`atlbook.clients.k8s.proxy_request` (``resource`` = this class's :attr:`resource`)."""
        return k8s.proxy_request(
            self.clients.k8s,
            method,
            self.namespace,
            self.pod,
            self.port,
            self.context_path + path,
            query=query,
            headers=headers,
            body=body,
            idempotent=idempotent,
            retry_statuses=retry_statuses,
            policy=self.clients.policy,
            resource=self.resource,
        )


class ServiceProxy(PodProxy):
    """The product's Service through the API server's service proxy (any ready node answers)."""

    resource: Literal["pods", "services"] = "services"

    def __init__(
        self, clients: K8sAccess, namespace: str, service: str, port: int, *, context_path: str = ""
    ) -> None:
        super().__init__(clients, namespace, service, port, context_path=context_path)
        self.description = f"service {namespace}/{service}:{port}"


class BaseUrl:
    """The product's base URL (ingress), e.g. ``https://atlassian.example.com/jira``."""

    def __init__(
        self, base_url: str, *, verify: bool = True, policy: retry.RetryPolicy | None = None
    ) -> None:
        self.http = http.HttpClient(base_url, verify=verify, policy=policy)
        self.description = base_url
        self.credentials: Literal["header", "query"] = "header"

    def request(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        body: Any = None,
        idempotent: bool | None = None,
        retry_statuses: tuple[int, ...] = http.RETRY_STATUSES,
    ) -> HttpResponse:
        """See :meth:`atlbook.clients.http.HttpClient.request`."""
        return self.http.request(
            method,
            path,
            query=query,
            headers=headers,
            body=body,
            idempotent=idempotent,
            retry_statuses=retry_statuses,
        )


# --- auth -----------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class BasicAuth:
    """Admin credentials for the product's REST API (HTTP basic)."""

    username: str
    password: str = dataclasses.field(repr=False)

    def query(self) -> dict[str, str]:
        """``os_username``/``os_password`` query parameters (the password is registered for redaction)."""
        secrets.register(self.password)
        return {"os_username": self.username, "os_password": self.password}

    def headers(self) -> dict[str, str]:
        """The ``Authorization`` header (its token is registered for redaction)."""
        token = base64.b64encode(f"{self.username}:{self.password}".encode()).decode("ascii")
        secrets.register(self.password)
        secrets.register(token)
        return {"Authorization": f"Basic {token}"}


def auth_from_spec(admin: Any, clients: Clients | None = None) -> BasicAuth:
    """:class:`BasicAuth` from ``stack.AdminCredentials`` (or a mapping with username/password).

    ``password`` must be a secret reference and is resolved with ``clients``; ``username`` may be a
    plain name or a reference.
    """

    def get(key: str) -> Any:
        return admin.get(key) if isinstance(admin, Mapping) else getattr(admin, key, None)

    username = get("username") or "admin"
    password = get("password")
    if password is None or not secrets.is_reference(password):
        raise errors.LiteralSecretError(
            "product admin password must be a reference (env:, k8s-secret:, aws-secretsmanager:)",
            key="admin.password",
        )
    user = secrets.resolve(username, clients) if secrets.is_reference(username) else str(username)
    return BasicAuth(user, secrets.resolve(password, clients))


# --- normalised answers ---------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class ProductStatus:
    """``GET /status``: ``state`` (RUNNING, STARTING, FIRST_RUN, STOPPING, MAINTENANCE, ERROR, …)."""

    state: str
    http_status: int

    @property
    def running(self) -> bool:
        """Only RUNNING with HTTP 200 is healthy (reference §8.1: 200 alone is not enough)."""
        return self.state == "RUNNING" and self.http_status == 200


@dataclasses.dataclass(frozen=True)
class ClusterNode:
    """One node as the product's own cluster view lists it, normalised across products."""

    node_id: str
    state: str
    """Jira: ACTIVE/PASSIVE/ACTIVATING/PASSIVATING/OFFLINE; ZDU plugin: ACTIVE/STARTING/DRAINING/…"""
    alive: bool
    version: str | None
    build: str | None
    ip: str | None = None
    local: bool | None = None

    @property
    def active(self) -> bool:
        """Listed ACTIVE and alive."""
        return self.state == "ACTIVE" and self.alive


@dataclasses.dataclass(frozen=True)
class ZduState:
    """The cluster's zero-downtime-upgrade state."""

    state: str
    upgrade_mode: bool
    original_version: str | None
    build_number: str | None
    nodes: tuple[ClusterNode, ...] = ()
    """Nodes, when the endpoint lists them (Confluence/Bitbucket overview)."""


@dataclasses.dataclass(frozen=True)
class IndexSummary:
    """Jira ``/rest/api/2/index/summary`` of the node that answered."""

    node_id: str | None
    report_time: str | None
    readable: bool
    count_in_database: int | None
    count_in_index: int | None
    last_updated_in_database: str | None
    last_updated_in_index: str | None
    queue_sizes: dict[str, int]
    """Replication queue size per source node."""

    @property
    def drift(self) -> int | None:
        """Issues in the database but not in the index (``None`` when a count is missing)."""
        if self.count_in_database is None or self.count_in_index is None:
            return None
        return self.count_in_database - self.count_in_index

    @property
    def max_queue(self) -> int:
        """The longest replication queue (0 when none)."""
        return max(self.queue_sizes.values(), default=0)

    def healthy(self, max_drift: int = 0, max_queue: int = 100) -> bool:
        """Readable, drift ≤ ``max_drift``, every queue ≤ ``max_queue``."""
        return self.readable and (self.drift or 0) <= max_drift and self.max_queue <= max_queue


@dataclasses.dataclass(frozen=True)
class SnapshotRequest:
    """Outcome of asking Jira for an index snapshot: accepted (202) or one already running (409)."""

    accepted: bool
    already_running: bool
    future_path: str | None


@dataclasses.dataclass(frozen=True)
class ReindexProgress:
    """A Jira reindex task: ``progress`` 0–100, ``success`` once finished (``None`` when unknown)."""

    task_id: str | None
    type: str | None
    progress: int
    success: bool | None
    finished: bool
    submitted: str | None
    finish_time: str | None


# --- parsing --------------------------------------------------------------------------------------------


def _json(resp: HttpResponse, operation: str, product: str) -> Any:
    try:
        return resp.json()
    except ValueError as e:
        raise errors.ProductApiError(
            f"{operation}: HTTP {resp.status}: the answer is not JSON ({resp.body[:80]!r})",
            service=product,
            operation=operation,
            status=resp.status,
        ) from e


def _message(doc: Any) -> str:
    if isinstance(doc, Mapping):
        msgs = doc.get("errorMessages")
        if isinstance(msgs, Sequence) and msgs and not isinstance(msgs, str):
            return "; ".join(str(m) for m in msgs)
        errs = doc.get("errors")
        if isinstance(errs, Sequence) and errs and not isinstance(errs, str):
            return "; ".join(str(e.get("message", e)) if isinstance(e, Mapping) else str(e) for e in errs)
        if isinstance(errs, Mapping) and errs:
            return "; ".join(f"{k}: {v}" for k, v in errs.items())
        for key in ("message", "state"):
            if doc.get(key):
                return str(doc[key])
    return ""


def _fail(resp: HttpResponse, operation: str, product: str, hint: str = "") -> errors.ApiError:
    from atlbook.clients._scrub import scrub

    try:
        detail = _message(resp.json())
    except ValueError:
        detail = resp.body.decode("utf-8", "replace")
    text = scrub(detail, 300)
    return errors.api_error(
        errors.ProductApiError,
        f"{operation}: HTTP {resp.status}{': ' + text if text else ''}{hint}",
        status=resp.status,
        service=product,
        operation=operation,
        delay=http.retry_after(resp.headers),
    )


def parse_status(product: str, resp: HttpResponse) -> ProductStatus:
    """``/status``: 200 with a state, 503 MAINTENANCE, 500 ERROR — every JSON answer is a status."""
    try:
        doc = resp.json()
    except ValueError:
        doc = None
    if isinstance(doc, Mapping) and isinstance(doc.get("state"), str):
        return ProductStatus(state=str(doc["state"]), http_status=resp.status)
    if resp.status >= 400:
        raise _fail(resp, "GET /status", product)
    raise errors.ProductApiError(
        f"GET /status: HTTP {resp.status} without a state", service=product, operation="GET /status"
    )


def _str(value: Any) -> str | None:
    return None if value is None else str(value)


_PLUGIN_ALIVE = {"ACTIVE", "STARTING", "DRAINING", "RUNNING_FINALIZE_UPGRADE_TASKS"}


def _plugin_node(doc: Mapping[str, Any]) -> ClusterNode:
    state = str(doc.get("state") or "UNKNOWN")
    return ClusterNode(
        node_id=str(doc.get("id") or doc.get("name")),
        state=state,
        alive=state in _PLUGIN_ALIVE,
        version=_str(doc.get("version")),
        build=_str(doc.get("buildNumber")),
        ip=_str(doc.get("ipAddress")),
        local=doc.get("local") if isinstance(doc.get("local"), bool) else None,
    )


def parse_cluster_nodes(product: str, doc: Any) -> list[ClusterNode]:
    """Nodes from Jira's ``/rest/api/2/cluster/nodes`` (a list) or the ZDU plugin's ``/rest/zdu/cluster``."""
    if product == "jira":
        if not isinstance(doc, list):
            raise errors.ProductApiError("cluster nodes: expected a JSON list", service=product)
        return [
            ClusterNode(
                node_id=str(n.get("nodeId")),
                state=str(n.get("state") or "UNKNOWN"),
                alive=bool(n.get("alive")),
                version=_str(n.get("nodeVersion")),
                build=_str(n.get("nodeBuildNumber")),
                ip=_str(n.get("ip")),
            )
            for n in doc
            if isinstance(n, Mapping)
        ]
    if not isinstance(doc, Mapping) or not isinstance(doc.get("nodes"), list):
        raise errors.ProductApiError("cluster overview: expected an object with nodes", service=product)
    return [_plugin_node(n) for n in doc["nodes"] if isinstance(n, Mapping)]


def parse_zdu_state(product: str, doc: Any) -> ZduState:
    """ZDU state from Jira's ``cluster/zdu/state`` or the plugin's ``/rest/zdu/{state,cluster}``."""
    if not isinstance(doc, Mapping) or doc.get("state") not in ZDU_STATES:
        got = doc.get("state") if isinstance(doc, Mapping) else None
        raise errors.ProductApiError(f"ZDU state: unexpected answer (state {got!r})", service=product)
    state = str(doc["state"])
    build = doc.get("buildInfo") or doc.get("build") or {}
    if product == "jira":
        return ZduState(
            state=state,
            upgrade_mode=state != "STABLE",
            original_version=_str(build.get("version")),
            build_number=_str(build.get("buildNumber")),
        )
    nodes = tuple(_plugin_node(n) for n in doc.get("nodes") or [] if isinstance(n, Mapping))
    mode = doc.get("upgradeModeEnabled")
    return ZduState(
        state=state,
        upgrade_mode=bool(mode) if mode is not None else state != "STABLE",
        original_version=_str(doc.get("originalVersion") or build.get("version")),
        build_number=_str(build.get("buildNumber")),
        nodes=nodes,
    )


def parse_reindex(doc: Any) -> ReindexProgress:
    """Jira's reindex answer (``POST /reindex`` or ``GET /reindex[/progress]``)."""
    if not isinstance(doc, Mapping):
        raise errors.ProductApiError("reindex: expected an object", service="jira")
    progress = doc.get("currentProgress")
    finish = doc.get("finishTime")
    success = doc.get("success")
    task = doc.get("taskId")
    if task is None and isinstance(doc.get("progressUrl"), str) and "taskId=" in doc["progressUrl"]:
        task = doc["progressUrl"].rsplit("taskId=", 1)[1]
    return ReindexProgress(
        task_id=_str(task),
        type=_str(doc.get("type")),
        progress=int(progress) if isinstance(progress, (int, float)) else 0,
        success=success if isinstance(success, bool) else None,
        finished=bool(finish) or (isinstance(progress, (int, float)) and progress >= 100),
        submitted=_str(doc.get("submittedTime")),
        finish_time=_str(finish),
    )


def parse_index_summary(doc: Any) -> IndexSummary:
    """Jira's ``/rest/api/2/index/summary``."""
    if not isinstance(doc, Mapping):
        raise errors.ProductApiError("index summary: expected an object", service="jira")
    issue = doc.get("issueIndex") or {}
    queues = doc.get("replicationQueues") or {}

    def _int(v: Any) -> int | None:
        return int(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None

    return IndexSummary(
        node_id=_str(doc.get("nodeId")),
        report_time=_str(doc.get("reportTime")),
        readable=bool(issue.get("indexReadable")),
        count_in_database=_int(issue.get("countInDatabase")),
        count_in_index=_int(issue.get("countInIndex")),
        last_updated_in_database=_str(issue.get("lastUpdatedInDatabase")),
        last_updated_in_index=_str(issue.get("lastUpdatedInIndex")),
        queue_sizes={
            str(src): int(q.get("queueSize") or 0) for src, q in queues.items() if isinstance(q, Mapping)
        },
    )


# --- the client -----------------------------------------------------------------------------------------

ZduAction = Literal["start", "cancel", "approve", "retry"]


class ProductClient:
    """Jira / Confluence / Bitbucket REST through one :class:`Transport`, with admin ``auth``."""

    def __init__(self, transport: Transport, product: str, auth: BasicAuth | None = None) -> None:
        self.transport = transport
        self.info = catalogue.get(product)
        self.product = self.info.name
        self.auth = auth
        self._zdu_paths: dict[str, str] = {}

    def __repr__(self) -> str:
        return f"ProductClient({self.product}, {self.transport.description})"

    @classmethod
    def for_pod(
        cls,
        clients: K8sAccess,
        product: str,
        namespace: str,
        pod: str,
        auth: BasicAuth | None = None,
        *,
        context_path: str = "",
    ) -> ProductClient:
        """A client for one node through the pod proxy on the product's HTTP port."""
        port = catalogue.get(product).http_port
        return cls(PodProxy(clients, namespace, pod, port, context_path=context_path), product, auth)

    @classmethod
    def for_service(
        cls,
        clients: K8sAccess,
        product: str,
        namespace: str,
        service: str,
        auth: BasicAuth | None = None,
        *,
        port: int = 80,
        context_path: str = "",
    ) -> ProductClient:
        """A whole-cluster client through the service proxy (chart Service port 80 by default)."""
        return cls(ServiceProxy(clients, namespace, service, port, context_path=context_path), product, auth)

    @classmethod
    def for_url(
        cls,
        base_url: str,
        product: str,
        auth: BasicAuth | None = None,
        *,
        policy: retry.RetryPolicy | None = None,
    ) -> ProductClient:
        """A whole-cluster client for the product's base URL."""
        return cls(BaseUrl(base_url, policy=policy), product, auth)

    # --- plumbing ---

    def _auth(self) -> tuple[dict[str, str], dict[str, str]]:
        """(headers, query) carrying the admin credentials the way the transport needs."""
        if self.auth is None:
            return {}, {}
        if getattr(self.transport, "credentials", "header") == "query":
            return {}, self.auth.query()
        return self.auth.headers(), {}

    def _get(self, path: str, *, expect: tuple[int, ...] = (200,)) -> tuple[HttpResponse, Any]:
        operation = f"GET {path}"
        headers, query = self._auth()
        resp = self.transport.request("GET", path, query=query, headers=headers)
        if resp.status not in expect:
            hint = ""
            if resp.status == 405 and path == self.info.cluster_nodes_path:
                hint = " (this instance is not clustered)"
            raise _fail(resp, operation, self.product, hint)
        return resp, _json(resp, operation, self.product)

    def _post(self, path: str) -> HttpResponse:
        headers, query = self._auth()
        return self.transport.request(
            "POST",
            path,
            query=query,
            headers={**headers, "X-Atlassian-Token": "no-check"},
            idempotent=False,
        )

    # --- health and nodes ---

    def status(self) -> ProductStatus:
        """``GET /status`` (no auth). A 503/500 with a JSON state is an answer, not an error.

        A 5xx *without* a state (a proxy or load balancer in between failing, a reset) is asked again
        under the transport's retry policy, then raised (``Unavailable``).
        """

        def once() -> ProductStatus:
            resp = self.transport.request("GET", self.info.health_path, retry_statuses=(429,))
            return parse_status(self.product, resp)

        return retry.call(
            once, idempotent=True, description=f"GET {self.info.health_path}", policy=self._policy()
        )

    def _policy(self) -> retry.RetryPolicy | None:
        """The retry policy of the transport (its bundle's, or its HTTP client's), else the default."""
        clients = getattr(self.transport, "clients", None)
        found = getattr(clients, "policy", None) or getattr(
            getattr(self.transport, "http", None), "policy", None
        )
        return found if isinstance(found, retry.RetryPolicy) else None

    def cluster_nodes(self) -> list[ClusterNode]:
        """The product's own list of cluster nodes, normalised (node id, state, alive, version, build)."""
        _, doc = self._get(self.info.cluster_nodes_path)
        return parse_cluster_nodes(self.product, doc)

    # --- ZDU ---

    def zdu_state(self) -> ZduState:
        """The cluster's ZDU state (STABLE, READY_TO_UPGRADE, MIXED, READY_TO_RUN_UPGRADE_TASKS, …)."""
        _, doc = self._get(self.info.zdu.state)
        return parse_zdu_state(self.product, doc)

    def _zdu(self, action: ZduAction) -> ZduState:
        candidates: tuple[str, ...] = getattr(self.info.zdu, action)
        known = self._zdu_paths.get(action)
        order = (known,) if known else candidates
        last: HttpResponse | None = None
        path = order[0]
        for path in order:
            last = self._post(path)
            if last.status == 404 and not known:
                continue  # [verify] path variant: try the next candidate
            break
        assert last is not None
        operation = f"POST {path}"
        if not 200 <= last.status < 300:
            raise _fail(last, operation, self.product)
        self._zdu_paths[action] = path
        try:
            doc = last.json()
        except ValueError:
            doc = None
        if (
            isinstance(doc, Mapping)
            and doc.get("state") in ZDU_STATES
            and (self.product == "jira" or "upgradeModeEnabled" in doc)
        ):
            return parse_zdu_state(self.product, doc)
        return self.zdu_state()

    def zdu_start(self) -> ZduState:
        """Enter upgrade mode (STABLE → READY_TO_UPGRADE); ``Conflict`` outside STABLE."""
        return self._zdu("start")

    def zdu_cancel(self) -> ZduState:
        """Leave upgrade mode; ``Conflict`` once a node runs the new version (MIXED or later)."""
        return self._zdu("cancel")

    def zdu_approve(self) -> ZduState:
        """Run upgrade tasks / finalize (READY_TO_RUN_UPGRADE_TASKS → RUNNING_UPGRADE_TASKS → STABLE)."""
        return self._zdu("approve")

    def zdu_retry(self) -> ZduState:
        """Retry upgrade tasks after UPGRADE_TASKS_FAILED."""
        return self._zdu("retry")

    # --- Jira index ---

    def _jira_only(self, what: str) -> None:
        if self.product != "jira":
            raise errors.ProductApiError(
                f"{what} is a Jira endpoint, not {self.info.display}", service=self.product
            )

    def index_summary(self) -> IndexSummary:
        """Jira: the answering node's index summary (counts, replication queues)."""
        self._jira_only("index summary")
        _, doc = self._get("/rest/api/2/index/summary")
        return parse_index_summary(doc)

    def index_snapshot_create(self) -> SnapshotRequest:
        """Jira: ask for an index snapshot — 202 accepted, 409 one already running (not an error)."""
        self._jira_only("index snapshot")
        path = "/rest/api/2/index-snapshot"
        resp = self._post(path)
        if resp.status == 409:
            return SnapshotRequest(accepted=False, already_running=True, future_path=None)
        if resp.status not in (200, 201, 202):
            raise _fail(resp, f"POST {path}", self.product)
        try:
            doc = resp.json()
        except ValueError:
            doc = None
        future = doc.get("futureAbsolutePath") if isinstance(doc, Mapping) else None
        return SnapshotRequest(accepted=True, already_running=False, future_path=_str(future))

    def reindex_start(self, kind: str = "BACKGROUND_PREFERRED") -> ReindexProgress | None:
        """Jira: start a reindex (``type`` BACKGROUND_PREFERRED, BACKGROUND or FOREGROUND).

        Returns the task's progress; ``None`` when one is already running (409 — not an error).
        A FOREGROUND reindex locks Jira for users: callers should not ask for it without an explicit option.
        """
        self._jira_only("reindex")
        path = "/rest/api/2/reindex"
        headers, query = self._auth()
        resp = self.transport.request(
            "POST",
            path,
            query={**query, "type": kind},
            headers={**headers, "X-Atlassian-Token": "no-check"},
            idempotent=False,
        )
        if resp.status == 409:
            return None
        if resp.status not in (200, 201, 202):
            raise _fail(resp, f"POST {path}", self.product)
        return parse_reindex(_json(resp, f"POST {path}", self.product))

    def reindex_progress(self) -> ReindexProgress | None:
        """Jira: the last reindex task's progress, or ``None`` when there is none (404).

        Tries ``/rest/api/2/reindex/progress`` then ``/rest/api/2/reindex`` ([verify]: the reference is
        unsure which path a given Jira version serves).
        """
        self._jira_only("reindex")
        headers, query = self._auth()
        last: HttpResponse | None = None
        for path in ("/rest/api/2/reindex/progress", "/rest/api/2/reindex"):
            last = self.transport.request("GET", path, query=query, headers=headers)
            if last.status == 200:
                return parse_reindex(_json(last, f"GET {path}", self.product))
        assert last is not None
        if last.status == 404:
            return None
        raise _fail(last, "GET /rest/api/2/reindex", self.product)

    def node_offline(self, node_id: str) -> None:
        """Jira: mark a node that is no longer alive OFFLINE (``Invalid`` when it is alive)."""
        self._jira_only("cluster node offline")
        self._node_call("PUT", f"/rest/api/2/cluster/node/{node_id}/offline")

    def node_delete(self, node_id: str) -> None:
        """Jira: delete an OFFLINE node from the cluster view (``Invalid`` unless OFFLINE)."""
        self._jira_only("cluster node delete")
        self._node_call("DELETE", f"/rest/api/2/cluster/node/{node_id}")

    def _node_call(self, method: str, path: str) -> None:
        headers, query = self._auth()
        resp = self.transport.request(
            method, path, query=query, headers={**headers, "X-Atlassian-Token": "no-check"}, idempotent=True
        )
        if not 200 <= resp.status < 300:
            raise _fail(resp, f"{method} {path}", self.product)

    def index_snapshot_running(self) -> bool:
        """Jira: whether an index snapshot is being created."""
        self._jira_only("index snapshot")
        _, doc = self._get("/rest/api/2/index-snapshot/isRunning")
        if not isinstance(doc, Mapping) or not isinstance(doc.get("running"), bool):
            raise errors.ProductApiError(
                f"index snapshot isRunning: unexpected answer {json.dumps(doc)[:80]}", service=self.product
            )
        return bool(doc["running"])
