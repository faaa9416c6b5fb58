"""Workload controllers: StatefulSet, ReplicaSet, Deployment and DaemonSet.

StatefulSet (as the ``apps`` controller): pods ``<name>-<ordinal>`` with stable identity and claims from
``volumeClaimTemplates`` (``<template>-<name>-<ordinal>``); ``OrderedReady`` creates one pod at a
time, each waiting for the previous to be Running and Ready, and removes the highest ordinal first;
``Parallel`` does both at once; ``RollingUpdate`` replaces pods from the highest ordinal down to the
partition, one at a time, each only when every pod is Running and Ready; ``OnDelete`` only uses the
new revision for pods it recreates. Revisions are ControllerRevisions named ``<name>-<hash>``;
``currentRevision``/``updateRevision``/``readyReplicas``/``currentReplicas``/``updatedReplicas``
follow kube-controller-manager. ReplicaSets keep ``replicas`` pods (deleting unscheduled, pending,
unready, newest first). Deployments roll through ReplicaSets named ``<name>-<pod-template-hash>``
(RollingUpdate with maxSurge/maxUnavailable, or Recreate). DaemonSets run one pod per eligible node
(node affinity ``matchFields metadata.name``, taints tolerated) and replace outdated pods one at a time.
"""

from __future__ import annotations

import math
from collections import defaultdict
from typing import TYPE_CHECKING, Any

from .admission import template_hash
from .errors import KubeApiError
from .models import Obj, deep_copy, random_suffix, rfc3339
from .scheduler import node_matches_affinity, tolerates
from .selectors import match_label_selector

if TYPE_CHECKING:
    from .emulator import KubeEmulator

__all__ = ["WorkloadControllers", "owner_ref", "pod_ready"]


def pod_ready(pod: Obj) -> bool:
    """Running, not terminating, and the Ready condition is True."""
    st = pod.get("status") or {}
    if st.get("phase") != "Running" or pod["metadata"].get("deletionTimestamp"):
        return False
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in st.get("conditions") or [])


def owner_ref(owner: Obj) -> dict[str, Any]:
    """A controller owner reference to ``owner`` (blockOwnerDeletion set)."""
    return {
        "apiVersion": owner["apiVersion"],
        "kind": owner["kind"],
        "name": owner["metadata"]["name"],
        "uid": owner["metadata"]["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def _active(p: Obj) -> bool:
    return not p["metadata"].get("deletionTimestamp") and (p.get("status") or {}).get("phase") not in (
        "Succeeded",
        "Failed",
    )


def _int_or_percent(v: Any, total: int, round_up: bool) -> int:
    if isinstance(v, str) and v.endswith("%"):
        x = total * int(v[:-1]) / 100
        return math.ceil(x) if round_up else math.floor(x)
    return int(v or 0)


class WorkloadControllers:
    """The apps/v1 controllers, run from the emulator's control loop."""

    def __init__(self, emu: KubeEmulator) -> None:
        """Controllers for ``emu``."""
        self.emu = emu

    def reconcile(self) -> None:
        """One pass over every workload."""
        store = self.emu.store
        by_owner: dict[str, list[Obj]] = defaultdict(list)
        for p in store.iter("pods"):
            for ref in p["metadata"].get("ownerReferences") or []:
                if ref.get("controller"):
                    by_owner[ref.get("uid", "")].append(p)
        for sts in store.iter("statefulsets.apps"):
            if not sts["metadata"].get("deletionTimestamp"):
                self._guard(self._statefulset, sts, by_owner.get(sts["metadata"]["uid"], []))
        for d in store.iter("deployments.apps"):
            if not d["metadata"].get("deletionTimestamp"):
                self._guard(self._deployment, d, [])
        for rs in store.iter("replicasets.apps"):
            if not rs["metadata"].get("deletionTimestamp"):
                self._guard(self._replicaset, rs, by_owner.get(rs["metadata"]["uid"], []))
        for ds in store.iter("daemonsets.apps"):
            if not ds["metadata"].get("deletionTimestamp"):
                self._guard(self._daemonset, ds, by_owner.get(ds["metadata"]["uid"], []))

    def _guard(self, fn: Any, obj: Obj, pods: list[Obj]) -> None:
        try:
            fn(obj, pods)
        except KubeApiError as e:
            self.emu.events.record(obj, "Warning", "FailedCreate", e.message, "controller-manager")

    # -- StatefulSet -----------------------------------------------------------------------------------
    def _revision(self, owner: Obj, template: Obj, hash_: str) -> str:
        store = self.emu.store
        ns, name = owner["metadata"]["namespace"], owner["metadata"]["name"]
        rev_name = f"{name}-{hash_}"
        if store.peek("controllerrevisions.apps", ns, rev_name) is None:
            existing = [
                int(r.get("revision", 0))
                for r in store.iter("controllerrevisions.apps", ns)
                if any(
                    o.get("uid") == owner["metadata"]["uid"]
                    for o in r["metadata"].get("ownerReferences") or []
                )
            ]
            labels = dict(((template.get("metadata") or {}).get("labels")) or {})
            labels["controller.kubernetes.io/hash"] = hash_
            store.create(
                "controllerrevisions.apps",
                {
                    "metadata": {
                        "name": rev_name,
                        "namespace": ns,
                        "labels": labels,
                        "ownerReferences": [owner_ref(owner)],
                    },
                    "data": {"spec": {"template": {**deep_copy(template), "$patch": "replace"}}},
                    "revision": max(existing, default=0) + 1,
                },
                admit=False,
            )
        return rev_name

    def _revision_template(self, ns: str, rev: str, fallback: Obj) -> Obj:
        cr = self.emu.store.peek("controllerrevisions.apps", ns, rev)
        if cr is None:
            return fallback
        tpl = dict(((cr.get("data") or {}).get("spec") or {}).get("template") or fallback)
        tpl.pop("$patch", None)
        return tpl

    def _statefulset(self, sts: Obj, owned: list[Obj]) -> None:
        store = self.emu.store
        meta, spec = sts["metadata"], sts["spec"]
        ns, name = meta["namespace"], meta["name"]
        replicas = int(spec.get("replicas", 1))
        template = spec.get("template") or {}
        update_rev = self._revision(sts, template, template_hash(template))
        status = sts.get("status") or {}
        current_rev = status.get("currentRevision") or update_rev
        strategy = (spec.get("updateStrategy") or {}).get("type", "RollingUpdate")
        partition = int(
            ((spec.get("updateStrategy") or {}).get("rollingUpdate") or {}).get("partition", 0) or 0
        )
        parallel = spec.get("podManagementPolicy") == "Parallel"
        pods: dict[int, Obj] = {}
        for p in owned:
            suffix = p["metadata"]["name"].rsplit("-", 1)[-1]
            if suffix.isdigit() and p["metadata"]["name"] == f"{name}-{suffix}":
                pods[int(suffix)] = p

        def rev_of(p: Obj) -> str:
            return str((p["metadata"].get("labels") or {}).get("controller-revision-hash", ""))

        busy = False
        for i, p in sorted(pods.items()):
            if (p.get("status") or {}).get("phase") == "Failed" and not p["metadata"].get(
                "deletionTimestamp"
            ):
                store.delete("pods", ns, p["metadata"]["name"], grace_seconds=0)
                self.emu.events.record(
                    sts,
                    "Warning",
                    "RecreatingFailedPod",
                    f"StatefulSet {ns}/{name} is recreating failed Pod {p['metadata']['name']}",
                    "statefulset-controller",
                )
                pods.pop(i)
                busy = True
        for i in range(replicas):
            existing = pods.get(i)
            if existing is None:
                if busy and not parallel:
                    break
                use_current = strategy == "RollingUpdate" and i < partition and current_rev != update_rev
                rev = current_rev if use_current else update_rev
                tpl = self._revision_template(ns, rev, template) if use_current else template
                self._ensure_claims(sts, i)
                self._create_sts_pod(sts, tpl, i, rev)
                if not parallel:
                    busy = True
                    break
                continue
            if not parallel and not pod_ready(existing):
                busy = True
                break
        condemned = sorted((i for i in pods if i >= replicas), reverse=True)
        if condemned and not (busy and not parallel):
            for i in condemned:
                p = pods[i]
                if p["metadata"].get("deletionTimestamp"):
                    if not parallel:
                        break
                    continue
                if not parallel and not all(pod_ready(pods[j]) for j in pods if j < replicas):
                    break
                store.delete("pods", ns, p["metadata"]["name"])
                self.emu.events.record(
                    sts,
                    "Normal",
                    "SuccessfulDelete",
                    f"delete Pod {p['metadata']['name']} in StatefulSet {name} successful",
                    "statefulset-controller",
                )
                self._scaled_down_claims(sts, i)
                if not parallel:
                    break
        if strategy == "RollingUpdate" and not condemned:
            live = [pods.get(i) for i in range(replicas)]
            if all(p is not None and pod_ready(p) for p in live):
                for i in range(replicas - 1, partition - 1, -1):
                    cand = live[i]
                    assert cand is not None
                    if rev_of(cand) != update_rev:
                        store.delete("pods", ns, cand["metadata"]["name"])
                        self.emu.events.record(
                            sts,
                            "Normal",
                            "SuccessfulDelete",
                            f"delete Pod {cand['metadata']['name']} in StatefulSet {name} successful",
                            "statefulset-controller",
                        )
                        break
        cur = [
            p
            for p in store.iter("pods", ns)
            if any(r.get("uid") == meta["uid"] for r in p["metadata"].get("ownerReferences") or [])
        ]
        ready = sum(1 for p in cur if pod_ready(p))
        updated = sum(1 for p in cur if rev_of(p) == update_rev and _active(p))
        current = sum(1 for p in cur if rev_of(p) == current_rev and _active(p))
        count = sum(1 for p in cur if _active(p))
        if updated == replicas and ready == replicas and count == replicas:
            current_rev, current = update_rev, updated
        new_status = {
            "observedGeneration": meta.get("generation", 1),
            "replicas": count,
            "readyReplicas": ready,
            "currentReplicas": current,
            "updatedReplicas": updated,
            "availableReplicas": ready,
            "currentRevision": current_rev,
            "updateRevision": update_rev,
            "collisionCount": 0,
        }
        store.write_status("statefulsets.apps", ns, name, new_status)

    def _claim_name(self, sts: Obj, tpl: Obj, ordinal: int) -> str:
        return f"{tpl['metadata']['name']}-{sts['metadata']['name']}-{ordinal}"

    def _ensure_claims(self, sts: Obj, ordinal: int) -> None:
        store = self.emu.store
        ns = sts["metadata"]["namespace"]
        policy = sts["spec"].get("persistentVolumeClaimRetentionPolicy") or {}
        for tpl in sts["spec"].get("volumeClaimTemplates") or []:
            claim = self._claim_name(sts, tpl, ordinal)
            if store.peek("persistentvolumeclaims", ns, claim) is not None:
                continue
            labels = dict((tpl.get("metadata") or {}).get("labels") or {})
            labels.update((sts["spec"].get("selector") or {}).get("matchLabels") or {})
            pvc_meta: dict[str, Any] = {"name": claim, "namespace": ns, "labels": labels}
            if (tpl.get("metadata") or {}).get("annotations"):
                pvc_meta["annotations"] = dict(tpl["metadata"]["annotations"])
            if policy.get("whenDeleted") == "Delete":
                pvc_meta["ownerReferences"] = [owner_ref(sts)]
            store.create(
                "persistentvolumeclaims", {"metadata": pvc_meta, "spec": deep_copy(tpl.get("spec") or {})}
            )

    def _scaled_down_claims(self, sts: Obj, ordinal: int) -> None:
        policy = sts["spec"].get("persistentVolumeClaimRetentionPolicy") or {}
        if policy.get("whenScaled") != "Delete":
            return
        for tpl in sts["spec"].get("volumeClaimTemplates") or []:
            try:
                self.emu.store.delete(
                    "persistentvolumeclaims",
                    sts["metadata"]["namespace"],
                    self._claim_name(sts, tpl, ordinal),
                )
            except KubeApiError:
                continue

    def _create_sts_pod(self, sts: Obj, template: Obj, ordinal: int, rev: str) -> None:
        name = f"{sts['metadata']['name']}-{ordinal}"
        tmeta = template.get("metadata") or {}
        labels = dict(tmeta.get("labels") or {})
        labels.update(
            {
                "controller-revision-hash": rev,
                "statefulset.kubernetes.io/pod-name": name,
                "apps.kubernetes.io/pod-index": str(ordinal),
            }
        )
        spec = deep_copy(template.get("spec") or {})
        spec["hostname"] = name
        if sts["spec"].get("serviceName"):
            spec["subdomain"] = sts["spec"]["serviceName"]
        volumes = [
            v
            for v in spec.get("volumes") or []
            if v.get("name")
            not in {t["metadata"]["name"] for t in sts["spec"].get("volumeClaimTemplates") or []}
        ]
        for tpl in sts["spec"].get("volumeClaimTemplates") or []:
            volumes.append(
                {
                    "name": tpl["metadata"]["name"],
                    "persistentVolumeClaim": {"claimName": self._claim_name(sts, tpl, ordinal)},
                }
            )
        if volumes:
            spec["volumes"] = volumes
        pod_meta: dict[str, Any] = {
            "name": name,
            "namespace": sts["metadata"]["namespace"],
            "labels": labels,
            "ownerReferences": [owner_ref(sts)],
        }
        if tmeta.get("annotations"):
            pod_meta["annotations"] = dict(tmeta["annotations"])
        self.emu.store.create("pods", {"metadata": pod_meta, "spec": spec})
        self.emu.events.record(
            sts,
            "Normal",
            "SuccessfulCreate",
            f"create Pod {name} in StatefulSet {sts['metadata']['name']} successful",
            "statefulset-controller",
        )

    # -- ReplicaSet --------------------------------------------------------------------------------------
    def _replicaset(self, rs: Obj, owned: list[Obj]) -> None:
        store = self.emu.store
        meta, spec = rs["metadata"], rs["spec"]
        ns, name = meta["namespace"], meta["name"]
        replicas = int(spec.get("replicas", 1))
        active = [p for p in owned if _active(p)]
        diff = len(active) - replicas
        template = spec.get("template") or {}
        if diff < 0:
            for _ in range(min(-diff, 500)):
                tmeta = template.get("metadata") or {}
                pod_meta: dict[str, Any] = {
                    "generateName": f"{name}-",
                    "namespace": ns,
                    "labels": dict(tmeta.get("labels") or {}),
                    "ownerReferences": [owner_ref(rs)],
                }
                if tmeta.get("annotations"):
                    pod_meta["annotations"] = dict(tmeta["annotations"])
                pod_meta["name"] = f"{name}-{random_suffix()}"
                created = store.create(
                    "pods", {"metadata": pod_meta, "spec": deep_copy(template.get("spec") or {})}
                )
                self.emu.events.record(
                    rs,
                    "Normal",
                    "SuccessfulCreate",
                    f"Created pod: {created['metadata']['name']}",
                    "replicaset-controller",
                )
        elif diff > 0:

            def rank(p: Obj) -> tuple[int, int, int, str]:
                st = p.get("status") or {}
                return (
                    1 if p["spec"].get("nodeName") else 0,
                    1 if st.get("phase") == "Running" else 0,
                    1 if pod_ready(p) else 0,
                    _neg(p["metadata"].get("creationTimestamp", "")),
                )

            for p in sorted(active, key=rank)[:diff]:
                store.delete("pods", ns, p["metadata"]["name"])
                self.emu.events.record(
                    rs,
                    "Normal",
                    "SuccessfulDelete",
                    f"Deleted pod: {p['metadata']['name']}",
                    "replicaset-controller",
                )
        cur = [
            p
            for p in store.iter("pods", ns)
            if any(r.get("uid") == meta["uid"] for r in p["metadata"].get("ownerReferences") or [])
            and _active(p)
        ]
        ready = sum(1 for p in cur if pod_ready(p))
        labeled = sum(
            1 for p in cur if match_label_selector(spec.get("selector"), p["metadata"].get("labels"))
        )
        store.write_status(
            "replicasets.apps",
            ns,
            name,
            {
                "replicas": len(cur),
                "fullyLabeledReplicas": labeled,
                "readyReplicas": ready,
                "availableReplicas": ready,
                "observedGeneration": meta.get("generation", 1),
            },
        )

    # -- Deployment --------------------------------------------------------------------------------------
    def _deployment(self, d: Obj, _unused: list[Obj]) -> None:
        store = self.emu.store
        meta, spec = d["metadata"], d["spec"]
        ns, name = meta["namespace"], meta["name"]
        replicas = int(spec.get("replicas", 1))
        template = spec.get("template") or {}
        hash_ = template_hash(template)
        all_rs = [
            r
            for r in store.iter("replicasets.apps", ns)
            if any(o.get("uid") == meta["uid"] for o in r["metadata"].get("ownerReferences") or [])
        ]
        new_rs = next(
            (r for r in all_rs if (r["metadata"].get("labels") or {}).get("pod-template-hash") == hash_), None
        )
        old_rs = [r for r in all_rs if r is not new_rs]
        revisions = [
            int((r["metadata"].get("annotations") or {}).get("deployment.kubernetes.io/revision", 0))
            for r in all_rs
        ]
        strategy = spec.get("strategy") or {}
        old_active = sum(int(r["spec"].get("replicas", 0)) for r in old_rs) + sum(
            int((r.get("status") or {}).get("replicas", 0)) for r in old_rs
        )
        if new_rs is None:
            tpl = deep_copy(template)
            tpl.setdefault("metadata", {}).setdefault("labels", {})["pod-template-hash"] = hash_
            selector = deep_copy(spec.get("selector") or {})
            selector.setdefault("matchLabels", {})["pod-template-hash"] = hash_
            rev = max(revisions, default=0) + 1
            start = 0
            if strategy.get("type") == "Recreate":
                start = replicas if old_active == 0 else 0
            elif not old_rs:
                start = replicas
            new_rs = store.create(
                "replicasets.apps",
                {
                    "metadata": {
                        "name": f"{name}-{hash_}",
                        "namespace": ns,
                        "labels": dict(tpl["metadata"]["labels"]),
                        "annotations": {
                            "deployment.kubernetes.io/revision": str(rev),
                            "deployment.kubernetes.io/desired-replicas": str(replicas),
                        },
                        "ownerReferences": [owner_ref(d)],
                    },
                    "spec": {"replicas": start, "selector": selector, "template": tpl},
                },
            )
            self.emu.events.record(
                d,
                "Normal",
                "ScalingReplicaSet",
                f"Scaled up replica set {new_rs['metadata']['name']} from 0 to {start}",
                "deployment-controller",
            )
            new_rs = store.peek("replicasets.apps", ns, new_rs["metadata"]["name"]) or new_rs
        new_n = int(new_rs["spec"].get("replicas", 0))
        if strategy.get("type") == "Recreate":
            for r in old_rs:
                self._scale_rs(d, r, 0)
            if old_active == 0 and new_n != replicas:
                self._scale_rs(d, new_rs, replicas)
        else:
            ru = strategy.get("rollingUpdate") or {}
            surge = _int_or_percent(ru.get("maxSurge", "25%"), replicas, True)
            unavail = _int_or_percent(ru.get("maxUnavailable", "25%"), replicas, False)
            if surge == 0 and unavail == 0:
                unavail = 1
            total = sum(int(r["spec"].get("replicas", 0)) for r in all_rs)
            if new_n < replicas:
                allowed = replicas + surge - total
                if allowed > 0:
                    new_n = min(replicas, new_n + allowed)
                    self._scale_rs(d, new_rs, new_n)
            elif new_n > replicas:
                new_n = replicas
                self._scale_rs(d, new_rs, new_n)
            available = sum(int((r.get("status") or {}).get("availableReplicas", 0)) for r in all_rs)
            new_unavailable = new_n - int((new_rs.get("status") or {}).get("availableReplicas", 0))
            can = available - (replicas - unavail) - max(0, new_unavailable)
            for r in sorted(old_rs, key=lambda r: r["metadata"].get("creationTimestamp", "")):
                cur_n = int(r["spec"].get("replicas", 0))
                if cur_n == 0:
                    continue
                unhealthy = cur_n - int((r.get("status") or {}).get("availableReplicas", 0))
                down = min(cur_n, max(0, unhealthy) + max(0, can))
                if down > 0:
                    can -= max(0, down - max(0, unhealthy))
                    self._scale_rs(d, r, cur_n - down)
        all_rs = [
            r
            for r in store.iter("replicasets.apps", ns)
            if any(o.get("uid") == meta["uid"] for o in r["metadata"].get("ownerReferences") or [])
        ]
        st_replicas = sum(int((r.get("status") or {}).get("replicas", 0)) for r in all_rs)
        ready = sum(int((r.get("status") or {}).get("readyReplicas", 0)) for r in all_rs)
        available = sum(int((r.get("status") or {}).get("availableReplicas", 0)) for r in all_rs)
        new_cur = store.peek("replicasets.apps", ns, new_rs["metadata"]["name"]) or new_rs
        updated = int((new_cur.get("status") or {}).get("replicas", 0))
        old = d.get("status") or {}
        now = rfc3339(self.emu.clock.now())
        old_conds = {c.get("type"): c for c in old.get("conditions") or []}

        def cond(typ: str, ok: bool, reason: str, message: str) -> dict[str, Any]:
            prev = old_conds.get(typ) or {}
            status = "True" if ok else "False"
            same = prev.get("status") == status and prev.get("reason") == reason
            return {
                "type": typ,
                "status": status,
                "reason": reason,
                "message": message,
                "lastUpdateTime": prev.get("lastUpdateTime", now) if same else now,
                "lastTransitionTime": prev.get("lastTransitionTime", now)
                if prev.get("status") == status
                else now,
            }

        unavail_allowed = _int_or_percent(
            ((strategy.get("rollingUpdate") or {}).get("maxUnavailable", "25%")), replicas, False
        )
        complete = updated == replicas and available >= replicas and st_replicas == replicas
        conds = [
            cond(
                "Available",
                available >= replicas - unavail_allowed,
                "MinimumReplicasAvailable"
                if available >= replicas - unavail_allowed
                else "MinimumReplicasUnavailable",
                "Deployment has minimum availability."
                if available >= replicas - unavail_allowed
                else "Deployment does not have minimum availability.",
            ),
            cond(
                "Progressing",
                True,
                "NewReplicaSetAvailable" if complete else "ReplicaSetUpdated",
                f'ReplicaSet "{new_rs["metadata"]["name"]}" has '
                + ("successfully progressed." if complete else "is progressing."),
            ),
        ]
        new_status: dict[str, Any] = {
            "observedGeneration": meta.get("generation", 1),
            "replicas": st_replicas,
            "updatedReplicas": updated,
            "readyReplicas": ready,
            "availableReplicas": available,
            "conditions": conds,
        }
        if st_replicas - available > 0:
            new_status["unavailableReplicas"] = st_replicas - available
        store.write_status("deployments.apps", ns, name, new_status)
        rev_ann = (new_cur["metadata"].get("annotations") or {}).get("deployment.kubernetes.io/revision")
        if rev_ann and (meta.get("annotations") or {}).get("deployment.kubernetes.io/revision") != rev_ann:

            def annotate(o: Obj) -> Obj:
                o["metadata"].setdefault("annotations", {})["deployment.kubernetes.io/revision"] = rev_ann
                return o

            store.mutate("deployments.apps", ns, name, annotate)
        limit = int(spec.get("revisionHistoryLimit", 10))
        idle = sorted(
            (
                r
                for r in all_rs
                if r is not new_cur
                and int(r["spec"].get("replicas", 0)) == 0
                and int((r.get("status") or {}).get("replicas", 0)) == 0
            ),
            key=lambda r: r["metadata"].get("creationTimestamp", ""),
        )
        for r in idle[: max(0, len(idle) - limit)]:
            store.delete("replicasets.apps", ns, r["metadata"]["name"])

    def _scale_rs(self, d: Obj, rs: Obj, n: int) -> None:
        cur = int(rs["spec"].get("replicas", 0))
        if cur == n:
            return

        def fn(o: Obj) -> Obj:
            o["spec"]["replicas"] = n
            o["metadata"].setdefault("annotations", {})["deployment.kubernetes.io/desired-replicas"] = str(
                d["spec"].get("replicas", 1)
            )
            return o

        self.emu.store.mutate("replicasets.apps", rs["metadata"]["namespace"], rs["metadata"]["name"], fn)
        verb = "up" if n > cur else "down"
        self.emu.events.record(
            d,
            "Normal",
            "ScalingReplicaSet",
            f"Scaled {verb} replica set {rs['metadata']['name']} from {cur} to {n}",
            "deployment-controller",
        )

    # -- DaemonSet -----------------------------------------------------------------------------------------
    _DS_TOLERATIONS = (
        {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute"},
        {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute"},
        {"key": "node.kubernetes.io/disk-pressure", "operator": "Exists", "effect": "NoSchedule"},
        {"key": "node.kubernetes.io/memory-pressure", "operator": "Exists", "effect": "NoSchedule"},
        {"key": "node.kubernetes.io/pid-pressure", "operator": "Exists", "effect": "NoSchedule"},
        {"key": "node.kubernetes.io/unschedulable", "operator": "Exists", "effect": "NoSchedule"},
    )

    def _daemonset(self, ds: Obj, owned: list[Obj]) -> None:
        store = self.emu.store
        meta, spec = ds["metadata"], ds["spec"]
        ns, name = meta["namespace"], meta["name"]
        template = spec.get("template") or {}
        hash_ = template_hash(template)
        tolerations = list((template.get("spec") or {}).get("tolerations") or []) + [
            dict(t) for t in self._DS_TOLERATIONS
        ]
        probe = {"spec": template.get("spec") or {}}
        eligible = []
        for node in store.iter("nodes"):
            if not node_matches_affinity(probe, node):
                continue
            taints = [
                t
                for t in (node.get("spec") or {}).get("taints") or []
                if t.get("effect") in ("NoSchedule", "NoExecute")
            ]
            if all(tolerates(tolerations, t) for t in taints):
                eligible.append(node["metadata"]["name"])

        def target(p: Obj) -> str:
            if p["spec"].get("nodeName"):
                return str(p["spec"]["nodeName"])
            terms = (
                ((p["spec"].get("affinity") or {}).get("nodeAffinity") or {}).get(
                    "requiredDuringSchedulingIgnoredDuringExecution"
                )
                or {}
            ).get("nodeSelectorTerms") or []
            for t in terms:
                for f in t.get("matchFields") or []:
                    if f.get("key") == "metadata.name" and f.get("values"):
                        return str(f["values"][0])
            return ""

        by_node: dict[str, list[Obj]] = defaultdict(list)
        for p in owned:
            if _active(p):
                by_node[target(p)].append(p)
            elif (p.get("status") or {}).get("phase") == "Failed":
                store.delete("pods", ns, p["metadata"]["name"], grace_seconds=0)
        for node_name in eligible:
            if by_node.get(node_name):
                continue
            tpl_spec = deep_copy(template.get("spec") or {})
            tpl_spec["tolerations"] = tolerations
            tpl_spec["affinity"] = dict(tpl_spec.get("affinity") or {})
            tpl_spec["affinity"]["nodeAffinity"] = {
                "requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [
                        {"matchFields": [{"key": "metadata.name", "operator": "In", "values": [node_name]}]}
                    ]
                }
            }
            labels = dict((template.get("metadata") or {}).get("labels") or {})
            labels.update(
                {"controller-revision-hash": hash_, "pod-template-generation": str(meta.get("generation", 1))}
            )
            store.create(
                "pods",
                {
                    "metadata": {
                        "name": f"{name}-{random_suffix()}",
                        "namespace": ns,
                        "labels": labels,
                        "ownerReferences": [owner_ref(ds)],
                    },
                    "spec": tpl_spec,
                },
            )
        for node_name, pods in by_node.items():
            if node_name not in eligible:
                for p in pods:
                    store.delete("pods", ns, p["metadata"]["name"])
            else:
                for p in pods[1:]:
                    store.delete("pods", ns, p["metadata"]["name"])
        outdated = [
            p
            for ps in by_node.values()
            for p in ps
            if (p["metadata"].get("labels") or {}).get("controller-revision-hash") != hash_
        ]
        live = [p for ps in by_node.values() for p in ps]
        if outdated and (spec.get("updateStrategy") or {}).get("type", "RollingUpdate") == "RollingUpdate":
            if all(pod_ready(p) for p in live if p not in outdated) and not any(
                p["metadata"].get("deletionTimestamp") for p in owned
            ):
                not_ready = [p for p in outdated if not pod_ready(p)]
                store.delete("pods", ns, (not_ready or outdated)[0]["metadata"]["name"])
        scheduled = sum(1 for n in eligible if by_node.get(n))
        ready = sum(1 for n in eligible for p in by_node.get(n, []) if pod_ready(p))
        updated = sum(
            1
            for n in eligible
            for p in by_node.get(n, [])
            if (p["metadata"].get("labels") or {}).get("controller-revision-hash") == hash_
        )
        status: dict[str, Any] = {
            "desiredNumberScheduled": len(eligible),
            "currentNumberScheduled": scheduled,
            "numberReady": ready,
            "numberAvailable": ready,
            "updatedNumberScheduled": updated,
            "numberMisscheduled": sum(len(v) for k, v in by_node.items() if k not in eligible),
            "observedGeneration": meta.get("generation", 1),
        }
        if len(eligible) - ready:
            status["numberUnavailable"] = len(eligible) - ready
        store.write_status("daemonsets.apps", ns, name, status)


def _neg(ts: str) -> str:
    return "".join(chr(255 - ord(c)) for c in ts)
