"""atlbook.clients.k8s and the ConfigMap ledger against the emulated Kubernetes API, over real HTTP.

Covers: connect() on a kubeconfig → typed CRUD as dicts; list by label selector; apply creates, leaves an
equal object alone (no mutating request in the audit log) and patches a changed one; errors on the wire
translate (404, 409, client-side validation sends nothing); API faults — 429 with Retry-After and 503
on a create — are retried, and a create whose retry meets 409 ends as "exists" with no duplicate; the
pod proxy reaches a handler, passes the product's status through, translates an API-server Status, and
never forwards a product Authorization header alongside the bearer token; the ledger as a ConfigMap —
compare-and-swap on resourceVersion, a second run refused naming the holder, resume after a failure.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from atlbook import errors
from atlbook.clients import Clients, k8s
from atlbook.plan import ApplyFailed, ConfigMapBackend, Ledger, Plan, Step, apply
from atlbook.sandbox.kube import KubeEmulator
from atlbook.sandbox.kube.hooks import ProxyRequest, ProxyResponse

MUTATING = ("create", "update", "patch", "delete", "deletecollection")


def cm(name: str, data: dict[str, str], namespace: str = "default", **labels: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "data": data,
    }


def mutations(audit: list[Any]) -> list[tuple[str, str]]:
    return [(e.verb, e.path) for e in audit if e.verb in MUTATING]


def test_crud_as_dicts(clients: Clients) -> None:
    api = clients.k8s
    created = k8s.create(api, cm("a", {"k": "v"}, app="x"))
    assert created["metadata"]["uid"] and created["data"] == {"k": "v"}
    k8s.create(api, cm("b", {"k": "w"}, app="y"))
    assert k8s.get(api, "ConfigMap", "a", "default")["data"] == {"k": "v"}
    listed = k8s.list(api, "ConfigMap", "default", label_selector="app=x")
    assert [i["metadata"]["name"] for i in listed] == ["a"] and listed[0]["kind"] == "ConfigMap"
    assert {n["metadata"]["name"] for n in k8s.list(api, "Namespace")} >= {"default", "kube-system"}
    patched = k8s.patch(api, "ConfigMap", "a", {"data": {"k2": "v2"}}, "default")
    assert patched["data"] == {"k": "v", "k2": "v2"}
    assert k8s.delete(api, "ConfigMap", "a", "default") is True
    assert k8s.delete(api, "ConfigMap", "a", "default") is False
    assert k8s.server_version(api)["major"]


def test_wire_errors_translate(clients: Clients, audit: list[Any]) -> None:
    api = clients.k8s
    with pytest.raises(errors.NotFound) as info:
        k8s.get(api, "ConfigMap", "missing", "default")
    assert isinstance(info.value, errors.K8sApiError) and 'configmaps "missing" not found' in str(info.value)
    k8s.create(api, cm("dup", {}))
    with pytest.raises(errors.Conflict):
        k8s.create(api, cm("dup", {}))
    before = len(audit)
    with pytest.raises(errors.Invalid):
        k8s.create(
            api,
            {
                "apiVersion": "apps/v1",
                "kind": "StatefulSet",
                "metadata": {"name": "s", "namespace": "default"},
                "spec": {"replicas": "many"},
            },
        )
    assert len(audit) == before  # refused client-side: no request


def test_apply_create_unchanged_patch(emu: KubeEmulator, clients: Clients, audit: list[Any]) -> None:
    api = clients.k8s
    assert k8s.apply(api, cm("cfg", {"a": "1"}, app="jira")).action == "created"
    audit.clear()
    again = k8s.apply(api, cm("cfg", {"a": "1"}, app="jira"))
    assert again.action == "unchanged" and mutations(audit) == []
    changed = k8s.apply(api, cm("cfg", {"a": "2"}, app="jira"))
    assert changed.action == "patched" and changed.object["data"] == {"a": "2"}
    assert emu.wait_for(lambda: [v for v, _ in mutations(audit)] == ["patch"], 60)


def test_throttled_read_is_retried_with_retry_after(emu: KubeEmulator, clients: Clients) -> None:
    k8s.create(clients.k8s, cm("t", {"a": "1"}))
    seen: list[str] = []

    def intercept(req: Any) -> ProxyResponse | None:
        if req.method == "GET" and req.path.endswith("/configmaps/t"):
            seen.append(req.path)
            if len(seen) == 1:
                body = {
                    "kind": "Status",
                    "apiVersion": "v1",
                    "code": 429,
                    "reason": "TooManyRequests",
                    "message": "slow down",
                }
                return ProxyResponse(
                    429, {"Content-Type": "application/json", "Retry-After": "0"}, json.dumps(body).encode()
                )
        return None

    emu.set_request_interceptor(intercept)
    assert k8s.get(clients.k8s, "ConfigMap", "t", "default")["data"] == {"a": "1"}
    assert len(seen) == 2


def test_create_retried_after_503_then_409_means_exists(
    emu: KubeEmulator, clients: Clients, audit: list[Any]
) -> None:
    k8s.create(clients.k8s, cm("x", {"a": "1"}))  # as if the first attempt had gone through
    audit.clear()
    hits: list[int] = []

    def intercept(req: Any) -> ProxyResponse | None:
        if req.method == "GET" and req.path.endswith("/configmaps/x") and not hits:
            hits.append(0)  # the read says "absent" (stale cache / lost answer)
            body = {"kind": "Status", "apiVersion": "v1", "code": 404, "reason": "NotFound", "message": "nf"}
            return ProxyResponse(404, {"Content-Type": "application/json"}, json.dumps(body).encode())
        if req.method == "POST" and req.path.endswith("/configmaps") and len(hits) == 1:
            hits.append(1)
            return ProxyResponse(503, {"Content-Type": "text/plain"}, b"upstream reset")
        return None

    emu.set_request_interceptor(intercept)
    result = k8s.apply(clients.k8s, cm("x", {"a": "1"}))
    assert result.action == "unchanged"  # create: 503 → retried → 409 → exists → equal → no patch
    assert len(k8s.list(clients.k8s, "ConfigMap", "default", field_selector="metadata.name=x")) == 1
    assert hits == [0, 1]  # the read said absent, the first create got 503
    # observers run after the answer is sent: wait for the entry rather than race it
    assert emu.wait_for(lambda: 409 in [e.status for e in audit if e.verb == "create"], 60)
    assert 201 not in [e.status for e in audit if e.verb == "create"]  # the retry met "exists": no duplicate


def test_pod_proxy(emu: KubeEmulator, clients: Clients, node: str) -> None:
    api = clients.k8s
    got: list[ProxyRequest] = []

    def handler(req: ProxyRequest) -> ProxyResponse:
        got.append(req)
        return ProxyResponse(503, {"Content-Type": "application/json"}, b'{"state": "MAINTENANCE"}')

    emu.set_proxy_resolver(lambda ns, pod, port: handler if (pod, port) == ("p", 8080) else None)
    k8s.create(
        api,
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "p", "namespace": "default"},
            "spec": {
                "nodeName": node,
                "containers": [
                    {"name": "c", "image": "atlassian/jira-software:9", "ports": [{"containerPort": 8080}]}
                ],
            },
        },
    )
    assert emu.wait_for(
        lambda: (emu.store.peek("pods", "default", "p") or {}).get("status", {}).get("phase") == "Running",
        120,
    )
    resp = k8s.proxy_request(
        api, "GET", "default", "p", 8080, "/status", query={"os_username": "admin"}, retry_statuses=(429,)
    )
    assert resp.status == 503 and resp.json() == {"state": "MAINTENANCE"}
    assert got[0].path == "/status" and "os_username=admin" in got[0].query
    assert "authorization" not in {k.lower() for k in got[0].headers}
    with pytest.raises(errors.Unavailable):  # API server Status: nothing listens on 9999
        k8s.proxy_get(api, "default", "p", 9999, "/status")
    with pytest.raises(errors.NotFound):
        k8s.proxy_get(api, "default", "nope", 8080, "/status")
    with pytest.raises(errors.ConfigError, match="bearer token"):
        k8s.proxy_get(api, "default", "p", 8080, "/x", headers={"Authorization": "Basic eDp5"})


def identity(host: str, pid: int) -> dict[str, Any]:
    return {"user": "ops", "host": host, "pid": pid}


def test_configmap_ledger_compare_and_swap(clients: Clients) -> None:
    a = ConfigMapBackend(clients, "default", "30-upgrade")
    b = ConfigMapBackend(clients, "default", "30-upgrade")
    assert a.load() == ({}, None)
    v1 = a.save({"steps": {}}, None)
    with pytest.raises(errors.Conflict):
        b.save({"steps": {}}, None)  # create by name: exists
    doc, version = b.load()
    assert version == v1
    a.save({"steps": {"one": {}}}, v1)
    with pytest.raises(errors.Conflict):
        b.save({"steps": {"two": {}}}, v1)  # stale resourceVersion
    live = k8s.get(clients.k8s, "ConfigMap", "atlbook-ledger-30-upgrade", "default")
    assert json.loads(live["data"]["ledger.json"]) == {"steps": {"one": {}}}
    assert live["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "atlbook"


def test_ledger_lock_and_resume_in_a_configmap(clients: Clients) -> None:
    runs: list[str] = []

    def plan(fail: bool = False) -> Plan:
        def act(name: str) -> Any:
            def run() -> str:
                runs.append(name)
                if fail and name == "b":
                    raise errors.api_error(errors.K8sApiError, "boom", status=500, operation="patch X")
                return name

            return run

        return Plan("30-upgrade", [Step(n, f"step {n}", kind="update", action=act(n)) for n in "abc"])

    backend = ConfigMapBackend(clients, "default", "30-upgrade")
    holder = Ledger(backend, runbook="30-upgrade", identity=identity("laptop", 1))
    holder.acquire()
    with pytest.raises(errors.LedgerLocked, match="ops@laptop pid 1") as info:
        apply(plan(), Ledger(backend, runbook="30-upgrade", identity=identity("bastion", 2)))
    assert info.value.holder == "ops@laptop pid 1" and info.value.since
    holder.release()
    with pytest.raises(ApplyFailed):
        apply(plan(fail=True), Ledger(backend, runbook="30-upgrade", identity=identity("bastion", 2)))
    report = apply(plan(), Ledger(backend, runbook="30-upgrade", identity=identity("bastion", 3)))
    assert runs == ["a", "b", "b", "c"]
    assert [r.status for r in report.results] == ["skipped", "done", "done"]
    doc, _ = backend.load()
    assert set(doc["steps"]) == {"a", "b", "c"} and doc["lock"] is None and doc["failures"][0]["step"] == "b"


def test_pod_log_and_evict(emu: KubeEmulator, clients: Clients, node: str) -> None:
    api = clients.k8s
    k8s.create(
        api,
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "q", "namespace": "default"},
            "spec": {"nodeName": node, "containers": [{"name": "c", "image": "atlassian/jira-software:9"}]},
        },
    )
    assert emu.wait_for(
        lambda: (emu.store.peek("pods", "default", "q") or {}).get("status", {}).get("phase") == "Running",
        120,
    )
    emu.append_log("default", "q", "c", "hello from q")
    assert "hello from q" in k8s.pod_log(api, "default", "q", tail_lines=5)
    with pytest.raises(errors.Invalid):
        k8s.pod_log(api, "default", "q", container="nope")
    k8s.evict(api, "default", "q", grace_period_seconds=0)
    assert emu.wait_for(lambda: emu.store.peek("pods", "default", "q") is None, 120)
    with pytest.raises(errors.NotFound):
        k8s.evict(api, "default", "q")


def test_configmap_ledger_creates_its_namespace(clients: Clients) -> None:
    backend = ConfigMapBackend(clients, "atlassian", "10-provision")
    backend.save({"steps": {}}, None)
    ns = k8s.get(clients.k8s, "Namespace", "atlassian")
    assert ns["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "atlbook"
    strict = ConfigMapBackend(clients, "elsewhere", "10-provision", create_namespace=False)
    with pytest.raises(errors.NotFound):
        strict.save({"steps": {}}, None)


def test_apply_secret_string_data_is_idempotent(
    emu: KubeEmulator, clients: Clients, audit: list[Any]
) -> None:
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "jira-admin", "namespace": "default"},
        "type": "Opaque",
        "stringData": {"password": "pw-apply-123"},
    }
    assert k8s.apply(clients.k8s, secret).action == "created"
    audit.clear()
    assert k8s.apply(clients.k8s, secret).action == "unchanged"
    assert mutations(audit) == []
    changed = k8s.apply(clients.k8s, {**secret, "stringData": {"password": "pw-apply-456"}})
    assert changed.action == "patched" and changed.object["data"]["password"] == "cHctYXBwbHktNDU2"
