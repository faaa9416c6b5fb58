"""Kubernetes through the official client: ApiClients built from a target, errors translated, thin helpers.

Only :mod:`atlbook.clients` builds ``kubernetes.client.ApiClient`` objects: from a kubeconfig + context
(:func:`client_from_kubeconfig`) or from an EKS cluster's endpoint, CA and a bearer token
(:func:`client_from_eks`). Helpers take that ApiClient and speak plain dicts (the JSON of the objects),
so runbooks and the sandbox see the same shapes:

- :func:`get`, :func:`list`, :func:`create`, :func:`patch`, :func:`replace`, :func:`delete` over the typed
  APIs for the kinds in :data:`KINDS` (what DESIGN's stack needs);
- :func:`pod_log`, :func:`evict` (PDB-checked; a refusal is ``Throttled``), :func:`server_version`;
- :func:`apply`: create-or-patch by name — a create answered 409 means "exists" (so a create that is
  retried after a lost response is safe), an object whose desired fields already match is not patched;
- :func:`proxy_request` / :func:`proxy_get`: a request to a pod through
  ``/api/v1/namespaces/{ns}/pods/{pod}:{port}/proxy/{path}`` using ``ApiClient.call_api`` (in 37.x it
  takes an already-serialised ``(method, url, headers, body)`` from ``param_serialize`` and returns the
  raw, unread response without raising on HTTP errors).

:func:`translate` is the one table from SDK exceptions to the :class:`~atlbook.errors.K8sApiError`
family::

    ApiException 400/422, client-side pydantic validation → Invalid
    401/403 → Forbidden      404 → NotFound      409 → Conflict (exists / stale resourceVersion)
    429 → Throttled (delay = Retry-After)      5xx → Unavailable (delay = Retry-After if given)
    urllib3 connection/protocol/timeout errors, resets → Unavailable
    other ApiException (status 0: TLS/preparation) → plain K8sApiError

Every helper retries with :mod:`~atlbook.clients.retry` when the call is idempotent (reads, by-name
creates, patches, replaces with a resourceVersion, deletes by name).
"""

from __future__ import annotations

import builtins
import dataclasses
import datetime
import json
import logging
import pathlib
import re
import threading
import urllib.parse
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, Literal

import kubernetes.client
import kubernetes.config
import pydantic
import urllib3
from kubernetes.client import ApiClient
from kubernetes.client.exceptions import ApiException, ApiTypeError, ApiValueError

from atlbook import errors
from atlbook.clients import http, retry
from atlbook.clients._scrub import scrub
from atlbook.clients.http import HttpResponse

__all__ = [
    "KINDS",
    "ApplyResult",
    "HttpResponse",
    "KindInfo",
    "apply",
    "client_from_eks",
    "close",
    "client_from_kubeconfig",
    "create",
    "delete",
    "evict",
    "get",
    "guard",
    "kind_info",
    "list",
    "now_utc",
    "patch",
    "pod_log",
    "proxy_get",
    "proxy_request",
    "replace",
    "server_version",
    "translate",
]

log = logging.getLogger(__name__)

#: Default per-request timeout: (connect, read) seconds.
REQUEST_TIMEOUT: tuple[float, float] = (5.0, 60.0)


@dataclasses.dataclass(frozen=True)
class KindInfo:
    """Where a kind lives in the typed client."""

    kind: str
    api_version: str
    api: str
    """Class name in ``kubernetes.client``, e.g. ``CoreV1Api``."""
    snake: str
    """Method suffix, e.g. ``config_map`` (``read_namespaced_config_map``)."""
    namespaced: bool


def _k(kind: str, api_version: str, api: str, snake: str, namespaced: bool = True) -> tuple[str, KindInfo]:
    return kind, KindInfo(kind, api_version, api, snake, namespaced)


#: The kinds atlbook reads and writes, keyed by ``kind``.
KINDS: dict[str, KindInfo] = dict(
    [
        _k("Namespace", "v1", "CoreV1Api", "namespace", False),
        _k("Node", "v1", "CoreV1Api", "node", False),
        _k("PersistentVolume", "v1", "CoreV1Api", "persistent_volume", False),
        _k("Pod", "v1", "CoreV1Api", "pod"),
        _k("Service", "v1", "CoreV1Api", "service"),
        _k("ConfigMap", "v1", "CoreV1Api", "config_map"),
        _k("Secret", "v1", "CoreV1Api", "secret"),
        _k("ServiceAccount", "v1", "CoreV1Api", "service_account"),
        _k("PersistentVolumeClaim", "v1", "CoreV1Api", "persistent_volume_claim"),
        _k("Event", "v1", "CoreV1Api", "event"),
        _k("Endpoints", "v1", "CoreV1Api", "endpoints"),
        _k("ResourceQuota", "v1", "CoreV1Api", "resource_quota"),
        _k("LimitRange", "v1", "CoreV1Api", "limit_range"),
        _k("StatefulSet", "apps/v1", "AppsV1Api", "stateful_set"),
        _k("Deployment", "apps/v1", "AppsV1Api", "deployment"),
        _k("DaemonSet", "apps/v1", "AppsV1Api", "daemon_set"),
        _k("Ingress", "networking.k8s.io/v1", "NetworkingV1Api", "ingress"),
        _k("IngressClass", "networking.k8s.io/v1", "NetworkingV1Api", "ingress_class", False),
        _k("NetworkPolicy", "networking.k8s.io/v1", "NetworkingV1Api", "network_policy"),
        _k("PodDisruptionBudget", "policy/v1", "PolicyV1Api", "pod_disruption_budget"),
        _k("PriorityClass", "scheduling.k8s.io/v1", "SchedulingV1Api", "priority_class", False),
        _k("Role", "rbac.authorization.k8s.io/v1", "RbacAuthorizationV1Api", "role"),
        _k("RoleBinding", "rbac.authorization.k8s.io/v1", "RbacAuthorizationV1Api", "role_binding"),
        _k("ClusterRole", "rbac.authorization.k8s.io/v1", "RbacAuthorizationV1Api", "cluster_role", False),
        _k(
            "ClusterRoleBinding",
            "rbac.authorization.k8s.io/v1",
            "RbacAuthorizationV1Api",
            "cluster_role_binding",
            False,
        ),
        _k("StorageClass", "storage.k8s.io/v1", "StorageV1Api", "storage_class", False),
        _k("CSIDriver", "storage.k8s.io/v1", "StorageV1Api", "csi_driver", False),
        _k("Lease", "coordination.k8s.io/v1", "CoordinationV1Api", "lease"),
    ]
)


def kind_info(kind: str) -> KindInfo:
    """The :class:`KindInfo` of ``kind``; refuses (``ConfigError``) a kind atlbook does not handle."""
    try:
        return KINDS[kind]
    except KeyError:
        raise errors.ConfigError(
            f"kind {kind!r} is not handled by atlbook.clients.k8s (known: {', '.join(sorted(KINDS))})"
        ) from None


# --- error translation -------------------------------------------------------------------------------

_UNAVAILABLE_EXC: tuple[type[BaseException], ...] = (
    urllib3.exceptions.MaxRetryError,
    urllib3.exceptions.NewConnectionError,
    urllib3.exceptions.ProtocolError,
    urllib3.exceptions.TimeoutError,
    urllib3.exceptions.ProxyError,
    ConnectionError,
    TimeoutError,
)


def _header(headers: Any, name: str) -> str | None:
    if not headers:
        return None
    try:
        items = headers.items()
    except AttributeError:
        return None
    for key, value in items:
        if str(key).lower() == name:
            return str(value)
    return None


def _retry_after(headers: Any) -> float | None:
    raw = _header(headers, "retry-after")
    if raw is None:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        return None


def _status_message(body: str | bytes | None) -> str:
    if not body:
        return ""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    try:
        doc = json.loads(text)
    except ValueError:
        return scrub(text, 300)
    if isinstance(doc, Mapping) and doc.get("kind") == "Status":
        reason = doc.get("reason") or ""
        message = doc.get("message") or ""
        return scrub(f"{reason}: {message}".strip(": "), 500)
    return scrub(text, 300)


_HANDSHAKE = re.compile(r"Handshake status (\d{3})\b")


def _websocket_refusal(reason: str) -> tuple[int, str] | None:
    """``(status, body)`` of a refused websocket upgrade (exec/attach), which websocket-client folds
    into one message: ``Handshake status 403 Forbidden -+-+- {headers} -+-+- {body}``."""
    m = _HANDSHAKE.search(reason)
    if m is None:
        return None
    parts = reason.split(" -+-+- ")
    body = parts[2].strip() if len(parts) >= 3 else ""
    return int(m.group(1)), "" if body == "None" else body


def translate(exc: BaseException, *, operation: str) -> errors.ApiError:
    """The :class:`~atlbook.errors.K8sApiError` for a kubernetes/urllib3/pydantic exception (scrubbed)."""
    if isinstance(exc, ApiException):
        status = exc.status
        detail = _status_message(exc.body) or scrub(exc.reason or "", 300)
        refused = None if status else _websocket_refusal(str(exc.reason or ""))
        if refused is not None:  # exec/attach: the API server answered the upgrade with an error Status
            status, body = refused
            detail = _status_message(body) or f"HTTP {status} to the websocket upgrade"
        if not status:
            return errors.K8sApiError(
                f"{operation}: request failed before a response: {scrub(exc.reason or '', 300)}",
                service="k8s",
                operation=operation,
            )
        delay = _retry_after(exc.headers) if status == 429 or status >= 500 else None
        return errors.api_error(
            errors.K8sApiError,
            f"{operation}: HTTP {status}: {detail}".rstrip(": "),
            status=int(status),
            service="k8s",
            operation=operation,
            delay=delay,
        )
    if isinstance(exc, pydantic.ValidationError):
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors(include_input=False)[:5]
        )
        return errors.api_error(
            errors.K8sApiError,
            f"{operation}: rejected by client-side validation: {problems}",
            status=400,
            service="k8s",
            operation=operation,
        )
    if isinstance(exc, (ApiValueError, ApiTypeError)):
        return errors.api_error(
            errors.K8sApiError,
            f"{operation}: {scrub(exc, 300)}",
            status=400,
            service="k8s",
            operation=operation,
        )
    if isinstance(exc, _UNAVAILABLE_EXC):
        return errors.api_error(
            errors.K8sApiError,
            f"{operation}: {type(exc).__name__}: {scrub(exc, 300)}",
            status=None,
            service="k8s",
            operation=operation,
        )
    return errors.K8sApiError(
        f"{operation}: {type(exc).__name__}: {scrub(exc, 300)}", service="k8s", operation=operation
    )


_TRANSLATED: tuple[type[BaseException], ...] = (
    ApiException,
    ApiValueError,
    ApiTypeError,
    pydantic.ValidationError,
    urllib3.exceptions.HTTPError,
    ConnectionError,
    TimeoutError,
)


@contextmanager
def guard(operation: str) -> Iterator[None]:
    """Translate SDK exceptions raised inside the block (``raise ... from e``)."""
    try:
        yield
    except _TRANSLATED as e:
        raise translate(e, operation=operation) from e


# --- building ApiClients -----------------------------------------------------------------------------


def client_from_kubeconfig(path: pathlib.Path | str, context: str | None = None) -> ApiClient:
    """An ApiClient for ``context`` of kubeconfig ``path`` (no request is made).

    Refuses (``TargetError``) a kubeconfig the client cannot load (missing context, bad credentials).
    """
    try:
        loader: Any = kubernetes.config
        api: ApiClient = loader.new_client_from_config(
            config_file=str(path), context=context, persist_config=False
        )
    except (kubernetes.config.ConfigException, OSError, ValueError, TypeError) as e:
        raise errors.TargetError(
            f"cannot load kubeconfig {path} (context {context!r}): {type(e).__name__}: {scrub(e, 300)}"
        ) from e
    return api


def client_from_eks(
    endpoint: str,
    ca_data_b64: str,
    token: Callable[[], str],
    *,
    token_ttl: float = 600.0,
    clock: Callable[[], float] | None = None,
) -> ApiClient:
    """An ApiClient for an EKS cluster: endpoint + base64 CA (``describe_cluster``), bearer ``token()``.

    The token is refreshed (``token()`` called again) when it is older than ``token_ttl`` seconds — EKS
    accepts one for 15 minutes. No request is made here. CA data that is not a PEM certificate (moto
    makes one up) is ignored with a warning: TLS is then verified against the system CAs.
    """
    import base64
    import time

    now = clock or time.monotonic
    ca_pem: str | None
    try:
        ca_pem = base64.b64decode(ca_data_b64 + "=" * (-len(ca_data_b64) % 4)).decode("ascii")
    except (ValueError, UnicodeDecodeError):
        ca_pem = None
    if ca_pem is None or "-----BEGIN CERTIFICATE-----" not in ca_pem:
        # Still safe: TLS is verified against the system CAs instead, which a real EKS endpoint fails.
        log.warning("EKS certificateAuthority.data is not a base64 PEM certificate; using the system CAs")
        ca_pem = None
    config: Any = kubernetes.client.Configuration(host=endpoint, ca_cert_data=ca_pem)
    issued = [now()]
    lock = threading.Lock()
    config.api_key = {"authorization": token()}
    config.api_key_prefix = {"authorization": "Bearer"}

    def refresh(cfg: Any) -> None:
        with lock:
            if now() - issued[0] > token_ttl:
                cfg.api_key = {"authorization": token()}
                issued[0] = now()

    config.refresh_api_key_hook = refresh
    return ApiClient(configuration=config)


# --- typed CRUD as dicts -----------------------------------------------------------------------------


def close(api: ApiClient) -> None:
    """Close an ApiClient's connection pools."""
    closer: Any = api
    closer.close()


def _api(api: ApiClient, info: KindInfo) -> Any:
    return getattr(kubernetes.client, info.api)(api)


def _method(api: ApiClient, info: KindInfo, verb: str, *, all_namespaces: bool = False) -> Callable[..., Any]:
    if all_namespaces:
        name = f"{verb}_{info.snake}_for_all_namespaces"
    elif info.namespaced:
        name = f"{verb}_namespaced_{info.snake}"
    else:
        name = f"{verb}_{info.snake}"
    fn: Callable[..., Any] = getattr(_api(api, info), name)
    return fn


def _json(resp: Any) -> dict[str, Any]:
    data = resp.data if hasattr(resp, "data") else resp
    if not data:
        return {}
    doc = json.loads(data)
    return doc if isinstance(doc, dict) else {"value": doc}


def _ns_args(info: KindInfo, namespace: str | None, what: str) -> dict[str, Any]:
    if info.namespaced:
        if not namespace:
            raise errors.ConfigError(f"{info.kind} {what} needs a namespace")
        return {"namespace": namespace}
    return {}


def _do(
    operation: str,
    fn: Callable[[], Any],
    *,
    idempotent: bool,
    policy: retry.RetryPolicy | None,
) -> Any:
    def once() -> Any:
        with guard(operation):
            return fn()

    return retry.call(once, idempotent=idempotent, description=operation, policy=policy)


def get(
    api: ApiClient,
    kind: str,
    name: str,
    namespace: str | None = None,
    *,
    policy: retry.RetryPolicy | None = None,
) -> dict[str, Any]:
    """The object ``kind``/``name`` (in ``namespace`` when namespaced) as a dict; ``NotFound`` if absent."""
    info = kind_info(kind)
    read = _method(api, info, "read")
    args = _ns_args(info, namespace, "get")
    doc = _do(
        f"get {kind} {namespace + '/' if namespace and info.namespaced else ''}{name}",
        lambda: _json(read(name=name, _preload_content=False, _request_timeout=REQUEST_TIMEOUT, **args)),
        idempotent=True,
        policy=policy,
    )
    return dict(doc)


def list(  # noqa: A001 - the verb runbooks read best
    api: ApiClient,
    kind: str,
    namespace: str | None = None,
    *,
    label_selector: str | None = None,
    field_selector: str | None = None,
    policy: retry.RetryPolicy | None = None,
    page_size: int = 500,
) -> builtins.list[dict[str, Any]]:
    """Every object of ``kind`` (in ``namespace``, or all namespaces when ``None``) matching the selectors.

    Items carry ``apiVersion``/``kind`` (the API leaves them out of list items). Pages are followed.
    """
    info = kind_info(kind)
    if info.namespaced and namespace is None:
        fn = _method(api, info, "list", all_namespaces=True)
        args: dict[str, Any] = {}
    else:
        fn = _method(api, info, "list")
        args = _ns_args(info, namespace, "list")
    if label_selector:
        args["label_selector"] = label_selector
    if field_selector:
        args["field_selector"] = field_selector
    items: builtins.list[dict[str, Any]] = []
    token: str | None = None
    where = f" in {namespace}" if namespace else ""
    while True:
        page_args = dict(args, limit=page_size)
        if token:
            page_args["_continue"] = token

        def page(a: dict[str, Any] = page_args) -> dict[str, Any]:
            return _json(fn(_preload_content=False, _request_timeout=REQUEST_TIMEOUT, **a))

        doc = _do(f"list {kind}{where}", page, idempotent=True, policy=policy)
        for item in doc.get("items") or []:
            item.setdefault("apiVersion", info.api_version)
            item.setdefault("kind", info.kind)
            items.append(item)
        token = (doc.get("metadata") or {}).get("continue") or None
        if not token:
            return items


def _body_ref(obj: Mapping[str, Any]) -> tuple[KindInfo, str, str | None]:
    kind = obj.get("kind")
    meta = obj.get("metadata") or {}
    name = meta.get("name")
    if not isinstance(kind, str) or not isinstance(name, str) or not name:
        raise errors.ConfigError("a Kubernetes object needs kind and metadata.name")
    info = kind_info(kind)
    namespace = meta.get("namespace") if info.namespaced else None
    return info, name, namespace


def _describe(info: KindInfo, name: str, namespace: str | None) -> str:
    return f"{info.kind} {namespace + '/' if namespace else ''}{name}"


def create(
    api: ApiClient, obj: Mapping[str, Any], *, policy: retry.RetryPolicy | None = None
) -> dict[str, Any]:
    """Create ``obj`` (a dict with kind, metadata.name[, namespace]); ``Conflict`` if it exists already.

    Retried: a create by name is idempotent in effect, since a repeat of a create that went through
    answers 409 (callers treat ``Conflict`` as "exists"; :func:`apply` does).
    """
    info, name, namespace = _body_ref(obj)
    body = {**obj, "apiVersion": obj.get("apiVersion", info.api_version)}
    fn = _method(api, info, "create")
    args = _ns_args(info, namespace, "create")
    return dict(
        _do(
            f"create {_describe(info, name, namespace)}",
            lambda: _json(fn(body=body, _preload_content=False, _request_timeout=REQUEST_TIMEOUT, **args)),
            idempotent=True,
            policy=policy,
        )
    )


def patch(
    api: ApiClient,
    kind: str,
    name: str,
    body: Mapping[str, Any] | builtins.list[Any],
    namespace: str | None = None,
    *,
    policy: retry.RetryPolicy | None = None,
) -> dict[str, Any]:
    """Patch ``kind``/``name``: a dict is a strategic-merge patch, a list a JSON patch. Retried."""
    info = kind_info(kind)
    fn = _method(api, info, "patch")
    args = _ns_args(info, namespace, "patch")
    return dict(
        _do(
            f"patch {_describe(info, name, namespace if info.namespaced else None)}",
            lambda: _json(
                fn(name=name, body=body, _preload_content=False, _request_timeout=REQUEST_TIMEOUT, **args)
            ),
            idempotent=True,
            policy=policy,
        )
    )


def replace(
    api: ApiClient, obj: Mapping[str, Any], *, policy: retry.RetryPolicy | None = None
) -> dict[str, Any]:
    """PUT ``obj``. With ``metadata.resourceVersion`` it is a compare-and-swap: ``Conflict`` when stale.

    Retried only when a resourceVersion is set (a repeat then fails with ``Conflict`` rather than
    overwriting someone else's change).
    """
    info, name, namespace = _body_ref(obj)
    body = {**obj, "apiVersion": obj.get("apiVersion", info.api_version)}
    fn = _method(api, info, "replace")
    args = _ns_args(info, namespace, "replace")
    has_rv = bool((obj.get("metadata") or {}).get("resourceVersion"))
    return dict(
        _do(
            f"replace {_describe(info, name, namespace)}",
            lambda: _json(
                fn(name=name, body=body, _preload_content=False, _request_timeout=REQUEST_TIMEOUT, **args)
            ),
            idempotent=has_rv,
            policy=policy,
        )
    )


def delete(
    api: ApiClient,
    kind: str,
    name: str,
    namespace: str | None = None,
    *,
    missing_ok: bool = True,
    grace_period_seconds: int | None = None,
    policy: retry.RetryPolicy | None = None,
) -> bool:
    """Delete ``kind``/``name``. Returns False when it was already gone (``missing_ok``), else True."""
    info = kind_info(kind)
    fn = _method(api, info, "delete")
    args = _ns_args(info, namespace, "delete")
    if grace_period_seconds is not None:
        args["grace_period_seconds"] = grace_period_seconds
    try:
        _do(
            f"delete {_describe(info, name, namespace if info.namespaced else None)}",
            lambda: fn(name=name, _preload_content=False, _request_timeout=REQUEST_TIMEOUT, **args),
            idempotent=True,
            policy=policy,
        )
    except errors.NotFound:
        if missing_ok:
            return False
        raise
    return True


# --- apply ---------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class ApplyResult:
    """What :func:`apply` did and the object as the server returned it."""

    action: Literal["created", "patched", "unchanged"]
    object: dict[str, Any]


def _subset(desired: Any, live: Any) -> bool:
    """Whether every desired field is in ``live`` with that value (``None`` desired = absent or null)."""
    if isinstance(desired, Mapping):
        if not isinstance(live, Mapping):
            return False
        return all(
            (live.get(k) is None) if v is None else (k in live and _subset(v, live[k]))
            for k, v in desired.items()
        )
    if isinstance(desired, builtins.list):
        if not isinstance(live, builtins.list) or len(desired) != len(live):
            return False
        return all(_subset(d, v) for d, v in zip(desired, live, strict=True))
    return bool(desired == live)


def _desired(obj: Mapping[str, Any]) -> dict[str, Any]:
    """The fields :func:`apply` compares and patches: no status, no server-owned metadata.

    A Secret's ``stringData`` is compared (and patched) as the base64 ``data`` the server stores.
    """
    import base64

    meta = {
        k: v
        for k, v in (obj.get("metadata") or {}).items()
        if k in ("name", "namespace", "labels", "annotations")
    }
    out = {
        **{k: v for k, v in obj.items() if k not in ("status", "metadata", "apiVersion", "kind")},
        "metadata": meta,
    }
    if obj.get("kind") == "Secret" and isinstance(out.get("stringData"), Mapping):
        data = dict(out.get("data") or {})
        for key, value in out.pop("stringData").items():
            data[key] = base64.b64encode(str(value).encode()).decode("ascii")
        out["data"] = data
    return out


def apply(api: ApiClient, obj: Mapping[str, Any], *, policy: retry.RetryPolicy | None = None) -> ApplyResult:
    """Create ``obj`` or bring the live object up to it by name; never deletes fields.

    - absent → create (a 409 on create means it exists after all; falls through to patch);
    - present and every desired field already equal → ``unchanged`` (no mutating call);
    - otherwise a strategic-merge patch of the desired fields → ``patched``.
    """
    info, name, namespace = _body_ref(obj)
    desired = _desired(obj)
    try:
        live = get(api, info.kind, name, namespace, policy=policy)
    except errors.NotFound:
        try:
            return ApplyResult("created", create(api, obj, policy=policy))
        except errors.Conflict:
            log.info("create %s answered 409: it exists; patching instead", _describe(info, name, namespace))
            live = get(api, info.kind, name, namespace, policy=policy)
    if _subset(desired, live):
        return ApplyResult("unchanged", live)
    body = {k: v for k, v in desired.items()}
    return ApplyResult("patched", patch(api, info.kind, name, body, namespace, policy=policy))


# --- pod proxy -----------------------------------------------------------------------------------------


def _is_k8s_status(resp: HttpResponse) -> bool:
    if resp.status < 400 or "json" not in resp.headers.get("content-type", ""):
        return False
    try:
        doc = resp.json()
    except ValueError:
        return False
    return isinstance(doc, Mapping) and doc.get("kind") == "Status" and doc.get("apiVersion") == "v1"


def _bearer_configured(api: ApiClient) -> bool:
    cfg = api.configuration
    return bool(
        cfg.api_key.get("authorization") or cfg.api_key.get("BearerToken") or cfg.refresh_api_key_hook
    )


def proxy_request(
    api: ApiClient,
    method: str,
    namespace: str,
    pod: str,
    port: int,
    path: str,
    *,
    query: Mapping[str, str] | None = None,
    headers: Mapping[str, str] | None = None,
    body: Any = None,
    timeout: float | tuple[float, float] = REQUEST_TIMEOUT,
    idempotent: bool | None = None,
    retry_statuses: tuple[int, ...] = http.RETRY_STATUSES,
    policy: retry.RetryPolicy | None = None,
    resource: Literal["pods", "services"] = "pods",
) -> HttpResponse:
    """``method`` ``path`` on ``pod:port`` through the API server's proxy; returns the product's answer.

    ``resource="services"`` goes to a Service instead (``/services/{name}:{port}/proxy/``): the
    whole-cluster route when no ingress URL is reachable. A product's HTTP error comes back as an
    :class:`HttpResponse` for the caller to judge; an error from the API server itself (a ``Status``
    object: pod not found, RBAC, no endpoint) and transport failures raise the :class:`K8sApiError`
    family. Idempotent requests (default: GET/HEAD) are retried, also on ``retry_statuses``.

    Refuses an ``Authorization`` header when the API client authenticates with a bearer token: it would
    collide with the API server's own. (A real API server also strips ``Authorization`` after
    authenticating any request, so product credentials through the proxy only work where the server
    in front lets them pass — the sandbox does; use the base URL transport on a real cluster.)
    """
    verb = method.upper()
    hdrs = dict(headers or {})
    if any(k.lower() == "authorization" for k in hdrs) and _bearer_configured(api):
        raise errors.ConfigError(
            "product credentials cannot travel in the Authorization header through the API server proxy "
            "when the Kubernetes API authenticates with a bearer token; use the product base URL transport"
        )
    rel = path.lstrip("/")
    resource_path = (
        f"/api/v1/namespaces/{urllib.parse.quote(namespace, safe='')}/{resource}/"
        f"{urllib.parse.quote(pod, safe='')}:{int(port)}/proxy/{urllib.parse.quote(rel, safe='/')}"
    )
    operation = f"{verb} {resource}/{namespace}/{pod}:{port}/proxy/{rel}"
    if body is not None and not any(k.lower() == "content-type" for k in hdrs):
        hdrs["Content-Type"] = "application/json"
    hdrs.setdefault("Accept", "application/json")
    is_idempotent = idempotent if idempotent is not None else verb in ("GET", "HEAD")

    def send() -> HttpResponse:
        with guard(operation):
            m, url, h, b, post = api.param_serialize(
                verb,
                resource_path,
                query_params=builtins.list((query or {}).items()) or None,
                header_params=dict(hdrs),
                body=body,
                auth_settings=["BearerToken"],
            )
            raw: Any = api.call_api(
                m, url, header_params=h, body=b, post_params=post, _request_timeout=timeout
            )
            raw.read()
            resp = HttpResponse(
                status=int(raw.status),
                headers={str(k).lower(): str(v) for k, v in (raw.getheaders() or {}).items()},
                body=bytes(raw.data or b""),
            )
        if _is_k8s_status(resp):
            exc = ApiException(status=resp.status, reason="proxy")
            exc.body = resp.body.decode("utf-8", "replace")
            exc.headers = resp.headers
            raise translate(exc, operation=operation)
        return resp

    return http.call_with_status_retry(
        send,
        operation=operation,
        service="product",
        idempotent=is_idempotent,
        retry_statuses=retry_statuses,
        policy=policy,
    )


def proxy_get(
    api: ApiClient,
    namespace: str,
    pod: str,
    port: int,
    path: str,
    *,
    headers: Mapping[str, str] | None = None,
    query: Mapping[str, str] | None = None,
    policy: retry.RetryPolicy | None = None,
) -> HttpResponse:
    """GET ``path`` on ``pod:port`` through the pod proxy (see :func:`proxy_request`)."""
    return proxy_request(api, "GET", namespace, pod, port, path, headers=headers, query=query, policy=policy)


def pod_log(
    api: ApiClient,
    namespace: str,
    pod: str,
    *,
    container: str | None = None,
    previous: bool = False,
    tail_lines: int | None = None,
    since_seconds: int | None = None,
    policy: retry.RetryPolicy | None = None,
) -> str:
    """The text of a container's log (``previous``: the last terminated container's)."""
    core: Any = kubernetes.client.CoreV1Api(api)
    args: dict[str, Any] = {"previous": previous}
    if container:
        args["container"] = container
    if tail_lines is not None:
        args["tail_lines"] = tail_lines
    if since_seconds is not None:
        args["since_seconds"] = since_seconds

    def read() -> str:
        resp = core.read_namespaced_pod_log(
            pod, namespace, _preload_content=False, _request_timeout=REQUEST_TIMEOUT, **args
        )
        return bytes(resp.data or b"").decode("utf-8", "replace")

    text: str = _do(f"log of pod {namespace}/{pod}", read, idempotent=True, policy=policy)
    return text


def evict(
    api: ApiClient,
    namespace: str,
    pod: str,
    *,
    grace_period_seconds: int | None = None,
    policy: retry.RetryPolicy | None = None,
) -> None:
    """Evict ``pod`` through the eviction subresource (PodDisruptionBudgets apply).

    A budget that forbids it answers 429: ``Throttled`` (retried under ``policy``, then raised). Evicting
    a pod that is gone is ``NotFound``.
    """
    core: Any = kubernetes.client.CoreV1Api(api)
    body: dict[str, Any] = {
        "apiVersion": "policy/v1",
        "kind": "Eviction",
        "metadata": {"name": pod, "namespace": namespace},
    }
    if grace_period_seconds is not None:
        body["deleteOptions"] = {"gracePeriodSeconds": grace_period_seconds}
    _do(
        f"evict pod {namespace}/{pod}",
        lambda: core.create_namespaced_pod_eviction(
            pod, namespace, body, _preload_content=False, _request_timeout=REQUEST_TIMEOUT
        ),
        idempotent=True,
        policy=policy,
    )


def server_version(api: ApiClient, *, policy: retry.RetryPolicy | None = None) -> dict[str, Any]:
    """``/version`` of the API server (gitVersion, major, minor, …)."""
    version_api = kubernetes.client.VersionApi(api)
    doc = _do(
        "get /version",
        lambda: _json(version_api.get_code(_preload_content=False, _request_timeout=REQUEST_TIMEOUT)),
        idempotent=True,
        policy=policy,
    )
    return dict(doc)


def now_utc() -> str:
    """RFC 3339 UTC timestamp as Kubernetes writes them (``2026-11-26T15:00:00Z``)."""
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
