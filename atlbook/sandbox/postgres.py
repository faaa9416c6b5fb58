"""A real PostgreSQL for the sandbox: the stand-in for the RDS endpoint.

It runs the Debian server binaries (``/usr/lib/postgresql/<major>/bin``) with its own data directory,
its own unix-socket directory and a free TCP port on 127.0.0.1, with ``fsync=off`` (a throw-away
database). When the sandbox runs as root, ``initdb`` and ``pg_ctl`` run as the unprivileged ``postgres``
user (``initdb`` refuses root). It creates the databases ``jira``, ``confluence`` and ``bitbucket`` and
a password-authenticated role that owns them; TCP connections need that password (scram-sha-256),
only the unix socket trusts the local superuser.

It refuses to start when the binaries are missing (:class:`PostgresUnavailable`, telling the operator
to install the Debian package ``postgresql``), and it never listens beyond the loopback interface.
"""

from __future__ import annotations

import contextlib
import os
import pathlib
import pwd
import shutil
import socket
import subprocess
import tempfile
import threading
from dataclasses import dataclass

import psycopg

__all__ = [
    "DATABASES",
    "PostgresServer",
    "PostgresUnavailable",
    "find_bin_dir",
    "free_port",
]

DATABASES: tuple[str, ...] = ("jira", "confluence", "bitbucket")
"""The product databases created on start."""

MISSING_BINARIES_MSG = (
    "PostgreSQL server binaries not found under /usr/lib/postgresql/*/bin: "
    "install the Debian package postgresql (apt-get install -y postgresql)"
)


class PostgresUnavailable(RuntimeError):
    """PostgreSQL cannot be started here (binaries missing, initdb/pg_ctl failed)."""


def find_bin_dir() -> pathlib.Path:
    """The newest ``/usr/lib/postgresql/<major>/bin`` holding ``initdb`` and ``pg_ctl``.

    Raises :class:`PostgresUnavailable` naming the Debian package when there is none.
    """
    candidates = []
    root = pathlib.Path("/usr/lib/postgresql")
    if root.is_dir():
        for child in root.iterdir():
            bindir = child / "bin"
            if (bindir / "initdb").exists() and (bindir / "pg_ctl").exists():
                try:
                    candidates.append((float(child.name), bindir))
                except ValueError:
                    continue
    if not candidates:
        raise PostgresUnavailable(MISSING_BINARIES_MSG)
    return max(candidates)[1]


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port on ``host`` that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class PostgresServer:
    """One PostgreSQL server under ``base_dir`` (``data/``, ``run/`` for the socket, ``postgres.log``).

    ``start()`` runs initdb when the data directory is empty, starts the server and creates the role
    and the databases (idempotent); ``stop()`` stops it fast; ``cleanup()`` also removes ``base_dir``.
    """

    base_dir: pathlib.Path
    """Directory for the data dir, socket dir and log; created when missing."""
    user: str = "atlbook"
    """The password-authenticated role that owns the product databases."""
    password: str = "atlbook-sandbox"  # noqa: S105 - a dummy for a loopback-only throw-away database
    """Its password (a sandbox dummy, like the AWS credentials)."""
    max_connections: int = 100
    """``max_connections`` of the server (3 of them are reserved for the superuser)."""
    host: str = "127.0.0.1"
    port: int = 0
    """TCP port; 0 picks a free one on start."""

    def __post_init__(self) -> None:
        self.base_dir = pathlib.Path(self.base_dir)
        self._lock = threading.Lock()
        self._running = False
        self._root = self.base_dir
        self._own_root = False

    def _pick_root(self) -> None:
        """As root, use ``base_dir`` only if the ``postgres`` user can reach it; else a private temp dir.

        Parent directories' permissions are never loosened.
        """
        self.base_dir.mkdir(parents=True, exist_ok=True)
        if os.geteuid() != 0:
            return
        for parent in self.base_dir.resolve().parents:
            if not (parent.stat().st_mode & 0o001):
                self._root = pathlib.Path(tempfile.mkdtemp(prefix="atlbook-pg-"))
                self._own_root = True
                (self.base_dir / "postgres-location").write_text(str(self._root))
                return

    # --- paths ------------------------------------------------------------------------------------

    @property
    def data_dir(self) -> pathlib.Path:
        """The cluster's data directory."""
        return self._root / "data"

    @property
    def socket_dir(self) -> pathlib.Path:
        """Directory of the unix socket (trust auth for the superuser only)."""
        return self._root / "run"

    @property
    def running(self) -> bool:
        """Whether this object started the server and has not stopped it."""
        return self._running

    # --- lifecycle --------------------------------------------------------------------------------

    def _as_user(self) -> list[str]:
        if os.geteuid() == 0:
            return ["runuser", "-u", "postgres", "--"]
        return []

    def _chown(self, path: pathlib.Path) -> None:
        if os.geteuid() == 0:
            pw = pwd.getpwnam("postgres")
            os.chown(path, pw.pw_uid, pw.pw_gid)

    def _run(self, args: list[str]) -> None:
        proc = subprocess.run(  # noqa: S603 - fixed binaries, no shell
            self._as_user() + args, capture_output=True, text=True, check=False, timeout=60
        )
        if proc.returncode != 0:
            raise PostgresUnavailable(f"{pathlib.Path(args[0]).name} failed: {proc.stderr.strip()[-800:]}")

    def start(self) -> None:
        """Start the server (initdb first when needed) and create the role and databases."""
        with self._lock:
            if self._running:
                return
            bindir = find_bin_dir()
            if os.geteuid() == 0:
                try:
                    pwd.getpwnam("postgres")
                except KeyError as e:
                    raise PostgresUnavailable(
                        "running as root needs the unprivileged 'postgres' user "
                        "(created by the Debian package postgresql)"
                    ) from e
            self._pick_root()
            self._chown(self._root)
            for d in (self.socket_dir,):
                d.mkdir(exist_ok=True)
                self._chown(d)
            if not (self.data_dir / "PG_VERSION").exists():
                if self.data_dir.exists():
                    shutil.rmtree(self.data_dir)
                self._run(
                    [
                        str(bindir / "initdb"),
                        "-D",
                        str(self.data_dir),
                        "-U",
                        "postgres",
                        "--auth-local=trust",
                        "--auth-host=scram-sha-256",
                        "--no-sync",
                        "-E",
                        "UTF8",
                        "--locale=C",
                    ]
                )
            if self.port == 0:
                self.port = free_port(self.host)
            log = self._root / "postgres.log"
            if not log.exists():
                log.touch()
            self._chown(log)
            opts = (
                f"-p {self.port} -k {self.socket_dir} -c listen_addresses={self.host} -c fsync=off "
                f"-c synchronous_commit=off -c full_page_writes=off -c max_connections={self.max_connections}"
            )
            self._run(
                [str(bindir / "pg_ctl"), "-D", str(self.data_dir), "-w", "-l", str(log), "-o", opts, "start"]
            )
            self._running = True
        self._bootstrap()

    def _bootstrap(self) -> None:
        with self.superuser_connect() as conn:
            exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (self.user,)).fetchone()
            if not exists:
                conn.execute(
                    psycopg.sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                        psycopg.sql.Identifier(self.user), psycopg.sql.Literal(self.password)
                    )
                )
            for db in DATABASES:
                if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (db,)).fetchone():
                    conn.execute(
                        psycopg.sql.SQL("CREATE DATABASE {} OWNER {}").format(
                            psycopg.sql.Identifier(db), psycopg.sql.Identifier(self.user)
                        )
                    )

    def ensure_role(self, name: str, password: str) -> None:
        """Create (or re-password) a login role like an RDS master user: CREATEDB, CREATEROLE, pg_monitor,
        and all privileges on the product databases.

        ``postgres`` (RDS's default master user name) only gets its TCP password set: it is already the
        superuser here, and the sandbox itself keeps reaching it over the trusted unix socket. Refuses
        ``pg_*`` and empty names.
        """
        if name.startswith("pg_") or not name:
            raise ValueError(f"refusing to manage the reserved role {name!r}")
        ident = psycopg.sql.Identifier(name)
        if name == "postgres":
            with self.superuser_connect() as conn:
                conn.execute(
                    psycopg.sql.SQL("ALTER ROLE {} PASSWORD {}").format(ident, psycopg.sql.Literal(password))
                )
            return
        with self.superuser_connect() as conn:
            if conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (name,)).fetchone():
                conn.execute(
                    psycopg.sql.SQL("ALTER ROLE {} LOGIN PASSWORD {}").format(
                        ident, psycopg.sql.Literal(password)
                    )
                )
            else:
                conn.execute(
                    psycopg.sql.SQL("CREATE ROLE {} LOGIN CREATEDB CREATEROLE PASSWORD {}").format(
                        ident, psycopg.sql.Literal(password)
                    )
                )
            conn.execute(psycopg.sql.SQL("GRANT pg_monitor TO {}").format(ident))
            for db in DATABASES:
                conn.execute(
                    psycopg.sql.SQL("GRANT ALL PRIVILEGES ON DATABASE {} TO {}").format(
                        psycopg.sql.Identifier(db), ident
                    )
                )

    def stop(self) -> None:
        """Stop the server (fast shutdown); a no-op when it is not running."""
        with self._lock:
            if not self._running:
                return
            with contextlib.suppress(PostgresUnavailable):
                self._run(
                    [
                        str(find_bin_dir() / "pg_ctl"),
                        "-D",
                        str(self.data_dir),
                        "-m",
                        "immediate",
                        "-w",
                        "stop",
                    ]
                )
            self._running = False

    def cleanup(self) -> None:
        """Stop the server and delete ``base_dir``."""
        self.stop()
        if self._own_root:
            shutil.rmtree(self._root, ignore_errors=True)
        shutil.rmtree(self.base_dir, ignore_errors=True)

    # --- connections ------------------------------------------------------------------------------

    def dsn(self, dbname: str = "jira", application_name: str = "atlbook-sandbox") -> str:
        """A libpq connection string to ``dbname`` over TCP as the password role."""
        return psycopg.conninfo.make_conninfo(
            host=self.host,
            port=self.port,
            dbname=dbname,
            user=self.user,
            password=self.password,
            application_name=application_name,
            connect_timeout=5,
        )

    def connect(
        self, dbname: str = "jira", application_name: str = "atlbook-sandbox"
    ) -> psycopg.Connection[tuple[object, ...]]:
        """A new autocommit connection over TCP as the password role."""
        return psycopg.connect(self.dsn(dbname, application_name), autocommit=True)

    def superuser_connect(self, dbname: str = "postgres") -> psycopg.Connection[tuple[object, ...]]:
        """A new autocommit superuser connection over the unix socket (for the sandbox itself)."""
        return psycopg.connect(
            host=str(self.socket_dir),
            port=self.port,
            dbname=dbname,
            user="postgres",
            application_name="atlbook-sandbox-admin",
            connect_timeout=5,  # the metrics feeder probes through this: never stall it
            autocommit=True,
        )

    def activity(self) -> list[tuple[str, str]]:
        """``(application_name, datname)`` of every client backend in ``pg_stat_activity``."""
        with self.superuser_connect() as conn:
            rows = conn.execute(
                "SELECT coalesce(application_name, ''), coalesce(datname, '') FROM pg_stat_activity "
                "WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()"
            ).fetchall()
        return [(str(a), str(d)) for a, d in rows]

    def connection_count(self) -> int:
        """Client connections right now (what RDS ``DatabaseConnections`` reports), excluding this probe."""
        return len(self.activity())

    def reset(self) -> None:
        """Terminate every client connection (pools of simulated nodes, fault hogs) but the probe itself."""
        with self.superuser_connect() as conn:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()"
            )
