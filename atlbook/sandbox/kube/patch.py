"""The three patch formats of kube-apiserver, plus the approximation of server-side apply.

- JSON merge patch (RFC 7386, ``application/merge-patch+json``): maps merge, ``null`` deletes, lists
  replace.
- JSON patch (RFC 6902, ``application/json-patch+json``): add/remove/replace/move/copy/test.
- Strategic merge patch (``application/strategic-merge-patch+json``): like merge patch, but lists that
  carry a patch merge key in the Kubernetes Go types (containers by ``name``, container ports by
  ``containerPort``, Service ports by ``port``, volumeMounts by ``mountPath``, conditions by ``type``…)
  are merged element-wise; directives ``$patch: replace|delete``, ``$deleteFromPrimitiveList/<f>``,
  ``$setElementOrder/<f>`` and ``$retainKeys`` are honoured or stripped. Lists the Go types mark as
  atomic (``tolerations``, ``taints``, ``args``…) replace, exactly like the real server.
Errors raise :class:`~atlbook.sandbox.kube.errors.BadRequest` / ``Invalid`` (422 for failed ``test``).
"""

from __future__ import annotations

import copy
import json
from typing import Any

from .errors import BadRequest, Invalid, KubeApiError

__all__ = ["json_patch", "merge_key", "merge_patch", "removal_patch", "strategic_merge_patch"]

_DELETE = object()

# (field name) -> patch merge key, valid anywhere in the object unless overridden by context below.
_MERGE_KEYS: dict[str, str] = {
    "containers": "name",
    "initContainers": "name",
    "ephemeralContainers": "name",
    "env": "name",
    "volumes": "name",
    "volumeMounts": "mountPath",
    "volumeDevices": "devicePath",
    "imagePullSecrets": "name",
    "hostAliases": "ip",
    "topologySpreadConstraints": "topologyKey",
    "resourceClaims": "name",
    "conditions": "type",
    "ownerReferences": "uid",
    "addresses": "type",
    "images": "",
}
_PRIMITIVE_MERGE = {("metadata", "finalizers")}


def merge_key(kind: str, path: tuple[str, ...]) -> str | None:
    """The patch merge key of the list at ``path`` in an object of ``kind``, or ``None`` (atomic list)."""
    if not path:
        return None
    name = path[-1]
    if name == "ports":
        if any(p in ("containers", "initContainers", "ephemeralContainers") for p in path[:-1]):
            return "containerPort"
        if kind == "Service" and path[:-1] == ("spec",):
            return "port"
        return None
    if name == "addresses" and not (kind == "Node" and path == ("status", "addresses")):
        return None
    key = _MERGE_KEYS.get(name)
    return key or None


def merge_patch(target: Any, patch: Any) -> Any:
    """Apply an RFC 7386 merge patch; returns a new value (``target`` is not modified)."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if v is None:
            result.pop(k, None)
        else:
            result[k] = merge_patch(result.get(k), v)
    return result


def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise BadRequest(
            f'the server rejected our request due to an error in our request: invalid path "{path}"'
        )
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _walk(doc: Any, parts: list[str], path: str) -> Any:
    cur = doc
    for p in parts:
        if isinstance(cur, dict):
            if p not in cur:
                raise _missing(path)
            cur = cur[p]
        elif isinstance(cur, list):
            try:
                cur = cur[int(p)]
            except (ValueError, IndexError):
                raise _missing(path) from None
        else:
            raise _missing(path)
    return cur


def _missing(path: str) -> KubeApiError:
    return Invalid(
        f"the server rejected our request due to an error in our request: "
        f'doc is missing path: "{path}": missing value'
    )


def _add(doc: Any, parts: list[str], value: Any, path: str, replace: bool = False) -> Any:
    if not parts:
        return value
    parent = _walk(doc, parts[:-1], path)
    last = parts[-1]
    if isinstance(parent, dict):
        if replace and last not in parent:
            raise _missing(path)
        parent[last] = value
    elif isinstance(parent, list):
        if last == "-" and not replace:
            parent.append(value)
        else:
            try:
                idx = int(last)
            except ValueError:
                raise _missing(path) from None
            if idx < 0 or idx > len(parent) or (replace and idx == len(parent)):
                raise _missing(path)
            if replace:
                parent[idx] = value
            else:
                parent.insert(idx, value)
    else:
        raise _missing(path)
    return doc


def _remove(doc: Any, parts: list[str], path: str) -> Any:
    if not parts:
        raise BadRequest("cannot remove the whole document")
    parent = _walk(doc, parts[:-1], path)
    last = parts[-1]
    if isinstance(parent, dict):
        if last not in parent:
            raise _missing(path)
        return parent.pop(last)
    if isinstance(parent, list):
        try:
            return parent.pop(int(last))
        except (ValueError, IndexError):
            raise _missing(path) from None
    raise _missing(path)


def json_patch(target: Any, ops: Any) -> Any:
    """Apply an RFC 6902 JSON patch; refuses malformed operations (400) and failed ``test`` (422)."""
    if not isinstance(ops, list):
        raise BadRequest("json patch must be a list of operations")
    doc = copy.deepcopy(target)
    for op in ops:
        if not isinstance(op, dict) or "op" not in op or "path" not in op:
            raise BadRequest(f"invalid JSON patch operation: {json.dumps(op)}")
        kind, path = op["op"], op["path"]
        parts = _pointer(path)
        if kind in ("add", "replace", "test") and "value" not in op:
            raise BadRequest(
                f"the server rejected our request due to an error in our request: "
                f'missing value for operation "{kind}"'
            )
        if kind == "add":
            doc = _add(doc, parts, copy.deepcopy(op["value"]), path)
        elif kind == "replace":
            doc = _add(doc, parts, copy.deepcopy(op["value"]), path, replace=True)
        elif kind == "remove":
            _remove(doc, parts, path)
        elif kind in ("move", "copy"):
            src = op.get("from", "")
            value = copy.deepcopy(_walk(doc, _pointer(src), src))
            if kind == "move":
                _remove(doc, _pointer(src), src)
            doc = _add(doc, parts, value, path)
        elif kind == "test":
            if _walk(doc, parts, path) != op["value"]:
                raise Invalid(
                    f"the server rejected our request due to an error in our request: "
                    f"testing value {path} failed: test failed"
                )
        else:
            raise BadRequest(f"Unexpected kind: {kind}")
    return doc


def strategic_merge_patch(target: Any, patch: Any, kind: str) -> Any:
    """Apply a strategic merge patch to an object of ``kind``; returns a new object."""
    if not isinstance(patch, dict):
        raise BadRequest("strategic merge patch must be a JSON object")
    out = _smp_map(copy.deepcopy(target) if isinstance(target, dict) else {}, patch, kind, ())
    return out if out is not _DELETE else {}


def _smp_map(target: dict[str, Any], patch: dict[str, Any], kind: str, path: tuple[str, ...]) -> Any:
    directive = patch.get("$patch")
    if directive == "delete":
        return _DELETE
    if directive == "replace":
        return {k: v for k, v in patch.items() if k != "$patch"}
    retain = patch.get("$retainKeys")
    for k, v in patch.items():
        if k.startswith("$deleteFromPrimitiveList/"):
            field = k.split("/", 1)[1]
            if isinstance(target.get(field), list):
                target[field] = [x for x in target[field] if x not in (v or [])]
            continue
        if k.startswith("$"):
            continue
        sub = path + (k,)
        if v is None:
            target.pop(k, None)
        elif isinstance(v, dict):
            cur = target.get(k)
            merged = _smp_map(cur if isinstance(cur, dict) else {}, v, kind, sub)
            if merged is _DELETE:
                target.pop(k, None)
            else:
                target[k] = merged
        elif isinstance(v, list):
            target[k] = _smp_list(target.get(k), v, kind, sub)
        else:
            target[k] = v
    if isinstance(retain, list):
        for k in list(target):
            if k not in retain:
                target.pop(k)
    return target


def _smp_list(current: Any, patch: list[Any], kind: str, path: tuple[str, ...]) -> list[Any]:
    key = merge_key(kind, path)
    cur = current if isinstance(current, list) else []
    if path in _PRIMITIVE_MERGE:
        out = list(cur)
        for v in patch:
            if v not in out:
                out.append(v)
        return out
    if key is None:
        if any(isinstance(p, dict) and p.get("$patch") == "replace" for p in patch):
            return [p for p in patch if not (isinstance(p, dict) and "$patch" in p)]
        return [_strip(p) for p in patch]
    if any(isinstance(p, dict) and p.get("$patch") == "replace" and len(p) == 1 for p in patch):
        return [_strip(p) for p in patch if not (isinstance(p, dict) and "$patch" in p)]
    out = [copy.deepcopy(x) for x in cur]
    for item in patch:
        if not isinstance(item, dict):
            raise BadRequest(f"strategic merge patch: list {'.'.join(path)} expects objects keyed by {key}")
        if key not in item:
            raise BadRequest(f"map: {item} does not contain declared merge key: {key}")
        idx = next((i for i, x in enumerate(out) if isinstance(x, dict) and x.get(key) == item[key]), None)
        if item.get("$patch") == "delete":
            if idx is not None:
                out.pop(idx)
            continue
        if idx is None:
            out.append(_strip(item))
        else:
            out[idx] = _smp_map(out[idx], item, kind, path)
    return out


def _strip(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip(v) for k, v in value.items() if not k.startswith("$") and v is not None}
    if isinstance(value, list):
        return [_strip(v) for v in value]
    return value


def removal_patch(previous: Any, current: Any, kind: str, path: tuple[str, ...] = ()) -> dict[str, Any]:
    """A strategic merge patch deleting what ``previous`` applied and ``current`` no longer does.

    Server-side apply without managedFields: one manager's earlier configuration is compared with its
    new one; fields it dropped are removed (maps key by key, keyed lists item by item; atomic lists are
    replaced by the new configuration anyway).
    """
    out: dict[str, Any] = {}
    if not isinstance(previous, dict):
        return out
    cur = current if isinstance(current, dict) else {}
    for k, v in previous.items():
        sub = path + (k,)
        if k not in cur:
            out[k] = None
        elif isinstance(v, dict) and isinstance(cur[k], dict):
            inner = removal_patch(v, cur[k], kind, sub)
            if inner:
                out[k] = inner
        elif isinstance(v, list) and isinstance(cur[k], list):
            key = merge_key(kind, sub)
            if key is None:
                continue
            keep = {x.get(key) for x in cur[k] if isinstance(x, dict)}
            items: list[Any] = []
            for item in v:
                if not isinstance(item, dict) or key not in item:
                    continue
                if item[key] not in keep:
                    items.append({key: item[key], "$patch": "delete"})
                else:
                    match = next(x for x in cur[k] if isinstance(x, dict) and x.get(key) == item[key])
                    inner = removal_patch(item, match, kind, sub)
                    if inner:
                        items.append({key: item[key], **inner})
            if items:
                out[k] = items
    return out
