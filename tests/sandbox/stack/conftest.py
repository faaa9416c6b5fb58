"""Fixtures of the sandbox stack tests: the ``atlbook.testing`` ones plus helpers to wait and to call
products through the pod proxy (official clients only)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from atlbook.testing import (  # noqa: F401 - fixtures
    ADMIN_PASSWORD,
    ADMIN_USER,
    aws_client,
    boto3_session,
    eks_cluster,
    k8s_api,
    product_stack,
    sandbox,
    sandbox_reset,
    sandbox_target,
)


@pytest.fixture
def proxy(k8s_api: Any) -> Callable[..., tuple[int, Any]]:  # noqa: F811
    """``proxy(ns, pod, port, path, method="GET", auth=True)`` → (status, parsed JSON or text).

    Goes through the Kubernetes pod proxy with the official client's own serializer. The API server
    drops the ``Authorization`` header before proxying, so admin credentials travel as Atlassian's
    ``os_username``/``os_password`` query parameters.
    """

    def call(
        ns: str, pod: str, port: int, path: str, method: str = "GET", auth: bool = True
    ) -> tuple[int, Any]:
        query = [("os_username", ADMIN_USER), ("os_password", ADMIN_PASSWORD)] if auth else []
        m, url, headers, body, _ = k8s_api.param_serialize(
            method=method,
            resource_path="/api/v1/namespaces/{namespace}/pods/{name}/proxy/{path}",
            path_params={"namespace": ns, "name": f"{pod}:{port}", "path": path.lstrip("/")},
            query_params=query,
            header_params={"Accept": "*/*"},
            auth_settings=["BearerToken"],
        )
        resp = k8s_api.call_api(m, url, header_params=headers, body=body)
        data = resp.read()
        try:
            return resp.status, json.loads(data)
        except (ValueError, TypeError):
            return resp.status, data

    return call


@pytest.fixture
def running(proxy: Callable[..., tuple[int, Any]]) -> Callable[..., bool]:
    """``running(ns, pods, port)`` → whether every pod's ``/status`` says RUNNING."""

    def check(ns: str, pods: list[str], port: int = 8080) -> bool:
        return all(proxy(ns, p, port, "/status", auth=False) == (200, {"state": "RUNNING"}) for p in pods)

    return check
