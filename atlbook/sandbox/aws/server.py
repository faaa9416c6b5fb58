"""moto in server mode, with a thin WSGI layer in front on the same port.

The layer (:class:`AwsFrontApp`) looks at every request before moto does:

- it answers the calls moto lacks (EKS add-ons, EFS ``UpdateFileSystem``, RDS
  ``DescribeDBEngineVersions``) in their real wire forms;
- it points every EKS cluster's ``endpoint`` and ``certificateAuthority`` at the emulated Kubernetes API
  (one emulated cluster serves every EKS cluster of the sandbox);
- it records every mutating call (``service:Action``, path, access key id) in the audit log and tells
  listeners (the EKS mirror) after the call succeeded.

It binds 127.0.0.1 only. Requests signed with the access key :data:`~atlbook.sandbox.audit.SANDBOX_CALLER`
are the sandbox's own and are not audited.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import re
import socket
import threading
import time
import urllib.request
from collections.abc import Callable, Iterable, Iterator
from typing import Any
from urllib.parse import parse_qs

from moto.core.models import DEFAULT_ACCOUNT_ID
from moto.eks.models import eks_backends
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from moto.rds.models import rds_backends
from werkzeug.serving import BaseWSGIServer, make_server

from atlbook.sandbox import api_faults
from atlbook.sandbox.audit import SANDBOX_CALLER, AuditLog, is_mutating_aws_action, is_mutating_http_verb
from atlbook.sandbox.aws import addons, extras

__all__ = [
    "ACCOUNT_ID",
    "DUMMY_ACCESS_KEY_ID",
    "DUMMY_SECRET_ACCESS_KEY",
    "AwsFrontApp",
    "AwsSandbox",
    "MutationListener",
]

log = logging.getLogger(__name__)

ACCOUNT_ID = DEFAULT_ACCOUNT_ID
"""The one AWS account of the sandbox."""
DUMMY_ACCESS_KEY_ID = "atlbook-sandbox-dummy-key"
"""Dummy credentials written to the sandbox's target and env file (not shaped like a real key id, so
neither secret scanners nor the records' redaction mistake it for one)."""
DUMMY_SECRET_ACCESS_KEY = "atlbook-sandbox-dummy-secret"  # noqa: S105 - a dummy, moto accepts anything

MutationListener = Callable[[str, str, str], None]
"""``fn(service, action, path)`` after a successful mutating call."""

_CRED_RE = re.compile(r"Credential=([^/,\s]+)/[^/]+/([^/]+)/([^/]+)/")
_EFS_FS_RE = re.compile(r"^/2015-02-01/file-systems/(fs-[0-9a-zA-Z]+)$")
StartResponse = Callable[..., Any]


def _rest_action(method: str) -> str:
    """REST services (eks, efs, cloudfront …) are named by HTTP method; the path says the rest."""
    return method


class _QuietHandler(MotoRequestHandler):
    """moto's request handler without the per-request access log on stderr."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """Access log: dropped."""

    def log(self, type: str, message: str, *args: Any) -> None:  # noqa: A002 - werkzeug's signature
        """Errors go to the module logger at debug level."""
        log.debug(message, *args)


class _ResetGate:
    """Readers–writer gate: requests share moto; a reset has it alone.

    moto's reset re-runs each backend's ``__init__`` on the live object (``__dict__`` emptied first), so a
    request in flight meanwhile sees a half-built backend (``'IAMBackend' object has no attribute
    'access_keys'`` as a 500 — seen in CI right after the sandbox reset, the metrics feeder calling).
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._active = 0
        self._resetting = False

    @contextlib.contextmanager
    def shared(self) -> Iterator[None]:
        """Hold moto together with other requests (waits while a reset runs)."""
        with self._cond:
            while self._resetting:
                self._cond.wait()
            self._active += 1
        try:
            yield
        finally:
            with self._cond:
                self._active -= 1
                self._cond.notify_all()

    @contextlib.contextmanager
    def exclusive(self) -> Iterator[None]:
        """Hold moto alone: new requests wait, requests in flight finish first."""
        with self._cond:
            while self._resetting:
                self._cond.wait()
            self._resetting = True
            while self._active:
                self._cond.wait()
        try:
            yield
        finally:
            with self._cond:
                self._resetting = False
                self._cond.notify_all()


class AwsFrontApp:
    """The WSGI app in front of moto's ``DomainDispatcherApplication``."""

    def __init__(self, sandbox: AwsSandbox) -> None:
        self._sandbox = sandbox
        self._moto = DomainDispatcherApplication(create_backend_app)
        self._gate = _ResetGate()

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        method = str(environ.get("REQUEST_METHOD", "GET")).upper()
        path = str(environ.get("PATH_INFO", "/"))
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(body)
        query = {k: v[0] for k, v in parse_qs(str(environ.get("QUERY_STRING", ""))).items()}
        m = _CRED_RE.search(str(environ.get("HTTP_AUTHORIZATION", "")))
        caller, region, service = (
            (m.group(1), m.group(2), m.group(3)) if m else ("anonymous", "us-east-1", "")
        )
        target = str(environ.get("HTTP_X_AMZ_TARGET", ""))
        form: dict[str, str] = {}
        if "x-www-form-urlencoded" in str(environ.get("CONTENT_TYPE", "")):
            form = {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace")).items()}
        if target:
            action = target.split(".")[-1]
            mutating = is_mutating_aws_action(action)
        elif "Action" in form or "Action" in query:
            action = form.get("Action") or query["Action"]
            mutating = is_mutating_aws_action(action)
        else:
            action = _rest_action(method)
            mutating = is_mutating_http_verb(method)

        if path.startswith("/moto-api/"):
            if path == "/moto-api/reset":
                self._sandbox.addons.reset()
                with self._gate.exclusive():
                    return list(self._moto(environ, start_response))
            with self._gate.shared():
                return list(self._moto(environ, start_response))

        # --- API faults (atlbook.sandbox.api_faults): client requests only, never the sandbox's own ---
        injector = self._sandbox.api_faults
        fault = (
            injector.decide(service, mutating=mutating)
            if injector is not None and service and caller != SANDBOX_CALLER
            else None
        )
        if fault is not None and fault.kind == "slow":
            time.sleep(fault.slow_seconds)
        elif fault is not None and fault.kind == "reset" and not fault.after:
            start_response("500 Internal Server Error", [])  # never sent: the connection goes first
            return _drop_connection(environ)
        elif fault is not None and fault.kind != "reset":
            f_status, f_headers, f_body = api_faults.aws_error(
                fault,
                service,
                json_target=bool(target),
                query=bool(form.get("Action") or query.get("Action")),
            )
            start_response(f"{f_status} {_REASONS.get(f_status, 'Error')}", list(f_headers.items()))
            return [f_body]
        # --- end API faults ---

        answer = self._extra(service, method, path, query, form, body, region)
        status: int
        if answer is not None:
            status, headers, payload = answer
            start_response(f"{status} {_REASONS.get(status, 'OK')}", list(headers.items()))
            result: Iterable[bytes] = [payload]
        else:
            if service == "eks":
                self._sandbox.point_clusters_at_emulator()
            captured: dict[str, int] = {}

            def _start(status_line: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
                captured["status"] = int(status_line.split(" ", 1)[0])
                return (
                    start_response(status_line, headers, exc_info)
                    if exc_info
                    else start_response(status_line, headers)
                )

            with self._gate.shared():
                result = list(self._moto(environ, _start))
            status = captured.get("status", 500)
        if mutating:
            self._sandbox.audit.record("aws", f"{service}:{action}", path, caller, status)
            if status < 400:
                if service == "rds" and form.get("MasterUserPassword"):
                    self._sandbox.notify_rds_master(region, form)
                self._sandbox.notify(service, action, path)
        if fault is not None and fault.kind == "reset":  # API faults: processed, then the answer is lost
            return _drop_connection(environ)
        return result

    def _extra(
        self,
        service: str,
        method: str,
        path: str,
        query: dict[str, str],
        form: dict[str, str],
        body: bytes,
        region: str,
    ) -> tuple[int, dict[str, str], bytes] | None:
        if service == "eks" and ("/addons" in path):
            return addons.handle_addon_request(
                self._sandbox.addons, method, path, query, body, ACCOUNT_ID, region
            )
        if service == "elasticfilesystem" and method == "PUT":
            m = _EFS_FS_RE.match(path)
            if m:
                return extras.update_file_system(ACCOUNT_ID, region, m.group(1), body)
        if service == "rds" and (form.get("Action") or query.get("Action")) == "DescribeDBEngineVersions":
            return extras.describe_db_engine_versions(form or query)
        return None


def _drop_connection(environ: dict[str, Any]) -> Iterable[bytes]:
    """Close the client's connection without an answer (an injected reset)."""
    sock = environ.get("werkzeug.socket")
    if sock is not None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
    return []


_REASONS = {
    200: "OK",
    201: "Created",
    202: "Accepted",
    204: "No Content",
    400: "Bad Request",
    404: "Not Found",
    409: "Conflict",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


class AwsSandbox:
    """moto server + front layer on one free loopback port.

    ``now`` is the simulated clock's ``now()`` (seconds), used for add-on state changes.
    """

    def __init__(
        self,
        *,
        now: Callable[[], float] = time.monotonic,
        audit: AuditLog | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.host = host
        self._port = port
        self.audit = audit or AuditLog()
        self.addons = addons.AddonBackend(now, self._cluster_exists)
        self._listeners: list[MutationListener] = []
        self._rds_listeners: list[Callable[[str, str], None]] = []
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None
        self._cluster_endpoint: tuple[str, str] | None = None
        self.api_faults: api_faults.ApiFaultInjector | None = None
        """Set by the sandbox: decides API faults for client requests (:mod:`atlbook.sandbox.api_faults`)."""

    # --- lifecycle --------------------------------------------------------------------------------

    def start(self) -> None:
        """Bind and serve in a daemon thread.

        Real IAM has the AWS managed policies (``arn:aws:iam::aws:policy/...``) that EKS roles attach;
        moto loads them only when ``MOTO_IAM_LOAD_MANAGED_POLICIES`` is true when its IAM backend is
        built, so the sandbox sets it (unless the caller chose otherwise) before serving.
        """
        if self._server is not None:
            return
        os.environ.setdefault("MOTO_IAM_LOAD_MANAGED_POLICIES", "true")
        self._server = make_server(
            self.host, self._port, AwsFrontApp(self), threaded=True, request_handler=_QuietHandler
        )
        self._thread = threading.Thread(target=self._server.serve_forever, name="atlbook-aws", daemon=True)
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
    def port(self) -> int:
        """The bound port."""
        assert self._server is not None, "start() first"
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>`` — the ``AWS_ENDPOINT_URL``."""
        return f"http://{self.host}:{self.port}"

    def reset(self) -> None:
        """Clear every AWS resource (moto's ``/moto-api/reset``) and the add-ons."""
        req = urllib.request.Request(self.url + "/moto-api/reset", method="POST", data=b"")
        with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310 - our own loopback server
            resp.read()
        self.addons.reset()

    # --- hooks --------------------------------------------------------------------------------------

    def add_mutation_listener(self, fn: MutationListener) -> None:
        """Call ``fn(service, action, path)`` after every successful mutating call."""
        self._listeners.append(fn)

    def notify(self, service: str, action: str, path: str) -> None:
        """Run the mutation listeners (errors are logged, never returned to the AWS caller)."""
        for fn in self._listeners:
            try:
                fn(service, action, path)
            except Exception:  # noqa: BLE001 - a listener must not break the AWS call
                log.exception("mutation listener failed for %s %s", service, action)

    def add_rds_master_listener(self, fn: Callable[[str, str], None]) -> None:
        """Call ``fn(username, password)`` when an RDS instance gets a master password (create/modify).

        moto does not keep passwords retrievable, so this is the only place to learn them.
        """
        self._rds_listeners.append(fn)

    def notify_rds_master(self, region: str, form: dict[str, str]) -> None:
        """Tell RDS master listeners about the master user of a create/modify call."""
        user = form.get("MasterUsername", "")
        if not user and form.get("DBInstanceIdentifier"):
            db = rds_backends[ACCOUNT_ID][region].databases.get(form["DBInstanceIdentifier"])
            user = str(getattr(db, "master_username", "") or "")
        if not user:
            return
        for fn in self._rds_listeners:
            try:
                fn(user, form["MasterUserPassword"])
            except Exception:  # noqa: BLE001 - must not break the AWS call
                log.exception("RDS master listener failed")

    def set_cluster_endpoint(self, url: str, ca_data_b64: str) -> None:
        """Every EKS cluster's ``endpoint`` / ``certificateAuthority.data`` become these."""
        self._cluster_endpoint = (url, ca_data_b64)
        self.point_clusters_at_emulator()

    def point_clusters_at_emulator(self) -> None:
        """Rewrite moto's cluster objects to the emulator's endpoint and CA (idempotent)."""
        if self._cluster_endpoint is None:
            return
        url, ca = self._cluster_endpoint
        for backend in self._eks_backends():
            for cluster in backend.clusters.values():
                cluster.endpoint = url
                cluster.certificate_authority = {"data": ca}

    # --- moto state ---------------------------------------------------------------------------------

    @staticmethod
    def _eks_backends() -> list[Any]:
        out: list[Any] = []
        for regions in eks_backends.values():
            out.extend(regions.values())
        return out

    @staticmethod
    def _cluster_exists(account: str, region: str, cluster: str) -> bool:
        return cluster in eks_backends[account][region].clusters

    def eks_clusters(self) -> list[Any]:
        """moto's EKS ``Cluster`` objects in every region (for the mirror)."""
        return [c for b in self._eks_backends() for c in b.clusters.values()]

    def status(self) -> dict[str, Any]:
        """What runs where."""
        return {"url": self.url if self._server else None, "running": self._server is not None}
