"""ServiceAccount tokens and RBAC authorization for the emulated API server.

What it does, like kube-apiserver's ``serviceaccount`` authenticator and ``RBAC`` authorizer:

- **Issues tokens**: ``POST /api/v1/namespaces/<ns>/serviceaccounts/<name>/token`` (the TokenRequest
  subresource) answers a ``TokenRequest`` whose ``status.token`` is a signed JWT (HS256 with a key of
  this emulator) naming the ServiceAccount and its uid; ``expirationSeconds`` is honoured (wall time,
  600 s minimum, 3600 s default).
- **Accepts tokens**: :meth:`Rbac.authenticate` maps a valid token to the user
  ``system:serviceaccount:<ns>:<name>`` with groups ``system:serviceaccounts``,
  ``system:serviceaccounts:<ns>`` and ``system:authenticated``. A token whose ServiceAccount was
  deleted (or recreated: other uid), whose signature does not verify or which expired is refused
  (``None``: the caller answers 401).
- **Authorizes** (:meth:`Rbac.authorize`) the request attributes kube-apiserver derives from the path
  and method (:func:`request_attributes`) against the stored Roles, ClusterRoles, RoleBindings and
  ClusterRoleBindings: ``apiGroups``, ``resources`` (``pods/log``, ``*/scale``, ``*``), ``resourceNames``,
  ``verbs`` (``*``), ``nonResourceURLs`` (exact or ``prefix*``, ClusterRoles bound cluster-wide only).
  The default ``system:discovery`` and ``system:public-info-viewer`` rules are built in (for
  ``system:authenticated``), so discovery works for every ServiceAccount without stored objects.
  A denied request raises :class:`~.errors.Forbidden` with the real message and details.

What it refuses to do: it only restricts ServiceAccount users. The static admin token and EKS tokens
(IAM identities, cluster creators) stay cluster-admin, as on an EKS cluster whose creator has admin
access; unauthenticated requests are left to the token authenticator (401).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
import urllib.parse
from dataclasses import dataclass
from typing import Any

from .errors import BadRequest, Forbidden, NotFound
from .models import Obj, Store, rfc3339

__all__ = [
    "DISCOVERY_URLS",
    "FORBIDDEN_MSG",
    "FORBIDDEN_NONRESOURCE_MSG",
    "SA_PREFIX",
    "Attributes",
    "Rbac",
    "UserInfo",
    "request_attributes",
    "rule_allows",
]

SA_PREFIX = "system:serviceaccount:"
FORBIDDEN_MSG = 'User "{user}" cannot {verb} resource "{resource}" in API group "{group}"{scope}'
"""The reason part of a resource 403; the message starts with ``<resource>[ "<name>"] is forbidden: ``."""
FORBIDDEN_NONRESOURCE_MSG = 'forbidden: User "{user}" cannot {verb} path "{path}"'
DISCOVERY_URLS = (
    "/api",
    "/api/*",
    "/apis",
    "/apis/*",
    "/healthz",
    "/livez",
    "/readyz",
    "/version",
    "/version/",
    "/openapi",
    "/openapi/*",
)
"""``system:discovery`` + ``system:public-info-viewer``: paths every authenticated user may GET."""

_TOKEN_DEFAULT_SECONDS = 3600
_TOKEN_MIN_SECONDS = 600
_ISSUER = "https://kubernetes.default.svc"
_READ_METHODS = {"GET": "get", "HEAD": "get", "POST": "create", "PUT": "update", "PATCH": "patch"}


@dataclass(frozen=True)
class UserInfo:
    """An authenticated user: name and groups."""

    name: str
    groups: tuple[str, ...]


@dataclass(frozen=True)
class Attributes:
    """What RBAC decides on: a resource request (group/resource/subresource/namespace/name) or a path."""

    verb: str
    resource_request: bool
    path: str
    group: str = ""
    resource: str = ""
    subresource: str = ""
    namespace: str = ""
    name: str = ""

    @property
    def full_resource(self) -> str:
        """``pods`` or ``pods/log``."""
        return f"{self.resource}/{self.subresource}" if self.subresource else self.resource


def request_attributes(method: str, path: str, query: dict[str, list[str]]) -> Attributes:
    """The RBAC attributes of one HTTP request, derived as kube-apiserver's RequestInfoFactory does."""
    method = method.upper()
    parts = [urllib.parse.unquote(p) for p in path.split("/") if p]
    verb_for_path = method.lower() if method != "HEAD" else "get"
    if len(parts) < 3 or parts[0] not in ("api", "apis") or (parts[0] == "apis" and len(parts) < 4):
        return Attributes(verb_for_path, False, path)
    rest = parts[2:] if parts[0] == "api" else parts[3:]
    group = "" if parts[0] == "api" else parts[1]
    namespace = ""
    if (
        rest[0] == "namespaces"
        and len(rest) >= 3
        and not (len(rest) == 3 and rest[2] in ("status", "finalize"))
    ):
        namespace, rest = rest[1], rest[2:]
    resource = rest[0]
    name = rest[1] if len(rest) > 1 else ""
    sub = rest[2] if len(rest) > 2 else ""
    if resource == "namespaces" and name:
        namespace = name  # a namespace is authorized in itself
    watch = (query.get("watch") or [""])[0] in ("true", "1")
    if method in ("GET", "HEAD"):
        verb = "get" if name else ("watch" if watch else "list")
        if watch and name:
            verb = "watch"
    elif method == "DELETE":
        verb = "delete" if name else "deletecollection"
    else:
        verb = _READ_METHODS.get(method, method.lower())
    return Attributes(verb, True, path, group, resource, sub, namespace, name)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _has(values: list[Any] | None, want: str) -> bool:
    return bool(values) and ("*" in values or want in values)  # type: ignore[operator]


class Rbac:
    """ServiceAccount token issuer/authenticator and RBAC authorizer over one emulator :class:`Store`."""

    def __init__(self, store: Store) -> None:
        """Bind to ``store`` (Roles, bindings and ServiceAccounts are read from it at each request)."""
        self.store = store
        self._key = secrets.token_bytes(32)

    # -- tokens ------------------------------------------------------------------------------------------
    def issue_token(self, namespace: str, name: str, body: Obj | None = None) -> Obj:
        """Answer a TokenRequest for ServiceAccount ``namespace/name``; refuses unknown accounts (404)
        and a body that is not a ``TokenRequest`` (400)."""
        sa = self.store.peek("serviceaccounts", namespace, name)
        if sa is None:
            raise NotFound.of("serviceaccounts", name)
        body = body or {}
        if body.get("kind", "TokenRequest") != "TokenRequest":
            raise BadRequest(f"expected TokenRequest, got {body.get('kind')}")
        spec = dict(body.get("spec") or {})
        seconds = int(spec.get("expirationSeconds") or _TOKEN_DEFAULT_SECONDS)
        if seconds < _TOKEN_MIN_SECONDS:
            raise BadRequest(
                "spec.expirationSeconds: Invalid value: may not specify a duration less than 10 minutes"
            )
        now = int(time.time())
        audiences = list(spec.get("audiences") or [_ISSUER])
        claims = {
            "aud": audiences,
            "exp": now + seconds,
            "iat": now,
            "iss": _ISSUER,
            "sub": f"{SA_PREFIX}{namespace}:{name}",
            "kubernetes.io": {
                "namespace": namespace,
                "serviceaccount": {"name": name, "uid": sa["metadata"]["uid"]},
            },
        }
        head = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
        payload = _b64(json.dumps(claims, separators=(",", ":")).encode())
        sig = _b64(hmac.new(self._key, f"{head}.{payload}".encode(), hashlib.sha256).digest())
        return {
            "kind": "TokenRequest",
            "apiVersion": "authentication.k8s.io/v1",
            "metadata": {"name": name, "namespace": namespace, "creationTimestamp": None},
            "spec": {"audiences": audiences, "expirationSeconds": seconds, "boundObjectRef": None},
            "status": {
                "token": f"{head}.{payload}.{sig}",
                "expirationTimestamp": rfc3339(_utc(now + seconds)),
            },
        }

    def authenticate(self, token: str) -> UserInfo | None:
        """The ServiceAccount user of ``token``, or ``None`` (not one of ours, bad signature, expired,
        account gone or recreated)."""
        pieces = token.split(".")
        if len(pieces) != 3:
            return None
        head, payload, sig = pieces
        want = _b64(hmac.new(self._key, f"{head}.{payload}".encode(), hashlib.sha256).digest())
        if not hmac.compare_digest(want, sig):
            return None
        try:
            claims = json.loads(_unb64(payload))
            ns = str(claims["kubernetes.io"]["namespace"])
            name = str(claims["kubernetes.io"]["serviceaccount"]["name"])
            uid = str(claims["kubernetes.io"]["serviceaccount"]["uid"])
            exp = int(claims["exp"])
        except (ValueError, KeyError, TypeError):
            return None
        if exp < time.time():
            return None
        sa = self.store.peek("serviceaccounts", ns, name)
        if sa is None or sa["metadata"].get("uid") != uid:
            return None
        return UserInfo(
            f"{SA_PREFIX}{ns}:{name}",
            ("system:serviceaccounts", f"system:serviceaccounts:{ns}", "system:authenticated"),
        )

    # -- authorization --------------------------------------------------------------------------------
    def authorize(self, user: UserInfo | str, method: str, path: str, query: dict[str, list[str]]) -> None:
        """Raise :class:`Forbidden` (the real Status body) when a ServiceAccount may not make this request.

        Other users (the static admin, EKS identities) are not restricted.
        """
        if isinstance(user, str) or not user.name.startswith(SA_PREFIX):
            return
        attrs = request_attributes(method, path, query)
        if self.allowed(user, attrs):
            return
        raise _forbidden(user.name, attrs)

    def allowed(self, user: UserInfo, attrs: Attributes) -> bool:
        """Whether any rule bound to ``user`` (or a built-in default rule) allows ``attrs``."""
        if not attrs.resource_request and attrs.verb == "get" and _url_allowed(DISCOVERY_URLS, attrs.path):
            return True
        for binding in self.store.iter("clusterrolebindings"):
            if _subject_matches(binding, user, None):
                role = self.store.peek("clusterroles", None, (binding.get("roleRef") or {}).get("name", ""))
                if role is not None and any(rule_allows(r, attrs) for r in role.get("rules") or []):
                    return True
        if attrs.resource_request and attrs.namespace:
            for binding in self.store.iter("rolebindings", attrs.namespace):
                if not _subject_matches(binding, user, attrs.namespace):
                    continue
                ref = binding.get("roleRef") or {}
                role = (
                    self.store.peek("clusterroles", None, ref.get("name", ""))
                    if ref.get("kind") == "ClusterRole"
                    else self.store.peek("roles", attrs.namespace, ref.get("name", ""))
                )
                if role is not None and any(
                    rule_allows(r, attrs, resources_only=True) for r in role.get("rules") or []
                ):
                    return True
        return False


def _utc(epoch: int) -> Any:
    import datetime as _dt

    return _dt.datetime.fromtimestamp(epoch, _dt.UTC)


def _subject_matches(binding: Obj, user: UserInfo, binding_ns: str | None) -> bool:
    for s in binding.get("subjects") or []:
        kind = s.get("kind")
        if kind == "User" and s.get("name") == user.name:
            return True
        if kind == "Group" and s.get("name") in user.groups:
            return True
        if kind == "ServiceAccount":
            ns = s.get("namespace") or binding_ns or ""
            if user.name == f"{SA_PREFIX}{ns}:{s.get('name')}":
                return True
    return False


def _url_allowed(patterns: tuple[str, ...] | list[str], path: str) -> bool:
    for p in patterns:
        if p == "*" or p == path or (p.endswith("*") and path.startswith(p[:-1])):
            return True
    return False


def rule_allows(rule: Obj, a: Attributes, resources_only: bool = False) -> bool:
    """Whether one PolicyRule allows ``a`` (``resources_only``: a Role's rule, no nonResourceURLs)."""
    if not _has(rule.get("verbs"), a.verb):
        return False
    if not a.resource_request:
        return not resources_only and _url_allowed(list(rule.get("nonResourceURLs") or []), a.path)
    if not _has(rule.get("apiGroups"), a.group):
        return False
    wanted = rule.get("resources") or []
    full = a.full_resource
    if not (
        "*" in wanted
        or full in wanted
        or (a.subresource and f"*/{a.subresource}" in wanted)
        or (a.subresource and f"{a.resource}/*" in wanted)
    ):
        return False
    names = rule.get("resourceNames") or []
    return not names or (bool(a.name) and a.name in names)


def _forbidden(user: str, a: Attributes) -> Forbidden:
    if not a.resource_request:
        return Forbidden(FORBIDDEN_NONRESOURCE_MSG.format(user=user, verb=a.verb, path=a.path), {})
    qual = f"{a.resource}.{a.group}" if a.group else a.resource
    subject = f'{qual} "{a.name}"' if a.name else qual
    scope = f' in the namespace "{a.namespace}"' if a.namespace else " at the cluster scope"
    reason = FORBIDDEN_MSG.format(
        user=user, verb=a.verb, resource=a.full_resource, group=a.group, scope=scope
    )
    details: dict[str, Any] = {"kind": a.resource}
    if a.name:
        details["name"] = a.name
    if a.group:
        details["group"] = a.group
    return Forbidden(f"{subject} is forbidden: {reason}", details)
