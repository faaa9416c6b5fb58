"""AWS through boto3: sessions and clients built from a target, botocore errors translated, EKS tokens.

Only :mod:`atlbook.clients` builds boto3 objects. A client gets short timeouts and *no* botocore retries
(``total_max_attempts: 1``): there is one retry layer, atlbook's :mod:`~atlbook.clients.retry` policy through
:func:`call`, because only the caller knows whether a call is idempotent — botocore would repeat a
create after a reset or a 5xx, making a second resource where AWS has no client token. :func:`call` also
translates every botocore exception with :func:`translate` — the one table from error codes to the
:class:`~atlbook.errors.AwsApiError` family::

    ThrottlingException, Throttling, RequestLimitExceeded, TooManyRequests…   → Throttled (429)
    ResourceNotFoundException, NoSuch*, *NotFound*                           → NotFound (404)
    ResourceInUseException, *AlreadyExists*, *Duplicate*, ConflictException → Conflict (409)
    AccessDenied*, UnauthorizedOperation, ExpiredToken, InvalidClientTokenId → Forbidden (403)
    ValidationException, InvalidParameter*, MissingParameter, ParamValidation → Invalid (400)
    InternalError, ServiceUnavailable, 5xx, connection/read timeouts, resets  → Unavailable
    NoCredentialsError                                                      → Forbidden (401)

:func:`client` returns a :class:`TranslatingClient`: even a runbook calling ``clients.aws("eks")``
directly, or paging or waiting with it, only ever sees atlbook errors.

:func:`eks_token` builds the bearer token ``aws eks get-token`` prints: a presigned STS
GetCallerIdentity URL carrying the ``x-k8s-aws-id`` header, base64url-encoded after ``k8s-aws-v1.``.
It makes no API call.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Callable, Iterator, Mapping
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
    "TranslatingClient",
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

#: botocore: one attempt (atlbook's idempotency-aware retry is the only retry layer), bounded timeouts.
CLIENT_CONFIG = botocore.config.Config(
    retries={"mode": "standard", "total_max_attempts": 1},
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
        delay = _retry_after(meta.get("HTTPHeaders")) if status in (429, 503) else None
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


_SDK_ERRORS = (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError)


def _wrap(fn: Callable[..., Any], service: str, operation: str) -> Callable[..., Any]:
    def call(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except botocore.exceptions.WaiterError as e:
            reason = e.kwargs.get("reason") or str(e)
            raise errors.AwsApiError(
                f"{service}.{operation}: {scrub(reason, 300)}", service=service, operation=operation
            ) from e
        except _SDK_ERRORS as e:
            raise translate(e, service=service, operation=operation) from e

    call.__name__ = getattr(fn, "__name__", operation)
    call.__doc__ = getattr(fn, "__doc__", None)
    return call


class _Pages:
    """A botocore PageIterator whose iteration raises atlbook errors."""

    def __init__(self, pages: Any, service: str, operation: str) -> None:
        self._pages = pages
        self._service = service
        self._operation = operation

    def __iter__(self) -> Iterator[Any]:
        it = iter(self._pages)
        while True:
            try:
                page = next(it)
            except StopIteration:
                return
            except _SDK_ERRORS as e:
                raise translate(e, service=self._service, operation=self._operation) from e
            yield page

    def build_full_result(self) -> Any:
        """Every page merged (botocore's ``build_full_result``), translated."""
        return _wrap(self._pages.build_full_result, self._service, self._operation)()

    def search(self, expression: str) -> Iterator[Any]:
        """A JMESPath search over every page, translated."""
        items = _wrap(lambda: list(self._pages.search(expression)), self._service, self._operation)()
        return iter(items)


class _Paginator:
    def __init__(self, raw: Any, service: str, operation: str) -> None:
        self._raw = raw
        self._service = service
        self._operation = operation

    def paginate(self, **kwargs: Any) -> _Pages:
        """Pages of the operation (see botocore's ``Paginator.paginate``), translated."""
        return _Pages(self._raw.paginate(**kwargs), self._service, self._operation)


class _Waiter:
    def __init__(self, raw: Any, service: str, name: str) -> None:
        self._raw = raw
        self._service = service
        self._name = name

    def wait(self, **kwargs: Any) -> None:
        """Wait (botocore's ``Waiter.wait``); a failed or timed-out wait is an ``AwsApiError``."""
        _wrap(self._raw.wait, self._service, f"wait {self._name}")(**kwargs)


class TranslatingClient:
    """A boto3 client whose calls, paginators and waiters raise atlbook errors, never botocore's.

    Attributes other than calls (``meta``, ``exceptions``) pass through; ``raw`` is the boto3 client.
    Calls are not retried here (botocore makes one attempt): use :func:`call` (or ``Clients.aws_call``)
    for atlbook's retry policy.
    """

    def __init__(self, raw: Any) -> None:
        self.raw = raw
        self._service = str(raw.meta.service_model.service_name)

    def __repr__(self) -> str:
        return f"TranslatingClient({self._service})"

    def _api_name(self, method: str) -> str:
        return str(self.raw.meta.method_to_api_mapping.get(method, method))

    def get_paginator(self, operation: str) -> _Paginator:
        """A paginator whose pages raise atlbook errors."""
        raw = _wrap(self.raw.get_paginator, self._service, "get_paginator")(operation)
        return _Paginator(raw, self._service, self._api_name(operation))

    def get_waiter(self, name: str) -> _Waiter:
        """A waiter whose failure is an ``AwsApiError``."""
        raw = _wrap(self.raw.get_waiter, self._service, "get_waiter")(name)
        return _Waiter(raw, self._service, name)

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.raw, name)
        if name in ("meta", "exceptions") or not callable(attr):
            return attr
        return _wrap(attr, self._service, self._api_name(name))


def client(
    sess: boto3.Session, service: str, *, endpoint_url: str | None = None, region: str | None = None
) -> Any:
    """A :class:`TranslatingClient` around a boto3 client for ``service`` with :data:`CLIENT_CONFIG`.

    ``endpoint_url=None`` lets botocore honour ``AWS_ENDPOINT_URL`` / ``AWS_ENDPOINT_URL_<SERVICE>``.
    """
    kwargs: dict[str, Any] = {"config": CLIENT_CONFIG}
    if endpoint_url:
        kwargs["endpoint_url"] = endpoint_url
    if region:
        kwargs["region_name"] = region
    try:
        return TranslatingClient(sess.client(service, **kwargs))
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
        except _SDK_ERRORS as e:  # a raw boto3 client; a TranslatingClient raises atlbook errors itself
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

    sts_client = getattr(sts_client, "raw", sts_client)
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
