"""Cluster-wide controllers: endpoints, disruption budgets (and the eviction API), garbage collection,
namespaces, service accounts and load balancers.

- Endpoints: one ``Endpoints`` object per Service with a selector; Ready pods with an IP in
  ``addresses``, the others in ``notReadyAddresses`` (``publishNotReadyAddresses`` puts all in
  ``addresses``); ports resolved from named or numbered ``targetPort``.
- Disruption: PDB status (``currentHealthy``, ``desiredHealthy``, ``disruptionsAllowed``,
  ``expectedPods``) from ``minAvailable`` or ``maxUnavailable`` (int or percent). An eviction is
  refused with 429 when a PDB covering a healthy pod allows no disruption, 500 when several PDBs
  match; otherwise the pod is deleted gracefully.
- Garbage collector: objects whose every owner is gone are deleted (background propagation);
  ``foregroundDeletion`` owners go once their dependents are gone.
- Namespaces: a Terminating namespace is emptied, then removed; ``default`` ServiceAccount per namespace.
- Services of type LoadBalancer get an ELB-style hostname.
"""

from __future__ import annotations

import math
from collections import defaultdict
from typing import TYPE_CHECKING, Any

from . import resources as res
from .admission import quota_format, quota_usage
from .errors import EVICTION_PDB_CAUSE_MSG, EVICTION_PDB_MSG, KubeApiError, NotFound, TooManyRequests
from .models import Obj
from .quantity import parse_quantity
from .selectors import match_label_selector
from .workloads import pod_ready

if TYPE_CHECKING:
    from .emulator import KubeEmulator

__all__ = ["ClusterControllers", "MULTIPLE_PDB_MSG"]

MULTIPLE_PDB_MSG = (
    "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support."
)


class ClusterControllers:
    """Endpoints, disruption, garbage collection, namespace and service-account controllers."""

    def __init__(self, emu: KubeEmulator) -> None:
        """Controllers for ``emu``."""
        self.emu = emu
        self.gc_pending = True

    def reconcile(self) -> None:
        """One pass of every controller here."""
        self._namespaces()
        self._garbage_collect()
        self._endpoints()
        self._pdbs()
        self._quotas()
        self._load_balancers()

    # -- endpoints -------------------------------------------------------------------------------------
    def _endpoints(self) -> None:
        store = self.emu.store
        pods_by_ns: dict[str, list[Obj]] = defaultdict(list)
        for p in store.iter("pods"):
            if (p.get("status") or {}).get("podIP") and not p["metadata"].get("deletionTimestamp"):
                pods_by_ns[p["metadata"]["namespace"]].append(p)
        for svc in store.iter("services"):
            spec = svc.get("spec") or {}
            sel = spec.get("selector")
            if not sel:
                continue
            ns, name = svc["metadata"]["namespace"], svc["metadata"]["name"]
            ready: list[dict[str, Any]] = []
            not_ready: list[dict[str, Any]] = []
            ports_out: list[dict[str, Any]] | None = None
            for p in sorted(pods_by_ns.get(ns, []), key=lambda p: p["metadata"]["name"]):
                labels = p["metadata"].get("labels") or {}
                if any(labels.get(k) != v for k, v in sel.items()):
                    continue
                addr = {
                    "ip": p["status"]["podIP"],
                    "nodeName": p["spec"].get("nodeName", ""),
                    "targetRef": {
                        "kind": "Pod",
                        "namespace": ns,
                        "name": p["metadata"]["name"],
                        "uid": p["metadata"]["uid"],
                    },
                }
                if p["spec"].get("hostname") and p["spec"].get("subdomain") == name:
                    addr["hostname"] = p["spec"]["hostname"]
                (ready if pod_ready(p) or spec.get("publishNotReadyAddresses") else not_ready).append(addr)
                if ports_out is None:
                    ports_out = [self._port(sp, p) for sp in spec.get("ports") or []]
            subsets: list[dict[str, Any]] = []
            if ready or not_ready:
                subset: dict[str, Any] = {"ports": ports_out or []}
                if ready:
                    subset["addresses"] = ready
                if not_ready:
                    subset["notReadyAddresses"] = not_ready
                subsets.append(subset)
            ep = store.peek("endpoints", ns, name)
            body = {
                "metadata": {
                    "name": name,
                    "namespace": ns,
                    "labels": dict(svc["metadata"].get("labels") or {}),
                },
                "subsets": subsets,
            }
            if ep is None:
                try:
                    store.create("endpoints", body, ns, admit=False)
                except KubeApiError:
                    continue
            elif ep.get("subsets", []) != subsets:

                def fn(o: Obj, subsets: list[dict[str, Any]] = subsets) -> Obj:
                    o["subsets"] = subsets
                    return o

                store.mutate("endpoints", ns, name, fn)

    @staticmethod
    def _port(sp: dict[str, Any], pod: Obj) -> dict[str, Any]:
        target = sp.get("targetPort", sp.get("port"))
        port = target
        if isinstance(target, str) and not target.isdigit():
            port = next(
                (
                    cp.get("containerPort")
                    for c in pod["spec"].get("containers") or []
                    for cp in c.get("ports") or []
                    if cp.get("name") == target
                ),
                None,
            )
        out: dict[str, Any] = {
            "port": int(port) if port is not None else 0,
            "protocol": sp.get("protocol", "TCP"),
        }
        if sp.get("name"):
            out["name"] = sp["name"]
        return out

    # -- disruption ------------------------------------------------------------------------------------
    def pdb_status(self, pdb: Obj) -> dict[str, Any]:
        """The status a PDB should have now (computed from the pods it selects)."""
        store = self.emu.store
        ns = pdb["metadata"]["namespace"]
        sel = (pdb.get("spec") or {}).get("selector")
        pods = [
            p
            for p in store.iter("pods", ns)
            if match_label_selector(sel, p["metadata"].get("labels"))
            and (p.get("status") or {}).get("phase") not in ("Succeeded", "Failed")
        ]
        expected = self._expected(pods, ns)
        healthy = sum(1 for p in pods if pod_ready(p))
        spec = pdb.get("spec") or {}
        if spec.get("maxUnavailable") is not None:
            mu = spec["maxUnavailable"]
            max_un = (
                math.ceil(expected * int(mu[:-1]) / 100)
                if isinstance(mu, str) and mu.endswith("%")
                else int(mu)
            )
            desired = max(0, expected - max_un)
        else:
            ma = spec.get("minAvailable", 1)
            desired = (
                math.ceil(expected * int(ma[:-1]) / 100)
                if isinstance(ma, str) and ma.endswith("%")
                else int(ma)
            )
        allowed = max(0, healthy - desired)
        cond_ok = allowed > 0
        return {
            "observedGeneration": pdb["metadata"].get("generation", 1),
            "currentHealthy": healthy,
            "desiredHealthy": desired,
            "disruptionsAllowed": allowed,
            "expectedPods": expected,
            "conditions": [
                {
                    "type": "DisruptionAllowed",
                    "status": "True" if cond_ok else "False",
                    "reason": "SufficientPods" if cond_ok else "InsufficientPods",
                    "message": "",
                    "observedGeneration": pdb["metadata"].get("generation", 1),
                    "lastTransitionTime": pdb["metadata"].get("creationTimestamp", ""),
                }
            ],
        }

    def _expected(self, pods: list[Obj], ns: str) -> int:
        store = self.emu.store
        owners: dict[str, int] = {}
        loose = 0
        for p in pods:
            ref = next((r for r in p["metadata"].get("ownerReferences") or [] if r.get("controller")), None)
            if ref is None:
                loose += 1
                continue
            if ref["uid"] in owners:
                continue
            owner = store.by_uid(ref["uid"])
            scale = int((owner or {}).get("spec", {}).get("replicas", 1)) if owner is not None else 1
            if ref.get("kind") == "ReplicaSet" and owner is not None:
                dref = next(
                    (r for r in owner["metadata"].get("ownerReferences") or [] if r.get("controller")), None
                )
                dep = store.by_uid(dref["uid"]) if dref else None
                if dep is not None:
                    if dref and dref["uid"] in owners:
                        owners[ref["uid"]] = 0
                        continue
                    scale = int(dep.get("spec", {}).get("replicas", 1))
                    owners[dref["uid"] if dref else ref["uid"]] = 0
            owners[ref["uid"]] = scale
        return loose + sum(owners.values())

    def _pdbs(self) -> None:
        store = self.emu.store
        for pdb in store.iter("poddisruptionbudgets.policy"):
            store.write_status(
                "poddisruptionbudgets.policy",
                pdb["metadata"]["namespace"],
                pdb["metadata"]["name"],
                self.pdb_status(pdb),
            )

    def evict(self, namespace: str, name: str, body: Obj) -> Obj:
        """The eviction API: delete the pod unless a PDB forbids it (429) or several match (500)."""
        store = self.emu.store
        with store.lock:
            pod = store.peek("pods", namespace, name)
            if pod is None:
                raise NotFound.of("pods", name)
            if pod["metadata"].get("deletionTimestamp"):
                return self._evicted(namespace, name, body)
            labels = pod["metadata"].get("labels") or {}
            pdbs = [
                p
                for p in store.iter("poddisruptionbudgets.policy", namespace)
                if match_label_selector((p.get("spec") or {}).get("selector"), labels)
            ]
            if len(pdbs) > 1:
                err = KubeApiError(MULTIPLE_PDB_MSG)
                raise err
            if pdbs and pod_ready(pod):
                st = self.pdb_status(pdbs[0])
                if st["disruptionsAllowed"] <= 0:
                    raise TooManyRequests(
                        EVICTION_PDB_MSG,
                        {
                            "causes": [
                                {
                                    "reason": "DisruptionBudget",
                                    "message": EVICTION_PDB_CAUSE_MSG.format(
                                        pdb=pdbs[0]["metadata"]["name"],
                                        desired=st["desiredHealthy"],
                                        current=st["currentHealthy"],
                                    ),
                                }
                            ]
                        },
                    )
            opts = body.get("deleteOptions") or {}
            store.delete("pods", namespace, name, grace_seconds=opts.get("gracePeriodSeconds"))
            for p in pdbs:
                store.write_status(
                    "poddisruptionbudgets.policy", namespace, p["metadata"]["name"], self.pdb_status(p)
                )
        return self._evicted(namespace, name, body)

    @staticmethod
    def _evicted(namespace: str, name: str, body: Obj) -> Obj:
        out: Obj = {
            "apiVersion": "policy/v1",
            "kind": "Eviction",
            "metadata": {"name": name, "namespace": namespace},
        }
        if body.get("deleteOptions"):
            out["deleteOptions"] = body["deleteOptions"]
        return out

    # -- garbage collection ------------------------------------------------------------------------------
    def _garbage_collect(self) -> None:
        if not self.gc_pending:
            return
        self.gc_pending = False
        store = self.emu.store
        dependents: dict[str, int] = defaultdict(int)
        for rt in res.RESOURCES:
            if rt.key == "bindings":
                continue
            for o in store.iter(rt):
                refs = o["metadata"].get("ownerReferences") or []
                if not refs:
                    continue
                alive = [
                    r
                    for r in refs
                    if (owner := store.by_uid(r.get("uid", ""))) is not None
                    and "foregroundDeletion" not in (owner["metadata"].get("finalizers") or [])
                ]
                for r in refs:
                    dependents[r.get("uid", "")] += 1
                if not alive and not o["metadata"].get("deletionTimestamp"):
                    foreground = any(
                        "foregroundDeletion"
                        in ((store.by_uid(r.get("uid", "")) or {}).get("metadata") or {}).get(
                            "finalizers", []
                        )
                        for r in refs
                    )
                    try:
                        store.delete(
                            rt,
                            o["metadata"].get("namespace"),
                            o["metadata"]["name"],
                            propagation="Foreground" if foreground else "Background",
                        )
                    except KubeApiError:
                        continue
                    self.gc_pending = True
        for rt in res.RESOURCES:
            if rt.key == "bindings":
                continue
            for o in store.iter(rt):
                if (
                    "foregroundDeletion" in (o["metadata"].get("finalizers") or [])
                    and o["metadata"].get("deletionTimestamp")
                    and not dependents.get(o["metadata"]["uid"])
                ):
                    store.remove_finalizer(
                        rt, o["metadata"].get("namespace"), o["metadata"]["name"], "foregroundDeletion"
                    )
                    self.gc_pending = True

    # -- namespaces / service accounts -------------------------------------------------------------------
    def _namespaces(self) -> None:
        store = self.emu.store
        for ns in store.iter("namespaces"):
            name = ns["metadata"]["name"]
            if ns["metadata"].get("deletionTimestamp"):
                left = 0
                for rt in res.RESOURCES:
                    if not rt.namespaced or rt.key == "bindings":
                        continue
                    for o in store.iter(rt, name):
                        left += 1
                        if (
                            rt.key == "pods"
                            and o["spec"].get("nodeName")
                            and o["spec"]["nodeName"] not in self.emu.kubelets.stopped
                        ):
                            if not o["metadata"].get("deletionTimestamp"):
                                store.delete(rt, name, o["metadata"]["name"])
                        else:
                            store.force_remove(rt, name, o["metadata"]["name"])
                if left == 0:
                    store.force_remove("namespaces", None, name)
                continue
            if store.peek("serviceaccounts", name, "default") is None:
                try:
                    store.create(
                        "serviceaccounts",
                        {"metadata": {"name": "default", "namespace": name}},
                        name,
                        admit=False,
                    )
                except KubeApiError:
                    continue

    def _quotas(self) -> None:
        store = self.emu.store
        for q in store.iter("resourcequotas"):
            ns = q["metadata"]["namespace"]
            hard = dict(((q.get("spec") or {}).get("hard")) or {})
            pods = [
                p
                for p in store.iter("pods", ns)
                if (p.get("status") or {}).get("phase") not in ("Succeeded", "Failed")
            ]
            usage = quota_usage(pods)
            claims = list(store.iter("persistentvolumeclaims", ns))
            usage["persistentvolumeclaims"] = usage["count/persistentvolumeclaims"] = float(len(claims))
            usage["requests.storage"] = sum(
                parse_quantity(
                    (((c.get("spec") or {}).get("resources") or {}).get("requests") or {}).get("storage")
                )
                for c in claims
            )
            for key in ("services", "configmaps", "secrets"):
                usage[key] = usage[f"count/{key}"] = float(sum(1 for _ in store.iter(key, ns)))
            used = {k: quota_format(k, usage.get(k, 0.0)) for k in hard}
            store.write_status("resourcequotas", ns, q["metadata"]["name"], {"hard": hard, "used": used})

    def _load_balancers(self) -> None:
        store = self.emu.store
        for svc in store.iter("services"):
            if (svc.get("spec") or {}).get("type") != "LoadBalancer":
                continue
            if ((svc.get("status") or {}).get("loadBalancer") or {}).get("ingress"):
                continue
            ns, name = svc["metadata"]["namespace"], svc["metadata"]["name"]
            host = (
                f"a{svc['metadata']['uid'].replace('-', '')[:24]}-{abs(hash(name)) % 10**9}.elb.amazonaws.com"
            )
            store.write_status("services", ns, name, {"loadBalancer": {"ingress": [{"hostname": host}]}})
