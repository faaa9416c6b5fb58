"""Apply a provisioning plan: steps in dependency order, each idempotent, each verified, resumable.

The :class:`~atlbook.provisioning.diff.ProvisionPlan` becomes an :class:`atlbook.plan.Plan` whose steps
carry their action and verification, and :func:`atlbook.plan.apply` runs it under the stack's ledger:

- AWS: create by name / creation token (``Conflict`` = exists), update the fields that can change in
  place, then wait on the real condition with short polls and back-off (cluster ACTIVE, node group
  ACTIVE, add-on ACTIVE, file system and mount targets available, DB available);
- Kubernetes: the API is the target's kubeconfig context when it names one, else the EKS cluster just
  created (``describe_cluster`` + an EKS token); create (409 → patch) or strategic-merge patch of the
  desired fields (immutable fields left out); Secrets get their values from the references at this
  moment only (``atlbook.clients.secrets``); workloads wait for every pod Ready **and** each product
  node's own ``/status`` RUNNING (Ready alone is not enough, reference §8.1); the ingress load
  balancer waits for its host name (CloudFront's origin);
- unchanged workloads become read-only checks (a rerun after an interruption waits for what the
  interrupted run started); a plan without changes makes no mutating call at all, not even on the
  ledger.

The ledger is ``atlbook-ledger-10-provision`` in the stack's namespace. Until the Kubernetes API can be
reached (the EKS cluster is ACTIVE: observed so, or created by this very plan — also with a kubeconfig
target, whose context names a cluster an empty stack does not have yet), progress is kept in memory
and written to the ConfigMap as soon as it can be; AWS steps are resumable regardless, because a
rerun observes what exists and plans those steps as unchanged. Because an in-memory ledger excludes
no one, the run also holds the outer lock :class:`atlbook.plan.ParameterLock` — SSM parameter
``/atlbook/<stack>/ledger-lock/10-provision``, created atomically before the first mutating call and
deleted at the end — so a second provisioning of the same (even empty) stack refuses with
``LedgerLocked`` naming the holder and since when. IAM: ``ssm:GetParameter``, ``ssm:PutParameter``,
``ssm:DeleteParameter`` on ``parameter/atlbook/*`` (``rbac/README.md``).

Refuses (``PlanError``): a blocked plan, an unconfirmed plan with changes.
"""

from __future__ import annotations

import hashlib
import json
import secrets as pysecrets
import time
from collections.abc import Callable, Mapping
from typing import Any

from atlbook import errors
from atlbook import plan as planmod
from atlbook.clients import k8s, secrets
from atlbook.clients.bundle import Clients
from atlbook.products import client as product_client
from atlbook.provisioning import _aws, databases, observe
from atlbook.provisioning.desired import INGRESS_LB
from atlbook.provisioning.diff import Change, ProvisionPlan
from atlbook.provisioning.model import Resource, bind, unbound

__all__ = ["RUNBOOK", "Waits", "apply", "to_plan"]

RUNBOOK = "10-provision"

#: Fields the API refuses to change (or that must never be patched) per kind; left out of patches.
_IMMUTABLE: dict[str, tuple[str, ...]] = {
    "StatefulSet": ("selector", "serviceName", "volumeClaimTemplates", "podManagementPolicy"),
    "Deployment": ("selector",),
    "PersistentVolumeClaim": ("accessModes", "storageClassName", "volumeName"),
    "Service": ("clusterIP",),
}
_WHOLE_BODY_IMMUTABLE = ("PersistentVolume", "StorageClass", "PriorityClass")


class Waits:
    """How long to wait for each kind of condition, and how to poll (seconds)."""

    def __init__(
        self,
        *,
        timeout: float = 1800.0,
        first: float = 0.2,
        cap: float = 5.0,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.timeout = timeout
        self.first = first
        self.cap = cap
        self.sleep = sleep
        self.clock = clock

    def until(self, what: str, probe: Callable[[], tuple[bool, str]]) -> str | None:
        """Poll ``probe`` with back-off until done: ``None`` on success, the last reason on timeout."""
        deadline = self.clock() + self.timeout
        delay = self.first
        while True:
            done, reason = probe()
            if done:
                return None
            if self.clock() >= deadline:
                return f"{what}: still not ready after {self.timeout:.0f} s ({reason})"
            self.sleep(delay)
            delay = min(self.cap, delay * 1.6)


class _Runtime:
    """State shared by the steps of one apply: clients, outputs, the Kubernetes API once reachable."""

    def __init__(self, clients: Clients, pplan: ProvisionPlan, waits: Waits) -> None:
        self.clients = clients
        self.plan = pplan
        self.waits = waits
        self.ctx = _aws.Ctx(clients=clients, stack=pplan.stack, outputs=dict(pplan.outputs))
        self.cluster = str(pplan.desired.facts.get("cluster", pplan.stack))
        self._api: Any | None = None

    @property
    def outputs(self) -> dict[str, Any]:
        """Late-bound values known so far (shared with the AWS handlers)."""
        return self.ctx.outputs

    def api(self) -> Any:
        """The Kubernetes ApiClient: kubeconfig context, else the EKS cluster (describe + token)."""
        if self._api is None:
            api = observe.k8s_api(self.clients, self.cluster, cluster_exists=True)
            if api is None:  # pragma: no cover - cluster_exists=True always yields one
                raise errors.PlanError("no Kubernetes API")
            self._api = api
        return self._api

    def reachable(self) -> bool:
        """Whether the Kubernetes API can be used now: the EKS cluster is ACTIVE (observed, or created).

        Also for a kubeconfig target: its context names a cluster that an empty stack does not have
        yet, and the API cannot answer before the cluster exists (the ledger stays in memory till then).
        """
        if self._api is not None:
            return True
        return f"aws:EksCluster/{self.cluster}.Endpoint" in self.outputs and bool(
            self.outputs.get(f"aws:EksCluster/{self.cluster}.Status") == "ACTIVE"
        )


def _fingerprint(change: Change) -> str:
    body = change.resource.body if change.resource is not None else {}
    text = json.dumps({"a": change.action, "b": body}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:10]


def _bound(rt: _Runtime, r: Resource) -> dict[str, Any]:
    body: dict[str, Any] = bind(r.body, rt.outputs)
    missing = unbound(body)
    if missing:
        raise errors.PlanError(f"{r.kind} {r.name}: values not known yet: {', '.join(sorted(set(missing)))}")
    return body


def _resolve(rt: _Runtime, ref: str) -> str:
    if ref == "generate":
        value = pysecrets.token_urlsafe(24)
        secrets.register(value)
        return value
    return rt.clients.resolve_secret(ref)


# --- AWS steps -------------------------------------------------------------------------------------------


def _aws_action(rt: _Runtime, change: Change) -> Callable[[], str]:
    r = change.resource
    assert r is not None
    handler = _aws.HANDLERS[r.kind]

    def act() -> str:
        body = _bound(rt, r)
        for key, ref in r.secret_refs.items():
            body[key] = _resolve(rt, ref)
        if change.action == "create":
            handler.create(rt.ctx, r, body)
        else:
            handler.update(rt.ctx, r, body)
        return f"{change.action}d {r.kind} {r.name}"

    return act


def _aws_verify(rt: _Runtime, r: Resource) -> Callable[[], str | None]:
    handler = _aws.HANDLERS[r.kind]

    def verify() -> str | None:
        reason = rt.waits.until(f"{r.kind} {r.name}", lambda: handler.ready(rt.ctx, r))
        if reason is None:
            handler.observe(rt.ctx, r)  # refresh outputs (endpoint, ids) for the steps that follow
        return reason

    return verify


# --- Kubernetes steps -----------------------------------------------------------------------------------


def _patch_body(r: Resource, body: Mapping[str, Any]) -> dict[str, Any]:
    meta = body.get("metadata") or {}
    patch: dict[str, Any] = {"metadata": {k: meta[k] for k in ("labels", "annotations") if k in meta}}
    if r.kind in _WHOLE_BODY_IMMUTABLE:
        return patch
    for key, value in body.items():
        if key in ("apiVersion", "kind", "metadata"):
            continue
        if key == "spec" and isinstance(value, Mapping):
            value = {k: v for k, v in value.items() if k not in _IMMUTABLE.get(r.kind, ())}
        patch[key] = value
    return patch


def _k8s_action(rt: _Runtime, change: Change) -> Callable[[], str]:
    r = change.resource
    assert r is not None

    def act() -> str:
        api = rt.api()
        body = _bound(rt, r)
        if r.secret_refs:
            data = dict(body.get("stringData") or {})
            missing = {f.path.removeprefix("data.") for f in change.fields}
            for key, ref in r.secret_refs.items():
                data[key] = _resolve(rt, ref)
            if change.action == "update":
                # only the keys the Secret lacks: a value that exists (e.g. a generated Hazelcast group
                # password the running cluster uses) is never replaced by provisioning
                data = {k: v for k, v in data.items() if k in missing}
            body["stringData"] = data
        ns = r.namespace or None
        if change.action == "create":
            try:
                k8s.create(api, body, policy=rt.clients.policy)
                return f"created {r.kind} {r.namespace + '/' if r.namespace else ''}{r.name}"
            except errors.Conflict:
                pass  # it exists after all (a retried create): bring it up to date instead
        k8s.patch(api, r.kind, r.name, _patch_body(r, body), ns, policy=rt.clients.policy)
        return f"patched {r.kind} {r.namespace + '/' if r.namespace else ''}{r.name}"

    return act


def _k8s_delete(rt: _Runtime, change: Change) -> Callable[[], str]:
    def act() -> str:
        k8s.delete(rt.api(), change.kind, change.name, change.namespace or None, policy=rt.clients.policy)
        return f"deleted {change.kind} {change.name}"

    return act


def _product_of(r: Resource) -> str | None:
    labels = (r.body.get("metadata") or {}).get("labels") or {}
    name = labels.get("app.kubernetes.io/name")
    return name if name in ("jira", "confluence", "bitbucket") else None


def _workload_probe(rt: _Runtime, r: Resource) -> Callable[[], tuple[bool, str]]:
    def probe() -> tuple[bool, str]:
        api = rt.api()
        obj = k8s.get(api, r.kind, r.name, r.namespace, policy=rt.clients.policy)
        want = int((obj.get("spec") or {}).get("replicas", 1))
        status = obj.get("status") or {}
        ready = int(status.get("readyReplicas") or 0)
        updated = int(status.get("updatedReplicas") or 0)
        if ready < want or updated < want:
            return False, f"{ready}/{want} ready, {updated}/{want} updated"
        product = _product_of(r)
        if product is None:
            return True, "ready"
        facts = rt.plan.desired.facts["products"][product]
        for ordinal in range(want):
            pod = f"{r.name}-{ordinal}"
            client = product_client.ProductClient.for_pod(
                rt.clients, product, r.namespace, pod, context_path=str(facts.get("context_path", ""))
            )
            try:
                status_doc = client.status()
            except errors.ApiError as e:
                return False, f"{pod}: /status unreachable ({e})"
            if not status_doc.running:
                return False, f"{pod}: /status {status_doc.state}"
        return True, f"{want} pods Ready and RUNNING"

    return probe


def _lb_probe(rt: _Runtime, r: Resource) -> Callable[[], tuple[bool, str]]:
    def probe() -> tuple[bool, str]:
        svc = k8s.get(rt.api(), "Service", r.name, r.namespace, policy=rt.clients.policy)
        ingress = ((svc.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
        if not ingress:
            return False, "no load balancer address yet"
        host = ingress[0].get("hostname") or ingress[0].get("ip")
        rt.outputs[f"k8s:Service/{r.namespace}/{r.name}.hostname"] = host
        return True, str(host)

    return probe


def _k8s_verify(rt: _Runtime, r: Resource) -> Callable[[], str | None] | None:
    if r.kind in ("StatefulSet", "Deployment"):
        probe = _workload_probe(rt, r)
        return lambda: rt.waits.until(f"{r.kind} {r.namespace}/{r.name}", probe)
    if r.kind == "Service" and (r.namespace, r.name) == INGRESS_LB:
        probe = _lb_probe(rt, r)
        return lambda: rt.waits.until(f"load balancer of {r.namespace}/{r.name}", probe)
    return None


# --- the plan --------------------------------------------------------------------------------------------


def _diffs(change: Change) -> tuple[planmod.FieldDiff, ...]:
    sensitive = change.kind == "Secret" or (change.resource is not None and bool(change.resource.secret_refs))
    return tuple(
        planmod.FieldDiff(f.path, f.old, f.new, sensitive=sensitive and "data" in f.path)
        for f in change.fields
    )


def to_plan(clients: Clients, pplan: ProvisionPlan, *, waits: Waits | None = None) -> planmod.Plan:
    """The :class:`atlbook.plan.Plan` of ``pplan``: one step per change, with action and verification.

    Lookups are left out (they change nothing). Unchanged workloads become read-only checks.
    """
    return _steps(_Runtime(clients, pplan, waits or Waits()), pplan)


def _steps(rt: _Runtime, pplan: ProvisionPlan) -> planmod.Plan:
    steps: list[planmod.Step] = []
    blocked = tuple(f.message for f in pplan.findings if f.severity == "blocker")
    warnings = tuple(f.message for f in pplan.findings if f.severity == "warning")
    for change in pplan.changes:
        if change.action in ("found", "missing"):
            continue
        r = change.resource
        target = f"{change.kind} {change.namespace + '/' if change.namespace else ''}{change.name}"
        step_id = f"{change.action}:{change.key}#{_fingerprint(change)}"
        extra: dict[str, Any] = {}
        if not steps:  # the plan's findings ride on its first step
            extra = {"blocked": blocked, "warnings": warnings}
        if change.action in ("create", "update") and r is not None:
            verify: Callable[[], str | None] | None
            if r.provider == "aws":
                action, verify = _aws_action(rt, change), _aws_verify(rt, r)
            elif r.provider == "db":  # a product database (provisioning.databases)
                action, verify = databases.action(rt.clients, change), databases.verify(rt.clients, change)
            else:
                action, verify = _k8s_action(rt, change), _k8s_verify(rt, r)
            steps.append(
                planmod.Step(
                    id=step_id,
                    description=f"{change.action} {target}",
                    kind=change.action,
                    target=target,
                    diffs=_diffs(change),
                    action=action,
                    verify=verify,
                    **extra,
                )
            )
        elif change.action == "delete":
            steps.append(
                planmod.Step(
                    id=step_id,
                    description=f"delete {target} (not desired)",
                    kind="delete",
                    target=target,
                    action=_k8s_delete(rt, change),
                    **extra,
                )
            )
        elif change.action == "unchanged" and r is not None and r.provider == "k8s" and _k8s_verify(rt, r):
            steps.append(
                planmod.Step(
                    id=step_id,
                    description=f"check {target}",
                    kind="check",
                    target=target,
                    verify=_k8s_verify(rt, r),
                    **extra,
                )
            )
        else:
            note = "present, not desired: kept" if change.action == "undesired" else "unchanged"
            if change.action == "manual":  # provisioning.databases: not applied, see the plan's finding
                note = "manual, not applied (see the plan's finding)"
            steps.append(
                planmod.Step(id=step_id, description=f"{note}: {target}", kind="noop", target=target, **extra)
            )
    if not steps and blocked:
        steps.append(planmod.Step(id="blocked", description="blocked", blocked=blocked))
    return planmod.Plan(RUNBOOK, steps, stack=pplan.stack)


class _DeferredBackend:
    """The ledger ConfigMap once the Kubernetes API and the namespace can be used; memory until then."""

    def __init__(self, rt: _Runtime, namespace: str, ns_body: Mapping[str, Any] | None) -> None:
        self.rt = rt
        self.namespace = namespace
        self.ns_body = ns_body
        self.memory = planmod.MemoryBackend()
        self.remote: planmod.ConfigMapBackend | None = None
        self.description = f"ConfigMap {namespace}/{planmod.ledger_name(RUNBOOK)} (memory until reachable)"

    def _switch(self) -> None:
        if self.remote is not None or not self.rt.reachable():
            return
        api = self.rt.api()
        if self.ns_body is not None:
            try:
                k8s.create(api, dict(self.ns_body), policy=self.rt.clients.policy)
            except errors.Conflict:
                pass
        self.remote = planmod.ConfigMapBackend(self.rt.clients, self.namespace, RUNBOOK)
        self.description = self.remote.description
        if self.memory.doc is not None:
            remote_doc, version = self.remote.load()
            merged = {**remote_doc, **self.memory.doc}
            merged["steps"] = {**(remote_doc.get("steps") or {}), **(self.memory.doc.get("steps") or {})}
            self.remote.save(merged, version)

    def load(self) -> tuple[dict[str, Any], str | None]:
        """See :class:`atlbook.plan.LedgerBackend`."""
        self._switch()
        return self.remote.load() if self.remote is not None else self.memory.load()

    def save(self, doc: Mapping[str, Any], version: str | None) -> str:
        """See :class:`atlbook.plan.LedgerBackend`."""
        if self.remote is None:
            return self.memory.save(doc, version)
        return self.remote.save(doc, version)


def apply(
    clients: Clients,
    pplan: ProvisionPlan,
    *,
    confirmed: bool,
    progress: Callable[[planmod.StepEvent], None] | None = None,
    waits: Waits | None = None,
) -> planmod.ApplyReport:
    """Apply ``pplan`` step by step under the ledger; resumable; returns the report.

    Refuses (``PlanError``) a blocked plan and, when the plan changes anything, an unconfirmed one.
    A plan without changes runs its read-only checks and makes no mutating call. Raises
    ``atlbook.plan.ApplyFailed`` at the first failing step (the ledger keeps what was done).
    """
    if pplan.blocked:
        reasons = "; ".join(f.message for f in pplan.findings if f.severity == "blocker")
        raise errors.PlanError(f"the plan is blocked, nothing was changed: {reasons}")
    rt = _Runtime(clients, pplan, waits or Waits())
    steps = _steps(rt, pplan)
    if steps.is_blocked:
        return planmod.apply(steps, None, progress=progress)  # raises PlanError with the reasons
    if steps.changes == 0:
        return planmod.apply(steps, None, progress=progress)
    if not confirmed:
        raise errors.PlanError(
            f"the plan changes {steps.changes} things and was not confirmed: nothing was changed "
            "(set apply: true, or press Apply)"
        )
    namespace = str(pplan.desired.facts.get("ledger_namespace", "atlassian"))
    ns_res = pplan.desired.by_key().get(f"k8s/Namespace/-/{namespace}")
    backend = _DeferredBackend(rt, namespace, ns_res.body if ns_res else None)
    outer = planmod.ParameterLock(clients, pplan.stack, RUNBOOK)
    ledger = planmod.Ledger(backend, runbook=RUNBOOK, stack=pplan.stack, outer=outer)
    return planmod.apply(steps, ledger, progress=progress)
