"""The one error tree of atlbook.

Every failure atlbook reports is one of these. SDK exceptions (botocore, kubernetes, psycopg, urllib3)
are translated at the boundary in :mod:`atlbook.clients` and chained with ``raise ... from e``; they
never leak above it. Behavioural families are types, so callers branch on ``isinstance`` rather than on
message text: a :class:`RetryableError` may be retried after ``delay`` seconds, a
:class:`PermanentError` must not be.

::

    AtlbookError
    ├── ConfigError                 bad input: parameters, files, targets (CLI exit code 2)
    │   ├── ParameterError          a key/value in a parameters document (file, key path, value, allowed)
    │   ├── LiteralSecretError      a secret given as a value instead of a reference
    │   ├── TargetError             kubeconfig / context / AWS profile / sandbox not found
    │   └── UnknownRunbookError     no runbook by that number or name
    ├── SecretResolutionError       a secret reference could not be resolved (env, Secret, Secrets Manager)
    ├── PreflightFailed             a gate before any change failed (nothing was changed)
    ├── UpgradeBlocked              an upgrade stopped at a gate mid-way (remaining nodes untouched)
    ├── CapacityExceeded            the workload cannot be placed / budget does not fit
    ├── PlanError                   a plan cannot be applied (stale, blocked, not confirmed)
    ├── LedgerLocked                another mutating run holds the stack's ledger lock
    ├── RunbookFailed               a runbook executed and failed (CLI exit code 1)
    └── ApiError                    a remote call failed (service, operation, status)
        ├── AwsApiError
        ├── K8sApiError
        ├── ProductApiError         Jira / Confluence / Bitbucket REST
        └── DatabaseError
        (mixed in, by behaviour)
        ├── NotFound   (PermanentError)
        ├── Conflict   (PermanentError)
        ├── Forbidden  (PermanentError)
        ├── Invalid    (PermanentError)
        └── Throttled  (RetryableError)

Concrete API errors combine a service class and a behaviour, e.g. ``K8sNotFound(K8sApiError, NotFound)``;
``errors.api_error(service, status)`` picks the right one.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "ApiError",
    "AtlbookError",
    "AwsApiError",
    "CapacityExceeded",
    "ConfigError",
    "Conflict",
    "DatabaseError",
    "Forbidden",
    "Invalid",
    "K8sApiError",
    "LedgerLocked",
    "LiteralSecretError",
    "NotFound",
    "ParameterError",
    "PermanentError",
    "PlanError",
    "PreflightFailed",
    "ProductApiError",
    "RetryableError",
    "RunbookFailed",
    "SecretResolutionError",
    "TargetError",
    "Throttled",
    "Unavailable",
    "UnknownRunbookError",
    "UpgradeBlocked",
    "api_error",
]


class AtlbookError(Exception):
    """Base of every error atlbook raises on purpose."""


class RetryableError(AtlbookError):
    """A failure that may succeed if the same idempotent call is repeated after ``delay`` seconds."""

    def __init__(self, *args: Any, delay: float | None = None) -> None:
        super().__init__(*args)
        self.delay = delay


class PermanentError(AtlbookError):
    """A failure that repeating the same call will not fix."""


# --- bad input -------------------------------------------------------------------------------------


class ConfigError(PermanentError):
    """Bad input from the operator: nothing was started and nothing was changed (CLI exit code 2)."""


class ParameterError(ConfigError):
    """A parameters document is wrong at ``key`` (dotted path), in ``source`` (file or override)."""

    def __init__(
        self,
        message: str,
        *,
        source: str | None = None,
        key: str | None = None,
        value: Any = None,
        allowed: str | None = None,
        suggestion: str | None = None,
    ) -> None:
        self.source = source
        self.key = key
        self.value = value
        self.allowed = allowed
        self.suggestion = suggestion
        parts = []
        if source:
            parts.append(source)
        if key:
            parts.append(f"key '{key}'")
        head = ": ".join(parts)
        text = f"{head}: {message}" if head else message
        if allowed:
            text += f" (allowed: {allowed})"
        if suggestion:
            text += f" — did you mean '{suggestion}'?"
        super().__init__(text)


class LiteralSecretError(ParameterError):
    """A password/token was given as a literal value; it must be a reference (env:, k8s-secret:, ...)."""


class TargetError(ConfigError):
    """The target cannot be reached as described: missing kubeconfig, context, AWS profile or sandbox."""


class UnknownRunbookError(ConfigError):
    """No runbook matches the number or name given."""


# --- workflow outcomes -----------------------------------------------------------------------------


class SecretResolutionError(PermanentError):
    """A secret reference could not be resolved. The message names the reference, never a value."""


class PreflightFailed(PermanentError):
    """A preflight gate failed; nothing was changed."""


class UpgradeBlocked(PermanentError):
    """An upgrade stopped at a gate mid-way; remaining nodes are untouched and still serving."""


class CapacityExceeded(PermanentError):
    """The workload cannot be placed on the nodes, or a budget (e.g. DB connections) does not fit."""


class PlanError(PermanentError):
    """A plan cannot be applied: blocked, stale, or not confirmed."""


class LedgerLocked(PermanentError):
    """Another mutating run holds the stack's ledger lock (``holder`` since ``since``)."""

    def __init__(self, message: str, *, holder: str | None = None, since: str | None = None) -> None:
        super().__init__(message)
        self.holder = holder
        self.since = since


class RunbookFailed(AtlbookError):
    """A runbook executed and failed; its record was still written (CLI exit code 1)."""


# --- remote calls ----------------------------------------------------------------------------------


class ApiError(AtlbookError):
    """A remote call failed. ``service`` (e.g. 'eks', 'k8s', 'jira'), ``operation``, HTTP ``status``."""

    def __init__(
        self,
        message: str,
        *,
        service: str | None = None,
        operation: str | None = None,
        status: int | None = None,
        delay: float | None = None,
    ) -> None:
        super().__init__(message)
        self.service = service
        self.operation = operation
        self.status = status
        self.delay = delay


class AwsApiError(ApiError):
    """An AWS API call failed (translated from botocore)."""


class K8sApiError(ApiError):
    """A Kubernetes API call failed (translated from kubernetes.client ApiException / urllib3)."""


class ProductApiError(ApiError):
    """A Jira / Confluence / Bitbucket REST call failed."""


class DatabaseError(ApiError):
    """A PostgreSQL query or connection failed (translated from psycopg)."""


class NotFound(PermanentError):
    """Behaviour: the object does not exist."""


class Conflict(PermanentError):
    """Behaviour: the object exists already or was changed concurrently (stale resourceVersion)."""


class Forbidden(PermanentError):
    """Behaviour: the credentials are not allowed to do this (401/403)."""


class Invalid(PermanentError):
    """Behaviour: the request was rejected as invalid (400/422)."""


class Throttled(RetryableError):
    """Behaviour: rate limited (429) — retry after ``delay`` (Retry-After) seconds."""


class Unavailable(RetryableError):
    """Behaviour: transient server or network failure (5xx, reset, timeout)."""


_BEHAVIOUR_BY_STATUS: dict[int, type[AtlbookError]] = {
    400: Invalid,
    401: Forbidden,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    422: Invalid,
    429: Throttled,
}

_CLASS_CACHE: dict[tuple[type[ApiError], type[AtlbookError]], type[ApiError]] = {}


def api_error(
    base: type[ApiError],
    message: str,
    *,
    status: int | None,
    service: str | None = None,
    operation: str | None = None,
    delay: float | None = None,
) -> ApiError:
    """Build the error for a failed call: ``base`` (service family) combined with the behaviour of ``status``.

    Statuses >= 500 and ``None`` (connection failures) are :class:`Unavailable`; unknown 4xx stay plain
    ``base`` errors (not retryable).
    """
    behaviour: type[AtlbookError] | None
    if status is None or status >= 500:
        behaviour = Unavailable
    else:
        behaviour = _BEHAVIOUR_BY_STATUS.get(status)
    if behaviour is None:
        return base(message, service=service, operation=operation, status=status, delay=delay)
    key = (base, behaviour)
    cls = _CLASS_CACHE.get(key)
    if cls is None:
        cls = type(f"{base.__name__.removesuffix('Error')}{behaviour.__name__}", (base, behaviour), {})
        _CLASS_CACHE[key] = cls
    err = cls(message, service=service, operation=operation, status=status, delay=delay)
    return err
