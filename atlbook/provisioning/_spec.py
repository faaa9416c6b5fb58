"""A flat view of the parts of a :class:`~atlbook.stack.StackSpec` that provisioning reads.

:mod:`atlbook.stack` owns the schema; this module is the one place that knows how provisioning reads
it (and the few settings the schema does not have yet, with their defaults), so a renamed field is
fixed here and nowhere else. Secrets stay references (``env:NAME`` …): nothing here resolves them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from atlbook import stack as stackmod

__all__ = ["AuxView", "DatabaseView", "NodeGroupView", "ProductView", "SpecView", "view"]


@dataclasses.dataclass(frozen=True)
class NodeGroupView:
    """A managed node group, created once per zone (``<stack>-<name>-<az>``)."""

    name: str
    instance_types: tuple[str, ...]
    min_per_zone: int
    desired_per_zone: int
    max_per_zone: int
    disk_gib: int
    labels: Mapping[str, str]
    taints: tuple[tuple[str, str, str], ...]


@dataclasses.dataclass(frozen=True)
class AuxView:
    """An auxiliary workload of a product (Synchrony, the NFS server, OpenSearch)."""

    replicas: int
    cpu: str
    memory: str
    memory_limit: str
    cpu_limit: str | None
    storage: str


@dataclasses.dataclass(frozen=True)
class ProductView:
    """One product as provisioning reads it."""

    name: str
    enabled: bool
    replicas: int
    image: str
    version: str
    cpu: str
    memory: str
    memory_limit: str
    cpu_limit: str | None
    max_heap: str
    min_heap: str
    code_cache: str
    pool_max: int
    namespace: str
    host: str
    context_path: str
    shared_home: str
    """``efs`` or ``nfs``."""
    local_home_size: str
    local_home_class: str
    shared_home_size: str
    admin_user: str
    admin_user_ref: str | None
    """A secret reference when the admin user name itself is secret."""
    admin_password: str | None
    """A secret reference, never a value."""
    synchrony: AuxView | None
    nfs: AuxView | None
    opensearch: AuxView | None
    ssh_port: int | None
    ssh_host: str | None


@dataclasses.dataclass(frozen=True)
class DatabaseView:
    """The one shared RDS PostgreSQL instance."""

    identifier: str
    instance_class: str
    engine_version: str
    multi_az: bool
    backup_retention_days: int
    storage_gib: int
    master_username: str
    master_password: str | None
    """A secret reference, never a value."""
    reserved_connections: int
    deletion_protection: bool


@dataclasses.dataclass(frozen=True)
class SpecView:
    """Everything provisioning reads from a stack description."""

    name: str
    region: str
    azs: tuple[str, ...]
    vpc_id: str | None
    vpc_tags: Mapping[str, str]
    eks_version: str
    cluster_role_arn: str | None
    node_role_arn: str | None
    node_groups: tuple[NodeGroupView, ...]
    products: Mapping[str, ProductView]
    database: DatabaseView
    efs_throughput_mode: str
    efs_provisioned_mibps: float | None
    ingress_host: str
    ingress_class: str
    ingress_tls_secret: str | None
    max_body_size: str
    stickiness: bool
    cdn_enabled: bool
    static_paths: tuple[str, ...]
    network_policies: bool
    network_policy_engine: str
    """``vpc-cni`` (EKS add-on with network policy on), ``calico`` (must already run) or ``none``."""
    nfs_cluster_ip: str
    service_cidr: str
    tags: Mapping[str, str]

    @property
    def enabled(self) -> list[ProductView]:
        """Enabled products in catalogue order."""
        return [p for p in self.products.values() if p.enabled]


#: Settings the stack schema does not carry (yet), with the values provisioning uses.
EKS_VERSION = "1.33"
SERVICE_CIDR = "172.20.0.0/16"
NFS_CLUSTER_IP = "172.20.2.3"
RESERVED_CONNECTIONS = 10


def _aux(resources: stackmod.ResourcesSpec, replicas: int, storage: str) -> AuxView:
    return AuxView(
        replicas=replicas,
        cpu=str(resources.requests.cpu),
        memory=str(resources.requests.memory),
        memory_limit=str(resources.limits.memory or resources.requests.memory),
        cpu_limit=resources.limits.cpu,
        storage=storage,
    )


def _product(spec: stackmod.StackSpec, name: stackmod.ProductName) -> ProductView:
    p: stackmod.ProductSpec = getattr(spec.products, name)
    admin_user = "admin"
    admin_user_ref = admin_password = None
    if p.admin is not None:
        if isinstance(p.admin.username, stackmod.SecretRef):
            admin_user_ref = str(p.admin.username)
        else:
            admin_user = p.admin.username
        admin_password = str(p.admin.password)
    synchrony = nfs = opensearch = None
    ssh_port = ssh_host = None
    shared = "efs"
    if isinstance(p, stackmod.ConfluenceSpec) and p.synchrony.enabled:
        synchrony = _aux(p.synchrony.resources, p.synchrony.replicas, "")
    if isinstance(p, stackmod.BitbucketSpec):
        shared = spec.storage.bitbucket_shared_home
        if shared == "nfs":
            nfs = _aux(p.nfs.resources, 1, p.nfs.storage)
        if p.opensearch.enabled:
            opensearch = _aux(p.opensearch.resources, p.opensearch.replicas, p.opensearch.storage)
        if p.ssh.enabled:
            ssh_port, ssh_host = p.ssh.port, p.ssh.host
    return ProductView(
        name=name,
        enabled=p.enabled,
        replicas=p.replicas,
        image=p.image,
        version=p.version,
        cpu=str(p.resources.requests.cpu),
        memory=str(p.resources.requests.memory),
        memory_limit=str(p.resources.limits.memory or p.resources.requests.memory),
        cpu_limit=p.resources.limits.cpu,
        max_heap=p.jvm.max_heap,
        min_heap=p.jvm.min_heap,
        code_cache=p.jvm.reserved_code_cache or "",
        pool_max=p.db_pool_max,
        namespace=spec.namespace_of(name),
        host=spec.ingress.host,
        context_path=p.context_path,
        shared_home=shared,
        local_home_size=spec.storage.local_home.size,
        local_home_class=spec.storage.local_home.storage_class,
        shared_home_size=spec.storage.shared_home.size,
        admin_user=admin_user,
        admin_user_ref=admin_user_ref,
        admin_password=admin_password,
        synchrony=synchrony,
        nfs=nfs,
        opensearch=opensearch,
        ssh_port=ssh_port,
        ssh_host=ssh_host,
    )


def view(spec: stackmod.StackSpec) -> SpecView:
    """Read a validated ``StackSpec`` into a :class:`SpecView`. Refuses nothing (validation is done)."""
    db = spec.database
    products: dict[str, ProductView] = {name: _product(spec, name) for name in stackmod.PRODUCT_NAMES}
    return SpecView(
        name=spec.name,
        region=spec.region,
        azs=tuple(spec.zones),
        vpc_id=None,
        vpc_tags={},
        eks_version=EKS_VERSION,
        cluster_role_arn=None,
        node_role_arn=None,
        node_groups=tuple(
            NodeGroupView(
                name=g.name,
                instance_types=tuple(g.instance_types),
                min_per_zone=g.min_per_zone,
                desired_per_zone=g.desired_per_zone,
                max_per_zone=g.max_per_zone,
                disk_gib=g.disk_gib,
                labels=dict(g.labels),
                taints=tuple((t.key, t.value, t.effect) for t in g.taints),
            )
            for g in spec.node_groups
        ),
        products=products,
        database=DatabaseView(
            identifier=f"{spec.name}-db",
            instance_class=db.instance_class,
            engine_version=db.engine_version,
            multi_az=db.multi_az,
            backup_retention_days=db.backup_retention_days,
            storage_gib=db.allocated_storage_gib,
            master_username=db.master_username,
            master_password=str(db.master_password),
            reserved_connections=RESERVED_CONNECTIONS,
            deletion_protection=True,
        ),
        efs_throughput_mode=spec.storage.shared_home.throughput_mode,
        efs_provisioned_mibps=spec.storage.shared_home.provisioned_mibps,
        ingress_host=spec.ingress.host,
        ingress_class=spec.ingress.class_name,
        ingress_tls_secret=spec.ingress.tls_secret,
        max_body_size=spec.ingress.max_body_size,
        stickiness=spec.ingress.stickiness,
        cdn_enabled=spec.cdn.enabled,
        static_paths=tuple(spec.cdn.static_paths),
        network_policies=spec.network_policy.enabled,
        network_policy_engine="vpc-cni",
        nfs_cluster_ip=NFS_CLUSTER_IP,
        service_cidr=SERVICE_CIDR,
        tags=dict(spec.tags),
    )
