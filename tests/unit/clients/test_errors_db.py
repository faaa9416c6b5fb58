"""psycopg error translation: one table from psycopg exceptions/SQLSTATEs into DatabaseError.

Covers: SQLSTATE → behaviour (with ids), connection-time OperationalError messages, chained cause via
``db.query``/``db.connect`` (a refused connection is Unavailable and retried, then raised).
"""

from __future__ import annotations

import socket

import psycopg
import psycopg.errors
import pytest

from atlbook import errors
from atlbook.clients import db, retry


@pytest.mark.parametrize(
    "exc, exctype",
    [
        (psycopg.errors.TooManyConnections("too many"), errors.Throttled),
        (psycopg.errors.InsufficientPrivilege("denied"), errors.Forbidden),
        (psycopg.errors.InvalidPassword("bad"), errors.Forbidden),
        (psycopg.errors.InvalidCatalogName("db"), errors.NotFound),
        (psycopg.errors.UndefinedTable("t"), errors.NotFound),
        (psycopg.errors.UniqueViolation("dup"), errors.Conflict),
        (psycopg.errors.DuplicateDatabase("dup"), errors.Conflict),
        (psycopg.errors.SerializationFailure("ser"), errors.Unavailable),
        (psycopg.errors.DeadlockDetected("dl"), errors.Unavailable),
        (psycopg.errors.AdminShutdown("bye"), errors.Unavailable),
        (psycopg.errors.QueryCanceled("slow"), errors.Unavailable),
        (psycopg.errors.SyntaxError("syntax"), errors.Invalid),
        (
            psycopg.OperationalError("connection failed: FATAL: password authentication failed for user"),
            errors.Forbidden,
        ),
        (
            psycopg.OperationalError("connection failed: FATAL: sorry, too many clients already"),
            errors.Throttled,
        ),
        (psycopg.OperationalError('connection failed: FATAL: database "x" does not exist'), errors.NotFound),
        (psycopg.OperationalError("connection failed: Connection refused"), errors.Unavailable),
        (psycopg.InterfaceError("connection is closed"), errors.Unavailable),
    ],
    ids=[
        "too-many-connections",
        "insufficient-privilege",
        "invalid-password",
        "no-database",
        "no-table",
        "unique-violation",
        "duplicate-database",
        "serialization",
        "deadlock",
        "admin-shutdown",
        "query-canceled",
        "syntax",
        "auth-failed-msg",
        "too-many-clients-msg",
        "db-missing-msg",
        "refused",
        "closed",
    ],
)
def test_table(exc: Exception, exctype: type[Exception]) -> None:
    err = db.translate(exc, operation="query")
    assert isinstance(err, errors.DatabaseError) and isinstance(err, exctype)


def test_connect_refused_is_unavailable_and_retried() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    sleeps: list[float] = []
    pol = retry.RetryPolicy(max_attempts=2, sleep=sleeps.append, rng=lambda a, b: 0.0)
    with pytest.raises(errors.Unavailable) as info:
        db.connect("127.0.0.1", port, "jira", "atl", "pw-123456789", connect_timeout=1, policy=pol)
    assert isinstance(info.value.__cause__, psycopg.OperationalError)
    assert len(sleeps) == 1
    assert "pw-123456789" not in str(info.value)
