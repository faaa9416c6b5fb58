"""EKS managed node groups in moto become Node objects of the emulated cluster, and EKS add-ons their
workloads; plus the EKS-style bearer-token authenticator of the emulated API.

One emulated Kubernetes cluster serves every EKS cluster of the sandbox (their ``describe_cluster``
endpoints all lead to it): nodes of every node group of every EKS cluster land in it, labelled with
their cluster (``atlbook.io/eks-cluster``) and node group (``eks.amazonaws.com/nodegroup``).

Nodes (:func:`node_object`):

- count = the node group's ``desiredSize``; names like real EKS nodes, ``ip-10-0-1-23.ec2.internal``
  (``<region>.compute.internal`` outside us-east-1), IPs from the subnet's CIDR, spread round-robin over
  the node group's subnets; ``topology.kubernetes.io/zone`` = the subnet's AZ;
- labels ``node.kubernetes.io/instance-type``, ``eks.amazonaws.com/nodegroup``, capacity type, the
  node group's own labels; its taints;
- capacity from the instance type (moto's EC2 instance-type data; memory at 92.5 % of the nominal
  size, as Karpenter estimates), ``pods`` = max pods ``ENIs × (IPv4 per ENI − 1) + 2`` (110 when the
  data is missing), allocatable = capacity − kube-reserved (CPU ladder; ``11 × maxPods + 255`` MiB)
  − eviction threshold (100 Mi) — ``../shared/reference/eks-capacity.md`` §(e).

Scaling a node group adds or removes nodes (highest ordinal first); deleting it removes its nodes.
System workloads: the DaemonSets ``aws-node``, ``kube-proxy`` and ``ebs-csi-node`` and the Deployment
``coredns`` exist in ``kube-system`` as soon as there is a mirrored node; add-ons installed through the
AWS API add theirs (see :data:`atlbook.sandbox.aws.addons.ADDON_WORKLOADS`) and deleting removes them.

Token authentication (:func:`authenticate_eks_token`): ``k8s-aws-v1.`` + base64url(presigned STS
``GetCallerIdentity`` URL), as ``aws eks get-token`` makes it. It accepts a URL whose action is
``GetCallerIdentity``, which carries a SigV4 credential and signature, signs the ``x-k8s-aws-id`` header,
and was signed less than 15 minutes ago; the user is ``arn:aws:iam::<account>:user/<access key id>``.
It refuses anything else (``None`` → 401). It does not verify signatures (moto does not either).
"""

from __future__ import annotations

import base64
import datetime as _dt
import hashlib
import ipaddress
import logging
import threading
from typing import Any
from urllib.parse import parse_qs, urlparse

from moto.ec2.models import ec2_backends
from moto.ec2.models.instance_types import INSTANCE_TYPES

from atlbook.sandbox.aws import addons as addon_catalogue
from atlbook.sandbox.aws.server import ACCOUNT_ID, AwsSandbox

__all__ = [
    "CLUSTER_LABEL",
    "NODEGROUP_LABEL",
    "SYSTEM_WORKLOADS",
    "TOKEN_LIFETIME_SECONDS",
    "EksMirror",
    "authenticate_eks_token",
    "kube_reserved_cpu_millicores",
    "max_pods",
    "node_name",
    "node_object",
    "node_resources",
]

log = logging.getLogger(__name__)

CLUSTER_LABEL = "atlbook.io/eks-cluster"
NODEGROUP_LABEL = "eks.amazonaws.com/nodegroup"
SYSTEM_WORKLOADS: list[tuple[str, str, int]] = [
    ("DaemonSet", "aws-node", 0),
    ("DaemonSet", "kube-proxy", 0),
    ("DaemonSet", "ebs-csi-node", 0),
    ("Deployment", "coredns", 2),
]
"""Workloads every EKS cluster has in ``kube-system`` (kind, name, replicas)."""

_SYSTEM_REQUESTS = {
    "aws-node": {"cpu": "25m"},
    "kube-proxy": {"cpu": "100m"},
    "ebs-csi-node": {"cpu": "30m", "memory": "104Mi"},
    "coredns": {"cpu": "100m", "memory": "70Mi"},
}
_TOKEN_PREFIX = "k8s-aws-v1."
TOKEN_LIFETIME_SECONDS = 15 * 60
"""EKS accepts a token for 15 minutes after its presigned URL was signed (wall time)."""


# --- capacity math (pure) -------------------------------------------------------------------------------


def max_pods(instance_type: str) -> int:
    """EKS max pods: ``ENIs × (IPv4 per ENI − 1) + 2``; 110 when the instance type is unknown."""
    info = INSTANCE_TYPES.get(instance_type)
    net = (info or {}).get("NetworkInfo") or {}
    enis, ips = net.get("MaximumNetworkInterfaces"), net.get("Ipv4AddressesPerInterface")
    if not enis or not ips:
        return 110
    return int(enis) * (int(ips) - 1) + 2


def kube_reserved_cpu_millicores(vcpus: int) -> int:
    """kube-reserved CPU: 6 % of core 1, 1 % of core 2, 0.5 % of cores 3–4, 0.25 % above 4."""
    m = vcpus * 1000
    reserved = (
        0.06 * min(m, 1000)
        + 0.01 * min(max(m - 1000, 0), 1000)
        + 0.005 * min(max(m - 2000, 0), 2000)
        + 0.0025 * max(m - 4000, 0)
    )
    return int(round(reserved))


def node_resources(instance_type: str) -> tuple[dict[str, str], dict[str, str]]:
    """``(capacity, allocatable)`` of a node of ``instance_type`` as Kubernetes quantities."""
    info = INSTANCE_TYPES.get(instance_type) or {}
    vcpus = int(((info.get("VCpuInfo") or {}).get("DefaultVCpus")) or 2)
    mem_mib = int(((info.get("MemoryInfo") or {}).get("SizeInMiB")) or 8192)
    pods = max_pods(instance_type)
    cap_mem_ki = int(mem_mib * 1024 * 0.925)
    reserved_mem_ki = (11 * pods + 255) * 1024 + 100 * 1024
    capacity = {
        "cpu": str(vcpus),
        "memory": f"{cap_mem_ki}Ki",
        "pods": str(pods),
        "ephemeral-storage": "52416492Ki",
        "attachable-volumes-aws-ebs": "25",
    }
    allocatable = {
        "cpu": f"{vcpus * 1000 - kube_reserved_cpu_millicores(vcpus)}m",
        "memory": f"{cap_mem_ki - reserved_mem_ki}Ki",
        "pods": str(pods),
        "ephemeral-storage": "47233297124",
        "attachable-volumes-aws-ebs": "25",
    }
    return capacity, allocatable


def node_name(ip: str, region: str) -> str:
    """The EC2 private DNS name of ``ip`` (``ip-10-0-1-23.ec2.internal``)."""
    suffix = "ec2.internal" if region == "us-east-1" else f"{region}.compute.internal"
    return f"ip-{ip.replace('.', '-')}.{suffix}"


def _node_ip(cidr: str, key: str, taken: set[str]) -> str:
    net = ipaddress.ip_network(cidr, strict=False)
    size = max(net.num_addresses - 6, 1)
    h = int(hashlib.sha1(key.encode()).hexdigest()[:8], 16)  # noqa: S324 - not security
    for i in range(size):
        ip = str(net.network_address + 4 + (h + i) % size)
        if ip not in taken:
            return ip
    return str(net.network_address + 4)


def node_object(
    *,
    cluster: str,
    nodegroup: Any,
    index: int,
    ip: str,
    zone: str,
    region: str,
    kube_version: str,
) -> dict[str, Any]:
    """The Node object (metadata + spec + status) of one node of ``nodegroup``."""
    itype = (nodegroup.instance_types or ["m5.large"])[0]
    name = node_name(ip, region)
    capacity, allocatable = node_resources(itype)
    instance_id = "i-0" + hashlib.sha1(name.encode()).hexdigest()[:16]  # noqa: S324 - an id, not security
    labels = {
        "kubernetes.io/hostname": name,
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64",
        "beta.kubernetes.io/os": "linux",
        "beta.kubernetes.io/arch": "amd64",
        "node.kubernetes.io/instance-type": itype,
        "beta.kubernetes.io/instance-type": itype,
        "topology.kubernetes.io/zone": zone,
        "topology.kubernetes.io/region": region,
        "failure-domain.beta.kubernetes.io/zone": zone,
        "failure-domain.beta.kubernetes.io/region": region,
        "eks.amazonaws.com/nodegroup": nodegroup.nodegroup_name,
        "eks.amazonaws.com/capacityType": str(nodegroup.capacity_type or "ON_DEMAND"),
        "eks.amazonaws.com/nodegroup-image": "ami-0" + hashlib.sha1(itype.encode()).hexdigest()[:16],  # noqa: S324
        "topology.k8s.aws/zone-id": f"use1-az{ord(zone[-1]) - ord('a') + 1}",
        CLUSTER_LABEL: cluster,
        "atlbook.io/node-index": str(index),
    }
    labels.update(nodegroup.labels or {})
    effect = {
        "NO_SCHEDULE": "NoSchedule",
        "NO_EXECUTE": "NoExecute",
        "PREFER_NO_SCHEDULE": "PreferNoSchedule",
    }
    taints = [
        {
            "key": t["key"],
            "value": t.get("value", ""),
            "effect": effect.get(t.get("effect", ""), t.get("effect")),
        }
        for t in (nodegroup.taints or [])
    ]
    spec: dict[str, Any] = {"providerID": f"aws:///{zone}/{instance_id}"}
    if taints:
        spec["taints"] = taints
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": labels,
            "annotations": {
                "alpha.kubernetes.io/provided-node-ip": ip,
                "node.alpha.kubernetes.io/ttl": "0",
                "volumes.kubernetes.io/controller-managed-attach-detach": "true",
            },
        },
        "spec": spec,
        "status": {
            "capacity": capacity,
            "allocatable": allocatable,
            "addresses": [
                {"type": "InternalIP", "address": ip},
                {"type": "InternalDNS", "address": name},
                {"type": "Hostname", "address": name},
            ],
            "nodeInfo": {
                "architecture": "amd64",
                "bootID": "",
                "containerRuntimeVersion": "containerd://1.7.22",
                "kernelVersion": "5.10.227-219.884.amzn2.x86_64",
                "kubeProxyVersion": f"v{kube_version}.0-eks",
                "kubeletVersion": f"v{kube_version}.0-eks",
                "machineID": instance_id,
                "operatingSystem": "linux",
                "osImage": "Amazon Linux 2",
                "systemUUID": instance_id,
            },
        },
    }


# --- token authentication ----------------------------------------------------------------------------


def authenticate_eks_token(token: str) -> str | None:
    """The IAM identity of an EKS bearer token, or ``None`` when it is not a valid one."""
    if not token.startswith(_TOKEN_PREFIX):
        return None
    raw = token[len(_TOKEN_PREFIX) :]
    try:
        url = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)).decode()
    except (ValueError, UnicodeDecodeError):
        return None
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https"):
        return None
    q = {k.lower(): v[0] for k, v in parse_qs(parsed.query).items()}
    if q.get("action") != "GetCallerIdentity" or "x-amz-signature" not in q:
        return None
    signed = q.get("x-amz-signedheaders", "").lower().split(";")
    if "x-k8s-aws-id" not in signed:
        return None
    try:
        issued = _dt.datetime.strptime(q.get("x-amz-date", ""), "%Y%m%dT%H%M%SZ").replace(tzinfo=_dt.UTC)
    except ValueError:
        return None
    age = (_dt.datetime.now(_dt.UTC) - issued).total_seconds()
    if age > TOKEN_LIFETIME_SECONDS or age < -300:
        return None
    credential = q.get("x-amz-credential", "")
    access_key = credential.split("/", 1)[0]
    if not access_key:
        return None
    return f"arn:aws:iam::{ACCOUNT_ID}:user/{access_key}"


# --- the mirror ----------------------------------------------------------------------------------


def _workload(kind: str, name: str, replicas: int, owner: str) -> dict[str, Any]:
    labels = {"k8s-app": name, "app.kubernetes.io/name": name, "app.kubernetes.io/managed-by": owner}
    container: dict[str, Any] = {
        "name": name,
        "image": f"602401143452.dkr.ecr.us-east-1.amazonaws.com/eks/{name}:v1",
        "resources": {"requests": dict(_SYSTEM_REQUESTS.get(name, {"cpu": "10m", "memory": "32Mi"}))},
    }
    template: dict[str, Any] = {
        "metadata": {"labels": labels},
        "spec": {
            "containers": [container],
            "priorityClassName": "system-node-critical" if kind == "DaemonSet" else "system-cluster-critical",
            "tolerations": [{"operator": "Exists"}] if kind == "DaemonSet" else [],
        },
    }
    spec: dict[str, Any] = {"selector": {"matchLabels": {"k8s-app": name}}, "template": template}
    if kind == "Deployment":
        spec["replicas"] = replicas
    api = "apps/v1"
    return {
        "apiVersion": api,
        "kind": kind,
        "metadata": {"name": name, "namespace": "kube-system", "labels": labels},
        "spec": spec,
    }


class EksMirror:
    """Keeps the emulated cluster's Nodes and system workloads in step with moto's EKS state.

    ``sync()`` runs after every mutating EKS call (a mutation listener of :class:`AwsSandbox`) and can be
    called any time; it is idempotent.
    """

    def __init__(self, aws: AwsSandbox, store: Any) -> None:
        self.aws = aws
        self.store = store
        self._lock = threading.Lock()
        aws.add_mutation_listener(self._on_mutation)
        aws.addons.add_listener(self._on_addon)

    def _on_mutation(self, service: str, action: str, path: str) -> None:
        if service == "eks":
            self.sync()

    def _on_addon(self, cluster: str, name: str, present: bool) -> None:
        for kind, wname, replicas in addon_catalogue.ADDON_WORKLOADS.get(name, []):
            if present:
                self._ensure(kind, wname, replicas, "eks-addon")
            elif wname not in {w for _, w, _ in SYSTEM_WORKLOADS}:
                self._delete(kind, wname)

    def _ensure_priority_classes(self) -> None:
        """The built-in PriorityClasses every real cluster has (the emulator does not seed them)."""
        for pc, value in (("system-node-critical", 2000001000), ("system-cluster-critical", 2000000000)):
            if self.store.peek("PriorityClass", None, pc) is None:
                try:
                    self.store.create(
                        "PriorityClass",
                        {
                            "apiVersion": "scheduling.k8s.io/v1",
                            "kind": "PriorityClass",
                            "metadata": {"name": pc},
                            "value": value,
                            "globalDefault": False,
                            "description": "Used for system critical pods that must not be moved from their "
                            "current node."
                            if pc == "system-node-critical"
                            else "Used for system critical pods that must run in the cluster.",
                        },
                    )
                except Exception:  # noqa: BLE001 - unknown kind or created meanwhile
                    log.debug("could not create PriorityClass %s", pc, exc_info=True)

    def _ensure(self, kind: str, name: str, replicas: int, owner: str) -> None:
        if self.store.peek(kind, "kube-system", name) is not None:
            return
        self._ensure_priority_classes()
        if self.store.peek("Namespace", None, "kube-system") is None:
            self.store.create(
                "Namespace", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "kube-system"}}
            )
        try:
            self.store.create(kind, _workload(kind, name, replicas, owner), "kube-system")
        except Exception:  # noqa: BLE001 - created concurrently, or refused: logged
            log.debug("could not create %s/%s", kind, name, exc_info=True)

    def _delete(self, kind: str, name: str) -> None:
        try:
            self.store.delete(kind, "kube-system", name)
        except Exception:  # noqa: BLE001 - already gone
            log.debug("could not delete %s/%s", kind, name, exc_info=True)

    def desired_nodes(self) -> dict[str, dict[str, Any]]:
        """Node objects that should exist now, by name."""
        out: dict[str, dict[str, Any]] = {}
        for cluster in self.aws.eks_clusters():
            region = str(cluster.arn).split(":")[3] or "us-east-1"
            ec2 = ec2_backends[ACCOUNT_ID][region]
            for ng in list(cluster.nodegroups.values()):
                desired = int((ng.scaling_config or {}).get("desiredSize", 0))
                subnets = []
                for sid in ng.subnets or []:
                    try:
                        sn = ec2.get_subnet(sid)
                        subnets.append((str(sn.availability_zone), str(sn.cidr_block)))
                    except Exception:  # noqa: BLE001 - unknown subnet: a made-up zone
                        subnets.append((f"{region}a", "10.0.0.0/24"))
                if not subnets:
                    subnets = [(f"{region}{z}", f"10.0.{i}.0/24") for i, z in enumerate("abc")]
                taken = {n["status"]["addresses"][0]["address"] for n in out.values()}
                for i in range(desired):
                    zone, cidr = subnets[i % len(subnets)]
                    ip = _node_ip(cidr, f"{cluster.name}/{ng.nodegroup_name}/{i}", taken)
                    taken.add(ip)
                    node = node_object(
                        cluster=cluster.name,
                        nodegroup=ng,
                        index=i,
                        ip=ip,
                        zone=zone,
                        region=region,
                        kube_version=str(ng.version or cluster.version),
                    )
                    out[node["metadata"]["name"]] = node
        return out

    def sync(self) -> None:
        """Create missing nodes, delete nodes whose node group shrank or went, ensure system workloads."""
        with self._lock:
            desired = self.desired_nodes()
            existing = {
                n["metadata"]["name"]: n
                for n in self.store.iter("Node")
                if CLUSTER_LABEL in ((n.get("metadata") or {}).get("labels") or {})
            }
            for name in sorted(set(existing) - set(desired), reverse=True):
                try:
                    self.store.delete("Node", None, name)
                except Exception:  # noqa: BLE001 - gone already
                    log.debug("node delete failed: %s", name, exc_info=True)
            for name, node in desired.items():
                if name in existing:
                    continue
                status = node.pop("status")
                status["conditions"] = _ready_conditions(self.store)
                try:
                    self.store.create("Node", node)
                except Exception:  # noqa: BLE001 - exists (race)
                    log.debug("node create failed: %s", name, exc_info=True)
                    continue
                self.store.write_status("Node", None, name, status)
            if desired:
                for kind, wname, replicas in SYSTEM_WORKLOADS:
                    self._ensure(kind, wname, replicas, "eks")


def _ready_conditions(store: Any) -> list[dict[str, Any]]:
    now = store.clock.now().strftime("%Y-%m-%dT%H:%M:%SZ")

    def cond(typ: str, status: str, reason: str, message: str) -> dict[str, Any]:
        return {
            "type": typ,
            "status": status,
            "reason": reason,
            "message": message,
            "lastHeartbeatTime": now,
            "lastTransitionTime": now,
        }

    return [
        cond(
            "MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"
        ),
        cond("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
        cond("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
        cond("Ready", "True", "KubeletReady", "kubelet is posting ready status"),
    ]
