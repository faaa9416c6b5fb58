"""Emulated Kubernetes API benchmark (issue 3): start-up, 1,000 pod creates, LIST 1,000 pods, scheduling
1,000 pending pods onto 100 nodes. Every figure is wall time through real HTTP with the official client
unless the metric says "in-process"; one row per metric with its target."""

from __future__ import annotations

import time
import urllib.request
from typing import Any

from kubernetes import client

from atlbook.sandbox.clock import SimClock
from atlbook.sandbox.kube import DEFAULT_TOKEN, KubeEmulator

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


def _api(emu: KubeEmulator) -> client.ApiClient:
    cfg = client.Configuration()
    cfg.host = emu.url
    cfg.api_key = {"authorization": DEFAULT_TOKEN}
    cfg.api_key_prefix = {"authorization": "Bearer"}
    return client.ApiClient(cfg)


def _pod(i: int, scheduler: str = "default-scheduler") -> dict[str, Any]:
    return {
        "metadata": {"name": f"pod-{i:04d}", "labels": {"app": "bench", "shard": str(i % 10)}},
        "spec": {
            "schedulerName": scheduler,
            "containers": [
                {
                    "name": "app",
                    "image": "nginx:1.25",
                    "resources": {
                        "requests": {"cpu": "100m", "memory": "128Mi"},
                        "limits": {"memory": "128Mi"},
                    },
                }
            ],
        },
    }


def run() -> list[dict[str, Any]]:
    """Measure the four speed goals of the emulator; returns the rows."""
    rows: list[dict[str, Any]] = []
    t0 = time.perf_counter()
    emu = KubeEmulator(clock=SimClock(60.0)).start()
    with urllib.request.urlopen(f"{emu.url}/version/") as r:  # noqa: S310 - loopback
        r.read()
    rows.append(_row("emulator up (construct + start + first /version/)", time.perf_counter() - t0, 1.0))
    try:
        with _api(emu) as api:
            core = client.CoreV1Api(api)
            # pods for another scheduler: nothing else writes while we measure creates and lists
            t0 = time.perf_counter()
            for i in range(1000):
                core.create_namespaced_pod("default", _pod(i, scheduler="bench-none"))
            rows.append(
                _row("1,000 pod creates (official client, sequential)", time.perf_counter() - t0, 10.0)
            )
            t0 = time.perf_counter()
            resp = core.list_namespaced_pod("default", _preload_content=False)
            raw = resp.data
            rows.append(_row("LIST 1,000 pods (HTTP + JSON, raw response)", time.perf_counter() - t0, 0.5))
            t0 = time.perf_counter()
            typed = core.list_namespaced_pod("default")
            rows.append(
                _row(
                    "LIST 1,000 pods (typed V1PodList, client-side deserialization incl.)",
                    time.perf_counter() - t0,
                    0.5,
                )
            )
            assert len(typed.items) == 1000 and len(raw) > 100_000
            t0 = time.perf_counter()
            sel = core.list_namespaced_pod(
                "default", label_selector="shard in (1,2),app=bench", _preload_content=False
            )
            rows.append(_row("LIST with label selector (200 of 1,000, raw)", time.perf_counter() - t0, 0.5))
            assert sel.status == 200
        emu.reset()
        store = emu.store
        for i in range(100):
            store.create(
                "nodes",
                {
                    "metadata": {
                        "name": f"node-{i:03d}",
                        "labels": {
                            "kubernetes.io/hostname": f"node-{i:03d}",
                            "topology.kubernetes.io/zone": f"zone-{i % 3}",
                        },
                    },
                    "status": {"capacity": {"cpu": "16", "memory": "64Gi", "pods": "110"}},
                },
            )
        emu.wait_for(lambda: all((n.get("status") or {}).get("conditions") for n in store.iter("nodes")), 600)
        t0 = time.perf_counter()
        with store.lock:  # all 1,000 pending at once (in-process create), then the scheduler runs
            for i in range(1000):
                store.create("pods", _pod(i), "default")
        created = time.perf_counter()
        deadline = time.perf_counter() + 60
        while time.perf_counter() < deadline:
            if all(p["spec"].get("nodeName") for p in store.iter("pods")):
                break
            time.sleep(0.005)
        done = time.perf_counter()
        bound = sum(1 for p in store.iter("pods") if p["spec"].get("nodeName"))
        rows.append(_row(f"schedule 1,000 pending pods onto 100 nodes ({bound} bound)", done - created, 5.0))
        rows.append(_row("1,000 pod creates (in-process store, admission incl.)", created - t0, 10.0))
    finally:
        t0 = time.perf_counter()
        emu.stop()
        rows.append(_row("emulator stop", time.perf_counter() - t0, 5.0))
    return rows


if __name__ == "__main__":
    for row in run():
        print(row)
