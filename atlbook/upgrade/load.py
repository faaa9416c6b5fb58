"""Measure availability during an upgrade: sticky-session traffic through the ingress, stats per phase.

:class:`LoadGenerator` runs ``users`` virtual users, each a cookie-pinned session (it keeps the cookies
the ingress sets and sends them back, as a browser does; the ingress re-pins a session when its node
leaves the Ready endpoints). Each user requests the product's health path through the ingress base URL
in a loop until stopped, never retrying: every failure counts. A request *fails* on a transport error,
a timeout, a status other than 200, or a ``/status`` answer whose ``state`` is not RUNNING.

The same code measures the sandbox and a real stack; only the base URL differs and it comes from the
target (:func:`atlbook.upgrade.runbook.ingress_base_url`). The orchestrator names the *phase* (the plan
step running) with :meth:`LoadGenerator.set_phase`; :func:`phase_stats` reports requests, failures,
p50/p99 latency and re-pins per phase. The stats functions are pure and unit-tested.
"""

from __future__ import annotations

import dataclasses
import http.cookies
import json
import math
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from atlbook import errors
from atlbook.clients import http as chttp
from atlbook.clients import retry

__all__ = ["LoadGenerator", "LoadReport", "Sample", "judge", "percentile", "phase_stats"]


@dataclasses.dataclass(frozen=True)
class Sample:
    """One request of the load generator."""

    t: float
    """Seconds since the generator started (request start)."""
    phase: str
    latency: float
    """Seconds."""
    ok: bool
    status: int | None
    user: int = 0
    repinned: bool = False
    """The answer moved this session to another node (a new affinity cookie)."""
    error: str | None = None


def percentile(values: Sequence[float], q: float) -> float | None:
    """The ``q``-th percentile (0–100) by linear interpolation between closest ranks; ``None`` if empty."""
    if not values:
        return None
    data = sorted(values)
    if len(data) == 1:
        return float(data[0])
    pos = (len(data) - 1) * min(max(q, 0.0), 100.0) / 100.0
    lo = math.floor(pos)
    hi = min(lo + 1, len(data) - 1)
    return float(data[lo] + (data[hi] - data[lo]) * (pos - lo))


def phase_stats(samples: Sequence[Sample], phases: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """Per phase (in ``phases`` order, else first-seen order) and a final ``all`` row: requests, failures,
    p50/p99 latency in ms, re-pins."""
    order: list[str] = list(phases or [])
    for s in samples:
        if s.phase not in order:
            order.append(s.phase)

    def row(name: str, group: Sequence[Sample]) -> dict[str, Any]:
        lat = [s.latency * 1000.0 for s in group]
        p50, p99 = percentile(lat, 50), percentile(lat, 99)
        return {
            "phase": name,
            "requests": len(group),
            "failures": sum(1 for s in group if not s.ok),
            "p50_ms": None if p50 is None else round(p50, 2),
            "p99_ms": None if p99 is None else round(p99, 2),
            "repins": sum(1 for s in group if s.repinned),
        }

    rows = [row(p, [s for s in samples if s.phase == p]) for p in order]
    rows = [r for r in rows if r["requests"]]
    rows.append(row("all", list(samples)))
    return rows


def judge(status: int | None, body: bytes) -> tuple[bool, str | None]:
    """Whether one health answer counts as served: HTTP 200 and, when it says a state, RUNNING."""
    if status != 200:
        return False, f"HTTP {status}"
    try:
        doc = json.loads(body) if body else None
    except ValueError:
        return True, None
    if isinstance(doc, dict) and isinstance(doc.get("state"), str) and doc["state"] != "RUNNING":
        return False, f"state {doc['state']}"
    return True, None


@dataclasses.dataclass
class LoadReport:
    """What a load run measured."""

    base_url: str
    path: str
    users: int
    seconds: float
    samples: list[Sample]
    phases: list[str]

    @property
    def requests(self) -> int:
        """Requests sent."""
        return len(self.samples)

    @property
    def failures(self) -> int:
        """Requests that failed."""
        return sum(1 for s in self.samples if not s.ok)

    def stats(self) -> list[dict[str, Any]]:
        """:func:`phase_stats` of the samples."""
        return phase_stats(self.samples, self.phases)

    def overall(self) -> dict[str, Any]:
        """The ``all`` row."""
        return self.stats()[-1]

    def failed_samples(self, limit: int = 20) -> list[dict[str, Any]]:
        """The first failed requests (for the record)."""
        return [dataclasses.asdict(s) for s in self.samples if not s.ok][:limit]

    def to_dict(self) -> dict[str, Any]:
        """For the record (stats only, not every sample)."""
        return {
            "base_url": self.base_url,
            "path": self.path,
            "users": self.users,
            "seconds": round(self.seconds, 3),
            "requests": self.requests,
            "failures": self.failures,
            "phases": self.stats(),
            "failed_samples": self.failed_samples(),
        }


class LoadGenerator:
    """Sticky-session traffic to ``base_url + path`` from ``users`` threads until :meth:`stop`.

    Sample times are ``clock()`` minus ``origin`` (default: the clock at :meth:`start`). Refuses
    (``ConfigError``) a base URL that is not http(s). Requests are never retried.
    """

    def __init__(
        self,
        base_url: str,
        path: str = "/status",
        *,
        users: int = 4,
        think: float = 0.02,
        timeout: float = 5.0,
        clock: Callable[[], float] = time.perf_counter,
        origin: float | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.path = path
        self.users = max(1, users)
        self.think = think
        self.timeout = timeout
        self.clock = clock
        self.phase = "start"
        self._phases: list[str] = ["start"]
        self._samples: list[Sample] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._origin = origin
        self._started = 0.0
        self._stopped: float | None = None
        once = retry.RetryPolicy(max_attempts=1, total_timeout=timeout)
        self._clients = [
            chttp.HttpClient(self.base_url, timeout=(timeout, timeout), service="load", policy=once)
            for _ in range(self.users)
        ]

    def set_phase(self, phase: str) -> None:
        """Attribute the following requests to ``phase``."""
        with self._lock:
            self.phase = phase
            if phase not in self._phases:
                self._phases.append(phase)

    def start(self) -> LoadGenerator:
        """Start the virtual users (idempotent)."""
        if self._threads:
            return self
        self._started = self.clock() if self._origin is None else self._origin
        self._stop.clear()
        for i in range(self.users):
            t = threading.Thread(target=self._user, args=(i,), name=f"atlbook-load-{i}", daemon=True)
            self._threads.append(t)
            t.start()
        return self

    def elapsed(self) -> float:
        """Seconds since :meth:`start`."""
        return (self._stopped or self.clock()) - self._started

    def _user(self, i: int) -> None:
        client = self._clients[i]
        jar: dict[str, str] = {}
        while not self._stop.is_set():
            headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in jar.items())} if jar else {}
            phase = self.phase
            t0 = self.clock()
            status: int | None = None
            body = b""
            repinned = False
            error: str | None = None
            try:
                resp = client.request("GET", self.path, headers=headers, retry_statuses=())
                status, body = resp.status, resp.body
                cookie = resp.headers.get("set-cookie")
                if cookie:
                    parsed = http.cookies.SimpleCookie()
                    parsed.load(cookie)
                    for name, morsel in parsed.items():
                        if jar and jar.get(name) != morsel.value:
                            repinned = True
                        jar[name] = morsel.value
            except errors.AtlbookError as e:
                error = f"{type(e).__name__}: {e}"[:200]
            latency = self.clock() - t0
            ok, why = (False, error) if error else judge(status, body)
            sample = Sample(t0 - self._started, phase, latency, ok, status, i, repinned, why)
            with self._lock:
                self._samples.append(sample)
            self._stop.wait(self.think)

    def snapshot(self) -> list[Sample]:
        """The samples so far."""
        with self._lock:
            return list(self._samples)

    def stop(self) -> LoadReport:
        """Stop the users and return the report."""
        self._stop.set()
        for t in self._threads:
            t.join(timeout=self.timeout + 1)
        if self._stopped is None:
            self._stopped = self.clock()
        for c in self._clients:
            c.close()
        with self._lock:
            samples = list(self._samples)
            phases = list(self._phases)
        return LoadReport(self.base_url, self.path, self.users, self.elapsed(), samples, phases)
