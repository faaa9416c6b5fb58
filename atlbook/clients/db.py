"""PostgreSQL through psycopg 3: connections built from a target, errors translated, small query helper.

Used by diagnosis (pool usage, locks, connection counts) — never required for planning. The connection
goes to the target's database tunnel (the sandbox's PostgreSQL, or an SSM/SSH tunnel to RDS) or to an
RDS endpoint that is reachable directly. The password is registered for redaction before use.

:func:`translate` is the one table from psycopg exceptions to the
:class:`~atlbook.errors.DatabaseError` family::

    connection refused/reset, admin shutdown, cannot connect now, serialization/deadlock → Unavailable
    too many connections (53300)                                 → Throttled
    password authentication failed, insufficient privilege (42501, 28xxx) → Forbidden
    database/table/object does not exist (3D000, 42P01, 42704)   → NotFound
    unique violation, duplicate object/database (23505, 42710, 42P04) → Conflict
    syntax error, data error, other programming errors           → Invalid
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import psycopg
import psycopg.rows

from atlbook import errors
from atlbook.clients import retry, secrets
from atlbook.clients._scrub import scrub

__all__ = ["connect", "query", "translate"]

log = logging.getLogger(__name__)

_STATUS_BY_SQLSTATE: dict[str, int | None] = {
    "53300": 429,  # too_many_connections
    "42501": 403,  # insufficient_privilege
    "28000": 403,  # invalid_authorization_specification
    "28P01": 403,  # invalid_password
    "3D000": 404,  # invalid_catalog_name (database does not exist)
    "42P01": 404,  # undefined_table
    "42704": 404,  # undefined_object
    "23505": 409,  # unique_violation
    "42710": 409,  # duplicate_object
    "42P04": 409,  # duplicate_database
    "40001": None,  # serialization_failure → Unavailable (retry the transaction)
    "40P01": None,  # deadlock_detected
    "57P01": None,  # admin_shutdown
    "57P03": None,  # cannot_connect_now
    "57014": None,  # query_canceled (statement timeout)
    "55P03": None,  # lock_not_available
}

_MESSAGE_HINTS: tuple[tuple[str, int | None], ...] = (
    ("password authentication failed", 403),
    ("no pg_hba.conf entry", 403),
    ("too many clients", 429),
    ("too many connections", 429),
    ("does not exist", 404),
)


def translate(exc: BaseException, *, operation: str) -> errors.ApiError:
    """The :class:`~atlbook.errors.DatabaseError` for a psycopg exception (message scrubbed and capped)."""
    sqlstate = getattr(exc, "sqlstate", None)
    text = scrub(str(exc).strip(), 400)
    status: int | None
    if sqlstate in _STATUS_BY_SQLSTATE:
        status = _STATUS_BY_SQLSTATE[sqlstate]
    elif isinstance(exc, psycopg.OperationalError):
        status = None
        lowered = text.lower()
        for hint, hint_status in _MESSAGE_HINTS:
            if hint in lowered:
                status = hint_status
                break
    elif isinstance(exc, (psycopg.ProgrammingError, psycopg.DataError, psycopg.IntegrityError)):
        status = 409 if isinstance(exc, psycopg.IntegrityError) else 400
    elif isinstance(exc, (OSError, TimeoutError, psycopg.InterfaceError)):
        status = None
    else:
        return errors.DatabaseError(
            f"{operation}: {type(exc).__name__}: {text}", service="postgres", operation=operation
        )
    code = f" [{sqlstate}]" if sqlstate else ""
    return errors.api_error(
        errors.DatabaseError,
        f"{operation}: {type(exc).__name__}{code}: {text}",
        status=status,
        service="postgres",
        operation=operation,
    )


def connect(
    host: str,
    port: int,
    dbname: str,
    user: str,
    password: str,
    *,
    connect_timeout: int = 5,
    sslmode: str = "prefer",
    application_name: str = "atlbook",
    policy: retry.RetryPolicy | None = None,
) -> psycopg.Connection[dict[str, Any]]:
    """An autocommit connection with dict rows; connection failures are retried under ``policy``."""
    secrets.register(password)
    operation = f"connect postgres {user}@{host}:{port}/{dbname}"

    def once() -> psycopg.Connection[dict[str, Any]]:
        try:
            return psycopg.connect(
                host=host,
                port=port,
                dbname=dbname,
                user=user,
                password=password,
                connect_timeout=connect_timeout,
                sslmode=sslmode,
                application_name=application_name,
                autocommit=True,
                row_factory=psycopg.rows.dict_row,
            )
        except (psycopg.Error, OSError) as e:
            raise translate(e, operation=operation) from e

    return retry.call(once, idempotent=True, description=operation, policy=policy)


def query(
    conn: psycopg.Connection[Any],
    sql: str,
    params: Sequence[Any] | Mapping[str, Any] | None = None,
    *,
    operation: str | None = None,
) -> list[dict[str, Any]]:
    """Run one read-only statement; its rows as dicts. Not retried (the caller knows the statement)."""
    op = operation or f"query {sql.split(None, 1)[0].lower() if sql.strip() else ''}".strip()
    try:
        with conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
            cur.execute(sql, params)
            if cur.description is None:
                return []
            return list(cur.fetchall())
    except (psycopg.Error, OSError) as e:
        raise translate(e, operation=op) from e
