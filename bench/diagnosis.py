"""Diagnosis benchmark (issue 8): API calls per kind do not grow with the number of pods, and a 500-pod
namespace in the sandbox is diagnosed in < 5 s.

Builds, through the official clients, the small HA stack of the diagnosis sandbox tests (EKS node group
over three zones, RDS, EFS, Jira × 2) plus filler pods in the same namespace (20, then 500), and runs
:func:`atlbook.diagnosis.diagnose` against it. One row per (pods, call kind) and one timing row per size.
"""

from __future__ import annotations

import os
import pathlib
import sys
import tempfile
import time
from typing import Any

import boto3
import yaml

from atlbook import clients, diagnosis
from atlbook.clients import k8s
from atlbook.sandbox.stack import Sandbox
from atlbook.testing import ADMIN_PASSWORD

__all__ = ["COLUMNS", "run"]

COLUMNS = ["pods", "metric", "value", "unit", "target", "ok"]
SIZES = (20, 500)
TARGET_SECONDS = 5.0


def _stackbuilder() -> Any:
    root = pathlib.Path(__file__).resolve().parent.parent
    sys.path.insert(0, str(root / "tests" / "sandbox" / "diagnosis"))
    import diagnosis_stack as stackbuilder  # type: ignore[import-not-found]

    return stackbuilder


def _filler(api: Any, namespace: str, start: int, count: int) -> None:
    for i in range(start, start + count):
        k8s.create(
            api,
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": f"worker-{i:04d}", "namespace": namespace, "labels": {"app": "batch"}},
                "spec": {
                    "containers": [
                        {
                            "name": "main",
                            "image": "busybox:1.36",
                            "resources": {"requests": {"cpu": "5m", "memory": "8Mi"}},
                        }
                    ]
                },
            },
        )


def _pods(api: Any, namespace: str) -> int:
    return len(k8s.list(api, "Pod", namespace))


def run() -> list[dict[str, Any]]:
    """Rows: calls per kind per namespace size, the diagnosis wall time, whether the calls stayed flat."""
    sb = _stackbuilder()
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="atlbook-bench-diag-") as d:
        box = Sandbox(time_factor=120.0, state_dir=pathlib.Path(d))
        box.start()
        saved = {
            k: os.environ.get(k)
            for k in ("ATLBOOK_SANDBOX_DIR", "ATLBOOK_SANDBOX_ADMIN_PASSWORD", "ATLBOOK_SANDBOX_DB_PASSWORD")
        }
        os.environ.update(
            ATLBOOK_SANDBOX_DIR=d,
            ATLBOOK_SANDBOX_ADMIN_PASSWORD=ADMIN_PASSWORD,
            ATLBOOK_SANDBOX_DB_PASSWORD=sb.DB_PASSWORD,
        )
        try:
            target = yaml.safe_load((pathlib.Path(d) / "target.yaml").read_text())
            session = boto3.Session(
                aws_access_key_id=target["aws_access_key_id"],
                aws_secret_access_key=target["aws_secret_access_key"],
                region_name=target["aws_region"],
            )

            def aws(service: str) -> Any:
                return session.client(service, endpoint_url=target["aws_endpoint_url"])

            bundle = clients.connect("sandbox")
            info = sb.build(bundle.k8s, aws, per_zone=4)
            sb.wait_ready(bundle.k8s, info["products"], info["replicas"])
            spec = sb.load_spec()
            made = 0
            calls: dict[int, dict[str, int]] = {}
            for size in SIZES:
                have = _pods(bundle.k8s, sb.NAMESPACE)
                _filler(bundle.k8s, sb.NAMESPACE, made, max(0, size - have))
                made += max(0, size - have)
                pods = _pods(bundle.k8s, sb.NAMESPACE)
                diagnosis.diagnose(bundle, spec, diagnosis.scope.manual(window_minutes=30))  # warm
                started = time.monotonic()
                result = diagnosis.diagnose(bundle, spec, diagnosis.scope.manual(window_minutes=30))
                seconds = time.monotonic() - started
                calls[size] = result.api_calls
                for kind, n in sorted(result.api_calls.items()):
                    rows.append({"pods": pods, "metric": f"calls {kind}", "value": n, "unit": "calls"})
                rows.append(
                    {
                        "pods": pods,
                        "metric": "calls total",
                        "value": sum(result.api_calls.values()),
                        "unit": "calls",
                    }
                )
                rows.append(
                    {
                        "pods": pods,
                        "metric": "diagnosis wall time",
                        "value": round(seconds, 3),
                        "unit": "s",
                        "target": f"< {TARGET_SECONDS}",
                        "ok": seconds < TARGET_SECONDS,
                    }
                )
                rows.append(
                    {
                        "pods": pods,
                        "metric": "findings >= warning",
                        "value": len(result.at_least(diagnosis.Severity.WARNING)),
                        "unit": "findings",
                    }
                )
            flat = calls[SIZES[0]] == calls[SIZES[-1]]
            rows.append(
                {
                    "pods": f"{SIZES[0]}→{SIZES[-1]}",
                    "metric": "calls per kind unchanged",
                    "value": flat,
                    "unit": "",
                    "target": "True",
                    "ok": flat,
                }
            )
            bundle.close()
        finally:
            box.stop()
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
    return rows
