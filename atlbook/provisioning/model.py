"""The vocabulary shared by desired / observe / diff / apply: resources, findings, late-bound values.

A :class:`Resource` is one thing that should exist: a Kubernetes object (``body`` is its manifest) or an
AWS resource (``body`` is the request of its create call). Values only known once something else exists
(the EFS id, the RDS endpoint, the ingress load balancer's hostname) are written as *late-bound*
placeholders ``${aws:KIND/NAME.Field}`` / ``${k8s:KIND/NS/NAME.path}``; :func:`bind` substitutes
whatever the outputs know, before diffing (outputs of observed resources) and before each apply step
(outputs of the steps already done). Secret values never appear: a Secret's body holds
``<from env:NAME>`` placeholders and its ``secret_refs`` say what apply resolves.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from typing import Any, Literal

__all__ = [
    "DesiredState",
    "Finding",
    "Resource",
    "bind",
    "late",
    "unbound",
]

Provider = Literal["aws", "k8s", "db"]  # db: a database inside RDS (provisioning.databases)
Severity = Literal["info", "warning", "blocker"]

_LATE = re.compile(r"\$\{([a-z0-9]+:[^}]+)\}")


def late(provider: str, kind: str, name: str, field: str) -> str:
    """A late-bound placeholder for ``field`` of resource ``provider/kind/name``."""
    return f"${{{provider}:{kind}/{name}.{field}}}"


@dataclasses.dataclass(frozen=True)
class Resource:
    """One desired AWS resource or Kubernetes object."""

    provider: Provider
    kind: str
    name: str
    body: Mapping[str, Any]
    namespace: str = ""
    depends_on: tuple[str, ...] = ()
    """Keys of resources that must exist (and be ready) first."""
    note: str = ""
    """Why it is shaped like this (shown in the plan), e.g. the EFS throughput mode rationale."""
    secret_refs: Mapping[str, str] = dataclasses.field(default_factory=dict)
    """For Secrets (and the RDS master password): data key → secret reference, resolved at apply time."""
    lookup: bool = False
    """True for things we find but never create (the VPC and its subnets)."""

    @property
    def key(self) -> str:
        """``k8s/StatefulSet/atlassian/jira`` or ``aws/EksCluster/demo`` — unique in a desired state."""
        if self.provider == "k8s":
            return f"k8s/{self.kind}/{self.namespace or '-'}/{self.name}"
        return f"{self.provider}/{self.kind}/{self.name}"  # aws/… (or db/… for provisioning.databases)


@dataclasses.dataclass(frozen=True)
class Finding:
    """Something the plan must show: a warning, or a blocker that stops apply."""

    severity: Severity
    code: str
    message: str
    numbers: Mapping[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class DesiredState:
    """What the stack should be: resources in dependency order, and findings known without observing."""

    stack: str
    resources: tuple[Resource, ...]
    findings: tuple[Finding, ...] = ()
    facts: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    """Numbers the checks need (budget, zones, products, namespaces, engine)."""

    def by_key(self) -> dict[str, Resource]:
        """Resources keyed by :attr:`Resource.key`."""
        return {r.key: r for r in self.resources}

    def k8s(self) -> list[Resource]:
        """The Kubernetes objects, in order."""
        return [r for r in self.resources if r.provider == "k8s"]

    def aws(self) -> list[Resource]:
        """The AWS resources, in order."""
        return [r for r in self.resources if r.provider == "aws"]


def bind(value: Any, outputs: Mapping[str, Any]) -> Any:
    """Replace late-bound placeholders in ``value`` with what ``outputs`` knows (left as-is otherwise).

    A string that is exactly one placeholder becomes the output value (which may be a list or number);
    placeholders inside a longer string are substituted as text.
    """
    if isinstance(value, str):
        whole = _LATE.fullmatch(value)
        if whole:
            return outputs.get(whole.group(1), value)
        return _LATE.sub(lambda m: str(outputs.get(m.group(1), m.group(0))), value)
    if isinstance(value, Mapping):
        return {k: bind(v, outputs) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [bind(v, outputs) for v in value]
    return value


def unbound(value: Any) -> list[str]:
    """Placeholders still present in ``value`` (``aws:EfsFileSystem/x.FileSystemId`` …)."""
    found: list[str] = []
    if isinstance(value, str):
        found.extend(_LATE.findall(value))
    elif isinstance(value, Mapping):
        for v in value.values():
            found.extend(unbound(v))
    elif isinstance(value, list | tuple):
        for v in value:
            found.extend(unbound(v))
    return found
