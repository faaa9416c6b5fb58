"""Desired state: a stack description in, every AWS resource and Kubernetes object it needs out. Pure.

No client, no I/O, no secret resolution. Names, labels, ports and env follow the official Atlassian
Helm charts (chart 2.0.9, reference §3) with release name = product name, so an operator who knows the
charts recognises every object (``jira`` StatefulSet, ``jira-jvm-config`` ConfigMap, ``local-home``
volume claim template …). Where the charts stop (reference §1: no NetworkPolicy, affinity, PDB,
priority, CloudFront, NFS for HA) the target architecture of DESIGN.md fills in.

Refuses nothing here: what cannot be built is a :class:`~atlbook.provisioning.model.Finding` (warnings
such as Bitbucket on EFS; blockers such as a missing NetworkPolicy engine or an overflowing DB
connection budget), shown in the plan.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from atlbook import stack as stackmod
from atlbook.capacity import budget as capbudget
from atlbook.capacity import policy
from atlbook.provisioning import _budget, _spec, databases
from atlbook.provisioning.kinds import KINDS
from atlbook.provisioning.model import DesiredState, Finding, Resource, late

__all__ = [
    "EFS_THROUGHPUT_NOTE",
    "INGRESS_LB",
    "LABEL_STACK",
    "PORTS",
    "build",
    "selector",
]

LABEL_STACK = "atlbook.io/stack"
MANAGED_BY = "atlbook"
#: The ingress controller's LoadBalancer Service; CloudFront's origin is its hostname.
INGRESS_LB = ("ingress-nginx", "ingress-nginx-controller")

#: Container ports per product, names as in the charts (reference §3.2, §9).
PORTS: dict[str, dict[str, int]] = {
    "jira": {"http": 8080, "ehcache": 40001, "ehcacheobject": 40011},
    "confluence": {"http": 8090, "hazelcast": 5701},
    "bitbucket": {"http": 7990, "hazelcast": 5701, "ssh": 7999},
    "synchrony": {"http": 8091, "hazelcast": 5701, "cluster": 25500},
    "opensearch": {"http": 9200, "transport": 9300},
}
_CLUSTER_PORTS = {
    "jira": ("ehcache", "ehcacheobject"),
    "confluence": ("hazelcast",),
    "bitbucket": ("hazelcast",),
    "synchrony": ("hazelcast", "cluster"),
    "opensearch": ("transport",),
}
_GRACE = {"jira": 30, "confluence": 25, "bitbucket": 35, "synchrony": 25}
_READINESS_FAILURES = {"jira": 10, "confluence": 6, "bitbucket": 60}
_FS_GROUP = {"jira": 2001, "confluence": 2002, "bitbucket": 2003}
_HOME = "/var/atlassian/application-data"
SHARED_HOME = f"{_HOME}/shared-home"
_OPENSEARCH_IMAGE = "opensearchproject/opensearch:2.19.1"
EFS_THROUGHPUT_NOTE = (
    "EFS throughput mode {mode}: bursting earns 50 KiB/s per GiB stored, so a small DC shared home runs "
    "out of burst credits during reindex / index-snapshot copies and everything slows down (reference "
    "§5); elastic scales with the workload and is billed per use, which fits bursty DC I/O. Performance "
    "mode generalPurpose (Max I/O has higher per-operation latency)."
)
_NFS_IMAGE = "itsthenetwork/nfs-server-alpine:12"
_INGRESS_IMAGE = "registry.k8s.io/ingress-nginx/controller:v1.11.5"
#: PriorityClasses of atlbook.capacity.policy: product nodes above Synchrony / NFS / OpenSearch / ingress.
_PRIORITY_CLASSES = {pc["metadata"]["name"]: pc for pc in policy.priority_classes()}
_PRIORITY_APP = policy.PRIORITY_CLASS_NAMES[max(policy.PRIORITY_CLASS_NAMES)]
_PRIORITY_AUX = sorted(policy.PRIORITY_CLASS_NAMES.items(), reverse=True)[1][1]


# --- helpers ---------------------------------------------------------------------------------------


def selector(product: str, component: str = "") -> dict[str, str]:
    """Selector labels of the charts: ``app.kubernetes.io/name`` + ``app.kubernetes.io/instance``."""
    name = f"{product}-{component}" if component else product
    return {"app.kubernetes.io/name": name, "app.kubernetes.io/instance": product}


def _labels(stack: str, product: str = "", component: str = "") -> dict[str, str]:
    labels = {"app.kubernetes.io/managed-by": MANAGED_BY, LABEL_STACK: stack}
    if product:
        labels.update(selector(product, component))
    return labels


def _meta(
    stack: str,
    name: str,
    namespace: str = "",
    product: str = "",
    component: str = "",
    annotations: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "labels": _labels(stack, product, component)}
    if namespace:
        meta["namespace"] = namespace
    if annotations:
        meta["annotations"] = dict(annotations)
    return meta


def _k8s(
    kind: str,
    meta: dict[str, Any],
    note: str = "",
    depends: tuple[str, ...] = (),
    secret_refs: Mapping[str, str] | None = None,
    **fields: Any,
) -> Resource:
    body = {"apiVersion": KINDS[kind].api_version, "kind": kind, "metadata": meta, **fields}
    return Resource(
        provider="k8s",
        kind=kind,
        name=meta["name"],
        namespace=meta.get("namespace", ""),
        body=body,
        note=note,
        depends_on=depends,
        secret_refs=dict(secret_refs or {}),
    )


def _aws(
    kind: str,
    name: str,
    body: dict[str, Any],
    note: str = "",
    depends: tuple[str, ...] = (),
    lookup: bool = False,
    secret_refs: Mapping[str, str] | None = None,
) -> Resource:
    return Resource(
        provider="aws",
        kind=kind,
        name=name,
        body=body,
        note=note,
        depends_on=depends,
        lookup=lookup,
        secret_refs=dict(secret_refs or {}),
    )


def _placeholder(ref: str | None) -> str:
    return f"<from {ref}>" if ref else "<generated at apply>"


def _anti_affinity_and_spread(match: Mapping[str, str]) -> dict[str, Any]:
    """Required anti-affinity on hostname + zone spread maxSkew 1 DoNotSchedule (atlbook.capacity.policy)."""
    return {"affinity": policy.affinity(match), "topologySpreadConstraints": policy.topology_spread(match)}


def _key(kind: str, name: str, namespace: str = "", provider: str = "k8s") -> str:
    if provider == "aws":
        return f"aws/{kind}/{name}"
    return f"k8s/{kind}/{namespace or '-'}/{name}"


# --- AWS -------------------------------------------------------------------------------------------


def _aws_resources(s: _spec.SpecView, max_connections: int) -> list[Resource]:
    tags = {"atlbook:stack": s.name, "atlbook:managed-by": MANAGED_BY, **s.tags}
    out: list[Resource] = []
    vpc_filters: list[dict[str, Any]] = [{"Name": f"tag:{k}", "Values": [v]} for k, v in s.vpc_tags.items()]
    out.append(
        _aws(
            "Vpc",
            "main",
            {"VpcId": s.vpc_id, "Filters": vpc_filters},
            lookup=True,
            note="found, never created: by id, else by tags, else the VPC tagged atlbook:stack, "
            "else the account's default VPC",
        )
    )
    out.append(
        _aws(
            "Subnets",
            "private",
            {
                "VpcId": late("aws", "Vpc", "main", "VpcId"),
                "AvailabilityZones": list(s.azs),
                "PreferTag": "kubernetes.io/role/internal-elb",
            },
            lookup=True,
            depends=(_key("Vpc", "main", provider="aws"),),
            note=f"one private subnet per AZ ({', '.join(s.azs)}); ≥ 2 AZs required",
        )
    )
    roles: dict[str, str] = {}
    for role, service, policies, given in (
        ("cluster", "eks.amazonaws.com", ("AmazonEKSClusterPolicy",), s.cluster_role_arn),
        (
            "nodes",
            "ec2.amazonaws.com",
            (
                "AmazonEKSWorkerNodePolicy",
                "AmazonEKS_CNI_Policy",
                "AmazonEC2ContainerRegistryReadOnly",
                "service-role/AmazonEBSCSIDriverPolicy",
                "service-role/AmazonEFSCSIDriverPolicy",
            ),
            s.node_role_arn,
        ),
    ):
        if given:
            roles[role] = given
            continue
        rname = f"{s.name}-eks-{role}"
        out.append(
            _aws(
                "IamRole",
                rname,
                {
                    "RoleName": rname,
                    "AssumeRolePolicyDocument": {
                        "Version": "2012-10-17",
                        "Statement": [
                            {"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}
                        ],
                    },
                    "ManagedPolicyArns": [f"arn:aws:iam::aws:policy/{p}" for p in policies],
                    "Tags": tags,
                },
            )
        )
        roles[role] = late("aws", "IamRole", rname, "Arn")
    vpc_id = late("aws", "Vpc", "main", "VpcId")
    nodes_sg = f"{s.name}-nodes"
    sg_dep = (_key("Vpc", "main", provider="aws"),)
    out.append(
        _aws(
            "SecurityGroup",
            nodes_sg,
            {
                "GroupName": nodes_sg,
                "Description": f"{s.name}: EKS worker nodes",
                "VpcId": vpc_id,
                "Ingress": [{"Protocol": "-1", "FromPort": -1, "ToPort": -1, "Source": "self"}],
                "Tags": tags,
            },
            depends=sg_dep,
            note="node ↔ node traffic (pod-to-pod clustering ports ride on it)",
        )
    )
    nodes_sg_id = late("aws", "SecurityGroup", nodes_sg, "GroupId")
    for suffix, port, what in (
        ("efs", 2049, "NFS from the nodes to EFS mount targets"),
        ("rds", 5432, "PostgreSQL from the nodes to RDS"),
    ):
        name = f"{s.name}-{suffix}"
        out.append(
            _aws(
                "SecurityGroup",
                name,
                {
                    "GroupName": name,
                    "Description": f"{s.name}: {what}",
                    "VpcId": vpc_id,
                    "Ingress": [
                        {"Protocol": "tcp", "FromPort": port, "ToPort": port, "SourceGroupId": nodes_sg_id}
                    ],
                    "Tags": tags,
                },
                depends=(*sg_dep, _key("SecurityGroup", nodes_sg, provider="aws")),
                note=what,
            )
        )
    subnets = late("aws", "Subnets", "private", "SubnetIds")
    cluster_key = _key("EksCluster", s.name, provider="aws")
    out.append(
        _aws(
            "EksCluster",
            s.name,
            {
                "name": s.name,
                "version": s.eks_version,
                "roleArn": roles["cluster"],
                "resourcesVpcConfig": {
                    "subnetIds": subnets,
                    "securityGroupIds": [nodes_sg_id],
                    "endpointPublicAccess": True,
                    "endpointPrivateAccess": True,
                },
                "kubernetesNetworkConfig": {"serviceIpv4Cidr": s.service_cidr},
                "tags": tags,
            },
            depends=(
                _key("Subnets", "private", provider="aws"),
                _key("SecurityGroup", nodes_sg, provider="aws"),
            ),
        )
    )
    for group in s.node_groups:
        for az in s.azs:
            ng = f"{s.name}-{group.name}-{az}"
            out.append(
                _aws(
                    "EksNodegroup",
                    ng,
                    {
                        "clusterName": s.name,
                        "nodegroupName": ng,
                        "scalingConfig": {
                            "minSize": group.min_per_zone,
                            "maxSize": group.max_per_zone,
                            "desiredSize": group.desired_per_zone,
                        },
                        "subnets": [late("aws", "Subnets", "private", az)],
                        "instanceTypes": list(group.instance_types),
                        "diskSize": group.disk_gib,
                        "nodeRole": roles["nodes"],
                        "capacityType": "ON_DEMAND",
                        "updateConfig": {"maxUnavailable": 1},
                        "labels": {"atlbook.io/node-group": group.name, **group.labels},
                        "tags": tags,
                    },
                    depends=(cluster_key,),
                    note=f"one node group per zone ({az}) so each zone is sized and scaled on its own",
                )
            )
    addons: list[tuple[str, str | None, str]] = [
        ("aws-ebs-csi-driver", None, "EBS CSI: gp3 local homes"),
        ("aws-efs-csi-driver", None, "EFS CSI: shared homes"),
    ]
    if s.network_policy_engine == "vpc-cni":
        addons.insert(
            0,
            (
                "vpc-cni",
                json.dumps({"enableNetworkPolicy": "true"}),
                "VPC CNI with network policy enforcement on: the NetworkPolicy engine",
            ),
        )
    ng_keys = tuple(
        _key("EksNodegroup", f"{s.name}-{g.name}-{az}", provider="aws") for g in s.node_groups for az in s.azs
    )
    for addon, config, why in addons:
        body: dict[str, Any] = {
            "clusterName": s.name,
            "addonName": addon,
            "resolveConflicts": "OVERWRITE",
            "tags": tags,
        }
        if config:
            body["configurationValues"] = config
        out.append(_aws("EksAddon", f"{s.name}-{addon}", body, depends=(cluster_key, *ng_keys), note=why))
    if any(p.shared_home == "efs" for p in s.enabled):
        fs = f"{s.name}-shared-home"
        out.append(
            _aws(
                "EfsFileSystem",
                fs,
                {
                    "CreationToken": fs,
                    "PerformanceMode": "generalPurpose",
                    "ThroughputMode": s.efs_throughput_mode,
                    "Encrypted": True,
                    "Tags": {"Name": fs, **tags},
                },
                note=EFS_THROUGHPUT_NOTE.format(mode=s.efs_throughput_mode),
            )
        )
        for az in s.azs:
            out.append(
                _aws(
                    "EfsMountTarget",
                    f"{fs}-{az}",
                    {
                        "FileSystemId": late("aws", "EfsFileSystem", fs, "FileSystemId"),
                        "SubnetId": late("aws", "Subnets", "private", az),
                        "SecurityGroups": [late("aws", "SecurityGroup", f"{s.name}-efs", "GroupId")],
                    },
                    depends=(
                        _key("EfsFileSystem", fs, provider="aws"),
                        _key("SecurityGroup", f"{s.name}-efs", provider="aws"),
                    ),
                    note=f"mount target in {az}: every AZ with nodes needs one",
                )
            )
    db = s.database
    family = f"postgres{db.engine_version.split('.')[0]}"
    pg = f"{s.name}-{family}"
    out.append(
        _aws(
            "RdsSubnetGroup",
            f"{s.name}-db",
            {
                "DBSubnetGroupName": f"{s.name}-db",
                "DBSubnetGroupDescription": f"{s.name}: private subnets",
                "SubnetIds": subnets,
                "Tags": tags,
            },
            depends=(_key("Subnets", "private", provider="aws"),),
        )
    )
    out.append(
        _aws(
            "RdsParameterGroup",
            pg,
            {
                "DBParameterGroupName": pg,
                "DBParameterGroupFamily": family,
                "Description": f"{s.name}: max_connections sized for the connection budget",
                "Parameters": {"max_connections": str(max_connections)},
                "Tags": tags,
            },
            note=f"max_connections {max_connections} covers the connection budget (see the budget line)",
        )
    )
    out.append(
        _aws(
            "RdsInstance",
            db.identifier,
            {
                "DBInstanceIdentifier": db.identifier,
                "DBInstanceClass": db.instance_class,
                "Engine": "postgres",
                "EngineVersion": db.engine_version,
                "AllocatedStorage": db.storage_gib,
                "StorageType": "gp3",
                "MultiAZ": db.multi_az,
                "StorageEncrypted": True,
                "BackupRetentionPeriod": db.backup_retention_days,
                "DeletionProtection": db.deletion_protection,
                "PubliclyAccessible": False,
                "CopyTagsToSnapshot": True,
                "DBSubnetGroupName": f"{s.name}-db",
                "DBParameterGroupName": pg,
                "VpcSecurityGroupIds": [late("aws", "SecurityGroup", f"{s.name}-rds", "GroupId")],
                "MasterUsername": db.master_username,
                "MasterUserPassword": _placeholder(db.master_password),
                "Tags": tags,
            },
            depends=(
                _key("RdsSubnetGroup", f"{s.name}-db", provider="aws"),
                _key("RdsParameterGroup", pg, provider="aws"),
                _key("SecurityGroup", f"{s.name}-rds", provider="aws"),
            ),
            secret_refs={"MasterUserPassword": db.master_password} if db.master_password else {},
            note="one shared PostgreSQL, Multi-AZ, encrypted, backups ≥ 7 days, deletion protection",
        )
    )
    return out


def _cloudfront(s: _spec.SpecView) -> list[Resource]:
    if not s.cdn_enabled:
        return []
    tags = {"atlbook:stack": s.name, "atlbook:managed-by": MANAGED_BY, **s.tags}
    origin = late("k8s", "Service", f"{INGRESS_LB[0]}/{INGRESS_LB[1]}", "hostname")
    forward_all = {"QueryString": True, "Cookies": {"Forward": "all"}, "Headers": ["*"]}
    static = {"QueryString": True, "Cookies": {"Forward": "none"}, "Headers": ["Host"]}
    paths = [f"{p.context_path}{path}" for p in s.enabled for path in s.static_paths]
    name = f"{s.name}-cdn"
    return [
        _aws(
            "CloudFrontDistribution",
            name,
            {
                "Comment": name,
                # an alias (the ingress host) needs an ACM certificate in us-east-1 on the distribution;
                # the stack schema has no certificate yet, so the distribution keeps its own name
                "Aliases": [],
                "Enabled": True,
                "PriceClass": "PriceClass_100",
                "Origin": {"Id": "ingress", "DomainName": origin, "OriginProtocolPolicy": "https-only"},
                "DefaultCacheBehavior": {
                    "PathPattern": "*",
                    "MinTTL": 0,
                    "DefaultTTL": 0,
                    "MaxTTL": 0,
                    "ForwardedValues": forward_all,
                },
                "CacheBehaviors": [
                    {
                        "PathPattern": path,
                        "MinTTL": 0,
                        "DefaultTTL": 86400,
                        "MaxTTL": 31536000,
                        "ForwardedValues": static,
                    }
                    for path in paths
                ],
                "Tags": tags,
            },
            depends=(
                _key("Service", INGRESS_LB[1], INGRESS_LB[0]),
                *(_key("Ingress", p.name, p.namespace) for p in s.enabled),
            ),
            note=f"CDN for {s.ingress_host}: {len(paths)} static paths cached, the rest goes to the ingress",
        )
    ]


# --- Kubernetes: cluster add-ons ---------------------------------------------------------------------


def _metrics_server(st: str) -> list[Resource]:
    """metrics-server in kube-system (its ``v1beta1.metrics.k8s.io`` APIService comes with the manifest
    of the upstream release and is not managed here)."""
    ns, name = "kube-system", "metrics-server"
    sel = {"k8s-app": name}
    lab = {**_labels(st), **sel}
    return [
        _k8s("ServiceAccount", {"name": name, "namespace": ns, "labels": lab}),
        _k8s(
            "ClusterRole",
            {"name": f"atlbook-{name}", "labels": lab},
            rules=[
                {"apiGroups": [""], "resources": ["nodes/metrics"], "verbs": ["get"]},
                {"apiGroups": [""], "resources": ["pods", "nodes"], "verbs": ["get", "list", "watch"]},
            ],
        ),
        _k8s(
            "ClusterRoleBinding",
            {"name": f"atlbook-{name}", "labels": lab},
            roleRef={
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": f"atlbook-{name}",
            },
            subjects=[{"kind": "ServiceAccount", "name": name, "namespace": ns}],
        ),
        _k8s(
            "Deployment",
            {"name": name, "namespace": ns, "labels": lab},
            spec={
                "replicas": 1,
                "selector": {"matchLabels": sel},
                "template": {
                    "metadata": {"labels": lab},
                    "spec": {
                        "serviceAccountName": name,
                        "priorityClassName": "system-cluster-critical",
                        "containers": [
                            {
                                "name": name,
                                "image": "registry.k8s.io/metrics-server/metrics-server:v0.7.2",
                                "args": [
                                    "--cert-dir=/tmp",
                                    "--secure-port=10250",
                                    "--kubelet-preferred-address-types=InternalIP",
                                    "--kubelet-use-node-status-port",
                                    "--metric-resolution=15s",
                                ],
                                "ports": [{"name": "https", "containerPort": 10250, "protocol": "TCP"}],
                                "readinessProbe": {
                                    "httpGet": {"path": "/readyz", "port": "https", "scheme": "HTTPS"},
                                    "periodSeconds": 10,
                                },
                                "resources": {
                                    "requests": {"cpu": "100m", "memory": "200Mi"},
                                    "limits": {"memory": "200Mi"},
                                },
                            }
                        ],
                    },
                },
            },
            note="metrics-server: kubectl top and the capacity checks",
        ),
        _k8s(
            "Service",
            {"name": name, "namespace": ns, "labels": lab},
            spec={
                "selector": sel,
                "ports": [{"name": "https", "port": 443, "targetPort": "https", "protocol": "TCP"}],
            },
        ),
    ]


def _cluster_objects(s: _spec.SpecView) -> list[Resource]:
    st = s.name
    out = [
        *(
            _k8s(
                "PriorityClass",
                _meta(st, name),
                **{k: v for k, v in pc.items() if k not in ("apiVersion", "kind", "metadata")},
            )
            for name, pc in _PRIORITY_CLASSES.items()
        ),
        _k8s(
            "StorageClass",
            _meta(st, "gp3"),
            provisioner="ebs.csi.aws.com",
            volumeBindingMode="WaitForFirstConsumer",
            allowVolumeExpansion=True,
            reclaimPolicy="Retain",
            parameters={"type": "gp3", "encrypted": "true"},
            note="local homes: one EBS volume per pod, created in the zone of its first pod",
        ),
    ]
    if any(p.shared_home == "efs" for p in s.enabled):
        out.append(
            _k8s(
                "StorageClass",
                _meta(st, "efs"),
                provisioner="efs.csi.aws.com",
                volumeBindingMode="Immediate",
                reclaimPolicy="Retain",
                mountOptions=["tls", "noatime"],
                parameters={
                    "provisioningMode": "efs-ap",
                    "fileSystemId": late("aws", "EfsFileSystem", f"{st}-shared-home", "FileSystemId"),
                    "directoryPerms": "770",
                    "gidRangeStart": "2000",
                    "gidRangeEnd": "2100",
                },
                note="shared homes (RWX) on EFS access points",
            )
        )
    out += _metrics_server(st)
    ns, name = INGRESS_LB
    sel = {"app.kubernetes.io/name": "ingress-nginx", "app.kubernetes.io/component": "controller"}
    lab = {**_labels(st), **sel}
    out += [
        _k8s("Namespace", {"name": ns, "labels": {**_labels(st), "kubernetes.io/metadata.name": ns}}),
        _k8s("ServiceAccount", {"name": name, "namespace": ns, "labels": lab}),
        _k8s(
            "ClusterRole",
            {"name": name, "labels": lab},
            rules=[
                {
                    "apiGroups": [""],
                    "resources": [
                        "configmaps",
                        "endpoints",
                        "nodes",
                        "pods",
                        "secrets",
                        "namespaces",
                        "services",
                    ],
                    "verbs": ["get", "list", "watch"],
                },
                {"apiGroups": [""], "resources": ["events"], "verbs": ["create", "patch"]},
                {
                    "apiGroups": ["networking.k8s.io"],
                    "resources": ["ingresses", "ingressclasses"],
                    "verbs": ["get", "list", "watch"],
                },
                {"apiGroups": ["networking.k8s.io"], "resources": ["ingresses/status"], "verbs": ["update"]},
                {
                    "apiGroups": ["discovery.k8s.io"],
                    "resources": ["endpointslices"],
                    "verbs": ["get", "list", "watch"],
                },
                {
                    "apiGroups": ["coordination.k8s.io"],
                    "resources": ["leases"],
                    "verbs": ["get", "create", "update"],
                },
            ],
        ),
        _k8s(
            "ClusterRoleBinding",
            {"name": name, "labels": lab},
            roleRef={"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name},
            subjects=[{"kind": "ServiceAccount", "name": name, "namespace": ns}],
        ),
        _k8s(
            "ConfigMap",
            {"name": name, "namespace": ns, "labels": lab},
            data={
                "proxy-read-timeout": "3600",
                "proxy-send-timeout": "3600",
                "proxy-connect-timeout": "60",
                "proxy-body-size": "250m",
                "use-forwarded-headers": "true",
                "upstream-keepalive-timeout": "60",
                "allow-snippet-annotations": "false",
            },
            note="long timeouts: websockets (Synchrony, Jira live updates) and long admin requests",
        ),
        _k8s(
            "Deployment",
            {"name": name, "namespace": ns, "labels": lab},
            spec={
                "replicas": 2,
                "selector": {"matchLabels": sel},
                "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1}},
                "template": {
                    "metadata": {"labels": lab},
                    "spec": {
                        "serviceAccountName": name,
                        "terminationGracePeriodSeconds": 300,
                        "priorityClassName": _PRIORITY_AUX,
                        **_anti_affinity_and_spread(sel),
                        "containers": [
                            {
                                "name": "controller",
                                "image": _INGRESS_IMAGE,
                                "args": [
                                    "/nginx-ingress-controller",
                                    f"--configmap=$(POD_NAMESPACE)/{name}",
                                    f"--ingress-class={s.ingress_class}",
                                    f"--publish-service=$(POD_NAMESPACE)/{name}",
                                    f"--election-id={name}-leader",
                                ],
                                "env": [
                                    {
                                        "name": "POD_NAME",
                                        "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}},
                                    },
                                    {
                                        "name": "POD_NAMESPACE",
                                        "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}},
                                    },
                                ],
                                "ports": [
                                    {"name": "http", "containerPort": 80},
                                    {"name": "https", "containerPort": 443},
                                ],
                                "readinessProbe": {
                                    "httpGet": {"path": "/healthz", "port": 10254},
                                    "periodSeconds": 10,
                                    "failureThreshold": 3,
                                },
                                "resources": {
                                    "requests": {"cpu": "200m", "memory": "256Mi"},
                                    "limits": {"memory": "256Mi"},
                                },
                            }
                        ],
                    },
                },
            },
        ),
        _k8s(
            "Service",
            {
                "name": name,
                "namespace": ns,
                "labels": lab,
                "annotations": {"service.beta.kubernetes.io/aws-load-balancer-type": "nlb"},
            },
            spec={
                "type": "LoadBalancer",
                "externalTrafficPolicy": "Local",
                "selector": sel,
                "ports": [
                    {"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"},
                    {"name": "https", "port": 443, "targetPort": "https", "protocol": "TCP"},
                ],
            },
            note="the ingress load balancer; CloudFront's origin",
        ),
        _k8s(
            "IngressClass",
            {"name": s.ingress_class, "labels": lab},
            spec={"controller": "k8s.io/ingress-nginx"},
            note="the class every product Ingress names",
        ),
        _k8s(
            "PodDisruptionBudget",
            {"name": name, "namespace": ns, "labels": lab},
            spec={"maxUnavailable": 1, "selector": {"matchLabels": sel}},
        ),
    ]
    return out


# --- Kubernetes: per namespace and per product -----------------------------------------------------


def _namespace_objects(s: _spec.SpecView, ns: str, products: list[_spec.ProductView]) -> list[Resource]:
    st = s.name
    out = [_k8s("Namespace", {"name": ns, "labels": {**_labels(st), "kubernetes.io/metadata.name": ns}})]
    cpu, gib, nodes = _cluster_capacity(s)
    out.append(
        _k8s(
            "ResourceQuota",
            _meta(st, "atlbook-quota", ns),
            spec={
                "hard": {
                    "requests.cpu": str(cpu),
                    "requests.memory": f"{gib}Gi",
                    "limits.memory": f"{gib}Gi",
                    "pods": str(nodes * 20),
                    "persistentvolumeclaims": str(nodes * 20),
                }
            },
            note="capped at what the node groups can ever hold at their max size: a runaway scale-up "
            "fails at admission instead of starving other namespaces; scaling a product within the "
            "cluster's size does not change it",
        )
    )
    out.append(
        _k8s(
            "LimitRange",
            _meta(st, "atlbook-limits", ns),
            spec={
                "limits": [
                    {
                        "type": "Container",
                        "default": {"memory": "512Mi"},
                        "defaultRequest": {"cpu": "100m", "memory": "512Mi"},
                    }
                ]
            },
            note="containers without resources get memory request = limit",
        )
    )
    if s.network_policies:
        out += _network_policies(s, ns, products)
    return out


_SIZE = {"large": 2, "xlarge": 4, "2xlarge": 8, "4xlarge": 16, "8xlarge": 32, "12xlarge": 48, "16xlarge": 64}
_GIB_PER_VCPU = {"m": 4, "r": 8, "c": 2, "t": 4}


def _cluster_capacity(s: _spec.SpecView) -> tuple[int, int, int]:
    """(vCPU, GiB, nodes) of every node group at its maximum size, from the instance type's name."""
    cpu = gib = nodes = 0
    for g in s.node_groups:
        family, _, size = g.instance_types[0].partition(".")
        vcpu = _SIZE.get(size, 8)
        count = g.max_per_zone * len(s.azs)
        nodes += count
        cpu += count * vcpu
        gib += count * vcpu * _GIB_PER_VCPU.get(family[:1], 4)
    return cpu, gib, nodes


def _workloads(p: _spec.ProductView) -> list[tuple[str, int, str, str]]:
    """(component, replicas, cpu, memory limit) of every workload of a product."""
    out = [("", p.replicas, p.cpu, p.memory_limit)]
    for comp, aux in (("synchrony", p.synchrony), ("nfs", p.nfs), ("opensearch", p.opensearch)):
        if aux is not None:
            out.append((comp, aux.replicas, aux.cpu, aux.memory_limit))
    return out


def _network_policies(s: _spec.SpecView, ns: str, products: list[_spec.ProductView]) -> list[Resource]:
    st = s.name
    vpc_cidr = late("aws", "Vpc", "main", "CidrBlock")
    from_ingress = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": INGRESS_LB[0]}}}
    out = [
        _k8s(
            "NetworkPolicy",
            _meta(st, "default-deny", ns),
            spec={"podSelector": {}, "policyTypes": ["Ingress", "Egress"]},
            note="default-deny: every pod in the namespace; the allow rules below open only the flows of §6",
        ),
        _k8s(
            "NetworkPolicy",
            _meta(st, "allow-dns", ns),
            spec={
                "podSelector": {},
                "policyTypes": ["Egress"],
                "egress": [
                    {
                        "to": [
                            {
                                "namespaceSelector": {
                                    "matchLabels": {"kubernetes.io/metadata.name": "kube-system"}
                                },
                                "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
                            }
                        ],
                        "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}],
                    }
                ],
            },
        ),
    ]

    def tcp(*ports: int) -> list[dict[str, Any]]:
        return [{"protocol": "TCP", "port": port} for port in ports]

    for p in products:
        ports = PORTS[p.name]
        sel = selector(p.name)
        ingress_rules: list[dict[str, Any]] = [
            {"from": [from_ingress], "ports": tcp(ports["http"])},
            # the API server's pods/proxy and the load balancer health checks come from the VPC
            {"from": [{"ipBlock": {"cidr": vpc_cidr}}], "ports": tcp(ports["http"])},
            {
                "from": [{"podSelector": {"matchLabels": sel}}],
                "ports": tcp(*(ports[n] for n in _CLUSTER_PORTS[p.name])),
            },
        ]
        if p.ssh_port:
            ingress_rules.append({"from": [{"ipBlock": {"cidr": "0.0.0.0/0"}}], "ports": tcp(ports["ssh"])})
        egress_rules: list[dict[str, Any]] = [
            {
                "to": [{"podSelector": {"matchLabels": sel}}],
                "ports": tcp(*(ports[n] for n in _CLUSTER_PORTS[p.name])),
            },
            {"to": [{"ipBlock": {"cidr": vpc_cidr}}], "ports": tcp(5432)},
        ]
        if p.shared_home == "efs":
            egress_rules.append({"to": [{"ipBlock": {"cidr": vpc_cidr}}], "ports": tcp(2049)})
        else:
            egress_rules.append(
                {"to": [{"podSelector": {"matchLabels": selector(p.name, "nfs")}}], "ports": tcp(2049)}
            )
        if p.name in ("confluence", "bitbucket"):
            egress_rules.append(
                {
                    "to": [{"ipBlock": {"cidr": vpc_cidr}}, {"ipBlock": {"cidr": s.service_cidr}}],
                    "ports": tcp(443),
                }
            )
        if p.opensearch:
            egress_rules.append(
                {
                    "to": [{"podSelector": {"matchLabels": selector(p.name, "opensearch")}}],
                    "ports": tcp(PORTS["opensearch"]["http"]),
                }
            )
        if p.synchrony:
            egress_rules.append(
                {
                    "to": [{"podSelector": {"matchLabels": selector(p.name, "synchrony")}}],
                    "ports": tcp(PORTS["synchrony"]["http"]),
                }
            )
            egress_rules.append(
                {
                    "to": [
                        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": INGRESS_LB[0]}}}
                    ],
                    "ports": tcp(80, 443),
                }
            )
        out.append(
            _k8s(
                "NetworkPolicy",
                _meta(st, f"{p.name}-allow", ns, p.name),
                spec={
                    "podSelector": {"matchLabels": sel},
                    "policyTypes": ["Ingress", "Egress"],
                    "ingress": ingress_rules,
                    "egress": egress_rules,
                },
            )
        )
        if p.synchrony:
            ssel = selector(p.name, "synchrony")
            sp = PORTS["synchrony"]
            out.append(
                _k8s(
                    "NetworkPolicy",
                    _meta(st, f"{p.name}-synchrony-allow", ns, p.name, "synchrony"),
                    spec={
                        "podSelector": {"matchLabels": ssel},
                        "policyTypes": ["Ingress", "Egress"],
                        "ingress": [
                            {
                                "from": [from_ingress, {"podSelector": {"matchLabels": sel}}],
                                "ports": tcp(sp["http"]),
                            },
                            {
                                "from": [{"podSelector": {"matchLabels": ssel}}],
                                "ports": tcp(sp["hazelcast"], sp["cluster"]),
                            },
                        ],
                        "egress": [
                            {
                                "to": [{"podSelector": {"matchLabels": ssel}}],
                                "ports": tcp(sp["hazelcast"], sp["cluster"]),
                            },
                            {"to": [{"ipBlock": {"cidr": vpc_cidr}}], "ports": tcp(5432, 443)},
                            {"to": [{"ipBlock": {"cidr": s.service_cidr}}], "ports": tcp(443)},
                        ],
                    },
                )
            )
        if p.opensearch:
            osel = selector(p.name, "opensearch")
            op = PORTS["opensearch"]
            out.append(
                _k8s(
                    "NetworkPolicy",
                    _meta(st, f"{p.name}-opensearch-allow", ns, p.name, "opensearch"),
                    spec={
                        "podSelector": {"matchLabels": osel},
                        "policyTypes": ["Ingress", "Egress"],
                        "ingress": [
                            {"from": [{"podSelector": {"matchLabels": sel}}], "ports": tcp(op["http"])},
                            {"from": [{"podSelector": {"matchLabels": osel}}], "ports": tcp(op["transport"])},
                        ],
                        "egress": [
                            {"to": [{"podSelector": {"matchLabels": osel}}], "ports": tcp(op["transport"])}
                        ],
                    },
                )
            )
        if p.nfs:
            out.append(
                _k8s(
                    "NetworkPolicy",
                    _meta(st, f"{p.name}-nfs-allow", ns, p.name, "nfs"),
                    spec={
                        "podSelector": {"matchLabels": selector(p.name, "nfs")},
                        "policyTypes": ["Ingress"],
                        "ingress": [
                            {
                                "from": [
                                    {"podSelector": {"matchLabels": sel}},
                                    {"ipBlock": {"cidr": vpc_cidr}},
                                ],
                                "ports": tcp(2049),
                            }
                        ],
                    },
                )
            )
    return out


def _jvm_args(p: _spec.ProductView) -> str:
    args = [f"-XX:ActiveProcessorCount={max(1, stackmod.cpu_millicores(p.cpu) // 1000)}"]
    if p.name == "confluence":
        args.append(
            f"-Dsynchrony.service.url=https://{p.host}/synchrony/v1"
            if p.synchrony
            else "-Dsynchrony.btf.disabled=true"
        )
    return " ".join(args)


def _env_value(name: str, value: str | int) -> dict[str, Any]:
    return {"name": name, "value": str(value)}


def _env_field(name: str, path: str) -> dict[str, Any]:
    return {"name": name, "valueFrom": {"fieldRef": {"fieldPath": path}}}


def _env_secret(name: str, secret: str, key: str) -> dict[str, Any]:
    return {"name": name, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}}


def _env_cm(name: str, cm: str, key: str) -> dict[str, Any]:
    return {"name": name, "valueFrom": {"configMapKeyRef": {"name": cm, "key": key}}}


def _product_env(s: _spec.SpecView, p: _spec.ProductView) -> list[dict[str, Any]]:
    n = p.name
    jdbc = f"jdbc:postgresql://{late('aws', 'RdsInstance', s.database.identifier, 'Address')}:5432/{n}"
    db_secret = f"{n}-database"
    cm = f"{n}-jvm-config"
    env: list[dict[str, Any]] = [_env_field("KUBE_POD_NAME", "metadata.name")]
    if n == "bitbucket":
        env += [
            _env_value("SERVER_PROXY_NAME", p.host),
            _env_value("SERVER_PROXY_PORT", 443),
            _env_value("SERVER_SCHEME", "https"),
            _env_value("SERVER_CONTEXT_PATH", p.context_path),
            _env_value("SERVER_SECURE", "true"),
            _env_value("JDBC_DRIVER", "org.postgresql.Driver"),
            _env_value("JDBC_URL", jdbc),
            _env_secret("JDBC_USER", db_secret, "username"),
            _env_secret("JDBC_PASSWORD", db_secret, "password"),
            _env_value("DB_POOL_SIZE_MAX", p.pool_max),
            _env_value("BITBUCKET_SHARED_HOME", SHARED_HOME),
        ]
    else:
        env += [
            _env_value("ATL_PROXY_NAME", p.host),
            _env_value("ATL_PROXY_PORT", 443),
            _env_value("ATL_TOMCAT_SCHEME", "https"),
            _env_value("ATL_TOMCAT_CONTEXTPATH", p.context_path),
            _env_value("ATL_TOMCAT_SECURE", "true"),
            _env_value("ATL_DB_DRIVER", "org.postgresql.Driver"),
            _env_value("ATL_DB_TYPE", "postgres72" if n == "jira" else "postgresql"),
            _env_value("ATL_JDBC_URL", jdbc),
            _env_secret("ATL_JDBC_USER", db_secret, "username"),
            _env_secret("ATL_JDBC_PASSWORD", db_secret, "password"),
            _env_value("ATL_DB_POOLMAXSIZE", p.pool_max),
            _env_value(f"{n.upper()}_SHARED_HOME", SHARED_HOME),
        ]
    env += [_env_cm("JVM_MINIMUM_MEMORY", cm, "min_heap"), _env_cm("JVM_MAXIMUM_MEMORY", cm, "max_heap")]
    if p.code_cache:
        env.append(_env_cm("JVM_RESERVED_CODE_CACHE_SIZE", cm, "reserved_code_cache"))
    env.append(_env_cm("JVM_SUPPORT_RECOMMENDED_ARGS", cm, "additional_jvm_args"))
    if n == "jira":
        env += [
            _env_value("CLUSTERED", "true"),
            _env_field("JIRA_NODE_ID", "metadata.name"),
            _env_field("EHCACHE_LISTENER_HOSTNAME", "status.podIP"),
            _env_value("EHCACHE_LISTENER_PORT", PORTS["jira"]["ehcache"]),
            _env_value("EHCACHE_OBJECT_PORT", PORTS["jira"]["ehcacheobject"]),
        ]
    elif n == "confluence":
        env += [
            _env_field("KUBERNETES_NAMESPACE", "metadata.namespace"),
            _env_value("HAZELCAST_KUBERNETES_SERVICE_NAME", f"{n}-cluster"),
            _env_value("HAZELCAST_KUBERNETES_SERVICE_PORT", PORTS[n]["hazelcast"]),
            _env_value("ATL_CLUSTER_TYPE", "kubernetes"),
            _env_value("ATL_CLUSTER_NAME", n),
            _env_field("ATL_CLUSTER_NODE_NAME", "metadata.name"),
        ]
    else:
        env += [
            _env_field("KUBERNETES_NAMESPACE", "metadata.namespace"),
            _env_value("HAZELCAST_KUBERNETES_SERVICE_NAME", f"{n}-cluster"),
            _env_value("HAZELCAST_NETWORK_KUBERNETES", "true"),
            _env_value("HAZELCAST_PORT", PORTS[n]["hazelcast"]),
            _env_secret("HAZELCAST_GROUP_NAME", f"{n}-clustering", "name"),
            _env_secret("HAZELCAST_GROUP_PASSWORD", f"{n}-clustering", "password"),
        ]
        if p.opensearch:
            env += [
                _env_value("SEARCH_ENABLED", "false"),
                _env_value(
                    "PLUGIN_SEARCH_CONFIG_BASEURL", f"http://{n}-opensearch:{PORTS['opensearch']['http']}"
                ),
            ]
        if p.ssh_host:
            env.append(_env_value("PLUGIN_SSH_BASEURL", f"ssh://{p.ssh_host}/"))
    return env


def _ebs_claim(name: str, storage_class: str, size: str) -> dict[str, Any]:
    """A ReadWriteOnce volumeClaimTemplate: one EBS volume per pod, pinned to that pod's zone."""
    return {
        "metadata": {"name": name},
        "spec": {
            "accessModes": ["ReadWriteOnce"],
            "storageClassName": storage_class,
            "resources": {"requests": {"storage": size}},
        },
    }


def _statefulset(s: _spec.SpecView, p: _spec.ProductView, jvm_hash: str, shared_claim: str) -> Resource:
    n, st, ns = p.name, s.name, p.namespace
    sel = selector(n)
    ports = PORTS[n]
    resources: dict[str, Any] = {
        "requests": {"cpu": p.cpu, "memory": p.memory},
        "limits": {"memory": p.memory_limit},
    }
    if p.cpu_limit:
        resources["limits"]["cpu"] = p.cpu_limit
    container = {
        "name": n,
        "image": f"{p.image}:{p.version}",
        "imagePullPolicy": "IfNotPresent",
        "ports": [{"name": k, "containerPort": v, "protocol": "TCP"} for k, v in ports.items()],
        "readinessProbe": {
            "httpGet": {"path": f"{p.context_path}/status", "port": ports["http"]},
            "initialDelaySeconds": 10,
            "periodSeconds": 5,
            "timeoutSeconds": 1,
            "failureThreshold": _READINESS_FAILURES[n],
        },
        "resources": resources,
        "env": _product_env(s, p),
        "volumeMounts": [
            {"name": "local-home", "mountPath": f"{_HOME}/{n}"},
            {"name": "shared-home", "mountPath": SHARED_HOME},
        ],
        "lifecycle": {"preStop": {"exec": {"command": ["sh", "-c", "/shutdown-wait.sh"]}}},
    }
    return _k8s(
        "StatefulSet",
        _meta(st, n, ns, n),
        depends=(
            _key("ConfigMap", f"{n}-jvm-config", ns),
            _key("Secret", f"{n}-database", ns),
            _key("PersistentVolumeClaim", shared_claim, ns),
            _key("Service", f"{n}-cluster", ns),
        ),
        spec={
            "replicas": p.replicas,
            "serviceName": f"{n}-cluster",
            "podManagementPolicy": "OrderedReady",
            "selector": {"matchLabels": sel},
            "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}},
            "template": {
                "metadata": {"labels": _labels(st, n), "annotations": {"checksum/config-jvm": jvm_hash}},
                "spec": {
                    "serviceAccountName": n,
                    "terminationGracePeriodSeconds": _GRACE[n],
                    "priorityClassName": _PRIORITY_APP,
                    "securityContext": {"fsGroup": _FS_GROUP[n], "fsGroupChangePolicy": "OnRootMismatch"},
                    **_anti_affinity_and_spread(sel),
                    "containers": [container],
                    "volumes": [
                        {"name": "shared-home", "persistentVolumeClaim": {"claimName": shared_claim}}
                    ],
                },
            },
            "volumeClaimTemplates": [_ebs_claim("local-home", p.local_home_class, p.local_home_size)],
        },
        note=f"{p.replicas} × {n} {p.version}: {p.cpu} CPU, {p.memory} (request = limit), heap {p.max_heap}",
    )


def _synchrony(s: _spec.SpecView, p: _spec.ProductView, aux: _spec.AuxView) -> list[Resource]:
    st, ns, comp = s.name, p.namespace, "synchrony"
    name = f"{p.name}-synchrony"
    sel = selector(p.name, comp)
    sp = PORTS["synchrony"]
    db_secret = f"{p.name}-database"
    jdbc = f"jdbc:postgresql://{late('aws', 'RdsInstance', s.database.identifier, 'Address')}:5432/{p.name}"
    container = {
        "name": "synchrony",
        "image": f"{p.image}:{p.version}",
        "command": ["/scripts/start-synchrony.sh"],
        "ports": [{"name": k, "containerPort": v, "protocol": "TCP"} for k, v in sp.items()],
        "readinessProbe": {
            "httpGet": {"path": "/synchrony/heartbeat", "port": sp["http"]},
            "initialDelaySeconds": 5,
            "periodSeconds": 1,
            "failureThreshold": 10,
        },
        "resources": _resources(aux),
        "env": [
            _env_value("CLUSTER_JOIN_TYPE", "kubernetes"),
            _env_field("KUBERNETES_NAMESPACE", "metadata.namespace"),
            _env_value("HAZELCAST_KUBERNETES_SERVICE_NAME", f"{name}-cluster"),
            _env_value("HAZELCAST_KUBERNETES_SERVICE_PORT", sp["hazelcast"]),
            _env_value("SYNCHRONY_BIND", "0.0.0.0"),
            _env_value("SYNCHRONY_SERVICE_URL", f"https://{p.host}/synchrony"),
            _env_value("JDBC_URL", jdbc),
            _env_secret("JDBC_USER", db_secret, "username"),
            _env_secret("JDBC_PASSWORD", db_secret, "password"),
            _env_value("JVM_MINIMUM_MEMORY", "1g"),
            _env_value("JVM_MAXIMUM_MEMORY", "2g"),
        ],
    }
    return [
        _k8s(
            "Service",
            _meta(st, f"{name}-cluster", ns, p.name, comp),
            spec={
                "clusterIP": "None",
                "publishNotReadyAddresses": True,
                "selector": sel,
                "ports": [{"name": k, "port": sp[k], "targetPort": k} for k in ("hazelcast", "cluster")],
            },
        ),
        _k8s(
            "Service",
            _meta(st, name, ns, p.name, comp),
            spec={
                "type": "ClusterIP",
                "selector": sel,
                "ports": [{"name": "http", "port": 80, "targetPort": "http"}],
            },
        ),
        _k8s(
            "StatefulSet",
            _meta(st, name, ns, p.name, comp),
            spec={
                "replicas": aux.replicas,
                "serviceName": f"{name}-cluster",
                "selector": {"matchLabels": sel},
                "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}},
                "template": {
                    "metadata": {"labels": _labels(st, p.name, comp)},
                    "spec": {
                        "serviceAccountName": p.name,
                        "terminationGracePeriodSeconds": _GRACE["synchrony"],
                        "priorityClassName": _PRIORITY_AUX,
                        **_anti_affinity_and_spread(sel),
                        "containers": [container],
                    },
                },
            },
        ),
        _k8s(
            "PodDisruptionBudget",
            _meta(st, name, ns, p.name, comp),
            spec={"maxUnavailable": 1, "selector": {"matchLabels": sel}},
        ),
        _k8s(
            "Ingress",
            _meta(
                st,
                name,
                ns,
                p.name,
                comp,
                annotations={
                    **_sticky(p.name),
                    "nginx.ingress.kubernetes.io/proxy-read-timeout": "3600",
                    "nginx.ingress.kubernetes.io/proxy-send-timeout": "3600",
                    "nginx.ingress.kubernetes.io/proxy-http-version": "1.1",
                },
            ),
            spec=_ingress_spec(s, p, name, "/synchrony"),
            note="Synchrony websockets: HTTP/1.1 upgrade, 1 h timeouts, sticky",
        ),
    ]


def _resources(aux: _spec.AuxView) -> dict[str, Any]:
    limits = {"memory": aux.memory_limit}
    if aux.cpu_limit:
        limits["cpu"] = aux.cpu_limit
    return {"requests": {"cpu": aux.cpu, "memory": aux.memory}, "limits": limits}


def _sticky(product: str) -> dict[str, str]:
    return {
        "nginx.ingress.kubernetes.io/affinity": "cookie",
        "nginx.ingress.kubernetes.io/affinity-mode": "persistent",
        "nginx.ingress.kubernetes.io/session-cookie-name": f"ATLROUTE_{product.upper()}",
        "nginx.ingress.kubernetes.io/session-cookie-max-age": "28800",
    }


def _ingress_spec(s: _spec.SpecView, p: _spec.ProductView, service: str, path: str) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "ingressClassName": s.ingress_class,
        "rules": [
            {
                "host": p.host,
                "http": {
                    "paths": [
                        {
                            "path": path,
                            "pathType": "Prefix",
                            "backend": {"service": {"name": service, "port": {"number": 80}}},
                        }
                    ]
                },
            }
        ],
    }
    if s.ingress_tls_secret:
        spec["tls"] = [{"hosts": [p.host], "secretName": s.ingress_tls_secret}]
    return spec


def _opensearch(s: _spec.SpecView, p: _spec.ProductView, aux: _spec.AuxView) -> list[Resource]:
    st, ns, comp = s.name, p.namespace, "opensearch"
    name = f"{p.name}-opensearch"
    sel = selector(p.name, comp)
    op = PORTS["opensearch"]
    return [
        _k8s(
            "Service",
            _meta(st, name, ns, p.name, comp),
            spec={
                "type": "ClusterIP",
                "selector": sel,
                "ports": [{"name": "http", "port": op["http"], "targetPort": "http", "protocol": "TCP"}],
            },
        ),
        _k8s(
            "Service",
            _meta(st, f"{name}-cluster", ns, p.name, comp),
            spec={
                "clusterIP": "None",
                "publishNotReadyAddresses": True,
                "selector": sel,
                "ports": [
                    {
                        "name": "transport",
                        "port": op["transport"],
                        "targetPort": "transport",
                        "protocol": "TCP",
                    }
                ],
            },
        ),
        _k8s(
            "StatefulSet",
            _meta(st, name, ns, p.name, comp),
            spec={
                "replicas": aux.replicas,
                "serviceName": f"{name}-cluster",
                "selector": {"matchLabels": sel},
                "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}},
                "template": {
                    "metadata": {"labels": _labels(st, p.name, comp)},
                    "spec": {
                        "priorityClassName": _PRIORITY_AUX,
                        "terminationGracePeriodSeconds": 30,
                        **_anti_affinity_and_spread(sel),
                        "containers": [
                            {
                                "name": "opensearch",
                                "image": _OPENSEARCH_IMAGE,
                                "env": [
                                    _env_value("discovery.type", "single-node")
                                    if aux.replicas == 1
                                    else _env_value("discovery.seed_hosts", f"{name}-cluster"),
                                    _env_value("plugins.security.disabled", "true"),
                                    _env_value("OPENSEARCH_JAVA_OPTS", "-Xms512m -Xmx512m"),
                                ],
                                "ports": [
                                    {"name": k, "containerPort": v, "protocol": "TCP"} for k, v in op.items()
                                ],
                                "readinessProbe": {
                                    "httpGet": {"path": "/_cluster/health", "port": op["http"]},
                                    "periodSeconds": 5,
                                    "failureThreshold": 30,
                                },
                                "resources": _resources(aux),
                                "volumeMounts": [{"name": "data", "mountPath": "/usr/share/opensearch/data"}],
                            }
                        ],
                    },
                },
                "volumeClaimTemplates": [_ebs_claim("data", "gp3", aux.storage)],
            },
            note="OpenSearch for a clustered Bitbucket (its bundled search is off when clustered)",
        ),
        _k8s(
            "PodDisruptionBudget",
            _meta(st, name, ns, p.name, comp),
            spec={"maxUnavailable": 1, "selector": {"matchLabels": sel}},
        ),
    ]


def _bitbucket_nfs(s: _spec.SpecView, p: _spec.ProductView, aux: _spec.AuxView) -> list[Resource]:
    st, ns, comp = s.name, p.namespace, "nfs"
    name = f"{p.name}-nfs"
    sel = selector(p.name, comp)
    claim = f"{p.name}-shared-home"
    return [
        _k8s(
            "Service",
            _meta(st, name, ns, p.name, comp),
            spec={
                "type": "ClusterIP",
                "clusterIP": s.nfs_cluster_ip,
                "selector": sel,
                "ports": [{"name": "nfs", "port": 2049, "targetPort": "nfs", "protocol": "TCP"}],
            },
            note="fixed ClusterIP: the kubelet mounts NFS from the node, where cluster DNS does not resolve",
        ),
        _k8s(
            "StatefulSet",
            _meta(st, name, ns, p.name, comp),
            spec={
                "replicas": 1,
                "serviceName": name,
                "selector": {"matchLabels": sel},
                "template": {
                    "metadata": {"labels": _labels(st, p.name, comp)},
                    "spec": {
                        "priorityClassName": _PRIORITY_AUX,
                        "terminationGracePeriodSeconds": 30,
                        "containers": [
                            {
                                "name": "nfs-server",
                                "image": _NFS_IMAGE,
                                "env": [_env_value("SHARE_DIRECTORY", "/srv/nfs")],
                                "ports": [{"name": "nfs", "containerPort": 2049, "protocol": "TCP"}],
                                "securityContext": {"privileged": True},
                                "readinessProbe": {"tcpSocket": {"port": 2049}, "periodSeconds": 5},
                                "resources": _resources(aux),
                                "volumeMounts": [{"name": "data", "mountPath": "/srv/nfs"}],
                            }
                        ],
                    },
                },
                "volumeClaimTemplates": [_ebs_claim("data", "gp3", aux.storage)],
            },
            note="Bitbucket's dedicated NFS server (git needs low per-operation latency; EFS is too slow). "
            "One EBS volume in one zone: snapshot it",
        ),
        _k8s(
            "PersistentVolume",
            _meta(st, claim, "", p.name, "shared-home"),
            spec={
                "capacity": {"storage": aux.storage},
                "accessModes": ["ReadWriteMany"],
                "persistentVolumeReclaimPolicy": "Retain",
                "storageClassName": "",
                "mountOptions": [
                    "rw",
                    "lookupcache=pos",
                    "noatime",
                    "intr",
                    "_netdev",
                    "nfsvers=3",
                    "rsize=32768",
                    "wsize=32768",
                ],
                "nfs": {"server": s.nfs_cluster_ip, "path": "/"},
            },
        ),
        _k8s(
            "PersistentVolumeClaim",
            _meta(st, claim, ns, p.name, "shared-home"),
            spec={
                "accessModes": ["ReadWriteMany"],
                "storageClassName": "",
                "volumeName": claim,
                "resources": {"requests": {"storage": aux.storage}},
            },
        ),
    ]


def _product_objects(s: _spec.SpecView, p: _spec.ProductView) -> list[Resource]:
    n, st, ns = p.name, s.name, p.namespace
    out: list[Resource] = [_k8s("ServiceAccount", _meta(st, n, ns, n))]
    if n in ("confluence", "bitbucket"):
        out.append(
            _k8s(
                "Role",
                _meta(st, n, ns, n),
                rules=[{"apiGroups": [""], "resources": ["endpoints", "pods"], "verbs": ["get", "list"]}],
                note="Hazelcast discovery reads pods and endpoints of the namespace",
            )
        )
        out.append(
            _k8s(
                "RoleBinding",
                _meta(st, n, ns, n),
                roleRef={"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": n},
                subjects=[{"kind": "ServiceAccount", "name": n, "namespace": ns}],
            )
        )
    db_ref = s.database.master_password
    out.append(
        _k8s(
            "Secret",
            _meta(st, f"{n}-database", ns, n),
            type="Opaque",
            stringData={"username": s.database.master_username, "password": _placeholder(db_ref)},
            secret_refs={"password": db_ref} if db_ref else {"password": "generate"},
            note="DB credentials from a reference, resolved at apply time",
        )
    )
    out.append(
        _k8s(
            "Secret",
            _meta(st, f"{n}-admin", ns, n),
            type="Opaque",
            stringData={
                "username": _placeholder(p.admin_user_ref) if p.admin_user_ref else p.admin_user,
                "password": _placeholder(p.admin_password),
            },
            secret_refs={
                **({"username": p.admin_user_ref} if p.admin_user_ref else {}),
                "password": p.admin_password or "generate",
            },
            note="product admin credentials (REST checks, ZDU) from a reference",
        )
    )
    if n == "bitbucket":
        out.append(
            _k8s(
                "Secret",
                _meta(st, f"{n}-clustering", ns, n),
                type="Opaque",
                stringData={"name": f"{st}-{n}", "password": _placeholder(None)},
                secret_refs={"password": "generate"},
                note="Hazelcast group password, generated once",
            )
        )
    jvm = {"max_heap": p.max_heap, "min_heap": p.min_heap, "additional_jvm_args": _jvm_args(p)}
    if p.code_cache:
        jvm["reserved_code_cache"] = p.code_cache
    jvm_hash = hashlib.sha256(json.dumps(jvm, sort_keys=True).encode()).hexdigest()
    out.append(_k8s("ConfigMap", _meta(st, f"{n}-jvm-config", ns, n), data=jvm))
    if p.nfs is not None:
        out += _bitbucket_nfs(s, p, p.nfs)
        claim = f"{n}-shared-home"
    else:
        claim = f"{n}-shared-home"
        out.append(
            _k8s(
                "PersistentVolumeClaim",
                _meta(st, claim, ns, n, "shared-home"),
                spec={
                    "accessModes": ["ReadWriteMany"],
                    "storageClassName": "efs",
                    "resources": {"requests": {"storage": p.shared_home_size}},
                },
                note="shared home on EFS (ReadWriteMany)",
            )
        )
    ports = PORTS[n]
    svc_ports = [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}]
    if n == "bitbucket":
        svc_ports.append({"name": "ssh", "port": ports["ssh"], "targetPort": "ssh", "protocol": "TCP"})
    out.append(
        _k8s(
            "Service",
            _meta(st, n, ns, n),
            spec={"type": "ClusterIP", "selector": selector(n), "ports": svc_ports},
        )
    )
    out.append(
        _k8s(
            "Service",
            _meta(st, f"{n}-cluster", ns, n),
            spec={
                "clusterIP": "None",
                "publishNotReadyAddresses": True,
                "selector": selector(n),
                "ports": [
                    {"name": k, "port": ports[k], "targetPort": k, "protocol": "TCP"}
                    for k in _CLUSTER_PORTS[n]
                ],
            },
            note="headless: stable pod DNS names and clustering discovery (ready or not)",
        )
    )
    if p.ssh_port:
        annotations = {"service.beta.kubernetes.io/aws-load-balancer-type": "nlb"}
        if p.ssh_host:
            annotations["external-dns.alpha.kubernetes.io/hostname"] = p.ssh_host
        out.append(
            _k8s(
                "Service",
                _meta(st, f"{n}-ssh", ns, n, annotations=annotations),
                spec={
                    "type": "LoadBalancer",
                    "selector": selector(n),
                    "ports": [{"name": "ssh", "port": p.ssh_port, "targetPort": "ssh", "protocol": "TCP"}],
                },
                note=f"git over SSH on its own load balancer (port {p.ssh_port} → 7999)",
            )
        )
    out.append(_statefulset(s, p, jvm_hash, claim))
    out.append(
        _k8s(
            "PodDisruptionBudget",
            _meta(st, n, ns, n),
            spec={"maxUnavailable": 1, "selector": {"matchLabels": selector(n)}},
        )
    )
    out.append(
        _k8s(
            "Ingress",
            _meta(
                st,
                n,
                ns,
                n,
                annotations={
                    **_sticky(n),
                    "nginx.ingress.kubernetes.io/proxy-body-size": s.max_body_size,
                    "nginx.ingress.kubernetes.io/proxy-connect-timeout": "60",
                    "nginx.ingress.kubernetes.io/proxy-read-timeout": "60",
                    "nginx.ingress.kubernetes.io/proxy-send-timeout": "60",
                },
            ),
            spec=_ingress_spec(s, p, n, p.context_path or "/"),
            note="sticky sessions: nginx cookie affinity, mode persistent",
        )
    )
    if p.synchrony is not None:
        out += _synchrony(s, p, p.synchrony)
    if p.opensearch is not None:
        out += _opensearch(s, p, p.opensearch)
    return out


def _findings(s: _spec.SpecView, b: capbudget.ConnectionBudget) -> list[Finding]:
    out: list[Finding] = []
    if len(s.azs) < 2:
        out.append(Finding("blocker", "single-az", f"{len(s.azs)} availability zone given; HA needs ≥ 2"))
    for p in s.enabled:
        if p.name == "bitbucket" and p.shared_home == "efs":
            out.append(
                Finding(
                    "warning",
                    "bitbucket-on-efs",
                    "Bitbucket shared home on EFS: Atlassian requires a dedicated NFS server for "
                    "Bitbucket without Mesh (git needs low per-operation latency; EFS is too slow). "
                    "Set the Bitbucket shared home to nfs.",
                    {"product": "bitbucket"},
                )
            )
        if p.name == "bitbucket" and p.replicas > 1 and not p.opensearch:
            out.append(
                Finding(
                    "warning",
                    "bitbucket-search",
                    "a multi-node Bitbucket needs an external OpenSearch (bundled search is off when "
                    "clustered); OpenSearch is disabled",
                    {"product": "bitbucket"},
                )
            )
        heap = stackmod.jvm_bytes(p.max_heap) + (stackmod.jvm_bytes(p.code_cache) if p.code_cache else 0)
        if heap * 1.25 > stackmod.memory_bytes(p.memory):
            out.append(
                Finding(
                    "warning",
                    "heap-vs-memory",
                    f"{p.name}: heap {p.max_heap} + code cache {p.code_cache or '0'} leaves < 25 % of "
                    f"the {p.memory} container for metaspace, threads and native memory",
                    {"product": p.name},
                )
            )
    cpu_cap, gib_cap, _nodes = _cluster_capacity(s)
    need_cpu = sum((n + 1) * stackmod.cpu_millicores(c) for p in s.enabled for _w, n, c, _m in _workloads(p))
    need_mem = sum((n + 1) * stackmod.memory_bytes(m) for p in s.enabled for _w, n, _c, m in _workloads(p))
    if need_cpu > cpu_cap * 1000 or need_mem > gib_cap * 1024**3:
        out.append(
            Finding(
                "blocker",
                "cluster-too-small",
                f"the workloads with one surge pod each need {need_cpu / 1000:g} CPU and "
                f"{need_mem / 1024**3:.1f} GiB; the node groups at their max size hold {cpu_cap} CPU and "
                f"{gib_cap} GiB. Raise max_per_zone or use a bigger instance type.",
                {"need_cpu": need_cpu / 1000, "need_gib": need_mem / 1024**3, "cpu": cpu_cap, "gib": gib_cap},
            )
        )
    if s.network_policies and s.network_policy_engine not in ("vpc-cni", "calico"):
        out.append(
            Finding(
                "blocker",
                "no-network-policy-engine",
                "NetworkPolicies are wanted but no engine is selected: without one they are "
                "silently not enforced. Use the VPC CNI's network policy support or Calico.",
                {"engine": s.network_policy_engine},
            )
        )
    if not b.fits:
        out.append(
            Finding(
                "blocker",
                "connection-budget",
                b.explain(),
                {
                    "need": b.need,
                    "max_connections": b.max_connections,
                    "instance_class": b.instance_class,
                    "per_product": dict(b.per_product),
                    "surge": b.surge,
                    "reserve": b.reserve,
                    "bigger_class": b.bigger_class,
                    "pool_max_that_fits": b.pool_max_that_fits,
                },
            )
        )
    return out


def build(spec: stackmod.StackSpec) -> DesiredState:
    """Everything ``spec`` (a ``StackSpec`` or the same mapping) needs, in dependency order. Pure.

    Returns AWS resources (VPC/subnet lookups, IAM roles, security groups, EKS cluster, node groups per
    zone, add-ons, EFS + mount targets, RDS subnet/parameter groups and instance, CloudFront) and
    Kubernetes objects (cluster add-ons, per namespace quota/limits/NetworkPolicies, per product RBAC,
    Secrets from references, JVM ConfigMap, claims, Services, StatefulSet, PDB, Ingress), plus findings
    known without observing (Bitbucket on EFS, connection budget, NetworkPolicy engine, single AZ).
    """
    s = _spec.view(spec)
    b = _budget.budget(s)
    resources = _aws_resources(s, b.max_connections)
    resources += databases.resources(s)  # product databases: after RDS, before any StatefulSet
    resources += _cluster_objects(s)
    namespaces: dict[str, list[_spec.ProductView]] = {}
    for p in s.enabled:
        namespaces.setdefault(p.namespace, []).append(p)
    for ns, products in namespaces.items():
        resources += _namespace_objects(s, ns, products)
        for p in products:
            resources += _product_objects(s, p)
    resources += _cloudfront(s)
    facts = {
        "stack": s.name,
        "region": s.region,
        "azs": list(s.azs),
        "namespaces": list(namespaces),
        "ledger_namespace": next(iter(namespaces), "atlassian"),
        "products": {
            p.name: {
                "namespace": p.namespace,
                "replicas": p.replicas,
                "host": p.host,
                "shared_home": p.shared_home,
                "synchrony": p.synchrony,
                "version": p.version,
                "admin_secret": f"{p.name}-admin",
                "context_path": p.context_path,
                "http_port": PORTS[p.name]["http"],
            }
            for p in s.enabled
        },
        "budget": {
            "need": b.need,
            "max_connections": b.max_connections,
            "fits": b.fits,
            "instance_class": b.instance_class,
            "explain": b.explain(),
        },
        "network_policies": s.network_policies,
        "network_policy_engine": s.network_policy_engine,
        "cluster": s.name,
        "cdn": s.cdn_enabled,
    }
    return DesiredState(
        stack=s.name, resources=tuple(resources), findings=tuple(_findings(s, b)), facts=facts
    )
