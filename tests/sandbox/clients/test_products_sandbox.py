"""ProductClient, connect("sandbox"), EKS tokens and secret resolution against the full sandbox.

Covers: check_target/connect on the sandbox's own target.yaml; admin credentials resolved from a
Kubernetes Secret reference; per-node status, cluster nodes, ZDU start/cancel and Jira index calls over
the pod proxy (credentials as query parameters); a whole-cluster client through the service proxy;
Confluence and Bitbucket ZDU through the plugin paths; k8s_from_eks against the sandbox's EKS mirror
with a generated EKS token; Secrets Manager in the sandbox's moto; the database tunnel.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from atlbook import clients as atl_clients
from atlbook import errors
from atlbook.clients import Clients, k8s, retry, secrets
from atlbook.products import catalogue
from atlbook.products.client import BasicAuth, ProductClient, auth_from_spec
from atlbook.testing import ADMIN_PASSWORD

FAST = retry.RetryPolicy(max_attempts=4, base_delay=0.01, max_delay=0.05, total_timeout=10.0)


def wait_until(pred: Callable[[], Any], timeout: float = 60.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = pred()
        except errors.AtlbookError as e:
            last = e
        else:
            if last:
                return last
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}; last: {last!r}")


@pytest.fixture
def sb_clients(sandbox_reset: Any, monkeypatch: pytest.MonkeyPatch) -> Clients:
    monkeypatch.setenv("ATLBOOK_SANDBOX_DIR", str(Path(sandbox_reset.state_dir).resolve()))
    c = atl_clients.connect("sandbox", policy=FAST)
    return c


def nodes_running(c: Clients, product: str, pods: list[str]) -> bool:
    return all(ProductClient.for_pod(c, product, "atl", p).status().running for p in pods)


def test_connect_sandbox_target(sb_clients: Clients) -> None:
    t = sb_clients.target
    assert t.name == "sandbox" and t.context == "atlbook-sandbox" and t.database_tunnel is not None
    assert k8s.server_version(sb_clients.k8s)["major"]
    assert sb_clients.aws_call("eks", "list_clusters", idempotent=True)["clusters"] == []


def test_jira_over_pod_proxy(
    sb_clients: Clients, eks_cluster: Any, product_stack: Any, sandbox_reset: Any
) -> None:
    eks_cluster(nodes=2)
    product_stack("jira", replicas=2)
    auth = auth_from_spec({"username": "admin", "password": "k8s-secret:atl/jira-admin#password"}, sb_clients)
    assert auth.password == ADMIN_PASSWORD and ADMIN_PASSWORD in secrets.resolved_values()
    wait_until(lambda: nodes_running(sb_clients, "jira", ["jira-0", "jira-1"]), what="Jira RUNNING")

    node0 = ProductClient.for_pod(sb_clients, "jira", "atl", "jira-0", auth)
    with pytest.raises(errors.Forbidden):
        ProductClient.for_pod(sb_clients, "jira", "atl", "jira-0").cluster_nodes()
    nodes = node0.cluster_nodes()
    assert sorted(n.node_id for n in nodes) == ["jira-0", "jira-1"]
    assert all(n.active and n.version == "9.12.3" and n.build for n in nodes)

    assert node0.zdu_state().state == "STABLE"
    assert node0.zdu_start().state == "READY_TO_UPGRADE"
    with pytest.raises(errors.Conflict):
        node0.zdu_start()
    assert node0.zdu_cancel().state == "STABLE"
    with pytest.raises(errors.Conflict):
        node0.zdu_approve()

    summary = node0.index_summary()
    assert summary.node_id == "jira-0" and summary.readable and summary.drift == 0
    first = node0.index_snapshot_create()
    assert first.accepted and first.future_path
    assert node0.index_snapshot_running() is True
    assert node0.index_snapshot_create().already_running

    started = node0.reindex_start()
    assert started is not None and not started.finished
    assert node0.reindex_start() is None  # one is running: 409 is an answer
    progress = node0.reindex_progress()
    assert progress is not None and progress.task_id == started.task_id
    with pytest.raises(errors.Invalid, match="alive"):
        node0.node_offline("jira-1")

    whole = ProductClient.for_service(sb_clients, "jira", "atl", "jira", auth, port=80)
    assert whole.status().running
    assert len(whole.cluster_nodes()) == 2

    ingress = getattr(sandbox_reset.ingress, "url", None)
    if ingress:  # the base-URL transport: basic auth in the Authorization header
        via_url = ProductClient.for_url(f"{ingress}/atl/jira", "jira", auth, policy=FAST)
        assert via_url.status().running
        assert sorted(n.node_id for n in via_url.cluster_nodes()) == ["jira-0", "jira-1"]


@pytest.mark.parametrize("product, version", [("confluence", "9.2.1"), ("bitbucket", "9.4.12")])
def test_plugin_zdu(
    sb_clients: Clients, eks_cluster: Any, product_stack: Any, product: str, version: str
) -> None:
    eks_cluster(nodes=2)
    product_stack(product, replicas=2, version=version)
    auth = BasicAuth("admin", ADMIN_PASSWORD)
    pods = [f"{product}-0", f"{product}-1"]
    wait_until(lambda: nodes_running(sb_clients, product, pods), what=f"{product} RUNNING")
    c = ProductClient.for_pod(sb_clients, product, "atl", pods[0], auth)
    nodes = c.cluster_nodes()
    assert sorted(n.node_id for n in nodes) == pods and all(n.active and n.version == version for n in nodes)
    st = c.zdu_state()
    assert st.state == "STABLE" and not st.upgrade_mode
    started = c.zdu_start()
    assert started.state == "READY_TO_UPGRADE" and started.upgrade_mode
    assert c._zdu_paths["start"] == catalogue.get(product).zdu.start[0]
    assert c.zdu_cancel().state == "STABLE"
    with pytest.raises(errors.ProductApiError, match="Jira endpoint"):
        c.index_summary()


def test_k8s_from_eks_with_a_generated_token(sb_clients: Clients, eks_cluster: Any) -> None:
    eks_cluster(nodes=1)
    api = sb_clients.k8s_from_eks("atl")
    assert sb_clients.k8s is api
    nodes = wait_until(lambda: k8s.list(api, "Node"), what="mirrored nodes")
    assert len(nodes) == 1


def test_secretsmanager_in_sandbox(sb_clients: Clients) -> None:
    arn = sb_clients.aws("secretsmanager").create_secret(
        Name="rds-master", SecretString='{"password": "rds-pw-sandbox-1"}'
    )["ARN"]
    assert sb_clients.resolve_secret(f"aws-secretsmanager:{arn}#password") == "rds-pw-sandbox-1"


def test_database_tunnel(sb_clients: Clients, sandbox_reset: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    pg = sandbox_reset.postgres
    if pg is None:
        pytest.skip("the sandbox runs without PostgreSQL here")
    user, password = pg.user, pg.password
    monkeypatch.setenv("ATLBOOK_TEST_PG_PASSWORD", password)
    with sb_clients.db("jira", user=user, password="env:ATLBOOK_TEST_PG_PASSWORD") as conn:
        from atlbook.clients import db

        rows = db.query(conn, "SELECT 1 AS one")
    assert rows == [{"one": 1}]
    with pytest.raises(errors.NotFound):
        sb_clients.db("no_such_db", user=user, password="env:ATLBOOK_TEST_PG_PASSWORD").close()
    monkeypatch.setenv("ATLBOOK_TEST_PG_PASSWORD", "wrong-password-1")
    with pytest.raises(errors.Forbidden) as info:
        sb_clients.db("jira", user=user, password="env:ATLBOOK_TEST_PG_PASSWORD").close()
    assert "wrong-password-1" not in str(info.value)
