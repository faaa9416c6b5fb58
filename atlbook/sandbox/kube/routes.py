"""The wire: HTTP routing and response encoding of the emulated API server.

Paths served (namespaced resources also under ``/namespaces/<ns>/``):
``/version[/]``, ``/api``, ``/api/v1``, ``/apis``, ``/apis/<g>``, ``/apis/<g>/<v>``,
``/{api/v1|apis/<g>/<v>}/<plural>[/<name>[/<subresource>[/<path>]]]``, ``/healthz|livez|readyz``,
``POST /sandbox-api/reset``. Verbs map like kube-apiserver's (GET list/get/watch, POST create,
PUT update, PATCH patch, DELETE delete/deletecollection); every error leaves as a ``v1.Status``.
Responses are JSON (``Table`` when asked with ``as=Table``), logs ``text/plain``, watches chunked JSON
lines, ``pods/exec`` a WebSocket upgrade (:mod:`.exec`). Request bodies may be JSON or YAML.
"""

from __future__ import annotations

import json
import queue
import socket
import time
import traceback
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

import yaml

from . import exec as pod_exec
from . import resources as res
from .errors import (
    BadRequest,
    Expired,
    Invalid,
    KubeApiError,
    MethodNotAllowed,
    NotFound,
    ServiceUnavailable,
    Unauthorized,
    UnsupportedMediaType,
    status_body,
)
from .hooks import ApiRequest, AuditEntry, ProxyRequest, ProxyResponse
from .models import RETURNS_DELETED_OBJECT, Obj, deep_copy, rfc3339
from .patch import json_patch, merge_patch, removal_patch, strategic_merge_patch
from .selectors import selector_to_string
from .tables import to_table

if TYPE_CHECKING:
    from .emulator import KubeEmulator

__all__ = ["ApiServer", "Handler", "Route", "parse_route"]

_JSON = "application/json"


class Route:
    """A parsed API path: resource type, namespace, name, subresource and the rest (proxy path)."""

    def __init__(
        self, rt: res.ResourceType, namespace: str | None, name: str | None, sub: str | None, rest: str
    ) -> None:
        """Hold the parts of one resource path."""
        self.rt, self.namespace, self.name, self.sub, self.rest = rt, namespace, name, sub, rest


def parse_route(parts: list[str]) -> Route | None:
    """Parse resource path segments (after ``api/v1`` or ``apis/g/v``); ``None`` when it is not a resource.

    Raises :class:`NotFound` for an unknown resource plural.
    """
    if parts[0] == "api":
        group, version, rest = "", parts[1], parts[2:]
    else:
        group, version, rest = parts[1], parts[2], parts[3:]
    if not rest:
        return None
    ns: str | None = None
    if (
        rest[0] == "namespaces"
        and len(rest) >= 3
        and not (len(rest) == 3 and rest[2] in ("status", "finalize"))
    ):
        ns, rest = rest[1], rest[2:]
    rt = res.find(group, version, rest[0])
    if rt is None:
        raise NotFound("the server could not find the requested resource", {})
    if ns is not None and not rt.namespaced:
        raise NotFound("the server could not find the requested resource", {})
    name = rest[1] if len(rest) > 1 else None
    sub = rest[2] if len(rest) > 2 else None
    tail = "/".join(rest[3:])
    return Route(rt, ns, name, sub, tail)


class ApiServer(ThreadingHTTPServer):
    """A threaded HTTP server bound to one :class:`KubeEmulator`."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Remember an unexpected connection error instead of printing it (clients drop connections)."""
        import traceback

        self.emu.last_connection_error = traceback.format_exc()

    def __init__(self, emu: KubeEmulator, host: str, port: int) -> None:
        """Bind ``host:port`` (port 0 = any free port); refuses non-loopback hosts (``ValueError``)."""
        if host not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError(f"the emulator binds loopback only, not {host!r}")
        self.emu = emu
        super().__init__((host, port), Handler)


class Handler(BaseHTTPRequestHandler):
    """One HTTP/1.1 connection (keep-alive) of the emulated API server."""

    protocol_version = "HTTP/1.1"
    server: ApiServer

    def setup(self) -> None:
        """Set TCP_NODELAY on the connection (watch chunks and small answers must not wait for ACKs)."""
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        """Silence the default stderr access log (observers get every request instead)."""

    def do_GET(self) -> None:  # noqa: N802
        """Serve GET."""
        self._serve("GET")

    def do_POST(self) -> None:  # noqa: N802
        """Serve POST."""
        self._serve("POST")

    def do_PUT(self) -> None:  # noqa: N802
        """Serve PUT."""
        self._serve("PUT")

    def do_PATCH(self) -> None:  # noqa: N802
        """Serve PATCH."""
        self._serve("PATCH")

    def do_DELETE(self) -> None:  # noqa: N802
        """Serve DELETE."""
        self._serve("DELETE")

    def do_HEAD(self) -> None:  # noqa: N802
        """Serve HEAD (as GET)."""
        self._serve("GET")

    # -- plumbing ------------------------------------------------------------------------------------
    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            out = b""
            while True:
                size = int(self.rfile.readline().strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    return out
                out += self.rfile.read(size)
                self.rfile.readline()
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def _send(
        self, status: int, body: bytes, ctype: str = _JSON, headers: dict[str, str] | None = None
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Audit-Id", str(self.server.emu.store.resource_version))
        for k, v in (headers or {}).items():
            if k.lower() not in ("content-length", "transfer-encoding", "connection", "content-type"):
                self.send_header(k, v)
        # headers and body leave in one write: two small writes on a keep-alive connection meet
        # Nagle + delayed ACK and cost ~40 ms per request
        buffer: list[bytes] = getattr(self, "_headers_buffer")  # noqa: B009 - BaseHTTPRequestHandler's
        buffer.append(b"\r\n")
        if self.command != "HEAD":
            buffer.append(body)
        self._status = status
        self._observe_once()  # before the client sees the answer: observers are never behind the client
        self.flush_headers()

    def _send_json(self, status: int, obj: Any) -> None:
        self._send(status, json.dumps(obj, separators=(",", ":")).encode())

    def _serve(self, method: str) -> None:
        emu = self.server.emu
        self._status = 0
        self._observed = False
        self._method = method
        self._path = urllib.parse.urlsplit(self.path).path
        self.user = "system:anonymous"
        self._principal: Any = "system:anonymous"
        self._audit: dict[str, str] = {
            "verb": method.lower(),
            "resource": "",
            "namespace": "",
            "name": "",
            "sub": "",
        }
        url = urllib.parse.urlsplit(self.path)
        path = url.path
        self.query = urllib.parse.parse_qs(url.query, keep_blank_values=True)
        self.raw_query = url.query
        user = "system:anonymous"
        try:
            body = self._read_body()
            auth = self.headers.get("Authorization", "")
            token = auth[7:].strip() if auth.lower().startswith("bearer ") else ""
            # -- authentication and RBAC (atlbook.sandbox.kube.rbac): ServiceAccount tokens first --
            account = emu.rbac.authenticate(token) if token else None
            if account is not None:
                user = account.name
            elif emu.token_authenticator is not None:
                who = emu.token_authenticator(token) if token else None
                if who is None:
                    raise Unauthorized("Unauthorized")
                user = who
            elif token:
                user = "kubernetes-admin"
            self.user = user
            self._principal = account or user
            emu.rbac.authorize(account or user, method, path, self.query)
            # -- end of authentication and RBAC --
            interceptor = emu.request_interceptor
            if interceptor is not None:
                headers = {k: v for k, v in self.headers.items()}
                resp = interceptor(ApiRequest(method, path, url.query, headers, body, user))
                if resp is not None:
                    self._send(resp.status, resp.body, resp.headers.get("Content-Type", _JSON), resp.headers)
                    return
            self._dispatch(method, path, body)
        except KubeApiError as e:
            self._safe_send_json(e.code, e.body())
        except (TimeoutError, BrokenPipeError, ConnectionResetError):
            self.close_connection = True
            return
        except Exception as e:  # noqa: BLE001 - every failure leaves as a Status
            emu.last_error = traceback.format_exc()
            self._safe_send_json(
                500, status_body(500, "InternalError", f"Internal error occurred: {type(e).__name__}: {e}")
            )
        finally:
            self._observe_once()

    def _safe_send_json(self, code: int, body: Any) -> None:
        try:
            self._send_json(code, body)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def _observe_once(self) -> None:
        if getattr(self, "_observed", True):
            return
        self._observed = True
        self._observe(self._method, self._path, getattr(self, "user", "system:anonymous"))

    def _observe(self, method: str, path: str, user: str) -> None:
        emu = self.server.emu
        if not emu.request_observers:
            return
        a = self._audit
        entry = AuditEntry(
            verb=a["verb"],
            method=method,
            path=path,
            user=user,
            status=self._status,
            resource=a["resource"],
            namespace=a["namespace"],
            name=a["name"],
            subresource=a["sub"],
            timestamp=rfc3339(emu.clock.now()),
        )
        for fn in emu.request_observers:
            try:
                fn(entry)
            except Exception:  # noqa: BLE001 - an observer must not break serving
                emu.last_error = traceback.format_exc()

    def _q(self, key: str, default: str | None = None) -> str | None:
        v = self.query.get(key)
        return v[0] if v else default

    def _dispatch(self, method: str, path: str, body: bytes) -> None:
        emu = self.server.emu
        parts = [urllib.parse.unquote(p) for p in path.split("/") if p]
        if not parts:
            self._send_json(200, {"paths": ["/api", "/api/v1", "/apis", "/version", "/healthz"]})
            return
        head = parts[0]
        if head == "version":
            self._send_json(200, res.version_info())
            return
        if head in ("healthz", "livez", "readyz"):
            self._send(200, b"ok", "text/plain; charset=utf-8")
            return
        if head == "openapi" and parts[1:2] == ["v3"]:
            if len(parts) == 2:
                self._send_json(200, res.openapi_v3_index())
                return
            gv = parts[2:]
            doc = (
                res.openapi_v3_document("", gv[1])
                if gv[:1] == ["api"] and len(gv) == 2
                else res.openapi_v3_document(gv[1], gv[2])
                if gv[:1] == ["apis"] and len(gv) == 3
                else None
            )
            if doc is None:
                raise NotFound("the server could not find the requested resource", {})
            self._send_json(200, doc)
            return
        if head == "sandbox-api" and parts[1:] == ["reset"] and method == "POST":
            emu.reset()
            self._send_json(200, {"status": "ok"})
            return
        if head == "api" and len(parts) == 1:
            self._send_json(200, res.api_versions(f"{emu.host}:{emu.port}"))
            return
        if head == "apis" and len(parts) == 1:
            self._send_json(200, res.api_group_list())
            return
        if head == "apis" and len(parts) == 2:
            if parts[1] not in res.group_versions():
                raise NotFound("the server could not find the requested resource", {})
            self._send_json(200, res.api_group(parts[1]))
            return
        if (head == "api" and len(parts) == 2) or (head == "apis" and len(parts) == 3):
            group, version = ("", parts[1]) if head == "api" else (parts[1], parts[2])
            doc = res.api_resource_list(group, version)
            if doc is None:
                raise NotFound("the server could not find the requested resource", {})
            self._send_json(200, doc)
            return
        if head not in ("api", "apis") or len(parts) < 3:
            raise NotFound("the server could not find the requested resource", {})
        route = parse_route(parts)
        if route is None:
            raise NotFound("the server could not find the requested resource", {})
        self._audit.update(
            resource=route.rt.plural,
            namespace=route.namespace or "",
            name=route.name or "",
            sub=route.sub or "",
        )
        if route.sub is not None:
            self._subresource(method, route, body)
            return
        self._resource(method, route, body)

    # -- main resource -------------------------------------------------------------------------------
    def _decode(self, body: bytes) -> Any:
        ctype = (self.headers.get("Content-Type") or _JSON).lower()
        if not body:
            return None
        try:
            if "yaml" in ctype:
                return yaml.safe_load(body)
            return json.loads(body)
        except (ValueError, yaml.YAMLError) as e:
            raise BadRequest(f"the body of the request was in an unknown format: {e}") from None

    def _table(self) -> bool:
        return "as=Table" in (self.headers.get("Accept") or "")

    def _resource(self, method: str, route: Route, body: bytes) -> None:
        emu = self.server.emu
        store = emu.store
        rt = route.rt
        dry = self._q("dryRun") == "All"
        if rt.group == "metrics.k8s.io":
            if method != "GET":
                raise MethodNotAllowed("the server does not allow this method on the requested resource", {})
            self._audit["verb"] = "get" if route.name else "list"
            items = emu.metrics(rt.kind, route.namespace, route.name, self._q("labelSelector"))
            if route.name:
                self._send_json(200, items[0])
            else:
                self._send_json(
                    200,
                    {"kind": rt.kind + "List", "apiVersion": rt.api_version, "metadata": {}, "items": items},
                )
            return
        if method == "GET" and route.name is None:
            if self._q("watch") in ("true", "1"):
                self._audit["verb"] = "watch"
                self._watch(route)
                return
            self._audit["verb"] = "list"
            items, rv = store.list_refs(
                rt, route.namespace, self._q("labelSelector"), self._q("fieldSelector")
            )
            limit = int(self._q("limit") or 0)
            cont = self._q("continue")
            meta: dict[str, Any] = {"resourceVersion": str(rv)}
            if cont:
                start = int(cont)
                items = items[start:]
            else:
                start = 0
            if limit and len(items) > limit:
                items = items[:limit]
                meta["continue"] = str(start + limit)
                meta["remainingItemCount"] = 0
            if self._table():
                now = emu.clock.now()
                incl = self._q("includeObject", "Metadata") or "Metadata"
                self._send_json(200, to_table(rt, items, str(rv), now, incl))
                return
            head = json.dumps(
                {"kind": rt.kind + "List", "apiVersion": rt.api_version, "metadata": meta},
                separators=(",", ":"),
            )
            payload = (
                head[:-1]
                + ',"items":['
                + ",".join(json.dumps(o, separators=(",", ":")) for o in items)
                + "]}"
            )
            self._send(200, payload.encode())
            return
        if method == "GET":
            self._audit["verb"] = "get"
            obj = store.get(rt, route.namespace, route.name or "")
            if self._table():
                self._send_json(
                    200,
                    to_table(
                        rt,
                        [obj],
                        obj["metadata"]["resourceVersion"],
                        emu.clock.now(),
                        self._q("includeObject", "Metadata") or "Metadata",
                    ),
                )
                return
            self._send_json(200, obj)
            return
        if method == "POST" and route.name is None:
            self._audit["verb"] = "create"
            obj = self._decode(body)
            if not isinstance(obj, dict):
                raise BadRequest("the body of the request must be an object")
            self._check_kind(rt, obj)
            if rt.key == "bindings":
                self._send_json(201, emu.bind(route.namespace or "default", obj))
                return
            created = store.create(rt, obj, route.namespace, dry_run=dry)
            self._send_json(201, created)
            return
        if method == "PUT" and route.name is not None:
            self._audit["verb"] = "update"
            obj = self._decode(body)
            if not isinstance(obj, dict):
                raise BadRequest("the body of the request must be an object")
            self._check_kind(rt, obj)
            meta = obj.setdefault("metadata", {})
            if meta.get("name") and meta["name"] != route.name:
                raise BadRequest("the name of the object does not match the name on the URL")
            meta["name"] = route.name
            if rt.namespaced:
                meta["namespace"] = route.namespace
            if store.peek(rt, route.namespace, route.name) is None:
                created = store.create(rt, obj, route.namespace, dry_run=dry)
                self._send_json(201, created)
                return
            self._send_json(200, store.update(rt, obj, dry_run=dry))
            return
        if method == "PATCH" and route.name is not None:
            self._audit["verb"] = "patch"
            self._send_json(*self._patch(route, body, None))
            return
        if method == "DELETE" and route.name is not None:
            self._audit["verb"] = "delete"
            opts = self._decode(body) or {}
            grace = self._q("gracePeriodSeconds")
            grace_s = int(grace) if grace is not None else opts.get("gracePeriodSeconds")
            prop = self._q("propagationPolicy") or opts.get("propagationPolicy")
            if prop is None and opts.get("orphanDependents") is True:
                prop = "Orphan"
            obj, gone = store.delete(
                rt,
                route.namespace,
                route.name,
                grace_seconds=grace_s,
                propagation=prop,
                preconditions=opts.get("preconditions"),
                dry_run=dry,
            )
            if rt.key in RETURNS_DELETED_OBJECT or not gone:
                # 202 while finalizers hold the object; graceful pod and namespace deletion answer 200
                self._send_json(200 if gone or rt.key in ("pods", "namespaces") else 202, obj)
            else:
                self._send_json(
                    200,
                    status_body(
                        200,
                        "",
                        "",
                        {
                            "name": route.name,
                            "group": rt.group,
                            "kind": rt.plural,
                            "uid": obj["metadata"]["uid"],
                        },
                    ),
                )
            return
        if method == "DELETE":
            self._audit["verb"] = "deletecollection"
            items, _rv = store.list_refs(
                rt, route.namespace, self._q("labelSelector"), self._q("fieldSelector")
            )
            deleted = []
            for o in items:
                try:
                    d, _gone = store.delete(
                        rt,
                        o["metadata"].get("namespace"),
                        o["metadata"]["name"],
                        propagation=self._q("propagationPolicy"),
                    )
                    deleted.append(d)
                except NotFound:
                    continue
            self._send_json(
                200,
                {
                    "kind": rt.kind + "List",
                    "apiVersion": rt.api_version,
                    "metadata": {"resourceVersion": str(store.resource_version)},
                    "items": deleted,
                },
            )
            return
        raise MethodNotAllowed("the server does not allow this method on the requested resource", {})

    def _check_kind(self, rt: res.ResourceType, obj: Obj) -> None:
        kind, api_version = obj.get("kind"), obj.get("apiVersion")
        if rt.key == "bindings":
            return
        if kind and kind != rt.kind:
            raise BadRequest(
                f"the API version in the data ({api_version}) does not match the expected API "
                f"version ({rt.api_version})"
                if api_version and api_version != rt.api_version
                else f'{kind} in version "{rt.version}" cannot be handled as a {rt.kind}: '
                f'no kind "{kind}" is registered for version "{rt.api_version}"'
            )

    def _patch(self, route: Route, body: bytes, sub: str | None) -> tuple[int, Obj]:
        emu = self.server.emu
        store = emu.store
        rt = route.rt
        ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        dry = self._q("dryRun") == "All"
        patch_doc = self._decode(body)
        name = route.name or ""
        with store.lock:
            current = store.peek(rt, route.namespace, name)
            if ctype.startswith("application/apply-patch"):
                if not self._q("fieldManager"):
                    raise Invalid.of(
                        rt.kind,
                        name,
                        [
                            (
                                "metadata.managedFields.fieldManager",
                                "FieldValueRequired",
                                "Required value: is required for apply patch",
                            )
                        ],
                        rt.group,
                    )
                if not isinstance(patch_doc, dict):
                    raise BadRequest("apply patch must be an object")
                manager = self._q("fieldManager") or ""
                applied = deep_copy(patch_doc)
                applied.get("metadata", {}).pop("resourceVersion", None)
                for k in ("apiVersion", "kind"):
                    applied.pop(k, None)
                if current is None:
                    patch_doc.setdefault("metadata", {})["name"] = name
                    created = store.create(rt, patch_doc, route.namespace, dry_run=dry)
                    if not dry:
                        store.applied[(created["metadata"]["uid"], manager)] = applied
                    return 201, created
                previous = store.applied.get((current["metadata"]["uid"], manager))
                base = current
                if previous is not None:
                    base = strategic_merge_patch(current, removal_patch(previous, applied, rt.kind), rt.kind)
                new = strategic_merge_patch(base, applied, rt.kind)
                if not dry:
                    store.applied[(current["metadata"]["uid"], manager)] = applied
            else:
                if current is None:
                    raise NotFound.of(rt.plural, name, rt.group)
                if ctype == "application/json-patch+json":
                    new = json_patch(current, patch_doc)
                elif ctype == "application/merge-patch+json":
                    new = merge_patch(current, patch_doc)
                elif ctype == "application/strategic-merge-patch+json":
                    new = strategic_merge_patch(current, patch_doc, rt.kind)
                else:
                    raise UnsupportedMediaType(
                        "the body of the request was in an unknown format - accepted media "
                        "types include: application/json-patch+json, application/merge-"
                        "patch+json, application/apply-patch+yaml, application/strategic-"
                        "merge-patch+json"
                    )
            if not isinstance(new, dict):
                raise BadRequest("the patched object is not an object")
            meta = new.setdefault("metadata", {})
            if meta.get("name") != name:
                raise BadRequest(
                    "metadata.name: Invalid value: the name of the object cannot be changed by a patch"
                )
            if rt.namespaced:
                meta["namespace"] = route.namespace
            if sub == "scale":
                return 200, new
            return 200, store.update(rt, new, subresource=sub, dry_run=dry)

    # -- watch ---------------------------------------------------------------------------------------
    def _watch(self, route: Route) -> None:
        emu = self.server.emu
        timeout = float(self._q("timeoutSeconds") or 1800)
        expired: Expired | None = None
        try:
            w = emu.store.watch(
                route.rt,
                route.namespace,
                self._q("labelSelector"),
                self._q("fieldSelector"),
                self._q("resourceVersion"),
            )
        except Expired as e:  # like kube-apiserver: 200, then an ERROR event carrying the 410 Status
            expired = e
        bookmarks = self._q("allowWatchBookmarks") in ("true", "1")
        table = self._table()
        first_row = True
        self.send_response(200)
        self.send_header("Content-Type", _JSON)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self._status = 200
        self._observe_once()
        if expired is not None:
            self._chunk({"type": "ERROR", "object": expired.body()})
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
            return
        deadline = time.monotonic() + timeout
        last_bookmark = time.monotonic()
        try:
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or emu.stopping:
                    break
                try:
                    ev = w.queue.get(timeout=min(remaining, 0.5))
                except queue.Empty:
                    if bookmarks and time.monotonic() - last_bookmark > 5:
                        last_bookmark = time.monotonic()
                        self._chunk(
                            {
                                "type": "BOOKMARK",
                                "object": {
                                    "kind": route.rt.kind,
                                    "apiVersion": route.rt.api_version,
                                    "metadata": {"resourceVersion": str(emu.store.resource_version)},
                                },
                            }
                        )
                    continue
                if ev is None:
                    break
                obj: Obj = ev.obj
                if table:  # kubectl get -w: one-row Tables, column definitions in the first only
                    obj = to_table(route.rt, [ev.obj], str(ev.rv), emu.clock.now())
                    if not first_row:
                        obj["columnDefinitions"] = []
                    first_row = False
                self._chunk({"type": ev.type, "object": obj})
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError, OSError):
            self.close_connection = True
        finally:
            emu.store.unwatch(w)

    def _follow_log(self, route: Route, first: str) -> None:
        """``follow=true``: what is there, then new lines until the container stops or the client goes."""
        emu = self.server.emu
        ns, name, container = route.namespace or "", route.name or "", self._q("container")
        timestamps = self._q("timestamps") in ("true", "1")
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self._status = 200
        self._observe_once()
        try:
            if first:
                self._raw_chunk(first.encode())
            seen = len(emu.pod_logs(ns, name, container, timestamps=timestamps).splitlines())
            while not emu.stopping and emu.container_running(ns, name, container) and not self._client_gone():
                time.sleep(0.1)
                lines = emu.pod_logs(ns, name, container, timestamps=timestamps).splitlines()
                if len(lines) > seen:
                    self._raw_chunk("".join(line + "\n" for line in lines[seen:]).encode())
                seen = len(lines)
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except KubeApiError:
            self.wfile.write(b"0\r\n\r\n")
        except OSError:
            self.close_connection = True

    def _client_gone(self) -> bool:
        import select

        readable, _, _ = select.select([self.connection], [], [], 0)
        if not readable:
            return False
        try:
            return bool(self.connection.recv(1, socket.MSG_PEEK) == b"")
        except OSError:
            return True

    def _raw_chunk(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def _chunk(self, obj: Any) -> None:
        data = json.dumps(obj, separators=(",", ":")).encode() + b"\n"
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    # -- subresources --------------------------------------------------------------------------------
    def _subresource(self, method: str, route: Route, body: bytes) -> None:
        emu = self.server.emu
        store = emu.store
        rt, sub = route.rt, route.sub or ""
        name = route.name or ""
        if sub == "proxy" and rt.key in ("pods", "services"):
            self._audit["verb"] = method.lower()
            self._proxy(method, route, body)
            return
        if sub == "exec" and rt.key == "pods" and method in ("GET", "POST"):
            self._exec(method, route)
            return
        if sub == "token" and rt.key == "serviceaccounts" and method == "POST":  # TokenRequest (rbac)
            self._audit["verb"] = "create"
            self._send_json(201, emu.rbac.issue_token(route.namespace or "", name, self._decode(body)))
            return
        if sub not in rt.subresources:
            raise NotFound("the server could not find the requested resource", {})
        if sub == "status":
            if method == "GET":
                self._send_json(200, store.get(rt, route.namespace, name))
            elif method == "PUT":
                obj = self._decode(body) or {}
                obj.setdefault("metadata", {})["name"] = name
                if rt.namespaced:
                    obj["metadata"]["namespace"] = route.namespace
                self._send_json(200, store.update(rt, obj, subresource="status"))
            elif method == "PATCH":
                self._send_json(*self._patch(route, body, "status"))
            else:
                raise MethodNotAllowed("the server does not allow this method on the requested resource", {})
            return
        if sub == "scale":
            self._scale(method, route, body)
            return
        if sub == "log" and method == "GET":
            tail = self._q("tailLines")
            since = self._q("sinceSeconds")
            text = emu.pod_logs(
                route.namespace or "",
                name,
                self._q("container"),
                previous=self._q("previous") in ("true", "1"),
                tail_lines=int(tail) if tail is not None else None,
                since_seconds=int(since) if since is not None else None,
                timestamps=self._q("timestamps") in ("true", "1"),
            )
            if self._q("follow") in ("true", "1") and self._q("previous") not in ("true", "1"):
                self._follow_log(route, text)
                return
            self._send(200, text.encode(), "text/plain")
            return
        if sub == "eviction" and method == "POST":
            self._audit["verb"] = "create"
            obj = self._decode(body) or {}
            self._send_json(201, emu.evict(route.namespace or "", name, obj))
            return
        if sub == "binding" and method == "POST":
            self._audit["verb"] = "create"
            obj = self._decode(body) or {}
            obj.setdefault("metadata", {})["name"] = name
            self._send_json(201, emu.bind(route.namespace or "", obj))
            return
        if sub == "finalize" and method == "PUT":
            self._send_json(200, store.get(rt, None, name))
            return
        raise MethodNotAllowed("the server does not allow this method on the requested resource", {})

    def _exec(self, method: str, route: Route) -> None:
        """``pods/exec`` over a WebSocket upgrade (see :mod:`.exec`)."""
        emu = self.server.emu
        self._audit["verb"] = "get" if method == "GET" else "create"
        if method == "GET":  # like kube-apiserver 1.35+ (AuthorizePodWebsocketUpgradeCreatePermission)
            emu.rbac.authorize(self._principal, "POST", self._path, self.query)
        pod, container = pod_exec.exec_target(
            emu.store, route.namespace or "", route.name or "", self._q("container")
        )
        if "websocket" not in (self.headers.get("Upgrade") or "").lower():
            raise BadRequest(pod_exec.UPGRADE_REQUIRED_MSG)
        protocol = pod_exec.choose_protocol(self.headers.get("Sec-WebSocket-Protocol"))
        if protocol is None:
            raise BadRequest(pod_exec.PROTOCOL_MSG.format(offered=self.headers.get("Sec-WebSocket-Protocol")))
        command = self.query.get("command") or []
        result = pod_exec.run(emu.exec_files, emu.store, pod, container, command)
        self._status = 101
        self._observe_once()
        pod_exec.serve(self, protocol, result)

    def _scale(self, method: str, route: Route, body: bytes) -> None:
        store = self.server.emu.store
        rt, name = route.rt, route.name or ""

        def scale_of(o: Obj) -> Obj:
            m = o["metadata"]
            return {
                "kind": "Scale",
                "apiVersion": "autoscaling/v1",
                "metadata": {
                    k: m[k]
                    for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
                    if k in m
                },
                "spec": {"replicas": int(o.get("spec", {}).get("replicas", 1))},
                "status": {
                    "replicas": int((o.get("status") or {}).get("replicas", 0)),
                    "selector": selector_to_string(o.get("spec", {}).get("selector")),
                },
            }

        if method == "GET":
            self._send_json(200, scale_of(store.get(rt, route.namespace, name)))
            return
        if method not in ("PUT", "PATCH"):
            raise MethodNotAllowed("the server does not allow this method on the requested resource", {})
        with store.lock:
            cur = store.get(rt, route.namespace, name)
            current_scale = scale_of(cur)
            doc = self._decode(body) or {}
            if method == "PUT":
                new_scale = doc
            else:
                ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
                if ctype == "application/json-patch+json":
                    new_scale = json_patch(current_scale, doc)
                elif ctype == "application/merge-patch+json":
                    new_scale = merge_patch(current_scale, doc)
                else:
                    new_scale = strategic_merge_patch(current_scale, doc, "Scale")
            rv = (new_scale.get("metadata") or {}).get("resourceVersion")
            replicas = (new_scale.get("spec") or {}).get("replicas")
            if not isinstance(replicas, int) or replicas < 0:
                raise Invalid.of(
                    "Scale",
                    name,
                    [
                        (
                            "spec.replicas",
                            "FieldValueInvalid",
                            f"Invalid value: {replicas}: must be greater than or equal to 0",
                        )
                    ],
                    "autoscaling",
                )
            cur["spec"]["replicas"] = replicas
            if not rv:
                cur["metadata"].pop("resourceVersion", None)
            else:
                cur["metadata"]["resourceVersion"] = rv
            updated = store.update(rt, cur)
        self._send_json(200, scale_of(updated))

    def _proxy(self, method: str, route: Route, body: bytes) -> None:
        emu = self.server.emu
        ns = route.namespace or "default"
        raw = route.name or ""
        bits = raw.split(":")
        if len(bits) == 3:
            bits = bits[1:]
        name, port_s = (bits[0], bits[1]) if len(bits) == 2 else (bits[0], "")
        path = "/" + route.rest
        if self.path.split("?")[0].endswith("/") and not path.endswith("/"):
            path += "/"
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("authorization",)}
        preq = ProxyRequest(method, path, self.raw_query, headers, body)
        if route.rt.key == "services":
            resp = emu.proxy_to_service(ns, name, port_s, preq)
        else:
            resp = emu.proxy_to_pod(ns, name, port_s, preq)
        if resp is None:
            raise ServiceUnavailable("no endpoints available for service", {})
        self._send_proxy(resp)

    def _send_proxy(self, resp: ProxyResponse) -> None:
        ctype = next(
            (v for k, v in resp.headers.items() if k.lower() == "content-type"), "application/octet-stream"
        )
        self._send(resp.status, resp.body, ctype, resp.headers)
