"""Collection never crashes: every source that fails becomes a finding of its own.

Aspects: with a bundle whose Kubernetes, AWS and database all fail, :func:`collect.collect` returns
evidence naming each failed source (no exception), the pod list failure is an error finding (the
diagnosis is blind), the others warnings, and the calls made are still counted. Uses a stand-in for
``atlbook.clients.Clients`` at atlbook's own wrapper boundary; the SDKs are never reached.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from atlbook import diagnosis, errors
from atlbook.diagnosis import collect
from atlbook.diagnosis.evidence import Severity


class _Target:
    database_tunnel = ("127.0.0.1", 1)


class BrokenClients:
    """Every client fails the way atlbook.clients reports failures (its error tree)."""

    target = _Target()
    policy = None

    @property
    def k8s(self) -> Any:
        raise errors.TargetError("kubeconfig /nowhere does not exist")

    def aws(self, service: str, **_: Any) -> Any:
        raise errors.api_error(errors.AwsApiError, f"{service}: AccessDenied", status=403, service=service)

    def resolve_secret(self, ref: Any) -> str:
        raise errors.SecretResolutionError(f"environment variable for {ref} is not set")


class _Db:
    master_username = "postgres"
    master_password = "env:NOT_SET"


class Spec:
    """Only what collect reads (it uses getattr with defaults for the rest)."""

    name = "prod"
    namespace = "atlassian"
    database = _Db()


def test_everything_failing_is_evidence_not_a_crash() -> None:
    spec = Spec()
    sc = diagnosis.scope.manual(window_minutes=10, now=dt.datetime(2026, 11, 26, 12, 0, tzinfo=dt.UTC))
    ev = collect.collect(BrokenClients(), spec, sc)
    sources = {e.source for e in ev.source_errors}
    assert {"k8s:pods", "k8s:nodes", "k8s:ingresses", "aws:rds", "aws:efs", "aws:eks", "database"} <= sources
    assert ev.api_calls["k8s:list Pod"] == 1 and ev.api_calls["aws:rds.describe_db_instances"] == 1
    result = diagnosis.analyse(ev, sc)
    failed = {f.subject: f.severity for f in result.findings if f.check == "collect.source-failed"}
    assert failed["source/k8s:pods"] == Severity.ERROR
    assert failed["source/aws:rds"] == Severity.WARNING
    assert not result.healthy


def test_source_error_messages_are_redacted() -> None:
    class Leaky(BrokenClients):
        def aws(self, service: str, **_: Any) -> Any:
            raise RuntimeError("failed with password=hunter2 for postgresql://u:s3cret@db/x")

    ev = collect.collect(Leaky(), Spec(), diagnosis.scope.manual())
    text = " ".join(e.message for e in ev.source_errors)
    assert "hunter2" not in text and "s3cret" not in text
