"""Errors of the emulated API server, each with its wire form: a ``v1.Status`` body.

Shaped like kube-apiserver's ``k8s.io/apimachinery/pkg/api/errors``: ``code`` and ``reason`` sit on the
class, ``message`` comes from one of the named templates below (tests import them, the way moto's
tests import ``CLUSTER_EXISTS_MSG``).
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "ALREADY_EXISTS_MSG",
    "CONFLICT_MSG",
    "EVICTION_PDB_CAUSE_MSG",
    "EVICTION_PDB_MSG",
    "FIELD_LABEL_MSG",
    "FORBIDDEN_TERMINATING_NS_MSG",
    "INVALID_MSG",
    "NOT_FOUND_MSG",
    "TOO_OLD_RV_MSG",
    "AlreadyExists",
    "BadRequest",
    "Conflict",
    "Expired",
    "Forbidden",
    "Invalid",
    "KubeApiError",
    "MethodNotAllowed",
    "NotFound",
    "ServiceUnavailable",
    "TooManyRequests",
    "Unauthorized",
    "UnsupportedMediaType",
    "status_body",
]

NOT_FOUND_MSG = '{resource} "{name}" not found'
ALREADY_EXISTS_MSG = '{resource} "{name}" already exists'
CONFLICT_MSG = (
    'Operation cannot be fulfilled on {resource} "{name}": the object has been modified; '
    "please apply your changes to the latest version and try again"
)
INVALID_MSG = '{kind} "{name}" is invalid: {causes}'
EVICTION_PDB_MSG = "Cannot evict pod as it would violate the pod's disruption budget."
EVICTION_PDB_CAUSE_MSG = (
    "The disruption budget {pdb} needs {desired} healthy pods and has {current} currently"
)
FORBIDDEN_TERMINATING_NS_MSG = (
    '{resource} "{name}" is forbidden: unable to create new content in namespace {namespace} '
    "because it is being terminated"
)
TOO_OLD_RV_MSG = "too old resource version: {requested} ({oldest})"
FIELD_LABEL_MSG = "field label not supported: {label}"


def status_body(
    code: int, reason: str, message: str, details: dict[str, Any] | None = None
) -> dict[str, Any]:
    """A ``v1.Status`` failure (or success for 2xx) body as kube-apiserver writes it."""
    body: dict[str, Any] = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success" if code < 300 else "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }
    if details:
        body["details"] = details
    if code < 300:
        body.pop("reason")
        body.pop("message")
    return body


class KubeApiError(Exception):
    """An API error with its HTTP code, Status reason and optional details."""

    code = 500
    reason = "InternalError"

    def __init__(self, message: str, details: dict[str, Any] | None = None) -> None:
        """Carry ``message`` (already formatted from a template) and Status ``details``."""
        super().__init__(message)
        self.message = message
        self.details = details or {}

    def body(self) -> dict[str, Any]:
        """The ``v1.Status`` wire form of this error."""
        return status_body(self.code, self.reason, self.message, self.details)


def _details(resource: str, name: str, group: str = "") -> dict[str, Any]:
    d: dict[str, Any] = {"name": name, "kind": resource}
    if group:
        d["group"] = group
    return d


class NotFound(KubeApiError):
    """404: the object (or namespace) does not exist."""

    code = 404
    reason = "NotFound"

    @classmethod
    def of(cls, resource: str, name: str, group: str = "") -> NotFound:
        """The error for ``resource`` (plural) ``name``."""
        return cls(
            NOT_FOUND_MSG.format(resource=_qual(resource, group), name=name), _details(resource, name, group)
        )


class AlreadyExists(KubeApiError):
    """409 AlreadyExists on create."""

    code = 409
    reason = "AlreadyExists"

    @classmethod
    def of(cls, resource: str, name: str, group: str = "") -> AlreadyExists:
        """The error for ``resource`` (plural) ``name``."""
        return cls(
            ALREADY_EXISTS_MSG.format(resource=_qual(resource, group), name=name),
            _details(resource, name, group),
        )


class Conflict(KubeApiError):
    """409 Conflict: stale resourceVersion (optimistic concurrency) or a conflicting operation."""

    code = 409
    reason = "Conflict"

    @classmethod
    def of(cls, resource: str, name: str, group: str = "") -> Conflict:
        """The stale-resourceVersion error for ``resource`` ``name``."""
        return cls(
            CONFLICT_MSG.format(resource=_qual(resource, group), name=name), _details(resource, name, group)
        )


class Invalid(KubeApiError):
    """422 Invalid: the object fails validation; ``causes`` are (field, reason, message) triples."""

    code = 422
    reason = "Invalid"

    @classmethod
    def of(cls, kind: str, name: str, causes: list[tuple[str, str, str]], group: str = "") -> Invalid:
        """The error for ``kind`` ``name`` with field causes, worded like field.ErrorList."""
        text = ", ".join(f"{f}: {m}" for f, _r, m in causes)
        if len(causes) > 1:
            text = "[" + text + "]"
        details: dict[str, Any] = {"name": name, "kind": kind}
        if group:
            details["group"] = group
        details["causes"] = [{"reason": r, "message": m, "field": f} for f, r, m in causes]
        return cls(INVALID_MSG.format(kind=kind, name=name, causes=text), details)


class BadRequest(KubeApiError):
    """400 BadRequest: malformed body, patch, selector or parameter."""

    code = 400
    reason = "BadRequest"


class Unauthorized(KubeApiError):
    """401 Unauthorized: missing or rejected bearer token."""

    code = 401
    reason = "Unauthorized"


class Forbidden(KubeApiError):
    """403 Forbidden: admission refused (terminating namespace, quota, unknown PriorityClass)."""

    code = 403
    reason = "Forbidden"


class MethodNotAllowed(KubeApiError):
    """405 MethodNotAllowed: the verb is not supported on this resource."""

    code = 405
    reason = "MethodNotAllowed"


class Expired(KubeApiError):
    """410 Expired: a watch asked for a resourceVersion older than the kept history."""

    code = 410
    reason = "Expired"


class UnsupportedMediaType(KubeApiError):
    """415 UnsupportedMediaType: a patch content type the server does not know."""

    code = 415
    reason = "UnsupportedMediaType"


class TooManyRequests(KubeApiError):
    """429 TooManyRequests: e.g. an eviction a PodDisruptionBudget does not allow."""

    code = 429
    reason = "TooManyRequests"


class ServiceUnavailable(KubeApiError):
    """503 ServiceUnavailable: e.g. a pod proxy with no backend."""

    code = 503
    reason = "ServiceUnavailable"


def _qual(resource: str, group: str) -> str:
    return f"{resource}.{group}" if group else resource
