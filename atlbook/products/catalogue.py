"""What atlbook knows about Jira, Confluence and Bitbucket Data Center on Kubernetes — data, no I/O.

Values come from the official Helm charts (``atlassian/data-center-helm-charts`` 2.0.9) and Atlassian's
REST docs, as summarised in ``reference/atlassian-dc.md`` (section numbers in the comments). Where a
fact is marked **[verify]** there, the catalogue keeps both candidates in order of preference and the
product client tries them in turn.

ZDU eligibility (:func:`zdu_eligible`) encodes each product's rule:

- **Jira**: within one platform line (same major version, e.g. 9.4 → 9.12; not 9.x → 10.x); Jira ZDU
  exists from 7.3 (reference §8.2; "Zero downtime upgrade FAQs").
- **Bitbucket**: bug-fix releases only — same major.minor, higher patch (7.9.0 → 7.9.x); ZDU exists from
  7.9 (reference §8.4).
- **Confluence** ("Upgrade Confluence without downtime", confluence.atlassian.com/doc/…-1027127923):
  7.8 and earlier: never; 7.9–7.13: bug-fix only (7.12.0 → 7.12.2); 7.14 and later: bug-fix, or the
  *next* feature version within the same platform (7.14.x → 7.15.x; not 7.14 → 7.17; not 7.19 → 8.0).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from types import MappingProxyType
from typing import Literal

from atlbook import errors

__all__ = [
    "CATALOGUE",
    "PRODUCTS",
    "Product",
    "ProductInfo",
    "Version",
    "ZduPaths",
    "get",
    "labels",
    "parse_version",
    "selector",
    "zdu_eligible",
]

Product = Literal["jira", "confluence", "bitbucket"]
PRODUCTS: tuple[Product, ...] = ("jira", "confluence", "bitbucket")


@dataclasses.dataclass(frozen=True)
class ZduPaths:
    """REST paths of one product's zero-downtime-upgrade API; each mutation has candidates in order."""

    state: str
    """GET: cluster upgrade state (+ build info)."""
    cluster: str
    """GET: cluster overview with nodes (Confluence/Bitbucket ZDU plugin) — equals ``state`` for Jira."""
    start: tuple[str, ...]
    cancel: tuple[str, ...]
    approve: tuple[str, ...]
    """Finalize / run upgrade tasks."""
    retry: tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class ProductInfo:
    """One product's ports, paths, chart names and defaults."""

    name: Product
    display: str
    http_port: int
    """Container HTTP port (``<product>.ports.http``), §3.2."""
    cluster_ports: Mapping[str, int]
    """Node ↔ node ports (Ehcache for Jira, Hazelcast for Confluence/Bitbucket), §9."""
    extra_ports: Mapping[str, int]
    """Other ports the pods serve (Bitbucket SSH)."""
    image: str
    """Image repository (Docker Hub), §3.2."""
    health_path: str
    """Unauthenticated health endpoint; JSON ``{"state": ...}``; RUNNING is the only healthy state, §8.1."""
    cluster_nodes_path: str
    """Admin endpoint listing the cluster's nodes (shape differs per product; see the client)."""
    zdu: ZduPaths
    local_home: str
    """Local-home mount path (``local-home`` volumeClaimTemplate)."""
    shared_home: str
    clustering_env: tuple[str, ...]
    """Container env the chart sets when clustering is enabled (§3.3)."""
    pool_env: tuple[str, str] | None
    """(env var, default) for the DB pool max size in the image, §11; ``None`` when set differently."""
    default_pool_max: int
    """Image default pool max size, §11."""
    termination_grace_seconds: int
    """``<product>.shutdown.terminationGracePeriodSeconds`` default, §3.2."""
    readiness_failure_threshold: int
    fs_group: int
    needs_discovery_rbac: bool
    """Hazelcast discovery through the Kubernetes API (get/list pods, endpoints) — §6."""
    shared_home_storage: Literal["efs", "nfs"]
    """Recommended shared home: EFS for Jira/Confluence, a dedicated NFS server for Bitbucket (§1, §5)."""

    @property
    def all_ports(self) -> dict[str, int]:
        """Every named port: http, cluster ports, extra ports."""
        return {"http": self.http_port, **self.cluster_ports, **self.extra_ports}


_SHARED = "/var/atlassian/application-data/shared-home"

_ZDU_PLUGIN = ZduPaths(
    state="/rest/zdu/state",
    cluster="/rest/zdu/cluster",
    # [verify] reference §8.3/§8.4: the Bitbucket developer reference and DCAPT use /rest/zdu/<action>;
    # the Confluence docs (7.13–9.2) say /rest/zdu/cluster/zdu/<action> and a Bitbucket 7.9 page says
    # /rest/zdu/cluster/<action>. Try the plugin shape first, then the documented variants.
    start=("/rest/zdu/start", "/rest/zdu/cluster/zdu/start", "/rest/zdu/cluster/start"),
    cancel=("/rest/zdu/cancel", "/rest/zdu/cluster/zdu/cancel", "/rest/zdu/cluster/cancel"),
    approve=("/rest/zdu/approve", "/rest/zdu/cluster/zdu/approve", "/rest/zdu/cluster/approve"),
    # [verify] no primary source names the retry path for the plugin; Jira's name is assumed.
    retry=("/rest/zdu/retryUpgrade", "/rest/zdu/cluster/zdu/retryUpgrade"),
)

CATALOGUE: Mapping[Product, ProductInfo] = MappingProxyType(
    {
        "jira": ProductInfo(
            name="jira",
            display="Jira Software",
            http_port=8080,
            cluster_ports=MappingProxyType({"ehcache": 40001, "ehcacheobject": 40011}),
            extra_ports=MappingProxyType({}),
            image="atlassian/jira-software",
            health_path="/status",
            cluster_nodes_path="/rest/api/2/cluster/nodes",
            zdu=ZduPaths(
                state="/rest/api/2/cluster/zdu/state",
                cluster="/rest/api/2/cluster/zdu/state",
                start=("/rest/api/2/cluster/zdu/start",),
                cancel=("/rest/api/2/cluster/zdu/cancel",),
                approve=("/rest/api/2/cluster/zdu/approve",),
                retry=("/rest/api/2/cluster/zdu/retryUpgrade",),
            ),
            local_home="/var/atlassian/application-data/jira",
            shared_home=_SHARED,
            clustering_env=(
                "CLUSTERED",
                "JIRA_NODE_ID",
                "EHCACHE_LISTENER_HOSTNAME",
                "EHCACHE_LISTENER_PORT",
                "EHCACHE_OBJECT_PORT",
            ),
            pool_env=("ATL_DB_POOLMAXSIZE", "100"),
            default_pool_max=100,
            termination_grace_seconds=30,
            readiness_failure_threshold=10,
            fs_group=2001,
            needs_discovery_rbac=False,
            shared_home_storage="efs",
        ),
        "confluence": ProductInfo(
            name="confluence",
            display="Confluence",
            http_port=8090,
            # 5701 in the chart (HAZELCAST_KUBERNETES_SERVICE_PORT); VM installs use 5801 (§9).
            cluster_ports=MappingProxyType({"hazelcast": 5701}),
            extra_ports=MappingProxyType({}),
            image="atlassian/confluence",
            health_path="/status",
            cluster_nodes_path="/rest/zdu/cluster",
            zdu=dataclasses.replace(_ZDU_PLUGIN, state="/rest/zdu/cluster"),
            local_home="/var/atlassian/application-data/confluence",
            shared_home=_SHARED,
            clustering_env=(
                "KUBERNETES_NAMESPACE",
                "HAZELCAST_KUBERNETES_SERVICE_NAME",
                "HAZELCAST_KUBERNETES_SERVICE_PORT",
                "ATL_CLUSTER_TYPE",
                "ATL_CLUSTER_NAME",
            ),
            pool_env=("ATL_DB_POOLMAXSIZE", "100"),
            default_pool_max=100,
            termination_grace_seconds=25,
            readiness_failure_threshold=6,
            fs_group=2002,
            needs_discovery_rbac=True,
            shared_home_storage="efs",
        ),
        "bitbucket": ProductInfo(
            name="bitbucket",
            display="Bitbucket",
            http_port=7990,
            cluster_ports=MappingProxyType({"hazelcast": 5701}),
            extra_ports=MappingProxyType({"ssh": 7999}),
            image="atlassian/bitbucket",
            health_path="/status",
            cluster_nodes_path="/rest/zdu/cluster",
            zdu=_ZDU_PLUGIN,
            local_home="/var/atlassian/application-data/bitbucket",
            shared_home=_SHARED,
            clustering_env=(
                "KUBERNETES_NAMESPACE",
                "HAZELCAST_KUBERNETES_SERVICE_NAME",
                "HAZELCAST_NETWORK_KUBERNETES",
                "HAZELCAST_PORT",
                "HAZELCAST_GROUP_NAME",
                "HAZELCAST_GROUP_PASSWORD",
            ),
            pool_env=None,  # db.pool.size.max in bitbucket.properties (HikariCP), default 80
            default_pool_max=80,
            termination_grace_seconds=35,
            readiness_failure_threshold=60,
            fs_group=2003,
            needs_discovery_rbac=True,
            shared_home_storage="nfs",
        ),
    }
)


def get(product: str) -> ProductInfo:
    """The :class:`ProductInfo` of ``product``; refuses (``ConfigError``) an unknown name."""
    try:
        return CATALOGUE[product]  # type: ignore[index]
    except KeyError:
        raise errors.ConfigError(f"unknown product {product!r} (known: {', '.join(PRODUCTS)})") from None


def labels(product: str, instance: str | None = None) -> dict[str, str]:
    """The chart's selector labels: ``app.kubernetes.io/name`` = product, ``app.kubernetes.io/instance``.

    ``instance`` is the Helm release name; the charts default it to the product name.
    """
    info = get(product)
    return {"app.kubernetes.io/name": info.name, "app.kubernetes.io/instance": instance or info.name}


def selector(product: str, instance: str | None = None) -> str:
    """:func:`labels` as a label selector string."""
    return ",".join(f"{k}={v}" for k, v in labels(product, instance).items())


@dataclasses.dataclass(frozen=True, order=True)
class Version:
    """A product version's numeric part; ``tag`` keeps what was written (e.g. ``9.12.3-jdk17``)."""

    major: int
    minor: int
    patch: int
    tag: str = dataclasses.field(compare=False)

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}.{self.patch}"


_VERSION_RE = re.compile(r"^v?(\d+)\.(\d+)(?:\.(\d+))?")


def parse_version(text: str) -> Version:
    """``"9.12.3"``, ``"9.12"``, ``"9.12.3-jdk17"`` → :class:`Version`; refuses (``ConfigError``) others."""
    match = _VERSION_RE.match(str(text).strip())
    if not match:
        raise errors.ConfigError(f"{text!r} is not a product version like 9.12.3")
    major, minor, patch = match.groups()
    return Version(int(major), int(minor), int(patch or 0), str(text))


def zdu_eligible(product: str, from_version: str, to_version: str) -> tuple[bool, str]:
    """Whether ``from_version`` → ``to_version`` can be a zero-downtime (rolling) upgrade, and why.

    Refuses (False) a downgrade, the same version, and anything outside the product's rule (module
    docstring). Raises ``ConfigError`` for an unknown product or an unparsable version.
    """
    info = get(product)
    old, new = parse_version(from_version), parse_version(to_version)
    where = f"{info.display} {old} → {new}"
    if new == old:
        return False, f"{where}: same version, nothing to upgrade"
    if new < old:
        return False, f"{where}: a downgrade is not an upgrade; ZDU cannot go back (restore instead)"
    if info.name == "jira":
        if (old.major, old.minor) < (7, 3):
            return False, f"{where}: zero-downtime upgrade needs Jira 7.3 or later on the cluster"
        if new.major != old.major:
            return False, f"{where}: crosses platform lines ({old.major}.x → {new.major}.x); needs downtime"
        return True, f"{where}: same platform line ({old.major}.x): zero-downtime upgrade allowed"
    if info.name == "bitbucket":
        if (old.major, old.minor) < (7, 9):
            return False, f"{where}: rolling upgrades need Bitbucket 7.9 or later on the cluster"
        if (new.major, new.minor) != (old.major, old.minor):
            return False, f"{where}: only bug-fix upgrades ({old.major}.{old.minor}.x) are zero-downtime"
        return True, f"{where}: bug-fix upgrade within {old.major}.{old.minor}: zero-downtime upgrade allowed"
    # Confluence
    if (old.major, old.minor) <= (7, 8):
        return False, f"{where}: rolling upgrades need Confluence 7.9 or later on the cluster"
    if (new.major, new.minor) == (old.major, old.minor):
        return True, f"{where}: bug-fix upgrade within {old.major}.{old.minor}: zero-downtime upgrade allowed"
    if (old.major, old.minor) <= (7, 13):
        return (
            False,
            f"{where}: from Confluence {old.major}.{old.minor}, only bug-fix upgrades are zero-downtime",
        )
    if new.major != old.major:
        return False, f"{where}: a platform upgrade ({old.major}.x → {new.major}.x) needs downtime"
    if new.minor != old.minor + 1:
        return False, (
            f"{where}: spans more than one feature version; only {old.major}.{old.minor + 1}.x is "
            "zero-downtime from here"
        )
    return True, f"{where}: next feature version: zero-downtime upgrade allowed"
