"""PersistentVolume binding and dynamic provisioning (the PV controller plus the CSI provisioners).

A claim binds to a matching ``Available`` PersistentVolume (class, access modes, size) or gets a
volume provisioned from its StorageClass. ``Immediate`` classes provision at once (RWO volumes in a
zone taken round-robin from the nodes' zones); ``WaitForFirstConsumer`` classes provision when the
scheduler has picked a node for the first pod using the claim. Block-style RWO volumes (EBS) get node
affinity on ``topology.kubernetes.io/zone`` and so pin every later pod to that zone; RWX volumes
(EFS/NFS) bind without node affinity. ``reclaimPolicy: Delete`` removes the PV with its claim.
"""

from __future__ import annotations

import itertools
import secrets
from typing import TYPE_CHECKING, Any

from .models import Obj, rfc3339
from .quantity import parse_quantity

if TYPE_CHECKING:
    from .emulator import KubeEmulator

__all__ = ["UNBOUND_IMMEDIATE_MSG", "VolumeController"]

UNBOUND_IMMEDIATE_MSG = "pod has unbound immediate PersistentVolumeClaims"
ZONE = "topology.kubernetes.io/zone"
_SHARED_PROVISIONERS = ("efs.csi.aws.com", "nfs", "file.csi")


def _claims(pod: Obj) -> list[str]:
    return [
        v["persistentVolumeClaim"]["claimName"]
        for v in pod.get("spec", {}).get("volumes") or []
        if isinstance(v.get("persistentVolumeClaim"), dict) and v["persistentVolumeClaim"].get("claimName")
    ]


class VolumeController:
    """Binds claims to volumes and provisions volumes; the scheduler asks it about pods' claims."""

    component = "persistentvolume-controller"

    def __init__(self, emu: KubeEmulator) -> None:
        """Bind and provision for ``emu``."""
        self.emu = emu
        self._rr = itertools.count()
        self._waiting: set[str] = set()

    def reset(self) -> None:
        """Forget per-claim state."""
        self._waiting.clear()

    def pod_volume_constraints(self, pod: Obj) -> list[dict[str, Any]] | str:
        """Node selectors the pod's bound volumes require, or a pod-level reason it cannot be scheduled."""
        store = self.emu.store
        ns = pod["metadata"]["namespace"]
        out: list[dict[str, Any]] = []
        for claim in _claims(pod):
            pvc = store.peek("persistentvolumeclaims", ns, claim)
            if pvc is None:
                return f'persistentvolumeclaim "{claim}" not found'
            if pvc["metadata"].get("deletionTimestamp"):
                return f'persistentvolumeclaim "{claim}" is being deleted'
            vol = (pvc.get("spec") or {}).get("volumeName")
            if vol and (pvc.get("status") or {}).get("phase") == "Bound":
                pv = store.peek("persistentvolumes", None, vol)
                req = ((pv or {}).get("spec", {}).get("nodeAffinity") or {}).get("required")
                if req:
                    out.append(req)
                continue
            sc = store.peek("storageclasses", None, (pvc.get("spec") or {}).get("storageClassName") or "")
            if sc is None or sc.get("volumeBindingMode", "Immediate") != "WaitForFirstConsumer":
                return UNBOUND_IMMEDIATE_MSG
        return out

    def bind_for_pod(self, pod: Obj, node: Obj) -> bool:
        """Provision/bind the pod's WaitForFirstConsumer claims for ``node``; ``False`` if one cannot."""
        store = self.emu.store
        ns = pod["metadata"]["namespace"]
        for claim in _claims(pod):
            pvc = store.peek("persistentvolumeclaims", ns, claim)
            if pvc is None:
                return False
            if (pvc.get("status") or {}).get("phase") == "Bound":
                continue
            zone = (node["metadata"].get("labels") or {}).get(ZONE)
            if not self._bind_or_provision(pvc, zone, node["metadata"]["name"]):
                return False
        return True

    def reconcile(self) -> None:
        """Bind/provision pending Immediate claims, release and reclaim volumes of deleted claims."""
        store = self.emu.store
        for pvc in store.iter("persistentvolumeclaims"):
            if (pvc.get("status") or {}).get("phase") == "Bound" or pvc["metadata"].get("deletionTimestamp"):
                continue
            sc_name = (pvc.get("spec") or {}).get("storageClassName")
            sc = store.peek("storageclasses", None, sc_name or "")
            if (pvc.get("spec") or {}).get("volumeName") or not sc_name or sc is None:
                self._bind_static(pvc)
                continue
            if sc.get("volumeBindingMode", "Immediate") == "WaitForFirstConsumer":
                if self._bind_static(pvc):
                    continue
                uid = pvc["metadata"]["uid"]
                if uid not in self._waiting:
                    self._waiting.add(uid)
                    self.emu.events.record(
                        pvc,
                        "Normal",
                        "WaitForFirstConsumer",
                        "waiting for first consumer to be created before binding",
                        self.component,
                    )
                continue
            if not self._bind_static(pvc):
                zones = sorted(
                    {(n["metadata"].get("labels") or {}).get(ZONE, "") for n in store.iter("nodes")} - {""}
                )
                zone = zones[next(self._rr) % len(zones)] if zones else None
                self._bind_or_provision(pvc, zone, None)
        for pv in store.iter("persistentvolumes"):
            ref = (pv.get("spec") or {}).get("claimRef")
            if not ref or (pv.get("status") or {}).get("phase") != "Bound":
                continue
            claim = store.peek("persistentvolumeclaims", ref.get("namespace"), ref.get("name", ""))
            if claim is None or claim["metadata"]["uid"] != ref.get("uid"):
                if pv["spec"].get("persistentVolumeReclaimPolicy") == "Delete":
                    store.force_remove("persistentvolumes", None, pv["metadata"]["name"])
                else:
                    store.write_status(
                        "persistentvolumes", None, pv["metadata"]["name"], {"phase": "Released"}
                    )

    def _bind_static(self, pvc: Obj) -> bool:
        store = self.emu.store
        spec = pvc.get("spec") or {}
        want = parse_quantity(((spec.get("resources") or {}).get("requests") or {}).get("storage", "0"))
        modes = set(spec.get("accessModes") or [])
        for pv in store.iter("persistentvolumes"):
            pspec = pv.get("spec") or {}
            if (pv.get("status") or {}).get("phase") != "Available":
                continue
            if spec.get("volumeName") and spec["volumeName"] != pv["metadata"]["name"]:
                continue
            ref = pspec.get("claimRef")
            if ref and (
                ref.get("name") != pvc["metadata"]["name"]
                or ref.get("namespace") != pvc["metadata"]["namespace"]
            ):
                continue
            if (pspec.get("storageClassName") or "") != (spec.get("storageClassName") or ""):
                continue
            if not modes <= set(pspec.get("accessModes") or []):
                continue
            if parse_quantity((pspec.get("capacity") or {}).get("storage", "0")) < want:
                continue
            self._bind(pvc, pv, None)
            return True
        return False

    def _bind_or_provision(self, pvc: Obj, zone: str | None, node: str | None) -> bool:
        if self._bind_static(pvc):
            return True
        store = self.emu.store
        spec = pvc.get("spec") or {}
        sc = store.peek("storageclasses", None, spec.get("storageClassName") or "")
        if sc is None:
            return False
        provisioner = sc.get("provisioner", "")
        shared = "ReadWriteMany" in (spec.get("accessModes") or []) or any(
            s in provisioner for s in _SHARED_PROVISIONERS
        )
        name = f"pvc-{pvc['metadata']['uid']}"
        storage = ((spec.get("resources") or {}).get("requests") or {}).get("storage", "1Gi")
        handle = ("fs-" if shared else "vol-") + secrets.token_hex(8)
        pv_spec: dict[str, Any] = {
            "capacity": {"storage": storage},
            "accessModes": list(spec.get("accessModes") or ["ReadWriteOnce"]),
            "persistentVolumeReclaimPolicy": sc.get("reclaimPolicy", "Delete"),
            "storageClassName": sc["metadata"]["name"],
            "volumeMode": spec.get("volumeMode", "Filesystem"),
            "csi": {"driver": provisioner or "ebs.csi.aws.com", "volumeHandle": handle, "fsType": "ext4"},
        }
        if not shared and zone:
            pv_spec["nodeAffinity"] = {
                "required": {
                    "nodeSelectorTerms": [
                        {"matchExpressions": [{"key": ZONE, "operator": "In", "values": [zone]}]}
                    ]
                }
            }
        pv = {
            "metadata": {"name": name, "annotations": {"pv.kubernetes.io/provisioned-by": provisioner}},
            "spec": pv_spec,
            "status": {"phase": "Available"},
        }
        if store.peek("persistentvolumes", None, name) is None:
            store.create("persistentvolumes", pv, admit=False)
        created = store.peek("persistentvolumes", None, name)
        if created is None:
            return False
        self._bind(pvc, created, node)
        self.emu.events.record(
            pvc,
            "Normal",
            "ProvisioningSucceeded",
            f"Successfully provisioned volume {name}",
            f"{provisioner}_sandbox",
        )
        return True

    def _bind(self, pvc: Obj, pv: Obj, node: str | None) -> None:
        store = self.emu.store
        ns, claim = pvc["metadata"]["namespace"], pvc["metadata"]["name"]
        pv_name = pv["metadata"]["name"]

        def pv_fn(o: Obj) -> Obj:
            o["spec"]["claimRef"] = {
                "kind": "PersistentVolumeClaim",
                "namespace": ns,
                "name": claim,
                "uid": pvc["metadata"]["uid"],
                "apiVersion": "v1",
                "resourceVersion": pvc["metadata"]["resourceVersion"],
            }
            o["status"] = {"phase": "Bound", "lastPhaseTransitionTime": rfc3339(self.emu.clock.now())}
            return o

        store.mutate("persistentvolumes", None, pv_name, pv_fn)

        def pvc_fn(o: Obj) -> Obj:
            o["spec"]["volumeName"] = pv_name
            ann = o["metadata"].setdefault("annotations", {})
            ann["pv.kubernetes.io/bind-completed"] = "yes"
            ann["pv.kubernetes.io/bound-by-controller"] = "yes"
            if node:
                ann["volume.kubernetes.io/selected-node"] = node
            o["status"] = {
                "phase": "Bound",
                "accessModes": list(pv["spec"].get("accessModes") or []),
                "capacity": dict(pv["spec"].get("capacity") or {}),
            }
            return o

        store.mutate("persistentvolumeclaims", ns, claim, pvc_fn)
