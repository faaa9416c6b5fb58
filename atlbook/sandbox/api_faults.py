"""API faults: the sandbox answers a share of *client* requests with 429, 500, 503, a reset or slowly.

Operators run the runbooks on flaky VPNs against throttled APIs; this module lets the sandbox behave
like that, reproducibly. One :class:`ApiFaultInjector` per sandbox decides, per request, whether to
inject a fault, from a configuration (:class:`ApiFaultConfig`: rate, which APIs, which kinds, seed) and
a seeded RNG. Every injected fault is counted by API and kind (:meth:`ApiFaultInjector.counts`).

APIs (names for ``--api``)::

    k8s          the emulated Kubernetes API (every request but the pod proxy)
    products     product endpoints through the pod / service proxy of the API server
    <service>    each AWS service by name: eks, rds, efs, ec2, iam, cloudfront, sts, cloudwatch, …

Kinds (``--kinds``)::

    429     Too Many Requests with ``Retry-After`` (the request was not processed)
    500     Internal Server Error (not processed)
    503     Service Unavailable with ``Retry-After`` (not processed)
    reset   the connection is closed without an answer — for a mutating request, by default half of
            the time *after* it was processed (``reset_after``: the answer is lost, the case that makes
            blind retries of creates dangerous)
    slow    the answer comes ``slow_seconds`` late (then normally)

Each fault has the wire form of its API: a Kubernetes ``Status`` body, the AWS protocol's error
document (query XML, EC2 XML, JSON, REST-JSON, REST-XML), plain text from a product.

Refuses: a rate outside [0, 1], unknown kinds (``ValueError``). Never injects into the sandbox's own
calls — controllers, the EKS mirror and the product nodes work in-process; the CloudWatch feeder signs
with :data:`~atlbook.sandbox.audit.SANDBOX_CALLER`; the replay of a "reset after processing" carries a
per-sandbox bypass token — nor into ``/moto-api/`` or the ingress.

Wiring (in :mod:`atlbook.sandbox.stack`): :meth:`ApiFaultInjector.kube_interceptor` is the emulator's
request interceptor; the AWS front layer asks :meth:`ApiFaultInjector.decide` and renders
:func:`aws_error`.
"""

from __future__ import annotations

import dataclasses
import http.client
import json
import math
import random
import secrets
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterable
from typing import Any

__all__ = [
    "AWS_ALIASES",
    "BYPASS_HEADER",
    "KINDS",
    "ApiFaultConfig",
    "ApiFaultInjector",
    "Decision",
    "aws_error",
    "kube_status",
    "product_error",
    "normalise_api",
]

KINDS: tuple[str, ...] = ("429", "500", "503", "reset", "slow")
"""Every fault kind, in the order ``--kinds`` lists them."""

AWS_ALIASES: dict[str, str] = {
    "elasticfilesystem": "efs",
    "monitoring": "cloudwatch",
    "kubernetes": "k8s",
    "kube": "k8s",
    "product": "products",
}
"""Signing names and spellings mapped to the API names faults are configured and counted by."""

BYPASS_HEADER = "X-Atlbook-Api-Fault-Bypass"
"""Header carrying the injector's token on its own replays (never faulted)."""

_MESSAGES = {
    "429": "Rate exceeded (injected by the atlbook sandbox)",
    "500": "We encountered an internal error. Please try again. (injected by the atlbook sandbox)",
    "503": "Service is unavailable. Please try again. (injected by the atlbook sandbox)",
}


def normalise_api(name: str) -> str:
    """The API name for ``name`` (lower case; AWS signing names and aliases mapped)."""
    key = name.strip().lower()
    return AWS_ALIASES.get(key, key)


@dataclasses.dataclass(frozen=True)
class ApiFaultConfig:
    """What to inject. ``rate`` 0 (the default) injects nothing."""

    rate: float = 0.0
    """Share of eligible requests that get a fault, in [0, 1]."""
    apis: frozenset[str] | None = None
    """API names to fault (see the module docstring); ``None`` = every API."""
    kinds: tuple[str, ...] = KINDS
    """Fault kinds, chosen uniformly for a faulted request."""
    seed: int | None = None
    """RNG seed; the same seed and the same request sequence give the same faults."""
    retry_after: float = 1.0
    """Seconds sent in ``Retry-After`` (429 and 503), rounded up to whole seconds on the wire."""
    slow_seconds: float = 0.5
    """Wall seconds a ``slow`` answer is held back."""
    only_mutating: bool = False
    """Fault only mutating requests (POST/PUT/PATCH/DELETE, AWS actions other than reads)."""
    reset_after: float = 0.5
    """Share of resets on mutating requests that come *after* the request was processed, in [0, 1]."""

    def __post_init__(self) -> None:
        if not 0.0 <= self.rate <= 1.0:
            raise ValueError(f"api fault rate must be in [0, 1], not {self.rate}")
        unknown = [k for k in self.kinds if k not in KINDS]
        if unknown or not self.kinds:
            raise ValueError(
                f"unknown api fault kinds {unknown or '(none given)'}; known: {', '.join(KINDS)}"
            )
        if not 0.0 <= self.reset_after <= 1.0:
            raise ValueError(f"reset_after must be in [0, 1], not {self.reset_after}")
        if self.retry_after < 0 or self.slow_seconds < 0:
            raise ValueError("retry_after and slow_seconds must be ≥ 0")

    @classmethod
    def build(
        cls,
        rate: float,
        apis: Iterable[str] | str | None = None,
        kinds: Iterable[str] | str | None = None,
        seed: int | None = None,
        retry_after: float = 1.0,
        slow_seconds: float = 0.5,
        *,
        only_mutating: bool = False,
        reset_after: float = 0.5,
    ) -> ApiFaultConfig:
        """A config from loose input: comma-separated strings or lists; names normalised."""

        def split(v: Iterable[str] | str | None) -> list[str] | None:
            if v is None:
                return None
            items = v.split(",") if isinstance(v, str) else list(v)
            return [str(i).strip() for i in items if str(i).strip()]

        api_list = split(apis)
        kind_list = split(kinds)
        return cls(
            rate=float(rate),
            apis=frozenset(normalise_api(a) for a in api_list) if api_list else None,
            kinds=tuple(kind_list) if kind_list else KINDS,
            seed=seed,
            retry_after=float(retry_after),
            slow_seconds=float(slow_seconds),
            only_mutating=bool(only_mutating),
            reset_after=float(reset_after),
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-able."""
        return {
            "rate": self.rate,
            "apis": sorted(self.apis) if self.apis is not None else None,
            "kinds": list(self.kinds),
            "seed": self.seed,
            "retry_after": self.retry_after,
            "slow_seconds": self.slow_seconds,
            "only_mutating": self.only_mutating,
            "reset_after": self.reset_after,
        }


@dataclasses.dataclass(frozen=True)
class Decision:
    """One injected fault: ``api``, ``kind``; ``after`` for a reset after processing."""

    api: str
    kind: str
    after: bool = False
    retry_after: float = 1.0
    slow_seconds: float = 0.5


class ApiFaultInjector:
    """Decides and counts API faults (thread-safe); off until :meth:`configure`."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._config = ApiFaultConfig()
        self._rng = random.Random()
        self._counts: dict[str, dict[str, int]] = {}
        self._requests: dict[str, int] = {}
        self.bypass_token = secrets.token_hex(16)
        """Requests carrying it in :data:`BYPASS_HEADER` are never faulted (the injector's replays)."""

    @property
    def config(self) -> ApiFaultConfig:
        """The current configuration."""
        return self._config

    def configure(self, config: ApiFaultConfig) -> dict[str, Any]:
        """Start injecting under ``config`` (counts keep adding up); returns :meth:`describe`."""
        with self._lock:
            self._config = config
            self._rng = random.Random(config.seed)
        return self.describe()

    def off(self) -> dict[str, Any]:
        """Stop injecting (counts are kept); returns :meth:`describe`."""
        with self._lock:
            self._config = ApiFaultConfig()
        return self.describe()

    def reset(self) -> None:
        """Off, and every count back to zero (the sandbox's reset)."""
        with self._lock:
            self._config = ApiFaultConfig()
            self._counts.clear()
            self._requests.clear()

    def counts(self) -> dict[str, dict[str, int]]:
        """Injected faults: ``{api: {kind: n}}`` (a copy)."""
        with self._lock:
            return {api: dict(kinds) for api, kinds in self._counts.items()}

    def total(self) -> int:
        """Every injected fault so far."""
        with self._lock:
            return sum(sum(k.values()) for k in self._counts.values())

    def describe(self) -> dict[str, Any]:
        """Configuration, eligible requests seen and faults injected, by API and kind."""
        with self._lock:
            return {
                "active": self._config.rate > 0,
                "config": self._config.to_dict(),
                "requests": dict(self._requests),
                "injected": {api: dict(kinds) for api, kinds in self._counts.items()},
                "total": sum(sum(k.values()) for k in self._counts.values()),
            }

    def decide(self, api: str, *, mutating: bool = False) -> Decision | None:
        """Whether to fault this request of ``api``; counts the decision. ``None`` = serve normally."""
        name = normalise_api(api)
        with self._lock:
            cfg = self._config
            if cfg.rate <= 0 or (cfg.apis is not None and name not in cfg.apis):
                return None
            if cfg.only_mutating and not mutating:
                return None
            self._requests[name] = self._requests.get(name, 0) + 1
            if self._rng.random() >= cfg.rate:
                return None
            kind = self._rng.choice(cfg.kinds)
            after = kind == "reset" and mutating and self._rng.random() < cfg.reset_after
            per_api = self._counts.setdefault(name, {})
            per_api[kind] = per_api.get(kind, 0) + 1
            return Decision(name, kind, after, cfg.retry_after, cfg.slow_seconds)

    # --- Kubernetes ---------------------------------------------------------------------------------

    def kube_interceptor(self, url: Callable[[], str]) -> Callable[[Any], Any]:
        """The emulator's request interceptor; ``url()`` is the emulator's URL (for replays).

        Proxy requests (``…/proxy/…``) count as ``products``, everything else as ``k8s``. A reset raises
        ``ConnectionResetError`` (the emulator then closes the connection without an answer); a reset
        after processing first replays the request with the bypass token.
        """

        def intercept(req: Any) -> Any:
            if req.headers.get(BYPASS_HEADER) == self.bypass_token or any(
                k.lower() == BYPASS_HEADER.lower() and v == self.bypass_token for k, v in req.headers.items()
            ):
                return None
            path = str(req.path)
            api = "products" if "/proxy/" in path or path.endswith("/proxy") else "k8s"
            method = str(req.method).upper()
            decision = self.decide(api, mutating=method in ("POST", "PUT", "PATCH", "DELETE"))
            if decision is None:
                return None
            if decision.kind == "slow":
                time.sleep(decision.slow_seconds)
                return None
            if decision.kind == "reset":
                if decision.after:
                    self._replay(url(), req)
                raise ConnectionResetError("connection reset (injected by the atlbook sandbox)")
            from atlbook.sandbox.kube.hooks import ProxyResponse

            status, headers, body = product_error(decision) if api == "products" else kube_status(decision)
            return ProxyResponse(status, headers, body)

        return intercept

    def _replay(self, base: str, req: Any) -> None:
        parts = urllib.parse.urlsplit(base)
        conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port or 80, timeout=30)
        try:
            target = str(req.path) + (f"?{req.query}" if req.query else "")
            headers = {
                k: v
                for k, v in req.headers.items()
                if k.lower() not in ("content-length", "connection", "host")
            }
            headers[BYPASS_HEADER] = self.bypass_token
            conn.request(str(req.method), target, body=req.body or None, headers=headers)
            conn.getresponse().read()
        finally:
            conn.close()


def _retry_headers(decision: Decision) -> dict[str, str]:
    if decision.kind in ("429", "503"):
        return {"Retry-After": str(math.ceil(decision.retry_after))}  # whole seconds, as servers send
    return {}


def kube_status(decision: Decision) -> tuple[int, dict[str, str], bytes]:
    """A Kubernetes ``Status`` answer for a 429/500/503 decision."""
    status = int(decision.kind)
    reason = {429: "TooManyRequests", 500: "InternalError", 503: "ServiceUnavailable"}[status]
    doc: dict[str, Any] = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": _MESSAGES[decision.kind],
        "reason": reason,
        "code": status,
    }
    if decision.kind in ("429", "503"):
        doc["details"] = {"retryAfterSeconds": math.ceil(decision.retry_after)}
    headers = {"Content-Type": "application/json", **_retry_headers(decision)}
    return status, headers, json.dumps(doc).encode()


def product_error(decision: Decision) -> tuple[int, dict[str, str], bytes]:
    """A product's (or its load balancer's) plain answer for a 429/500/503 decision."""
    status = int(decision.kind)
    headers = {"Content-Type": "text/plain; charset=utf-8", **_retry_headers(decision)}
    return status, headers, f"{status} {_MESSAGES[decision.kind]}".encode()


_AWS_CODES = {
    # protocol → kind → code
    "ec2": {"429": "RequestLimitExceeded", "500": "InternalError", "503": "Unavailable"},
    "query": {"429": "Throttling", "500": "InternalFailure", "503": "ServiceUnavailable"},
    "json": {"429": "ThrottlingException", "500": "InternalFailure", "503": "ServiceUnavailableException"},
    "rest-xml": {"429": "Throttling", "500": "InternalError", "503": "ServiceUnavailable"},
}
_REST_XML_SERVICES = frozenset({"cloudfront", "route53", "s3"})


def aws_error(
    decision: Decision, service: str, *, json_target: bool, query: bool
) -> tuple[int, dict[str, str], bytes]:
    """The AWS error answer for a 429/500/503 decision, in the wire form of the service's protocol.

    ``json_target``: the request carried ``X-Amz-Target`` (JSON protocol); ``query``: it carried an
    ``Action`` (query protocol); otherwise REST-JSON, or REST-XML for CloudFront/Route 53/S3.
    """
    status = int(decision.kind)
    message = _MESSAGES[decision.kind]
    request_id = secrets.token_hex(8)
    headers = {"x-amzn-RequestId": request_id, **_retry_headers(decision)}
    name = normalise_api(service)
    if query and name == "ec2":
        code = _AWS_CODES["ec2"][decision.kind]
        body = (
            f"<Response><Errors><Error><Code>{code}</Code><Message>{message}</Message></Error></Errors>"
            f"<RequestID>{request_id}</RequestID></Response>"
        )
        return status, {**headers, "Content-Type": "text/xml"}, body.encode()
    if query or name in _REST_XML_SERVICES:
        code = _AWS_CODES["query" if query else "rest-xml"][decision.kind]
        side = "Sender" if status == 429 else "Receiver"
        body = (
            f"<ErrorResponse><Error><Type>{side}</Type><Code>{code}</Code>"
            f"<Message>{message}</Message></Error><RequestId>{request_id}</RequestId></ErrorResponse>"
        )
        return status, {**headers, "Content-Type": "text/xml"}, body.encode()
    code = _AWS_CODES["json"][decision.kind]
    content_type = "application/x-amz-json-1.1" if json_target else "application/json"
    doc = {"__type": code, "message": message, "Message": message}
    return (
        status,
        {**headers, "Content-Type": content_type, "x-amzn-ErrorType": code},
        json.dumps(doc).encode(),
    )
