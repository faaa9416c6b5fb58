"""Fixtures of the diagnosis sandbox tests: the ``atlbook.testing`` ones, plus a built stack.

``stack(per_zone=1)`` resets the sandbox, builds the small HA stack of :mod:`.stackbuilder` through the
official clients, waits until every product node is Ready, and returns a :class:`Built` with the
``Clients`` bundle (``connect("sandbox")``), the ``StackSpec`` and helpers to diagnose and to wait for a
diagnosis to show something.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterator
from typing import Any

import diagnosis_stack as stackbuilder
import pytest

from atlbook import clients, diagnosis
from atlbook.testing import (  # noqa: F401 - fixtures
    ADMIN_PASSWORD,
    aws_client,
    boto3_session,
    k8s_api,
    sandbox,
    sandbox_reset,
    sandbox_target,
)


@dataclasses.dataclass
class Built:
    box: Any
    clients: Any
    spec: Any
    info: dict[str, Any]

    def diagnose(self, window_minutes: float = 30, **kw: Any) -> diagnosis.Diagnosis:
        return diagnosis.diagnose(
            self.clients, self.spec, diagnosis.scope.manual(window_minutes=window_minutes, **kw)
        )

    def until(
        self, pred: Callable[[diagnosis.Diagnosis], bool], timeout: float = 25.0, what: str = "diagnosis"
    ) -> diagnosis.Diagnosis:
        """Diagnose again until ``pred`` holds (the sandbox needs a moment to show a fault)."""
        deadline = time.monotonic() + timeout
        while True:
            result = self.diagnose()
            if pred(result):
                return result
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"timed out waiting for {what}; last:\n{result.explain()}\n"
                    + "\n".join(f"{f.rank} {f.severity} {f.key}" for f in result.findings)
                )
            time.sleep(0.3)

    def first(self, check_id: str, timeout: float = 25.0) -> diagnosis.Diagnosis:
        """Diagnose until ``check_id`` is the most likely cause."""
        return self.until(
            lambda d: d.most_likely is not None and d.most_likely.check == check_id,
            timeout,
            f"{check_id} ranked first",
        )


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

    def build(per_zone: int = 1, products: tuple[str, ...] = ("jira",)) -> Built:
        bundle = clients.connect("sandbox")
        made.append(bundle)
        info = stackbuilder.build(bundle.k8s, aws_client, per_zone=per_zone, products=products)
        stackbuilder.wait_ready(bundle.k8s, products, info["replicas"])
        return Built(sandbox_reset, bundle, stackbuilder.load_spec(), info)

    yield build
    for bundle in made:
        bundle.close()
