"""Kubernetes error translation: one table from ApiException / urllib3 / pydantic into K8sApiError.

Covers: status → behaviour type (with ids); Retry-After → delay; Status bodies read, scrubbed, capped;
transport failures are Unavailable; client-side validation is Invalid without echoing input values;
the cause is chained; K8sApiError is not an ApiException; guard() translates inside a block.
"""

from __future__ import annotations

import json

import pytest
import urllib3
from kubernetes.client.exceptions import ApiException

from atlbook import errors
from atlbook.clients import k8s, secrets


def status_body(code: int, reason: str, message: str) -> str:
    return json.dumps(
        {
            "kind": "Status",
            "apiVersion": "v1",
            "status": "Failure",
            "code": code,
            "reason": reason,
            "message": message,
        }
    )


@pytest.mark.parametrize(
    "status, exctype",
    [
        (400, errors.Invalid),
        (401, errors.Forbidden),
        (403, errors.Forbidden),
        (404, errors.NotFound),
        (409, errors.Conflict),
        (422, errors.Invalid),
        (429, errors.Throttled),
        (500, errors.Unavailable),
        (503, errors.Unavailable),
        (504, errors.Unavailable),
    ],
    ids=[
        "400-invalid",
        "401-forbidden",
        "403-forbidden",
        "404-not-found",
        "409-conflict",
        "422-invalid",
        "429-throttled",
        "500-unavailable",
        "503-unavailable",
        "504-unavailable",
    ],
)
def test_status_table(status: int, exctype: type[Exception]) -> None:
    exc = ApiException(status=status, reason="R")
    exc.body = status_body(status, "Reason", 'configmaps "x" something')
    err = k8s.translate(exc, operation="get ConfigMap ns/x")
    assert isinstance(err, errors.K8sApiError) and isinstance(err, exctype)
    assert err.status == status and err.operation == "get ConfigMap ns/x" and err.service == "k8s"
    assert 'configmaps "x" something' in str(err)


def test_unknown_4xx_is_plain_and_permanent_family() -> None:
    err = k8s.translate(ApiException(status=418, reason="teapot"), operation="x")
    assert type(err) is errors.K8sApiError and not isinstance(err, errors.RetryableError)


@pytest.mark.parametrize("status", [429, 503], ids=["429", "503"])
def test_retry_after_becomes_delay(status: int) -> None:
    exc = ApiException(status=status, reason="R")
    exc.headers = {"Retry-After": "3"}
    assert k8s.translate(exc, operation="x").delay == 3.0


@pytest.mark.parametrize(
    "exc",
    [
        urllib3.exceptions.ProtocolError("Connection aborted.", ConnectionResetError(104, "reset")),
        urllib3.exceptions.ReadTimeoutError(None, "/api", "read timed out"),  # type: ignore[arg-type]
        urllib3.exceptions.NewConnectionError(None, "refused"),  # type: ignore[arg-type]
        urllib3.exceptions.MaxRetryError(None, "/api"),  # type: ignore[arg-type]
        ConnectionResetError(104, "reset by peer"),
        TimeoutError("timed out"),
    ],
    ids=["protocol-reset", "read-timeout", "new-connection", "max-retry", "conn-reset", "timeout"],
)
def test_transport_failures_are_unavailable(exc: BaseException) -> None:
    err = k8s.translate(exc, operation="list Pod")
    assert isinstance(err, errors.K8sApiError) and isinstance(err, errors.Unavailable)
    assert err.status is None


def test_status_zero_is_not_retryable() -> None:
    err = k8s.translate(ApiException(status=0, reason="SSLError\ncert verify failed"), operation="x")
    assert type(err) is errors.K8sApiError


def test_client_side_validation_is_invalid_and_hides_input() -> None:
    from kubernetes.client import V1StatefulSet

    with pytest.raises(Exception) as info:
        V1StatefulSet.model_validate(
            {"metadata": {"name": "s"}, "spec": {"template": {}, "replicas": "zz-secret"}}
        )
    err = k8s.translate(info.value, operation="create StatefulSet a/s")
    assert isinstance(err, errors.Invalid) and isinstance(err, errors.K8sApiError)
    assert "zz-secret" not in str(err) and "spec" in str(err)


def test_payload_scrubbed_and_capped() -> None:
    secrets.register("hunter2-very-secret")
    exc = ApiException(status=500, reason="R")
    exc.body = "x" * 5000 + " password=hunter2-very-secret Authorization: Bearer abc.def"
    err = k8s.translate(exc, operation="x")
    text = str(err)
    assert "hunter2-very-secret" not in text and "abc.def" not in text
    assert len(text) < 600 and "more chars" in text


def test_guard_chains_the_cause() -> None:
    with pytest.raises(errors.NotFound) as info, k8s.guard("get Pod a/b"):
        raise ApiException(status=404, reason="Not Found")
    assert isinstance(info.value.__cause__, ApiException)


def test_k8s_errors_are_not_sdk_exceptions() -> None:
    assert not issubclass(errors.K8sApiError, ApiException)
    err = k8s.translate(ApiException(status=404), operation="x")
    assert not isinstance(err, ApiException)


def test_refused_exec_upgrade_is_the_status_it_carried() -> None:
    """websocket-client folds a refused exec upgrade into one message; the Status inside is the error."""
    status = {
        "kind": "Status",
        "status": "Failure",
        "reason": "Forbidden",
        "code": 403,
        "message": 'pods "jira-0" is forbidden: User "sa" cannot get resource "pods/exec" in API group ""',
    }
    reason = "Handshake status 403 Forbidden -+-+- {'content-type': 'application/json'} -+-+- " + json.dumps(
        status
    )
    err = k8s.translate(ApiException(status=0, reason=reason), operation="exec pods/atlassian/jira-0")
    assert isinstance(err, errors.K8sApiError) and isinstance(err, errors.Forbidden)
    assert 'cannot get resource "pods/exec"' in str(err) and err.status == 403
    bare = k8s.translate(
        ApiException(status=0, reason="Handshake status 404 Not Found -+-+- {} -+-+- None"), operation="exec"
    )
    assert bare.status == 404 and "HTTP 404 to the websocket upgrade" in str(bare)
    lost = k8s.translate(ApiException(status=0, reason="Connection refused"), operation="exec")
    assert lost.status is None and "before a response" in str(lost)
