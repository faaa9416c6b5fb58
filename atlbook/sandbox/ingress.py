"""A sticky "ingress" in front of the simulated products, for load generators and whole-cluster calls.

``http://127.0.0.1:<port>/<namespace>/<service>/<path>`` goes to one Ready endpoint of the Service
``<service>`` (its selector's pods that are Ready, not terminating, and backed by a simulated node),
pinned by the cookie :data:`COOKIE` (as ingress-nginx does with session affinity). Any other path is
routed like ingress-nginx by the cluster's Ingress objects: the rule whose host matches the ``Host``
header (any host when it is an IP or ``localhost``) and whose ``Prefix`` path is the longest match picks
the Service; the full path goes upstream (products serve under their context path) and the cookie is
the Ingress's ``nginx.ingress.kubernetes.io/session-cookie-name``. When the pinned pod
leaves the Ready endpoints, the request is re-pinned to another one and the answer sets the new cookie;
with no Ready endpoint the answer is 503. The answer names the serving pod in ``X-Atlbook-Upstream``.

Loopback only. In-process callers can use :meth:`StickyIngress.request` directly.
"""

from __future__ import annotations

import hashlib
import http.cookies
import http.server
import threading
import urllib.parse
from dataclasses import dataclass
from typing import Any

from atlbook.sandbox.products.http import Response
from atlbook.sandbox.products.registry import SimulatedProducts

__all__ = ["COOKIE", "IngressRequest", "StickyIngress"]

COOKIE = "INGRESSCOOKIE"
"""Session-affinity cookie name (ingress-nginx's default)."""


@dataclass(frozen=True)
class IngressRequest:
    """A request as a product node sees it."""

    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes


def _ready(pod: dict[str, Any]) -> bool:
    if (pod.get("metadata") or {}).get("deletionTimestamp"):
        return False
    for c in (pod.get("status") or {}).get("conditions") or []:
        if c.get("type") == "Ready":
            return bool(c.get("status") == "True")
    return False


def _matches(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


class StickyIngress:
    """Cookie-pinned routing to the Ready endpoints of a product Service."""

    def __init__(
        self, store: Any, products: SimulatedProducts, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        self.store = store
        self.products = products
        self.host = host
        self._port = port
        self._server: http.server.ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- routing ---------------------------------------------------------------------------------------

    def endpoints(self, namespace: str, service: str) -> list[str]:
        """Names of the Ready pods behind ``service`` that a simulated node backs, sorted."""
        svc = self.store.peek("Service", namespace, service)
        if svc is None:
            return []
        selector = (svc.get("spec") or {}).get("selector") or {}
        out = []
        for pod in self.store.iter("Pod", namespace):
            labels = (pod.get("metadata") or {}).get("labels") or {}
            name = pod["metadata"]["name"]
            if _matches(selector, labels) and _ready(pod) and self.products.node(namespace, name) is not None:
                out.append(name)
        return sorted(out)

    @staticmethod
    def cookie_value(pod: str) -> str:
        """The cookie value pinning ``pod``."""
        return hashlib.sha1(pod.encode()).hexdigest()[:16]  # noqa: S324 - an opaque id, not security

    def route_ingress(self, host: str | None, path: str) -> tuple[str, str, str] | None:
        """``(namespace, service, cookie name)`` of the Ingress rule for ``host`` + ``path``, or ``None``."""
        bare = (host or "").split(":", 1)[0].lower()
        any_host = not bare or bare in ("localhost", "127.0.0.1") or bare.replace(".", "").isdigit()
        best: tuple[int, str, str, str] | None = None
        for ing in self.store.iter("Ingress"):
            meta = ing.get("metadata") or {}
            cookie = (meta.get("annotations") or {}).get(
                "nginx.ingress.kubernetes.io/session-cookie-name", COOKIE
            )
            for rule in (ing.get("spec") or {}).get("rules") or []:
                if not any_host and rule.get("host") and rule["host"].lower() != bare:
                    continue
                for p in (rule.get("http") or {}).get("paths") or []:
                    prefix = "/" + str(p.get("path") or "/").strip("/")
                    if not (path == prefix or path.startswith(prefix.rstrip("/") + "/")):
                        continue
                    svc = ((p.get("backend") or {}).get("service") or {}).get("name")
                    if svc and (best is None or len(prefix) > best[0]):
                        best = (len(prefix), str(meta.get("namespace", "default")), str(svc), str(cookie))
        return None if best is None else best[1:]

    def request(
        self,
        namespace: str,
        service: str,
        req: IngressRequest,
        cookie: str | None = None,
        cookie_name: str = COOKIE,
    ) -> tuple[Response, str | None]:
        """Route one request; returns the answer and the cookie value now pinning the client."""
        pods = self.endpoints(namespace, service)
        if not pods:
            return Response(503, {"Content-Type": "text/plain"}, b"503 Service Temporarily Unavailable"), None
        by_cookie = {self.cookie_value(p): p for p in pods}
        pod = by_cookie.get(cookie or "")
        if pod is None:
            seed = int(hashlib.sha1((cookie or req.path).encode()).hexdigest()[:8], 16)  # noqa: S324
            pod = pods[seed % len(pods)]
        node = self.products.node(namespace, pod)
        if node is None:
            return Response(502, {"Content-Type": "text/plain"}, b"502 Bad Gateway"), None
        resp = node.handle(req)
        headers = dict(resp.headers)
        headers["X-Atlbook-Upstream"] = pod
        value = self.cookie_value(pod)
        if value != cookie:
            headers["Set-Cookie"] = f"{cookie_name}={value}; Path=/; HttpOnly"
        return Response(resp.status, headers, resp.body), value

    # --- HTTP server -------------------------------------------------------------------------------------

    def start(self) -> None:
        """Serve on the loopback port in a daemon thread."""
        if self._server is not None:
            return
        ingress = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body go out in two writes; with Nagle on, the body waits for the client's
            # delayed ACK (~40 ms on Linux) and every request gets that floor of latency.
            disable_nagle_algorithm = True

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
                """Silent."""

            def _serve(self) -> None:
                url = urllib.parse.urlsplit(self.path)
                parts = url.path.split("/", 3)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                jar = http.cookies.SimpleCookie(self.headers.get("Cookie") or "")
                headers = {k: v for k, v in self.headers.items()}
                direct = len(parts) >= 3 and ingress.store.peek("Service", parts[1], parts[2]) is not None
                routed = None if direct else ingress.route_ingress(self.headers.get("Host"), url.path)
                if direct:
                    upstream = "/" + (parts[3] if len(parts) > 3 else "")
                    req = IngressRequest(self.command, upstream, url.query, headers, body)
                    sent = jar[COOKIE].value if COOKIE in jar else None
                    resp, _ = ingress.request(parts[1], parts[2], req, sent)
                elif routed is not None:
                    ns, svc, cookie_name = routed
                    req = IngressRequest(self.command, url.path, url.query, headers, body)
                    sent = jar[cookie_name].value if cookie_name in jar else None
                    resp, _ = ingress.request(ns, svc, req, sent, cookie_name)
                else:
                    resp = Response(
                        404, {"Content-Type": "text/plain"}, b"404 Not Found (no Service or Ingress rule)"
                    )
                self.send_response(resp.status)
                for k, v in resp.headers.items():
                    if k.lower() not in ("content-length", "connection"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(resp.body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(resp.body)

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = _serve  # noqa: N815

        self._server = http.server.ThreadingHTTPServer((self.host, self._port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="atlbook-ingress", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop serving."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        assert self._server is not None, "start() first"
        return f"http://{self.host}:{self._server.server_address[1]}"

    def base_url(self, namespace: str, service: str) -> str:
        """The product base URL through the ingress."""
        return f"{self.url}/{namespace}/{service}"
