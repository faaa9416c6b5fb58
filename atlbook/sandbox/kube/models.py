"""State and rules of the emulated API server: the object store, its indices and watch streams.

Objects are plain JSON dicts keyed by resource (``pods``, ``statefulsets.apps``), namespace and name,
with a uid index and a pods-by-node index. Stored objects are never mutated in place: every write
stores a fresh dict, so readers (LIST, watch, controllers) may hold references without copying.
Public methods return copies. Every write takes the next global resourceVersion, is appended to a
bounded history (watch replays from it) and is fanned out to watchers and change listeners.

Admission (defaults, validation, quota) lives in :mod:`atlbook.sandbox.kube.admission` and runs on
every create/update coming from clients or controllers, unless ``admit=False`` (controller status
writes).
"""

from __future__ import annotations

import datetime as _dt
import itertools
import queue
import secrets
import threading
import uuid
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from ..clock import SimClock
from . import resources as res
from .errors import (
    TOO_OLD_RV_MSG,
    AlreadyExists,
    BadRequest,
    Conflict,
    Expired,
    Invalid,
    NotFound,
)

__all__ = [
    "RETURNS_DELETED_OBJECT",
    "Obj",
    "ObjList",
    "Store",
    "WatchEvent",
    "Watcher",
    "deep_copy",
    "random_suffix",
    "rfc3339",
]

Obj = dict[str, Any]
"""A Kubernetes object as a JSON dict."""
ObjList = list[Obj]
"""Objects (an alias: ``Store.list`` shadows the builtin inside the class)."""

RETURNS_DELETED_OBJECT = frozenset(
    {
        "pods",
        "persistentvolumeclaims",
        "persistentvolumes",
        "services",
        "serviceaccounts",
        "resourcequotas",
        "namespaces",
    }
)
"""Resources whose DELETE answers with the object (kube-apiserver ``ReturnDeletedObject``)."""

_GENERATION_CORE: frozenset[str] = frozenset()
HISTORY = 50_000


def deep_copy(o: Any) -> Any:
    """A deep copy of a JSON value (faster than ``copy.deepcopy`` for dicts/lists/scalars)."""
    t = type(o)
    if t is dict:
        return {k: deep_copy(v) for k, v in o.items()}
    if t is list:
        return [deep_copy(v) for v in o]
    return o


def _copy_obj(o: Obj) -> Obj:
    out: Obj = deep_copy(o)
    return out


def rfc3339(t: _dt.datetime) -> str:
    """``2026-11-26T15:00:00Z``: the timestamp format of object metadata (second precision)."""
    return t.astimezone(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class WatchEvent:
    """One change: ``type`` ADDED/MODIFIED/DELETED, the resourceVersion it produced, the object."""

    type: str
    rv: int
    key: str
    namespace: str
    obj: Obj


class Watcher:
    """A watch stream's queue with its filter (resource, namespace, label and field predicates)."""

    def __init__(
        self,
        key: str,
        namespace: str | None,
        label_pred: Callable[[Mapping[str, str]], bool],
        field_pred: Callable[[Mapping[str, Any]], bool],
    ) -> None:
        """Filter events of resource ``key`` in ``namespace`` (``None`` = all)."""
        self.key = key
        self.namespace = namespace
        self.label_pred = label_pred
        self.field_pred = field_pred
        self.queue: queue.Queue[WatchEvent | None] = queue.Queue()

    def matches(self, ev: WatchEvent) -> bool:
        """Whether the event passes this watch's filter."""
        if ev.key != self.key or (self.namespace is not None and ev.namespace != self.namespace):
            return False
        return self.label_pred(ev.obj.get("metadata", {}).get("labels") or {}) and self.field_pred(ev.obj)

    def offer(self, ev: WatchEvent) -> None:
        """Queue ``ev`` when it matches."""
        if self.matches(ev):
            self.queue.put(ev)

    def close(self) -> None:
        """Make the stream end (a ``None`` sentinel)."""
        self.queue.put(None)


ResourceRef = res.ResourceType | str


class Store:
    """Every object of the emulated cluster, with indices, resourceVersions and watch fan-out."""

    def __init__(self, clock: SimClock) -> None:
        """An empty store on ``clock`` (timestamps are simulated time)."""
        self.clock = clock
        self.lock = threading.RLock()
        self._data: dict[str, dict[str, dict[str, Obj]]] = {}
        self._uids: dict[str, tuple[str, str, str]] = {}
        self._pods_by_node: dict[str, set[tuple[str, str]]] = {}
        self._rv = 0
        self._history: deque[WatchEvent] = deque(maxlen=HISTORY)
        self._watchers: list[Watcher] = []
        self._listeners: list[Callable[[WatchEvent], None]] = []
        self._ip_counter = itertools.count(10)
        self.admission: Any = None  # set by the emulator: admission.Admission
        self.applied: dict[tuple[str, str], Obj] = {}
        """Server-side apply: the last configuration each (object uid, field manager) applied."""

    # -- helpers -------------------------------------------------------------------------------------
    @staticmethod
    def rtype(ref: ResourceRef) -> res.ResourceType:
        """Resolve a :class:`ResourceType`, store key (``statefulsets.apps``), plural or kind (``Pod``)."""
        if isinstance(ref, res.ResourceType):
            return ref
        try:
            return res.by_key(ref)
        except KeyError:
            pass
        for r in res.RESOURCES:
            if r.kind == ref or r.plural == ref:
                return r
        raise KeyError(f"unknown resource {ref!r}")

    @property
    def resource_version(self) -> int:
        """The latest resourceVersion handed out."""
        return self._rv

    def add_listener(self, fn: Callable[[WatchEvent], None]) -> None:
        """Call ``fn(event)`` after every write (under the store lock: keep it cheap)."""
        self._listeners.append(fn)

    def _bucket(self, rt: res.ResourceType, namespace: str) -> dict[str, Obj]:
        return self._data.setdefault(rt.key, {}).setdefault(namespace if rt.namespaced else "", {})

    def _emit(self, typ: str, rt: res.ResourceType, obj: Obj) -> None:
        ev = WatchEvent(typ, self._rv, rt.key, obj["metadata"].get("namespace", ""), obj)
        self._history.append(ev)
        for w in self._watchers:
            w.offer(ev)
        for fn in self._listeners:
            fn(ev)

    def _next_rv(self) -> str:
        self._rv += 1
        return str(self._rv)

    def _index_pod(self, old: Obj | None, new: Obj | None) -> None:
        for o, add in ((old, False), (new, True)):
            if o is None:
                continue
            node = o.get("spec", {}).get("nodeName")
            if not node:
                continue
            k = (o["metadata"]["namespace"], o["metadata"]["name"])
            if add:
                self._pods_by_node.setdefault(node, set()).add(k)
            else:
                self._pods_by_node.get(node, set()).discard(k)

    def _check_namespace(self, rt: res.ResourceType, namespace: str) -> None:
        if rt.namespaced and namespace not in self._data.get("namespaces", {}).get("", {}):
            raise NotFound.of("namespaces", namespace)

    # -- reads ---------------------------------------------------------------------------------------
    def peek(self, ref: ResourceRef, namespace: str | None, name: str) -> Obj | None:
        """The stored object itself (do not mutate), or ``None``."""
        rt = self.rtype(ref)
        return self._data.get(rt.key, {}).get(namespace or "" if rt.namespaced else "", {}).get(name)

    def get(self, ref: ResourceRef, namespace: str | None, name: str) -> Obj:
        """A copy of one object; raises :class:`NotFound`."""
        rt = self.rtype(ref)
        with self.lock:
            obj = self.peek(rt, namespace, name)
            if obj is None:
                raise NotFound.of(rt.plural, name, rt.group)
            return _copy_obj(obj)

    def iter(self, ref: ResourceRef, namespace: str | None = None) -> Iterator[Obj]:
        """The stored objects of a resource (do not mutate); a snapshot, safe while writes happen."""
        rt = self.rtype(ref)
        with self.lock:
            buckets = self._data.get(rt.key, {})
            if namespace is not None and rt.namespaced:
                items = list(buckets.get(namespace, {}).values())
            else:
                items = [o for b in buckets.values() for o in b.values()]
        return iter(items)

    def list(
        self,
        ref: ResourceRef,
        namespace: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
    ) -> ObjList:
        """Copies of the matching objects, sorted by namespace and name."""
        items, _rv = self.list_refs(ref, namespace, label_selector, field_selector)
        return [deep_copy(o) for o in items]

    def list_refs(
        self,
        ref: ResourceRef,
        namespace: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
    ) -> tuple[ObjList, int]:
        """The matching stored objects (do not mutate) and the list's resourceVersion."""
        from .selectors import compile_label_selector, parse_field_selector

        rt = self.rtype(ref)
        lp = compile_label_selector(label_selector)
        fp = parse_field_selector(field_selector, rt.key)
        with self.lock:
            rv = self._rv
            items = list(self.iter(rt, namespace))
        out = [
            o
            for o in items
            if (not label_selector or lp(o["metadata"].get("labels") or {})) and (not field_selector or fp(o))
        ]
        out.sort(key=lambda o: (o["metadata"].get("namespace", ""), o["metadata"]["name"]))
        return out, rv

    def pods_on_node(self, node: str) -> ObjList:
        """Stored pods bound to ``node`` (do not mutate)."""
        with self.lock:
            keys = list(self._pods_by_node.get(node, ()))
            pods = self._data.get("pods", {})
            return [p for ns, n in keys if (p := pods.get(ns, {}).get(n)) is not None]

    def by_uid(self, uid: str) -> Obj | None:
        """The stored object with ``uid`` (do not mutate), or ``None``."""
        with self.lock:
            loc = self._uids.get(uid)
            if loc is None:
                return None
            return self._data.get(loc[0], {}).get(loc[1], {}).get(loc[2])

    # -- writes --------------------------------------------------------------------------------------
    def create(
        self,
        ref: ResourceRef,
        obj: Obj,
        namespace: str | None = None,
        *,
        admit: bool = True,
        dry_run: bool = False,
    ) -> Obj:
        """Create ``obj`` (server sets uid, resourceVersion, creationTimestamp, generation); returns a copy.

        Refuses a missing namespace (404), an existing name (409 AlreadyExists), invalid objects (422)
        and whatever admission refuses (403).
        """
        rt = self.rtype(ref)
        obj = _copy_obj(obj)
        meta = obj.setdefault("metadata", {})
        if not isinstance(meta, dict):
            raise BadRequest("metadata must be an object")
        obj["apiVersion"], obj["kind"] = rt.api_version, rt.kind
        with self.lock:
            if rt.namespaced:
                ns = namespace or meta.get("namespace") or "default"
                if meta.get("namespace") and namespace and meta["namespace"] != namespace:
                    raise BadRequest(
                        "the namespace of the provided object does not match the namespace "
                        "sent on the request"
                    )
                meta["namespace"] = ns
                self._check_namespace(rt, ns)
            else:
                meta.pop("namespace", None)
                ns = ""
            if not meta.get("name"):
                if meta.get("generateName"):
                    meta["name"] = meta["generateName"] + _suffix()
                else:
                    raise Invalid.of(
                        rt.kind,
                        "",
                        [
                            (
                                "metadata.name",
                                "FieldValueRequired",
                                "Required value: name or generateName is required",
                            )
                        ],
                        rt.group,
                    )
            if meta.get("resourceVersion"):
                raise BadRequest("resourceVersion should not be set on objects to be created")
            bucket = self._bucket(rt, ns)
            if meta["name"] in bucket:
                raise AlreadyExists.of(rt.plural, meta["name"], rt.group)
            for k in ("managedFields", "deletionTimestamp", "deletionGracePeriodSeconds", "selfLink"):
                meta.pop(k, None)
            meta["uid"] = str(uuid.uuid4())
            meta["creationTimestamp"] = rfc3339(self.clock.now())
            if rt.group or rt.key in _GENERATION_CORE:
                meta["generation"] = 1
            else:
                meta.pop("generation", None)
            if admit and self.admission is not None:
                self.admission.on_create(rt, obj)
            if dry_run:
                return obj
            meta["resourceVersion"] = self._next_rv()
            bucket[meta["name"]] = obj
            self._uids[meta["uid"]] = (rt.key, ns, meta["name"])
            if rt.key == "pods":
                self._index_pod(None, obj)
            self._emit("ADDED", rt, obj)
            return _copy_obj(obj)

    def update(
        self,
        ref: ResourceRef,
        obj: Obj,
        *,
        subresource: str | None = None,
        admit: bool = True,
        check_rv: bool = True,
        dry_run: bool = False,
    ) -> Obj:
        """Replace an object (PUT semantics); returns a copy of the stored result.

        ``subresource="status"`` changes only ``status``; a main-resource write keeps the stored status
        when the resource has a status subresource. Refuses a stale resourceVersion (409 Conflict), a
        missing object (404), a name/uid mismatch and invalid changes (422).
        """
        rt = self.rtype(ref)
        obj = _copy_obj(obj)
        meta = obj.setdefault("metadata", {})
        with self.lock:
            ns = meta.get("namespace", "") if rt.namespaced else ""
            name = meta.get("name", "")
            old = self.peek(rt, ns, name)
            if old is None:
                raise NotFound.of(rt.plural, name, rt.group)
            rv = meta.get("resourceVersion")
            if check_rv and rv and rv != old["metadata"]["resourceVersion"]:
                raise Conflict.of(rt.plural, name, rt.group)
            if meta.get("uid") and meta["uid"] != old["metadata"]["uid"]:
                raise Conflict(
                    f'Operation cannot be fulfilled on {rt.plural} "{name}": Precondition failed: '
                    f"UID in precondition: {meta['uid']}, UID in object meta: {old['metadata']['uid']}"
                )
            new = self._merge_for_update(rt, old, obj, subresource)
            if admit and self.admission is not None:
                self.admission.on_update(rt, old, new, subresource)
            if dry_run:
                return new
            return _copy_obj(self._store_update(rt, old, new))

    def _merge_for_update(self, rt: res.ResourceType, old: Obj, obj: Obj, subresource: str | None) -> Obj:
        obj["apiVersion"], obj["kind"] = rt.api_version, rt.kind
        if subresource == "status":
            new = dict(old)
            new["status"] = obj.get("status", {})
            new["metadata"] = dict(old["metadata"])
            return new
        new = obj
        meta = new["metadata"]
        ometa = old["metadata"]
        for k in (
            "uid",
            "creationTimestamp",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "namespace",
            "generation",
        ):
            if k in ometa:
                meta[k] = ometa[k]
            else:
                meta.pop(k, None)
        meta.pop("managedFields", None)
        if subresource == "*":
            pass
        elif rt.has_status and "status" in old:
            new["status"] = old["status"]
        elif rt.has_status:
            new.pop("status", None)
        if "generation" in ometa:

            def body(o: Obj) -> Obj:
                return {k: v for k, v in o.items() if k not in ("metadata", "status", "apiVersion", "kind")}

            if body(old) != body(new):
                meta["generation"] = int(ometa["generation"]) + 1
        return new

    def _store_update(self, rt: res.ResourceType, old: Obj, new: Obj) -> Obj:
        meta = new["metadata"]
        if (
            meta.get("deletionTimestamp")
            and not meta.get("finalizers")
            and rt.key != "pods"
            and rt.key != "namespaces"
        ):
            self._remove(rt, old)
            return new
        meta["resourceVersion"] = self._next_rv()
        self._bucket(rt, meta.get("namespace", ""))[meta["name"]] = new
        if rt.key == "pods":
            self._index_pod(old, new)
        self._emit("MODIFIED", rt, new)
        return new

    def mutate(
        self,
        ref: ResourceRef,
        namespace: str | None,
        name: str,
        fn: Callable[[Obj], Obj | None],
        *,
        subresource: str | None = "*",
        admit: bool = False,
    ) -> Obj | None:
        """Read-modify-write under the lock: ``fn`` gets a copy, returns the new object (``None``: skip).

        ``subresource`` ``"*"`` (default) writes spec and status, ``"status"`` only status, ``None`` is a
        client-style main-resource write.

        Used by controllers; never conflicts. Returns the stored copy, or ``None`` when the object is
        gone or ``fn`` skipped.
        """
        rt = self.rtype(ref)
        with self.lock:
            old = self.peek(rt, namespace, name)
            if old is None:
                return None
            new = fn(deep_copy(old))
            if new is None or new == old:
                return None
            new.setdefault("metadata", {})["resourceVersion"] = old["metadata"]["resourceVersion"]
            return self.update(rt, new, subresource=subresource, admit=admit, check_rv=False)

    def write_status(self, ref: ResourceRef, namespace: str | None, name: str, status: Obj) -> Obj | None:
        """Replace an object's ``status`` when it differs (controllers' writes); the object or ``None``."""
        rt = self.rtype(ref)
        with self.lock:
            old = self.peek(rt, namespace, name)
            if old is None or old.get("status") == status:
                return None
            new = dict(old)
            new["status"] = status
            new["metadata"] = dict(old["metadata"])
            return self._store_update(rt, old, new)

    def delete(
        self,
        ref: ResourceRef,
        namespace: str | None,
        name: str,
        *,
        grace_seconds: int | None = None,
        propagation: str | None = None,
        preconditions: Mapping[str, Any] | None = None,
        dry_run: bool = False,
    ) -> tuple[Obj, bool]:
        """Delete an object; returns (the object, whether it is gone now).

        Pods on a node and objects with finalizers get ``deletionTimestamp`` and stay until the kubelet
        or the finalizer lets go; namespaces turn ``Terminating``. ``propagation`` ``Orphan`` removes the
        owner reference from dependents, ``Foreground`` keeps the owner until dependents are gone,
        ``Background`` (default) lets the garbage collector remove dependents. Refuses unknown objects
        (404) and failed uid/resourceVersion preconditions (409).
        """
        rt = self.rtype(ref)
        with self.lock:
            old = self.peek(rt, namespace, name)
            if old is None:
                raise NotFound.of(rt.plural, name, rt.group)
            pre = preconditions or {}
            if pre.get("uid") and pre["uid"] != old["metadata"]["uid"]:
                raise Conflict(
                    f'Operation cannot be fulfilled on {rt.plural} "{name}": Precondition failed: '
                    f"UID in precondition: {pre['uid']}, UID in object meta: {old['metadata']['uid']}"
                )
            if pre.get("resourceVersion") and pre["resourceVersion"] != old["metadata"]["resourceVersion"]:
                raise Conflict(
                    f'Operation cannot be fulfilled on {rt.plural} "{name}": Precondition failed: '
                    f"ResourceVersion in precondition: {pre['resourceVersion']}, ResourceVersion in "
                    f"object meta: {old['metadata']['resourceVersion']}"
                )
            if dry_run:
                return deep_copy(old), False
            if propagation == "Orphan":
                self._orphan_dependents(old["metadata"]["uid"])
            new = dict(old)
            meta = new["metadata"] = dict(old["metadata"])
            now = rfc3339(self.clock.now())
            if rt.key == "namespaces":
                if not meta.get("deletionTimestamp"):
                    meta["deletionTimestamp"] = now
                    new["spec"] = {"finalizers": ["kubernetes"]}
                    new["status"] = {"phase": "Terminating"}
                    return _copy_obj(self._store_update(rt, old, new)), False
                return deep_copy(old), False
            finalizers = list(meta.get("finalizers") or [])
            if propagation == "Foreground" and "foregroundDeletion" not in finalizers:
                finalizers.append("foregroundDeletion")
                meta["finalizers"] = finalizers
            if rt.key == "pods":
                grace = grace_seconds
                if grace is None:
                    grace = int(old.get("spec", {}).get("terminationGracePeriodSeconds", 30))
                if (
                    old.get("spec", {}).get("nodeName")
                    and grace > 0
                    and old.get("status", {}).get("phase") not in ("Succeeded", "Failed")
                ):
                    if meta.get("deletionTimestamp"):
                        cur = int(meta.get("deletionGracePeriodSeconds", grace))
                        if grace >= cur:
                            return deep_copy(old), False
                    meta["deletionTimestamp"] = meta.get("deletionTimestamp") or now
                    meta["deletionGracePeriodSeconds"] = grace
                    return _copy_obj(self._store_update(rt, old, new)), False
            if finalizers:
                if not meta.get("deletionTimestamp"):
                    meta["deletionTimestamp"] = now
                    meta["deletionGracePeriodSeconds"] = 0
                    return _copy_obj(self._store_update(rt, old, new)), False
                return deep_copy(old), False
            self._remove(rt, old)
            return deep_copy(old), True

    def remove_finalizer(self, ref: ResourceRef, namespace: str | None, name: str, finalizer: str) -> None:
        """Drop one finalizer; the object goes when it was being deleted and none remain."""

        def fn(o: Obj) -> Obj:
            fins = [f for f in o["metadata"].get("finalizers") or [] if f != finalizer]
            if fins:
                o["metadata"]["finalizers"] = fins
            else:
                o["metadata"].pop("finalizers", None)
            return o

        self.mutate(ref, namespace, name, fn)

    def force_remove(self, ref: ResourceRef, namespace: str | None, name: str) -> bool:
        """Remove an object now, ignoring grace periods and finalizers (kubelet/GC/namespace controller)."""
        rt = self.rtype(ref)
        with self.lock:
            old = self.peek(rt, namespace, name)
            if old is None:
                return False
            self._remove(rt, old)
            return True

    def _remove(self, rt: res.ResourceType, old: Obj) -> None:
        meta = old["metadata"]
        bucket = self._bucket(rt, meta.get("namespace", ""))
        bucket.pop(meta["name"], None)
        self._uids.pop(meta.get("uid", ""), None)
        if rt.key == "pods":
            self._index_pod(old, None)
        gone = dict(old)
        gone["metadata"] = dict(meta)
        gone["metadata"]["resourceVersion"] = self._next_rv()
        self._emit("DELETED", rt, gone)

    def _orphan_dependents(self, uid: str) -> None:
        for key, buckets in list(self._data.items()):
            rt = res.by_key(key)
            for bucket in list(buckets.values()):
                for o in list(bucket.values()):
                    refs = o["metadata"].get("ownerReferences") or []
                    if any(r.get("uid") == uid for r in refs):
                        new = dict(o)
                        new["metadata"] = dict(o["metadata"])
                        rest = [r for r in refs if r.get("uid") != uid]
                        if rest:
                            new["metadata"]["ownerReferences"] = rest
                        else:
                            new["metadata"].pop("ownerReferences", None)
                        self._store_update(rt, o, new)

    # -- watch ---------------------------------------------------------------------------------------
    def watch(
        self,
        ref: ResourceRef,
        namespace: str | None,
        label_selector: str | None,
        field_selector: str | None,
        resource_version: str | None,
    ) -> Watcher:
        """Open a watch; events after ``resource_version`` are replayed, none given = ADDED for everything.

        Refuses a resourceVersion older than the kept history (410 Expired).
        """
        from .selectors import compile_label_selector, parse_field_selector

        rt = self.rtype(ref)
        w = Watcher(
            rt.key,
            namespace if rt.namespaced else None,
            compile_label_selector(label_selector),
            parse_field_selector(field_selector, rt.key),
        )
        with self.lock:
            if resource_version in (None, "", "0"):
                for o in sorted(
                    self.iter(rt, w.namespace), key=lambda o: int(o["metadata"]["resourceVersion"])
                ):
                    w.offer(
                        WatchEvent(
                            "ADDED",
                            int(o["metadata"]["resourceVersion"]),
                            rt.key,
                            o["metadata"].get("namespace", ""),
                            o,
                        )
                    )
            else:
                try:
                    since = int(resource_version)
                except ValueError:
                    raise BadRequest(f'invalid resource version "{resource_version}"') from None
                oldest = self._history[0].rv if self._history else self._rv + 1
                if since < oldest - 1 and since < self._rv:
                    raise Expired(TOO_OLD_RV_MSG.format(requested=since, oldest=oldest))
                for ev in self._history:
                    if ev.rv > since:
                        w.offer(ev)
            self._watchers.append(w)
        return w

    def unwatch(self, w: Watcher) -> None:
        """Stop delivering to ``w``."""
        with self.lock:
            if w in self._watchers:
                self._watchers.remove(w)

    def close_watches(self) -> None:
        """End every open watch stream (on reset/stop)."""
        with self.lock:
            for w in self._watchers:
                w.close()
            self._watchers.clear()

    def clear(self) -> None:
        """Drop every object and the history (the resourceVersion keeps counting up)."""
        with self.lock:
            self.close_watches()
            self._data.clear()
            self._uids.clear()
            self._pods_by_node.clear()
            self._history.clear()
            self.applied.clear()

    def next_pod_ip(self) -> str:
        """A fresh pod IP from 10.0.0.0/16 (the VPC CNI hands out VPC addresses)."""
        n = next(self._ip_counter)
        return f"10.0.{(n // 250) % 250}.{n % 250 + 4}"


def _suffix(n: int = 5) -> str:
    alphabet = "bcdfghjklmnpqrstvwxz2456789"
    return "".join(secrets.choice(alphabet) for _ in range(n))


random_suffix = _suffix
