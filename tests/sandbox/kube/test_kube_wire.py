"""Wire fidelity of the emulated API server, through the official client over real HTTP.

Covers: discovery and /version/; every kind lists through the typed client; create/get/replace/delete
and server-set fields; namespaced vs cluster-scoped paths; 404/409/422 Status bodies; stale
resourceVersion → 409; label and field selectors; merge, JSON and strategic merge patches (other
containers kept); server-side apply; watch (ADDED/MODIFIED/DELETED, resourceVersion, timeoutSeconds);
status and scale subresources; logs (tailLines, previous); pods proxy; Table; reset; audit observer
and token authenticator.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from typing import Any

import pytest
from kubernetes import client, watch
from kubernetes.client.exceptions import ApiException

from atlbook.sandbox.kube import ApiRequest, AuditEntry, ProxyRequest, ProxyResponse
from atlbook.sandbox.kube import resources as res
from atlbook.sandbox.kube.admission import SELECTOR_MISMATCH_MSG
from atlbook.sandbox.kube.errors import ALREADY_EXISTS_MSG, CONFLICT_MSG, NOT_FOUND_MSG


def _body(e: ApiException) -> dict[str, Any]:
    return json.loads(e.body)


def _pod(name: str, labels: dict[str, str] | None = None, containers: int = 1) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "labels": labels or {}},
        "spec": {
            "containers": [
                {"name": f"c{i}", "image": "busybox:1.36", "env": [{"name": "A", "value": "1"}]}
                for i in range(containers)
            ]
        },
    }


def test_version_and_discovery(api: client.ApiClient, kube: Any) -> None:
    info = client.VersionApi(api).get_code()
    assert (info.major, info.minor) == ("1", "32")
    groups = client.ApisApi(api).get_api_versions()
    names = {g.name for g in groups.groups}
    assert {
        "apps",
        "policy",
        "networking.k8s.io",
        "rbac.authorization.k8s.io",
        "scheduling.k8s.io",
        "storage.k8s.io",
    } <= names
    core = client.CoreV1Api(api).get_api_resources()
    by_name = {r.name: r for r in core.resources}
    assert by_name["pods"].namespaced and not by_name["nodes"].namespaced
    assert "watch" in by_name["pods"].verbs and "po" in by_name["pods"].short_names
    assert {"pods/log", "pods/eviction", "pods/binding", "pods/status", "pods/proxy"} <= set(by_name)
    assert client.AppsV1Api(api).get_api_resources().resources[0].kind


LISTS = [
    ("CoreV1Api", "list_namespace"),
    ("CoreV1Api", "list_node"),
    ("CoreV1Api", "list_pod_for_all_namespaces"),
    ("CoreV1Api", "list_service_for_all_namespaces"),
    ("CoreV1Api", "list_endpoints_for_all_namespaces"),
    ("CoreV1Api", "list_config_map_for_all_namespaces"),
    ("CoreV1Api", "list_secret_for_all_namespaces"),
    ("CoreV1Api", "list_event_for_all_namespaces"),
    ("CoreV1Api", "list_service_account_for_all_namespaces"),
    ("CoreV1Api", "list_persistent_volume_claim_for_all_namespaces"),
    ("CoreV1Api", "list_persistent_volume"),
    ("CoreV1Api", "list_resource_quota_for_all_namespaces"),
    ("CoreV1Api", "list_limit_range_for_all_namespaces"),
    ("AppsV1Api", "list_stateful_set_for_all_namespaces"),
    ("AppsV1Api", "list_deployment_for_all_namespaces"),
    ("AppsV1Api", "list_replica_set_for_all_namespaces"),
    ("AppsV1Api", "list_daemon_set_for_all_namespaces"),
    ("AppsV1Api", "list_controller_revision_for_all_namespaces"),
    ("NetworkingV1Api", "list_ingress_for_all_namespaces"),
    ("NetworkingV1Api", "list_ingress_class"),
    ("NetworkingV1Api", "list_network_policy_for_all_namespaces"),
    ("PolicyV1Api", "list_pod_disruption_budget_for_all_namespaces"),
    ("RbacAuthorizationV1Api", "list_role_for_all_namespaces"),
    ("RbacAuthorizationV1Api", "list_role_binding_for_all_namespaces"),
    ("RbacAuthorizationV1Api", "list_cluster_role"),
    ("RbacAuthorizationV1Api", "list_cluster_role_binding"),
    ("SchedulingV1Api", "list_priority_class"),
    ("CoordinationV1Api", "list_lease_for_all_namespaces"),
    ("StorageV1Api", "list_storage_class"),
]


def _populate(api: client.ApiClient, nodes: Any, sts_body: Any) -> None:
    core, apps = client.CoreV1Api(api), client.AppsV1Api(api)
    nodes(2)
    core.create_namespaced_config_map("default", {"metadata": {"name": "cm"}, "data": {"a": "b"}})
    core.create_namespaced_secret("default", {"metadata": {"name": "s"}, "stringData": {"k": "v"}})
    core.create_namespaced_resource_quota(
        "default", {"metadata": {"name": "q"}, "spec": {"hard": {"pods": "50"}}}
    )
    core.create_namespaced_limit_range(
        "default",
        {
            "metadata": {"name": "lr"},
            "spec": {"limits": [{"type": "Container", "defaultRequest": {"cpu": "100m"}}]},
        },
    )
    core.create_namespaced_service(
        "default",
        {
            "metadata": {"name": "web"},
            "spec": {
                "selector": {"app": "web"},
                "ports": [{"name": "http", "port": 80, "targetPort": "http"}],
            },
        },
    )
    apps.create_namespaced_stateful_set("default", sts_body("web", 2, claims=True))
    apps.create_namespaced_deployment(
        "default",
        {
            "metadata": {"name": "d"},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": {"app": "d"}},
                "template": {
                    "metadata": {"labels": {"app": "d"}},
                    "spec": {"containers": [{"name": "d", "image": "nginx:1"}]},
                },
            },
        },
    )
    apps.create_namespaced_daemon_set(
        "default",
        {
            "metadata": {"name": "ds"},
            "spec": {
                "selector": {"matchLabels": {"app": "ds"}},
                "template": {
                    "metadata": {"labels": {"app": "ds"}},
                    "spec": {"containers": [{"name": "d", "image": "fluent:1"}]},
                },
            },
        },
    )
    client.NetworkingV1Api(api).create_namespaced_ingress(
        "default",
        {
            "metadata": {"name": "ing", "annotations": {"nginx.ingress.kubernetes.io/affinity": "cookie"}},
            "spec": {
                "ingressClassName": "nginx",
                "rules": [
                    {
                        "host": "jira.example.com",
                        "http": {
                            "paths": [
                                {
                                    "path": "/",
                                    "pathType": "Prefix",
                                    "backend": {"service": {"name": "web", "port": {"number": 80}}},
                                }
                            ]
                        },
                    }
                ],
            },
        },
    )
    client.NetworkingV1Api(api).create_ingress_class(
        {"metadata": {"name": "nginx"}, "spec": {"controller": "k8s.io/ingress-nginx"}}
    )
    client.NetworkingV1Api(api).create_namespaced_network_policy(
        "default", {"metadata": {"name": "deny"}, "spec": {"podSelector": {}, "policyTypes": ["Ingress"]}}
    )
    client.PolicyV1Api(api).create_namespaced_pod_disruption_budget(
        "default",
        {
            "metadata": {"name": "pdb"},
            "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "web"}}},
        },
    )
    rbac = client.RbacAuthorizationV1Api(api)
    rbac.create_namespaced_role(
        "default",
        {"metadata": {"name": "r"}, "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}]},
    )
    rbac.create_namespaced_role_binding(
        "default",
        {
            "metadata": {"name": "rb"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "r"},
            "subjects": [{"kind": "ServiceAccount", "name": "default", "namespace": "default"}],
        },
    )
    rbac.create_cluster_role(
        {
            "metadata": {"name": "cr"},
            "rules": [{"apiGroups": [""], "resources": ["nodes"], "verbs": ["list"]}],
        }
    )
    rbac.create_cluster_role_binding(
        {
            "metadata": {"name": "crb"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cr"},
            "subjects": [{"kind": "ServiceAccount", "name": "default", "namespace": "default"}],
        }
    )
    client.SchedulingV1Api(api).create_priority_class({"metadata": {"name": "high"}, "value": 1000})


def test_every_kind_lists_through_the_typed_client(
    api: client.ApiClient, nodes: Any, wait: Any, sts_body: Any
) -> None:
    _populate(api, nodes, sts_body)
    core = client.CoreV1Api(api)
    wait(
        lambda: (
            len([p for p in core.list_namespaced_pod("default").items if p.status.phase == "Running"]) >= 5
        ),
        "the workloads to run",
    )
    wait(lambda: core.read_namespaced_endpoints("web", "default").subsets, "endpoints of web")
    for api_name, method in LISTS:
        result = getattr(getattr(client, api_name)(api), method)()
        assert result.items is not None, method
    assert {r.kind for r in res.RESOURCES} >= {
        "Namespace",
        "Pod",
        "StatefulSet",
        "PriorityClass",
        "LimitRange",
    }
    assert core.list_event_for_all_namespaces().items, "controllers record events"
    assert core.read_namespaced_pod("web-0", "default").status.container_statuses[0].ready
    leases = client.CoordinationV1Api(api).list_namespaced_lease("kube-node-lease").items
    assert (
        sorted(x.spec.holder_identity for x in leases) == ["node-0", "node-1"] and leases[0].spec.renew_time
    )


def test_server_set_fields_and_crud(core: client.CoreV1Api) -> None:
    created = core.create_namespaced_config_map("default", {"metadata": {"name": "cfg"}, "data": {"a": "1"}})
    assert created.metadata.uid and created.metadata.resource_version and created.metadata.creation_timestamp
    assert created.metadata.managed_fields is None
    got = core.read_namespaced_config_map("cfg", "default")
    got.data["a"] = "2"
    replaced = core.replace_namespaced_config_map("cfg", "default", got)
    assert replaced.data == {"a": "2"}
    assert int(replaced.metadata.resource_version) > int(created.metadata.resource_version)
    assert replaced.metadata.uid == created.metadata.uid
    status = core.delete_namespaced_config_map("cfg", "default")
    assert status["status"] == "Success"
    with pytest.raises(ApiException) as e:
        core.read_namespaced_config_map("cfg", "default")
    assert e.value.status == 404
    assert _body(e.value)["message"] == NOT_FOUND_MSG.format(resource="configmaps", name="cfg")
    assert _body(e.value)["reason"] == "NotFound"


def test_generation_bumps_on_spec_change_only(apps: client.AppsV1Api, sts_body: Any) -> None:
    apps.create_namespaced_stateful_set("default", sts_body("gen", 0))
    sts = apps.read_namespaced_stateful_set("gen", "default")
    assert sts.metadata.generation == 1
    apps.patch_namespaced_stateful_set("gen", "default", {"metadata": {"labels": {"x": "y"}}})
    assert apps.read_namespaced_stateful_set("gen", "default").metadata.generation == 1
    apps.patch_namespaced_stateful_set("gen", "default", {"spec": {"replicas": 0, "minReadySeconds": 5}})
    assert apps.read_namespaced_stateful_set("gen", "default").metadata.generation == 2


@pytest.mark.parametrize(
    "case, status, reason",
    [
        ("exists", 409, "AlreadyExists"),
        ("no-namespace", 404, "NotFound"),
        ("invalid-name", 422, "Invalid"),
        ("no-containers", 422, "Invalid"),
        ("selector-mismatch", 422, "Invalid"),
    ],
    ids=lambda v: str(v),
)
def test_error_status_bodies(
    core: client.CoreV1Api, apps: client.AppsV1Api, case: str, status: int, reason: str, sts_body: Any
) -> None:
    core.create_namespaced_config_map("default", {"metadata": {"name": "cfg"}})
    with pytest.raises(ApiException) as e:
        if case == "exists":
            core.create_namespaced_config_map("default", {"metadata": {"name": "cfg"}})
        elif case == "no-namespace":
            core.create_namespaced_config_map("nope", {"metadata": {"name": "cfg"}})
        elif case == "invalid-name":
            core.create_namespaced_config_map("default", {"metadata": {"name": "Bad_Name"}})
        elif case == "no-containers":
            core.create_namespaced_pod("default", {"metadata": {"name": "p"}, "spec": {"containers": []}})
        else:
            body = sts_body("mm", 1)
            body["spec"]["template"]["metadata"]["labels"] = {"app": "other"}
            apps.create_namespaced_stateful_set("default", body)
    body = _body(e.value)
    assert (e.value.status, body["code"], body["reason"], body["kind"], body["status"]) == (
        status,
        status,
        reason,
        "Status",
        "Failure",
    )
    if case == "exists":
        assert body["message"] == ALREADY_EXISTS_MSG.format(resource="configmaps", name="cfg")
        assert body["details"] == {"name": "cfg", "kind": "configmaps"}
    if case == "no-namespace":
        assert body["message"] == NOT_FOUND_MSG.format(resource="namespaces", name="nope")
    if case == "no-containers":
        assert body["details"]["causes"][0]["field"] == "spec.containers"
    if case == "selector-mismatch":
        assert SELECTOR_MISMATCH_MSG in body["message"]
        assert body["details"]["group"] == "apps"


def test_stale_resource_version_conflicts(core: client.CoreV1Api) -> None:
    core.create_namespaced_config_map("default", {"metadata": {"name": "cfg"}, "data": {"a": "1"}})
    first = core.read_namespaced_config_map("cfg", "default")
    second = core.read_namespaced_config_map("cfg", "default")
    first.data["a"] = "2"
    core.replace_namespaced_config_map("cfg", "default", first)
    second.data["a"] = "3"
    with pytest.raises(ApiException) as e:
        core.replace_namespaced_config_map("cfg", "default", second)
    assert e.value.status == 409
    assert _body(e.value)["message"] == CONFLICT_MSG.format(resource="configmaps", name="cfg")
    with pytest.raises(ApiException) as e2:
        core.patch_namespaced_config_map(
            "cfg", "default", {"metadata": {"resourceVersion": "1"}, "data": {"a": "4"}}
        )
    assert e2.value.status == 409


def test_namespaced_and_cluster_scoped_paths(core: client.CoreV1Api, kube: Any) -> None:
    core.create_namespace({"metadata": {"name": "jira"}})
    core.create_namespaced_config_map("jira", {"metadata": {"name": "same"}})
    core.create_namespaced_config_map("default", {"metadata": {"name": "same"}})
    assert len(core.list_namespaced_config_map("jira").items) == 1
    assert len(core.list_config_map_for_all_namespaces(field_selector="metadata.name=same").items) == 2
    core.create_persistent_volume(
        {
            "metadata": {"name": "pv1"},
            "spec": {
                "capacity": {"storage": "1Gi"},
                "accessModes": ["ReadWriteMany"],
                "nfs": {"server": "nfs", "path": "/"},
            },
        }
    )
    assert core.read_persistent_volume("pv1").metadata.namespace is None
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(f"{kube.url}/api/v1/namespaces/jira/persistentvolumes")  # noqa: S310
    assert e.value.code == 404


def test_label_selectors(core: client.CoreV1Api) -> None:
    for name, labels in [
        ("a", {"app": "jira", "tier": "web"}),
        ("b", {"app": "jira", "tier": "db"}),
        ("c", {"app": "confluence"}),
        ("d", {}),
    ]:
        core.create_namespaced_config_map("default", {"metadata": {"name": name, "labels": labels}})

    def names(sel: str) -> list[str]:
        return [c.metadata.name for c in core.list_namespaced_config_map("default", label_selector=sel).items]

    assert names("app=jira") == ["a", "b"]
    assert names("app==jira,tier!=db") == ["a"]
    assert names("app in (jira, confluence)") == ["a", "b", "c"]
    assert names("app notin (jira)") == ["c", "d"]
    assert names("tier") == ["a", "b"]
    assert names("!tier") == ["c", "d"]
    with pytest.raises(ApiException) as e:
        names("app in (")
    assert e.value.status == 400


def test_field_selectors(core: client.CoreV1Api, nodes: Any, wait: Any) -> None:
    nodes(1)
    core.create_namespaced_pod("default", _pod("p1"))
    core.create_namespaced_pod(
        "default", {**_pod("p2"), "spec": {**_pod("p2")["spec"], "nodeSelector": {"x": "y"}}}
    )
    wait(lambda: core.read_namespaced_pod("p1", "default").status.phase == "Running", "p1 running")
    running = core.list_namespaced_pod("default", field_selector="status.phase=Running")
    assert [p.metadata.name for p in running.items] == ["p1"]
    on_node = core.list_pod_for_all_namespaces(field_selector="spec.nodeName=node-0")
    assert [p.metadata.name for p in on_node.items] == ["p1"]
    unscheduled = core.list_pod_for_all_namespaces(field_selector="spec.nodeName=")
    assert [p.metadata.name for p in unscheduled.items] == ["p2"]
    pod = core.read_namespaced_pod("p1", "default")
    ev = core.list_namespaced_event(
        "default",
        field_selector=(
            f"involvedObject.name=p1,involvedObject.namespace=default,involvedObject.kind=Pod,"
            f"involvedObject.uid={pod.metadata.uid}"
        ),
    )
    assert "Scheduled" in {e.reason for e in ev.items}
    with pytest.raises(ApiException) as e:
        core.list_namespaced_pod("default", field_selector="spec.bogus=1")
    assert e.value.status == 400 and "field label not supported" in _body(e.value)["message"]


def test_patches(core: client.CoreV1Api, api: client.ApiClient) -> None:
    core.create_namespaced_pod("default", _pod("p", containers=2))
    # strategic merge (the client's default for a dict body): containers merged by name
    core.patch_namespaced_pod(
        "p", "default", {"spec": {"containers": [{"name": "c1", "image": "busybox:1.37"}]}}
    )
    pod = core.read_namespaced_pod("p", "default")
    assert [(c.name, c.image) for c in pod.spec.containers] == [
        ("c0", "busybox:1.36"),
        ("c1", "busybox:1.37"),
    ]
    assert pod.spec.containers[1].env[0].name == "A"
    # JSON patch (the client's default for a list body)
    core.patch_namespaced_pod("p", "default", [{"op": "add", "path": "/metadata/labels/x", "value": "1"}])
    assert core.read_namespaced_pod("p", "default").metadata.labels == {"x": "1"}
    # merge patch: lists replace, null deletes
    core.create_namespaced_config_map("default", {"metadata": {"name": "cm", "labels": {"a": "1", "b": "2"}}})
    core.patch_namespaced_config_map(
        "cm", "default", {"metadata": {"labels": {"a": None}}}, _content_type="application/merge-patch+json"
    )
    assert core.read_namespaced_config_map("cm", "default").metadata.labels == {"b": "2"}
    with pytest.raises(ApiException) as e:
        core.patch_namespaced_config_map(
            "cm", "default", [{"op": "test", "path": "/data", "value": {"x": "y"}}]
        )
    assert e.value.status == 422
    with pytest.raises(ApiException) as e2:
        core.patch_namespaced_pod("p", "default", {"spec": {"restartPolicy": "Never"}})
    assert e2.value.status == 422


def test_server_side_apply(core: client.CoreV1Api, api: client.ApiClient) -> None:
    body = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "applied", "namespace": "default"},
        "data": {"a": "1"},
    }
    created = core.patch_namespaced_config_map(
        "applied", "default", body, field_manager="atlbook", _content_type="application/apply-patch+yaml"
    )
    assert created.data == {"a": "1"}
    body["data"] = {"a": "2", "b": "3"}
    updated = core.patch_namespaced_config_map(
        "applied", "default", body, field_manager="atlbook", _content_type="application/apply-patch+yaml"
    )
    assert updated.data == {"a": "2", "b": "3"} and updated.metadata.uid == created.metadata.uid
    body["data"] = {"b": "3"}  # a field the manager stops applying is removed
    pruned = core.patch_namespaced_config_map(
        "applied", "default", body, field_manager="atlbook", _content_type="application/apply-patch+yaml"
    )
    assert pruned.data == {"b": "3"}


def test_watch_events_and_timeout(core: client.CoreV1Api) -> None:
    start_rv = core.list_namespaced_config_map("default").metadata.resource_version
    core.create_namespaced_config_map("default", {"metadata": {"name": "w"}, "data": {"a": "1"}})
    core.patch_namespaced_config_map("w", "default", {"data": {"a": "2"}})
    core.delete_namespaced_config_map("w", "default")
    seen = []
    began = time.monotonic()
    for ev in watch.Watch().stream(
        core.list_namespaced_config_map, "default", resource_version=start_rv, timeout_seconds=1
    ):
        seen.append((ev["type"], ev["object"].metadata.name))
    assert seen == [("ADDED", "w"), ("MODIFIED", "w"), ("DELETED", "w")]
    assert time.monotonic() - began >= 0.9  # the stream ended at timeoutSeconds, not before
    # no resourceVersion: synthetic ADDED for what exists
    core.create_namespaced_config_map("default", {"metadata": {"name": "w2"}})
    got = [
        ev["type"]
        for ev in watch.Watch().stream(core.list_namespaced_config_map, "default", timeout_seconds=1)
    ]
    assert "ADDED" in got


def test_status_and_scale_subresources(apps: client.AppsV1Api, core: client.CoreV1Api, sts_body: Any) -> None:
    apps.create_namespaced_stateful_set("default", sts_body("sc", 0))
    scale = apps.read_namespaced_stateful_set_scale("sc", "default")
    assert scale.spec.replicas == 0 and scale.status.selector == "app=sc"
    apps.patch_namespaced_stateful_set_scale("sc", "default", {"spec": {"replicas": 2}})
    assert apps.read_namespaced_stateful_set("sc", "default").spec.replicas == 2
    core.create_namespaced_config_map("default", {"metadata": {"name": "x"}})
    core.create_namespaced_pod("default", _pod("s"))
    core.patch_namespaced_pod_status("s", "default", {"status": {"message": "hello"}})
    assert core.read_namespaced_pod("s", "default").status.message == "hello"
    core.patch_namespaced_pod("s", "default", {"status": {"message": "ignored"}})
    assert core.read_namespaced_pod("s", "default").status.message == "hello"


def test_logs_tail_and_previous(core: client.CoreV1Api, kube: Any, nodes: Any, wait: Any) -> None:
    nodes(1)
    core.create_namespaced_pod("default", _pod("log"))
    wait(lambda: core.read_namespaced_pod("log", "default").status.phase == "Running", "pod running")
    for i in range(5):
        kube.append_log("default", "log", "c0", f"line {i}")
    assert core.read_namespaced_pod_log("log", "default", tail_lines=2) == "line 3\nline 4\n"
    with pytest.raises(ApiException) as e:
        core.read_namespaced_pod_log("log", "default", previous=True)
    assert e.value.status == 400
    kube.kill_container("default", "log", "c0")
    wait(
        lambda: (
            core.read_namespaced_pod("log", "default").status.container_statuses[0].restart_count == 1
            and core.read_namespaced_pod("log", "default").status.container_statuses[0].state.running
        ),
        "a restart",
    )
    assert "line 4" in core.read_namespaced_pod_log("log", "default", previous=True)
    assert "line 4" not in core.read_namespaced_pod_log("log", "default")
    assert core.read_namespaced_pod_log("log", "default", since_seconds=3600).startswith(
        "container c0 started"
    )


def test_pods_proxy_reaches_the_registered_handler(
    core: client.CoreV1Api, api: client.ApiClient, kube: Any, nodes: Any, wait: Any
) -> None:
    seen: list[tuple[str, str, int, ProxyRequest]] = []

    def resolve(ns: str, pod: str, port: int) -> Any:
        def handler(req: ProxyRequest) -> ProxyResponse:
            seen.append((ns, pod, port, req))
            return ProxyResponse(200, {"Content-Type": "application/json"}, b'{"state":"RUNNING"}')

        return handler if port == 8080 else None

    kube.set_proxy_resolver(resolve)
    nodes(1)
    core.create_namespaced_pod(
        "default",
        {
            "metadata": {"name": "jira-0"},
            "spec": {
                "containers": [
                    {"name": "jira", "image": "jira:9", "ports": [{"name": "http", "containerPort": 8080}]}
                ]
            },
        },
    )
    wait(lambda: core.read_namespaced_pod("jira-0", "default").status.phase == "Running", "pod running")
    out = core.connect_get_namespaced_pod_proxy_with_path("jira-0:8080", "default", "status")
    assert "RUNNING" in str(out)
    assert seen[-1][:3] == ("default", "jira-0", 8080) and seen[-1][3].path == "/status"
    with urllib.request.urlopen(
        f"{kube.url}/api/v1/namespaces/default/pods/jira-0:http/proxy/status?x=1"
    ) as r:  # noqa: S310
        assert json.loads(r.read()) == {"state": "RUNNING"}
    assert seen[-1][3].query == "x=1"
    with pytest.raises(ApiException) as e:
        core.connect_get_namespaced_pod_proxy_with_path("jira-0:9999", "default", "status")
    assert e.value.status == 503


def test_table_for_kubectl(kube: Any, core: client.CoreV1Api, nodes: Any) -> None:
    nodes(2)
    req = urllib.request.Request(
        f"{kube.url}/api/v1/nodes",
        headers={"Accept": "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"},
    )
    with urllib.request.urlopen(req) as r:  # noqa: S310
        table = json.loads(r.read())
    assert table["kind"] == "Table"
    assert [c["name"] for c in table["columnDefinitions"]][:5] == [
        "Name",
        "Status",
        "Roles",
        "Age",
        "Version",
    ]
    assert [row["cells"][0] for row in table["rows"]] == ["node-0", "node-1"]
    assert table["rows"][0]["object"]["kind"] == "PartialObjectMetadata"


def test_reset_endpoint_and_observers(kube: Any, core: client.CoreV1Api) -> None:
    entries: list[AuditEntry] = []
    kube.add_request_observer(entries.append)
    core.create_namespaced_config_map("default", {"metadata": {"name": "gone"}})
    assert entries[-1].verb == "create" and entries[-1].resource == "configmaps" and entries[-1].status == 201
    assert entries[-1].user == "kubernetes-admin"
    req = urllib.request.Request(f"{kube.url}/sandbox-api/reset", method="POST")
    with urllib.request.urlopen(req) as r:  # noqa: S310
        assert r.status == 200
    assert core.list_namespaced_config_map("default").items == []
    assert {n.metadata.name for n in core.list_namespace().items} >= {"default", "kube-system"}


def test_token_authenticator_and_interceptor(kube: Any, core: client.CoreV1Api) -> None:
    kube.set_token_authenticator(lambda token: "eks-admin" if token == "atlbook-sandbox-token" else None)
    core.list_namespace()
    req = urllib.request.Request(f"{kube.url}/api/v1/namespaces", headers={"Authorization": "Bearer wrong"})
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(req)  # noqa: S310
    assert e.value.code == 401 and json.loads(e.value.read())["reason"] == "Unauthorized"

    def intercept(r: ApiRequest) -> ProxyResponse | None:
        if r.path.endswith("/configmaps") and r.method == "GET":
            return ProxyResponse(
                500,
                {"Content-Type": "application/json"},
                json.dumps(
                    {
                        "kind": "Status",
                        "apiVersion": "v1",
                        "status": "Failure",
                        "code": 500,
                        "reason": "InternalError",
                        "message": "injected",
                    }
                ).encode(),
            )
        return None

    kube.set_request_interceptor(intercept)
    with pytest.raises(ApiException) as e2:
        core.list_namespaced_config_map("default")
    assert e2.value.status == 500
    assert core.list_namespace().items


def test_watch_from_an_expired_resource_version_gets_410(kube: Any, core: client.CoreV1Api) -> None:
    old = core.list_namespaced_config_map("default").metadata.resource_version
    core.create_namespaced_config_map("default", {"metadata": {"name": "lost"}})
    kube.reset()  # the history starts again; older resourceVersions are gone
    core.create_namespaced_config_map("default", {"metadata": {"name": "new"}})
    with pytest.raises(ApiException) as e:
        for _ev in watch.Watch().stream(
            core.list_namespaced_config_map, "default", resource_version=old, timeout_seconds=1
        ):
            pass
    assert e.value.status == 410 and "too old resource version" in str(e.value.reason)


@pytest.mark.parametrize("policy", ["Background", "Foreground", "Orphan"])
def test_delete_propagation(
    core: client.CoreV1Api, apps: client.AppsV1Api, nodes: Any, wait: Any, kube: Any, policy: str
) -> None:
    nodes(1)
    apps.create_namespaced_deployment(
        "default",
        {
            "metadata": {"name": "d"},
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": {"app": "d"}},
                "template": {
                    "metadata": {"labels": {"app": "d"}},
                    "spec": {"containers": [{"name": "c", "image": "i:1"}]},
                },
            },
        },
    )
    wait(
        lambda: (
            len([p for p in core.list_namespaced_pod("default").items if p.status.phase == "Running"]) == 2
        ),
        "2 pods running",
    )
    apps.delete_namespaced_deployment("d", "default", propagation_policy=policy)
    if policy == "Foreground":
        assert apps.read_namespaced_deployment("d", "default").metadata.finalizers == ["foregroundDeletion"]
    wait(lambda: not apps.list_namespaced_deployment("default").items, "the deployment to go")
    if policy == "Orphan":
        kube.wait_for(lambda: False, 30)
        rs = apps.list_namespaced_replica_set("default").items
        assert len(rs) == 1 and rs[0].metadata.owner_references is None
        assert len(core.list_namespaced_pod("default").items) == 2
    else:
        wait(
            lambda: (
                not core.list_namespaced_pod("default").items
                and not apps.list_namespaced_replica_set("default").items
            ),
            "dependents removed",
        )


def test_namespace_deletion(core: client.CoreV1Api, nodes: Any, wait: Any) -> None:
    nodes(1)
    core.create_namespace({"metadata": {"name": "confluence"}})
    core.create_namespaced_config_map("confluence", {"metadata": {"name": "c"}})
    core.create_namespaced_pod(
        "confluence", {"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "i:1"}]}}
    )
    wait(lambda: core.read_namespaced_pod("p", "confluence").status.phase == "Running", "pod running")
    deleted = core.delete_namespace("confluence")
    assert deleted["status"]["phase"] == "Terminating"
    with pytest.raises(ApiException) as e:
        core.create_namespaced_config_map("confluence", {"metadata": {"name": "late"}})
    assert e.value.status == 403 and "is being terminated" in json.loads(e.value.body)["message"]
    wait(lambda: "confluence" not in {n.metadata.name for n in core.list_namespace().items}, "namespace gone")
    assert core.list_config_map_for_all_namespaces(field_selector="metadata.namespace=confluence").items == []


def test_binding_subresource(core: client.CoreV1Api, nodes: Any, wait: Any) -> None:
    nodes(2)
    core.create_namespaced_pod(
        "default",
        {
            "metadata": {"name": "custom"},
            "spec": {"schedulerName": "my-scheduler", "containers": [{"name": "c", "image": "i:1"}]},
        },
    )
    binding = {
        "apiVersion": "v1",
        "kind": "Binding",
        "metadata": {"name": "custom"},
        "target": {"apiVersion": "v1", "kind": "Node", "name": "node-1"},
    }
    core.create_namespaced_pod_binding("custom", "default", binding)
    wait(
        lambda: core.read_namespaced_pod("custom", "default").status.phase == "Running",
        "the bound pod to run",
    )
    assert core.read_namespaced_pod("custom", "default").spec.node_name == "node-1"
    with pytest.raises(ApiException) as e:
        core.create_namespaced_pod_binding("custom", "default", binding)
    assert e.value.status == 409


def test_resource_quota_and_limit_range(core: client.CoreV1Api, nodes: Any, wait: Any) -> None:
    nodes(1)
    core.create_namespaced_limit_range(
        "default",
        {
            "metadata": {"name": "lr"},
            "spec": {
                "limits": [
                    {"type": "Container", "default": {"memory": "1Gi"}, "defaultRequest": {"cpu": "250m"}}
                ]
            },
        },
    )
    core.create_namespaced_resource_quota(
        "default", {"metadata": {"name": "q"}, "spec": {"hard": {"pods": "2", "requests.memory": "2Gi"}}}
    )
    for name in ("a", "b"):
        core.create_namespaced_pod(
            "default", {"metadata": {"name": name}, "spec": {"containers": [{"name": "c", "image": "i:1"}]}}
        )
    res = core.read_namespaced_pod("a", "default").spec.containers[0].resources
    assert res.limits == {"memory": "1Gi"} and res.requests == {"cpu": "250m", "memory": "1Gi"}
    with pytest.raises(ApiException) as e:
        core.create_namespaced_pod(
            "default", {"metadata": {"name": "c"}, "spec": {"containers": [{"name": "c", "image": "i:1"}]}}
        )
    assert e.value.status == 403 and "exceeded quota: q" in json.loads(e.value.body)["message"]
    wait(
        lambda: (
            (
                core.read_namespaced_resource_quota("q", "default").status or client.V1ResourceQuotaStatus()
            ).used
            == {"pods": "2", "requests.memory": "2Gi"}
        ),
        "quota usage in status",
    )
