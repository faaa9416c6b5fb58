"""The types the simulated stack plugs into the emulator with (see HACKING.md "Sandbox contract")."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "ApiRequest",
    "AuditEntry",
    "LogSource",
    "MemoryUsageHook",
    "PodListener",
    "ProxyHandler",
    "ProxyRequest",
    "ProxyResolver",
    "ProxyResponse",
    "ReadinessHook",
    "RequestInterceptor",
    "RequestObserver",
    "TokenAuthenticator",
]


@dataclass(frozen=True)
class ProxyRequest:
    """A request forwarded through ``pods/<name>:<port>/proxy/<path>``; ``path`` starts with ``/``."""

    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes


@dataclass(frozen=True)
class ProxyResponse:
    """What a proxy handler (or a request interceptor) answers."""

    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


@dataclass(frozen=True)
class ApiRequest:
    """An API request as the interceptor sees it (before routing); ``user`` from the authenticator."""

    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes
    user: str


@dataclass(frozen=True)
class AuditEntry:
    """One served request, for observers (the audit log)."""

    verb: str
    method: str
    path: str
    user: str
    status: int
    resource: str
    namespace: str
    name: str
    subresource: str
    timestamp: str
    extra: dict[str, Any] = field(default_factory=dict)


ProxyHandler = Callable[[ProxyRequest], ProxyResponse]
ProxyResolver = Callable[[str, str, int], ProxyHandler | None]
ReadinessHook = Callable[[dict[str, Any]], bool | None]
LogSource = Callable[[dict[str, Any], str, bool], list[str] | None]
MemoryUsageHook = Callable[[dict[str, Any], str], int | None]
PodListener = Callable[[dict[str, Any]], object]
RequestObserver = Callable[[AuditEntry], None]
RequestInterceptor = Callable[[ApiRequest], ProxyResponse | None]
TokenAuthenticator = Callable[[str], str | None]
