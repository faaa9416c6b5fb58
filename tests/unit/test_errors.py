"""The error tree: behaviour families by status, no SDK leakage, messages that name key and source."""

from __future__ import annotations

import pytest

from atlbook import errors


@pytest.mark.parametrize(
    "status, behaviour",
    [
        (404, errors.NotFound),
        (409, errors.Conflict),
        (403, errors.Forbidden),
        (401, errors.Forbidden),
        (422, errors.Invalid),
        (429, errors.Throttled),
        (500, errors.Unavailable),
        (503, errors.Unavailable),
        (None, errors.Unavailable),
    ],
    ids=lambda v: str(v),
)
@pytest.mark.parametrize("base", [errors.K8sApiError, errors.AwsApiError, errors.ProductApiError])
def test_api_error_combines_service_and_behaviour(
    base: type[errors.ApiError], status: int | None, behaviour: type[Exception]
) -> None:
    err = errors.api_error(base, "boom", status=status, service="svc", operation="op", delay=2.0)
    assert isinstance(err, base)
    assert isinstance(err, behaviour)
    assert isinstance(err, errors.AtlbookError)
    assert (err.status, err.service, err.operation, err.delay) == (status, "svc", "op", 2.0)


def test_retryable_and_permanent_are_disjoint() -> None:
    throttled = errors.api_error(errors.K8sApiError, "slow down", status=429, delay=3)
    missing = errors.api_error(errors.K8sApiError, "gone", status=404)
    assert isinstance(throttled, errors.RetryableError) and not isinstance(throttled, errors.PermanentError)
    assert isinstance(missing, errors.PermanentError) and not isinstance(missing, errors.RetryableError)
    assert throttled.delay == 3


def test_unknown_4xx_is_plain_and_not_retryable() -> None:
    err = errors.api_error(errors.AwsApiError, "teapot", status=418)
    assert type(err) is errors.AwsApiError
    assert not isinstance(err, errors.RetryableError)


def test_combined_classes_are_reused() -> None:
    a = errors.api_error(errors.K8sApiError, "a", status=409)
    b = errors.api_error(errors.K8sApiError, "b", status=409)
    assert type(a) is type(b)


def test_parameter_error_names_source_key_allowed_and_suggestion() -> None:
    err = errors.ParameterError(
        "unknown key",
        source="parameters/prod.yaml",
        key="stack.prodcuts",
        allowed="x, y",
        suggestion="stack.products",
    )
    text = str(err)
    for part in ("parameters/prod.yaml", "stack.prodcuts", "allowed: x, y", "did you mean 'stack.products'"):
        assert part in text
    assert isinstance(err, errors.ConfigError)


def test_sdk_exceptions_are_not_in_the_tree() -> None:
    from kubernetes.client.exceptions import ApiException

    assert not issubclass(errors.K8sApiError, ApiException)
    assert not issubclass(ApiException, errors.AtlbookError)
