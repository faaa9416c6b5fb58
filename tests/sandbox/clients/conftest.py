"""Fixtures for atlbook.clients / products / plan against the sandbox.

- ``emu``: the emulated Kubernetes API alone (one per module, fast clock), reset per test, hooks cleared;
- ``clients``: an ``atlbook.clients.Clients`` built the real way — ``connect()`` on a kubeconfig the
  emulator wrote — with a quick retry policy;
- ``audit``: the requests the emulator served during the test (verb, path, status);
- the full sandbox fixtures from ``atlbook.testing`` for product tests.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from atlbook import clients as atl_clients
from atlbook.clients import retry
from atlbook.sandbox.clock import SimClock
from atlbook.sandbox.kube import KubeEmulator
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

FAST = retry.RetryPolicy(max_attempts=4, base_delay=0.01, max_delay=0.05, total_timeout=10.0)
HOOKS = (
    "proxy_resolver",
    "readiness_hook",
    "log_source",
    "memory_usage_hook",
    "request_interceptor",
    "token_authenticator",
)


@pytest.fixture(scope="module")
def _emulator() -> Iterator[KubeEmulator]:
    emu = KubeEmulator(clock=SimClock(200.0)).start()
    yield emu
    emu.stop()


@pytest.fixture
def emu(_emulator: KubeEmulator) -> Iterator[KubeEmulator]:
    _emulator.reset()
    _emulator.last_error = None
    yield _emulator
    for attr in HOOKS:
        setattr(_emulator, attr, None)
    _emulator.request_observers.clear()
    _emulator._lifecycle.clear()
    error = _emulator.last_error
    _emulator.reset()
    assert error is None, f"a controller or handler failed:\n{error}"


@pytest.fixture
def audit(emu: KubeEmulator) -> list[Any]:
    entries: list[Any] = []
    emu.add_request_observer(entries.append)
    return entries


@pytest.fixture
def clients(emu: KubeEmulator, tmp_path: Path) -> Iterator[atl_clients.Clients]:
    kubeconfig = emu.write_kubeconfig(tmp_path / "kubeconfig")
    c = atl_clients.connect({"kubeconfig": str(kubeconfig), "context": "atlbook-sandbox"}, policy=FAST)
    yield c
    c.close()


@pytest.fixture
def node(emu: KubeEmulator, clients: atl_clients.Clients) -> str:
    """One schedulable worker node."""
    from atlbook.clients import k8s

    k8s.create(
        clients.k8s,
        {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {
                "name": "node-0",
                "labels": {"kubernetes.io/hostname": "node-0", "topology.kubernetes.io/zone": "us-east-1a"},
            },
            "status": {
                "capacity": {"cpu": "4", "memory": "16Gi", "pods": "110"},
                "allocatable": {"cpu": "4", "memory": "16Gi", "pods": "110"},
            },
        },
    )
    return "node-0"
