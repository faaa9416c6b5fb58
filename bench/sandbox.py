"""Sandbox benchmark (issue 4): ``Sandbox.start()`` wall time with every component (target < 5 s), and a
2-node Jira StatefulSet from create to both nodes RUNNING over the pod proxy at the default time factor
(target < 15 s). Official clients only; one row per metric with its target."""

from __future__ import annotations

import json
import tempfile
import time
from typing import Any

import boto3
from kubernetes import client, config

from atlbook.sandbox.stack import DEFAULT_TIME_FACTOR, Sandbox
from atlbook.testing import create_eks_cluster, statefulset_manifest

__all__ = ["COLUMNS", "run"]

COLUMNS = ["metric", "value", "unit", "target", "ok"]


def _row(metric: str, value: float, target: float, unit: str = "s") -> dict[str, Any]:
    return {
        "metric": metric,
        "value": round(value, 3),
        "unit": unit,
        "target": f"< {target}",
        "ok": value < target,
    }


def _state(core: client.CoreV1Api, pod: str) -> str:
    try:
        r = core.connect_get_namespaced_pod_proxy_with_path(
            f"{pod}:8080", "atl", "status", _preload_content=False
        )
        return str(json.loads(r.data)["state"])
    except (client.ApiException, ValueError, KeyError):
        return "-"


def run() -> list[dict[str, Any]]:
    """Measure and return the rows."""
    rows = []
    with tempfile.TemporaryDirectory(prefix="atlbook-bench-") as d:
        sb = Sandbox(time_factor=DEFAULT_TIME_FACTOR, state_dir=d)
        t0 = time.perf_counter()
        sb.start()
        up = time.perf_counter() - t0
        try:
            rows.append(_row("sandbox up (all components)", up, 5.0))
            session = boto3.Session(
                aws_access_key_id="AKIABENCH", aws_secret_access_key="x", region_name="us-east-1"
            )
            create_eks_cluster(
                lambda s: session.client(s, endpoint_url=sb.aws.url if sb.aws else ""), nodes=3
            )
            api = config.new_client_from_config(config_file=str(sb.kubeconfig_path))
            core, apps = client.CoreV1Api(api), client.AppsV1Api(api)
            core.create_namespace({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "atl"}})
            t1 = time.perf_counter()
            apps.create_namespaced_stateful_set("atl", statefulset_manifest("jira", "jira", 2, "9.12.3"))
            while time.perf_counter() - t1 < 120:
                if _state(core, "jira-0") == "RUNNING" and _state(core, "jira-1") == "RUNNING":
                    break
                time.sleep(0.05)
            rows.append(
                _row(
                    f"2-node Jira StatefulSet create → both RUNNING (factor {DEFAULT_TIME_FACTOR:g})",
                    time.perf_counter() - t1,
                    15.0,
                )
            )
        finally:
            sb.stop()
    return rows
