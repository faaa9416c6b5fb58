"""Label and field selectors, parsed and matched like kube-apiserver's.

Label selector strings: ``a=b``, ``a==b``, ``a!=b``, ``a in (x,y)``, ``a notin (x)``, ``a``, ``!a``,
comma-separated (all must hold). Structured selectors (``matchLabels``/``matchExpressions`` with
``In``/``NotIn``/``Exists``/``DoesNotExist``) are matched by :func:`match_label_selector`. Field
selectors support ``=``, ``==`` and ``!=`` on the fields kubectl and controllers use; any other
field label is refused like the real server (400 ``field label not supported``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from .errors import FIELD_LABEL_MSG, BadRequest

__all__ = [
    "FIELD_LABELS",
    "compile_label_selector",
    "LabelRequirement",
    "match_label_selector",
    "parse_field_selector",
    "parse_label_selector",
    "selector_to_string",
]

LabelRequirement = tuple[str, str, tuple[str, ...]]
"""(key, operator, values); operator is one of ``=``, ``!=``, ``in``, ``notin``, ``exists``, ``!``."""

_KEY = r"[A-Za-z0-9]([-A-Za-z0-9_./]*[A-Za-z0-9])?"
_TOKEN = re.compile(
    r"\s*(?:(?P<not>!)\s*(?P<nkey>" + _KEY + r")"
    r"|(?P<key>" + _KEY + r")\s*(?:(?P<op>==|!=|=)\s*(?P<val>[-A-Za-z0-9_.]*)"
    r"|\s+(?P<setop>in|notin)\s*\((?P<vals>[^)]*)\))?)\s*(?:,|$)"
)


def parse_label_selector(text: str | None) -> list[LabelRequirement]:
    """Parse a label selector string; raises :class:`BadRequest` on malformed input."""
    if not text or not text.strip():
        return []
    out: list[LabelRequirement] = []
    pos = 0
    text = text.strip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise BadRequest(f"unable to parse requirement: found '{text[pos:]}', expected: identifier")
        if m.group("not"):
            out.append((m.group("nkey"), "!", ()))
        elif m.group("op"):
            op = "=" if m.group("op") == "==" else m.group("op")
            out.append((m.group("key"), op, (m.group("val"),)))
        elif m.group("setop"):
            vals = tuple(v.strip() for v in m.group("vals").split(",") if v.strip())
            out.append((m.group("key"), m.group("setop"), vals))
        else:
            out.append((m.group("key"), "exists", ()))
        pos = m.end()
    return out


def _matches(reqs: list[LabelRequirement], labels: Mapping[str, str]) -> bool:
    for key, op, vals in reqs:
        present = key in labels
        if op == "=":
            if labels.get(key) != vals[0]:
                return False
        elif op == "!=":
            if present and labels[key] == vals[0]:
                return False
        elif op == "in":
            if not present or labels[key] not in vals:
                return False
        elif op == "notin":
            if present and labels[key] in vals:
                return False
        elif op == "exists":
            if not present:
                return False
        elif op == "!" and present:
            return False
    return True


def compile_label_selector(text: str | None) -> Callable[[Mapping[str, str]], bool]:
    """A predicate on a label mapping for a selector string (raises :class:`BadRequest` if malformed)."""
    reqs = parse_label_selector(text)
    return lambda labels: _matches(reqs, labels)


def match_label_selector(selector: Mapping[str, Any] | None, labels: Mapping[str, str] | None) -> bool:
    """Whether ``labels`` satisfy a ``LabelSelector``; ``None`` selects nothing, ``{}`` everything."""
    if selector is None:
        return False
    labels = labels or {}
    for k, v in (selector.get("matchLabels") or {}).items():
        if labels.get(k) != v:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, vals = expr.get("key", ""), expr.get("operator", ""), expr.get("values") or []
        if op == "In" and labels.get(key) not in vals:
            return False
        if op == "NotIn" and key in labels and labels[key] in vals:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


def selector_to_string(selector: Mapping[str, Any] | None) -> str:
    """The string form of a structured selector, as ``kubectl``/Scale ``status.selector`` shows it."""
    parts: list[str] = []
    if not selector:
        return ""
    for k, v in sorted((selector.get("matchLabels") or {}).items()):
        parts.append(f"{k}={v}")
    for expr in selector.get("matchExpressions") or []:
        key, op, vals = expr.get("key", ""), expr.get("operator", ""), expr.get("values") or []
        if op == "In":
            parts.append(f"{key} in ({','.join(sorted(vals))})")
        elif op == "NotIn":
            parts.append(f"{key} notin ({','.join(sorted(vals))})")
        elif op == "Exists":
            parts.append(key)
        elif op == "DoesNotExist":
            parts.append(f"!{key}")
    return ",".join(parts)


_COMMON = ("metadata.name", "metadata.namespace")
FIELD_LABELS: dict[str, tuple[str, ...]] = {
    "pods": _COMMON
    + (
        "spec.nodeName",
        "spec.restartPolicy",
        "spec.schedulerName",
        "spec.serviceAccountName",
        "spec.hostNetwork",
        "status.phase",
        "status.podIP",
        "status.nominatedNodeName",
    ),
    "events": _COMMON
    + (
        "involvedObject.kind",
        "involvedObject.namespace",
        "involvedObject.name",
        "involvedObject.uid",
        "involvedObject.apiVersion",
        "involvedObject.resourceVersion",
        "involvedObject.fieldPath",
        "reason",
        "reportingComponent",
        "source",
        "type",
    ),
    "nodes": _COMMON + ("spec.unschedulable",),
    "secrets": _COMMON + ("type",),
    "namespaces": _COMMON + ("status.phase",),
    "replicasets.apps": _COMMON + ("status.replicas",),
    "persistentvolumes": _COMMON + ("spec.storageClassName",),
}
"""Field labels each resource supports beyond ``metadata.name``/``metadata.namespace``."""


def _field_value(obj: Mapping[str, Any], path: str) -> str:
    if path == "source":
        return str((obj.get("source") or {}).get("component", ""))
    cur: Any = obj
    for part in path.split("."):
        if not isinstance(cur, Mapping):
            return ""
        cur = cur.get(part)
    if cur is None:
        return ""
    if isinstance(cur, bool):
        return "true" if cur else "false"
    return str(cur)


def parse_field_selector(text: str | None, resource_key: str) -> Callable[[Mapping[str, Any]], bool]:
    """A predicate on an object for a field selector; refuses unsupported field labels (400)."""
    if not text or not text.strip():
        return lambda _obj: True
    allowed = FIELD_LABELS.get(resource_key, _COMMON)
    reqs: list[tuple[str, bool, str]] = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        m = re.fullmatch(r"([A-Za-z0-9_.]+)\s*(==|!=|=)\s*(.*)", part)
        if not m:
            raise BadRequest(f"invalid selector: '{text}'; can't understand '{part}'")
        label, op, value = m.group(1), m.group(2), m.group(3)
        if label not in allowed:
            raise BadRequest(FIELD_LABEL_MSG.format(label=label))
        reqs.append((label, op != "!=", value))

    def pred(obj: Mapping[str, Any]) -> bool:
        return all((_field_value(obj, label) == value) == eq for label, eq, value in reqs)

    return pred
