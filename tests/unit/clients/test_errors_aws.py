"""AWS error translation: one table from botocore ClientError codes / exceptions into AwsApiError.

Covers: code → behaviour type (with ids), including pattern families (*NotFound*, NoSuch*,
*AlreadyExists*); fallback on the HTTP status; Retry-After; credentials, parameter validation and
transport failures; real moto errors through ``aws.call`` (chained cause, not retried when permanent).
"""

from __future__ import annotations

import botocore.exceptions
import pytest
from moto import mock_aws

from atlbook import errors
from atlbook.clients import aws, connect, retry


def client_error(code: str, status: int = 400, headers: dict[str, str] | None = None) -> Exception:
    return botocore.exceptions.ClientError(
        {
            "Error": {"Code": code, "Message": f"{code} happened"},
            "ResponseMetadata": {"HTTPStatusCode": status, "HTTPHeaders": headers or {}},
        },
        "DescribeCluster",
    )


@pytest.mark.parametrize(
    "code, http, exctype",
    [
        ("ThrottlingException", 400, errors.Throttled),
        ("Throttling", 400, errors.Throttled),
        ("RequestLimitExceeded", 503, errors.Throttled),
        ("TooManyRequestsException", 429, errors.Throttled),
        ("ResourceNotFoundException", 404, errors.NotFound),
        ("DBInstanceNotFound", 404, errors.NotFound),
        ("FileSystemNotFound", 404, errors.NotFound),
        ("InvalidVpcID.NotFound", 400, errors.NotFound),
        ("NoSuchDistribution", 404, errors.NotFound),
        ("ResourceInUseException", 409, errors.Conflict),
        ("DBInstanceAlreadyExists", 400, errors.Conflict),
        ("FileSystemAlreadyExists", 409, errors.Conflict),
        ("InvalidGroup.Duplicate", 400, errors.Conflict),
        ("AccessDenied", 403, errors.Forbidden),
        ("AccessDeniedException", 403, errors.Forbidden),
        ("UnauthorizedOperation", 403, errors.Forbidden),
        ("ExpiredToken", 400, errors.Forbidden),
        ("ValidationException", 400, errors.Invalid),
        ("InvalidParameterValue", 400, errors.Invalid),
        ("InternalError", 500, errors.Unavailable),
        ("ServiceUnavailable", 503, errors.Unavailable),
        ("SomethingNew", 503, errors.Unavailable),
        ("SomethingNew", 404, errors.NotFound),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_code_table(code: str, http: int, exctype: type[Exception]) -> None:
    err = aws.translate(client_error(code, http), service="eks", operation="DescribeCluster")
    assert isinstance(err, errors.AwsApiError) and isinstance(err, exctype)
    assert err.service == "eks" and err.operation == "DescribeCluster"
    assert code in str(err)


def test_unknown_code_falls_back_on_http_status() -> None:
    assert isinstance(
        aws.translate(client_error("WeirdThing", 400), service="ec2", operation="X"), errors.Invalid
    )
    assert (
        type(aws.translate(client_error("WeirdThing", 418), service="ec2", operation="X"))
        is errors.AwsApiError
    )


def test_throttle_retry_after() -> None:
    err = aws.translate(
        client_error("ThrottlingException", 400, {"retry-after": "4"}), service="eks", operation="X"
    )
    assert err.delay == 4.0


@pytest.mark.parametrize(
    "exc, exctype",
    [
        (botocore.exceptions.NoCredentialsError(), errors.Forbidden),
        (botocore.exceptions.ParamValidationError(report="Missing required parameter"), errors.Invalid),
        (botocore.exceptions.EndpointConnectionError(endpoint_url="http://x"), errors.Unavailable),
        (botocore.exceptions.ConnectTimeoutError(endpoint_url="http://x"), errors.Unavailable),
        (botocore.exceptions.ReadTimeoutError(endpoint_url="http://x"), errors.Unavailable),
        (botocore.exceptions.ConnectionClosedError(endpoint_url="http://x"), errors.Unavailable),
    ],
    ids=[
        "no-credentials",
        "param-validation",
        "endpoint-connection",
        "connect-timeout",
        "read-timeout",
        "connection-closed",
    ],
)
def test_botocore_exceptions(exc: Exception, exctype: type[Exception]) -> None:
    err = aws.translate(exc, service="eks", operation="X")
    assert isinstance(err, errors.AwsApiError) and isinstance(err, exctype)


def test_message_is_scrubbed() -> None:
    exc = botocore.exceptions.ClientError(
        {"Error": {"Code": "AccessDenied", "Message": "key AKIAABCDEFGHIJKLMNOP denied"}}, "X"
    )
    assert "AKIAABCDEFGHIJKLMNOP" not in str(aws.translate(exc, service="sts", operation="X"))


@mock_aws
def test_moto_not_found_through_call(monkeypatch: pytest.MonkeyPatch) -> None:
    c = connect(
        {"aws_region": "us-east-1", "aws_access_key_id": "testing", "aws_secret_access_key": "testing"},
        check=False,
        policy=retry.RetryPolicy(sleep=lambda s: None),
    )
    with pytest.raises(errors.NotFound) as info:
        c.aws_call("eks", "describe_cluster", idempotent=True, name="missing")
    assert isinstance(info.value, errors.AwsApiError)
    assert isinstance(info.value.__cause__, botocore.exceptions.ClientError)
    assert not isinstance(info.value, botocore.exceptions.ClientError)
