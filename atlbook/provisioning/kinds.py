"""The Kubernetes kinds provisioning manages: API version, typed model, API class, method stem, scope.

One table, so observe (one list per kind per namespace), apply (create / patch) and the model test
(every manifest deserializes into the official typed model) agree on every kind.
"""

from __future__ import annotations

import dataclasses

__all__ = ["AWS_UPDATABLE", "KINDS", "ORDER", "Kind"]


@dataclasses.dataclass(frozen=True)
class Kind:
    """How to reach one kind through the official ``kubernetes`` client."""

    api_version: str
    model: str
    """Typed model class name in ``kubernetes.client`` (``V1StatefulSet``)."""
    api: str
    """API class name in ``kubernetes.client`` (``AppsV1Api``)."""
    stem: str
    """Method stem: ``create_namespaced_<stem>`` / ``list_<stem>`` …"""
    namespaced: bool


KINDS: dict[str, Kind] = {
    "Namespace": Kind("v1", "V1Namespace", "CoreV1Api", "namespace", False),
    "PriorityClass": Kind(
        "scheduling.k8s.io/v1", "V1PriorityClass", "SchedulingV1Api", "priority_class", False
    ),
    "StorageClass": Kind("storage.k8s.io/v1", "V1StorageClass", "StorageV1Api", "storage_class", False),
    "ClusterRole": Kind(
        "rbac.authorization.k8s.io/v1", "V1ClusterRole", "RbacAuthorizationV1Api", "cluster_role", False
    ),
    "ClusterRoleBinding": Kind(
        "rbac.authorization.k8s.io/v1",
        "V1ClusterRoleBinding",
        "RbacAuthorizationV1Api",
        "cluster_role_binding",
        False,
    ),
    "IngressClass": Kind("networking.k8s.io/v1", "V1IngressClass", "NetworkingV1Api", "ingress_class", False),
    "PersistentVolume": Kind("v1", "V1PersistentVolume", "CoreV1Api", "persistent_volume", False),
    "ResourceQuota": Kind("v1", "V1ResourceQuota", "CoreV1Api", "resource_quota", True),
    "LimitRange": Kind("v1", "V1LimitRange", "CoreV1Api", "limit_range", True),
    "NetworkPolicy": Kind(
        "networking.k8s.io/v1", "V1NetworkPolicy", "NetworkingV1Api", "network_policy", True
    ),
    "ServiceAccount": Kind("v1", "V1ServiceAccount", "CoreV1Api", "service_account", True),
    "Role": Kind("rbac.authorization.k8s.io/v1", "V1Role", "RbacAuthorizationV1Api", "role", True),
    "RoleBinding": Kind(
        "rbac.authorization.k8s.io/v1", "V1RoleBinding", "RbacAuthorizationV1Api", "role_binding", True
    ),
    "Secret": Kind("v1", "V1Secret", "CoreV1Api", "secret", True),
    "ConfigMap": Kind("v1", "V1ConfigMap", "CoreV1Api", "config_map", True),
    "PersistentVolumeClaim": Kind(
        "v1", "V1PersistentVolumeClaim", "CoreV1Api", "persistent_volume_claim", True
    ),
    "Service": Kind("v1", "V1Service", "CoreV1Api", "service", True),
    "Deployment": Kind("apps/v1", "V1Deployment", "AppsV1Api", "deployment", True),
    "StatefulSet": Kind("apps/v1", "V1StatefulSet", "AppsV1Api", "stateful_set", True),
    "PodDisruptionBudget": Kind(
        "policy/v1", "V1PodDisruptionBudget", "PolicyV1Api", "pod_disruption_budget", True
    ),
    "Ingress": Kind("networking.k8s.io/v1", "V1Ingress", "NetworkingV1Api", "ingress", True),
}

#: Creation order (dependencies first); also the file order of an export.
ORDER: tuple[str, ...] = tuple(KINDS)

#: AWS kinds: the fields compared (and changed in place); everything else is set at creation only.
AWS_UPDATABLE: dict[str, tuple[str, ...]] = {
    "Vpc": (),
    "Subnets": (),
    "IamRole": ("ManagedPolicyArns",),
    "SecurityGroup": ("Ingress",),
    "EksCluster": ("version",),
    "EksNodegroup": ("scalingConfig", "labels"),
    "EksAddon": ("configurationValues",),
    "EfsFileSystem": ("ThroughputMode",),
    "EfsMountTarget": (),
    "RdsSubnetGroup": (),
    "RdsParameterGroup": ("Parameters",),
    "RdsInstance": ("DBInstanceClass", "MultiAZ", "BackupRetentionPeriod", "DeletionProtection"),
    "CloudFrontDistribution": ("Origin",),
}
