"""Known log signatures, and sources that could not be read.

Log tails are fetched only for pods in trouble (see :mod:`atlbook.diagnosis.collect`) and are already
redacted; a finding quotes at most three matching lines per pod.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from atlbook.diagnosis.checks._base import Check, Finding, check
from atlbook.diagnosis.evidence import Evidence, Severity

__all__ = ["SIGNATURES", "Signature", "source_failed"]


@dataclass(frozen=True)
class Signature:
    """A known log signature: the check it becomes and the pattern that finds it."""

    id: str
    title: str
    pattern: re.Pattern[str]
    severity: Severity
    remedy: str
    weight: int


SIGNATURES: tuple[Signature, ...] = (
    Signature(
        "logs.out-of-memory",
        "JVM OutOfMemoryError in the log",
        re.compile(r"java\.lang\.OutOfMemoryError|OutOfMemoryError: (Java heap space|GC overhead|Metaspace)"),
        Severity.ERROR,
        "The heap is too small for the load (or leaks): raise -Xmx with the container memory (20-capacity), "
        "collect a heap dump on the next occurrence.",
        45,
    ),
    Signature(
        "logs.too-many-open-files",
        "Too many open files",
        re.compile(r"(?i)too many open files"),
        Severity.ERROR,
        "Raise the file-descriptor limit (ulimit -n in the image / container runtime) and look for leaked "
        "index readers or sockets.",
        50,
    ),
    Signature(
        "logs.db-pool-timeout",
        "Database pool timeouts in the log",
        re.compile(
            r"(?i)(timeout waiting for idle object|connection is not available, request timed out"
            r"|cannot get a connection, pool error|pool (is )?exhausted|unable to acquire jdbc connection"
            r"|remaining connection slots are reserved|too many clients already|could not get jdbc connection"
            r"|timed out waiting for a connection)"
        ),
        Severity.ERROR,
        "The node cannot get a DB connection: see the database findings (max_connections, pool saturation, "
        "long transactions).",
        30,
    ),
    Signature(
        "logs.cache-replication-failure",
        "Cluster cache replication failures",
        re.compile(
            r"(?i)(cache replication (failed|error)|error replicating cache|failed to replicate cache"
            r"|ClusterCacheReplication\w*Exception|RMI.*(ConnectException|connection refused)"
            r"|unable to (send|deliver) cache (invalidation|replication))"
        ),
        Severity.WARNING,
        "Nodes cannot reach each other on the cache ports (Jira 40001/40011, Hazelcast 5701): check the "
        "NetworkPolicy node↔node rule and the peers' health.",
        35,
    ),
    Signature(
        "logs.hazelcast-split-brain",
        "Hazelcast split-brain",
        re.compile(r"(?i)(split[- ]brain|merging (this )?(node|cluster)|hazelcast.*(merge|partition.*lost))"),
        Severity.ERROR,
        "The cluster split in two: restore node↔node connectivity (NetworkPolicy, zone links), then "
        "restart the "
        "smaller side one node at a time.",
        55,
    ),
    Signature(
        "logs.index-corruption",
        "Index corruption in the log",
        re.compile(
            r"(?i)(CorruptIndexException|index (is |appears )?corrupt|IndexFormatTooOldException"
            r"|index consistency check failed|index count differs|index.*(inconsistent|out of sync|drift)"
            r"|lock obtain timed out.*index)"
        ),
        Severity.ERROR,
        "Run 50-index-recovery on this node (snapshot from a healthy node, restart, verify counts).",
        40,
    ),
)
"""The signatures, each registered as its own check ``logs.*``."""


def _make(sig: Signature) -> Check:
    def run(self: Check, ev: Evidence) -> Iterator[Finding]:
        for pod_name, tail in sorted(ev.logs.items()):
            hits = [line for line in (*tail.previous, *tail.lines) if sig.pattern.search(line)]
            if not hits:
                continue
            pod = ev.pod(pod_name)
            yield self.new(
                sig.severity,
                f"pod/{pod_name}",
                f"{pod_name} logs {sig.title.lower()} ({len(hits)} lines)",
                [f"pod/{pod_name}: {line}" for line in hits[-3:]],
                product=pod.product if pod else None,
                pods=(pod_name,),
                workers=(pod.node_name,) if pod and pod.node_name else (),
            )

    return check(
        sig.id,
        layer="logs",
        title=sig.title,
        severity=str(sig.severity),
        remedy=sig.remedy,
        weight=sig.weight,
    )(run)


for _sig in SIGNATURES:
    _make(_sig)


@check(
    "collect.source-failed",
    layer="collection",
    title="Evidence source could not be read",
    severity="error for the pod/node lists (the diagnosis is blind without them), warning otherwise",
    remedy="Check the identity's RBAC (rbac/diagnose-role.yaml), the network path and the service; the "
    "findings above are only as complete as the sources read.",
    weight=5,
)
def source_failed(self: Check, ev: Evidence) -> Iterator[Finding]:
    for err in ev.source_errors:
        blind = err.source in {"k8s:pods", "k8s:nodes"}
        pods: tuple[str, ...] = ()
        if err.source.startswith(("product:", "log:")):
            pods = (err.source.split(":")[1],)
        pod = ev.pod(pods[0]) if pods else None
        yield self.new(
            Severity.ERROR if blind else Severity.WARNING,
            f"source/{err.source}",
            f"could not read {err.source}",
            [f"{err.source}: {err.message}"],
            product=pod.product if pod else None,
            pods=pods,
            workers=(pod.node_name,) if pod and pod.node_name else (),
        )
