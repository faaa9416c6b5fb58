"""Product databases in RDS (atlbook.provisioning.databases): desired, SQL, observe, plan rows, apply, check.

Covers: one database per enabled product, named like the path of every JDBC URL the stack sets, owned
by the master user, placed after the RDS instance and before any StatefulSet; the exact CREATE DATABASE
(Jira 'C' collation, template0; identifiers refused when not plain); observing through the tunnel on a
READ ONLY session and never before RDS has an address; the plan rows create (SQL) / unchanged / manual,
the manual finding (statements + SSM port-forward); apply steps (duplicate = exists, manual not applied);
the post-check row.
"""

from __future__ import annotations

import copy
import re
from typing import Any

import pytest

from atlbook import errors
from atlbook.clients.bundle import Clients
from atlbook.clients.target import ResolvedTarget
from atlbook.provisioning import apply, databases, desired, diff
from atlbook.provisioning.model import bind

pytestmark = pytest.mark.unit

ADDRESS = "demo-db.abc123.eu-west-1.rds.amazonaws.com"


def _outputs(state: Any) -> dict[str, Any]:
    ident = next(r.name for r in state.resources if r.kind == "RdsInstance")
    return {
        "aws:Vpc/main.VpcId": "vpc-1",
        "aws:Vpc/main.CidrBlock": "10.0.0.0/16",
        "aws:Subnets/private.SubnetIds": ["subnet-a", "subnet-b", "subnet-c"],
        f"aws:RdsInstance/{ident}.Address": ADDRESS,
    }


def _dbs(state: Any) -> list[Any]:
    return [r for r in state.resources if r.provider == "db"]


class FakeDb:
    """Stands in for Clients.db + clients.db.query: records statements, knows a set of databases."""

    def __init__(self, existing: set[str], *, fail: BaseException | None = None) -> None:
        self.existing = set(existing)
        self.settings: dict[str, tuple[str, str]] = {}  # name → (encoding, locale); default UTF8, C
        self.fail = fail
        self.connects: list[tuple[str, str, str]] = []
        self.statements: list[str] = []
        self.closed = 0

    def connect(self, database: str, *, user: str, password: str, **_: Any) -> FakeDb:
        if self.fail is not None:
            raise self.fail
        self.connects.append((database, user, password))
        return self

    def close(self) -> None:
        self.closed += 1

    def query(self, conn: Any, sql: str, params: Any = None, *, operation: str | None = None) -> list[Any]:
        self.statements.append(sql)
        if sql.startswith("SELECT datname"):
            return [
                {"datname": n, "encoding": e, "datcollate": loc, "datctype": loc}
                for n in sorted(self.existing | {"postgres", "template0", "template1"})
                for e, loc in [self.settings.get(n, ("UTF8", "C"))]
            ]
        m = re.match(r'CREATE DATABASE "([a-z]+)"', sql)
        if m:
            if m.group(1) in self.existing:
                raise errors.api_error(errors.DatabaseError, "duplicate_database", status=409)
            self.existing.add(m.group(1))
        return []


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch):
    def make(existing: set[str], *, tunnel: bool = True, fail: BaseException | None = None) -> Clients:
        db = FakeDb(existing, fail=fail)
        target = ResolvedTarget(name="custom", database_tunnel=("127.0.0.1", 15432) if tunnel else None)
        clients = Clients(target)
        monkeypatch.setattr(clients, "db", db.connect)
        monkeypatch.setattr(databases.dbmod, "query", db.query)
        clients.fake = db  # type: ignore[attr-defined]
        return clients

    return make


# --- desired ---------------------------------------------------------------------------------------------


def test_one_database_per_enabled_product_named_like_the_jdbc_urls(shipped):
    state = desired.build(shipped)
    dbs = _dbs(state)
    assert [r.name for r in dbs] == list(state.facts["products"])
    urls = [
        e["value"]
        for r in state.k8s()
        if r.kind in ("StatefulSet", "Deployment")
        for c in r.body["spec"]["template"]["spec"]["containers"]
        for e in c.get("env") or []
        if e["name"] in ("JDBC_URL", "ATL_JDBC_URL")
    ]
    assert urls
    for url in urls:
        assert url.startswith("jdbc:postgresql://") and url.split("/")[-1] in {r.name for r in dbs}, url
    for r in dbs:
        assert r.key == f"db/PostgresDatabase/{r.name}"
        assert r.body["Owner"] == shipped.database.master_username == r.body["MasterUsername"]
        assert r.body["Encoding"] == "UTF8" and r.body["Template"] == "template0"
        assert r.body["MasterPasswordRef"] == str(shipped.database.master_password)  # a reference
        assert r.depends_on == (f"aws/RdsInstance/{shipped.name}-db",)


def test_databases_come_after_rds_and_before_every_statefulset(shipped):
    keys = [r.key for r in desired.build(shipped).resources]
    rds = keys.index(f"aws/RdsInstance/{shipped.name}-db")
    first_db = min(i for i, k in enumerate(keys) if k.startswith("db/"))
    last_db = max(i for i, k in enumerate(keys) if k.startswith("db/"))
    first_sts = min(i for i, k in enumerate(keys) if "/StatefulSet/" in k)
    assert rds < first_db <= last_db < first_sts


def test_disabled_product_has_no_database(variant):
    state = desired.build(variant(**{"products.bitbucket.enabled": False}))
    assert "bitbucket" not in [r.name for r in _dbs(state)]


# --- SQL -------------------------------------------------------------------------------------------------


def test_create_sql_is_exact(sandbox_spec):
    by_name = {r.name: r for r in _dbs(desired.build(sandbox_spec))}
    assert databases.create_sql(by_name["jira"].body) == (
        "CREATE DATABASE \"jira\" OWNER \"postgres\" ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C' "
        "TEMPLATE template0;"
    )
    # Confluence must not get 'C' (Atlassian: known to cause problems); the instance's UTF-8 default
    assert databases.create_sql(by_name["confluence"].body) == (
        'CREATE DATABASE "confluence" OWNER "postgres" ENCODING \'UTF8\' TEMPLATE template0;'
    )


@pytest.mark.parametrize(
    "field, value",
    [
        ("DatabaseName", 'x"; DROP DATABASE jira; --'),
        ("Owner", "a b"),
        ("LcCollate", "C' OR '1"),
        ("Encoding", "UTF8'"),
    ],
)
def test_create_sql_refuses_what_is_not_plain(sandbox_spec, field, value):
    body = dict(_dbs(desired.build(sandbox_spec))[0].body)
    body[field] = value
    with pytest.raises(ValueError):
        databases.create_sql(body)


def test_port_forward_command():
    assert databases.port_forward_command(ADDRESS, "i-0abc", region="eu-west-1") == (
        "aws ssm start-session --region eu-west-1 --target i-0abc "
        "--document-name AWS-StartPortForwardingSessionToRemoteHost "
        f"--parameters host={ADDRESS},portNumber=5432,localPortNumber=5432"
    )


# --- observe ---------------------------------------------------------------------------------------------


def test_observe_reads_pg_database_on_a_read_only_session(sandbox_spec, fake):
    state = desired.build(sandbox_spec)
    clients = fake({"jira", "confluence"})
    seen = databases.observe(clients, state, _outputs(state))
    assert seen == {
        "db/PostgresDatabase/jira": {
            "DatabaseName": "jira",
            "Encoding": "UTF8",
            "LcCollate": "C",
            "LcCtype": "C",
        },
        "db/PostgresDatabase/confluence": {
            "DatabaseName": "confluence",
            "Encoding": "UTF8",
            "LcCollate": "C",
            "LcCtype": "C",
        },
        "db/PostgresDatabase/bitbucket": None,
    }
    db = clients.fake
    assert db.connects == [("postgres", "postgres", "env:ATLBOOK_SANDBOX_DB_PASSWORD")]  # the reference
    assert db.statements == [
        "SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY",
        "SELECT datname, pg_encoding_to_char(encoding) AS encoding, datcollate, datctype FROM pg_database",
    ]
    assert db.closed == 1


def test_observe_connects_nowhere_before_rds_has_an_address(sandbox_spec, fake):
    state = desired.build(sandbox_spec)
    clients = fake(set())
    seen = databases.observe(clients, state, {})
    assert set(seen.values()) == {None}  # planned as creates
    assert clients.fake.connects == [] and clients.fake.statements == []


def test_observe_without_tunnel_or_with_a_dead_one_is_manual(sandbox_spec, fake):
    state = desired.build(sandbox_spec)
    no_tunnel = databases.observe(fake(set(), tunnel=False), state, _outputs(state))
    assert {v["manual"] for v in no_tunnel.values() if v} == {
        "the target has no database_tunnel: the databases cannot be created or checked from here"
    }
    dead = fake(set(), fail=errors.api_error(errors.DatabaseError, "connection refused", status=None))
    seen = databases.observe(dead, state, _outputs(state))
    reasons = {v["manual"] for v in seen.values() if v}
    assert len(reasons) == 1 and "127.0.0.1:15432" in next(iter(reasons))


# --- plan ------------------------------------------------------------------------------------------------


def _world(state: Any, outputs: dict[str, Any]) -> dict[str, Any]:
    objects: dict[str, Any] = {}
    for r in state.resources:
        body = copy.deepcopy(bind(r.body, outputs))
        if r.provider == "k8s":
            if body.get("kind") == "Secret":
                body["data"] = {k: "eA==" for k in body.pop("stringData")}
        objects[r.key] = body
    return objects


def test_plan_rows_create_with_sql_unchanged_and_zero_changes(sandbox_spec):
    state = desired.build(sandbox_spec)
    outputs = _outputs(state)
    world = _world(state, outputs)
    world["db/PostgresDatabase/confluence"] = None
    for key in ("db/PostgresDatabase/jira", "db/PostgresDatabase/bitbucket"):
        world[key] = {"DatabaseName": key.rsplit("/", 1)[1]}
    plan = diff.plan(state, diff.Observed(objects=world, outputs=outputs, engine="vpc-cni"))
    assert [(c.action, c.key) for c in plan.changes if c.mutating] == [
        ("create", "db/PostgresDatabase/confluence")
    ]
    row = next(r for r in plan.rows() if r["name"] == "confluence" and r["kind"] == "PostgresDatabase")
    assert row["provider"] == "db" and row["note"].startswith('CREATE DATABASE "confluence"')
    assert not [f for f in plan.findings if f.code == "product-databases-manual"]
    world["db/PostgresDatabase/confluence"] = {"DatabaseName": "confluence"}
    again = diff.plan(state, diff.Observed(objects=world, outputs=outputs, engine="vpc-cni"))
    assert again.mutations == 0 and "manual" not in again.counts


def test_no_tunnel_is_a_manual_finding_with_statements_and_port_forward(sandbox_spec, fake):
    state = desired.build(sandbox_spec)
    outputs = _outputs(state)
    world = _world(state, outputs)
    world.update(databases.observe(fake(set(), tunnel=False), state, outputs))
    plan = diff.plan(state, diff.Observed(objects=world, outputs=outputs, engine="vpc-cni"))
    db_rows = [c for c in plan.changes if c.kind == "PostgresDatabase"]
    assert {c.action for c in db_rows} == {"manual"} and plan.counts["manual"] == 3
    assert plan.mutations == 0 and not plan.blocked  # shown, never applied, not blocking
    (finding,) = [f for f in plan.findings if f.code == "product-databases-manual"]
    assert finding.severity == "warning"
    assert "no database_tunnel" in finding.message
    command = finding.numbers["port_forward"]
    assert command == databases.port_forward_command(ADDRESS, region=state.facts["region"])
    assert f"host={ADDRESS},portNumber=5432,localPortNumber=5432" in finding.message
    assert finding.numbers["statements"] == [databases.create_sql(c.resource.body) for c in db_rows]
    for sql in finding.numbers["statements"]:
        assert sql in finding.message
    assert "ATLBOOK_SANDBOX_DB_PASSWORD" not in finding.message  # not even the reference
    summary = plan.summary()
    assert [c["action"] for c in summary["changes"]] == ["manual"] * 3
    # apply shows them as not applied and makes no step that could change anything
    steps = apply.to_plan(fake(set(), tunnel=False), plan)
    manual = [s for s in steps.steps if "PostgresDatabase" in (s.target or "")]
    assert [s.kind for s in manual] == ["noop"] * 3
    assert all(s.description.startswith("manual, not applied") for s in manual)


def test_manual_finding_before_rds_exists_names_a_placeholder_address(sandbox_spec, fake):
    state = desired.build(sandbox_spec)
    observed = databases.observe(fake(set(), tunnel=False), state, {})
    plan = diff.plan(state, diff.Observed(objects=observed))
    (finding,) = [f for f in plan.findings if f.code == "product-databases-manual"]
    assert f"host=<endpoint address of RDS {sandbox_spec.name}-db>" in finding.numbers["port_forward"]


# --- apply -----------------------------------------------------------------------------------------------


def _db_change(state: Any, name: str, action: str = "create") -> diff.Change:
    r = next(r for r in _dbs(state) if r.name == name)
    return diff.Change(key=r.key, action=action, provider="db", kind=r.kind, name=r.name, resource=r)  # type: ignore[arg-type]


def test_apply_creates_and_treats_duplicate_as_done(sandbox_spec, fake):
    state = desired.build(sandbox_spec)
    clients = fake({"jira"})
    assert databases.action(clients, _db_change(state, "confluence"))() == "created database confluence"
    assert databases.action(clients, _db_change(state, "jira"))() == "database jira exists already"
    assert databases.verify(clients, _db_change(state, "confluence"))() is None
    creates = [s for s in clients.fake.statements if s.startswith("CREATE")]
    assert creates == [
        databases.create_sql(_db_change(state, n).resource.body) for n in ("confluence", "jira")
    ]
    assert clients.fake.closed == 3
    with pytest.raises(errors.PlanError):
        databases.action(clients, _db_change(state, "jira", "manual"))


def test_apply_step_fails_with_the_port_forward_hint_when_the_tunnel_is_down(sandbox_spec, fake):
    state = desired.build(sandbox_spec)
    clients = fake(set(), fail=errors.api_error(errors.DatabaseError, "connection refused", status=None))
    with pytest.raises(errors.PlanError, match="port-forward"):
        databases.action(clients, _db_change(state, "jira"))()


def test_apply_steps_put_databases_between_rds_and_statefulsets(sandbox_spec, fake):
    state = desired.build(sandbox_spec)
    plan = diff.plan(state, diff.Observed(objects={}, outputs=_outputs(state), engine="vpc-cni"))
    targets = [s.target or "" for s in apply.to_plan(fake(set()), plan).steps]
    rds = next(i for i, t in enumerate(targets) if t.startswith("RdsInstance"))
    dbs = [i for i, t in enumerate(targets) if t.startswith("PostgresDatabase")]
    sts = min(i for i, t in enumerate(targets) if t.startswith("StatefulSet"))
    assert len(dbs) == 3 and rds < min(dbs) and max(dbs) < sts


# --- post-check ------------------------------------------------------------------------------------------


def test_check_row(sandbox_spec, fake):
    state = desired.build(sandbox_spec)
    outputs = _outputs(state)
    subject, ok, detail = databases.check(
        state, databases.observe(fake({"jira", "confluence", "bitbucket"}), state, outputs)
    )
    assert (subject, ok, detail) == (
        f"RDS {sandbox_spec.name}-db",
        True,
        "present: jira, confluence, bitbucket",
    )
    _, ok, detail = databases.check(state, databases.observe(fake({"jira"}), state, outputs))
    assert not ok and detail == "missing: confluence, bitbucket; present: jira"
    _, ok, detail = databases.check(state, databases.observe(fake(set(), tunnel=False), state, outputs))
    assert not ok and detail.startswith("could not be verified: the target has no database_tunnel")


# --- existing databases with the wrong settings ------------------------------------------------------------


def test_existing_database_with_wrong_encoding_or_locale_is_a_warning_not_an_update(sandbox_spec, fake):
    state = desired.build(sandbox_spec)
    outputs = _outputs(state)
    clients = fake({"jira", "confluence", "bitbucket"})
    clients.fake.settings = {"jira": ("UTF8", "de_DE.ISO-8859-1"), "bitbucket": ("SQL_ASCII", "C")}
    world = _world(state, outputs)
    world.update(databases.observe(clients, state, outputs))
    plan = diff.plan(state, diff.Observed(objects=world, outputs=outputs, engine="vpc-cni"))
    assert plan.mutations == 0
    rows = {c.name: c for c in plan.changes if c.kind == "PostgresDatabase"}
    assert {c.action for c in rows.values()} == {"unchanged"}
    assert (
        "LC_COLLATE de_DE.ISO-8859-1" in rows["jira"].note and "encoding SQL_ASCII" in rows["bitbucket"].note
    )
    (finding,) = [f for f in plan.findings if f.code == "product-database-settings"]
    assert finding.severity == "warning" and set(finding.numbers["databases"]) == {"jira", "bitbucket"}


@pytest.mark.parametrize(
    "encoding, locale, problems",
    [
        ("UTF8", "C", 0),
        ("UTF8", "en_US.UTF-8", 0),
        ("UTF8", "C.utf8", 0),
        ("UTF8", "en_US", 2),
        ("LATIN1", "C", 1),
    ],
)
def test_settings_problems_for_jira(sandbox_spec, encoding, locale, problems):
    jira = next(r for r in _dbs(desired.build(sandbox_spec)) if r.name == "jira")
    seen = {"Encoding": encoding, "LcCollate": locale, "LcCtype": locale}
    assert len(databases.settings_problems(jira.body, seen)) == problems
