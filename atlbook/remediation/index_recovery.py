"""Recover a Jira node whose index drifted or is corrupt: snapshot a healthy node, restart the bad one.

"Syncing the index from one node to the other can be done in just a few seconds, while a full reindex
can take a lot longer." The recovery, as a :class:`~atlbook.plan.Plan` (plan → confirm → apply):

1. ``healthy-node`` (check): at least one other Jira node is RUNNING with a readable index that matches
   the database (``countInDatabase`` vs ``countInIndex`` within :data:`TOLERANCE`). Without one the plan
   is *blocked*: there is nothing good to copy — run a full reindex instead.
2. ``snapshot`` (update): ``POST /rest/api/2/index-snapshot`` on the healthy node. A 409 means a snapshot
   is already being made: wait for it to finish and ask again. Then wait until none is running.
3. ``restart-<pod>`` (delete): delete the bad node's pod; its StatefulSet recreates it, and on start it
   restores its index from the newest snapshot in the shared home (``export/indexsnapshots``). Verified
   when a new pod (new uid) is Ready and its ``/status`` is RUNNING.
4. ``verify-<pod>`` (check): the node's index summary matches the database again.

:func:`run` applies it under the stack's ledger (``atlbook-ledger-50-index-recovery``), so a rerun after an
interruption resumes at the first unfinished step; after a success the ledger is cleared so the next
incident starts afresh. :class:`RecoveryResult` reports the seconds each step and the whole recovery took.

The notebook's Plan / Apply (as 10-provision's): :func:`planner` shows the plan with a *Plan* button that
assesses the nodes again and re-plans; :func:`apply_gate` applies now (``apply: true``) or shows *Apply*
→ *Confirm* naming the counts and the stack, disabled while the plan is stale or blocked. Applying shows a
bar and a live status table (per step, with what it waits for: the snapshot, the pod coming back, the
restored index) and then the indexes after; headless, log lines.

Refuses (``PreflightFailed``): a node that is not a Jira pod of the stack; a plan with no healthy node
(blocked → ``PlanError`` on apply). Identity: ``rbac/index-recovery-role.yaml``.
"""

from __future__ import annotations

import contextvars
import dataclasses
import time
from collections.abc import Callable
from typing import Any

from atlbook import errors, plan, widgets
from atlbook.clients import k8s
from atlbook.products import client as pclient

__all__ = [
    "RUNBOOK",
    "TOLERANCE",
    "Assessment",
    "NodeIndex",
    "Options",
    "Recovery",
    "RecoveryResult",
    "after_table",
    "apply_gate",
    "assess",
    "build_plan",
    "confirm_and_run",
    "gate",
    "planner",
    "run",
]

RUNBOOK = "50-index-recovery"
TOLERANCE = 10
"""Issues an index may lag the database by and still count as healthy (replication in flight)."""
_SELECTOR = "app.kubernetes.io/name=jira"


@dataclasses.dataclass
class Options:
    """Timing of the waits (tests inject ``sleep``/``clock``)."""

    timeout: float = 600.0
    """Seconds to wait for the snapshot, the restarted pod and the restored index, each."""
    poll: float = 1.0
    tolerance: int = TOLERANCE
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic


@dataclasses.dataclass
class NodeIndex:
    """One Jira node's index as its own summary reports it."""

    pod: str
    uid: str = ""
    ready: bool = False
    state: str | None = None
    readable: bool | None = None
    count_in_database: int | None = None
    count_in_index: int | None = None
    max_queue: int = 0
    error: str | None = None

    @property
    def drift(self) -> int | None:
        """Issues missing from (or extra in) the index; ``None`` when unknown."""
        if self.count_in_database is None or self.count_in_index is None:
            return None
        return abs(self.count_in_database - self.count_in_index)

    def healthy(self, tolerance: int = TOLERANCE) -> bool:
        """RUNNING, Ready, readable, drift within ``tolerance``."""
        return (
            self.state == "RUNNING"
            and self.ready
            and bool(self.readable)
            and self.drift is not None
            and self.drift <= tolerance
        )


@dataclasses.dataclass
class Assessment:
    """Every Jira node's index, and which are bad / healthy."""

    namespace: str
    nodes: dict[str, NodeIndex]
    bad: list[str]
    healthy: list[str]

    def rows(self) -> list[dict[str, Any]]:
        """One row per node (for a table and the record)."""
        return [
            {
                "pod": n.pod,
                "ready": n.ready,
                "state": n.state,
                "readable": n.readable,
                "countInDatabase": n.count_in_database,
                "countInIndex": n.count_in_index,
                "drift": n.drift,
                "queue": n.max_queue,
                "verdict": "bad" if n.pod in self.bad else "healthy" if n.pod in self.healthy else "unknown",
                "error": n.error,
            }
            for n in self.nodes.values()
        ]

    def table(self) -> Any:
        """The rows as a pandas DataFrame."""
        import pandas

        return pandas.DataFrame(self.rows())


def _namespace(spec: Any) -> str:
    jira = getattr(getattr(spec, "products", None), "jira", None)
    return str(getattr(jira, "namespace", None) or getattr(spec, "namespace", "default"))


def _context_path(pod: dict[str, Any]) -> str:
    """Where Jira serves in this pod: its readiness probe's ``<context>/status``, else its context env."""
    containers = (pod.get("spec") or {}).get("containers") or []
    first = containers[0] if containers else {}
    probe = ((first.get("readinessProbe") or {}).get("httpGet") or {}).get("path")
    if isinstance(probe, str) and probe.rstrip("/").endswith("/status"):
        return probe.rstrip("/")[: -len("/status")].rstrip("/")
    for env in first.get("env") or []:
        if env.get("name") == "ATL_TOMCAT_CONTEXTPATH" and env.get("value"):
            return "/" + str(env["value"]).strip("/")
    return ""


def _client(clients: Any, spec: Any, namespace: str, pod: str | dict[str, Any]) -> pclient.ProductClient:
    """A Jira client for ``pod`` (a name, or the pod object whose context path it then honours)."""
    jira = getattr(getattr(spec, "products", None), "jira", None)
    admin = getattr(jira, "admin", None)
    auth = pclient.auth_from_spec(admin, clients) if admin is not None else None
    if isinstance(pod, dict):
        name, context = str((pod.get("metadata") or {}).get("name")), _context_path(pod)
    else:
        name, context = pod, _context_path(k8s.get(clients.k8s, "Pod", pod, namespace))
    return pclient.ProductClient.for_pod(clients, "jira", namespace, name, auth, context_path=context)


def _ready(pod: dict[str, Any]) -> bool:
    for cond in (pod.get("status") or {}).get("conditions") or []:
        if cond.get("type") == "Ready":
            return bool(cond.get("status") == "True")
    return False


def _read(clients: Any, spec: Any, namespace: str, pod: dict[str, Any]) -> NodeIndex:
    meta = pod.get("metadata") or {}
    node = NodeIndex(pod=str(meta.get("name")), uid=str(meta.get("uid", "")), ready=_ready(pod))
    if meta.get("deletionTimestamp") or (pod.get("status") or {}).get("phase") != "Running":
        node.error = "not running"
        return node
    api = _client(clients, spec, namespace, pod)
    try:
        node.state = api.status().state
        if node.state == "RUNNING":
            summary = api.index_summary()
            node.readable = summary.readable
            node.count_in_database = summary.count_in_database
            node.count_in_index = summary.count_in_index
            node.max_queue = summary.max_queue
    except errors.AtlbookError as e:
        node.error = f"{type(e).__name__}: {e}"
    return node


def assess(clients: Any, spec: Any, *, node: str = "", options: Options | None = None) -> Assessment:
    """Read every Jira node's index (one pod LIST, then the pod proxy per node); name the bad ones.

    ``node`` names the node to recover (it counts as bad whatever its summary says); empty: every node
    whose index is unreadable or drifts beyond the tolerance. Refuses a ``node`` that is not a Jira pod,
    and refuses (PreflightFailed, naming node and error) when a running node's index could not be read.
    """
    opts = options or Options()
    namespace = _namespace(spec)
    pods = k8s.list(clients.k8s, "Pod", namespace, label_selector=_SELECTOR)
    nodes = {n.pod: n for n in (_read(clients, spec, namespace, p) for p in pods)}
    if node and node not in nodes:
        raise errors.PreflightFailed(
            f"{node!r} is not a Jira pod in namespace {namespace} "
            f"(Jira pods: {', '.join(sorted(nodes)) or 'none'})"
        )
    unreadable = {n.pod: n.error for n in nodes.values() if n.error and n.error != "not running"}
    if unreadable and not node:
        # Never conclude "nothing to do" from nodes we could not read (e.g. 403 on pods/proxy).
        raise errors.PreflightFailed(
            "could not read the index of "
            + "; ".join(f"{pod} ({err})" for pod, err in sorted(unreadable.items()))
            + " — fix access (rbac/index-recovery-role.yaml) or the node, or name the node to recover"
        )
    if node:
        bad = [node]
    else:
        bad = sorted(
            n.pod
            for n in nodes.values()
            if n.state == "RUNNING" and (n.readable is False or (n.drift or 0) > opts.tolerance)
        )
    healthy = sorted(p for p, n in nodes.items() if p not in bad and n.healthy(opts.tolerance))
    return Assessment(namespace=namespace, nodes=nodes, bad=bad, healthy=healthy)


_WATCH: contextvars.ContextVar[Callable[[str, str], None] | None] = contextvars.ContextVar(
    "index_recovery_watch", default=None
)
"""Told ``(what, reason)`` after every poll of :func:`_wait` while :func:`run` applies (live progress)."""


def _wait(what: str, check: Callable[[], bool | str], opts: Options) -> str:
    """Poll ``check`` until it returns True; PlanError naming the last reason after ``opts.timeout``."""
    deadline = opts.clock() + opts.timeout
    started = opts.clock()
    reason: bool | str = False
    while True:
        try:
            reason = check()
        except errors.AtlbookError as e:  # transient while a pod restarts: keep waiting
            reason = f"{type(e).__name__}: {e}"
        watch = _WATCH.get()
        if watch is not None:
            watch(what, "done" if reason is True else str(reason))
        if reason is True:
            return f"{what} after {opts.clock() - started:.1f} s"
        if opts.clock() >= deadline:
            raise errors.PlanError(f"timed out after {opts.timeout:.0f} s waiting for {what}: {reason}")
        opts.sleep(opts.poll)


def build_plan(clients: Any, spec: Any, assessment: Assessment, options: Options | None = None) -> plan.Plan:
    """The recovery plan for ``assessment`` (see the module docstring). No change is made here."""
    opts = options or Options()
    ns = assessment.namespace
    steps = plan.Plan(RUNBOOK, stack=getattr(spec, "name", None))
    donor = assessment.healthy[0] if assessment.healthy else None
    blocked = (
        ()
        if donor
        else (
            "no healthy Jira node to copy an index from: every node is bad or not RUNNING — run a full "
            "reindex (Settings > System > Indexing) instead",
        )
    )
    if not assessment.bad:
        steps.add(
            plan.Step(
                "nothing-to-do", "every Jira index matches the database", kind="check", verify=lambda: True
            )
        )
        return steps

    def donor_healthy() -> bool | str:
        if donor is None:
            return "no healthy node"
        node = _read(clients, spec, ns, k8s.get(clients.k8s, "Pod", donor, ns))
        return True if node.healthy(opts.tolerance) else f"{donor}: {node.state}, drift {node.drift}"

    steps.add(
        plan.Step(
            "healthy-node",
            f"{donor or 'no node'} is RUNNING and its index matches the database",
            kind="check",
            target=f"Pod {ns}/{donor}" if donor else "",
            verify=donor_healthy,
            blocked=blocked,
        )
    )

    def snapshot() -> str:
        assert donor is not None
        api = _client(clients, spec, ns, donor)
        first = api.index_snapshot_create()
        waited = ""
        if first.already_running:
            waited = _wait("the running snapshot to finish", lambda: not api.index_snapshot_running(), opts)
            again = api.index_snapshot_create()
            if again.already_running:
                raise errors.PlanError("another index snapshot started meanwhile; retry the runbook")
            first = again
        done = _wait("the snapshot", lambda: not api.index_snapshot_running() or "still running", opts)
        parts = [f"snapshot {first.future_path or '(path not reported)'} on {donor}", done]
        if waited:
            parts.insert(1, f"after waiting for one already running ({waited})")
        return "; ".join(parts)

    def no_snapshot_running() -> bool | str:
        assert donor is not None
        return True if not _client(clients, spec, ns, donor).index_snapshot_running() else "still running"

    steps.add(
        plan.Step(
            "snapshot",
            f"create an index snapshot on {donor} (409: wait for the running one)",
            kind="update",
            target=f"Jira index snapshot via {ns}/{donor}" if donor else "Jira index snapshot",
            precondition=donor_healthy,
            action=snapshot,
            verify=no_snapshot_running,
            blocked=blocked,
        )
    )
    for bad in assessment.bad:
        before = assessment.nodes[bad].uid if bad in assessment.nodes else ""
        steps.add(_restart_step(clients, spec, ns, bad, before, opts, blocked))
        steps.add(_verify_step(clients, spec, ns, bad, opts, blocked))
    return steps


def _restart_step(
    clients: Any, spec: Any, ns: str, pod: str, uid: str, opts: Options, blocked: tuple[str, ...]
) -> plan.Step:
    def restart() -> str:
        current = k8s.get(clients.k8s, "Pod", pod, ns)
        if uid and (current.get("metadata") or {}).get("uid") != uid:
            return f"{pod} was already replaced (new uid); not deleted again"
        k8s.delete(clients.k8s, "Pod", pod, ns)
        return f"deleted pod {pod}; its StatefulSet recreates it"

    def back() -> bool | str:
        try:
            doc = k8s.get(clients.k8s, "Pod", pod, ns)
        except errors.NotFound:
            return "not recreated yet"
        meta = doc.get("metadata") or {}
        if uid and meta.get("uid") == uid:
            return "old pod still there"
        if meta.get("deletionTimestamp") or not _ready(doc):
            return "not Ready yet"
        state = _client(clients, spec, ns, pod).status().state
        return True if state == "RUNNING" else f"/status {state}"

    def verify() -> bool:
        _wait(f"{pod} to come back RUNNING", back, opts)
        return True

    return plan.Step(
        f"restart-{pod}",
        f"restart {pod} (delete the pod; it restores its index from the snapshot on start)",
        kind="delete",
        target=f"Pod {ns}/{pod}",
        diffs=(plan.FieldDiff("metadata.uid", uid or None, "(new pod)"),),
        action=restart,
        verify=verify,
        blocked=blocked,
    )


def _verify_step(
    clients: Any, spec: Any, ns: str, pod: str, opts: Options, blocked: tuple[str, ...]
) -> plan.Step:
    def matches() -> bool | str:
        node = _read(clients, spec, ns, k8s.get(clients.k8s, "Pod", pod, ns))
        if node.healthy(opts.tolerance):
            return True
        return f"{node.state}, readable {node.readable}, drift {node.drift} {node.error or ''}".strip()

    def verify() -> bool:
        _wait(f"{pod}'s index to match the database", matches, opts)
        return True

    return plan.Step(
        f"verify-{pod}",
        f"{pod}'s index summary matches the database (countInIndex ≈ countInDatabase)",
        kind="check",
        target=f"Pod {ns}/{pod}",
        verify=verify,
        blocked=blocked,
    )


@dataclasses.dataclass
class RecoveryResult:
    """What :func:`run` did."""

    applied: bool
    seconds: float
    steps: list[dict[str, Any]]
    before: list[dict[str, Any]]
    after: list[dict[str, Any]]

    def to_dict(self) -> dict[str, Any]:
        """For the record."""
        return dataclasses.asdict(self)


def run(
    clients: Any,
    spec: Any,
    recovery: plan.Plan,
    assessment: Assessment,
    *,
    ledger: plan.Ledger | None = None,
    options: Options | None = None,
    progress: Callable[[Any], None] | None = None,
    show_progress: bool = True,
) -> RecoveryResult:
    """Apply ``recovery`` under the stack's ledger; the time taken and the indexes before and after.

    ``progress``: told every step event and, while a step waits, a ``waiting`` event saying for what;
    without it ``show_progress`` draws them on a bar of its own (a live status table in JupyterLab,
    lines headless). Raises what :func:`atlbook.plan.apply` raises (blocked plan, ``LedgerLocked``,
    ``ApplyFailed``).
    """
    opts = options or Options()
    if ledger is None:
        ledger = plan.Ledger(
            plan.ConfigMapBackend(clients, assessment.namespace, RUNBOOK),
            runbook=RUNBOOK,
            stack=getattr(spec, "name", None),
        )
    bar: widgets.Progress[Any] | None = None
    tell = progress
    if tell is None and show_progress and not recovery.is_blocked:
        bar = widgets.progress(total=len(recovery.steps), description=RUNBOOK)
        tell = widgets.step_reporter(bar)
    relay = widgets.StepRelay(tell)
    started = opts.clock()
    token = _WATCH.set(relay.wait)
    try:
        report = plan.apply(recovery, ledger if recovery.changes else None, progress=relay.step)
    finally:
        _WATCH.reset(token)
        if bar is not None:
            bar.close()
    seconds = opts.clock() - started
    if recovery.changes:
        ledger.clear()  # done: the next incident starts afresh (an interrupted run resumes instead)
    after = assess(clients, spec, options=opts)
    return RecoveryResult(
        applied=bool(recovery.changes),
        seconds=round(seconds, 3),
        steps=[dataclasses.asdict(r) for r in report.results],
        before=assessment.rows(),
        after=after.rows(),
    )


def confirm_and_run(
    clients: Any,
    spec: Any,
    recovery: plan.Plan,
    assessment: Assessment,
    *,
    apply: bool,
    options: Options | None = None,
) -> RecoveryResult | None:
    """The bare gate (no plan table, no *Plan*): ``apply`` runs now; JupyterLab: Apply → Confirm; headless
    plan only. For Python callers; the notebook uses :func:`planner` and :func:`apply_gate`.

    Returns the :class:`RecoveryResult` when applied now, ``None`` otherwise (the JupyterLab button runs
    :func:`run` on confirmation).
    """
    summary = {
        "creates": recovery.counts.get("create", 0),
        "updates": recovery.counts.get("update", 0),
        "deletes": recovery.counts.get("delete", 0),
        "stack": getattr(spec, "name", None),
    }

    def later() -> None:
        run(clients, spec, recovery, assessment, options=options)

    if widgets.confirm_apply(summary, apply, stack=getattr(spec, "name", None), on_confirm=later):
        return run(clients, spec, recovery, assessment, options=options)
    return None


# --- the Plan / Apply experience (as 10-provision's) --------------------------------------------------


@dataclasses.dataclass
class Recovery:
    """What the Plan / Apply widget shows and applies: an assessment and the plan built from it."""

    clients: Any
    spec: Any
    assessment: Assessment
    plan: plan.Plan
    node: str = ""
    options: Options | None = None
    result: RecoveryResult | None = None
    """Set once applied."""

    def fingerprint(self) -> str:
        """Tells a changed plan from the same one (the steps, their targets and changes)."""
        return self.plan.fingerprint()

    def to_dict(self) -> dict[str, Any]:
        """The plan, for the record."""
        return self.plan.to_dict()

    def to_html(self) -> str:
        """The plan table (what the widget shows)."""
        return self.plan.to_html()


def gate(recovery: Recovery) -> dict[str, Any]:
    """What the Apply gate counts: creates / updates / deletes, the stack, and why it is blocked."""
    return widgets.gate_counts(recovery.plan, getattr(recovery.spec, "name", None))


def after_table(recovery: Recovery) -> list[dict[str, Any]]:
    """Every Jira node's index after the recovery (the rows of :meth:`Assessment.rows`)."""
    return list(recovery.result.after) if recovery.result is not None else []


def planner(
    clients: Any, spec: Any, assessment: Assessment, *, node: str = "", options: Options | None = None
) -> widgets.PlanApply[Recovery]:
    """Plan the recovery of ``assessment`` and show it with a *Plan* button (assess again, re-plan).

    ``node``: as for :func:`assess` (a re-plan assesses that node again). Headless: the static table.
    Refuses what :func:`assess` refuses when *Plan* re-assesses (shown under the button, not raised).
    """
    first = [assessment]

    def build() -> Recovery:
        current = first.pop() if first else assess(clients, spec, node=node, options=options)
        return Recovery(clients, spec, current, build_plan(clients, spec, current, options), node, options)

    return widgets.plan_apply(build, stack=getattr(spec, "name", None), gate=gate)


def apply_gate(planner: widgets.PlanApply[Recovery], *, apply: bool) -> RecoveryResult | None:
    """Apply the planner's recovery now (``apply``) or show *Apply* → *Confirm* (JupyterLab).

    Returns the :class:`RecoveryResult` when applied now, else ``None`` (headless "plan only", or the
    buttons: a confirmed click applies with a bar and a live status table, then shows the indexes
    after). Refuses what :func:`run` refuses (a blocked plan: ``PlanError``) and a stale plan.
    """

    def now(recovery: Recovery, *, progress: Callable[[Any], None] | None = None) -> RecoveryResult:
        result = run(
            recovery.clients,
            recovery.spec,
            recovery.plan,
            recovery.assessment,
            options=recovery.options,
            progress=progress,
        )
        recovery.result = result
        return result

    result: RecoveryResult | None = planner.apply_gate(
        apply, now, after=after_table, after_title="Every Jira index after the recovery"
    )
    return result
