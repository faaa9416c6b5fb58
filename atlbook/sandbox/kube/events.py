"""Events (``core/v1``), recorded the way client-go's event recorder does: deduplicated by object,
reason, type and message (``count`` and ``lastTimestamp`` go up), bounded in number."""

from __future__ import annotations

import secrets
from collections import deque
from typing import TYPE_CHECKING, Any

from .errors import KubeApiError
from .models import rfc3339

if TYPE_CHECKING:
    from .models import Obj, Store

__all__ = ["EventRecorder"]

_KIND_API = {
    "Pod": "v1",
    "Node": "v1",
    "PersistentVolumeClaim": "v1",
    "Service": "v1",
    "Namespace": "v1",
    "StatefulSet": "apps/v1",
    "Deployment": "apps/v1",
    "ReplicaSet": "apps/v1",
    "DaemonSet": "apps/v1",
    "PodDisruptionBudget": "policy/v1",
}


class EventRecorder:
    """Writes Events for controllers; one per (object, type, reason, message), counted."""

    def __init__(self, store: Store, limit: int = 10_000) -> None:
        """Record into ``store``; keep at most ``limit`` events (oldest dropped)."""
        self.store = store
        self.limit = limit
        self._index: dict[tuple[str, str, str, str], tuple[str, str]] = {}
        self._order: deque[tuple[str, str]] = deque()
        self._key_of: dict[tuple[str, str], tuple[str, str, str, str]] = {}

    def reset(self) -> None:
        """Forget the dedup index (after a store reset)."""
        self._index.clear()
        self._order.clear()
        self._key_of.clear()

    def record(self, obj: Obj, type_: str, reason: str, message: str, component: str, host: str = "") -> None:
        """Record an event about ``obj``; never raises (events are best effort, as in Kubernetes)."""
        meta = obj.get("metadata", {})
        ns = meta.get("namespace") or "default"
        key = (meta.get("uid", ""), type_, reason, message)
        now = rfc3339(self.store.clock.now())
        try:
            with self.store.lock:
                loc = self._index.get(key)
                if loc is not None and self.store.peek("events", loc[0], loc[1]) is not None:

                    def bump(e: dict[str, Any]) -> dict[str, Any]:
                        e["count"] = int(e.get("count", 1)) + 1
                        e["lastTimestamp"] = now
                        return e

                    self.store.mutate("events", loc[0], loc[1], bump)
                    return
                name = f"{meta.get('name', 'unknown')}.{secrets.token_hex(8)}"
                source: dict[str, str] = {"component": component}
                if host:
                    source["host"] = host
                ev = {
                    "metadata": {"name": name, "namespace": ns},
                    "involvedObject": {
                        "kind": obj.get("kind", ""),
                        "namespace": meta.get("namespace", ""),
                        "name": meta.get("name", ""),
                        "uid": meta.get("uid", ""),
                        "apiVersion": obj.get("apiVersion") or _KIND_API.get(obj.get("kind", ""), "v1"),
                        "resourceVersion": meta.get("resourceVersion", ""),
                    },
                    "reason": reason,
                    "message": message,
                    "source": source,
                    "type": type_,
                    "firstTimestamp": now,
                    "lastTimestamp": now,
                    "count": 1,
                    "reportingComponent": component,
                    "reportingInstance": host,
                }
                if self.store.peek("namespaces", None, ns) is None:
                    return
                self.store.create("events", ev, ns, admit=False)
                self._index[key] = (ns, name)
                self._key_of[(ns, name)] = key
                self._order.append((ns, name))
                if len(self._order) > self.limit:
                    old_ns, old_name = self._order.popleft()
                    self.store.force_remove("events", old_ns, old_name)
                    old_key = self._key_of.pop((old_ns, old_name), None)
                    if old_key is not None:
                        self._index.pop(old_key, None)
        except KubeApiError:
            return
