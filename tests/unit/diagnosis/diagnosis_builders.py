"""Hand-built evidence: a healthy HA stack, and mutators that give it the symptoms of each sandbox fault.

The mutators reproduce what the sandbox (and a real cluster) shows for the fault, in the shape
:mod:`atlbook.diagnosis.collect` records it — so the unit tests exercise checks and ranking without any
server.
"""

from __future__ import annotations

import datetime as dt

from atlbook.diagnosis import evidence as ev

NOW = dt.datetime(2026, 11, 26, 12, 0, tzinfo=dt.UTC)
ZONES = ("us-east-1a", "us-east-1b", "us-east-1c")
VERSIONS = {"jira": "11.3.1", "confluence": "10.2.7", "bitbucket": "9.4.16"}
GIB = float(1 << 30)


def minutes_ago(m: float) -> dt.datetime:
    return NOW - dt.timedelta(minutes=m)


def series(name: str, values: list[float]) -> ev.MetricSeries:
    n = len(values)
    return ev.MetricSeries(name, [(minutes_ago(n - i), v) for i, v in enumerate(values)])


def worker(zone: str, i: int) -> str:
    return f"ip-10-0-{ZONES.index(zone) + 1}-{10 + i}.ec2.internal"


def healthy(workers_per_zone: int = 1) -> ev.Evidence:
    """Jira, Confluence, Bitbucket × 2 over three zones; everything green."""
    e = ev.Evidence(namespace="atlassian", window=ev.Window(minutes_ago(60), NOW))
    for zone in ZONES:
        for i in range(workers_per_zone):
            e.nodes.append(ev.Node(worker(zone, i), zone=zone, nodegroup="apps", instance_type="m5.2xlarge"))
    e.nodegroups.append(ev.NodeGroup("apps", desired=3 * workers_per_zone, zones=list(ZONES)))
    placement = {"jira": (0, 1), "confluence": (1, 2), "bitbucket": (2, 0)}
    for product, zones in placement.items():
        version = VERSIONS[product]
        e.products[product] = ev.ProductExpectation(replicas=2, pool_max=20, version=version)
        rev = f"{product}-5d8f7c"
        e.statefulsets.append(
            ev.StatefulSet(
                product,
                2,
                2,
                2,
                rev,
                rev,
                {"app.kubernetes.io/name": product},
                image=f"atlassian/{product}:{version}",
            )
        )
        e.pdbs.append(ev.Pdb(product, {"app.kubernetes.io/name": product}, 1, 2, 1, 2))
        names = []
        for ordinal, zone_index in enumerate(zones):
            name = f"{product}-{ordinal}"
            names.append(name)
            e.pods.append(
                ev.Pod(
                    name,
                    namespace="atlassian",
                    product=product,
                    node_name=worker(ZONES[zone_index], 0),
                    labels={"app.kubernetes.io/name": product, "controller-revision-hash": rev},
                    containers=[ev.ContainerState(product, image=f"atlassian/{product}:{version}")],
                    owner=product,
                    revision=rev,
                    created=minutes_ago(600),
                    ready_since=minutes_ago(590),
                )
            )
        e.endpoints.append(ev.Endpoints(product, ready=list(names)))
        e.services.append(product)
        view = [ev.ClusterNodeView(n, "ACTIVE", True, version) for n in names]
        for name in names:
            node = ev.ProductNode(
                name, product, 200, "RUNNING", version=version, zdu_state="STABLE", cluster_nodes=list(view)
            )
            if product == "jira":
                other = [n for n in names if n != name]
                node.index = ev.IndexSummary(name, True, 15234, 15234, {o: 0 for o in other})
            e.product_nodes[name] = node
    e.pods.append(
        ev.Pod("ingress-nginx-controller-7d9f", node_name=worker(ZONES[0], 0), owner="ingress-nginx")
    )
    e.ingresses.append(
        ev.Ingress(
            "atlassian",
            {
                "nginx.ingress.kubernetes.io/affinity": "cookie",
                "nginx.ingress.kubernetes.io/affinity-mode": "persistent",
            },
            ["jira", "confluence", "bitbucket"],
            "nginx",
        )
    )
    e.network_policies += [
        ev.NetworkPolicy("default-deny", {}, False, ["Ingress", "Egress"], 0, 0),
        ev.NetworkPolicy("jira-allow", {"app.kubernetes.io/name": "jira"}, False, ["Ingress"], 2, 0),
    ]
    e.pvcs += [ev.Pvc(f"local-home-{p.name}", "Bound", "gp3") for p in e.product_pods()]
    e.events.append(
        ev.Event("Pulled", "Container image already present", "Normal", "Pod", "jira-0", 1, minutes_ago(30))
    )
    e.rds = ev.Rds(
        "sandbox-db",
        "available",
        "db.t3.large",
        True,
        20.0,
        {
            "CPUUtilization": series("CPUUtilization", [12, 14, 11, 13, 12, 15]),
            "DatabaseConnections": series("DatabaseConnections", [24, 24, 25, 24, 24, 24]),
            "FreeStorageSpace": series("FreeStorageSpace", [15 * GIB] * 6),
        },
    )
    e.efs.append(
        ev.Efs(
            "fs-0a1b2c3d",
            "sandbox-shared-home",
            "elastic",
            "available",
            3 * (1 << 30),
            {
                "BurstCreditBalance": series("BurstCreditBalance", [2.31e12] * 6),
                "PercentIOLimit": series("PercentIOLimit", [3, 4, 3, 5, 4, 3]),
            },
        )
    )
    e.db = ev.DbActivity(
        100, 3, [ev.DbConnections(p.name, "idle", 4, str(p.product)) for p in e.product_pods()]
    )
    return e


# --- fault symptoms -------------------------------------------------------------------------------


def _unready(e: ev.Evidence, pod_name: str) -> ev.Pod:
    pod = e.pod(pod_name)
    assert pod is not None
    pod.ready = False
    pod.ready_since = minutes_ago(5)
    for c in pod.containers:
        c.ready = False
    for sts in e.statefulsets:
        if sts.name == pod.owner:
            sts.ready_replicas -= 1
    for pdb in e.pdbs:
        if pdb.name == pod.product:
            pdb.current_healthy -= 1
            pdb.disruptions_allowed = max(0, pdb.current_healthy - pdb.desired_healthy)
    for ep in e.endpoints:
        if pod_name in ep.ready:
            ep.ready.remove(pod_name)
            ep.not_ready.append(pod_name)
    return pod


def node_lost(e: ev.Evidence, node_name: str | None = None) -> ev.Evidence:
    """The worker stops reporting: Ready=Unknown; its pods not Ready and unreachable through the proxy."""
    node_name = node_name or worker(ZONES[1], 0)
    node = e.node(node_name)
    assert node is not None
    node.ready, node.not_ready_reason, node.transition = None, "NodeStatusUnknown", minutes_ago(6)
    for pod in [p for p in e.pods if p.node_name == node_name]:
        _unready(e, pod.name)
        if pod.product:
            e.product_nodes.pop(pod.name, None)
            e.source_errors.append(ev.SourceError(f"product:{pod.name}:/status", "K8sUnavailable: HTTP 503"))
            for other in e.product_nodes.values():
                for entry in other.cluster_nodes or []:
                    if entry.node_id == pod.name:
                        entry.alive = False
    e.events.append(
        ev.Event(
            "NodeNotReady",
            f"Node {node_name} status is now: NodeNotReady",
            "Warning",
            "Node",
            node_name,
            1,
            minutes_ago(6),
        )
    )
    return e


def az_outage(e: ev.Evidence, zone: str = ZONES[0]) -> ev.Evidence:
    """Every worker of ``zone`` lost."""
    for node in [n for n in e.nodes if n.zone == zone]:
        node_lost(e, node.name)
    return e


def pod_oom(e: ev.Evidence, pod_name: str = "jira-1") -> ev.Evidence:
    """The container was OOM-killed (twice) and is backing off; the node restarts (STARTING)."""
    pod = _unready(e, pod_name)
    c = pod.containers[0]
    c.restart_count, c.last_reason, c.last_exit_code, c.last_finished = 2, "OOMKilled", 137, minutes_ago(2)
    c.state, c.reason = "waiting", "CrashLoopBackOff"
    e.product_nodes.pop(pod_name, None)
    e.events.append(
        ev.Event(
            "OOMKilling",
            "Memory cgroup out of memory: Killed process in container jira",
            "Warning",
            "Pod",
            pod_name,
            2,
            minutes_ago(2),
        )
    )
    e.logs[pod_name] = ev.LogTail(
        pod_name,
        "jira",
        ["container jira started"],
        ["2026-11-26 11:57:59,001+0000 main INFO [c.a.j.startup] Starting Jira"],
    )
    return e


def crash_loop(e: ev.Evidence, pod_name: str = "jira-1") -> ev.Evidence:
    """``/status`` ERROR, not Ready, FATAL lines in the log (the sandbox's crash-loop)."""
    _unready(e, pod_name)
    node = e.product_nodes[pod_name]
    node.state, node.http_status, node.cluster_nodes = "ERROR", 500, None
    for other in e.product_nodes.values():
        for entry in other.cluster_nodes or []:
            if entry.node_id == pod_name:
                entry.alive = False
    e.logs[pod_name] = ev.LogTail(
        pod_name,
        "jira",
        [
            "2026-11-26 11:58:00,000+0000 main INFO  [c.a.jira.startup.JiraStartupLogger] Starting "
            "Jira Software 11.3.1",
            "2026-11-26 11:58:03,000+0000 main FATAL [c.a.jira.startup.JiraStartupLogger] "
            "Unrecoverable error during "
            "startup: java.lang.IllegalStateException: Failed to initialise the shared home (exit code 1)",
        ],
    )
    return e


def efs_exhausted(e: ev.Evidence) -> ev.Evidence:
    """Burst credits at 0 and I/O at the limit."""
    fs = e.efs[0]
    fs.metrics["BurstCreditBalance"] = series("BurstCreditBalance", [4e11, 2e11, 5e10, 1e9, 0.0, 0.0])
    fs.metrics["PercentIOLimit"] = series("PercentIOLimit", [40, 70, 95, 100, 100, 100])
    return e


def db_pool_exhausted(e: ev.Evidence) -> ev.Evidence:
    """Every product node holds its whole pool; the server is at max_connections; nodes log pool timeouts."""
    assert e.db is not None
    e.db.connections = [
        ev.DbConnections(p.name, "idle in transaction", 16, str(p.product)) for p in e.product_pods()
    ]
    e.db.connections.append(ev.DbConnections("", "idle", 1, "postgres"))
    assert e.rds is not None
    e.rds.metrics["DatabaseConnections"] = series("DatabaseConnections", [24, 40, 70, 97, 97, 97])
    e.rds.metrics["CPUUtilization"] = series("CPUUtilization", [12, 20, 35, 48, 50, 51])
    for pod in e.product_pods():
        e.logs[pod.name] = ev.LogTail(
            pod.name,
            str(pod.product),
            [
                "2026-11-26 11:59:00,000+0000 main ERROR [c.a.db.ConnectionPool] Cannot get a "
                "connection, pool error "
                "Timeout waiting for idle object, borrowMaxWait=PT30S (FATAL: sorry, too many "
                "clients already)"
            ],
        )
    return e


def index_corrupt(e: ev.Evidence, pod_name: str = "jira-0") -> ev.Evidence:
    """The node's index counts drift from the database; its replication queue grows; its log says so."""
    idx = e.product_nodes[pod_name].index
    assert idx is not None
    idx.count_in_index = (idx.count_in_database or 0) - 137
    idx.queue_sizes = {k: 387 for k in idx.queue_sizes}
    e.logs[pod_name] = ev.LogTail(
        pod_name,
        "jira",
        [
            "2026-11-26 11:59:00,000+0000 main ERROR [c.a.j.issue.index.DefaultIndexManager] Index "
            "consistency check "
            "failed: issue index count differs from the database (15097 in index, 15234 in database)"
        ],
    )
    return e


def bad_upgrade(e: ev.Evidence, product: str = "jira", version: str = "11.3.2") -> ev.Evidence:
    """The StatefulSet rolled its highest pod to a version that never becomes ready."""
    sts = next(s for s in e.statefulsets if s.name == product)
    sts.update_revision, sts.updated_replicas = f"{product}-9a1b2c", 1
    sts.image = f"atlassian/{product}:{version}"
    pod = _unready(e, f"{product}-1")
    pod.revision = sts.update_revision
    pod.labels["controller-revision-hash"] = sts.update_revision
    pod.containers[0].image = sts.image
    node = e.product_nodes[pod.name]
    node.state, node.http_status, node.version, node.cluster_nodes = "ERROR", 500, version, None
    e.logs[pod.name] = ev.LogTail(
        pod.name,
        product,
        [
            "2026-11-26 11:58:10,000+0000 main ERROR [c.a.plugin.manager.DefaultPluginManager] "
            "Plugin system failed to "
            "start: upgrade task for build 100200 failed (com.atlassian.upgrade.UpgradeTaskFailedException)",
            "2026-11-26 11:58:10,500+0000 main FATAL [c.a.jira.startup.JiraStartupLogger] Jira "
            f"Software {version} "
            "failed to start: node is unhealthy",
        ],
    )
    return e


FAULTS = {
    "node-lost": (node_lost, "k8s.node-not-ready"),
    "pod-oom": (pod_oom, "k8s.pod-oomkilled"),
    "crash-loop": (crash_loop, "k8s.pod-crash-loop"),
    "efs-credits-exhausted": (efs_exhausted, "aws.efs-burst-credits"),
    "db-pool-exhausted": (db_pool_exhausted, "database.max-connections"),
    "index-corrupt": (index_corrupt, "product.jira-index-drift"),
    "bad-upgrade": (bad_upgrade, "product.zdu-stuck"),
}
"""Fault → (symptom mutator, the check that must rank first). ``az-outage`` needs two workers per zone."""
