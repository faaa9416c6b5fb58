"""The calls of ``notebooks/30-upgrade.ipynb``: prepare (observe, gates, plan), confirm, run, result.

::

    up = runbook.prepare(clients, spec, "jira", "11.3.2")        # reads only
    up.gates.table()                                               # shown before anything changes
    planner = runbook.planner(up)                                  # the plan table + Plan button
    result = runbook.apply_gate(planner, apply=True, measure_availability=True)
    result.to_dict(); result.timeline_png(); result.raise_for_outcome()

:func:`planner` shows the plan as :func:`atlbook.widgets.plan_apply` does for 10-provision: *Plan*
re-observes the stack and re-judges the gates (a new :class:`Upgrade`); :func:`apply_gate` applies it
now (``apply: true``, headless) or shows *Apply* → *Confirm* naming the counts and the stack, disabled
while the plan is stale (parameters edited) or blocked (a gate failed). Applying shows a bar and a live
status table — one row per step, with what a step waits for now (a node's restart: "still on <image>",
"not Ready", "listed on <version>" …) — and the post-checks; headless, the same as log lines.

:func:`prepare` picks the plan: the upgrade plan when every gate passes (a blocked plan naming the
failed gates otherwise: nothing can change); the rollback plan with ``rollback=True``; and when the
ledger holds an unfinished upgrade of this product, the same upgrade plan again (its done steps are
skipped), with a retry step for a node that halted.

:func:`run` applies the plan under the ledger ``30-upgrade-<product>`` with the load generator running
for the whole apply (``measure_availability``), and returns an :class:`UpgradeResult`: outcome
(``upgraded``, ``rolled-back``, ``halted``, ``refused``), the per-step report, load stats per phase,
the timeline and orchestration overhead; after a halt the evidence and both ways forward as plans.

Refuses (``PreflightFailed`` via :meth:`UpgradeResult.raise_for_outcome`): a failed gate — nothing was
changed; ``ConfigError``: an unknown product.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import importlib
from collections.abc import Callable
from typing import Any

from atlbook import errors, records, widgets
from atlbook import plan as planmod
from atlbook.clients import Clients
from atlbook.products import catalogue
from atlbook.upgrade import gates as gatesmod
from atlbook.upgrade import load as loadmod
from atlbook.upgrade import model, sequence
from atlbook.upgrade import observe as obsmod
from atlbook.upgrade import timeline as tl

__all__ = [
    "Upgrade",
    "UpgradeResult",
    "apply_gate",
    "confirm_and_run",
    "facts_for",
    "gate",
    "ingress_base_url",
    "plan_table",
    "planner",
    "post_checks",
    "prepare",
    "publish",
    "run",
]


@dataclasses.dataclass
class Upgrade:
    """A prepared upgrade: what was observed, the gates, the facts and the plan (nothing changed yet)."""

    clients: Clients
    spec: Any
    product: str
    target_version: str
    options: model.Options
    observation: model.Observation
    gates: gatesmod.GateReport
    facts: model.Facts | None
    plan: planmod.Plan
    mode: str
    """``upgrade``, ``resume``, ``rollback`` or ``refused``."""
    context: sequence.Context | None = None
    retry_plan: planmod.Plan | None = None
    rollback: bool = False
    """Prepared with ``rollback=True`` (a re-plan prepares a rollback again)."""

    def fingerprint(self) -> str:
        """Tells a changed upgrade from the same one: the mode and the plan's fingerprint."""
        return f"{self.mode}:{self.plan.fingerprint()}"

    @property
    def refused(self) -> bool:
        """True when a gate failed (and this is not a rollback)."""
        return self.mode == "refused"

    def summary(self) -> dict[str, Any]:
        """For the record: mode, facts, gates."""
        return {
            "mode": self.mode,
            "product": self.product,
            "target_version": self.target_version,
            "facts": self.facts.to_dict() if self.facts else None,
            "gates": self.gates.to_dict(),
        }


def facts_for(
    obs: model.Observation, report: gatesmod.GateReport, spec: Any, to_version: str
) -> model.Facts | None:
    """The :class:`Facts` of a new upgrade from ``obs`` (``None`` without a StatefulSet or versions)."""
    if obs.resume is not None:
        return obs.resume
    if obs.statefulset is None or not report.from_version or not obs.image:
        return None
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%d%H%M%S")
    snap = sequence.snapshot_id(
        str(getattr(spec, "name", "stack")), obs.product, report.from_version, to_version, stamp
    )
    return model.Facts(
        product=obs.product,
        namespace=obs.namespace,
        statefulset=obs.statefulset,
        container=obs.container,
        replicas=obs.replicas,
        from_version=report.from_version,
        to_version=to_version,
        image_from=obs.image,
        image_to=obsmod.with_tag(obs.image, to_version),
        partition_before=obs.partition if obs.partition < obs.replicas else 0,
        service=obs.service,
        snapshot_id=snap,
        db_instance=str((obs.rds or {}).get("identifier") or ""),
    )


def prepare(
    clients: Clients,
    spec: Any,
    product: str,
    target_version: str,
    *,
    rollback: bool = False,
    options: model.Options | None = None,
) -> Upgrade:
    """Observe, judge the gates and build the plan (see the module docstring). Reads only.

    Refuses (``ConfigError``) an unknown product; a failed gate gives a ``refused`` Upgrade (blocked plan).
    """
    up = _prepare(clients, spec, product, target_version, rollback=rollback, options=options)
    up.rollback = rollback
    return up


def _prepare(
    clients: Clients,
    spec: Any,
    product: str,
    target_version: str,
    *,
    rollback: bool,
    options: model.Options | None,
) -> Upgrade:
    opts = options or model.Options()
    info = catalogue.get(product)
    obs = obsmod.observe(clients, spec, info.name, opts)
    target = target_version or (obs.resume.to_version if obs.resume else "")
    report = gatesmod.evaluate(obs, target, opts)
    facts = facts_for(obs, report, spec, target)
    timeline = tl.Timeline()
    stack = str(getattr(spec, "name", "") or "") or None
    if facts is None:
        steps = planmod.Plan(model.runbook_name(info.name), stack=stack)
        steps.add(
            planmod.Step(
                "preflight",
                "preflight gates",
                kind="check",
                blocked=tuple(g.evidence for g in report.failed) or ("nothing to upgrade",),
            )
        )
        return Upgrade(clients, spec, info.name, target, opts, obs, report, None, steps, "refused")
    ctx = sequence.Context(
        clients,
        spec,
        facts,
        opts,
        timeline,
        creds=obsmod.auth(clients, spec, info.name),
        context_path=obs.context_path,
    )
    if rollback:
        if obs.resume is None:
            ctx.notes.append("no unfinished upgrade in the ledger: rolling back to the running image")
        steps = sequence.rollback_plan(ctx, obs)
        return Upgrade(clients, spec, info.name, target, opts, obs, report, facts, steps, "rollback", ctx)
    retry_pod = None
    retry_count = 0
    failed = obs.resume_failed_step
    if obs.resume is not None and failed and failed.startswith("node-"):
        retry_pod = failed[len("node-") :]
        retry_count = sum(
            1
            for x in (obs.own_ledger.detail.get("failures") if obs.own_ledger else []) or []
            if x.get("step") == failed
        )
    retry_uid = next((p.uid for p in obs.pods if p.name == retry_pod), "")
    steps = sequence.upgrade_plan(ctx, retry_pod=retry_pod, retry_count=retry_count, retry_uid=retry_uid)
    if not report.passed:
        for gate in report.failed:
            steps.steps[0].blocked = (*steps.steps[0].blocked, f"{gate.id}: {gate.evidence}")
        return Upgrade(clients, spec, info.name, target, opts, obs, report, facts, steps, "refused", ctx)
    mode = "resume" if obs.resume is not None else "upgrade"
    return Upgrade(
        clients, spec, info.name, target, opts, obs, report, facts, steps, mode, ctx, retry_plan=None
    )


def ingress_base_url(
    clients: Clients, spec: Any, facts: model.Facts, override: str = "", context_path: str | None = None
) -> str:
    """The product's base URL through the stack's ingress — what the target says.

    ``override`` wins. Otherwise the target's ``product_url`` template (placeholders ``{host}``,
    ``{namespace}``, ``{service}``, ``{context_path}``; the sandbox's routes ``/<namespace>/<service>``),
    else the stack's public host with the product's context path (``https://<ingress.host><context_path>``).
    ``context_path`` is what the pods serve under (observed); ``None`` = the stack description's.

    Refuses (``ConfigError``): neither a template nor an ingress host to build the URL from.
    """
    if override:
        return override.rstrip("/")
    pspec = getattr(getattr(spec, "products", None), facts.product, None)
    context = context_path if context_path is not None else str(getattr(pspec, "context_path", "") or "")
    host = getattr(getattr(spec, "ingress", None), "host", None)
    template = getattr(clients.target, "product_url", None)
    if template:
        return (
            str(template)
            .format(
                host=host or "",
                namespace=facts.namespace,
                service=facts.service or facts.statefulset,
                context_path=context,
            )
            .rstrip("/")
        )
    if not host:
        raise errors.ConfigError("no ingress host in the stack description; set load_url")
    return f"https://{host}{context}"


@dataclasses.dataclass
class UpgradeResult:
    """What :func:`run` did (see the module docstring)."""

    outcome: str
    mode: str
    product: str
    facts: dict[str, Any] | None
    report: dict[str, Any] | None
    load: loadmod.LoadReport | None
    timeline: tl.Timeline
    overhead: dict[str, Any]
    post_checks: list[dict[str, Any]]
    halt: dict[str, Any] | None = None
    ways_forward: dict[str, Any] | None = None
    error: str | None = None
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """For the record."""
        return {
            "outcome": self.outcome,
            "mode": self.mode,
            "product": self.product,
            "facts": self.facts,
            "report": self.report,
            "load": self.load.to_dict() if self.load else None,
            "timeline": self.timeline.rows(),
            "overhead": self.overhead,
            "post_checks": self.post_checks,
            "halt": self.halt,
            "ways_forward": self.ways_forward,
            "error": self.error,
            "seconds": round(self.seconds, 3),
        }

    def figures(self) -> dict[str, Any]:
        """Key figures: failures, p50/p99 (ms), overhead %, seconds."""
        overall = self.load.overall() if self.load else {}
        return {
            "outcome": self.outcome,
            "requests": overall.get("requests"),
            "failures": overall.get("failures"),
            "p50_ms": overall.get("p50_ms"),
            "p99_ms": overall.get("p99_ms"),
            "overhead_pct": self.overhead.get("overhead_pct"),
            "seconds": round(self.seconds, 3),
        }

    def load_table(self) -> Any:
        """Load stats per phase as a pandas DataFrame."""
        import pandas as pd

        return pd.DataFrame(self.load.stats() if self.load else [])

    def timeline_plot(self) -> Any:
        """The timeline figure (steps, node windows, load latency and failures)."""
        return tl.plot(self.timeline, self.load.samples if self.load else ())

    def timeline_png(self) -> str:
        """The timeline as a base64 PNG."""
        return tl.png(self.timeline_plot())

    def raise_for_outcome(self) -> None:
        """Raise ``PreflightFailed`` (refused) or ``UpgradeBlocked`` (halted); nothing otherwise."""
        if self.outcome == "refused":
            raise errors.PreflightFailed(f"upgrade refused before any change: {self.error}")
        if self.outcome == "halted":
            raise errors.UpgradeBlocked(
                f"upgrade halted at {self.halt.get('step') if self.halt else '?'}: {self.error}; "
                "ways forward: rerun (retry the node) or rollback: true"
            )


def run(
    up: Upgrade,
    *,
    measure_availability: bool = True,
    load_url: str = "",
    ledger: planmod.Ledger | None = None,
    show_progress: bool = True,
    progress: Callable[[Any], None] | None = None,
) -> UpgradeResult:
    """Apply ``up.plan`` under the ledger with the load generator running; never raises for a halt.

    ``progress``: told every step event (:class:`atlbook.plan.StepEvent`) and, while a step waits, a
    ``waiting`` event saying for what (a node's restart, the ZDU state …) — what the Apply widget draws.
    Without it, ``show_progress`` draws them on a bar of its own (:func:`atlbook.widgets.progress` and
    :func:`atlbook.widgets.step_reporter`: a live status table in JupyterLab, lines headless).
    A refused upgrade or a blocked plan (a rollback after the upgrade tasks ran) returns at once as
    ``refused`` (no change, no ledger write). ``LedgerLocked`` propagates.
    """
    ctx = up.context
    timeline = ctx.timeline if ctx else tl.Timeline()
    facts = up.facts
    if up.refused or ctx is None or facts is None or up.plan.is_blocked:
        return UpgradeResult(
            "refused",
            up.mode,
            up.product,
            facts.to_dict() if facts else None,
            None,
            None,
            timeline,
            tl.overhead(0.0, []),
            [],
            error=up.gates.summary()
            if up.refused or not up.plan.is_blocked
            else "; ".join(f"{step}: {why}" for step, why in up.plan.blocked[:1]),
        )
    if ledger is None:
        ledger = planmod.Ledger(
            planmod.ConfigMapBackend(
                up.clients,
                str(getattr(up.spec, "namespace", facts.namespace)),
                model.runbook_name(up.product),
            ),
            runbook=model.runbook_name(up.product),
            stack=str(getattr(up.spec, "name", "") or "") or None,
        )
    generator: loadmod.LoadGenerator | None = None
    if measure_availability:
        url = ingress_base_url(up.clients, up.spec, facts, load_url, up.observation.context_path)
        generator = loadmod.LoadGenerator(
            url,
            up.observation.info.health_path,
            users=up.options.load_users,
            think=up.options.load_think,
            timeout=up.options.load_timeout,
            clock=timeline.now,
            origin=0.0,
        )
        timeline.phase_listeners.append(generator.set_phase)
    started = timeline.now()
    outcome = "rolled-back" if up.mode == "rollback" else "upgraded"
    report: dict[str, Any] | None = None
    halt: dict[str, Any] | None = None
    ways: dict[str, Any] | None = None
    error: str | None = None
    bar: widgets.Progress[Any] | None = None
    tell = progress
    if tell is None and show_progress:
        bar = widgets.progress(total=len(up.plan.steps), description=up.plan.name)
        tell = widgets.step_reporter(bar)
    relay = widgets.StepRelay(tell)

    def on_step(event: planmod.StepEvent) -> None:
        timeline.on_step(event)
        relay.step(event)

    ctx.watch = relay.wait
    try:
        if generator is not None:
            generator.start()
            generator.set_phase("start")
        try:
            applied = planmod.apply(up.plan, ledger, progress=on_step)
            report = applied.to_dict()
        except planmod.ApplyFailed as e:
            outcome = "halted"
            error = str(e)
            report = e.report.to_dict()
            halt = sequence.halt_evidence(ctx, e.step, str(e.__cause__ or e))
            halt["phase"] = e.phase
            ways = _ways_forward(up, e.step)
    finally:
        ctx.watch = None
        load = generator.stop() if generator is not None else None
        if bar is not None:
            bar.close()
    return UpgradeResult(
        outcome,
        up.mode,
        up.product,
        facts.to_dict(),
        report,
        load,
        timeline,
        timeline.overhead(),
        ctx.post_checks,
        halt=halt,
        ways_forward=ways,
        error=error,
        seconds=timeline.now() - started,
    )


def _ways_forward(up: Upgrade, failed_step: str) -> dict[str, Any]:
    """Both ways forward after a halt, as plans (not applied)."""
    out: dict[str, Any] = {}
    try:
        retry_up = prepare(up.clients, up.spec, up.product, up.target_version, options=up.options)
        out["retry"] = {
            "how": "rerun with apply: true (after fixing the cause): it resumes and retries the node",
            "plan": retry_up.plan.to_dict(),
        }
    except errors.AtlbookError as e:
        out["retry"] = {"error": f"{type(e).__name__}: {e}"}
    try:
        back = prepare(up.clients, up.spec, up.product, up.target_version, rollback=True, options=up.options)
        out["rollback"] = {
            "how": "rerun the runbook with rollback: true and apply: true",
            "plan": back.plan.to_dict(),
        }
    except errors.AtlbookError as e:
        out["rollback"] = {"error": f"{type(e).__name__}: {e}"}
    out["failed_step"] = failed_step
    return out


def publish(result: UpgradeResult) -> None:
    """Record a result applied by a click (the cells below ran before it): values, table, timeline."""
    records.record("upgrade", result.to_dict())
    records.record("figures", result.figures())
    records.record("load", result.load.to_dict() if result.load else None)
    records.record("overhead", result.overhead)
    records.record("timeline_png", result.timeline_png())
    ipd: Any = importlib.import_module("IPython.display")
    ipd.display(result.load_table())
    ipd.display(result.timeline_plot())


def confirm_and_run(
    up: Upgrade, *, apply: bool, measure_availability: bool = True, load_url: str = ""
) -> UpgradeResult | None:
    """The bare gate (no plan table, no *Plan*): ``apply`` runs now; JupyterLab: Apply → Confirm; headless
    plan only. For Python callers; the notebook uses :func:`planner` and :func:`apply_gate`.

    A refused upgrade returns its (refused) result without asking. Returns ``None`` when not applied now;
    a result applied later by the click is published by :func:`publish` under the gate.
    """
    if up.refused:
        return run(up, measure_availability=False)
    summary = {
        "creates": up.plan.counts.get("create", 0),
        "updates": up.plan.counts.get("update", 0),
        "deletes": up.plan.counts.get("delete", 0),
        "stack": getattr(up.spec, "name", None),
        "blocked": up.plan.is_blocked,
    }

    def later() -> None:
        result = run(up, measure_availability=measure_availability, load_url=load_url)
        publish(result)

    if widgets.confirm_apply(summary, apply, stack=getattr(up.spec, "name", None), on_confirm=later):
        return run(up, measure_availability=measure_availability, load_url=load_url)
    return None


# --- the Plan / Apply experience (as 10-provision's) --------------------------------------------------


def gate(up: Upgrade) -> dict[str, Any]:
    """What the Apply gate counts: creates / updates / deletes, the stack, and why it is blocked."""
    return widgets.gate_counts(up.plan, str(getattr(up.spec, "name", "") or "") or None)


def plan_table(up: Upgrade) -> planmod.Plan:
    """What the plan widget shows: the plan (its steps; a failed gate shows as the blocked reason)."""
    return up.plan


def post_checks(up: Upgrade) -> list[dict[str, Any]]:
    """The post-check rows of an applied upgrade (version, state, index, log errors per node)."""
    return list(up.context.post_checks) if up.context is not None else []


def planner(up: Upgrade) -> widgets.PlanApply[Upgrade]:
    """Show ``up``'s plan with a *Plan* button (re-observe, re-judge the gates, re-plan: a new Upgrade).

    The first plan is ``up`` itself (nothing is read again); *Plan* prepares anew with the same product,
    version, rollback and options. Headless: the static table. Refuses nothing (``prepare`` already did).
    """
    first = [up]

    def build() -> Upgrade:
        if first:
            return first.pop()
        return prepare(
            up.clients, up.spec, up.product, up.target_version, rollback=up.rollback, options=up.options
        )

    return widgets.plan_apply(
        build, stack=str(getattr(up.spec, "name", "") or "") or None, table=plan_table, gate=gate
    )


def apply_gate(
    planner: widgets.PlanApply[Upgrade],
    *,
    apply: bool,
    measure_availability: bool = True,
    load_url: str = "",
) -> UpgradeResult | None:
    """Apply the planner's upgrade now (``apply``) or show *Apply* → *Confirm* (JupyterLab).

    Returns the :class:`UpgradeResult` when applied now. A refused upgrade (a gate failed) returns its
    refused result without applying anything, whatever ``apply`` says (the outcome cell then fails the
    run), and its *Apply* is disabled. Otherwise ``None``: headless "plan only", or in JupyterLab the
    buttons — a confirmed click applies with a bar and a live status table, shows the post-checks,
    publishes the result (:func:`publish`) under the gate, and reports a halt as the apply failing.
    Refuses (``PlanError``) to apply a plan made stale by a parameter edit.
    """

    def now(up: Upgrade, *, progress: Callable[[Any], None] | None = None) -> UpgradeResult:
        return run(up, measure_availability=measure_availability, load_url=load_url, progress=progress)

    def clicked(up: Upgrade, *, progress: Callable[[Any], None] | None = None) -> UpgradeResult:
        result = now(up, progress=progress)
        publish(result)
        result.raise_for_outcome()
        return result

    up = planner.plan
    if up.refused:
        if not widgets.is_headless():
            planner.apply_gate(False, clicked, after=post_checks)  # shown, disabled: the plan is blocked
        return run(up, measure_availability=False)
    if apply:
        result: UpgradeResult = planner.apply_gate(True, now, after=post_checks)
        return result
    planner.apply_gate(False, clicked, after=post_checks)
    return None
