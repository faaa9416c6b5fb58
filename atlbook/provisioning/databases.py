"""The product databases inside the shared RDS instance: one PostgreSQL database per enabled product.

RDS creates only the instance (and its ``postgres`` maintenance database); the products' JDBC URLs
(``jdbc:postgresql://<rds address>:5432/<product>``, built in :mod:`~atlbook.provisioning.desired`) name
a database that someone has to create. This module makes that part of the plan:

- **desired** (:func:`resources`, pure): one ``db/PostgresDatabase/<product>`` resource per enabled
  product, owned by the RDS master user, ``ENCODING 'UTF8'``, ``TEMPLATE template0``, and the locale
  Atlassian asks for (:data:`LOCALES`); it depends on the RDS instance, and sits right after it in the
  plan, so apply creates it once the instance is available and before any product StatefulSet;
- **observed** (:func:`observe`, read-only): ``SELECT datname, encoding, locale FROM pg_database`` as
  the master user,
  connected to the ``postgres`` maintenance database through the target's ``database_tunnel`` (the
  sandbox's PostgreSQL, or an SSM/bastion port-forward to RDS) on a session set ``READ ONLY``;
- **plan rows** (:func:`change`): ``create`` (the note is the exact SQL), ``unchanged`` (an existing
  database with the wrong encoding/locale stays unchanged, with a warning: PostgreSQL cannot change
  them in place), or ``manual``
  when the databases cannot be observed (no ``database_tunnel``, no master password reference, the
  tunnel does not answer). A manual row is never applied; :func:`findings` turns the manual rows into
  one warning finding with the exact ``CREATE DATABASE`` statements and the port-forward command;
- **apply** (:func:`action` / :func:`verify`): ``CREATE DATABASE`` through the tunnel; ``duplicate
  database`` (a retried or concurrent create) counts as created; the password is resolved from the
  master password reference by the clients at that moment only (it never enters a plan, a body or a
  record);
- **post-check** (:func:`check`): every desired database exists, or says why it could not be verified.

Refuses: a database name or owner that is not a plain SQL identifier (``ValueError``: they are quoted,
never interpolated raw); applying a ``manual`` row (``PlanError``).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Literal

from atlbook import errors
from atlbook.clients import db as dbmod
from atlbook.clients.bundle import Clients
from atlbook.provisioning import _spec
from atlbook.provisioning.model import DesiredState, Finding, Resource

if TYPE_CHECKING:  # diff imports this module; its types are only needed for annotations
    from atlbook.provisioning.diff import Change

__all__ = [
    "CHECK",
    "KIND",
    "LOCALES",
    "MAINTENANCE_DB",
    "PROVIDER",
    "action",
    "change",
    "check",
    "create_sql",
    "findings",
    "observe",
    "port_forward_command",
    "resources",
    "settings_problems",
    "verify",
]

PROVIDER: Literal["db"] = "db"
KIND = "PostgresDatabase"
MAINTENANCE_DB = "postgres"
"""The database every RDS PostgreSQL instance has; the master user connects there to create the others."""

#: ``(LC_COLLATE, LC_CTYPE)`` per product; ``None`` = the instance's default locale (``en_US.UTF-8`` on
#: RDS), taken from ``template0``.
#:
#: - Jira: Atlassian's "Connecting Jira applications to PostgreSQL" creates the database with
#:   ``ENCODING 'UNICODE' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0``; 'C' gives the byte-order
#:   sorting Jira's issue keys and index expect, so we ask for exactly that.
#: - Confluence: "Database Setup for PostgreSQL" asks for UTF-8 and warns that the 'C' collation is known
#:   to cause problems (case-insensitive lookups and sorting of non-ASCII text): the instance's UTF-8
#:   default locale is used.
#: - Bitbucket: "Connect Bitbucket to PostgreSQL" asks only for ``ENCODING 'UTF8'`` with the server's
#:   default locale: the same.
#: ``TEMPLATE template0`` is required whenever the encoding or locale may differ from ``template1``'s.
LOCALES: dict[str, tuple[str, str] | None] = {
    "jira": ("C", "C"),
    "confluence": None,
    "bitbucket": None,
}

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
_LOCALE = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")


def _rds_key(identifier: str) -> str:
    return f"aws/RdsInstance/{identifier}"


def _address_output(identifier: str) -> str:
    return f"aws:RdsInstance/{identifier}.Address"


def _ident(name: str) -> str:
    if not _IDENT.fullmatch(name):
        raise ValueError(f"{name!r} is not a plain SQL identifier: refusing to put it in CREATE DATABASE")
    return f'"{name}"'


# --- desired ------------------------------------------------------------------------------------------


def resources(s: _spec.SpecView) -> list[Resource]:
    """One ``PostgresDatabase`` resource per enabled product (the database named in its JDBC URL). Pure.

    The body holds the master password *reference* (``MasterPasswordRef``), never a value.
    """
    db = s.database
    out: list[Resource] = []
    for p in s.enabled:
        locale = LOCALES.get(p.name)
        body: dict[str, Any] = {
            "DatabaseName": p.name,
            "Owner": db.master_username,
            "Encoding": "UTF8",
            "Template": "template0",
            "LcCollate": locale[0] if locale else None,
            "LcCtype": locale[1] if locale else None,
            "DBInstanceIdentifier": db.identifier,
            "MasterUsername": db.master_username,
            "MasterPasswordRef": db.master_password,
        }
        create_sql(body)  # refuses a name that is not a plain identifier, at build time
        out.append(
            Resource(
                provider=PROVIDER,
                kind=KIND,
                name=p.name,
                body=body,
                depends_on=(_rds_key(db.identifier),),
                note=f"database {p.name} on RDS {db.identifier} (the path of {p.name}'s JDBC URL)",
            )
        )
    return out


def create_sql(body: Mapping[str, Any]) -> str:
    """The exact ``CREATE DATABASE`` statement for a desired database body (identifiers quoted).

    Raises ``ValueError`` for a name/owner that is not a plain identifier or a malformed locale.
    """
    parts = [
        f"CREATE DATABASE {_ident(str(body['DatabaseName']))}",
        f"OWNER {_ident(str(body['Owner']))}",
        f"ENCODING '{body.get('Encoding') or 'UTF8'}'",
    ]
    for key, clause in (("LcCollate", "LC_COLLATE"), ("LcCtype", "LC_CTYPE")):
        value = body.get(key)
        if value:
            if not _LOCALE.fullmatch(str(value)):
                raise ValueError(f"{key} {value!r} is not a locale name")
            parts.append(f"{clause} '{value}'")
    template = str(body.get("Template") or "template0")
    _ident(template)  # validated; written unquoted like every example (template0)
    parts.append(f"TEMPLATE {template}")
    if not re.fullmatch(r"[A-Za-z0-9]+", str(body.get("Encoding") or "UTF8")):
        raise ValueError(f"encoding {body.get('Encoding')!r} is not an encoding name")
    return " ".join(parts) + ";"


def port_forward_command(address: str, bastion: str = "<bastion instance id>", region: str = "") -> str:
    """The SSM port-forward an operator runs to reach RDS ``address`` on localhost:5432."""
    where = f" --region {region}" if region else ""
    return (
        f"aws ssm start-session{where} --target {bastion} "
        "--document-name AWS-StartPortForwardingSessionToRemoteHost "
        f"--parameters host={address},portNumber=5432,localPortNumber=5432"
    )


# --- observed -----------------------------------------------------------------------------------------


def _databases(state: DesiredState) -> list[Resource]:
    return [r for r in state.resources if r.provider == PROVIDER and r.kind == KIND]


_LIST_SQL = "SELECT datname, pg_encoding_to_char(encoding) AS encoding, datcollate, datctype FROM pg_database"


def _existing(clients: Clients, user: str, password_ref: str) -> dict[str, dict[str, Any]]:
    """``pg_database`` by name (encoding, locale), read on a READ ONLY session through the tunnel."""
    conn = clients.db(MAINTENANCE_DB, user=user, password=password_ref)
    try:
        dbmod.query(conn, "SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY", operation="set read only")
        rows = dbmod.query(conn, _LIST_SQL, operation="list databases")
    finally:
        conn.close()
    return {
        str(r["datname"]): {
            "DatabaseName": str(r["datname"]),
            "Encoding": str(r.get("encoding") or ""),
            "LcCollate": str(r.get("datcollate") or ""),
            "LcCtype": str(r.get("datctype") or ""),
        }
        for r in rows
    }


def settings_problems(body: Mapping[str, Any], observed: Mapping[str, Any]) -> list[str]:
    """What is wrong with an existing database's encoding/locale (it cannot be changed in place). Pure.

    Encoding must be UTF8. Where a locale is desired (Jira), 'C'/'POSIX' or any UTF-8 locale is accepted
    (Atlassian's Jira guidance allows both); elsewhere the locale is not judged.
    """
    out: list[str] = []
    encoding = str(observed.get("Encoding") or "")
    if encoding and encoding.upper() != str(body.get("Encoding") or "UTF8").upper():
        out.append(f"encoding {encoding} (wanted {body.get('Encoding') or 'UTF8'})")
    if body.get("LcCollate"):
        for key, label in (("LcCollate", "LC_COLLATE"), ("LcCtype", "LC_CTYPE")):
            value = str(observed.get(key) or "")
            ok = value in ("", "C", "POSIX") or value.lower().replace("-", "").endswith("utf8")
            if not ok:
                out.append(f"{label} {value} (wanted {body.get(key)} or a UTF-8 locale)")
    return out


def _unreachable_reason(clients: Clients, body: Mapping[str, Any]) -> str | None:
    if clients.target.database_tunnel is None:
        return "the target has no database_tunnel: the databases cannot be created or checked from here"
    if not body.get("MasterPasswordRef"):
        return "the stack names no master password reference: the databases cannot be reached"
    return None


def observe(
    clients: Clients, state: DesiredState, outputs: Mapping[str, Any]
) -> dict[str, dict[str, Any] | None]:
    """The product databases of ``state`` as they exist: key → ``{"DatabaseName": …}`` or ``None``.

    Read-only: one connection, ``SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY``, one ``SELECT``.
    No connection is tried before the RDS instance has an address (every database is then ``None``:
    planned as a create). When they cannot be observed (no ``database_tunnel``, no password reference,
    the tunnel does not answer) each is ``{"manual": reason}``. Never raises for an unreachable database.
    """
    wanted = _databases(state)
    if not wanted:
        return {}
    body = wanted[0].body
    reason = _unreachable_reason(clients, body)
    if reason is None and not outputs.get(_address_output(str(body["DBInstanceIdentifier"]))):
        return {r.key: None for r in wanted}
    if reason is None:
        try:
            names = _existing(clients, str(body["MasterUsername"]), str(body["MasterPasswordRef"]))
        except (
            errors.ApiError,
            errors.RetryableError,
            errors.ConfigError,
            errors.SecretResolutionError,
        ) as e:
            host, port = clients.target.database_tunnel or ("?", 0)
            reason = f"could not read pg_database through database_tunnel {host}:{port}: {e}"
        else:
            return {r.key: names.get(r.name) for r in wanted}
    return {r.key: {"manual": reason} for r in wanted}


# --- plan ---------------------------------------------------------------------------------------------


def change(c: Change, observed: Mapping[str, Any] | None) -> Change:
    """The plan row of one database: ``create`` (note: the SQL), ``unchanged``, or ``manual``."""
    assert c.resource is not None
    sql = create_sql(c.resource.body)
    if observed is None:
        return dataclasses.replace(c, action="create", note=sql)
    if "manual" in observed:
        return dataclasses.replace(
            c, action="manual", note=f"manual (see finding product-databases-manual): {sql}"
        )
    problems = settings_problems(c.resource.body, observed)
    if problems:  # not an update: encoding and locale are fixed at CREATE DATABASE (see the finding)
        return dataclasses.replace(c, action="unchanged", note=f"exists, but {'; '.join(problems)}")
    return dataclasses.replace(c, action="unchanged", note=f"database {c.name} exists")


def findings(
    changes: list[Change],
    observed: Mapping[str, Mapping[str, Any] | None],
    outputs: Mapping[str, Any],
    *,
    region: str = "",
) -> list[Finding]:
    """One warning when some databases need doing by hand: why, the statements, the port-forward command.

    ``observed`` is ``Observed.objects`` (the manual rows' reasons are there).
    """
    out = _settings_findings(changes, observed)
    manual = [c for c in changes if c.kind == KIND and c.action == "manual" and c.resource is not None]
    if not manual:
        return out
    first = manual[0].resource
    assert first is not None
    identifier = str(first.body["DBInstanceIdentifier"])
    address = str(outputs.get(_address_output(identifier)) or f"<endpoint address of RDS {identifier}>")
    statements = [create_sql(c.resource.body) for c in manual if c.resource is not None]
    reasons = sorted({str((observed.get(c.key) or {}).get("manual", "")) for c in manual} - {""})
    command = port_forward_command(address, region=region)
    user = str(first.body["MasterUsername"])
    return [
        *out,
        Finding(
            "warning",
            "product-databases-manual",
            f"the product databases {', '.join(c.name for c in manual)} were not checked and this plan "
            f"will not create them ({'; '.join(reasons) or 'not observable'}). The products cannot start "
            f"without them. Once RDS {identifier} is available, forward a local port to it through a "
            f"bastion: `{command}`; then, as the master user {user} on database {MAINTENANCE_DB} at "
            "127.0.0.1:5432, run (an 'already exists' error means that one is there): "
            + " ".join(statements)
            + " Or set the target's database_tunnel to {host: 127.0.0.1, port: 5432} with the "
            "port-forward running and rerun: the plan then creates and verifies them.",
            {"statements": statements, "port_forward": command, "databases": [c.name for c in manual]},
        ),
    ]


def _settings_findings(
    changes: list[Change], observed: Mapping[str, Mapping[str, Any] | None]
) -> list[Finding]:
    wrong: dict[str, list[str]] = {}
    for c in changes:
        seen = observed.get(c.key)
        if c.kind == KIND and c.action == "unchanged" and c.resource is not None and seen:
            problems = settings_problems(c.resource.body, seen)
            if problems:
                wrong[c.name] = problems
    if not wrong:
        return []
    text = "; ".join(f"{name}: {', '.join(p)}" for name, p in wrong.items())
    return [
        Finding(
            "warning",
            "product-database-settings",
            f"existing product databases do not have the encoding/locale Atlassian asks for ({text}). "
            "PostgreSQL cannot change them in place: provisioning leaves them alone; fix them with a "
            "dump and a restore into a database created as the plan's CREATE DATABASE shows.",
            {"databases": wrong},
        )
    ]


# --- apply --------------------------------------------------------------------------------------------


def action(clients: Clients, c: Change) -> Callable[[], str]:
    """The apply step's action: ``CREATE DATABASE`` through the tunnel (``already exists`` = done).

    Refuses (``PlanError``) anything but a ``create`` row; a tunnel that does not answer fails the step
    with the port-forward to start (the ledger lets a rerun continue from here).
    """
    r = c.resource
    if r is None or c.action != "create":
        raise errors.PlanError(f"database {c.name}: only a create can be applied, not {c.action}")
    body = r.body

    def act() -> str:
        sql = create_sql(body)
        ref = body.get("MasterPasswordRef")
        if not ref:
            raise errors.PlanError(f"database {r.name}: the stack names no master password reference")
        try:
            conn = clients.db(MAINTENANCE_DB, user=str(body["MasterUsername"]), password=str(ref))
        except (errors.ApiError, errors.RetryableError, errors.TargetError) as e:
            raise errors.PlanError(
                f"database {r.name}: cannot connect through the database_tunnel ({e}); start the "
                f"port-forward to RDS {body['DBInstanceIdentifier']} (see the plan) and rerun"
            ) from e
        try:
            dbmod.query(conn, sql, operation=f"create database {r.name}")
        except errors.Conflict:
            return f"database {r.name} exists already"
        finally:
            conn.close()
        return f"created database {r.name}"

    return act


def verify(clients: Clients, c: Change) -> Callable[[], str | None]:
    """The apply step's verification: the database is listed in ``pg_database`` (read-only session)."""
    r = c.resource
    assert r is not None
    body = r.body

    def check_created() -> str | None:
        names = _existing(clients, str(body["MasterUsername"]), str(body["MasterPasswordRef"]))
        return None if r.name in names else f"database {r.name} is not in pg_database after CREATE DATABASE"

    return check_created


# --- post-check ---------------------------------------------------------------------------------------


CHECK = "product-databases"
"""Name of the post-check row: the product databases exist."""


def check(state: DesiredState, observed: Mapping[str, Mapping[str, Any] | None]) -> tuple[str, bool, str]:
    """``(subject, ok, detail)`` of the post-check "product databases exist", from ``Observed.objects``.

    Pure. The subject is the RDS instance.

    Not ok when one is missing, or when they could not be verified (the detail says why).
    """
    wanted = _databases(state)
    if not wanted:
        return "-", True, "no product enabled"
    subject = f"RDS {wanted[0].body['DBInstanceIdentifier']}"
    seen = {r.key: observed.get(r.key) for r in wanted}
    manual = sorted({str(v["manual"]) for v in seen.values() if v and "manual" in v})
    if manual:
        return subject, False, "could not be verified: " + "; ".join(manual)
    missing = [r.name for r in wanted if seen[r.key] is None]
    if missing:
        present = [r.name for r in wanted if r.name not in missing]
        return subject, False, f"missing: {', '.join(missing)}; present: {', '.join(present) or 'none'}"
    return subject, True, "present: " + ", ".join(r.name for r in wanted)
