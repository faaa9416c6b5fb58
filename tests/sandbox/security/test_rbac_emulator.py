"""RBAC of the emulated API server, through the official client over real HTTP.

Aspects covered:
- TokenRequest (``serviceaccounts/token``) issues a token; it authenticates as
  ``system:serviceaccount:NS:NAME``; a deleted/recreated account, a forged or unknown token → 401;
- discovery (``/version``, ``/api``, ``/apis``) works for any ServiceAccount (system:discovery);
- no binding → 403 with the real ``Status`` body and message; a Role + RoleBinding allows exactly its
  verbs × resources in its namespace; resourceNames; subresources (``pods/log`` vs ``pods``);
  ``*`` verbs; ClusterRole bound by RoleBinding (namespaced) vs ClusterRoleBinding (cluster-wide);
  Group subjects (``system:serviceaccounts:NS``); nonResourceURLs;
- the static admin token stays cluster-admin.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from atlbook.sandbox.clock import SimClock
from atlbook.sandbox.kube import DEFAULT_TOKEN, KubeEmulator, rbac

NS = "atlassian"


@pytest.fixture(scope="module")
def emulator() -> Iterator[KubeEmulator]:
    emu = KubeEmulator(clock=SimClock(200.0)).start()
    yield emu
    emu.stop()


def _api(url: str, token: str) -> client.ApiClient:
    cfg = client.Configuration()
    cfg.host = url
    cfg.api_key = {"authorization": token}
    cfg.api_key_prefix = {"authorization": "Bearer"}
    return client.ApiClient(cfg)


@pytest.fixture
def admin(emulator: KubeEmulator) -> Iterator[client.ApiClient]:
    emulator.reset()
    with _api(emulator.url, DEFAULT_TOKEN) as c:
        client.CoreV1Api(c).create_namespace({"metadata": {"name": NS}})
        yield c
    emulator.reset()


@pytest.fixture
def sa_client(emulator: KubeEmulator, admin: client.ApiClient) -> Callable[[str], client.ApiClient]:
    made: list[client.ApiClient] = []

    def make(name: str = "runner") -> client.ApiClient:
        core = client.CoreV1Api(admin)
        core.create_namespaced_service_account(NS, {"metadata": {"name": name}})
        tr = core.create_namespaced_service_account_token(name, NS, {"spec": {"expirationSeconds": 3600}})
        c = _api(emulator.url, tr.status.token)
        made.append(c)
        return c

    yield make  # type: ignore[misc]
    for c in made:
        c.close()


def _status(e: pytest.ExceptionInfo[ApiException]) -> dict[str, Any]:
    return json.loads(e.value.body)


def _role(admin: client.ApiClient, name: str, rules: list[dict[str, Any]], sa: str = "runner") -> None:
    r = client.RbacAuthorizationV1Api(admin)
    r.create_namespaced_role(NS, {"metadata": {"name": name}, "rules": rules})
    r.create_namespaced_role_binding(
        NS,
        {
            "metadata": {"name": name},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
            "subjects": [{"kind": "ServiceAccount", "name": sa, "namespace": NS}],
        },
    )


def test_token_request_authenticates_the_service_account_and_discovery_is_open(sa_client: Any) -> None:
    c = sa_client()
    assert client.VersionApi(c).get_code().git_version
    assert client.CoreApi(c).get_api_versions().versions == ["v1"]
    assert client.ApisApi(c).get_api_versions().groups


def test_no_binding_is_403_with_the_real_status_body(sa_client: Any) -> None:
    c = sa_client()
    with pytest.raises(ApiException) as e:
        client.CoreV1Api(c).list_namespaced_pod(NS)
    assert e.value.status == 403
    body = _status(e)
    assert body == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": 'pods is forbidden: User "system:serviceaccount:atlassian:runner" cannot list resource '
        '"pods" in API group "" in the namespace "atlassian"',
        "reason": "Forbidden",
        "details": {"kind": "pods"},
        "code": 403,
    }
    with pytest.raises(ApiException) as e:
        client.AppsV1Api(c).read_namespaced_stateful_set("jira", NS)
    assert _status(e)["message"] == (
        'statefulsets.apps "jira" is forbidden: User "system:serviceaccount:atlassian:runner" cannot get '
        'resource "statefulsets" in API group "apps" in the namespace "atlassian"'
    )
    assert _status(e)["details"] == {"kind": "statefulsets", "name": "jira", "group": "apps"}
    with pytest.raises(ApiException) as e:
        client.CoreV1Api(c).list_node()
    assert _status(e)["message"].endswith('cannot list resource "nodes" in API group "" at the cluster scope')


def test_role_allows_exactly_its_verbs_resources_and_namespace(admin: Any, sa_client: Any) -> None:
    c = sa_client()
    _role(admin, "cm", [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list", "create"]}])
    core = client.CoreV1Api(c)
    core.create_namespaced_config_map(NS, {"metadata": {"name": "a"}})
    assert [i.metadata.name for i in core.list_namespaced_config_map(NS).items] == ["a"]
    with pytest.raises(ApiException) as e:
        core.delete_namespaced_config_map("a", NS)
    assert e.value.status == 403 and "cannot delete resource" in _status(e)["message"]
    with pytest.raises(ApiException) as e:
        core.list_namespaced_config_map("default")
    assert e.value.status == 403 and 'in the namespace "default"' in _status(e)["message"]
    with pytest.raises(ApiException) as e:
        core.list_config_map_for_all_namespaces()
    assert "at the cluster scope" in _status(e)["message"]


def test_subresources_resource_names_and_star_verbs(admin: Any, sa_client: Any) -> None:
    c = sa_client()
    client.CoreV1Api(admin).create_namespaced_config_map(NS, {"metadata": {"name": "keep"}})
    client.CoreV1Api(admin).create_namespaced_config_map(NS, {"metadata": {"name": "other"}})
    _role(
        admin,
        "r",
        [
            {"apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["keep"], "verbs": ["*"]},
            {"apiGroups": [""], "resources": ["pods/log"], "verbs": ["get"]},
        ],
    )
    core = client.CoreV1Api(c)
    assert core.read_namespaced_config_map("keep", NS).metadata.name == "keep"
    core.patch_namespaced_config_map("keep", NS, {"data": {"a": "b"}})
    with pytest.raises(ApiException) as e:
        core.read_namespaced_config_map("other", NS)
    assert e.value.status == 403
    with pytest.raises(ApiException) as e:
        core.list_namespaced_config_map(NS)  # resourceNames never allow list
    assert e.value.status == 403
    with pytest.raises(ApiException) as e:
        core.read_namespaced_pod("x", NS)  # pods/log does not give pods
    assert e.value.status == 403
    with pytest.raises(ApiException) as e:
        core.read_namespaced_pod_log("x", NS)  # allowed by RBAC, then the pod does not exist
    assert e.value.status == 404


def test_cluster_roles_groups_and_non_resource_urls(
    emulator: KubeEmulator, admin: Any, sa_client: Any
) -> None:
    c = sa_client()
    r = client.RbacAuthorizationV1Api(admin)
    r.create_cluster_role(
        {
            "metadata": {"name": "nodes-read"},
            "rules": [
                {"apiGroups": [""], "resources": ["nodes"], "verbs": ["list"]},
                {"nonResourceURLs": ["/metrics"], "verbs": ["get"]},
            ],
        }
    )
    r.create_cluster_role(
        {
            "metadata": {"name": "sts"},
            "rules": [{"apiGroups": ["apps"], "resources": ["*"], "verbs": ["list"]}],
        }
    )
    ref = {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole"}
    r.create_cluster_role_binding(
        {
            "metadata": {"name": "nodes-read"},
            "roleRef": {**ref, "name": "nodes-read"},
            "subjects": [{"kind": "Group", "name": f"system:serviceaccounts:{NS}"}],
        }
    )
    r.create_namespaced_role_binding(
        NS,
        {
            "metadata": {"name": "sts"},
            "roleRef": {**ref, "name": "sts"},
            "subjects": [{"kind": "ServiceAccount", "name": "runner", "namespace": NS}],
        },
    )
    assert client.CoreV1Api(c).list_node().items == []
    assert client.AppsV1Api(c).list_namespaced_stateful_set(NS).items == []
    with pytest.raises(ApiException) as e:
        client.AppsV1Api(c).list_namespaced_stateful_set("default")  # RoleBinding: its namespace only
    assert e.value.status == 403
    user = rbac.UserInfo("system:serviceaccount:atlassian:runner", ("system:serviceaccounts:atlassian",))
    assert emulator.rbac.allowed(user, rbac.Attributes("get", False, "/metrics"))
    assert not emulator.rbac.allowed(user, rbac.Attributes("get", False, "/logs"))


def test_tokens_of_deleted_accounts_and_forged_tokens_are_refused(emulator: KubeEmulator, admin: Any) -> None:
    core = client.CoreV1Api(admin)
    core.create_namespaced_service_account(NS, {"metadata": {"name": "gone"}})
    token = core.create_namespaced_service_account_token("gone", NS, {"spec": {}}).status.token
    assert emulator.rbac.authenticate(token) is not None
    head, payload, sig = token.split(".")
    assert emulator.rbac.authenticate(f"{head}.{payload}.{sig[:-2]}xx") is None
    core.delete_namespaced_service_account("gone", NS)
    core.create_namespaced_service_account(NS, {"metadata": {"name": "gone"}})  # same name, other uid
    assert emulator.rbac.authenticate(token) is None
    emulator.token_authenticator = lambda t: "kubernetes-admin" if t == DEFAULT_TOKEN else None
    try:
        with _api(emulator.url, token) as c, pytest.raises(ApiException) as e:
            client.CoreV1Api(c).list_namespaced_pod(NS)
        assert e.value.status == 401
    finally:
        emulator.token_authenticator = None
    with pytest.raises(ApiException) as e:
        core.create_namespaced_service_account_token("nobody", NS, {"spec": {}})
    assert e.value.status == 404


def test_static_admin_token_stays_cluster_admin(admin: Any) -> None:
    client.CoreV1Api(admin).list_node()
    client.RbacAuthorizationV1Api(admin).list_cluster_role()
    client.CoreV1Api(admin).list_namespaced_secret(NS)
