"""The CloudWatch feeder: every simulated minute, one datapoint per metric for every EFS file system and
RDS instance moto holds, put through the sandbox's own CloudWatch (moto) so runbooks read them with
``get_metric_statistics`` / ``get_metric_data`` exactly as on AWS.

Metrics (namespace, dimension):

- ``AWS/EFS`` ``FileSystemId``: ``BurstCreditBalance`` (bytes; drains with metered I/O above the
  baseline, 0 under the ``efs-credits-exhausted`` fault; flat at the maximum in ``elastic`` /
  ``provisioned`` mode), ``PercentIOLimit`` (100 when exhausted), ``MeteredIOBytes`` (per minute).
- ``AWS/RDS`` ``DBInstanceIdentifier``: ``DatabaseConnections`` (client backends in the real
  PostgreSQL's ``pg_stat_activity``), ``CPUUtilization`` (%, grows with connections),
  ``FreeStorageSpace`` (bytes: allocated storage minus the real databases' size).

Datapoints carry wall-clock timestamps (runbooks ask for "the last N minutes" in wall time); the
simulated minute only sets how often they come. The feeder's calls use the access key
:data:`~atlbook.sandbox.audit.SANDBOX_CALLER`, so they never show in the audit log.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import boto3
from botocore.config import Config
from moto.efs.models import efs_backends
from moto.rds.models import rds_backends

from atlbook.sandbox.audit import SANDBOX_CALLER

__all__ = ["EFS_MAX_CREDITS", "CloudWatchFeeder", "FeederInputs"]

log = logging.getLogger(__name__)

EFS_MAX_CREDITS = 2.31e12
"""Starting (and maximum) EFS burst credit balance in bytes (2.1 TiB, as a new file system has)."""
_EFS_BASELINE_BYTES_PER_MIN = 50 * 1024 * 60  # 50 KiB/s baseline per GiB stored, small file system
_IO_PER_POD_BYTES_PER_MIN = 40 * 1024 * 1024


_FEEDER_CONFIG = Config(connect_timeout=2, read_timeout=5, retries={"max_attempts": 1})
"""A put that hangs must not stall the feed (botocore's defaults wait 60 s and retry): the next tick
puts fresh points anyway."""


@dataclass
class FeederInputs:
    """What the feeder reads from the rest of the sandbox (all callables; defaults are idle values)."""

    db_connections: Callable[[], int] = lambda: 0
    """Client connections in the real PostgreSQL right now."""
    db_size_bytes: Callable[[], int] = lambda: 0
    """Total size of the product databases."""
    product_pods: Callable[[], int] = lambda: 0
    """Running simulated product nodes (each adds shared-home I/O)."""
    efs_exhausted: Callable[[str], bool] = lambda fs_id: False
    """Whether the ``efs-credits-exhausted`` fault holds for this file system."""


@dataclass
class _EfsState:
    credits: float = EFS_MAX_CREDITS


@dataclass
class CloudWatchFeeder:
    """Puts the metrics every simulated minute (``interval_wall`` = 60 / time factor seconds)."""

    endpoint_url: str
    interval_wall: float
    inputs: FeederInputs = field(default_factory=FeederInputs)

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._efs: dict[str, _EfsState] = {}
        self._lock = threading.Lock()
        self._clients: dict[str, Any] = {}

    def _client(self, region: str) -> Any:
        if region not in self._clients:
            self._clients[region] = boto3.session.Session(
                aws_access_key_id=SANDBOX_CALLER, aws_secret_access_key="sandbox", region_name=region
            ).client("cloudwatch", endpoint_url=self.endpoint_url, config=_FEEDER_CONFIG)
        return self._clients[region]

    def start(self) -> None:
        """Feed in a daemon thread (a first round at once)."""
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="atlbook-cloudwatch-feeder", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop feeding."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def reset(self) -> None:
        """Forget credit balances (after an AWS reset)."""
        with self._lock:
            self._efs.clear()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.tick()
            except Exception:  # noqa: BLE001 - keep feeding; the next minute may work
                log.debug("cloudwatch feeder tick failed", exc_info=True)
            self._stop.wait(max(self.interval_wall, 0.05))

    def tick(self) -> int:
        """Put one datapoint per metric and resource now; returns how many resources were fed."""
        now = datetime.now(UTC)
        fed = 0
        pods = self.inputs.product_pods()
        for _account, regions in list(efs_backends.items()):
            for region, backend in list(regions.items()):
                for fs_id, fs in list(backend.file_systems_by_id.items()):
                    data = self._efs_metrics(fs_id, str(getattr(fs, "throughput_mode", "bursting")), pods)
                    self._put(region, "AWS/EFS", "FileSystemId", fs_id, data, now)
                    fed += 1
        conns = self.inputs.db_connections()
        for _acct, rds_regions in list(rds_backends.items()):
            for region, rds in list(rds_regions.items()):
                for db_id, db in list(rds.databases.items()):
                    allocated = float(getattr(db, "allocated_storage", 20) or 20) * 1024**3
                    data = {
                        "DatabaseConnections": ("Count", float(conns)),
                        "CPUUtilization": ("Percent", min(95.0, 3.0 + 0.4 * conns + 2.0 * pods)),
                        "FreeStorageSpace": ("Bytes", max(0.0, allocated - self.inputs.db_size_bytes())),
                    }
                    self._put(region, "AWS/RDS", "DBInstanceIdentifier", str(db_id), data, now)
                    fed += 1
        return fed

    def _efs_metrics(self, fs_id: str, mode: str, pods: int) -> dict[str, tuple[str, float]]:
        with self._lock:
            state = self._efs.setdefault(fs_id, _EfsState())
            io = float(_IO_PER_POD_BYTES_PER_MIN * pods)
            if self.inputs.efs_exhausted(fs_id):
                state.credits = 0.0
                return {
                    "BurstCreditBalance": ("Bytes", 0.0),
                    "PercentIOLimit": ("Percent", 100.0),
                    "MeteredIOBytes": ("Bytes", io),
                }
            if mode in ("elastic", "provisioned"):
                state.credits = EFS_MAX_CREDITS
            else:
                if state.credits <= 0.0:
                    state.credits = EFS_MAX_CREDITS * 0.5  # fault cleared: credits come back
                state.credits = min(
                    EFS_MAX_CREDITS, max(0.0, state.credits - io + _EFS_BASELINE_BYTES_PER_MIN)
                )
            return {
                "BurstCreditBalance": ("Bytes", state.credits),
                "PercentIOLimit": ("Percent", min(100.0, 4.0 + 3.0 * pods)),
                "MeteredIOBytes": ("Bytes", io),
            }

    def _put(
        self,
        region: str,
        namespace: str,
        dim: str,
        value: str,
        data: dict[str, tuple[str, float]],
        when: datetime,
    ) -> None:
        self._client(region).put_metric_data(
            Namespace=namespace,
            MetricData=[
                {
                    "MetricName": name,
                    "Dimensions": [{"Name": dim, "Value": value}],
                    "Timestamp": when,
                    "Unit": unit,
                    "Value": v,
                }
                for name, (unit, v) in data.items()
            ],
        )
