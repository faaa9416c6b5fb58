"""Product REST client: parsing recorded payloads and behaviour over an injected transport.

Covers: /status states (200/503/500, non-JSON); Jira cluster nodes and the ZDU plugin overview,
normalised; ZDU state for Jira and the plugin; 405 "not clustered"; ZDU mutations — [verify] path
fallback on 404 remembered, 409 → Conflict with the product's message, 503 → Unavailable; Jira index
summary, snapshot 202/409, isRunning; Jira-only calls refused elsewhere; error payloads scrubbed;
auth headers sent and registered; auth_from_spec refuses literals.
"""

from __future__ import annotations

import base64
import json
import types
from collections.abc import Mapping
from typing import Any

import pytest

from atlbook import errors
from atlbook.clients import retry, secrets
from atlbook.clients.http import HttpResponse
from atlbook.products import client as pc

# Payloads shaped per reference §8 (Jira REST v2, ZDU plugin as in goconfluence / DCAPT).
JIRA_NODES = [
    {
        "nodeId": "jira-0",
        "state": "ACTIVE",
        "alive": True,
        "ip": "10.0.1.5",
        "cacheListenerPort": 40001,
        "nodeBuildNumber": 100012,
        "nodeVersion": "9.12.1",
        "lastStateChangeTimestamp": 1764160000000,
    },
    {
        "nodeId": "jira-1",
        "state": "OFFLINE",
        "alive": False,
        "ip": "10.0.2.7",
        "cacheListenerPort": 40001,
        "nodeBuildNumber": 100012,
        "nodeVersion": "9.12.1",
        "lastStateChangeTimestamp": 1764160000000,
    },
]
JIRA_ZDU = {"state": "READY_TO_UPGRADE", "buildInfo": {"buildNumber": "100012", "version": "9.12.1"}}
PLUGIN_CLUSTER = {
    "upgradeModeEnabled": True,
    "state": "MIXED",
    "originalVersion": "9.4.12",
    "hasFinalizationTasks": False,
    "nodes": [
        {
            "id": "bitbucket-0",
            "name": "bitbucket-0",
            "ipAddress": "10.0.1.9",
            "state": "ACTIVE",
            "buildNumber": "9004016",
            "version": "9.4.16",
            "local": True,
            "activeUserCount": 3,
            "tasksTotal": 0,
        },
        {
            "id": "bitbucket-1",
            "name": "bitbucket-1",
            "ipAddress": "10.0.2.9",
            "state": "DRAINING",
            "buildNumber": "9004012",
            "version": "9.4.12",
            "local": False,
        },
        {"id": "bitbucket-2", "name": "bitbucket-2", "state": "OFFLINE", "version": "9.4.12"},
    ],
    "buildInfo": {"id": "bitbucket-0", "state": "ACTIVE", "buildNumber": "9004016", "version": "9.4.16"},
}
INDEX_SUMMARY = {
    "nodeId": "jira-0",
    "reportTime": "2026-11-26T15:00:00Z",
    "issueIndex": {
        "indexReadable": True,
        "countInDatabase": 1200,
        "countInIndex": 1150,
        "lastUpdatedInDatabase": "2026-11-26T14:59:55Z",
        "lastUpdatedInIndex": "2026-11-26T14:00:00Z",
    },
    "replicationQueues": {
        "jira-1": {
            "lastConsumedOperation": {"id": 1, "replicationTime": "x"},
            "lastOperationInQueue": {"id": 301, "replicationTime": "y"},
            "queueSize": 300,
        },
        "jira-2": {"queueSize": 0},
    },
}


def resp(
    status: int, doc: Any = None, raw: bytes | None = None, headers: Mapping[str, str] | None = None
) -> HttpResponse:
    body = raw if raw is not None else (json.dumps(doc).encode() if doc is not None else b"")
    return HttpResponse(
        status=status, headers={"content-type": "application/json", **(headers or {})}, body=body
    )


class FakeTransport:
    """Answers by (method, path); records the requests."""

    description = "fake"

    def __init__(
        self, routes: Mapping[tuple[str, str], HttpResponse | list[HttpResponse]], credentials: str = "header"
    ) -> None:
        self.routes = {k: (v if isinstance(v, list) else [v]) for k, v in routes.items()}
        self.calls: list[tuple[str, str, dict[str, str]]] = []
        self.queries: list[dict[str, str]] = []
        self.credentials = credentials

    def request(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        body: Any = None,
        idempotent: bool | None = None,
        retry_statuses: tuple[int, ...] = (),
    ) -> HttpResponse:
        self.calls.append((method, path, dict(headers or {})))
        self.queries.append(dict(query or {}))
        answers = self.routes.get((method, path))
        if not answers:
            return resp(404, {"message": f"Not found: {path}"})
        return answers.pop(0) if len(answers) > 1 else answers[0]


AUTH = pc.BasicAuth("admin", "adm1n-pass-word")


@pytest.mark.parametrize(
    "answer, state, running",
    [
        (resp(200, {"state": "RUNNING"}), "RUNNING", True),
        (resp(200, {"state": "STARTING"}), "STARTING", False),
        (resp(200, {"state": "FIRST_RUN"}), "FIRST_RUN", False),
        (resp(503, {"state": "MAINTENANCE"}), "MAINTENANCE", False),
        (resp(500, {"state": "ERROR"}), "ERROR", False),
    ],
    ids=["running", "starting", "first-run", "maintenance-503", "error-500"],
)
def test_status(answer: HttpResponse, state: str, running: bool) -> None:
    st = pc.ProductClient(FakeTransport({("GET", "/status"): answer}), "jira").status()
    assert st.state == state and st.running is running


@pytest.mark.parametrize(
    "answer, exctype",
    [
        (resp(502, raw=b"<html>bad gateway</html>"), errors.Unavailable),
        (resp(200, raw=b"ok"), errors.ProductApiError),
    ],
    ids=["502-html", "200-not-json"],
)
def test_status_without_state(answer: HttpResponse, exctype: type[Exception]) -> None:
    transport = FakeTransport({("GET", "/status"): answer})
    sleeps: list[float] = []
    transport.http = types.SimpleNamespace(policy=retry.RetryPolicy(max_attempts=3, sleep=sleeps.append))
    with pytest.raises(exctype):
        pc.ProductClient(transport, "jira").status()
    # a 5xx without a state is asked again under the transport's policy; a 200 that is not JSON is not
    assert len(transport.calls) == (3 if exctype is errors.Unavailable else 1) == len(sleeps) + 1


def test_jira_cluster_nodes() -> None:
    t = FakeTransport({("GET", "/rest/api/2/cluster/nodes"): resp(200, JIRA_NODES)})
    nodes = pc.ProductClient(t, "jira", AUTH).cluster_nodes()
    assert nodes[0] == pc.ClusterNode("jira-0", "ACTIVE", True, "9.12.1", "100012", "10.0.1.5")
    assert nodes[0].active and not nodes[1].active and nodes[1].state == "OFFLINE"
    assert t.calls[0][2]["Authorization"].startswith("Basic ")


def test_credentials_in_query_through_the_api_server() -> None:
    t = FakeTransport({("GET", "/rest/api/2/cluster/nodes"): resp(200, JIRA_NODES)}, credentials="query")
    pc.ProductClient(t, "jira", AUTH).cluster_nodes()
    assert "Authorization" not in t.calls[0][2]
    assert t.queries[0] == {"os_username": "admin", "os_password": "adm1n-pass-word"}


def test_jira_not_clustered() -> None:
    t = FakeTransport(
        {("GET", "/rest/api/2/cluster/nodes"): resp(405, {"message": "This Jira instance is not clustered"})}
    )
    with pytest.raises(errors.ProductApiError, match="not clustered"):
        pc.ProductClient(t, "jira", AUTH).cluster_nodes()


@pytest.mark.parametrize("product", ["confluence", "bitbucket"])
def test_plugin_cluster_nodes(product: str) -> None:
    t = FakeTransport({("GET", "/rest/zdu/cluster"): resp(200, PLUGIN_CLUSTER)})
    nodes = pc.ProductClient(t, product, AUTH).cluster_nodes()
    assert [(n.node_id, n.state, n.alive, n.version, n.build) for n in nodes] == [
        ("bitbucket-0", "ACTIVE", True, "9.4.16", "9004016"),
        ("bitbucket-1", "DRAINING", True, "9.4.12", "9004012"),
        ("bitbucket-2", "OFFLINE", False, "9.4.12", None),
    ]
    assert nodes[0].local is True and nodes[2].local is None


def test_zdu_state_jira() -> None:
    t = FakeTransport({("GET", "/rest/api/2/cluster/zdu/state"): resp(200, JIRA_ZDU)})
    st = pc.ProductClient(t, "jira", AUTH).zdu_state()
    assert st == pc.ZduState("READY_TO_UPGRADE", True, "9.12.1", "100012")


def test_zdu_state_plugin() -> None:
    t = FakeTransport({("GET", "/rest/zdu/state"): resp(200, PLUGIN_CLUSTER)})
    st = pc.ProductClient(t, "bitbucket", AUTH).zdu_state()
    assert st.state == "MIXED" and st.upgrade_mode and st.original_version == "9.4.12" and len(st.nodes) == 3


def test_zdu_state_unexpected() -> None:
    t = FakeTransport({("GET", "/rest/api/2/cluster/zdu/state"): resp(200, {"state": "WEIRD"})})
    with pytest.raises(errors.ProductApiError, match="WEIRD"):
        pc.ProductClient(t, "jira", AUTH).zdu_state()


def test_zdu_start_jira_then_state() -> None:
    t = FakeTransport(
        {
            ("POST", "/rest/api/2/cluster/zdu/start"): resp(201, raw=b""),
            ("GET", "/rest/api/2/cluster/zdu/state"): resp(200, JIRA_ZDU),
        }
    )
    assert pc.ProductClient(t, "jira", AUTH).zdu_start().state == "READY_TO_UPGRADE"
    assert t.calls[0][2]["X-Atlassian-Token"] == "no-check"


def test_zdu_mutation_falls_back_on_404_and_remembers() -> None:
    overview = {**PLUGIN_CLUSTER, "state": "READY_TO_UPGRADE", "upgradeModeEnabled": True}
    t = FakeTransport(
        {
            ("POST", "/rest/zdu/cluster/zdu/start"): resp(200, overview),
            ("POST", "/rest/zdu/cluster/zdu/cancel"): resp(
                200, {**overview, "state": "STABLE", "upgradeModeEnabled": False}
            ),
        }
    )
    c = pc.ProductClient(t, "confluence", AUTH)
    assert c.zdu_start().state == "READY_TO_UPGRADE"
    assert [p for _, p, _ in t.calls] == ["/rest/zdu/start", "/rest/zdu/cluster/zdu/start"]
    assert c._zdu_paths["start"] == "/rest/zdu/cluster/zdu/start"
    t.calls.clear()
    c.zdu_start()
    assert [p for _, p, _ in t.calls] == ["/rest/zdu/cluster/zdu/start"]
    assert c.zdu_cancel().upgrade_mode is False


def test_zdu_conflict_carries_the_message() -> None:
    msg = "Cannot cancel upgrade mode once a node has been upgraded (state MIXED)"
    t = FakeTransport(
        {("POST", "/rest/zdu/cancel"): resp(409, {"errors": [{"message": msg}], "message": msg})}
    )
    with pytest.raises(errors.Conflict, match="once a node has been upgraded") as info:
        pc.ProductClient(t, "bitbucket", AUTH).zdu_cancel()
    assert isinstance(info.value, errors.ProductApiError) and info.value.status == 409


def test_zdu_all_paths_missing_is_not_found() -> None:
    with pytest.raises(errors.NotFound):
        pc.ProductClient(FakeTransport({}), "bitbucket", AUTH).zdu_approve()


def test_zdu_unavailable_is_retryable_type() -> None:
    t = FakeTransport(
        {
            ("POST", "/rest/api/2/cluster/zdu/approve"): resp(
                503, {"message": "starting"}, headers={"retry-after": "5"}
            )
        }
    )
    with pytest.raises(errors.Unavailable) as info:
        pc.ProductClient(t, "jira", AUTH).zdu_approve()
    assert info.value.delay == 5.0


def test_index_summary() -> None:
    t = FakeTransport({("GET", "/rest/api/2/index/summary"): resp(200, INDEX_SUMMARY)})
    s = pc.ProductClient(t, "jira", AUTH).index_summary()
    assert s.node_id == "jira-0" and s.readable and s.drift == 50 and s.max_queue == 300
    assert s.queue_sizes == {"jira-1": 300, "jira-2": 0}
    assert not s.healthy() and s.healthy(max_drift=50, max_queue=300)


@pytest.mark.parametrize(
    "answer, accepted, running, path",
    [
        (
            resp(202, {"futureAbsolutePath": "/x/IndexSnapshot_1.tar.sz"}),
            True,
            False,
            "/x/IndexSnapshot_1.tar.sz",
        ),
        (resp(409, {"errorMessages": ["Index snapshot creation is already running"]}), False, True, None),
    ],
    ids=["202-accepted", "409-running"],
)
def test_index_snapshot_create(answer: HttpResponse, accepted: bool, running: bool, path: str | None) -> None:
    t = FakeTransport({("POST", "/rest/api/2/index-snapshot"): answer})
    r = pc.ProductClient(t, "jira", AUTH).index_snapshot_create()
    assert (r.accepted, r.already_running, r.future_path) == (accepted, running, path)


def test_index_snapshot_running() -> None:
    t = FakeTransport({("GET", "/rest/api/2/index-snapshot/isRunning"): resp(200, {"running": True})})
    assert pc.ProductClient(t, "jira", AUTH).index_snapshot_running() is True


@pytest.mark.parametrize("call", ["index_summary", "index_snapshot_create", "index_snapshot_running"])
def test_jira_only(call: str) -> None:
    with pytest.raises(errors.ProductApiError, match="Jira endpoint"):
        getattr(pc.ProductClient(FakeTransport({}), "confluence", AUTH), call)()


@pytest.mark.parametrize(
    "status, exctype",
    [
        (401, errors.Forbidden),
        (403, errors.Forbidden),
        (404, errors.NotFound),
        (429, errors.Throttled),
        (500, errors.Unavailable),
    ],
    ids=["401", "403", "404", "429", "500"],
)
def test_error_family(status: int, exctype: type[Exception]) -> None:
    t = FakeTransport({("GET", "/rest/api/2/cluster/nodes"): resp(status, {"message": "nope"})})
    with pytest.raises(exctype) as info:
        pc.ProductClient(t, "jira", AUTH).cluster_nodes()
    assert isinstance(info.value, errors.ProductApiError) and info.value.service == "jira"


def test_error_payload_scrubbed() -> None:
    AUTH.headers()
    t = FakeTransport(
        {("GET", "/rest/api/2/cluster/nodes"): resp(500, {"message": "bad adm1n-pass-word " + "x" * 900})}
    )
    with pytest.raises(errors.ProductApiError) as info:
        pc.ProductClient(t, "jira", AUTH).cluster_nodes()
    assert "adm1n-pass-word" not in str(info.value) and len(str(info.value)) < 500


def test_auth_header_registered() -> None:
    headers = AUTH.headers()
    token = headers["Authorization"].removeprefix("Basic ")
    assert base64.b64decode(token) == b"admin:adm1n-pass-word"
    assert {"adm1n-pass-word", token} <= secrets.resolved_values()
    assert "adm1n" not in repr(AUTH)


def test_auth_from_spec() -> None:
    import os

    os.environ["ATLBOOK_TEST_ADMIN_PW"] = "from-env-pw-1"
    try:
        auth = pc.auth_from_spec({"username": "ops", "password": "env:ATLBOOK_TEST_ADMIN_PW"})
    finally:
        del os.environ["ATLBOOK_TEST_ADMIN_PW"]
    assert auth == pc.BasicAuth("ops", "from-env-pw-1")
    with pytest.raises(errors.LiteralSecretError):
        pc.auth_from_spec({"username": "ops", "password": "literal"})


REINDEX = {
    "progressUrl": "/secure/admin/jira/IndexProgress.jspa?taskId=10100",
    "currentProgress": 40,
    "currentSubTask": "Indexing issues",
    "type": "BACKGROUND_PREFERRED",
    "submittedTime": "t0",
    "startTime": "t0",
    "finishTime": None,
    "success": False,
}


def test_reindex_start_and_already_running() -> None:
    t = FakeTransport(
        {("POST", "/rest/api/2/reindex"): [resp(202, REINDEX), resp(409, {"errorMessages": ["x"]})]}
    )
    c = pc.ProductClient(t, "jira", AUTH)
    started = c.reindex_start()
    assert (
        started is not None and started.task_id == "10100" and started.progress == 40 and not started.finished
    )
    assert t.queries[0]["type"] == "BACKGROUND_PREFERRED"
    assert c.reindex_start() is None


def test_reindex_progress_falls_back_and_none_when_absent() -> None:
    done = {**REINDEX, "currentProgress": 100, "finishTime": "t1", "success": True}
    t = FakeTransport({("GET", "/rest/api/2/reindex"): resp(200, done)})
    progress = pc.ProductClient(t, "jira", AUTH).reindex_progress()
    assert progress is not None and progress.finished and progress.success
    assert [p for _, p, _ in t.calls] == ["/rest/api/2/reindex/progress", "/rest/api/2/reindex"]
    assert pc.ProductClient(FakeTransport({}), "jira", AUTH).reindex_progress() is None


def test_node_offline_refused_when_alive() -> None:
    t = FakeTransport(
        {
            ("PUT", "/rest/api/2/cluster/node/jira-1/offline"): resp(
                400, {"errorMessages": ["Node jira-1 is alive; cannot mark offline"]}
            ),
            ("DELETE", "/rest/api/2/cluster/node/jira-2"): resp(204),
        }
    )
    c = pc.ProductClient(t, "jira", AUTH)
    with pytest.raises(errors.Invalid, match="is alive"):
        c.node_offline("jira-1")
    c.node_delete("jira-2")
