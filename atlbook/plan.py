"""Plans, the apply loop and the ledger that makes it resumable and exclusive.

A :class:`Plan` is the ordered list of :class:`Step` s a mutating runbook intends to take — each with a
kind (create / update / delete / noop / check), the object it touches, field-level diffs (old → new),
whether it mutates, and three callables: a *precondition*, an *action* and a *verification*. It renders
as a pandas DataFrame, HTML and plain text before anything changes, and counts what it would do.

:func:`apply` runs the steps in order under the stack's :class:`Ledger`:

- a plan with blocked steps is refused (``PlanError``) before anything runs;
- a plan with nothing to change runs its checks and touches nothing — not even the ledger;
- otherwise the run takes the ledger lock (a second mutating run refuses with ``LedgerLocked`` naming
  the holder and since when), skips steps the ledger marks done (and says so), records each step as
  done as soon as it is verified, and stops at the first failure with the step, the phase
  (precondition / action / verify), the call and the error (:class:`ApplyFailed`) — recorded in the
  ledger too. A rerun resumes at the first unfinished step.

Resume is for an *unfinished* run only: a step counts as done while the ledger holds it with the same
:meth:`Step.digest` (what it brings about — a step asked for different new values runs again), and a
plan that ran to completion is marked so, making the next mutating run start afresh (otherwise a later
change, e.g. replicas 2 → 3, would be skipped as "done").

The :class:`Ledger` lives outside the kernel: a ConfigMap ``atlbook-ledger-<runbook>`` in the stack's
namespace (:class:`ConfigMapBackend`), written with optimistic concurrency (``resourceVersion``
compare-and-swap), and mirrored into the record with :meth:`Ledger.to_dict`. :class:`MemoryBackend` is
the same contract in memory, for unit tests.

The lock: ``holder`` = ``user@host pid N`` plus a run id, ``since``, and a lease renewed at every step.
Another holder's lock is never taken over silently — :meth:`Ledger.break_lock` is the explicit way —
with one exception that is provably safe: a lock left by a process *on this host* that no longer
exists (a crashed or SIGKILLed kernel; a zombie counts as gone) is recovered, and the record says so.
A lease that ran out only changes the message (it says to break the lock explicitly): a run on another
host may be alive behind a broken VPN.

A ledger that cannot live on the stack yet (10-provision of an empty stack keeps it in memory until
the EKS cluster and its namespace exist) is no mutual exclusion on its own. Such a run also takes an
*outer* lock that exists from the first step: :class:`ParameterLock`, the SSM parameter
``/atlbook/<stack>/ledger-lock/<runbook>``, created with ``PutParameter(Overwrite=False)`` (an atomic
create: a second run gets ``ParameterAlreadyExists``), holding the same holder / since / lease, deleted
on release, broken explicitly with the ledger (``atlbook ledger break-lock``). A run reads both locks
before its first mutating call and refuses (``LedgerLocked``) while either is held by a live run.
Taking over a dead same-host holder's parameter goes through a second atomic create (a claim named
after the dead run, removed once the new lock is in place; the next taker re-reads and finds the live
lock), so two reruns after one crash cannot both take it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import getpass
import hashlib
import html
import json
import logging
import os
import pathlib
import re
import socket
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, Literal, Protocol

from atlbook import errors
from atlbook.clients import Clients, k8s, retry

__all__ = [
    "KINDS",
    "LEDGER_PREFIX",
    "ApplyFailed",
    "ApplyReport",
    "ConfigMapBackend",
    "FieldDiff",
    "Ledger",
    "LedgerBackend",
    "MemoryBackend",
    "MemoryLock",
    "ParameterLock",
    "Plan",
    "StackLock",
    "Step",
    "StepEvent",
    "StepResult",
    "apply",
    "ledger_name",
    "lock_parameter_name",
]

log = logging.getLogger(__name__)

StepKind = Literal["create", "update", "delete", "noop", "check"]
KINDS: tuple[StepKind, ...] = ("create", "update", "delete", "noop", "check")
LEDGER_PREFIX = "atlbook-ledger-"
_MASK = "***"


# --- plan ------------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class FieldDiff:
    """One field that changes: ``path`` (dotted), ``old`` → ``new``. ``sensitive`` values render masked."""

    path: str
    old: Any
    new: Any
    sensitive: bool = False

    def render(self, limit: int = 60) -> str:
        """``path: old → new`` with long values shortened and sensitive ones masked."""

        def show(value: Any) -> str:
            if self.sensitive and value is not None:
                return _MASK
            text = "∅" if value is None else json.dumps(value, default=str, sort_keys=True)
            return text if len(text) <= limit else text[: limit - 1] + "…"

        return f"{self.path}: {show(self.old)} → {show(self.new)}"


Check = Callable[[], "bool | str | None"]


@dataclasses.dataclass
class Step:
    """One step of a plan.

    ``precondition`` and ``verify`` return ``True``/``None`` when satisfied and ``False`` or a reason
    string when not. ``action`` does the change (and is idempotent: re-running it after success is a
    no-op). ``mutates`` defaults to ``kind in (create, update, delete)``.
    """

    id: str
    description: str
    kind: StepKind = "noop"
    target: str = ""
    """What the step touches, e.g. ``StatefulSet atlassian/jira`` or ``EKS cluster prod``."""
    diffs: tuple[FieldDiff, ...] = ()
    mutates: bool | None = None
    precondition: Check | None = None
    action: Callable[[], Any] | None = None
    verify: Check | None = None
    blocked: tuple[str, ...] = ()
    """Reasons the step cannot be applied; any blocked step blocks the whole plan."""
    warnings: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise errors.PlanError(
                f"step {self.id!r}: unknown kind {self.kind!r} (allowed: {', '.join(KINDS)})"
            )
        if not self.id:
            raise errors.PlanError("a step needs an id")
        if self.mutates is None:
            self.mutates = self.kind in ("create", "update", "delete")

    @property
    def is_mutating(self) -> bool:
        """Whether the step changes the stack."""
        return bool(self.mutates)

    def digest(self) -> str:
        """A short hash of what the step brings about (id, kind, target, new values of its diffs).

        The ledger keeps it with a done step; a rerun skips the step only while it is the same.
        """
        doc = [
            self.id,
            self.kind,
            self.target,
            sorted((d.path, json.dumps(d.new, default=str)) for d in self.diffs),
        ]
        return hashlib.sha256(json.dumps(doc).encode()).hexdigest()[:16]

    def to_dict(self) -> dict[str, Any]:
        """A record-safe description (no callables; sensitive values masked)."""
        return {
            "id": self.id,
            "description": self.description,
            "kind": self.kind,
            "target": self.target,
            "mutates": self.is_mutating,
            "diffs": [d.render(limit=200) for d in self.diffs],
            "blocked": list(self.blocked),
            "warnings": list(self.warnings),
        }


class Plan:
    """An ordered list of steps, shown before anything changes. Step ids are unique.

    Refuses (``PlanError``) a duplicate step id.
    """

    def __init__(self, name: str, steps: Iterable[Step] = (), *, stack: str | None = None) -> None:
        self.name = name
        self.stack = stack
        self.steps: list[Step] = []
        for step in steps:
            self.add(step)

    def __repr__(self) -> str:
        c = self.counts
        return (
            f"Plan({self.name!r}, {len(self.steps)} steps: {c['create']} create, {c['update']} update, "
            f"{c['delete']} delete)"
        )

    def __iter__(self) -> Iterator[Step]:
        return iter(self.steps)

    def __len__(self) -> int:
        return len(self.steps)

    def add(self, step: Step) -> Step:
        """Append ``step``; returns it."""
        if any(s.id == step.id for s in self.steps):
            raise errors.PlanError(f"plan {self.name!r} already has a step {step.id!r}")
        self.steps.append(step)
        return step

    def step(self, step_id: str) -> Step:
        """The step with id ``step_id`` (``KeyError`` if none)."""
        for s in self.steps:
            if s.id == step_id:
                return s
        raise KeyError(step_id)

    @property
    def counts(self) -> dict[str, int]:
        """Number of steps per kind (every kind present, zero included)."""
        out: dict[str, int] = dict.fromkeys(KINDS, 0)
        for s in self.steps:
            out[s.kind] += 1
        return out

    @property
    def changes(self) -> int:
        """Number of mutating steps."""
        return sum(1 for s in self.steps if s.is_mutating)

    @property
    def blocked(self) -> list[tuple[str, str]]:
        """``(step id, reason)`` for every blocked step."""
        return [(s.id, r) for s in self.steps for r in s.blocked]

    @property
    def is_blocked(self) -> bool:
        """True when any step is blocked."""
        return bool(self.blocked)

    def fingerprint(self) -> str:
        """A short hash of the steps (ids, kinds, targets, diffs): tells a changed plan from the same one."""
        doc = [(s.id, s.kind, s.target, [d.render(200) for d in s.diffs]) for s in self.steps]
        return hashlib.sha256(json.dumps(doc, default=str).encode()).hexdigest()[:16]

    def summary(self) -> str:
        """One line: counts, and whether it is blocked."""
        c = self.counts
        text = (
            f"{self.name}: {len(self.steps)} steps — {c['create']} to create, {c['update']} to update, "
            f"{c['delete']} to delete, {c['noop']} unchanged, {c['check']} checks"
        )
        if self.is_blocked:
            text += f"; BLOCKED ({len(self.blocked)} reason{'s' if len(self.blocked) != 1 else ''})"
        return text

    def rows(self) -> list[dict[str, Any]]:
        """One dict per step: the table's rows."""
        return [
            {
                "#": i,
                "step": s.id,
                "kind": s.kind,
                "target": s.target,
                "description": s.description,
                "changes": "; ".join(d.render() for d in s.diffs),
                "mutates": s.is_mutating,
                "blocked": "; ".join(s.blocked),
                "warnings": "; ".join(s.warnings),
            }
            for i, s in enumerate(self.steps, 1)
        ]

    def to_dataframe(self) -> Any:
        """The plan as a ``pandas.DataFrame`` (one row per step)."""
        import pandas as pd

        columns = ["#", "step", "kind", "target", "description", "changes", "mutates", "blocked", "warnings"]
        return pd.DataFrame(self.rows(), columns=columns).set_index("#")

    def to_html(self) -> str:
        """A self-contained HTML table with a summary line (escaped)."""
        head = f"<p><b>{html.escape(self.summary())}</b></p>"
        if not self.steps:
            return head
        return head + str(self.to_dataframe().to_html(escape=True, border=0))

    def _repr_html_(self) -> str:
        return self.to_html()

    def to_text(self) -> str:
        """A plain-text table with the summary first."""
        lines = [self.summary()]
        for r in self.rows():
            flag = "BLOCKED " if r["blocked"] else ""
            lines.append(f"{r['#']:>3}. [{r['kind']:<6}] {flag}{r['step']}: {r['description']}")
            if r["changes"]:
                lines.append(f"       {r['changes']}")
            if r["blocked"]:
                lines.append(f"       blocked: {r['blocked']}")
            if r["warnings"]:
                lines.append(f"       warning: {r['warnings']}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.to_text()

    def to_dict(self) -> dict[str, Any]:
        """For the record: name, stack, counts, fingerprint, steps."""
        return {
            "name": self.name,
            "stack": self.stack,
            "fingerprint": self.fingerprint(),
            "counts": self.counts,
            "changes": self.changes,
            "blocked": [{"step": s, "reason": r} for s, r in self.blocked],
            "steps": [s.to_dict() for s in self.steps],
        }


# --- ledger ----------------------------------------------------------------------------------------------


class LedgerBackend(Protocol):
    """Where a ledger document lives. ``version`` is an opaque compare-and-swap token."""

    description: str

    def load(self) -> tuple[dict[str, Any], str | None]:
        """The document and its version; ``({}, None)`` when there is none yet."""
        ...

    def save(self, doc: Mapping[str, Any], version: str | None) -> str:
        """Write ``doc`` if the stored version is still ``version`` (``None``: create); the new version.

        Raises ``errors.Conflict`` when someone else wrote in between.
        """
        ...


class MemoryBackend:
    """An in-memory :class:`LedgerBackend` (unit tests); shared by several ledgers to simulate runs."""

    def __init__(self) -> None:
        self.description = "memory"
        self.doc: dict[str, Any] | None = None
        self.version = 0
        self.writes = 0

    def load(self) -> tuple[dict[str, Any], str | None]:
        """See :class:`LedgerBackend`."""
        if self.doc is None:
            return {}, None
        return json.loads(json.dumps(self.doc)), str(self.version)

    def save(self, doc: Mapping[str, Any], version: str | None) -> str:
        """See :class:`LedgerBackend`."""
        current = None if self.doc is None else str(self.version)
        if current != version:
            raise errors.api_error(
                errors.K8sApiError, "ledger changed concurrently", status=409, operation="save ledger"
            )
        self.doc = json.loads(json.dumps(doc))
        self.version += 1
        self.writes += 1
        return str(self.version)


def ledger_name(runbook: str) -> str:
    """``atlbook-ledger-<runbook>`` as a valid ConfigMap name (lower-case, DNS-safe, ≤ 253 chars)."""
    safe = "".join(ch if ch.isalnum() or ch in "-." else "-" for ch in runbook.lower()).strip("-.")
    if not safe:
        raise errors.PlanError(f"runbook name {runbook!r} gives no ledger name")
    return (LEDGER_PREFIX + safe)[:253]


class ConfigMapBackend:
    """The ledger as ConfigMap ``atlbook-ledger-<runbook>`` in ``namespace`` (key ``ledger.json``).

    Creates are by name (409 → someone else created it: ``Conflict``); updates are PUTs carrying the
    ``resourceVersion`` read, so a concurrent writer makes this one fail with ``Conflict``. With
    ``create_namespace`` (default) a missing namespace is created for it (labelled managed-by atlbook):
    the ledger is written before the first step, which may be the one creating the namespace.
    """

    KEY = "ledger.json"

    def __init__(
        self, clients: Clients, namespace: str, runbook: str, *, create_namespace: bool = True
    ) -> None:
        self.clients = clients
        self.create_namespace = create_namespace
        self.namespace = namespace
        self.name = ledger_name(runbook)
        self.runbook = runbook
        self.description = f"ConfigMap {namespace}/{self.name}"

    def load(self) -> tuple[dict[str, Any], str | None]:
        """See :class:`LedgerBackend`."""
        try:
            cm = k8s.get(self.clients.k8s, "ConfigMap", self.name, self.namespace, policy=self.clients.policy)
        except errors.NotFound:
            return {}, None
        raw = (cm.get("data") or {}).get(self.KEY) or "{}"
        try:
            doc = json.loads(raw)
        except ValueError as e:
            raise errors.PlanError(f"{self.description}: {self.KEY} is not JSON; fix or delete it") from e
        return (doc if isinstance(doc, dict) else {}), str(cm["metadata"]["resourceVersion"])

    def save(self, doc: Mapping[str, Any], version: str | None) -> str:
        """See :class:`LedgerBackend`."""
        body: dict[str, Any] = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": self.name,
                "namespace": self.namespace,
                "labels": {"app.kubernetes.io/managed-by": "atlbook", "atlbook.io/ledger": "true"},
                "annotations": {"atlbook.io/runbook": self.runbook},
            },
            "data": {self.KEY: json.dumps(doc, sort_keys=True, default=str)},
        }
        if version is None:
            try:
                out = k8s.create(self.clients.k8s, body, policy=self.clients.policy)
            except errors.NotFound:
                if not self.create_namespace:
                    raise
                log.info("namespace %s does not exist yet: creating it for the ledger", self.namespace)
                namespace = {
                    "apiVersion": "v1",
                    "kind": "Namespace",
                    "metadata": {
                        "name": self.namespace,
                        "labels": {"app.kubernetes.io/managed-by": "atlbook"},
                    },
                }
                try:
                    k8s.create(self.clients.k8s, namespace, policy=self.clients.policy)
                except errors.Conflict:
                    pass
                out = k8s.create(self.clients.k8s, body, policy=self.clients.policy)
        else:
            body["metadata"]["resourceVersion"] = version
            out = k8s.replace(self.clients.k8s, body, policy=self.clients.policy)
        return str(out["metadata"]["resourceVersion"])


# --- the outer lock (exists from the first step) --------------------------------------------------------


class StackLock(Protocol):
    """A lock outside the stack's cluster: a JSON document created atomically, or not at all.

    ``create`` is the atomic step: it stores ``lock`` only when there is none and returns the lock
    stored afterwards — this one, or the one someone else holds. ``claim`` is the same for a side
    marker ``key`` (``True`` when this call created it).
    """

    description: str

    def read(self) -> dict[str, Any] | None:
        """The lock held now, or ``None``."""
        ...

    def create(self, lock: Mapping[str, Any]) -> dict[str, Any]:
        """Store ``lock`` if there is none; the lock stored afterwards."""
        ...

    def replace(self, lock: Mapping[str, Any]) -> None:
        """Overwrite the lock (lease renewal by its holder, takeover after a claim)."""
        ...

    def delete(self) -> None:
        """Remove the lock (no-op when there is none)."""
        ...

    def claim(self, key: str, value: Mapping[str, Any]) -> bool:
        """Create side marker ``key`` atomically; ``True`` when this call created it."""
        ...

    def unclaim(self, key: str) -> None:
        """Remove side marker ``key`` (no-op when absent)."""
        ...


class MemoryLock:
    """An in-memory :class:`StackLock` (unit tests); shared by several ledgers to simulate runs."""

    def __init__(self) -> None:
        self.description = "memory lock"
        self.lock: dict[str, Any] | None = None
        self.claims: dict[str, dict[str, Any]] = {}
        self.writes = 0

    def read(self) -> dict[str, Any] | None:
        """See :class:`StackLock`."""
        return None if self.lock is None else dict(self.lock)

    def create(self, lock: Mapping[str, Any]) -> dict[str, Any]:
        """See :class:`StackLock`."""
        if self.lock is None:
            self.lock = dict(lock)
            self.writes += 1
        return dict(self.lock)

    def replace(self, lock: Mapping[str, Any]) -> None:
        """See :class:`StackLock`."""
        self.lock = dict(lock)
        self.writes += 1

    def delete(self) -> None:
        """See :class:`StackLock`."""
        self.lock = None

    def claim(self, key: str, value: Mapping[str, Any]) -> bool:
        """See :class:`StackLock`."""
        if key in self.claims:
            return False
        self.claims[key] = dict(value)
        return True

    def unclaim(self, key: str) -> None:
        """See :class:`StackLock`."""
        self.claims.pop(key, None)


_SSM_SAFE = re.compile(r"[^A-Za-z0-9_.-]+")


def lock_parameter_name(stack: str, runbook: str) -> str:
    """``/atlbook/<stack>/ledger-lock/<runbook>``: the SSM parameter of a stack's ledger lock.

    Characters SSM does not allow become ``-``. Refuses (``PlanError``) an empty stack or runbook name.
    """
    parts = [_SSM_SAFE.sub("-", str(x)).strip("-.") for x in (stack, runbook)]
    if not all(parts):
        raise errors.PlanError(f"stack {stack!r} and runbook {runbook!r} give no lock parameter name")
    return f"/atlbook/{parts[0]}/ledger-lock/{parts[1]}"[:1011]


class ParameterLock:
    """The outer ledger lock as SSM parameter :func:`lock_parameter_name` (a ``String`` holding JSON).

    Exists from the first step of a run (it needs nothing but the AWS account), so it excludes a second
    run even while the ledger itself is still in memory (10-provision of an empty stack). Every call
    goes through :meth:`atlbook.clients.Clients.aws_call`: reads and deletes are retried under the
    retry policy; the create (``PutParameter`` with ``Overwrite=False``) is attempted once, and on a lost
    answer the parameter is read back before trying again (it may be ours already). IAM:
    ``ssm:GetParameter``, ``ssm:PutParameter``, ``ssm:DeleteParameter`` on
    ``arn:aws:ssm:<region>:<account>:parameter/atlbook/*``.
    """

    def __init__(self, clients: Clients, stack: str, runbook: str) -> None:
        self.clients = clients
        self.name = lock_parameter_name(stack, runbook)
        self.description = f"SSM parameter {self.name}"

    def _get(self, name: str) -> dict[str, Any] | None:
        try:
            out = self.clients.aws_call("ssm", "get_parameter", idempotent=True, Name=name)
        except errors.NotFound:
            return None
        raw = (out.get("Parameter") or {}).get("Value") or "{}"
        try:
            doc = json.loads(raw)
        except ValueError as e:
            raise errors.PlanError(
                f"SSM parameter {name} is not a lock (not JSON); delete it explicitly "
                "(atlbook ledger break-lock)"
            ) from e
        return doc if isinstance(doc, dict) else {}

    def _create(self, name: str, value: Mapping[str, Any]) -> dict[str, Any]:
        """Create ``name`` once; on a lost answer read it back; the value stored afterwards."""
        text = json.dumps(value, sort_keys=True, default=str)

        def put() -> dict[str, Any]:
            self.clients.aws_call(
                "ssm",
                "put_parameter",
                idempotent=False,
                Name=name,
                Value=text,
                Type="String",
                Overwrite=False,
                Description="atlbook ledger lock (atlbook ledger show / break-lock)",
            )
            return dict(value)

        return retry.create_or_get(
            put, lambda: self._get(name), description=f"create {name}", policy=self.clients.policy
        )

    def read(self) -> dict[str, Any] | None:
        """See :class:`StackLock`."""
        return self._get(self.name)

    def create(self, lock: Mapping[str, Any]) -> dict[str, Any]:
        """See :class:`StackLock`."""
        return self._create(self.name, lock)

    def replace(self, lock: Mapping[str, Any]) -> None:
        """See :class:`StackLock`."""
        self.clients.aws_call(
            "ssm",
            "put_parameter",
            idempotent=True,
            Name=self.name,
            Value=json.dumps(lock, sort_keys=True, default=str),
            Type="String",
            Overwrite=True,
        )

    def _delete(self, name: str) -> None:
        try:
            self.clients.aws_call("ssm", "delete_parameter", idempotent=True, Name=name)
        except errors.NotFound:
            pass

    def delete(self) -> None:
        """See :class:`StackLock`."""
        self._delete(self.name)

    def claim(self, key: str, value: Mapping[str, Any]) -> bool:
        """See :class:`StackLock`."""
        stored = self._create(f"{self.name}.{key}", value)
        return stored.get("run_id") == value.get("run_id")

    def unclaim(self, key: str) -> None:
        """See :class:`StackLock`."""
        self._delete(f"{self.name}.{key}")


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _iso(t: dt.datetime) -> str:
    return t.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_iso(text: str | None) -> dt.datetime | None:
    if not text:
        return None
    try:
        return dt.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)
    except ValueError:
        return None


def _pid_alive(pid: int) -> bool:
    """Whether process ``pid`` exists on this host and has not exited (a zombie has exited)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = pathlib.Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no /proc (macOS): kill(pid, 0) is the answer
    # "pid (comm) S ...": the state follows the last ")" (comm may hold spaces and parentheses)
    state = stat.rsplit(")", 1)[-1].split()[:1]
    return state != ["Z"]


def _default_identity() -> dict[str, Any]:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return {"user": user, "host": socket.gethostname(), "pid": os.getpid()}


class Ledger:
    """Progress and the lock of one runbook on one stack, kept in a :class:`LedgerBackend`.

    ``clock`` returns aware UTC datetimes (tests inject one); ``identity`` overrides user/host/pid
    (tests simulate two runs). ``lease_seconds``: how long a lock counts as live without renewal.
    ``outer``: a :class:`StackLock` taken before the ledger's own lock and released after it (see the
    module docstring: a ledger that is not on the stack yet needs it).
    """

    def __init__(
        self,
        backend: LedgerBackend,
        *,
        runbook: str,
        stack: str | None = None,
        run_id: str | None = None,
        lease_seconds: float = 900.0,
        clock: Callable[[], dt.datetime] = _now,
        identity: Mapping[str, Any] | None = None,
        pid_alive: Callable[[int], bool] = _pid_alive,
        outer: StackLock | None = None,
    ) -> None:
        self.backend = backend
        self.outer = outer
        self._outer_lock: dict[str, Any] | None = None
        self._outer_renewed: dt.datetime | None = None
        self.runbook = runbook
        self.stack = stack
        self.run_id = run_id or uuid.uuid4().hex[:12]
        self.lease_seconds = lease_seconds
        self.clock = clock
        ident = dict(identity or _default_identity())
        self.user = str(ident["user"])
        self.host = str(ident["host"])
        self.pid = int(ident["pid"])
        self.holder = f"{self.user}@{self.host} pid {self.pid}"
        self._pid_alive = pid_alive
        self._doc: dict[str, Any] = {}
        self._version: str | None = None
        self.notes: list[str] = []
        """What this run noticed about the ledger (e.g. a recovered lock), for the record."""

    def __repr__(self) -> str:
        return f"Ledger({self.backend.description}, run {self.run_id})"

    # --- reading ---

    def refresh(self) -> dict[str, Any]:
        """Re-read the stored document."""
        self._doc, self._version = self.backend.load()
        return self._doc

    @property
    def steps(self) -> dict[str, dict[str, Any]]:
        """Done steps by id: ``{"done_at", "run_id", "detail"}`` (as last read)."""
        return dict(self._doc.get("steps") or {})

    def is_done(self, step_id: str) -> bool:
        """Whether ``step_id`` was recorded done (as last read)."""
        return step_id in (self._doc.get("steps") or {})

    @property
    def lock_info(self) -> dict[str, Any] | None:
        """The lock as last read, or ``None``."""
        lock = self._doc.get("lock")
        return dict(lock) if lock else None

    def holds_lock(self) -> bool:
        """Whether this run holds the lock (as last read)."""
        lock = self._doc.get("lock") or {}
        return bool(lock) and lock.get("run_id") == self.run_id

    def to_dict(self) -> dict[str, Any]:
        """The ledger for the record (as last read, plus this run's notes)."""
        return {
            "backend": self.backend.description,
            "runbook": self.runbook,
            "stack": self.stack,
            "run_id": self.run_id,
            "lock": self.lock_info,
            "steps": self.steps,
            "failures": list(self._doc.get("failures") or []),
            "plan": self._doc.get("plan"),
            "completed": self._doc.get("completed"),
            "notes": list(self.notes),
            "outer_lock": (
                None if self.outer is None else {"where": self.outer.description, "lock": self._outer_lock}
            ),
        }

    # --- writing (compare-and-swap) ---

    def _update(self, change: Callable[[dict[str, Any]], None], *, what: str, attempts: int = 8) -> None:
        for _ in range(attempts):
            doc, version = self.backend.load()
            doc = dict(doc)
            doc.setdefault("runbook", self.runbook)
            doc.setdefault("stack", self.stack)
            change(doc)
            try:
                self._version = self.backend.save(doc, version)
            except errors.Conflict:
                log.info("ledger %s changed while writing (%s); re-reading", self.backend.description, what)
                continue
            self._doc = doc
            return
        raise errors.PlanError(f"{self.backend.description}: could not {what}: it keeps changing under us")

    def _lease_until(self) -> str:
        return _iso(self.clock() + dt.timedelta(seconds=self.lease_seconds))

    def _check_ours(self, doc: Mapping[str, Any]) -> None:
        lock = doc.get("lock") or {}
        if lock.get("run_id") != self.run_id:
            holder = lock.get("holder")
            raise errors.LedgerLocked(
                f"{self.backend.description}: this run ({self.holder}) no longer holds the lock"
                + (f"; {holder} holds it since {lock.get('since')}" if holder else " (it was broken)"),
                holder=holder,
                since=lock.get("since"),
            )

    def _lock_doc(self, since: str | None = None) -> dict[str, Any]:
        return {
            "holder": self.holder,
            "user": self.user,
            "host": self.host,
            "pid": self.pid,
            "run_id": self.run_id,
            "runbook": self.runbook,
            "stack": self.stack,
            "since": since or _iso(self.clock()),
            "lease_until": self._lease_until(),
        }

    def _judge(self, lock: Mapping[str, Any] | None, where: str) -> str | None:
        """``None``: free or ours. A note: held by a dead process on this host (recoverable).

        Raises ``LedgerLocked`` naming the holder and since when otherwise.
        """
        if not lock or lock.get("run_id") == self.run_id:
            return None
        pid = lock.get("pid")
        if lock.get("host") == self.host and isinstance(pid, int) and not self._pid_alive(pid):
            return (
                f"recovered the lock of {lock.get('holder')} (run {lock.get('run_id')}, since "
                f"{lock.get('since')}) in {where}: that process no longer exists on this host"
            )
        lease = _parse_iso(lock.get("lease_until"))
        stale = lease is not None and lease < self.clock()
        hint = (
            f"; its lease expired at {lock.get('lease_until')} — if that run is gone, break the lock "
            f"explicitly (atlbook ledger break-lock --runbook {self.runbook} --reason …)"
            if stale
            else "; wait for it to finish, or break the lock explicitly if it is gone"
        )
        raise errors.LedgerLocked(
            f"{where}: another run holds the lock: {lock.get('holder')} (run {lock.get('run_id')}) "
            f"since {lock.get('since')}{hint}",
            holder=lock.get("holder"),
            since=lock.get("since"),
        )

    def _note(self, note: str, where: str) -> None:
        if note not in self.notes:
            self.notes.append(note)
        log.warning("%s: %s", where, note)

    def _take_outer(self) -> None:
        """Take the outer lock (atomic create; a dead same-host holder's through a claim)."""
        outer = self.outer
        assert outer is not None
        for _ in range(4):
            current = outer.read()
            note = self._judge(current, outer.description)
            if current and current.get("run_id") == self.run_id:
                self._outer_lock = current
                return
            if note is None:  # free: the atomic create decides between racing runs
                stored = outer.create(self._lock_doc())
                if stored.get("run_id") == self.run_id:
                    self._outer_lock, self._outer_renewed = stored, self.clock()
                    return
                continue  # someone was faster: judge their lock
            assert current is not None
            key = f"takeover.{_SSM_SAFE.sub('-', str(current.get('run_id')))}"
            if not outer.claim(key, {"run_id": self.run_id, "holder": self.holder, "at": _iso(self.clock())}):
                raise errors.LedgerLocked(
                    f"{outer.description}: another run on this host is taking over the lock of "
                    f"{current.get('holder')} (since {current.get('since')}); try again",
                    holder=current.get("holder"),
                    since=current.get("since"),
                )
            # holding the claim, re-read: another taker may have replaced the dead lock before we
            # claimed. Once ours is in place the claim has done its job (a later taker re-reads and
            # finds this live lock), so it is removed at once.
            try:
                again = outer.read()
                if not again or again.get("run_id") != current.get("run_id"):
                    continue  # it changed meanwhile: start over
                mine = self._lock_doc()
                outer.replace(mine)
                self._outer_lock, self._outer_renewed = mine, self.clock()
                self._note(note, outer.description)
                return
            finally:
                outer.unclaim(key)
        raise errors.PlanError(f"{outer.description}: could not take the lock: it keeps changing under us")

    def _release_outer(self) -> None:
        outer = self.outer
        if outer is None:
            return
        current = outer.read()
        if current and current.get("run_id") == self.run_id:
            outer.delete()
        self._outer_lock = None

    def _renew_outer(self, *, force: bool = False) -> None:
        """Extend the outer lease when a third of it has gone (``LedgerLocked`` if it was broken)."""
        if self.outer is None or self._outer_lock is None:
            return
        now = self.clock()
        due = (
            self._outer_renewed is None
            or (now - self._outer_renewed).total_seconds() > self.lease_seconds / 3
        )
        if not (force or due):
            return
        current = self.outer.read()
        if not current or current.get("run_id") != self.run_id:
            holder = (current or {}).get("holder")
            raise errors.LedgerLocked(
                f"{self.outer.description}: this run ({self.holder}) no longer holds the lock"
                + (
                    f"; {holder} holds it since {(current or {}).get('since')}"
                    if holder
                    else " (it was broken)"
                ),
                holder=holder,
                since=(current or {}).get("since"),
            )
        mine = self._lock_doc(since=current.get("since"))
        self.outer.replace(mine)
        self._outer_lock, self._outer_renewed = mine, now

    def acquire(self) -> None:
        """Take the lock for this run, or raise ``LedgerLocked`` naming the holder and since when.

        Re-entrant for this run. Recovers a lock left by a dead process on this same host. With an
        ``outer`` lock, both locks are read first: a run refuses before its first mutating call.
        """
        if self.outer is not None and not self.holds_lock():
            self._judge(self.outer.read(), self.outer.description)  # refuse before writing anything
            self._judge(self.backend.load()[0].get("lock"), self.backend.description)
            self._take_outer()

        def take(doc: dict[str, Any]) -> None:
            lock = doc.get("lock") or {}
            note = self._judge(lock, self.backend.description)
            if note is not None:
                self._note(note, self.backend.description)
            since = lock.get("since") if lock.get("run_id") == self.run_id else None
            doc["lock"] = self._lock_doc(since=since)

        try:
            self._update(take, what="take the lock")
        except BaseException:
            if not self.holds_lock():
                try:
                    self._release_outer()
                except errors.AtlbookError as e:
                    log.warning("could not release %s: %s", self.outer and self.outer.description, e)
            raise

    def renew(self) -> None:
        """Extend this run's lease (``LedgerLocked`` if the lock was broken meanwhile)."""

        def renew(doc: dict[str, Any]) -> None:
            self._check_ours(doc)
            doc["lock"]["lease_until"] = self._lease_until()

        self._renew_outer(force=True)
        self._update(renew, what="renew the lock")

    def release(self) -> None:
        """Give the lock back (no-op if this run does not hold it)."""

        def drop(doc: dict[str, Any]) -> None:
            if (doc.get("lock") or {}).get("run_id") == self.run_id:
                doc["lock"] = None

        try:
            self._update(drop, what="release the lock")
        finally:
            self._release_outer()

    def break_lock(self, reason: str) -> dict[str, Any] | None:
        """Remove whoever's lock, explicitly; the ledger keeps who broke it, when and why.

        With an ``outer`` lock, that one is removed too (and named in the history). Returns the lock
        that was removed — the ledger's, else the outer one — (``None`` if there was none). A ledger
        that does not exist yet is not created: only the outer lock is removed then.
        """
        broken: list[dict[str, Any] | None] = [None]
        outer_broken = None
        if self.outer is not None:
            outer_broken = self.outer.read()
            if outer_broken is not None:
                self.outer.delete()
                log.warning(
                    "%s: lock broken by %s (%s): was %s",
                    self.outer.description,
                    self.holder,
                    reason,
                    outer_broken,
                )

        def brk(doc: dict[str, Any]) -> None:
            broken[0] = doc.get("lock")
            doc["lock"] = None
            event: dict[str, Any] = {
                "event": "lock broken",
                "by": self.holder,
                "at": _iso(self.clock()),
                "reason": reason,
                "lock": broken[0],
            }
            if self.outer is not None:
                event["outer"] = {"where": self.outer.description, "lock": outer_broken}
            doc.setdefault("history", []).append(event)

        if self.refresh() or outer_broken is None:
            self._update(brk, what="break the lock")
            log.warning(
                "%s: lock broken by %s (%s): was %s", self.backend.description, self.holder, reason, broken[0]
            )
        return broken[0] or outer_broken

    def record_done(self, step_id: str, detail: str | None = None, *, digest: str | None = None) -> None:
        """Record ``step_id`` done by this run (must hold the lock); renews the lease."""

        def mark(doc: dict[str, Any]) -> None:
            self._check_ours(doc)
            doc.setdefault("steps", {})[step_id] = {
                "done_at": _iso(self.clock()),
                "run_id": self.run_id,
                "detail": detail,
                "digest": digest,
            }
            doc["lock"]["lease_until"] = self._lease_until()

        self._renew_outer()
        self._update(mark, what=f"record step {step_id} done")

    def record_failure(self, step_id: str, phase: str, call: str, error: str) -> None:
        """Record that ``step_id`` failed (kept: the last 20 failures)."""

        def fail(doc: dict[str, Any]) -> None:
            failures = list(doc.get("failures") or [])
            failures.append(
                {
                    "step": step_id,
                    "phase": phase,
                    "call": call,
                    "error": error[:500],
                    "run_id": self.run_id,
                    "at": _iso(self.clock()),
                }
            )
            doc["failures"] = failures[-20:]

        self._update(fail, what=f"record step {step_id} failed")

    def record_plan(self, plan: Plan) -> None:
        """Remember which plan this run applies (fingerprint + counts).

        When the previous plan ran to completion its done steps are no resume point: they move to the
        history and this run starts afresh (a note says so).
        """

        def put(doc: dict[str, Any]) -> None:
            completed = doc.get("completed")
            if completed:
                note = (
                    f"the previous run ({completed.get('run_id')}) completed at {completed.get('at')}; "
                    "starting afresh"
                )
                if note not in self.notes:
                    self.notes.append(note)
                doc.setdefault("history", []).append(
                    {
                        "event": "completed",
                        "plan": doc.get("plan"),
                        "completed": completed,
                        "steps": sorted(doc.get("steps") or {}),
                    }
                )
                doc["history"] = doc["history"][-20:]
                doc["steps"] = {}
                doc["completed"] = None
            doc["plan"] = {
                "name": plan.name,
                "fingerprint": plan.fingerprint(),
                "counts": plan.counts,
                "run_id": self.run_id,
                "at": _iso(self.clock()),
            }

        self._update(put, what="record the plan")

    def record_complete(self, plan: Plan) -> None:
        """Mark the current plan run to completion: the next mutating run starts afresh."""

        def done(doc: dict[str, Any]) -> None:
            self._check_ours(doc)
            doc["completed"] = {
                "plan": plan.name,
                "fingerprint": plan.fingerprint(),
                "run_id": self.run_id,
                "at": _iso(self.clock()),
            }

        self._update(done, what="record the plan complete")

    def clear(self) -> None:
        """Forget every done step (explicit restart from scratch); keeps the lock and history."""

        def wipe(doc: dict[str, Any]) -> None:
            doc["steps"] = {}
            doc.setdefault("history", []).append(
                {"event": "cleared", "by": self.holder, "at": _iso(self.clock())}
            )

        self._update(wipe, what="clear the ledger")

    @contextmanager
    def locked(self) -> Iterator[Ledger]:
        """``with ledger.locked():`` — acquire, and release on the way out (also on failure)."""
        self.acquire()
        try:
            yield self
        finally:
            try:
                self.release()
            except errors.AtlbookError as e:  # never hide the original failure
                log.warning("could not release %s: %s", self.backend.description, e)


# --- apply -----------------------------------------------------------------------------------------------

StepStatus = Literal["start", "done", "skipped", "failed", "unchanged", "checked"]


@dataclasses.dataclass(frozen=True)
class StepEvent:
    """Progress of :func:`apply`: step ``index`` of ``total`` reached ``status``."""

    index: int
    total: int
    step: Step
    status: StepStatus
    message: str = ""


@dataclasses.dataclass(frozen=True)
class StepResult:
    """What happened to one step."""

    id: str
    status: Literal["done", "skipped", "failed", "unchanged", "checked", "not-run"]
    message: str = ""
    seconds: float = 0.0


@dataclasses.dataclass
class ApplyReport:
    """Outcome of :func:`apply` (also attached to :class:`ApplyFailed`)."""

    plan: str
    results: list[StepResult]
    ledger: dict[str, Any] | None

    @property
    def counts(self) -> dict[str, int]:
        """Steps per result status."""
        out: dict[str, int] = {}
        for r in self.results:
            out[r.status] = out.get(r.status, 0) + 1
        return out

    def to_dict(self) -> dict[str, Any]:
        """For the record."""
        return {
            "plan": self.plan,
            "counts": self.counts,
            "results": [dataclasses.asdict(r) for r in self.results],
            "ledger": self.ledger,
        }


class ApplyFailed(errors.PlanError):
    """A step failed in :func:`apply`: ``step`` (id), ``phase`` (precondition/action/verify), ``call``."""

    def __init__(self, message: str, *, step: str, phase: str, call: str, report: ApplyReport) -> None:
        super().__init__(message)
        self.step = step
        self.phase = phase
        self.call = call
        self.report = report


def _judge(outcome: Any) -> str | None:
    """``None`` when a check passed (True/None), else the reason."""
    if outcome is None or outcome is True:
        return None
    if outcome is False:
        return "not satisfied"
    return str(outcome)


def _call_name(error: BaseException) -> str:
    operation = getattr(error, "operation", None)
    service = getattr(error, "service", None)
    if operation:
        return f"{service}: {operation}" if service and service not in str(operation) else str(operation)
    return type(error).__name__


def _log_progress(event: StepEvent) -> None:
    log.info("[%d/%d] %s %s %s", event.index, event.total, event.status, event.step.id, event.message)


def apply(
    plan: Plan,
    ledger: Ledger | None,
    *,
    progress: Callable[[StepEvent], None] | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> ApplyReport:
    """Run ``plan`` step by step under ``ledger`` (see the module docstring).

    ``ledger`` may be ``None`` only for a plan without mutating steps. ``progress`` receives a
    :class:`StepEvent` per transition (default: log lines). Raises ``PlanError`` (blocked plan, or a
    mutating plan without ledger), ``LedgerLocked``, or :class:`ApplyFailed` at the first failure.
    """
    emit = progress or _log_progress
    if plan.is_blocked:
        reasons = "; ".join(f"{s}: {r}" for s, r in plan.blocked)
        raise errors.PlanError(f"plan {plan.name!r} is blocked, nothing was changed: {reasons}")
    mutating = plan.changes > 0
    if mutating and ledger is None:
        raise errors.PlanError(f"plan {plan.name!r} changes the stack and needs a ledger")
    total = len(plan.steps)
    results: list[StepResult] = []

    def run_steps() -> None:
        if ledger is not None and mutating:
            ledger.refresh()
        for index, step in enumerate(plan.steps, 1):
            note = ""
            if ledger is not None and mutating and ledger.is_done(step.id):
                record = ledger.steps[step.id]
                if record.get("digest") in (None, step.digest()):
                    msg = f"already done (at {record.get('done_at')}); skipped"
                    emit(StepEvent(index, total, step, "skipped", msg))
                    results.append(StepResult(step.id, "skipped", msg))
                    continue
                note = f"done at {record.get('done_at')} with other changes; running it again"
            emit(StepEvent(index, total, step, "start", note or step.description))
            started = clock()
            phase = "precondition"
            try:
                if step.precondition is not None:
                    reason = _judge(step.precondition())
                    if reason is not None:
                        raise errors.PreflightFailed(f"precondition of {step.id} failed: {reason}")
                phase = "action"
                detail = step.action() if step.action is not None else None
                phase = "verify"
                if step.verify is not None:
                    reason = _judge(step.verify())
                    if reason is not None:
                        raise errors.PlanError(f"verification of {step.id} failed: {reason}")
            except errors.AtlbookError as e:
                call = _call_name(e) if phase == "action" else phase
                message = f"step {index}/{total} {step.id} ({step.description}) failed in {phase}: {e}"
                results.append(StepResult(step.id, "failed", str(e), clock() - started))
                results.extend(StepResult(s.id, "not-run") for s in plan.steps[index:])
                if ledger is not None and mutating:
                    try:
                        ledger.record_failure(step.id, phase, call, str(e))
                    except errors.AtlbookError as le:
                        log.warning("could not record the failure in the ledger: %s", le)
                emit(StepEvent(index, total, step, "failed", str(e)))
                report = ApplyReport(plan.name, results, ledger.to_dict() if ledger else None)
                raise ApplyFailed(message, step=step.id, phase=phase, call=call, report=report) from e
            seconds = clock() - started
            text = detail if isinstance(detail, str) else ""
            if step.is_mutating:
                assert ledger is not None
                ledger.record_done(step.id, text or None, digest=step.digest())
                status: Literal["done", "unchanged", "checked"] = "done"
            elif step.kind == "check":
                status = "checked"
            else:
                status = "unchanged"
            emit(StepEvent(index, total, step, status, text))
            results.append(StepResult(step.id, status, text, seconds))

    if ledger is not None and mutating:
        with ledger.locked():
            ledger.record_plan(plan)
            run_steps()
            ledger.record_complete(plan)
    else:
        run_steps()
    return ApplyReport(plan.name, results, ledger.to_dict() if ledger is not None else None)
