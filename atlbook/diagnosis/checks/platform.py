"""Platform checks: RDS and the database's own view (connections, locks, transactions), EFS, network.

Thresholds are module constants so tests and the report can quote them.
"""

from __future__ import annotations

from collections.abc import Iterator

from atlbook.diagnosis.checks._base import Check, Finding, check
from atlbook.diagnosis.evidence import Evidence, Severity

__all__ = [
    "EFS_CREDITS_EXHAUSTED_BYTES",
    "EFS_CREDITS_LOW_BYTES",
    "EFS_IO_LIMIT_PERCENT",
    "LONG_TRANSACTION_SECONDS",
    "MAX_CONNECTIONS_CRITICAL",
    "MAX_CONNECTIONS_WARNING",
    "POOL_ERROR",
    "POOL_WARNING",
    "RDS_CPU_ERROR",
    "RDS_CPU_WARNING",
    "RDS_FREE_STORAGE_ERROR",
    "RDS_FREE_STORAGE_WARNING",
    "STICKY_ANNOTATIONS",
    "connection_budget",
    "efs_burst_credits",
    "ingress_stickiness",
    "long_transactions",
    "max_connections",
    "no_default_deny",
    "pool_saturation",
    "rds_cpu",
    "rds_status",
    "rds_storage",
    "waiting_locks",
]

_REFUSED = ("too many clients", "too many connections", "remaining connection slots")
MAX_CONNECTIONS_WARNING = 0.80
"""Share of usable ``max_connections`` (minus superuser reserve) in use that is a warning."""
MAX_CONNECTIONS_CRITICAL = 0.95
POOL_WARNING = 0.80
"""Share of a node's pool max in use (Atlassian: keep Jira under 80 %, Confluence under 70 %)."""
POOL_ERROR = 0.95
RDS_CPU_WARNING = 80.0
RDS_CPU_ERROR = 90.0
RDS_FREE_STORAGE_WARNING = 0.10
"""Free storage as a share of allocated."""
RDS_FREE_STORAGE_ERROR = 0.05
EFS_CREDITS_EXHAUSTED_BYTES = 1 << 30
"""Below 1 GiB of burst credits the file system runs at its (tiny) baseline: exhausted."""
EFS_CREDITS_LOW_BYTES = 2.1 * (1 << 40) * 0.10
"""10 % of the 2.1 TiB a new file system starts with."""
EFS_IO_LIMIT_PERCENT = 95.0
LONG_TRANSACTION_SECONDS = 300.0
STICKY_ANNOTATIONS: dict[str, str] = {
    "nginx.ingress.kubernetes.io/affinity": "cookie",
    "nginx.ingress.kubernetes.io/affinity-mode": "persistent",
}
"""The nginx annotations the Atlassian charts emit for session stickiness."""


# --- database ---------------------------------------------------------------------------------------


@check(
    "database.max-connections",
    layer="database",
    title="Database connections near max_connections",
    severity="critical at 95 % of usable max_connections, warning at 80 %",
    remedy="New connections are (about to be) refused for every product: find the application holding them "
    "(evidence), stop the leak or restart it; then size pools vs max_connections with 20-capacity.",
    weight=80,
)
def max_connections(self: Check, ev: Evidence) -> Iterator[Finding]:
    db = ev.db
    if db is None:
        refused = [
            e
            for e in ev.source_errors
            if e.source == "database" and any(m in e.message.lower() for m in _REFUSED)
        ]
        if refused:
            lines = [f"the database refused atlbook's own connection: {refused[0].message}"]
            series = ev.rds.metrics.get("DatabaseConnections") if ev.rds else None
            if series is not None and series.points:
                lines.append(
                    f"RDS DatabaseConnections: latest {series.latest:.0f}, max in window {series.maximum:.0f}"
                )
            yield self.new(
                Severity.CRITICAL,
                "database/connections",
                "the database refuses new connections (max_connections reached)",
                lines,
            )
        return
    if db.max_connections <= 0:
        return
    usable = max(1, db.max_connections - db.reserved_connections)
    share = db.total / usable
    if share < MAX_CONNECTIONS_WARNING:
        return
    top = sorted(db.by_application().items(), key=lambda kv: -kv[1])[:6]
    lines = [
        f"{db.total} connections of max_connections {db.max_connections} "
        f"({db.reserved_connections} reserved): {share:.0%} of usable"
    ]
    lines.extend(f"application_name {app or '(none)'}: {n}" for app, n in top)
    states: dict[str, int] = {}
    for c in db.connections:
        states[c.state] = states.get(c.state, 0) + c.count
    lines.append("by state: " + ", ".join(f"{s or '-'} {n}" for s, n in sorted(states.items())))
    sev = Severity.CRITICAL if share >= MAX_CONNECTIONS_CRITICAL else Severity.WARNING
    pods = tuple(app for app, _ in top if ev.pod(app))
    yield self.new(
        sev,
        "database/connections",
        f"{db.total}/{db.max_connections} database connections in use",
        lines,
        pods=pods,
    )


@check(
    "database.pool-saturation",
    layer="database",
    title="Product node DB pool saturated",
    severity="error at 95 % of the node's pool max, warning at 80 %",
    remedy="The node waits for connections (pool timeouts): look for slow queries / long transactions; raise "
    "pool max only within the max_connections budget (20-capacity).",
    weight=60,
)
def pool_saturation(self: Check, ev: Evidence) -> Iterator[Finding]:
    if ev.db is None:
        return
    for app, count in sorted(ev.db.by_application().items()):
        pod = ev.pod(app)
        if pod is None or pod.product is None:
            continue
        expected = ev.products.get(pod.product)
        pool = expected.pool_max if expected else 100
        share = count / pool if pool else 0.0
        if share < POOL_WARNING:
            continue
        sev = Severity.ERROR if share >= POOL_ERROR else Severity.WARNING
        yield self.new(
            sev,
            f"pod/{app}",
            f"{app} uses {count} of its {pool} pool connections",
            [f"pg_stat_activity application_name={app}: {count} connections; pool max {pool} ({share:.0%})"],
            product=pod.product,
            pods=(app,),
            workers=(pod.node_name,) if pod.node_name else (),
        )


@check(
    "database.connection-budget",
    layer="database",
    title="Pools do not fit max_connections",
    severity="warning when pools could exceed max_connections and half of it is already in use; info "
    "otherwise",
    remedy="Σ nodes × pool max (+1 node surging during an upgrade) exceeds max_connections: lower pool sizes "
    "or raise max_connections (parameter group / instance class); plan with 20-capacity.",
    weight=30,
)
def connection_budget(self: Check, ev: Evidence) -> Iterator[Finding]:
    if ev.db is None or not ev.products:
        return
    need = sum((p.replicas + 1) * p.pool_max for p in ev.products.values())
    usable = ev.db.max_connections - ev.db.reserved_connections
    if need <= usable:
        return
    lines = [
        f"{name}: ({p.replicas} nodes + 1 surge) × pool {p.pool_max} = {(p.replicas + 1) * p.pool_max}"
        for name, p in sorted(ev.products.items())
    ]
    lines.append(f"total {need} > usable max_connections {usable}; in use now {ev.db.total}")
    yield self.new(
        Severity.WARNING if ev.db.total >= usable / 2 else Severity.INFO,
        "database/budget",
        f"pools need up to {need} connections, the server allows {usable}",
        lines,
    )


@check(
    "database.waiting-locks",
    layer="database",
    title="Sessions waiting on locks",
    severity="warning",
    remedy="Find the blocking session (pg_blocking_pids) — often a long transaction or an orphaned cluster "
    "lock after a killed node; terminate it only once understood.",
    weight=35,
)
def waiting_locks(self: Check, ev: Evidence) -> Iterator[Finding]:
    if ev.db and ev.db.waiting_locks:
        yield self.new(
            Severity.WARNING,
            "database/locks",
            f"{len(ev.db.waiting_locks)} sessions wait on locks",
            ev.db.waiting_locks[:8],
        )


@check(
    "database.long-transactions",
    layer="database",
    title="Long-running transactions",
    severity="warning",
    remedy="A transaction open for minutes holds locks and pool connections: identify the "
    "application and the "
    "query (pg_stat_activity), then fix or cancel it.",
    weight=35,
)
def long_transactions(self: Check, ev: Evidence) -> Iterator[Finding]:
    if ev.db is None:
        return
    longs = [(app, age) for app, age in ev.db.long_transactions if age >= LONG_TRANSACTION_SECONDS]
    if longs:
        yield self.new(
            Severity.WARNING,
            "database/transactions",
            f"{len(longs)} transactions open ≥ {LONG_TRANSACTION_SECONDS:.0f} s",
            [f"application_name {app or '(none)'}: open {age:.0f} s" for app, age in longs[:8]],
            pods=tuple(app for app, _ in longs if ev.pod(app)),
        )


# --- RDS ----------------------------------------------------------------------------------------------


@check(
    "aws.rds-status",
    layer="aws",
    title="RDS instance not available",
    severity="critical when stopped/failed/storage-full, error for other non-available states",
    remedy="Read the RDS events; a failover or maintenance passes by itself (Multi-AZ), storage-full needs "
    "more storage now.",
    weight=85,
)
def rds_status(self: Check, ev: Evidence) -> Iterator[Finding]:
    rds = ev.rds
    if rds is None or rds.status == "available":
        return
    critical = rds.status in {"stopped", "failed", "storage-full", "inaccessible-encryption-credentials"}
    yield self.new(
        Severity.CRITICAL if critical else Severity.ERROR,
        f"rds/{rds.identifier}",
        f"RDS {rds.identifier} is {rds.status}",
        [f"rds/{rds.identifier}: status {rds.status}"],
    )


@check(
    "aws.rds-cpu",
    layer="aws",
    title="RDS CPU high",
    severity="error at ≥ 90 % (mean of the last 5 points), warning at ≥ 80 %",
    remedy="Find the top queries (Performance Insights / pg_stat_statements); a reindex or a runaway job is "
    "the usual cause; scale the instance class if it is the steady load.",
    weight=50,
)
def rds_cpu(self: Check, ev: Evidence) -> Iterator[Finding]:
    if ev.rds is None:
        return
    series = ev.rds.metrics.get("CPUUtilization")
    if series is None or not series.points:
        return
    recent = [v for _, v in series.points[-5:]]
    mean = sum(recent) / len(recent)
    if mean < RDS_CPU_WARNING:
        return
    sev = Severity.ERROR if mean >= RDS_CPU_ERROR else Severity.WARNING
    yield self.new(
        sev,
        f"rds/{ev.rds.identifier}",
        f"RDS CPU at {mean:.0f} %",
        [
            f"CPUUtilization last {len(recent)}: {', '.join(f'{v:.0f}' for v in recent)} %; max in window "
            f"{series.maximum:.0f} %"
        ],
    )


@check(
    "aws.rds-storage",
    layer="aws",
    title="RDS free storage low",
    severity="error below 5 % of allocated, warning below 10 %",
    remedy="Increase allocated storage (or enable storage autoscaling) before the instance goes "
    "storage-full.",
    weight=55,
)
def rds_storage(self: Check, ev: Evidence) -> Iterator[Finding]:
    rds = ev.rds
    if rds is None or rds.allocated_storage_gib <= 0:
        return
    series = rds.metrics.get("FreeStorageSpace")
    if series is None or series.latest is None:
        return
    share = series.latest / (rds.allocated_storage_gib * (1 << 30))
    if share >= RDS_FREE_STORAGE_WARNING:
        return
    sev = Severity.ERROR if share < RDS_FREE_STORAGE_ERROR else Severity.WARNING
    yield self.new(
        sev,
        f"rds/{rds.identifier}",
        f"RDS has {share:.1%} storage free",
        [f"FreeStorageSpace {series.latest / (1 << 30):.1f} GiB of {rds.allocated_storage_gib:.0f} GiB"],
    )


# --- EFS ----------------------------------------------------------------------------------------------


@check(
    "aws.efs-burst-credits",
    layer="aws",
    title="EFS burst credits low or exhausted",
    severity="error when exhausted (< 1 GiB: throughput at baseline), warning when low (< 10 % of "
    "2.1 TiB) or "
    "PercentIOLimit ≥ 95 %",
    remedy="Switch the shared home to Elastic throughput (or Provisioned) now; avoid reindex/index-snapshot "
    "copies until credits recover. 10-provision sets the throughput mode.",
    weight=80,
)
def efs_burst_credits(self: Check, ev: Evidence) -> Iterator[Finding]:
    for fs in ev.efs:
        credits = fs.metrics.get("BurstCreditBalance")
        io = fs.metrics.get("PercentIOLimit")
        lines: list[str] = []
        sev: Severity | None = None
        if credits is not None and credits.latest is not None:
            latest = credits.latest
            trend = ""
            if credits.points and len(credits.points) > 1:
                trend = f" (from {credits.points[0][1] / (1 << 30):.1f} GiB at window start)"
            if latest < EFS_CREDITS_EXHAUSTED_BYTES:
                sev = Severity.ERROR
                lines.append(
                    f"efs/{fs.file_system_id}: BurstCreditBalance {latest / (1 << 30):.2f} GiB — "
                    f"exhausted{trend}"
                )
            elif latest < EFS_CREDITS_LOW_BYTES:
                sev = Severity.WARNING
                lines.append(
                    f"efs/{fs.file_system_id}: BurstCreditBalance {latest / (1 << 30):.1f} GiB — low{trend}"
                )
        if io is not None and io.maximum is not None and io.maximum >= EFS_IO_LIMIT_PERCENT:
            sev = max(sev or Severity.WARNING, Severity.WARNING)
            lines.append(f"efs/{fs.file_system_id}: PercentIOLimit max {io.maximum:.0f} %")
        if sev is None:
            continue
        lines.append(f"throughput mode {fs.throughput_mode}, size {fs.size_bytes / (1 << 30):.1f} GiB")
        metered = fs.metrics.get("MeteredIOBytes")
        permitted = fs.metrics.get("PermittedThroughput")
        if metered is not None and metered.latest is not None:
            lines.append(f"MeteredIOBytes last minute {metered.latest / (1 << 20):.0f} MiB")
        if permitted is not None and permitted.latest is not None:
            lines.append(f"PermittedThroughput {permitted.latest / (1 << 20):.1f} MiB/s")
        state = "exhausted" if sev >= Severity.ERROR else "low"
        yield self.new(
            sev,
            f"efs/{fs.file_system_id}",
            f"EFS {fs.name or fs.file_system_id} burst credits {state}: shared-home I/O throttled",
            lines,
        )


# --- network -------------------------------------------------------------------------------------------


@check(
    "network.ingress-no-stickiness",
    layer="network",
    title="Ingress without session stickiness",
    severity="warning",
    remedy="Users get logged out / lose websocket sessions: add nginx affinity=cookie, "
    "affinity-mode=persistent (10-provision renders them).",
    weight=30,
)
def ingress_stickiness(self: Check, ev: Evidence) -> Iterator[Finding]:
    product_services = {s.name for s in ev.statefulsets} | set(ev.products)
    for ing in ev.ingresses:
        routed = [s for s in ing.services if s in product_services]
        if not routed:
            continue
        missing = [f"{k}={v}" for k, v in STICKY_ANNOTATIONS.items() if ing.annotations.get(k) != v]
        if missing:
            yield self.new(
                Severity.WARNING,
                f"ingress/{ing.name}",
                f"ingress {ing.name} is not sticky",
                [f"ingress/{ing.name} → {', '.join(routed)}: missing {', '.join(missing)}"],
            )


@check(
    "network.no-default-deny",
    layer="network",
    title="Pods not covered by a default-deny NetworkPolicy",
    severity="warning",
    remedy="Apply the namespace's default-deny policy plus the allow rules (10-provision renders them).",
    weight=20,
)
def no_default_deny(self: Check, ev: Evidence) -> Iterator[Finding]:
    pods = [p for p in ev.product_pods() if not p.deleting]
    if not pods:
        return
    deny = [np for np in ev.network_policies if np.default_deny_ingress]
    if deny:
        return
    isolated = {
        p.name
        for p in pods
        for np in ev.network_policies
        if "Ingress" in np.policy_types and np.selects(p.labels)
    }
    uncovered = sorted(p.name for p in pods if p.name not in isolated)
    if uncovered:
        lines = [f"namespace {ev.namespace}: {len(ev.network_policies)} NetworkPolicies, none default-deny"]
        lines.append(f"pods accepting traffic from anywhere: {', '.join(uncovered)}")
        yield self.new(
            Severity.WARNING,
            f"namespace/{ev.namespace}",
            "no default-deny NetworkPolicy",
            lines,
            pods=tuple(uncovered),
        )
