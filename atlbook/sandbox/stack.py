"""The whole sandbox as one object: :class:`Sandbox` starts, wires, resets and stops every part.

Parts (all on 127.0.0.1, free ports): the emulated Kubernetes API (:mod:`atlbook.sandbox.kube`), moto
with the sandbox's extra AWS calls, a real PostgreSQL, the simulated product nodes behind the pods, the
EKS mirror, the CloudWatch feeder, the sticky ingress, and a small control endpoint (status, reset,
faults) that ``atlbook sandbox status|reset|fault`` use when the sandbox runs detached.

``Sandbox(time_factor=60, state_dir=".atlbook/sandbox")`` is a context manager. ``start()`` writes into
``state_dir``:

- ``kubeconfig`` — context ``atlbook-sandbox`` with a static admin token;
- ``target.yaml`` — the target format of HACKING.md ("Targets");
- ``env`` — ``AWS_ENDPOINT_URL``, dummy credentials, region, ``KUBECONFIG`` (``export`` lines);
- ``state.json`` — pid, URLs, ports, time factor (what ``status`` and the CLI read).

One emulated cluster serves every EKS cluster created in moto (see :mod:`atlbook.sandbox.eks_mirror`),
and the one PostgreSQL stands in for every RDS instance: an instance's master user and password become
a PostgreSQL role (``CREATEDB``, ``CREATEROLE``, ``pg_monitor``) when it is created or modified, so the
credentials a runbook provisioned work on ``database_tunnel``.
``reset()`` returns everything to empty (objects, AWS resources, faults, audit log, connections).
"""

from __future__ import annotations

import base64
import json
import logging
import os
import pathlib
import secrets
import shutil
import threading
import time
from typing import Any

import psycopg
import yaml

from atlbook.sandbox.api_faults import ApiFaultConfig, ApiFaultInjector
from atlbook.sandbox.audit import AuditLog, is_mutating_http_verb
from atlbook.sandbox.aws import DUMMY_ACCESS_KEY_ID, DUMMY_SECRET_ACCESS_KEY, AwsSandbox
from atlbook.sandbox.aws.metrics import CloudWatchFeeder, FeederInputs
from atlbook.sandbox.clock import SimClock
from atlbook.sandbox.eks_mirror import EksMirror, authenticate_eks_token
from atlbook.sandbox.faults import FAULTS, FaultManager
from atlbook.sandbox.ingress import StickyIngress
from atlbook.sandbox.paths import default_state_dir
from atlbook.sandbox.postgres import PostgresServer, PostgresUnavailable
from atlbook.sandbox.products.faultbook import FaultBook
from atlbook.sandbox.products.registry import SimulatedProducts

__all__ = [
    "ADMIN_USER",
    "CONTEXT",
    "DEFAULT_TIME_FACTOR",
    "REGION",
    "SECRET_ENV",
    "Sandbox",
    "default_state_dir",
]

log = logging.getLogger(__name__)

DEFAULT_TIME_FACTOR = 60.0
"""Simulated seconds per wall second by default (a 2-minute Jira start takes 2 s)."""
CONTEXT = "atlbook-sandbox"
REGION = "us-east-1"
ADMIN_USER = "kubernetes-admin"
SECRET_ENV = ("ATLBOOK_SANDBOX_ADMIN_PASSWORD", "ATLBOOK_SANDBOX_DB_PASSWORD")
"""Env references of ``parameters/sandbox.yaml``; the sandbox exports random values for them in ``env``."""
"""The Kubernetes user of the kubeconfig's static token."""


class Sandbox:
    """Every sandbox component, started in this process."""

    def __init__(
        self,
        time_factor: float = DEFAULT_TIME_FACTOR,
        state_dir: str | os.PathLike[str] | None = None,
        *,
        with_postgres: bool = True,
        pool_min: int = 2,
        pool_max: int = 10,
        max_connections: int = 100,
    ) -> None:
        self.time_factor = float(time_factor)
        self.state_dir = pathlib.Path(state_dir) if state_dir is not None else default_state_dir()
        self.with_postgres = with_postgres
        self.pool_min = pool_min
        self.pool_max = pool_max
        self.max_connections = max_connections
        self.clock = SimClock(self.time_factor)
        self.audit = AuditLog()
        self.faults_book = FaultBook()
        self.api_faults = ApiFaultInjector()
        """API faults (429/500/503/reset/slow) for client requests: :meth:`inject_api_faults`."""
        self.admin_token = "atlbook-sandbox-" + secrets.token_hex(16)
        self.passwords: dict[str, str] = {name: secrets.token_urlsafe(18) for name in SECRET_ENV}
        """Per-sandbox random values of the env references that ``parameters/sandbox.yaml`` names."""
        self.kube: Any = None
        self.aws: AwsSandbox | None = None
        self.postgres: PostgresServer | None = None
        self.products: SimulatedProducts | None = None
        self.fault_manager: FaultManager | None = None
        self.mirror: EksMirror | None = None
        self.feeder: CloudWatchFeeder | None = None
        self.ingress: StickyIngress | None = None
        self.control: Any = None
        self.started_wall: float | None = None
        self.startup_seconds: float | None = None
        self._static_tokens: dict[str, str] = {self.admin_token: ADMIN_USER}

    # --- context manager -------------------------------------------------------------------------------

    def __enter__(self) -> Sandbox:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- start / stop ----------------------------------------------------------------------------------

    def start(self) -> None:
        """Start every component and write the state files."""
        from atlbook.sandbox.kube import DEFAULT_TOKEN, KubeEmulator

        t0 = time.monotonic()
        self.state_dir.mkdir(parents=True, exist_ok=True)
        pg_error: list[BaseException] = []
        pg_thread = None
        if self.with_postgres:
            self.postgres = PostgresServer(self.state_dir / "postgres", max_connections=self.max_connections)
            pg_thread = threading.Thread(target=self._start_postgres, args=(pg_error,), daemon=True)
            pg_thread.start()

        self.aws = AwsSandbox(now=self.clock.monotonic, audit=self.audit)
        self.aws.api_faults = self.api_faults
        self.aws.start()
        self.kube = KubeEmulator(clock=self.clock, host="127.0.0.1", port=0)
        self._static_tokens[DEFAULT_TOKEN] = ADMIN_USER
        self.products = SimulatedProducts(
            self.kube.store,
            self.clock,
            self._connect if self.with_postgres else None,
            self.faults_book,
            pool_min=self.pool_min,
            pool_max=self.pool_max,
        )
        self.fault_manager = FaultManager(
            self.faults_book,
            self.kube.store,
            self.products,
            self._hog_connect if self.with_postgres else None,
        )
        self.fault_manager.kube = self.kube
        self.kube.set_proxy_resolver(self._resolve)
        self.kube.set_readiness_hook(self._readiness)
        self.kube.set_log_source(self.products.logs)
        self.kube.set_memory_usage_hook(self.products.memory)
        self.kube.add_pod_lifecycle_listener(self.products.on_started, self.products.on_stopped)
        self.kube.add_request_observer(self._observe)
        self.kube.set_token_authenticator(self._authenticate)
        self.kube.set_request_interceptor(self.api_faults.kube_interceptor(lambda: str(self.kube.url)))
        self.kube.start()
        self.aws.set_cluster_endpoint(self.kube.url, self._ca_data())
        self.mirror = EksMirror(self.aws, self.kube.store)
        self.aws.add_rds_master_listener(self._on_rds_master)
        self.feeder = CloudWatchFeeder(
            self.aws.url,
            60.0 / self.time_factor,
            FeederInputs(
                db_connections=self._db_connections,
                db_size_bytes=lambda: 64 * 1024 * 1024,
                product_pods=lambda: len(self.products.nodes()) if self.products else 0,
                efs_exhausted=lambda fs: self.faults_book.applies("efs-credits-exhausted", fs),
            ),
        )
        self.ingress = StickyIngress(self.kube.store, self.products)
        self.ingress.start()
        self.products.start()
        if pg_thread is not None:
            pg_thread.join()
            if pg_error:
                self.stop()
                raise pg_error[0]
        self.feeder.start()
        from atlbook.sandbox.control import ControlServer

        self.control = ControlServer(self)
        self.control.start()
        self.started_wall = time.time()
        self.startup_seconds = time.monotonic() - t0
        self._write_files()

    def _start_postgres(self, errors: list[BaseException]) -> None:
        try:
            assert self.postgres is not None
            self.postgres.start()
        except (PostgresUnavailable, psycopg.Error, OSError) as e:
            errors.append(e)

    def stop(self) -> None:
        """Stop every component (idempotent); the state files say it is down."""
        if self.fault_manager is not None:
            self.fault_manager.clear_all()

        def stop_part(part: Any) -> None:
            try:
                part.stop()
            except Exception:  # noqa: BLE001 - keep stopping the rest
                log.debug("stop failed for %r", part, exc_info=True)

        # Servers poll for shutdown every 0.5 s: stop them side by side.
        parts = [
            p for p in (self.control, self.feeder, self.products, self.ingress, self.kube, self.aws) if p
        ]
        threads = [threading.Thread(target=stop_part, args=(p,), daemon=True) for p in parts]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=10)
        if self.postgres is not None:
            self.postgres.stop()
            if self.postgres._own_root:  # noqa: SLF001 - a private temp dir outside state_dir
                self.postgres.cleanup()
        self.control = self.feeder = self.ingress = None
        self.kube = None
        state = self.state_dir / "state.json"
        if state.exists():
            try:
                data = json.loads(state.read_text())
                data["running"] = False
                state.write_text(json.dumps(data, indent=2))
            except (OSError, ValueError):
                pass

    def cleanup(self) -> None:
        """Stop and delete the state directory."""
        self.stop()
        shutil.rmtree(self.state_dir, ignore_errors=True)

    def reset(self) -> None:
        """Back to empty: faults cleared, Kubernetes objects and AWS resources gone, audit log empty."""
        assert self.kube is not None and self.aws is not None and self.products is not None
        assert self.fault_manager is not None and self.feeder is not None
        self.fault_manager.clear_all()
        self.api_faults.reset()
        self.kube.reset()
        self.fault_manager.forget()
        self.products.reset()
        self.aws.reset()
        self.aws.set_cluster_endpoint(self.kube.url, self._ca_data())
        self.feeder.reset()
        if self.postgres is not None and self.postgres.running:
            self.postgres.reset()
        self.audit.clear()

    # --- faults ---------------------------------------------------------------------------------------

    def fault(self, name: str, target: str | None = None, *, clear: bool = False) -> str | None:
        """Inject (or clear) a fault by name; returns the target it applied to."""
        assert self.fault_manager is not None, "start() first"
        if clear:
            self.fault_manager.clear(name, target)
            return target
        return self.fault_manager.inject(name, target)

    def faults(self) -> list[dict[str, Any]]:
        """Every known fault, with its active targets."""
        if self.fault_manager is None:
            return [
                {"name": f.name, "target": f.target, "symptom": f.symptom, "active": None}
                for f in FAULTS.values()
            ]
        return self.fault_manager.describe()

    # --- API faults (atlbook.sandbox.api_faults) ------------------------------------------------------

    def inject_api_faults(
        self,
        rate: float,
        apis: Any = None,
        kinds: Any = None,
        seed: int | None = None,
        *,
        retry_after: float = 1.0,
        slow_seconds: float = 0.5,
        only_mutating: bool = False,
        reset_after: float = 0.5,
    ) -> dict[str, Any]:
        """Fault ``rate`` of client requests to ``apis`` (all when ``None``) with ``kinds``; seeded.

        Returns the injector's description (config, requests seen, faults injected by API and kind).
        Refuses a rate outside [0, 1] or unknown kinds (``ValueError``).
        """
        config = ApiFaultConfig.build(
            rate,
            apis,
            kinds,
            seed,
            retry_after,
            slow_seconds,
            only_mutating=only_mutating,
            reset_after=reset_after,
        )
        return self.api_faults.configure(config)

    def api_faults_off(self) -> dict[str, Any]:
        """Stop injecting API faults (the counts stay until :meth:`reset`)."""
        return self.api_faults.off()

    # --- status ---------------------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        """What runs where, and the active faults."""
        running = self.kube is not None
        out: dict[str, Any] = {
            "running": running,
            "state_dir": str(self.state_dir),
            "time_factor": self.time_factor,
            "startup_seconds": self.startup_seconds,
            "kubernetes": {"url": self.kube.url} if running else None,
            "aws": {"endpoint_url": self.aws.url, "region": REGION} if running and self.aws else None,
            "postgres": (
                {
                    "host": self.postgres.host,
                    "port": self.postgres.port,
                    "connections": self._db_connections(),
                }
                if self.postgres is not None and self.postgres.running
                else None
            ),
            "ingress": {"url": self.ingress.url} if self.ingress is not None else None,
            "control": {"url": self.control.url} if self.control is not None else None,
            "products": [
                {
                    "namespace": n.cluster.namespace,
                    "pod": n.pod_name,
                    "product": n.product,
                    "version": n.version,
                    "state": n.state(),
                }
                for n in (self.products.nodes() if self.products else [])
            ],
            "eks_clusters": [str(c.name) for c in self.aws.eks_clusters()] if running and self.aws else [],
            "nodes": len(list(self.kube.store.iter("Node"))) if running else 0,
            "faults": self.faults_book.active(),
            "api_faults": self.api_faults.describe(),
        }
        return out

    # --- hooks ------------------------------------------------------------------------------------------

    def _resolve(self, namespace: str, pod: str, port: int) -> Any:
        assert self.products is not None and self.fault_manager is not None
        obj = self.kube.store.peek("Pod", namespace, pod) if self.kube is not None else None
        if obj is not None and self.fault_manager.pod_down(obj):
            from atlbook.sandbox.kube.hooks import ProxyResponse

            ip = (obj.get("status") or {}).get("podIP", "")
            msg = f"error trying to reach service: dial tcp {ip}:{port}: i/o timeout".encode()
            return lambda req: ProxyResponse(503, {"Content-Type": "text/plain"}, msg)
        return self.products.resolve(namespace, pod, port)

    def _readiness(self, pod: dict[str, Any]) -> bool | None:
        assert self.products is not None and self.fault_manager is not None
        if self.fault_manager.pod_down(pod):
            return False
        return self.products.readiness(pod)

    def _observe(self, entry: Any) -> None:
        method = str(getattr(entry, "method", "") or "")
        if is_mutating_http_verb(method):
            path = str(getattr(entry, "path", ""))
            if "/proxy/" in path or path.endswith("/proxy"):
                return  # a product call through the pod proxy, not a Kubernetes mutation
            self.audit.record(
                "k8s", method, path, str(getattr(entry, "user", "")), getattr(entry, "status", None)
            )

    def _on_rds_master(self, user: str, password: str) -> None:
        """RDS master users become PostgreSQL roles, so the runbooks' own credentials work on the tunnel."""
        if self.postgres is None or not self.postgres.running:
            return
        try:
            self.postgres.ensure_role(user, password)
        except (ValueError, psycopg.Error):
            log.debug("could not mirror RDS master user %s", user, exc_info=True)

    def _authenticate(self, token: str) -> str | None:
        if token in self._static_tokens:
            return self._static_tokens[token]
        return authenticate_eks_token(token)

    def _connect(self, dbname: str, application_name: str) -> psycopg.Connection[tuple[object, ...]]:
        assert self.postgres is not None
        return self.postgres.connect(dbname, application_name)

    def _hog_connect(self, i: int) -> psycopg.Connection[tuple[object, ...]]:
        assert self.postgres is not None
        return self.postgres.connect("jira", f"runaway-report-job-{i}")

    def _db_connections(self) -> int:
        if self.postgres is None or not self.postgres.running:
            return 0
        try:
            return self.postgres.connection_count()
        except psycopg.Error:
            return self.max_connections

    def _ca_data(self) -> str:
        ca = getattr(self.kube, "ca_pem", None) or getattr(self.kube, "ca_data", None)
        if isinstance(ca, bytes):
            return base64.b64encode(ca).decode()
        if isinstance(ca, str) and ca:
            return ca if not ca.startswith("-----") else base64.b64encode(ca.encode()).decode()
        return base64.b64encode(b"-----BEGIN CERTIFICATE-----\nsandbox\n-----END CERTIFICATE-----\n").decode()

    # --- files ------------------------------------------------------------------------------------------

    @property
    def kubeconfig_path(self) -> pathlib.Path:
        """``<state_dir>/kubeconfig``."""
        return self.state_dir / "kubeconfig"

    def _write_files(self) -> None:
        assert self.kube is not None and self.aws is not None
        kubeconfig = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": CONTEXT, "cluster": {"server": self.kube.url}}],
            "users": [{"name": CONTEXT, "user": {"token": self.admin_token}}],
            "contexts": [{"name": CONTEXT, "context": {"cluster": CONTEXT, "user": CONTEXT}}],
            "current-context": CONTEXT,
            "preferences": {},
        }
        self.kubeconfig_path.write_text(yaml.safe_dump(kubeconfig, sort_keys=False))
        os.chmod(self.kubeconfig_path, 0o600)
        target: dict[str, Any] = {
            "kubeconfig": str(self.kubeconfig_path.resolve()),
            "context": CONTEXT,
            "aws_region": REGION,
            "aws_endpoint_url": self.aws.url,
            "aws_access_key_id": DUMMY_ACCESS_KEY_ID,
            "aws_secret_access_key": DUMMY_SECRET_ACCESS_KEY,
        }
        if self.postgres is not None:
            target["database_tunnel"] = {"host": self.postgres.host, "port": self.postgres.port}
        if self.ingress is not None:  # the sandbox ingress routes by path, not by host
            target["product_url"] = self.ingress.url.rstrip("/") + "/{namespace}/{service}{context_path}"
        (self.state_dir / "target.yaml").write_text(yaml.safe_dump(target, sort_keys=False))
        env = {
            "AWS_ENDPOINT_URL": self.aws.url,
            "AWS_ACCESS_KEY_ID": DUMMY_ACCESS_KEY_ID,
            "AWS_SECRET_ACCESS_KEY": DUMMY_SECRET_ACCESS_KEY,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_REGION": REGION,
            "KUBECONFIG": str(self.kubeconfig_path.resolve()),
            "ATLBOOK_SANDBOX_DIR": str(self.state_dir.resolve()),
            **self.passwords,
        }
        env_path = self.state_dir / "env"
        env_path.touch(mode=0o600)
        os.chmod(env_path, 0o600)
        env_path.write_text("".join(f"export {k}={v}\n" for k, v in env.items()))
        state = {
            "running": True,
            "pid": os.getpid(),
            "time_factor": self.time_factor,
            "started_at": self.started_wall,
            "startup_seconds": self.startup_seconds,
            "kubernetes_url": self.kube.url,
            "aws_endpoint_url": self.aws.url,
            "postgres": {"host": self.postgres.host, "port": self.postgres.port} if self.postgres else None,
            "ingress_url": self.ingress.url if self.ingress else None,
            "control_url": self.control.url if self.control else None,
        }
        (self.state_dir / "state.json").write_text(json.dumps(state, indent=2))
