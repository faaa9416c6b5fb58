"""Product HTTP plumbing shared by the base-URL client and the API-server proxy.

Covers: idempotent answers 429/502/503/504 retried with Retry-After honoured, the last answer handed
back when retries run out; non-idempotent requests never retried; transport errors translated into
ProductApiError + Unavailable; base URL validation; k8s.apply's "already equal" check.
"""

from __future__ import annotations

import socket

import pytest

from atlbook import errors
from atlbook.clients import http, k8s, retry


def policy(sleeps: list[float]) -> retry.RetryPolicy:
    return retry.RetryPolicy(max_attempts=3, sleep=sleeps.append, rng=lambda a, b: 0.0)


def sender(statuses: list[int], headers: dict[str, str] | None = None) -> tuple[list[int], object]:
    calls = [0]

    def send() -> http.HttpResponse:
        calls[0] += 1
        return http.HttpResponse(statuses.pop(0) if len(statuses) > 1 else statuses[0], headers or {}, b"{}")

    return calls, send


def test_retries_idempotent_answers_with_retry_after() -> None:
    sleeps: list[float] = []
    calls, send = sender([503, 429, 200], {"retry-after": "2"})
    out = http.call_with_status_retry(
        send,
        operation="GET /x",
        service="jira",
        idempotent=True,  # type: ignore[arg-type]
        policy=policy(sleeps),
    )
    assert out.status == 200 and calls[0] == 3 and sleeps == [2.0, 2.0]


def test_hands_back_last_answer_when_out_of_retries() -> None:
    calls, send = sender([503])
    out = http.call_with_status_retry(
        send,
        operation="GET /x",
        service="jira",
        idempotent=True,  # type: ignore[arg-type]
        policy=policy([]),
    )
    assert out.status == 503 and calls[0] == 3


def test_non_idempotent_not_retried() -> None:
    calls, send = sender([503, 200])
    out = http.call_with_status_retry(
        send,
        operation="POST /x",
        service="jira",
        idempotent=False,  # type: ignore[arg-type]
        policy=policy([]),
    )
    assert out.status == 503 and calls[0] == 1


def test_status_not_in_retry_list_is_returned() -> None:
    calls, send = sender([503])
    out = http.call_with_status_retry(
        send,
        operation="GET /status",
        service="jira",
        idempotent=True,  # type: ignore[arg-type]
        retry_statuses=(429,),
        policy=policy([]),
    )
    assert out.status == 503 and calls[0] == 1


def test_connection_refused_is_unavailable() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    client = http.HttpClient(f"http://127.0.0.1:{port}/jira", policy=retry.RetryPolicy(max_attempts=1))
    with pytest.raises(errors.Unavailable) as info:
        client.request("GET", "/status")
    assert isinstance(info.value, errors.ProductApiError) and info.value.operation == "GET /jira/status"


@pytest.mark.parametrize(
    "url", ["ftp://x", "jira.example.com", "http://"], ids=["ftp", "no-scheme", "no-host"]
)
def test_base_url_refused(url: str) -> None:
    with pytest.raises(errors.ConfigError):
        http.HttpClient(url)


@pytest.mark.parametrize(
    "desired, live, equal",
    [
        ({"data": {"a": "1"}}, {"data": {"a": "1", "b": "2"}, "metadata": {"uid": "u"}}, True),
        ({"data": {"a": "1"}}, {"data": {"a": "2"}}, False),
        ({"spec": {"ports": [{"port": 80}]}}, {"spec": {"ports": [{"port": 80, "protocol": "TCP"}]}}, True),
        ({"spec": {"ports": [{"port": 80}]}}, {"spec": {"ports": [{"port": 80}, {"port": 81}]}}, False),
        ({"spec": {"x": None}}, {"spec": {}}, True),
        ({"spec": {"x": None}}, {"spec": {"x": 1}}, False),
        ({"spec": {"y": 1}}, {"spec": {}}, False),
    ],
    ids=[
        "subset",
        "changed",
        "server-defaults",
        "extra-list-item",
        "none-means-absent",
        "none-but-present",
        "missing-key",
    ],
)
def test_apply_equality_is_a_subset_check(
    desired: dict[str, object], live: dict[str, object], equal: bool
) -> None:
    assert k8s._subset(desired, live) is equal


def test_secret_string_data_compared_as_data() -> None:
    desired = k8s._desired(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "s", "namespace": "a"},
            "stringData": {"password": "pw-123456"},
        }
    )
    live = {
        "metadata": {"name": "s", "namespace": "a", "uid": "u"},
        "data": {"password": "cHctMTIzNDU2"},
        "type": "Opaque",
    }
    assert "stringData" not in desired and k8s._subset(desired, live)
