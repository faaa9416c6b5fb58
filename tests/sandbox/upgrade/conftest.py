"""Fixtures of the upgrade sandbox tests: the ``atlbook.testing`` ones, plus a built product cluster.

``stack(product="jira", replicas=2)`` resets the sandbox, builds the product's cluster of
:mod:`upgrade_stack` through the official clients, waits until every node is Ready, and returns a
:class:`Built` with the ``Clients`` bundle (``connect("sandbox")``), the ``StackSpec``, and helpers:
``prepare``/``upgrade`` with short timeouts, ``versions()`` (image tag per pod), ``k8s_mutations(mark)``
(the sandbox audit log without the ledger's own ConfigMap writes).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import upgrade_stack as stackbuilder

from atlbook import clients
from atlbook.testing import (  # noqa: F401 - fixtures
    ADMIN_PASSWORD,
    aws_client,
    boto3_session,
    k8s_api,
    sandbox,
    sandbox_reset,
    sandbox_target,
)
from atlbook.upgrade import model, runbook

FAST = dict(node_timeout=30.0, tasks_timeout=30.0, snapshot_timeout=30.0, max_poll=0.1, error_polls=3)


@dataclasses.dataclass
class Built:
    box: Any
    clients: Any
    spec: Any
    info: dict[str, Any]

    @property
    def product(self) -> str:
        return str(self.info["product"])

    def options(self, **kw: Any) -> model.Options:
        return model.Options(**{**FAST, **kw})

    def prepare(self, target: str | None = None, *, rollback: bool = False, **kw: Any) -> runbook.Upgrade:
        version = self.info["next"] if target is None else target
        return runbook.prepare(
            self.clients, self.spec, self.product, version, rollback=rollback, options=self.options(**kw)
        )

    def upgrade(
        self, target: str | None = None, *, rollback: bool = False, measure: bool = True, **kw: Any
    ) -> runbook.UpgradeResult:
        up = self.prepare(target, rollback=rollback, **kw)
        return runbook.run(up, measure_availability=measure)

    def pods(self) -> list[dict[str, Any]]:
        from atlbook.clients import k8s

        return k8s.list(
            self.clients.k8s,
            "Pod",
            stackbuilder.NAMESPACE,
            label_selector=f"app.kubernetes.io/name={self.product}",
        )

    def versions(self) -> dict[str, str]:
        """Image tag per live product node (the simulated node's version)."""
        return {
            n.pod_name: n.version
            for n in self.box.products.nodes()
            if n.product == self.product and n.cluster.namespace == stackbuilder.NAMESPACE
        }

    def k8s_mutations(self, mark: int) -> list[Any]:
        return [e for e in self.box.audit.mutations(since=mark) if "/configmaps" not in e.path]


@pytest.fixture
def stack(
    sandbox_reset: Any,  # noqa: F811
    sandbox_target: Any,  # noqa: F811
    aws_client: Any,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Callable[..., Built]]:
    monkeypatch.setenv("ATLBOOK_SANDBOX_DIR", str(sandbox_reset.state_dir.resolve()))
    monkeypatch.setenv("ATLBOOK_SANDBOX_ADMIN_PASSWORD", ADMIN_PASSWORD)
    monkeypatch.setenv("ATLBOOK_SANDBOX_DB_PASSWORD", stackbuilder.DB_PASSWORD)
    made: list[Any] = []

    def build(product: str = "jira", replicas: int = 2, **kw: Any) -> Built:
        bundle = clients.connect("sandbox")
        made.append(bundle)
        info = stackbuilder.build(bundle.k8s, aws_client, product, replicas, **kw)
        stackbuilder.wait_ready(bundle.k8s, product, replicas)
        return Built(sandbox_reset, bundle, stackbuilder.load_spec(), info)

    yield build
    for bundle in made:
        bundle.close()
