"""The plan: desired state compared with observed state, field by field. Pure.

Each desired resource becomes one :class:`Change`:

- ``create`` — not there;
- ``update`` — there, and some field we set differs: :attr:`Change.fields` lists ``path: old → new``;
  only fields the desired body sets are compared, so server-set fields (uid, resourceVersion, status …)
  and defaults the API adds (``partition: 0``, ``sessionAffinity: None`` …) never show as changes;
  integers and their string forms compare equal; lists of named items (containers, env, ports,
  volumes) are matched by name;
- ``unchanged``; ``found`` for lookups (the VPC and subnets);
- ``undesired`` — carries our stack label/tag but is not desired: reported, never deleted, unless
  ``delete_undesired`` makes it ``delete``.

Secret values are never compared or shown: a Secret is ``unchanged`` when it has every key it should
have (rotation is not provisioning's job). Values that are late-bound and not yet known (the EFS id
before EFS exists) are not compared.

Blocking checks: the desired state's findings (connection budget, single AZ …), a NetworkPolicy engine
(running already, or installed by this plan), and the lookups (no VPC or no subnet in a zone).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from atlbook.provisioning import databases
from atlbook.provisioning.kinds import AWS_UPDATABLE
from atlbook.provisioning.model import DesiredState, Finding, Resource, bind, unbound

__all__ = [
    "Change",
    "FieldChange",
    "Observed",
    "ProvisionPlan",
    "compare",
    "plan",
]

Action = Literal["create", "update", "unchanged", "found", "undesired", "delete", "missing", "manual"]
MUTATING: frozenset[str] = frozenset({"create", "update", "delete"})
_META_KEYS = ("labels", "annotations")
_NAMED_KEYS = ("name", "containerPort", "mountPath", "key", "port")


@dataclasses.dataclass(frozen=True)
class FieldChange:
    """One field that differs: ``path`` (``spec.replicas``), what it is, what it should be."""

    path: str
    old: Any
    new: Any

    def __str__(self) -> str:
        return f"{self.path}: {_show(self.old)} → {_show(self.new)}"


@dataclasses.dataclass(frozen=True)
class Observed:
    """What exists, shaped for comparison (see :mod:`atlbook.provisioning.observe`).

    ``objects`` maps a resource key to its observed body (Kubernetes: the object as the API returns it;
    AWS: the describe result normalised to the shape of the desired request) or ``None`` when absent.
    ``outputs`` are late-bound values known from what exists. ``extra`` are things that carry the
    stack's label/tag but have no desired counterpart. ``engine`` names a running NetworkPolicy engine.
    """

    objects: Mapping[str, Mapping[str, Any] | None]
    outputs: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    extra: Mapping[str, Mapping[str, Any]] = dataclasses.field(default_factory=dict)
    engine: str | None = None
    notes: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class Change:
    """What the plan will do to one resource."""

    key: str
    action: Action
    provider: str
    kind: str
    name: str
    namespace: str = ""
    fields: tuple[FieldChange, ...] = ()
    note: str = ""
    resource: Resource | None = None

    @property
    def mutating(self) -> bool:
        """True when applying this change calls a mutating API."""
        return self.action in MUTATING

    def row(self) -> dict[str, Any]:
        """One row of the plan table (no secret value can appear: bodies hold references only)."""
        return {
            "action": self.action,
            "provider": self.provider,
            "kind": self.kind,
            "namespace": self.namespace,
            "name": self.name,
            "changes": "; ".join(str(f) for f in self.fields),
            "note": self.note,
        }


@dataclasses.dataclass(frozen=True)
class ProvisionPlan:
    """The plan: one change per desired (or undesired) resource, findings, and the facts behind them."""

    stack: str
    changes: tuple[Change, ...]
    findings: tuple[Finding, ...]
    desired: DesiredState
    outputs: Mapping[str, Any]

    @property
    def blocked(self) -> bool:
        """True when a blocker finding stops apply."""
        return any(f.severity == "blocker" for f in self.findings)

    @property
    def counts(self) -> dict[str, int]:
        """Number of changes per action, every action listed (``{"create": 3, "update": 0, …}``)."""
        out = {a: 0 for a in ("create", "update", "delete", "unchanged", "found", "undesired", "missing")}
        for c in self.changes:
            out[c.action] = out.get(c.action, 0) + 1  # "manual" (provisioning.databases) only when present
        return out

    @property
    def mutations(self) -> int:
        """How many changes would call a mutating API."""
        return sum(1 for c in self.changes if c.mutating)

    def rows(self) -> list[dict[str, Any]]:
        """The plan table, one row per change (in apply order)."""
        return [c.row() for c in self.changes]

    def summary(self) -> dict[str, Any]:
        """What the record keeps: counts, blocked, findings, changed rows (unchanged ones only counted)."""
        return {
            "stack": self.stack,
            "counts": self.counts,
            "mutations": self.mutations,
            "blocked": self.blocked,
            "findings": [dataclasses.asdict(f) for f in self.findings],
            "changes": [c.row() for c in self.changes if c.action not in ("unchanged", "found")],
        }


def _show(value: Any) -> str:
    if value is None:
        return "∅"
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= 80 else text[:77] + "…"


def _scalar_equal(a: Any, b: Any) -> bool:
    if a == b:
        return True
    if isinstance(a, bool) or isinstance(b, bool):
        return False
    if isinstance(a, int | float | str) and isinstance(b, int | float | str):
        return str(a) == str(b)
    return False


def _item_key(item: Any) -> tuple[str, Any] | None:
    if isinstance(item, Mapping):
        for k in _NAMED_KEYS:
            if k in item and isinstance(item[k], str | int):
                return (k, item[k])
    return None


def compare(desired: Any, observed: Any, path: str = "") -> list[FieldChange]:
    """Field changes needed to make ``observed`` carry every field of ``desired`` (desired ⊆ observed).

    Fields only in ``observed`` are ignored (server-set fields, API defaults). Unbound late values in
    ``desired`` are skipped.
    """
    if isinstance(desired, str) and unbound(desired):
        return []
    if isinstance(desired, Mapping):
        if not isinstance(observed, Mapping):
            return [FieldChange(path or ".", observed, desired)]
        out: list[FieldChange] = []
        for k, v in desired.items():
            sub = f"{path}.{k}" if path else str(k)
            if k not in observed or observed[k] is None:
                if v in ({}, [], None, ""):
                    continue
                if not unbound(v):
                    out.append(FieldChange(sub, None, v))
                continue
            out.extend(compare(v, observed[k], sub))
        return out
    if isinstance(desired, list | tuple):
        if not isinstance(observed, list | tuple):
            return [FieldChange(path, observed, list(desired))]
        keys = [_item_key(d) for d in desired]
        if all(keys) and len({k for k in keys}) == len(keys):
            by_key = {_item_key(o): o for o in observed}
            out = []
            for k, d in zip(keys, desired, strict=True):
                sub = f"{path}[{k[1] if k else '?'}]"
                if k not in by_key:
                    out.append(FieldChange(sub, None, d))
                else:
                    out.extend(compare(d, by_key[k], sub))
            return out
        if len(desired) != len(observed):
            return [FieldChange(path, list(observed), list(desired))]
        out = []
        for i, (d, o) in enumerate(zip(desired, observed, strict=True)):
            out.extend(compare(d, o, f"{path}[{i}]"))
        return out
    if _scalar_equal(desired, observed):
        return []
    return [FieldChange(path, observed, desired)]


def _comparable(resource: Resource, body: Mapping[str, Any]) -> dict[str, Any]:
    """The part of a desired body that is compared with the observed object."""
    if resource.provider == "aws":
        return {k: body[k] for k in AWS_UPDATABLE.get(resource.kind, ()) if k in body}
    meta = body.get("metadata") or {}
    out: dict[str, Any] = {k: v for k, v in body.items() if k not in ("metadata", "apiVersion", "kind")}
    out["metadata"] = {k: meta[k] for k in _META_KEYS if k in meta}
    if resource.kind == "Secret":
        out.pop("stringData", None)
    return out


def _secret_value(resource: Resource, key: str) -> str:
    ref = resource.secret_refs.get(key)
    if ref == "generate":
        return "<generated>"
    if ref:
        return f"<from {ref}>"
    return str((resource.body.get("stringData") or {}).get(key, ""))  # not secret (e.g. a user name)


def _secret_keys_missing(resource: Resource, observed: Mapping[str, Any]) -> list[FieldChange]:
    wanted = set((resource.body.get("stringData") or {}).keys())
    have = set((observed.get("data") or {}).keys()) | set((observed.get("stringData") or {}).keys())
    return [FieldChange(f"data.{k}", None, _secret_value(resource, k)) for k in sorted(wanted - have)]


def _change(resource: Resource, observed: Mapping[str, Any] | None, outputs: Mapping[str, Any]) -> Change:
    change = Change(
        key=resource.key,
        action="create",
        provider=resource.provider,
        kind=resource.kind,
        name=resource.name,
        namespace=resource.namespace,
        note=resource.note,
        resource=resource,
    )
    if resource.lookup:
        return dataclasses.replace(change, action="found" if observed is not None else "missing")
    if resource.provider == "db":  # a product database: create / unchanged / manual (provisioning.databases)
        return databases.change(change, observed)
    if observed is None:
        if resource.kind == "Secret" and resource.provider == "k8s":
            return dataclasses.replace(change, fields=tuple(_secret_keys_missing(resource, {})))
        return change
    body = bind(resource.body, outputs)
    fields = compare(_comparable(resource, body), observed)
    if resource.kind == "Secret" and resource.provider == "k8s":
        fields += _secret_keys_missing(resource, observed)
    return dataclasses.replace(change, action="update" if fields else "unchanged", fields=tuple(fields))


def _engine_finding(desired: DesiredState, observed: Observed, changes: Sequence[Change]) -> list[Finding]:
    if not desired.facts.get("network_policies", True):
        return []
    if observed.engine:
        return []
    installs = any(
        c.kind == "EksAddon"
        and c.resource is not None
        and c.resource.body.get("addonName") == "vpc-cni"
        and "enableNetworkPolicy" in str(c.resource.body.get("configurationValues", ""))
        for c in changes
    )
    if installs:
        return []
    return [
        Finding(
            "blocker",
            "no-network-policy-engine",
            "no NetworkPolicy engine is running and this plan installs none: NetworkPolicies would be "
            "accepted and silently not enforced. Enable the VPC CNI's network policy support "
            "(EKS add-on vpc-cni, enableNetworkPolicy) or install Calico.",
            {"engine": desired.facts.get("network_policy_engine")},
        )
    ]


def plan(desired: DesiredState, observed: Observed, *, delete_undesired: bool = False) -> ProvisionPlan:
    """Diff ``desired`` against ``observed`` into a :class:`ProvisionPlan`. Pure.

    Refuses nothing; what must not be applied is a blocker finding (``ProvisionPlan.blocked``).
    Present-but-not-desired objects are ``undesired`` (reported) unless ``delete_undesired``.
    """
    outputs = dict(observed.outputs)
    changes = [_change(r, observed.objects.get(r.key), outputs) for r in desired.resources]
    wanted = {r.key for r in desired.resources}
    for key in sorted(observed.extra):
        if key in wanted:
            continue
        provider, kind, *rest = key.split("/")
        namespace, name = (rest[0] if rest[0] != "-" else "", rest[1]) if len(rest) == 2 else ("", rest[0])
        changes.append(
            Change(
                key=key,
                action="delete" if delete_undesired and provider == "k8s" else "undesired",
                provider=provider,
                kind=kind,
                name=name,
                namespace=namespace,
                note="carries this stack's label/tag but is not desired"
                + (
                    "; AWS resources are never deleted by provisioning: remove it by hand if it must go"
                    if provider == "aws"
                    else ("" if delete_undesired else "; kept (delete_undesired is off)")
                ),
            )
        )
    findings = list(desired.findings)
    for c in changes:
        if c.action == "missing":
            findings.append(
                Finding(
                    "blocker",
                    f"{c.kind.lower()}-not-found",
                    f"{c.kind} {c.name} not found: {c.note}",
                    {"key": c.key},
                )
            )
    findings += _engine_finding(desired, observed, changes)
    findings += databases.findings(
        changes, observed.objects, outputs, region=str(desired.facts.get("region", ""))
    )
    return ProvisionPlan(
        stack=desired.stack,
        changes=tuple(changes),
        findings=tuple(findings),
        desired=desired,
        outputs=outputs,
    )
