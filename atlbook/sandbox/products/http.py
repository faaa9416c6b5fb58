"""The HTTP contract of a simulated node: a request in (the emulator's ``ProxyRequest`` or anything with
``method``, ``path``, ``query``, ``headers``, ``body``), a :class:`Response` out, plus small helpers.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import parse_qs

__all__ = ["Request", "Response", "basic_auth", "header", "json_response", "query_params"]


class Request(Protocol):
    """What a node handler reads from a request (the emulator's ``ProxyRequest`` satisfies it)."""

    @property
    def method(self) -> str:
        """HTTP method."""

    @property
    def path(self) -> str:
        """Path (starting with ``/``)."""

    @property
    def query(self) -> Any:
        """Query string or mapping."""

    @property
    def headers(self) -> Any:
        """Headers (mapping or pairs)."""

    @property
    def body(self) -> Any:
        """Body bytes."""


@dataclass
class Response:
    """An HTTP answer: status, headers, body bytes."""

    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""

    def json(self) -> Any:
        """The body parsed as JSON."""
        return json.loads(self.body or b"null")


def json_response(status: int, data: Any, headers: Mapping[str, str] | None = None) -> Response:
    """A JSON response."""
    h = {"Content-Type": "application/json;charset=UTF-8"}
    h.update(headers or {})
    return Response(status, h, json.dumps(data).encode())


def header(req: Request, name: str) -> str | None:
    """A request header, case-insensitively (headers may be a dict or a list of pairs)."""
    hs = req.headers or {}
    items = hs.items() if hasattr(hs, "items") else hs
    for k, v in items:
        if str(k).lower() == name.lower():
            return str(v[0] if isinstance(v, list | tuple) else v)
    return None


def query_params(req: Request) -> dict[str, str]:
    """The query as a flat dict (first value wins); accepts a string or a mapping."""
    q = req.query
    if not q:
        return {}
    if isinstance(q, str):
        return {k: v[0] for k, v in parse_qs(q.lstrip("?")).items()}
    out = {}
    for k, v in dict(q).items():
        out[str(k)] = str(v[0] if isinstance(v, list | tuple) else v)
    return out


def basic_auth(req: Request) -> tuple[str, str] | None:
    """``(user, password)`` from an ``Authorization: Basic`` header, else ``None``.

    The Kubernetes API server drops the ``Authorization`` header before proxying to a pod (it was the
    API server's own credential), so the legacy Atlassian query parameters ``os_username`` /
    ``os_password`` are accepted too — they are what reaches a node through the pod proxy.
    """
    value = header(req, "Authorization")
    if not value or not value.lower().startswith("basic "):
        q = query_params(req)
        if q.get("os_username") and "os_password" in q:
            return q["os_username"], q["os_password"]
        return None
    try:
        user, _, password = base64.b64decode(value.split(" ", 1)[1]).decode().partition(":")
    except (ValueError, UnicodeDecodeError):
        return None
    return user, password
