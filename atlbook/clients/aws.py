"""AWS through boto3: sessions and clients built from a target, botocore errors translated, EKS tokens.

Only :mod:`atlbook.clients` builds boto3 objects. A client gets botocore's ``standard`` retry mode (a
few quick in-call retries) and short timeouts; atlbook's own :mod:`~atlbook.clients.retry` policy runs
on top through :func:`call`, which also translates every botocore exception with :func:`translate` —
the one table from error codes to the :class:`~atlbook.errors.AwsApiError` family::

    ThrottlingException, Throttling, RequestLimitExceeded, TooManyRequests…   → Throttled (429)
    ResourceNotFoundException, NoSuch*, *NotFound*                           → NotFound (404)
    ResourceInUseException, *AlreadyExists*, *Duplicate*, ConflictException → Conflict (409)
    AccessDenied*, UnauthorizedOperation, ExpiredToken, InvalidClientTokenId → Forbidden (403)
    ValidationException, InvalidParameter*, MissingParameter, ParamValidation → Invalid (400)
    InternalError, ServiceUnavailable, 5xx, connection/read timeouts, resets  → Unavailable
    NoCredentialsError                                                      → Forbidden (401)

:func:`eks_token` builds the bearer token ``aws eks get-token`` prints: a presigned STS
GetCallerIdentity URL carrying the ``x-k8s-aws-id`` header, base64url-encoded after ``k8s-aws-v1.``.
It makes no API call.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import boto3
import botocore.config
import botocore.exceptions

from atlbook import errors
from atlbook.clients import retry, secrets
from atlbook.clients._scrub import scrub
from atlbook.clients.target import ResolvedTarget

__all__ = [
    "CLIENT_CONFIG",
    "EKS_TOKEN_PREFIX",
    "call",
    "client",
    "eks_token",
    "session",
    "translate",
]

log = logging.getLogger(__name__)
T = TypeVar("T")

EKS_TOKEN_PREFIX = "k8s-aws-v1."
_K8S_AWS_ID = "x-k8s-aws-id"

#: botocore: standard retry mode (3 attempts incl. the first), bounded timeouts. Our retry sits on top.
CLIENT_CONFIG = botocore.config.Config(
    retries={"mode": "standard", "max_attempts": 3},
    connect_timeout=5,
    read_timeout=60,
)

_STATUS_BY_CODE: dict[str, int] = {
    # throttling
    "Throttling": 429,
    "ThrottlingException": 429,
    "ThrottledException": 429,
    "RequestThrottled": 429,
    "RequestThrottledException": 429,
    "RequestLimitExceeded": 429,
    "TooManyRequestsException": 429,
    "ProvisionedThroughputExceededException": 429,
    "SlowDown": 429,
    "PriorRequestNotComplete": 429,
    "EC2ThrottledException": 429,
    "BandwidthLimitExceeded": 429,
    # not found
    "ResourceNotFoundException": 404,
    "NoSuchEntity": 404,
    "NotFoundException": 404,
    # exists / in use / concurrent change
    "ResourceInUseException": 409,
    "ResourceExistsException": 409,
    "ConflictException": 409,
    "EntityAlreadyExists": 409,
    "IncorrectState": 409,
    "IncorrectStateException": 409,
    "InvalidDBInstanceState": 409,
    "InvalidDBInstanceStateFault": 409,
    "MountTargetConflict": 409,
    "PreconditionFailed": 409,
    # permissions / credentials
    "AccessDenied": 403,
    "AccessDeniedException": 403,
    "UnauthorizedOperation": 403,
    "UnauthorizedException": 403,
    "UnrecognizedClientException": 403,
    "InvalidClientTokenId": 403,
    "ExpiredToken": 403,
    "ExpiredTokenException": 403,
    "AuthFailure": 403,
    "SignatureDoesNotMatch": 403,
    "OptInRequired": 403,
    # invalid input
    "ValidationException": 400,
    "ValidationError": 400,
    "InvalidParameterValue": 400,
    "InvalidParameterValueException": 400,
    "InvalidParameterException": 400,
    "InvalidParameterCombination": 400,
    "InvalidParameter": 400,
    "InvalidRequestException": 400,
    "InvalidRequest": 400,
    "MissingParameter": 400,
    "BadRequest": 400,
    "BadRequestException": 400,
    # server side
    "InternalError": 500,
    "InternalFailure": 500,
    "InternalServerError": 500,
    "InternalServerException": 500,
    "ServerException": 500,
    "ServiceException": 500,
    "ServiceUnavailable": 503,
    "ServiceUnavailableException": 503,
    "Unavailable": 503,
}

_UNAVAILABLE_EXC: tuple[type[Exception], ...] = (
    botocore.exceptions.EndpointConnectionError,
    botocore.exceptions.ConnectionClosedError,
    botocore.exceptions.ConnectTimeoutError,
    botocore.exceptions.ReadTimeoutError,
    botocore.exceptions.HTTPClientError,
)


def _status_for_code(code: str, http_status: int | None) -> int | None:
    status = _STATUS_BY_CODE.get(code)
    if status is not None:
        return status
    if "Throttl" in code or "TooManyRequests" in code:
        return 429
    if code.startswith("NoSuch") or "NotFound" in code:
        return 404
    if "AlreadyExists" in code or "Duplicate" in code or code.endswith("InUse"):
        return 409
    if code.startswith("AccessDenied") or code.startswith("Unauthorized"):
        return 403
    if code.startswith("InvalidParameter") or code.startswith("Validation"):
        return 400
    return http_status


def _retry_after(headers: Mapping[str, Any] | None) -> float | None:
    if not headers:
        return None
    for key, value in headers.items():
        if key.lower() == "retry-after":
            try:
                return max(0.0, float(value))
            except (TypeError, ValueError):
                return None
    return None


def translate(exc: BaseException, *, service: str, operation: str) -> errors.ApiError:
    """The :class:`~atlbook.errors.AwsApiError` for a botocore/boto3 exception (message scrubbed and capped).

    Unknown codes fall back on the HTTP status of the response; transport failures are ``Unavailable``.
    """
    where = f"{service}.{operation}"
    if isinstance(exc, botocore.exceptions.ClientError):
        err = exc.response.get("Error", {}) or {}
        meta = exc.response.get("ResponseMetadata", {}) or {}
        code = str(err.get("Code") or "Unknown")
        http_status = meta.get("HTTPStatusCode")
        status = _status_for_code(code, int(http_status) if http_status else None)
        message = scrub(err.get("Message") or "", limit=500)
        delay = _retry_after(meta.get("HTTPHeaders")) if status == 429 else None
        return errors.api_error(
            errors.AwsApiError,
            f"{where}: {code}: {message}".rstrip(": "),
            status=status if status is not None else 500,
            service=service,
            operation=operation,
            delay=delay,
        )
    if isinstance(exc, botocore.exceptions.NoCredentialsError):
        return errors.api_error(
            errors.AwsApiError,
            f"{where}: no AWS credentials found (set aws_profile in the target)",
            status=401,
            service=service,
            operation=operation,
        )
    if isinstance(exc, botocore.exceptions.ParamValidationError):
        return errors.api_error(
            errors.AwsApiError,
            f"{where}: {scrub(exc, 500)}",
            status=400,
            service=service,
            operation=operation,
        )
    if isinstance(exc, _UNAVAILABLE_EXC) or isinstance(exc, (ConnectionError, TimeoutError)):
        return errors.api_error(
            errors.AwsApiError,
            f"{where}: {type(exc).__name__}: {scrub(exc, 300)}",
            status=None,
            service=service,
            operation=operation,
        )
    return errors.AwsApiError(
        f"{where}: {type(exc).__name__}: {scrub(exc, 300)}", service=service, operation=operation
    )


def session(target: ResolvedTarget) -> boto3.Session:
    """A boto3 Session for ``target``: its profile, or its (sandbox) keys, and its region.

    Raises :class:`TargetError` when the profile does not exist.
    """
    if target.aws_access_key_id:
        secrets.register(target.aws_access_key_id)
    if target.aws_secret_access_key:
        secrets.register(target.aws_secret_access_key)
    try:
        return boto3.Session(
            profile_name=target.aws_profile,
            region_name=target.aws_region,
            aws_access_key_id=target.aws_access_key_id,
            aws_secret_access_key=target.aws_secret_access_key,
        )
    except botocore.exceptions.ProfileNotFound as e:
        raise errors.TargetError(
            f"AWS profile {target.aws_profile!r} does not exist; fix aws_profile in the target"
        ) from e


def client(
    sess: boto3.Session, service: str, *, endpoint_url: str | None = None, region: str | None = None
) -> Any:
    """A boto3 client for ``service`` with :data:`CLIENT_CONFIG`.

    ``endpoint_url=None`` lets botocore honour ``AWS_ENDPOINT_URL`` / ``AWS_ENDPOINT_URL_<SERVICE>``.
    """
    kwargs: dict[str, Any] = {"config": CLIENT_CONFIG}
    if endpoint_url:
        kwargs["endpoint_url"] = endpoint_url
    if region:
        kwargs["region_name"] = region
    try:
        return sess.client(service, **kwargs)
    except botocore.exceptions.NoRegionError as e:
        raise errors.TargetError(f"no AWS region for {service}: set aws_region in the target") from e
    except botocore.exceptions.UnknownServiceError as e:
        raise errors.ConfigError(f"unknown AWS service {service!r}") from e


def call(
    aws_client: Any,
    operation: str,
    *,
    idempotent: bool,
    policy: retry.RetryPolicy | None = None,
    **params: Any,
) -> dict[str, Any]:
    """Call ``aws_client.<operation>(**params)`` with translation and atlbook's retry policy.

    ``idempotent`` must be stated: describe/list/get calls are, creates are only when they carry a
    client token or a unique name and the caller treats ``Conflict`` as "exists".
    """
    try:
        service = str(aws_client.meta.service_model.service_name)
    except AttributeError:
        service = type(aws_client).__name__.lower()
    method: Callable[..., dict[str, Any]] = getattr(aws_client, operation)

    def once() -> dict[str, Any]:
        try:
            return method(**params)
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as e:
            raise translate(e, service=service, operation=operation) from e

    return retry.call(once, idempotent=idempotent, description=f"{service}.{operation}", policy=policy)


def eks_token(sts_client: Any, cluster_name: str) -> str:
    """A Kubernetes bearer token for EKS cluster ``cluster_name`` (valid ~15 min), like ``aws eks get-token``.

    ``sts_client`` is an STS client of the session that should authenticate. No API call is made; the
    token is registered for redaction.
    """

    def _retrieve_id(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        if _K8S_AWS_ID in params:
            context[_K8S_AWS_ID] = params.pop(_K8S_AWS_ID)

    def _inject_header(request: Any, **_: Any) -> None:
        if _K8S_AWS_ID in request.context:
            request.headers[_K8S_AWS_ID] = request.context[_K8S_AWS_ID]

    events = sts_client.meta.events
    events.register("provide-client-params.sts.GetCallerIdentity", _retrieve_id)
    events.register("before-sign.sts.GetCallerIdentity", _inject_header)
    try:
        url = sts_client.generate_presigned_url(
            "get_caller_identity",
            Params={_K8S_AWS_ID: cluster_name},
            ExpiresIn=60,
            HttpMethod="GET",
        )
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as e:
        raise translate(e, service="sts", operation="GetCallerIdentity(presign)") from e
    finally:
        events.unregister("provide-client-params.sts.GetCallerIdentity", _retrieve_id)
        events.unregister("before-sign.sts.GetCallerIdentity", _inject_header)
    token = EKS_TOKEN_PREFIX + base64.urlsafe_b64encode(str(url).encode("utf-8")).decode("ascii").rstrip("=")
    secrets.register(token)
    return token
