"""Fixtures for the emulated Kubernetes API: one emulator per session (fast clock), reset per test,
the official client wired to it over real HTTP, and builders that create state through that client."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from atlbook.sandbox.clock import SimClock
from atlbook.sandbox.kube import DEFAULT_TOKEN, KubeEmulator

FACTOR = 200.0
ZONES = ("us-east-1a", "us-east-1b", "us-east-1c")


@pytest.fixture(scope="session")
def emulator() -> Iterator[KubeEmulator]:
    emu = KubeEmulator(clock=SimClock(FACTOR)).start()
    yield emu
    emu.stop()


@pytest.fixture
def kube(emulator: KubeEmulator) -> Iterator[KubeEmulator]:
    """The emulator, reset to an empty cluster (default namespaces, gp2) with no hooks set."""
    emulator.reset()
    emulator.last_error = None
    yield emulator
    for attr in (
        "proxy_resolver",
        "readiness_hook",
        "log_source",
        "memory_usage_hook",
        "request_interceptor",
        "token_authenticator",
    ):
        setattr(emulator, attr, None)
    emulator.request_observers.clear()
    emulator._lifecycle.clear()
    error = emulator.last_error
    emulator.reset()
    assert error is None, f"a controller or handler failed:\n{error}"


@pytest.fixture
def api(kube: KubeEmulator) -> Iterator[client.ApiClient]:
    cfg = client.Configuration()
    cfg.host = kube.url
    cfg.api_key = {"authorization": DEFAULT_TOKEN}
    cfg.api_key_prefix = {"authorization": "Bearer"}
    with client.ApiClient(cfg) as c:
        yield c


@pytest.fixture
def core(api: client.ApiClient) -> client.CoreV1Api:
    return client.CoreV1Api(api)


@pytest.fixture
def apps(api: client.ApiClient) -> client.AppsV1Api:
    return client.AppsV1Api(api)


@pytest.fixture
def policy(api: client.ApiClient) -> client.PolicyV1Api:
    return client.PolicyV1Api(api)


@pytest.fixture
def wait(kube: KubeEmulator) -> Callable[..., None]:
    """``wait(predicate, what, sim_timeout=600)``: wait in simulated time, fail with ``what`` on timeout."""

    def _wait(predicate: Callable[[], Any], what: str, sim_timeout: float = 600.0) -> None:
        if not kube.wait_for(predicate, sim_timeout):
            pytest.fail(
                f"timed out ({sim_timeout} simulated s) waiting for {what}; last error: {kube.last_error}"
            )

    return _wait


@pytest.fixture
def nodes(core: client.CoreV1Api) -> Callable[..., list[str]]:
    """``nodes(n, cpu="4", memory="16Gi", pods="110", zones=ZONES, prefix="node")``: Nodes through the API."""

    def build(
        n: int = 3,
        cpu: str = "4",
        memory: str = "16Gi",
        pods: str = "110",
        zones: tuple[str, ...] = ZONES,
        prefix: str = "node",
        taints: list[dict[str, Any]] | None = None,
        labels: dict[str, str] | None = None,
    ) -> list[str]:
        names = []
        for i in range(n):
            name = f"{prefix}-{i}"
            zone = zones[i % len(zones)]
            body: dict[str, Any] = {
                "metadata": {
                    "name": name,
                    "labels": {
                        "kubernetes.io/hostname": name,
                        "topology.kubernetes.io/zone": zone,
                        **(labels or {}),
                    },
                },
                "spec": {"taints": taints} if taints else {},
                "status": {
                    "capacity": {"cpu": cpu, "memory": memory, "pods": pods},
                    "allocatable": {"cpu": cpu, "memory": memory, "pods": pods},
                },
            }
            core.create_node(body)
            names.append(name)
        return names

    return build


def _sts_body(
    name: str,
    replicas: int = 3,
    *,
    anti_affinity: bool = False,
    memory: str = "1Gi",
    claims: bool = False,
    policy: str = "OrderedReady",
    partition: int | None = None,
    image: str = "atlassian/jira-software:9.12.0",
    strategy: str = "RollingUpdate",
) -> dict[str, Any]:
    """A StatefulSet like the product charts' (optionally anti-affine per host, with a local-home claim)."""
    pod_spec: dict[str, Any] = {
        "containers": [
            {
                "name": name,
                "image": image,
                "ports": [{"name": "http", "containerPort": 8080}],
                "resources": {"requests": {"cpu": "500m", "memory": memory}, "limits": {"memory": memory}},
            }
        ]
    }
    if anti_affinity:
        pod_spec["affinity"] = {
            "podAntiAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": [
                    {"topologyKey": "kubernetes.io/hostname", "labelSelector": {"matchLabels": {"app": name}}}
                ]
            }
        }
    update: dict[str, Any] = {"type": strategy}
    if partition is not None:
        update["rollingUpdate"] = {"partition": partition}
    body: dict[str, Any] = {
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "serviceName": name,
            "podManagementPolicy": policy,
            "updateStrategy": update,
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}}, "spec": pod_spec},
        },
    }
    if claims:
        body["spec"]["volumeClaimTemplates"] = [
            {
                "metadata": {"name": "local-home"},
                "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "10Gi"}}},
            }
        ]
    return body


@pytest.fixture
def kubeconfig(kube: KubeEmulator, tmp_path: Path) -> Path:
    return kube.write_kubeconfig(tmp_path / "kubeconfig")


@pytest.fixture
def kubectl() -> str:
    path = shutil.which("kubectl")
    if path is None:
        pytest.skip("kubectl is not installed (install Debian's kubernetes-client or any kubectl on PATH)")
    return path


@pytest.fixture
def sts_body() -> Callable[..., dict[str, Any]]:
    """``sts_body(name, replicas=3, anti_affinity=False, memory="1Gi", claims=False, ...)``."""
    return _sts_body
