"""Product databases against the sandbox: the real PostgreSQL behind the target's database_tunnel.

Covers: after a full apply, dropping one product database makes the plan show exactly that create (with
its SQL); applying creates it (owned by the master user, UTF8, Jira-style checks via pg_database); the
rerun plans 0 changes and its apply makes 0 mutating calls (audit log) and creates nothing; the
post-check row passes. The same stack seen through a target without database_tunnel: every database
row is ``manual``, one warning finding carries the CREATE DATABASE statements and the SSM port-forward
command to the RDS address, nothing is mutating, and the post-check row says they could not be verified.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import psycopg.sql
import pytest

from atlbook.clients import Clients
from atlbook.provisioning import apply, databases, runbook

pytestmark = pytest.mark.sandbox

WAITS = apply.Waits(timeout=60)
DROPPED = "bitbucket"


def _apply(clients: Any, pplan: Any) -> Any:
    assert not pplan.blocked, pplan.findings
    return apply.apply(clients, pplan, confirmed=True, waits=WAITS, progress=lambda e: None)


def _databases(pg: Any) -> dict[str, tuple[str, str, str]]:
    with pg.superuser_connect() as conn:
        rows = conn.execute(
            "SELECT d.datname, r.rolname, pg_encoding_to_char(d.encoding), d.datcollate FROM pg_database d "
            "JOIN pg_roles r ON r.oid = d.datdba"
        ).fetchall()
    return {str(n): (str(o), str(e), str(c)) for n, o, e, c in rows}


def test_missing_database_planned_created_then_unchanged(clients, spec, sandbox_reset):
    _apply(clients, runbook.make_plan(clients, spec))
    pg = sandbox_reset.postgres
    assert pg is not None
    try:
        with pg.superuser_connect() as conn:
            conn.execute(
                psycopg.sql.SQL("DROP DATABASE {} WITH (FORCE)").format(psycopg.sql.Identifier(DROPPED))
            )
        assert DROPPED not in _databases(pg)

        pplan = runbook.make_plan(clients, spec)
        assert [(c.action, c.key) for c in pplan.changes if c.mutating] == [
            ("create", f"db/PostgresDatabase/{DROPPED}")
        ]
        (row,) = [r for r in pplan.rows() if r["kind"] == databases.KIND and r["action"] == "create"]
        assert (
            row["note"]
            == f'CREATE DATABASE "{DROPPED}" OWNER "postgres" ENCODING \'UTF8\' TEMPLATE template0;'
        )
        report = _apply(clients, pplan)
        done = [r for r in report.results if r.status == "done"]
        assert [(r.id.split("#")[0], r.message) for r in done] == [
            (f"create:db/PostgresDatabase/{DROPPED}", f"created database {DROPPED}")
        ], report.to_dict()
        owner, encoding, _ = _databases(pg)[DROPPED]
        assert (owner, encoding) == (spec.database.master_username, "UTF8")

        before = _databases(pg)
        mark = sandbox_reset.audit.mark()
        again = runbook.make_plan(clients, spec)
        assert again.mutations == 0, [c.row() for c in again.changes if c.mutating]
        assert {c.action for c in again.changes if c.kind == databases.KIND} == {"unchanged"}
        _apply(clients, again)
        assert sandbox_reset.audit.mutations(mark) == []
        assert _databases(pg) == before

        rows = [r for r in runbook.postcheck_table(clients, again) if r["check"] == databases.CHECK]
        assert rows == [
            {
                "check": "product-databases",
                "subject": f"RDS {spec.name}-db",
                "ok": True,
                "detail": "present: jira, confluence, bitbucket",
            }
        ]

        # the same stack through a target without database_tunnel: a manual finding, not a silent skip
        blind = Clients(dataclasses.replace(clients.target, database_tunnel=None))
        try:
            manual = runbook.make_plan(blind, spec)
            assert {c.action for c in manual.changes if c.kind == databases.KIND} == {"manual"}
            assert manual.mutations == 0 and not manual.blocked
            (finding,) = [f for f in manual.findings if f.code == "product-databases-manual"]
            address = manual.outputs[f"aws:RdsInstance/{spec.name}-db.Address"]
            assert finding.numbers["port_forward"] == (
                f"aws ssm start-session --region {manual.desired.facts['region']} "
                "--target <bastion instance id> "
                "--document-name AWS-StartPortForwardingSessionToRemoteHost "
                f"--parameters host={address},portNumber=5432,localPortNumber=5432"
            )
            assert len(finding.numbers["statements"]) == 3
            for sql in finding.numbers["statements"]:
                assert sql.startswith("CREATE DATABASE") and sql in finding.message
            table = runbook.plan_table(manual)
            assert "product-databases-manual" in set(table["name"])
            (check,) = [r for r in runbook.postcheck_table(blind, manual) if r["check"] == databases.CHECK]
            assert not check["ok"] and check["detail"].startswith("could not be verified")
        finally:
            blind.close()
        assert sandbox_reset.audit.mutations(mark) == []
    finally:
        if DROPPED not in _databases(pg):  # leave the sandbox as the next test expects it
            with pg.superuser_connect() as conn:
                conn.execute(
                    psycopg.sql.SQL("CREATE DATABASE {} OWNER {}").format(
                        psycopg.sql.Identifier(DROPPED), psycopg.sql.Identifier(pg.user)
                    )
                )
