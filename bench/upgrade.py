"""Upgrade benchmark (issue 7): zero downtime and orchestration overhead, per product, in the sandbox.

For Jira, Confluence and Bitbucket, with 2 and 3 nodes: builds the product's cluster of the upgrade
sandbox tests through the official clients (EKS node group over three zones, RDS, Secret, Service,
StatefulSet, PDB), runs :func:`atlbook.upgrade.runbook.run` to the next bug-fix version with the
sticky-session load generator on, and reports one row per upgrade: requests, failed requests, p50/p99
latency (ms), orchestration overhead (% of the nodes' own restart-to-RUNNING time) and wall time.
Goals: 0 failed requests, overhead ≤ 5 %. The sandbox runs at the default time factor (60: a Jira
node takes 2 s to start) so that the nodes' own time dominates as it does on a real stack.
"""

from __future__ import annotations

import os
import pathlib
import sys
import tempfile
from typing import Any

import boto3
import yaml

from atlbook import clients
from atlbook.sandbox.stack import DEFAULT_TIME_FACTOR, Sandbox
from atlbook.testing import ADMIN_PASSWORD
from atlbook.upgrade import model, runbook

__all__ = ["COLUMNS", "run"]

COLUMNS = [
    "product",
    "nodes",
    "outcome",
    "requests",
    "failures",
    "p50_ms",
    "p99_ms",
    "pods_s",
    "overhead_s",
    "overhead_pct",
    "seconds",
    "ok",
]
CASES = (("jira", 2), ("confluence", 2), ("bitbucket", 2), ("jira", 3), ("confluence", 3), ("bitbucket", 3))
OVERHEAD_GOAL_PCT = 5.0


def _stackbuilder() -> Any:
    root = pathlib.Path(__file__).resolve().parent.parent
    sys.path.insert(0, str(root / "tests" / "sandbox" / "upgrade"))
    import upgrade_stack as stackbuilder  # type: ignore[import-not-found]

    return stackbuilder


def run() -> list[dict[str, Any]]:
    """One row per (product, nodes): failures, p50/p99, overhead %, seconds, and whether the goals hold."""
    sb = _stackbuilder()
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="atlbook-bench-upgrade-") as d:
        box = Sandbox(time_factor=DEFAULT_TIME_FACTOR, state_dir=pathlib.Path(d))
        box.start()
        saved = {k: os.environ.get(k) for k in ("ATLBOOK_SANDBOX_DIR", "ATLBOOK_SANDBOX_ADMIN_PASSWORD")}
        os.environ.update(ATLBOOK_SANDBOX_DIR=d, ATLBOOK_SANDBOX_ADMIN_PASSWORD=ADMIN_PASSWORD)
        try:
            target = yaml.safe_load((pathlib.Path(d) / "target.yaml").read_text())
            session = boto3.Session(
                aws_access_key_id=target["aws_access_key_id"],
                aws_secret_access_key=target["aws_secret_access_key"],
                region_name=target["aws_region"],
            )

            def aws(service: str) -> Any:
                return session.client(service, endpoint_url=target["aws_endpoint_url"])

            for product, nodes in CASES:
                box.reset()
                bundle = clients.connect("sandbox")
                try:
                    info = sb.build(bundle.k8s, aws, product, nodes)
                    sb.wait_ready(bundle.k8s, product, nodes, timeout=120)
                    up = runbook.prepare(
                        bundle, sb.load_spec(), product, info["next"], options=model.Options(max_poll=0.25)
                    )
                    result = runbook.run(up, measure_availability=True, show_progress=False)
                finally:
                    bundle.close()
                figures = result.figures()
                over = result.overhead
                rows.append(
                    {
                        "product": product,
                        "nodes": nodes,
                        "outcome": result.outcome,
                        "requests": figures["requests"],
                        "failures": figures["failures"],
                        "p50_ms": figures["p50_ms"],
                        "p99_ms": figures["p99_ms"],
                        "pods_s": over.get("pods_s"),
                        "overhead_s": over.get("overhead_s"),
                        "overhead_pct": over.get("overhead_pct"),
                        "seconds": figures["seconds"],
                        "ok": result.outcome == "upgraded"
                        and figures["failures"] == 0
                        and (over.get("overhead_pct") or 0.0) <= OVERHEAD_GOAL_PCT,
                    }
                )
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
            box.stop()
    return rows
