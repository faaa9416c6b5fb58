"""The sandbox's control endpoint (loopback JSON over HTTP) and its client, for a detached sandbox.

``GET /status``, ``GET /faults``, ``POST /fault`` (``{"name", "target", "clear"}``), ``POST /reset``,
``GET /api-faults`` and ``POST /api-faults`` (``{"rate", "apis", "kinds", "seed", "retry_after",
"slow_seconds", "only_mutating", "reset_after"}`` or ``{"off": true}``; see
:mod:`atlbook.sandbox.api_faults`).
``atlbook sandbox status|reset|faults|fault`` use :class:`ControlClient` with the ``control_url`` from
``state.json``. It answers 400 for an unknown fault and refuses anything but loopback binding.
"""

from __future__ import annotations

import http.server
import json
import threading
import urllib.error
import urllib.request
from typing import Any

__all__ = ["ControlClient", "ControlServer"]


class ControlServer:
    """Serves one :class:`~atlbook.sandbox.stack.Sandbox`."""

    def __init__(self, sandbox: Any, host: str = "127.0.0.1", port: int = 0) -> None:
        self.sandbox = sandbox
        self.host = host
        self._port = port
        self._server: http.server.ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Serve in a daemon thread."""
        sandbox = self.sandbox

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
                """Silent."""

            def _reply(self, status: int, data: Any) -> None:
                body = json.dumps(data, default=str).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:  # noqa: N802 - stdlib name
                if self.path == "/status":
                    self._reply(200, sandbox.status())
                elif self.path == "/faults":
                    self._reply(200, sandbox.faults())
                elif self.path == "/api-faults":
                    self._reply(200, sandbox.api_faults.describe())
                else:
                    self._reply(404, {"error": "not found"})

            def do_POST(self) -> None:  # noqa: N802 - stdlib name
                length = int(self.headers.get("Content-Length") or 0)
                data = json.loads(self.rfile.read(length) or b"{}") if length else {}
                try:
                    if self.path == "/reset":
                        sandbox.reset()
                        self._reply(200, {"reset": True})
                    elif self.path == "/fault":
                        target = sandbox.fault(
                            data["name"], data.get("target"), clear=bool(data.get("clear"))
                        )
                        self._reply(
                            200, {"name": data["name"], "target": target, "cleared": bool(data.get("clear"))}
                        )
                    elif self.path == "/api-faults":
                        if data.get("off"):
                            self._reply(200, sandbox.api_faults_off())
                        else:
                            self._reply(
                                200,
                                sandbox.inject_api_faults(
                                    float(data["rate"]),
                                    data.get("apis"),
                                    data.get("kinds"),
                                    data.get("seed"),
                                    retry_after=float(data.get("retry_after", 1.0)),
                                    slow_seconds=float(data.get("slow_seconds", 0.5)),
                                    only_mutating=bool(data.get("only_mutating", False)),
                                    reset_after=float(data.get("reset_after", 0.5)),
                                ),
                            )
                    else:
                        self._reply(404, {"error": "not found"})
                except (KeyError, ValueError, TypeError) as e:
                    self._reply(400, {"error": str(e)})

        self._server = http.server.ThreadingHTTPServer((self.host, self._port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="atlbook-control", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop serving."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        assert self._server is not None
        return f"http://{self.host}:{self._server.server_address[1]}"


class ControlClient:
    """Talks to a :class:`ControlServer`."""

    def __init__(self, url: str, timeout: float = 30.0) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout

    def _call(self, method: str, path: str, data: Any = None) -> Any:
        body = json.dumps(data).encode() if data is not None else None
        req = urllib.request.Request(self.url + path, data=body, method=method)  # noqa: S310 - loopback
        req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:  # noqa: S310 - loopback
                return json.loads(resp.read())
        except urllib.error.HTTPError as e:
            detail = json.loads(e.read() or b"{}").get("error", str(e))
            raise ValueError(detail) from e

    def status(self) -> dict[str, Any]:
        """The sandbox's status."""
        result: dict[str, Any] = self._call("GET", "/status")
        return result

    def faults(self) -> list[dict[str, Any]]:
        """Known faults with active targets."""
        result: list[dict[str, Any]] = self._call("GET", "/faults")
        return result

    def fault(self, name: str, target: str | None = None, clear: bool = False) -> dict[str, Any]:
        """Inject or clear a fault."""
        result: dict[str, Any] = self._call(
            "POST", "/fault", {"name": name, "target": target, "clear": clear}
        )
        return result

    def api_faults(self, **config: Any) -> dict[str, Any]:
        """Configure API faults (``rate``, ``apis``, ``kinds``, ``seed``, ``retry_after``, ``slow_seconds``,
        or ``off=True``); with no arguments, read the current state. Returns config and counts."""
        result: dict[str, Any] = (
            self._call("POST", "/api-faults", config) if config else self._call("GET", "/api-faults")
        )
        return result

    def reset(self) -> None:
        """Reset the sandbox."""
        self._call("POST", "/reset", {})
