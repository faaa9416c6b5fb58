"""The plans of an upgrade: the rolling upgrade itself, retrying a node, and rolling back.

Upgrade plan (step ids are stable: a rerun skips what the ledger marks done, and every step is recorded,
checks included, so that no finished step ever runs twice)::

    preflight            gates judged again at the last moment; records the upgrade's Facts in the ledger
    rds-snapshot         RDS snapshot taken, waited for until 'available' — before any node moves
    zdu-start            upgrade mode on (STABLE → READY_TO_UPGRADE)
    hold-partition       RollingUpdate partition = replicas: nothing restarts yet
    set-image            the product container's image → the target version
    node-<sts>-<N> …     for each ordinal from the highest down: partition = N; wait (polls with back-off)
                         until the pod is recreated on the new image, Ready, /status RUNNING and listed
                         ACTIVE on the new version by the product's cluster nodes; then the next
    wait-tasks-ready     ZDU state READY_TO_RUN_UPGRADE_TASKS (every node on the new version)
    approve              run the upgrade tasks / finalize
    wait-stable          ZDU state STABLE
    post-checks          versions, states, index health, no ERROR/FATAL in the new pods' logs

Every action is idempotent: it reads the live state first and changes only what is not yet so (a step
interrupted after its change and rerun makes no second change). A node that does not come back halts
the plan with :class:`~atlbook.errors.UpgradeBlocked` (``/status`` ERROR on consecutive polls, a crash
loop, or the node timeout): the remaining nodes are untouched and keep serving the old version.

Ways forward after a halt (both are plans, applied under the same ledger):

- *retry*: ``retry-<pod>-<n>`` deletes the failed pod once (a clean start: its upgrade tasks run
  again, its log starts afresh), then the rest of the upgrade plan (its done steps are skipped);
- *rollback* (``rollback: true``): partition = replicas, image back to the old version, each pod not on
  the old image rolled back from the highest ordinal down (a pod stuck not Ready on the new revision is
  deleted: Kubernetes' "forced rollback"), partition back, upgrade mode cancelled when the product allows
  it (READY_TO_UPGRADE), verified. Blocked once the upgrade tasks ran (ZDU cannot go back: restore the
  snapshot instead).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from typing import Any

from atlbook import errors, plan
from atlbook.clients import Clients, k8s, retry
from atlbook.products import client as pclient
from atlbook.upgrade import gates as gatesmod
from atlbook.upgrade import model
from atlbook.upgrade import observe as obsmod
from atlbook.upgrade import timeline as tl

__all__ = [
    "Context",
    "halt_evidence",
    "node_step_id",
    "rollback_plan",
    "snapshot_id",
    "upgrade_plan",
    "upgrade_step_ids",
]

_UPGRADING = ("READY_TO_UPGRADE", "MIXED", "READY_TO_RUN_UPGRADE_TASKS")


@dataclasses.dataclass
class Context:
    """What the steps of one plan share."""

    clients: Clients
    spec: Any
    facts: model.Facts
    options: model.Options
    timeline: tl.Timeline
    creds: pclient.BasicAuth | None = None
    context_path: str = ""
    post_checks: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    notes: list[str] = dataclasses.field(default_factory=list)
    watch: Callable[[str, str], None] | None = None
    """Told ``(what, reason)`` after every poll of :meth:`wait` (``ready`` when done): live progress."""

    # --- plumbing ---

    def sts(self) -> dict[str, Any]:
        """The StatefulSet as it is now."""
        return k8s.get(
            self.clients.k8s,
            "StatefulSet",
            self.facts.statefulset,
            self.facts.namespace,
            policy=self.clients.policy,
        )

    def pod(self, name: str) -> dict[str, Any] | None:
        """The pod ``name`` as it is now (``None`` when absent)."""
        try:
            return k8s.get(self.clients.k8s, "Pod", name, self.facts.namespace, policy=self.clients.policy)
        except errors.NotFound:
            return None

    def node_client(self, pod: str) -> pclient.ProductClient:
        """A product client for one node through the pod proxy."""
        return obsmod.product_client(
            self.clients, self.facts.product, self.facts.namespace, pod, self.creds, self.context_path
        )

    def any_client(self) -> pclient.ProductClient:
        """A client for a node that is Ready and RUNNING now (lowest ordinal first)."""
        reasons = []
        for ordinal in range(self.facts.replicas):
            name = self.facts.pod(ordinal)
            doc = self.pod(name)
            if doc is None:
                continue
            view = obsmod.pod_view(self.clients, self.facts.product, doc, self.creds)
            if view.ready and view.running:
                return self.node_client(name)
            reasons.append(f"{name}: ready {view.ready}, /status {view.status_state or view.error}")
        raise errors.api_error(
            errors.ProductApiError,
            "no node is Ready and RUNNING to ask: " + ("; ".join(reasons) or "no pods"),
            status=503,
            service=self.facts.product,
            operation="pick a node",
        )

    def wait(self, what: str, check: Callable[[], bool | str], timeout: float) -> None:
        """Poll ``check`` with back-off until it returns True (``WaitTimedOut`` → ``UpgradeBlocked``)."""
        opts = self.options

        def poll() -> bool | None:
            outcome = check()
            if self.watch is not None:
                self.watch(what, "ready" if outcome is True else str(outcome))
            return True if outcome is True else None

        try:
            retry.wait_until(
                poll,
                description=what,
                timeout=timeout,
                first_interval=opts.first_poll,
                max_interval=opts.max_poll,
                sleep=opts.sleep,
                clock=opts.clock,
            )
        except retry.WaitTimedOut as e:
            raise errors.UpgradeBlocked(str(e)) from e

    def zdu(self) -> pclient.ZduState:
        """The ZDU state, asked of any RUNNING node."""
        return self.any_client().zdu_state()

    def patch_partition(self, value: int) -> bool:
        """Set the RollingUpdate partition to ``value`` unless it is already; True when patched."""
        sts = self.sts()
        strategy = (sts.get("spec") or {}).get("updateStrategy") or {}
        current = int((strategy.get("rollingUpdate") or {}).get("partition", 0) or 0)
        if strategy.get("type", "RollingUpdate") == "RollingUpdate" and current == value:
            return False
        body = {"spec": {"updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": value}}}}
        k8s.patch(
            self.clients.k8s,
            "StatefulSet",
            self.facts.statefulset,
            body,
            self.facts.namespace,
            policy=self.clients.policy,
        )
        return True

    def patch_image(self, image: str) -> bool:
        """Set the product container's image unless it is already; True when patched."""
        sts = self.sts()
        found = obsmod.container_of((sts.get("spec") or {}).get("template") or {}, self.facts.product)
        if found is None:
            raise errors.UpgradeBlocked(f"the {self.facts.product} container is gone from the StatefulSet")
        index, container = found
        if container.get("image") == image:
            return False
        ops = [{"op": "replace", "path": f"/spec/template/spec/containers/{index}/image", "value": image}]
        k8s.patch(
            self.clients.k8s,
            "StatefulSet",
            self.facts.statefulset,
            ops,
            self.facts.namespace,
            policy=self.clients.policy,
        )
        return True


def snapshot_id(stack: str, product: str, from_version: str, to_version: str, stamp: str) -> str:
    """A valid RDS snapshot identifier for this upgrade (letters, digits, single hyphens, ≤ 255)."""
    raw = f"atlbook-{stack}-{product}-{from_version}-to-{to_version}-{stamp}".lower()
    out: list[str] = []
    for ch in raw:
        c = ch if ch.isalnum() else "-"
        if c == "-" and (not out or out[-1] == "-"):
            continue
        out.append(c)
    text = "".join(out).strip("-")[:255].rstrip("-")
    return text if text[:1].isalpha() else "a" + text


def node_step_id(facts: model.Facts, ordinal: int, prefix: str = "node") -> str:
    """``node-<pod>`` (``rb-node-<pod>`` for rollback)."""
    return f"{prefix}-{facts.pod(ordinal)}"


def upgrade_step_ids(facts: model.Facts) -> list[str]:
    """The upgrade plan's step ids, in order (retry steps aside)."""
    return [
        "preflight",
        "rds-snapshot",
        "zdu-start",
        "hold-partition",
        "set-image",
        *[node_step_id(facts, o) for o in facts.ordinals],
        "wait-tasks-ready",
        "approve",
        "wait-stable",
        "post-checks",
    ]


def _hooked(ctx: Context, step_id: str, fn: Callable[[], Any]) -> Callable[[], Any]:
    def run() -> Any:
        out = fn()
        if ctx.options.after_action is not None:
            ctx.options.after_action(step_id)
        return out

    return run


# --- node wait -----------------------------------------------------------------------------------------


def _node_ready(ctx: Context, pod: str, image: str, version: str) -> Callable[[], bool | str]:
    """A poll: the pod is recreated on ``image``, Ready, RUNNING, listed ACTIVE on ``version``.

    Raises ``UpgradeBlocked`` after ``options.error_polls`` consecutive polls showing the node failed
    (``/status`` ERROR, or the container crash-looping).
    """
    bad = [0]

    def failed(reason: str) -> str:
        bad[0] += 1
        if bad[0] >= ctx.options.error_polls:
            raise errors.UpgradeBlocked(
                f"{pod} did not come back on {version}: {reason} ({bad[0]} polls in a row)"
            )
        return reason

    def check() -> bool | str:
        doc = ctx.pod(pod)
        if doc is None:
            bad[0] = 0
            return "not recreated yet"
        view = obsmod.pod_view(ctx.clients, ctx.facts.product, doc, ctx.creds, ask=False)
        if view.terminating:
            bad[0] = 0
            return "old pod terminating"
        if view.image != image:
            bad[0] = 0
            return f"still on {view.image}"
        if view.waiting_reason == "CrashLoopBackOff":
            return failed(f"container {view.waiting_reason} (restarts {view.restarts})")
        if view.phase != "Running":
            return f"phase {view.phase}"
        try:
            status = ctx.node_client(pod).status()
        except errors.RetryableError as e:
            return f"/status unreachable: {e}"
        if status.state == "ERROR":
            return failed(f"/status ERROR (HTTP {status.http_status})")
        bad[0] = 0
        if not view.ready:
            return f"not Ready (/status {status.state})"
        if not status.running:
            return f"/status {status.state}"
        nodes = ctx.node_client(pod).cluster_nodes()
        node = model.match_node(nodes, pod, view.ip)
        if node is None:
            return "not listed by the cluster nodes endpoint yet"
        if not node.active:
            return f"listed {node.state}"
        if not model.same_version(node.version, version):
            return f"listed on {node.version}"
        return True

    return check


def _node_step(
    ctx: Context, ordinal: int, image: str, version: str, *, prefix: str = "node", force: bool = False
) -> plan.Step:
    facts = ctx.facts
    pod = facts.pod(ordinal)
    step_id = node_step_id(facts, ordinal, prefix)

    def action() -> str:
        ctx.timeline.begin(pod, kind="node")
        status = "failed"
        try:
            lowered = ctx.patch_partition(ordinal) if _partition(ctx) > ordinal else False
            deleted = False
            if force:
                doc = ctx.pod(pod)
                if doc is not None:
                    view = obsmod.pod_view(ctx.clients, facts.product, doc, ctx.creds, ask=False)
                    if view.image != image and not view.ready and not view.terminating:
                        k8s.delete(ctx.clients.k8s, "Pod", pod, facts.namespace, policy=ctx.clients.policy)
                        deleted = True
            if ctx.options.after_action is not None:
                ctx.options.after_action(step_id + ":changed")
            ctx.wait(
                f"{pod} on {version}, Ready, RUNNING and ACTIVE",
                _node_ready(ctx, pod, image, version),
                ctx.options.node_timeout,
            )
            status = "done"
        finally:
            ctx.timeline.end(pod, status, kind="node")
        spans = [s for s in ctx.timeline.nodes() if s.name == pod]
        took = spans[-1].seconds if spans else None
        parts = [f"{pod} RUNNING and ACTIVE on {version}"]
        if took is not None:
            parts.append(f"after {took:.3f} s")
        parts.append("partition lowered" if lowered else "partition already there")
        if deleted:
            parts.append("stuck pod deleted (forced rollback)")
        return "; ".join(parts)

    return plan.Step(
        step_id,
        f"partition → {ordinal}: {pod} restarts on {version}; wait until Ready, RUNNING, ACTIVE on {version}",
        kind="update",
        target=f"StatefulSet {facts.namespace}/{facts.statefulset} pod {pod}",
        diffs=(
            plan.FieldDiff("spec.updateStrategy.rollingUpdate.partition", None, ordinal),
            plan.FieldDiff(f"pod {pod} version", None, version),
        ),
        action=_hooked(ctx, step_id, action),
    )


def _partition(ctx: Context) -> int:
    strategy = (ctx.sts().get("spec") or {}).get("updateStrategy") or {}
    return int((strategy.get("rollingUpdate") or {}).get("partition", 0) or 0)


# --- upgrade plan ----------------------------------------------------------------------------------------


def upgrade_plan(
    ctx: Context, *, retry_pod: str | None = None, retry_count: int = 0, retry_uid: str = ""
) -> plan.Plan:
    """The upgrade plan for ``ctx.facts`` (see the module docstring).

    ``retry_pod`` adds the retry step: it deletes that pod once — only while it is still the pod with
    ``retry_uid`` (the one that failed), so a rerun after an interruption does not restart it twice.
    """
    f = ctx.facts
    stack = str(getattr(ctx.spec, "name", "") or "")
    steps = plan.Plan(model.runbook_name(f.product), stack=stack or None)
    opts = ctx.options

    def preflight() -> str:
        obs = obsmod.observe(ctx.clients, ctx.spec, f.product, opts)
        own = model.runbook_name(f.product)
        obs.ledgers = [lv for lv in obs.ledgers if lv.runbook != own]  # this run holds its own lock
        obs.resume = None
        report = gatesmod.evaluate(obs, f.to_version, opts)
        if not report.passed:
            raise errors.PreflightFailed(f"preflight: {report.summary()}")
        return f.to_json()

    steps.add(
        plan.Step(
            "preflight",
            "judge every gate again just before the first change; record what is upgraded in the ledger",
            kind="check",
            mutates=True,
            target=f"{f.product} {f.namespace}/{f.statefulset}",
            diffs=(plan.FieldDiff("version", f.from_version, f.to_version),),
            action=_hooked(ctx, "preflight", preflight),
        )
    )

    def snapshot() -> str:
        rds = ctx.clients

        def status() -> str | None:
            try:
                doc = rds.aws_call(
                    "rds", "describe_db_snapshots", idempotent=True, DBSnapshotIdentifier=f.snapshot_id
                )
            except errors.NotFound:
                return None
            snaps = doc.get("DBSnapshots") or []
            return str(snaps[0].get("Status")) if snaps else None

        made = "reused"
        if status() is None:
            try:
                rds.aws_call(
                    "rds",
                    "create_db_snapshot",
                    idempotent=True,
                    DBSnapshotIdentifier=f.snapshot_id,
                    DBInstanceIdentifier=f.db_instance,
                    Tags=[{"Key": "atlbook.io/runbook", "Value": model.runbook_name(f.product)}],
                )
                made = "created"
            except errors.Conflict:
                made = "exists"

        def available() -> bool | str:
            st = status()
            if st in ("failed", "deleted", "deleting"):
                raise errors.UpgradeBlocked(f"RDS snapshot {f.snapshot_id} is {st}")
            return True if st == "available" else f"snapshot {st}"

        ctx.wait(f"RDS snapshot {f.snapshot_id} available", available, opts.snapshot_timeout)
        return f"{f.snapshot_id} of {f.db_instance} {made}, available"

    def snapshot_ok() -> bool | str:
        doc = ctx.clients.aws_call(
            "rds", "describe_db_snapshots", idempotent=True, DBSnapshotIdentifier=f.snapshot_id
        )
        snaps = doc.get("DBSnapshots") or []
        return True if snaps and snaps[0].get("Status") == "available" else "snapshot not available"

    steps.add(
        plan.Step(
            "rds-snapshot",
            f"snapshot RDS {f.db_instance} as {f.snapshot_id}; wait until available",
            kind="create",
            target=f"RDS snapshot of {f.db_instance}",
            diffs=(plan.FieldDiff("DBSnapshot status", None, "available"),),
            action=_hooked(ctx, "rds-snapshot", snapshot),
            verify=snapshot_ok,
        )
    )

    def zdu_start() -> str:
        state = ctx.zdu()
        if state.state == "STABLE":
            after = _zdu_transition(ctx, ctx.any_client().zdu_start, _UPGRADING, "start")
            return f"upgrade mode on: {state.state} → {after.state}"
        if state.state in _UPGRADING:
            return f"already in upgrade mode ({state.state}); not started again"
        raise errors.UpgradeBlocked(f"cannot enter upgrade mode in state {state.state}")

    steps.add(
        plan.Step(
            "zdu-start",
            "enable upgrade mode (STABLE → READY_TO_UPGRADE)",
            kind="update",
            target=f"{f.product} ZDU",
            diffs=(plan.FieldDiff("zdu.state", "STABLE", "READY_TO_UPGRADE"),),
            action=_hooked(ctx, "zdu-start", zdu_start),
            verify=lambda: True if ctx.zdu().state in _UPGRADING else "not in upgrade mode",
        )
    )

    def hold() -> str:
        changed = ctx.patch_partition(f.replicas)
        return f"partition {'set to' if changed else 'already'} {f.replicas}"

    steps.add(
        plan.Step(
            "hold-partition",
            f"RollingUpdate partition = {f.replicas} (replicas): no pod restarts when the image changes",
            kind="update",
            target=f"StatefulSet {f.namespace}/{f.statefulset}",
            diffs=(
                plan.FieldDiff("spec.updateStrategy.rollingUpdate.partition", f.partition_before, f.replicas),
            ),
            action=_hooked(ctx, "hold-partition", hold),
            verify=lambda: True if _partition(ctx) >= f.replicas else "partition not held",
        )
    )

    def set_image() -> str:
        changed = ctx.patch_image(f.image_to)
        return f"image {'set to' if changed else 'already'} {f.image_to}"

    steps.add(
        plan.Step(
            "set-image",
            f"image {f.image_from} → {f.image_to} (held by the partition)",
            kind="update",
            target=f"StatefulSet {f.namespace}/{f.statefulset} container {f.container}",
            diffs=(
                plan.FieldDiff(
                    f"spec.template.spec.containers[{f.container}].image", f.image_from, f.image_to
                ),
            ),
            action=_hooked(ctx, "set-image", set_image),
        )
    )
    if retry_pod:
        rid = f"retry-{retry_pod}-{retry_count}"

        def retry_node() -> str:
            doc = ctx.pod(retry_pod)
            if doc is None:
                return f"{retry_pod} is being recreated already"
            view = obsmod.pod_view(ctx.clients, f.product, doc, ctx.creds, ask=False)
            if retry_uid and view.uid != retry_uid:
                return f"{retry_pod} was replaced since it failed (new uid); not deleted again"
            if not view.terminating:
                k8s.delete(ctx.clients.k8s, "Pod", retry_pod, f.namespace, policy=ctx.clients.policy)
            return f"deleted {retry_pod} (ready {view.ready}); it starts again on {f.image_to}"

        steps.add(
            plan.Step(
                rid,
                f"retry the node: delete {retry_pod} once so that it starts again on {f.image_to}",
                kind="delete",
                target=f"Pod {f.namespace}/{retry_pod}",
                diffs=(plan.FieldDiff("metadata.uid", None, f"(new pod, retry {retry_count})"),),
                action=_hooked(ctx, rid, retry_node),
            )
        )
    for ordinal in f.ordinals:
        steps.add(_node_step(ctx, ordinal, f.image_to, f.to_version))

    def tasks_ready() -> str:
        seen: list[str] = []

        def check() -> bool | str:
            st = ctx.zdu()
            seen.append(st.state)
            if st.state in ("READY_TO_RUN_UPGRADE_TASKS", "RUNNING_UPGRADE_TASKS"):
                return True
            if st.state == "STABLE" and model.same_version(st.original_version, f.to_version):
                return True
            if st.state == "UPGRADE_TASKS_FAILED":
                raise errors.UpgradeBlocked("upgrade tasks failed (UPGRADE_TASKS_FAILED)")
            return f"state {st.state}"

        ctx.wait("ZDU state READY_TO_RUN_UPGRADE_TASKS", check, opts.tasks_timeout)
        return f"state {seen[-1] if seen else '?'}"

    steps.add(
        plan.Step(
            "wait-tasks-ready",
            "wait for READY_TO_RUN_UPGRADE_TASKS (every node on the new version)",
            kind="check",
            mutates=True,
            target=f"{f.product} ZDU",
            action=_hooked(ctx, "wait-tasks-ready", tasks_ready),
        )
    )

    def approve() -> str:
        st = ctx.zdu()
        if st.state == "READY_TO_RUN_UPGRADE_TASKS":
            after = _zdu_transition(
                ctx, ctx.any_client().zdu_approve, ("RUNNING_UPGRADE_TASKS", "STABLE"), "approve"
            )
            return f"approved: {st.state} → {after.state}"
        if st.state in ("RUNNING_UPGRADE_TASKS", "STABLE"):
            return f"already approved ({st.state}); not approved again"
        raise errors.UpgradeBlocked(f"cannot approve in state {st.state}")

    steps.add(
        plan.Step(
            "approve",
            "approve: run the upgrade tasks / finalize",
            kind="update",
            target=f"{f.product} ZDU",
            diffs=(plan.FieldDiff("zdu.state", "READY_TO_RUN_UPGRADE_TASKS", "RUNNING_UPGRADE_TASKS"),),
            action=_hooked(ctx, "approve", approve),
        )
    )

    def stable() -> str:
        def check() -> bool | str:
            st = ctx.zdu()
            if st.state == "UPGRADE_TASKS_FAILED":
                raise errors.UpgradeBlocked(
                    "upgrade tasks failed (UPGRADE_TASKS_FAILED): read the nodes' logs, then retry the tasks "
                    "(POST zdu retryUpgrade) or restore the snapshot " + f.snapshot_id
                )
            return True if st.state == "STABLE" else f"state {st.state}"

        ctx.wait("ZDU state STABLE", check, opts.tasks_timeout)
        return "STABLE"

    steps.add(
        plan.Step(
            "wait-stable",
            "wait for STABLE (upgrade tasks done)",
            kind="check",
            mutates=True,
            target=f"{f.product} ZDU",
            action=_hooked(ctx, "wait-stable", stable),
        )
    )
    steps.add(
        plan.Step(
            "post-checks",
            "every node on the new version, ACTIVE, STABLE, index healthy, no errors in the new pods' logs",
            kind="check",
            mutates=True,
            target=f"{f.product} {f.namespace}/{f.statefulset}",
            action=_hooked(ctx, "post-checks", lambda: _post_checks(ctx, f.image_to, f.to_version)),
        )
    )
    return steps


def _post_checks(ctx: Context, image: str, version: str, *, logs: bool = True) -> str:
    f = ctx.facts
    rows: list[dict[str, Any]] = []
    client = ctx.any_client()
    nodes = client.cluster_nodes()
    zdu = client.zdu_state()
    for ordinal in range(f.replicas):
        name = f.pod(ordinal)
        doc = ctx.pod(name)
        if doc is None:
            rows.append({"pod": name, "ok": False, "problem": "missing"})
            continue
        view = obsmod.pod_view(ctx.clients, f.product, doc, ctx.creds)
        node = model.match_node(nodes, name, view.ip)
        problems = []
        if view.image != image:
            problems.append(f"image {view.image}")
        if not (view.ready and view.running):
            problems.append(f"ready {view.ready}, /status {view.status_state}")
        if node is None or not node.active or not model.same_version(node.version, version):
            problems.append(f"listed {node.state if node else 'nowhere'} on {node.version if node else None}")
        index = None
        if f.product == "jira" and view.running:
            summary = ctx.node_client(name).index_summary()
            index = f"{summary.count_in_index}/{summary.count_in_database}"
            if not summary.healthy(ctx.options.index_tolerance, ctx.options.index_max_queue):
                problems.append(f"index drift {summary.drift}, queue {summary.max_queue}")
        bad_lines: list[str] = []
        if logs:
            text = k8s.pod_log(
                ctx.clients.k8s, f.namespace, name, container=f.container or None, policy=ctx.clients.policy
            )
            bad_lines = [ln for ln in text.splitlines() if " ERROR " in ln or " FATAL " in ln]
            if bad_lines:
                problems.append(f"{len(bad_lines)} ERROR/FATAL log line(s), e.g. {bad_lines[0][:160]}")
        rows.append(
            {
                "pod": name,
                "version": node.version if node else None,
                "state": node.state if node else None,
                "status": view.status_state,
                "index": index,
                "log_errors": len(bad_lines),
                "ok": not problems,
                "problem": "; ".join(problems),
            }
        )
    ctx.post_checks = rows
    failing = [r for r in rows if not r["ok"]]
    if zdu.state != "STABLE":
        failing.append({"pod": "(cluster)", "problem": f"ZDU state {zdu.state}"})
    if failing:
        raise errors.UpgradeBlocked(
            "post-checks failed: " + "; ".join(f"{r['pod']}: {r['problem']}" for r in failing)
        )
    return json.dumps({"zdu": zdu.state, "nodes": rows}, sort_keys=True)


# --- rollback plan ---------------------------------------------------------------------------------------


def rollback_plan(ctx: Context, obs: model.Observation) -> plan.Plan:
    """The rollback plan from what ``obs`` shows (see the module docstring)."""
    f = ctx.facts
    stack = str(getattr(ctx.spec, "name", "") or "")
    steps = plan.Plan(model.runbook_name(f.product) + "-rollback", stack=stack or None)
    blocked: tuple[str, ...] = ()
    zdu_state = obs.zdu.state if obs.zdu else None
    if zdu_state in ("RUNNING_UPGRADE_TASKS", "UPGRADE_TASKS_FAILED") or (
        zdu_state == "STABLE"
        and obs.zdu is not None
        and model.same_version(obs.zdu.original_version, f.to_version)
    ):
        blocked = (
            f"the upgrade tasks ran (state {zdu_state}): a zero-downtime upgrade cannot go back; restore RDS "
            f"snapshot {f.snapshot_id or '(none taken)'} with {f.image_from} in a maintenance window",
        )
    todo = [p.ordinal for p in sorted(obs.pods, key=lambda p: -p.ordinal) if p.image != f.image_from]
    missing = [o for o in f.ordinals if f.pod(o) not in {p.name for p in obs.pods}]
    todo = sorted(set(todo) | set(missing), reverse=True)

    def hold() -> str:
        return f"partition {'set to' if ctx.patch_partition(f.replicas) else 'already'} {f.replicas}"

    steps.add(
        plan.Step(
            "rb-hold-partition",
            f"RollingUpdate partition = {f.replicas}: nothing restarts while the image goes back",
            kind="update",
            target=f"StatefulSet {f.namespace}/{f.statefulset}",
            diffs=(plan.FieldDiff("spec.updateStrategy.rollingUpdate.partition", obs.partition, f.replicas),),
            action=_hooked(ctx, "rb-hold-partition", hold),
            blocked=blocked,
        )
    )

    def image_back() -> str:
        return f"image {'set back to' if ctx.patch_image(f.image_from) else 'already'} {f.image_from}"

    steps.add(
        plan.Step(
            "rb-set-image",
            f"image {obs.image} → {f.image_from}",
            kind="update",
            target=f"StatefulSet {f.namespace}/{f.statefulset} container {f.container}",
            diffs=(
                plan.FieldDiff(
                    f"spec.template.spec.containers[{f.container}].image", obs.image, f.image_from
                ),
            ),
            action=_hooked(ctx, "rb-set-image", image_back),
            blocked=blocked,
        )
    )
    for ordinal in todo:
        step = _node_step(ctx, ordinal, f.image_from, f.from_version, prefix="rb-node", force=True)
        step.description = (
            f"partition → {ordinal}: {f.pod(ordinal)} back on {f.from_version} (deleted first if stuck not "
            "Ready); wait until Ready, RUNNING, ACTIVE"
        )
        step.blocked = blocked
        steps.add(step)

    def partition_back() -> str:
        changed = ctx.patch_partition(f.partition_before)
        return f"partition {'set back to' if changed else 'already'} {f.partition_before}"

    steps.add(
        plan.Step(
            "rb-partition",
            f"RollingUpdate partition back to {f.partition_before}",
            kind="update",
            target=f"StatefulSet {f.namespace}/{f.statefulset}",
            diffs=(
                plan.FieldDiff("spec.updateStrategy.rollingUpdate.partition", f.replicas, f.partition_before),
            ),
            action=_hooked(ctx, "rb-partition", partition_back),
            blocked=blocked,
        )
    )

    def cancel() -> str:
        seen: list[str] = []

        def check() -> bool | str:
            st = ctx.zdu()
            seen.append(st.state)
            if st.state in ("STABLE", "READY_TO_UPGRADE"):
                return True
            return f"state {st.state} (a node still runs {f.to_version}?)"

        ctx.wait("every node back on the old version (READY_TO_UPGRADE)", check, ctx.options.tasks_timeout)
        if seen[-1] == "STABLE":
            return "upgrade mode already off (STABLE)"
        after = _zdu_transition(ctx, ctx.any_client().zdu_cancel, ("STABLE",), "cancel")
        return f"upgrade mode cancelled: READY_TO_UPGRADE → {after.state}"

    steps.add(
        plan.Step(
            "rb-cancel",
            "cancel upgrade mode (allowed once every node is back on the old version)",
            kind="update",
            target=f"{f.product} ZDU",
            diffs=(plan.FieldDiff("zdu.state", zdu_state, "STABLE"),),
            action=_hooked(ctx, "rb-cancel", cancel),
            blocked=blocked,
        )
    )
    steps.add(
        plan.Step(
            "rb-verify",
            f"every node on {f.from_version}, ACTIVE, STABLE",
            kind="check",
            mutates=True,
            target=f"{f.product} {f.namespace}/{f.statefulset}",
            action=_hooked(
                ctx, "rb-verify", lambda: _post_checks(ctx, f.image_from, f.from_version, logs=False)
            ),
            blocked=blocked,
        )
    )
    return steps


# --- evidence on a halt ----------------------------------------------------------------------------------


def halt_evidence(ctx: Context, step: str, error: str) -> dict[str, Any]:
    """What the record keeps when a step halts: events, the failing pod's log tail, the product's state."""
    f = ctx.facts
    names = [f.pod(o) for o in f.ordinals]
    pod = next((n for n in names if step.endswith("-" + n) or f"-{n}-" in step), None)
    out: dict[str, Any] = {"step": step, "error": error[:1000], "pod": pod}
    try:
        events = sorted(
            k8s.list(ctx.clients.k8s, "Event", f.namespace, policy=ctx.clients.policy),
            key=lambda e: str(e.get("lastTimestamp") or e.get("eventTime") or e.get("firstTimestamp") or ""),
        )
        wanted = {pod} if pod else {f.statefulset, *names}
        out["events"] = [
            {
                "object": (e.get("involvedObject") or {}).get("name"),
                "type": e.get("type"),
                "reason": e.get("reason"),
                "message": str(e.get("message", ""))[:300],
                "count": e.get("count"),
                "last": e.get("lastTimestamp") or e.get("eventTime"),
            }
            for e in events
            if (e.get("involvedObject") or {}).get("name") in wanted
        ][-30:]
    except errors.AtlbookError as e:
        out["events"] = f"{type(e).__name__}: {e}"
    if pod:
        try:
            text = k8s.pod_log(
                ctx.clients.k8s,
                f.namespace,
                pod,
                container=f.container or None,
                tail_lines=ctx.options.log_tail,
                policy=ctx.clients.policy,
            )
            out["log_tail"] = text.splitlines()[-ctx.options.log_tail :]
        except errors.AtlbookError as e:
            out["log_tail"] = f"{type(e).__name__}: {e}"
    nodes: list[dict[str, Any]] = []
    for ordinal in range(f.replicas):
        doc = ctx.pod(f.pod(ordinal))
        if doc is None:
            nodes.append({"pod": f.pod(ordinal), "exists": False})
            continue
        v = obsmod.pod_view(ctx.clients, f.product, doc, ctx.creds)
        nodes.append(
            {
                "pod": v.name,
                "image": v.image,
                "ready": v.ready,
                "status": v.status_state,
                "restarts": v.restarts,
            }
        )
    out["pods"] = nodes
    try:
        client = ctx.any_client()
        zdu = client.zdu_state()
        out["zdu"] = {
            "state": zdu.state,
            "upgrade_mode": zdu.upgrade_mode,
            "original_version": zdu.original_version,
        }
        out["cluster_nodes"] = [dataclasses.asdict(n) for n in client.cluster_nodes()]
    except errors.AtlbookError as e:
        out["zdu"] = f"{type(e).__name__}: {e}"
    return out


def _zdu_transition(ctx: Context, post: Callable[[], Any], reached: tuple[str, ...], what: str) -> Any:
    """POST a ZDU transition once; when its answer is lost (reset, 5xx), ask the state before posting again.

    A ZDU POST is not idempotent, so it is never retried blindly: if the cluster already shows one of
    ``reached``, the transition went through and that state is the answer (``retry.create_or_get``).
    """

    def find() -> Any:
        state = ctx.zdu()
        return state if state.state in reached else None

    return retry.create_or_get(post, find, description=f"{ctx.facts.product} ZDU {what}")
