"""Fixtures of the provisioning sandbox tests: the ``atlbook.testing`` ones, the shipped sandbox stack,
and ``clients`` connected to the sandbox exactly as a runbook connects to a target."""

from __future__ import annotations

import os
import pathlib
from collections.abc import Iterator
from typing import Any

import pytest

from atlbook import clients as clientsmod
from atlbook import parameters
from atlbook.testing import (  # noqa: F401 - fixtures
    ADMIN_PASSWORD,
    k8s_api,
    sandbox,
    sandbox_reset,
    sandbox_target,
)

ROOT = pathlib.Path(__file__).resolve().parents[3]

# provisioning attaches AWS managed policies (AmazonEKSClusterPolicy …) to the roles it creates; moto
# knows them only when asked to load them (read when its IAM backend is (re)created, i.e. after a reset)
os.environ.setdefault("MOTO_IAM_LOAD_MANAGED_POLICIES", "true")


@pytest.fixture
def spec() -> Any:
    return parameters.load_stack(str(ROOT / "parameters" / "sandbox.yaml"))


@pytest.fixture
def clients(sandbox_reset: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:  # noqa: F811
    monkeypatch.setenv("ATLBOOK_SANDBOX_DIR", str(sandbox_reset.state_dir))
    monkeypatch.setenv("ATLBOOK_SANDBOX_ADMIN_PASSWORD", ADMIN_PASSWORD)
    monkeypatch.setenv("ATLBOOK_SANDBOX_DB_PASSWORD", "sandbox-db")
    bundle = clientsmod.connect("sandbox")
    try:
        yield bundle
    finally:
        bundle.close()
