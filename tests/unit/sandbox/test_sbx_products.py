"""Simulated product nodes without servers: /status over simulated time, admin auth, the ZDU flow over
HTTP through two Jira nodes, Confluence/Bitbucket [verify] path variants, index snapshot 202/409,
index-corrupt drift and reindex, bad-upgrade, version refused outside upgrade mode, pod detection."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

import pytest

from atlbook.sandbox.clock import SimClock
from atlbook.sandbox.products.faultbook import FaultBook
from atlbook.sandbox.products.http import Response
from atlbook.sandbox.products.registry import SimulatedProducts, image_version, product_of

AUTH = {"Authorization": "Basic " + base64.b64encode(b"admin:s3cret").decode()}


@dataclass
class Req:
    method: str
    path: str
    query: str = ""
    headers: Any = None
    body: bytes = b""


class FakeStore:
    def __init__(self) -> None:
        self.secrets: dict[tuple[str, str], dict[str, Any]] = {}

    def peek(self, kind: str, ns: str, name: str) -> dict[str, Any] | None:
        return self.secrets.get((ns, name))

    def iter(self, kind: str, ns: str) -> list[dict[str, Any]]:
        return [s for (n, _), s in self.secrets.items() if n == ns]


def pod(name: str, image: str, ns: str = "atl") -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": ns, "labels": {}},
        "spec": {
            "containers": [{"name": "jira", "image": image, "resources": {"limits": {"memory": "2Gi"}}}]
        },
        "status": {"podIP": "10.0.1.5"},
    }


@pytest.fixture
def env() -> tuple[SimulatedProducts, SimClock, FaultBook]:
    clock = SimClock(1.0)
    store = FakeStore()
    for p in ("jira", "confluence", "bitbucket"):
        store.secrets[("atl", f"{p}-admin")] = {
            "data": {
                "username": base64.b64encode(b"admin").decode(),
                "password": base64.b64encode(b"s3cret").decode(),
            }
        }
    faults = FaultBook()
    return SimulatedProducts(store, clock, None, faults), clock, faults


def call(
    sp: SimulatedProducts, name: str, method: str, path: str, auth: bool = True, port: int = 8080
) -> Any:
    h = sp.resolve("atl", name, port)
    assert h is not None
    r = h(Req(method, path, headers=AUTH if auth else {}))
    return Response(r.status, r.headers, r.body)


def test_status_starting_then_running(env: Any) -> None:
    sp, clock, _ = env
    sp.on_started(pod("jira-0", "atlassian/jira-software:9.12.3"))
    r = call(sp, "jira-0", "GET", "/status", auth=False)
    assert (r.status, r.body) == (200, b'{"state": "STARTING"}')
    assert sp.readiness(pod("jira-0", "x/jira:1")) is False
    clock.advance(121)
    assert b"RUNNING" in call(sp, "jira-0", "GET", "/status", auth=False).body
    assert sp.readiness(pod("jira-0", "x/jira:1")) is True
    assert any("started. You can now access" in line for line in sp.logs(pod("jira-0", ""), "jira", False))


def test_auth_required(env: Any) -> None:
    sp, clock, _ = env
    sp.on_started(pod("jira-0", "atlassian/jira-software:9.12.3"))
    clock.advance(200)
    assert call(sp, "jira-0", "GET", "/rest/api/2/cluster/nodes", auth=False).status == 401
    nodes = call(sp, "jira-0", "GET", "/rest/api/2/cluster/nodes")
    assert nodes.status == 200


def test_jira_zdu_flow(env: Any) -> None:
    sp, clock, _ = env
    for i in range(2):
        sp.on_started(pod(f"jira-{i}", "atlassian/jira-software:9.12.3"))
    clock.advance(200)
    state = lambda: call(sp, "jira-0", "GET", "/rest/api/2/cluster/zdu/state").json()["state"]  # noqa: E731
    assert state() == "STABLE"
    assert call(sp, "jira-0", "POST", "/rest/api/2/cluster/zdu/start").status == 200
    assert state() == "READY_TO_UPGRADE"
    sp.on_stopped(pod("jira-1", ""))
    sp.on_started(pod("jira-1", "atlassian/jira-software:9.12.4"))
    assert state() == "MIXED"
    assert call(sp, "jira-0", "POST", "/rest/api/2/cluster/zdu/cancel").status == 409
    sp.on_stopped(pod("jira-0", ""))
    sp.on_started(pod("jira-0", "atlassian/jira-software:9.12.4"))
    clock.advance(200)
    assert state() == "READY_TO_RUN_UPGRADE_TASKS"
    assert call(sp, "jira-1", "POST", "/rest/api/2/cluster/zdu/approve").status == 200
    assert state() == "RUNNING_UPGRADE_TASKS"
    clock.advance(61)
    body = call(sp, "jira-0", "GET", "/rest/api/2/cluster/zdu/state").json()
    assert body["state"] == "STABLE" and body["buildInfo"]["version"] == "9.12.4"


def test_new_version_refused_outside_upgrade_mode(env: Any) -> None:
    sp, clock, _ = env
    sp.on_started(pod("jira-0", "atlassian/jira-software:9.12.3"))
    sp.on_started(pod("jira-1", "atlassian/jira-software:9.12.4"))
    clock.advance(200)
    assert b"ERROR" in call(sp, "jira-1", "GET", "/status").body
    assert any("does not match the cluster version" in x for x in sp.logs(pod("jira-1", ""), "", False))


@pytest.mark.parametrize(
    "product, port, image, prefix",
    [
        ("confluence", 8090, "atlassian/confluence:8.5.4", "/rest/zdu"),
        ("confluence", 8090, "atlassian/confluence:8.5.4", "/rest/zdu/cluster/zdu"),
        ("bitbucket", 7990, "atlassian/bitbucket:8.19.1", "/rest/zdu"),
        ("bitbucket", 7990, "atlassian/bitbucket:8.19.1", "/rest/zdu/cluster"),
    ],
)
def test_zdu_plugin_variants(env: Any, product: str, port: int, image: str, prefix: str) -> None:
    sp, clock, _ = env
    p = pod(f"{product}-0", image)
    p["spec"]["containers"][0]["name"] = product
    sp.on_started(p)
    clock.advance(200)
    assert call(sp, f"{product}-0", "GET", "/rest/zdu/cluster", port=port).json()["state"] == "STABLE"
    assert call(sp, f"{product}-0", "POST", f"{prefix}/start", port=port).status == 200
    assert call(sp, f"{product}-0", "GET", "/rest/zdu/state", port=port).json()["state"] == "READY_TO_UPGRADE"
    assert call(sp, f"{product}-0", "POST", f"{prefix}/cancel", port=port).status == 200


def test_bitbucket_admin_cluster(env: Any) -> None:
    sp, clock, _ = env
    p = pod("bitbucket-0", "atlassian/bitbucket:8.19.1")
    p["spec"]["containers"][0]["name"] = "bitbucket"
    sp.on_started(p)
    clock.advance(200)
    body = call(sp, "bitbucket-0", "GET", "/rest/api/latest/admin/cluster", port=7990).json()
    assert body["running"] is True and body["localNode"]["id"] == "bitbucket-0"


def test_index_snapshot_and_corruption(env: Any) -> None:
    sp, clock, faults = env
    sp.on_started(pod("jira-0", "atlassian/jira-software:9.12.3"))
    clock.advance(200)
    assert call(sp, "jira-0", "POST", "/rest/api/2/index-snapshot").status == 202
    assert call(sp, "jira-0", "POST", "/rest/api/2/index-snapshot").status == 409
    assert call(sp, "jira-0", "GET", "/rest/api/2/index-snapshot/isRunning").json() == {"running": True}
    sp.node("atl", "jira-0").index_drift = 40
    s = call(sp, "jira-0", "GET", "/rest/api/2/index/summary").json()["issueIndex"]
    assert s["countInIndex"] < s["countInDatabase"]
    assert call(sp, "jira-0", "POST", "/rest/api/2/reindex").status == 202
    clock.advance(121)
    assert call(sp, "jira-0", "GET", "/rest/api/2/reindex/progress").json()["success"] is True
    s = call(sp, "jira-0", "GET", "/rest/api/2/index/summary").json()["issueIndex"]
    assert s["countInIndex"] == s["countInDatabase"]


def test_bad_upgrade_and_oom(env: Any) -> None:
    sp, clock, faults = env
    faults.set("bad-upgrade", "9.12.4")
    sp.on_started(pod("jira-0", "atlassian/jira-software:9.12.4"))
    clock.advance(200)
    assert call(sp, "jira-0", "GET", "/status").status == 500
    assert sp.readiness(pod("jira-0", "")) is False
    p = pod("jira-0", "atlassian/jira-software:9.12.4")
    assert sp.memory(p, "jira") < 2 * 1024**3
    faults.set("pod-oom", "jira-0")
    assert sp.memory(p, "jira") > 2 * 1024**3


@pytest.mark.parametrize(
    "image, labels, name, expected",
    [
        ("atlassian/jira-software:9.12.3", {}, "jira-0", ("jira", "9.12.3")),
        (
            "atlassian/confluence:8.5.4",
            {"app.kubernetes.io/component": "synchrony"},
            "confluence-synchrony-0",
            ("synchrony", "8.5.4"),
        ),
        ("docker.io/atlassian/bitbucket:8.19.1", {}, "bitbucket-1", ("bitbucket", "8.19.1")),
        ("opensearchproject/opensearch:2.11.0", {}, "opensearch-0", None),
        ("registry:5000/atlassian/jira-software", {}, "jira-0", ("jira", "latest")),
    ],
)
def test_product_of(image: str, labels: dict[str, str], name: str, expected: Any) -> None:
    p = {
        "metadata": {"name": name, "labels": labels},
        "spec": {"containers": [{"name": "c", "image": image}]},
    }
    assert product_of(p) == expected


def test_image_version() -> None:
    assert image_version("localhost:5000/a/b:1.2") == "1.2"


def test_context_path(env: Any) -> None:
    sp, clock, _ = env
    p = pod("jira-0", "atlassian/jira-software:9.12.3")
    p["spec"]["containers"][0]["env"] = [{"name": "ATL_TOMCAT_CONTEXTPATH", "value": "/jira"}]
    sp.on_started(p)
    clock.advance(200)
    assert call(sp, "jira-0", "GET", "/jira/status", auth=False).status == 200
    assert call(sp, "jira-0", "GET", "/status", auth=False).status == 404
    assert call(sp, "jira-0", "GET", "/jira/rest/api/2/cluster/nodes").status == 200


def test_synchrony_heartbeat(env: Any) -> None:
    sp, clock, _ = env
    p = pod("confluence-synchrony-0", "atlassian/confluence:8.5.4")
    p["spec"]["containers"][0]["name"] = "synchrony"
    sp.on_started(p)
    assert call(sp, "confluence-synchrony-0", "GET", "/synchrony/heartbeat", port=8091).status == 503
    clock.advance(60)
    r = call(sp, "confluence-synchrony-0", "GET", "/synchrony/heartbeat", port=8091)
    assert (r.status, r.body) == (200, b"OK")
