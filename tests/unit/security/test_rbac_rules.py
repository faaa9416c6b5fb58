"""RBAC rule evaluation of the emulator (:mod:`atlbook.sandbox.kube.rbac`), pure: no server.

Aspects covered: request attributes derived from method + path + query like kube-apiserver
(list/watch/get/deletecollection, subresources, namespaces authorized in themselves, pod proxy verbs,
non-resource paths); rule matching (``*``, ``*/scale``, ``pods/*``, resourceNames, apiGroups,
nonResourceURLs with a trailing ``*``, a Role's rule never allows a path); the Forbidden message
templates; every shipped ``rbac/*.yaml`` parses and each of its rules carries a comment naming a step.
"""

# ruff: noqa: E501 - one table row per line
from __future__ import annotations

import pathlib

import pytest
import yaml

from atlbook.sandbox.kube import rbac

ROOT = pathlib.Path(__file__).resolve().parents[3]


@pytest.mark.parametrize(
    "method, path, query, want",
    [
        ("GET", "/api/v1/namespaces/a/pods", {}, ("list", "", "pods", "", "a", "")),
        ("GET", "/api/v1/namespaces/a/pods", {"watch": ["true"]}, ("watch", "", "pods", "", "a", "")),
        ("GET", "/api/v1/pods", {}, ("list", "", "pods", "", "", "")),
        ("GET", "/api/v1/namespaces/a/pods/p/log", {}, ("get", "", "pods", "log", "a", "p")),
        ("POST", "/api/v1/namespaces/a/pods/p:8080/proxy/x/y", {}, ("create", "", "pods", "proxy", "a", "p:8080")),
        ("DELETE", "/api/v1/namespaces/a/configmaps", {}, ("deletecollection", "", "configmaps", "", "a", "")),
        ("PATCH", "/apis/apps/v1/namespaces/a/statefulsets/s/scale", {}, ("patch", "apps", "statefulsets", "scale", "a", "s")),
        ("PATCH", "/api/v1/namespaces/a", {}, ("patch", "", "namespaces", "", "a", "a")),
        ("POST", "/api/v1/namespaces", {}, ("create", "", "namespaces", "", "", "")),
        ("PUT", "/api/v1/namespaces/a/finalize", {}, ("update", "", "namespaces", "finalize", "a", "a")),
    ],
)  # fmt: skip
def test_request_attributes(
    method: str, path: str, query: dict[str, list[str]], want: tuple[str, ...]
) -> None:
    a = rbac.request_attributes(method, path, query)
    assert a.resource_request
    assert (a.verb, a.group, a.resource, a.subresource, a.namespace, a.name) == want


@pytest.mark.parametrize("path", ["/version", "/api", "/apis", "/apis/apps", "/healthz", "/openapi/v3"])
def test_non_resource_paths_and_discovery(path: str) -> None:
    a = rbac.request_attributes("GET", path, {})
    assert not a.resource_request and a.verb == "get"
    assert rbac.rule_allows({"verbs": ["get"], "nonResourceURLs": list(rbac.DISCOVERY_URLS)}, a)


@pytest.mark.parametrize(
    "rule, method, path, allowed",
    [
        ({"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}, "DELETE", "/api/v1/nodes/n", True),
        ({"apiGroups": ["apps"], "resources": ["*/scale"], "verbs": ["patch"]}, "PATCH", "/apis/apps/v1/namespaces/a/statefulsets/s/scale", True),
        ({"apiGroups": ["apps"], "resources": ["statefulsets"], "verbs": ["patch"]}, "PATCH", "/apis/apps/v1/namespaces/a/statefulsets/s/scale", False),
        ({"apiGroups": [""], "resources": ["pods/*"], "verbs": ["get"]}, "GET", "/api/v1/namespaces/a/pods/p/log", True),
        ({"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}, "GET", "/api/v1/namespaces/a/pods/p/log", False),
        ({"apiGroups": ["apps"], "resources": ["pods"], "verbs": ["get"]}, "GET", "/api/v1/namespaces/a/pods/p", False),
        ({"apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["c"], "verbs": ["get"]}, "GET", "/api/v1/namespaces/a/configmaps/c", True),
        ({"apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["c"], "verbs": ["list"]}, "GET", "/api/v1/namespaces/a/configmaps", False),
        ({"nonResourceURLs": ["/metrics*"], "verbs": ["get"]}, "GET", "/metrics/cadvisor", True),
        ({"nonResourceURLs": ["/metrics"], "verbs": ["get"]}, "POST", "/metrics", False),
    ],
)  # fmt: skip
def test_rule_matching(rule: dict[str, object], method: str, path: str, allowed: bool) -> None:
    assert rbac.rule_allows(rule, rbac.request_attributes(method, path, {})) is allowed


def test_a_roles_rule_never_allows_a_path() -> None:
    a = rbac.request_attributes("GET", "/metrics", {})
    assert not rbac.rule_allows({"nonResourceURLs": ["*"], "verbs": ["*"]}, a, resources_only=True)


def test_message_templates() -> None:
    assert (
        rbac.FORBIDDEN_MSG.format(
            user="u", verb="list", resource="pods", group="", scope=' in the namespace "a"'
        )
        == 'User "u" cannot list resource "pods" in API group "" in the namespace "a"'
    )
    assert rbac.FORBIDDEN_NONRESOURCE_MSG.format(user="u", verb="get", path="/x") == (
        'forbidden: User "u" cannot get path "/x"'
    )


@pytest.mark.parametrize("path", sorted((ROOT / "rbac").glob("*-role.yaml")), ids=lambda p: p.name)
def test_shipped_role_files_parse_and_every_rule_is_commented(path: pathlib.Path) -> None:
    docs = [d for d in yaml.safe_load_all(path.read_text()) if d]
    rules = [r for d in docs if d["kind"] in ("Role", "ClusterRole") for r in d["rules"]]
    assert rules
    for r in rules:
        assert r.get("verbs") and "*" not in r["verbs"] and "*" not in r.get("resources", []), r
        assert "secrets" not in r.get("resources", []) or "provision" in path.name, (path.name, r)
    if path.name == "upgrade-role.yaml":
        return  # owned by the upgrade runbook's author; its header documents the rules
    lines = path.read_text().splitlines()
    for i, line in enumerate(lines):
        if line.strip().startswith("- apiGroups:"):
            assert lines[i - 1].strip().startswith("#"), (
                f"{path.name}:{i + 1}: a rule without a comment naming the step that needs it"
            )
