"""Plain HTTP(S) to a product base URL (whole-cluster calls through the ingress), built from here only.

:class:`HttpClient` wraps one lazily built ``urllib3.PoolManager``. Like the pod proxy in
:mod:`atlbook.clients.k8s` it returns the product's answer (any HTTP status) as an :class:`HttpResponse`
for the caller (``atlbook.products``) to judge, and raises only for transport failures, translated
into :class:`~atlbook.errors.ProductApiError` + ``Unavailable``. Idempotent requests answered 429 / 500 /
502 / 503 / 504 are retried under the :mod:`~atlbook.clients.retry` policy (Retry-After honoured); after the
last attempt the last answer is returned.
"""

from __future__ import annotations

import dataclasses
import json
import threading
import urllib.parse
from collections.abc import Callable, Mapping
from typing import Any

import urllib3

from atlbook import errors
from atlbook.clients import retry
from atlbook.clients._scrub import scrub

__all__ = ["RETRY_STATUSES", "HttpClient", "HttpResponse", "call_with_status_retry", "retry_after"]

#: Answers worth asking again for an idempotent request (rate limit, server error, gateway, unavailable).
RETRY_STATUSES: tuple[int, ...] = (429, 500, 502, 503, 504)


@dataclasses.dataclass(frozen=True)
class HttpResponse:
    """A product's HTTP answer (any status)."""

    status: int
    headers: dict[str, str]
    """Header names lower-cased."""
    body: bytes

    def json(self) -> Any:
        """The body decoded as JSON (``None`` when empty); ``ValueError`` when it is not JSON."""
        return json.loads(self.body) if self.body else None


def retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds from a ``Retry-After`` header (numbers only), else ``None``."""
    raw = next((v for k, v in headers.items() if k.lower() == "retry-after"), None)
    if raw is None:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        return None


def call_with_status_retry(
    send: Callable[[], HttpResponse],
    *,
    operation: str,
    service: str,
    idempotent: bool,
    retry_statuses: tuple[int, ...] = RETRY_STATUSES,
    policy: retry.RetryPolicy | None = None,
) -> HttpResponse:
    """``send()`` under the retry policy, also retrying answers in ``retry_statuses`` when idempotent.

    Returns the last answer when retries run out (the caller judges it); transport errors raised by
    ``send`` (already translated) propagate after the policy gives up.
    """
    last: list[HttpResponse] = []

    def once() -> HttpResponse:
        resp = send()
        if idempotent and resp.status in retry_statuses:
            last[:] = [resp]
            raise errors.api_error(
                errors.ProductApiError,
                f"{operation}: HTTP {resp.status}",
                status=resp.status if resp.status == 429 else 503,
                service=service,
                operation=operation,
                delay=retry_after(resp.headers),
            )
        return resp

    try:
        return retry.call(once, idempotent=idempotent, description=operation, policy=policy)
    except errors.ProductApiError:
        if last:
            return last[0]
        raise


class HttpClient:
    """Requests to ``base_url`` (e.g. ``https://jira.example.com`` or ``http://host/jira``).

    ``verify``: verify TLS (default); ``ca_file``: extra CA bundle. Nothing is built until the first
    request. Refuses (``ConfigError``) a base URL that is not http(s).
    """

    def __init__(
        self,
        base_url: str,
        *,
        verify: bool = True,
        ca_file: str | None = None,
        timeout: tuple[float, float] = (5.0, 60.0),
        service: str = "product",
        policy: retry.RetryPolicy | None = None,
    ) -> None:
        parsed = urllib.parse.urlparse(base_url)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise errors.ConfigError(f"product base URL must be http(s)://host[/path], got {base_url!r}")
        self.base_url = base_url.rstrip("/")
        self.verify = verify
        self.ca_file = ca_file
        self.timeout = timeout
        self.service = service
        self.policy = policy
        self._pool: urllib3.PoolManager | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"HttpClient({self.base_url!r})"

    def _manager(self) -> urllib3.PoolManager:
        with self._lock:
            if self._pool is None:
                kwargs: dict[str, Any] = {"retries": False}
                if self.base_url.startswith("https"):
                    kwargs["cert_reqs"] = "CERT_REQUIRED" if self.verify else "CERT_NONE"
                    if self.ca_file:
                        kwargs["ca_certs"] = self.ca_file
                self._pool = urllib3.PoolManager(**kwargs)
            return self._pool

    def request(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        body: Any = None,
        idempotent: bool | None = None,
        retry_statuses: tuple[int, ...] = RETRY_STATUSES,
    ) -> HttpResponse:
        """``method`` ``base_url + path``; JSON-encodes a non-bytes ``body``. See the module docstring."""
        verb = method.upper()
        url = self.base_url + "/" + path.lstrip("/")
        if query:
            url += "?" + urllib.parse.urlencode(dict(query))
        hdrs = {"Accept": "application/json", **dict(headers or {})}
        data: bytes | None = None
        if body is not None:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            hdrs.setdefault("Content-Type", "application/json")
        operation = f"{verb} {urllib.parse.urlparse(url).path}"
        is_idempotent = idempotent if idempotent is not None else verb in ("GET", "HEAD")

        def send() -> HttpResponse:
            try:
                raw = self._manager().request(
                    verb,
                    url,
                    body=data,
                    headers=hdrs,
                    timeout=urllib3.Timeout(connect=self.timeout[0], read=self.timeout[1]),
                )
            except (urllib3.exceptions.HTTPError, OSError) as e:
                raise errors.api_error(
                    errors.ProductApiError,
                    f"{operation}: {type(e).__name__}: {scrub(e, 300)}",
                    status=None,
                    service=self.service,
                    operation=operation,
                ) from e
            return HttpResponse(
                status=int(raw.status),
                headers={str(k).lower(): str(v) for k, v in raw.headers.items()},
                body=bytes(raw.data or b""),
            )

        return call_with_status_retry(
            send,
            operation=operation,
            service=self.service,
            idempotent=is_idempotent,
            retry_statuses=retry_statuses,
            policy=self.policy,
        )

    def close(self) -> None:
        """Drop pooled connections."""
        with self._lock:
            if self._pool is not None:
                self._pool.clear()
                self._pool = None
