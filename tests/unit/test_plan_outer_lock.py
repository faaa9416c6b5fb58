"""The ledger's outer lock (``atlbook.plan.StackLock``): exclusion while the ledger itself is in memory.

Covers: two runs whose ledgers are each only in memory (10-provision of an empty stack) exclude each
other through one outer lock — the second refuses naming holder and since, before writing anything;
release frees both; a stale outer lock (another host, lease expired) is refused with the explicit
break-lock hint and broken only by ``break_lock``; a dead holder on this host is taken over through a
claim, and a second taker of the same dead lock refuses; a broken outer lock stops its former holder
at its next renewal; a ledger lock held while the outer lock is free refuses before writing the outer
one; :class:`ParameterLock` on SSM (moto): atomic create, read back, replace, delete, claims, names,
a parameter that is not a lock; ``_pid_alive`` counts a zombie as gone.
"""

from __future__ import annotations

import datetime as dt
import os
import pathlib
import subprocess
from typing import Any

import pytest
from moto import mock_aws

from atlbook import errors
from atlbook import plan as planmod
from atlbook.clients.bundle import Clients
from atlbook.clients.target import ResolvedTarget
from atlbook.plan import Ledger, MemoryBackend, MemoryLock, ParameterLock, lock_parameter_name

T0 = dt.datetime(2026, 11, 26, 15, 0, 0, tzinfo=dt.UTC)


def ledger(
    outer: Any,
    backend: MemoryBackend | None = None,
    *,
    host: str = "laptop",
    pid: int = 100,
    now: dt.datetime = T0,
    alive: bool = True,
    **kw: Any,
) -> Ledger:
    return Ledger(
        backend or MemoryBackend(),
        runbook="10-provision",
        stack="demo",
        clock=lambda: now,
        identity={"user": "ops", "host": host, "pid": pid},
        pid_alive=lambda p: alive,
        outer=outer,
        **kw,
    )


def test_two_in_memory_ledgers_exclude_each_other_through_the_outer_lock() -> None:
    lock = MemoryLock()
    first = ledger(lock, pid=100)
    first.acquire()
    writes = lock.writes
    second = ledger(lock, host="bastion", pid=7)
    with pytest.raises(errors.LedgerLocked) as info:
        second.acquire()
    assert info.value.holder == "ops@laptop pid 100" and info.value.since == "2026-11-26T15:00:00Z"
    assert "memory lock" in str(info.value) and "wait for it to finish" in str(info.value)
    assert lock.writes == writes and second.backend.writes == 0  # type: ignore[attr-defined]
    first.release()
    assert lock.read() is None
    second.acquire()
    assert lock.read()["holder"] == "ops@bastion pid 7"  # type: ignore[index]
    assert second.to_dict()["outer_lock"]["lock"]["run_id"] == second.run_id


def test_stale_outer_lock_is_refused_until_broken_explicitly() -> None:
    lock = MemoryLock()
    ledger(lock, host="laptop-7", pid=4242, lease_seconds=60).acquire()
    later = T0 + dt.timedelta(hours=2)
    nxt = ledger(lock, host="bastion", pid=7, now=later)
    with pytest.raises(errors.LedgerLocked, match="lease expired at 2026-11-26T15:01:00Z.*break-lock"):
        nxt.acquire()
    broken = nxt.break_lock("laptop-7 lost its VPN")
    assert broken is not None and broken["holder"] == "ops@laptop-7 pid 4242"
    assert lock.read() is None and nxt.backend.writes == 0  # type: ignore[attr-defined]
    nxt.acquire()
    assert nxt.holds_lock() and lock.read()["run_id"] == nxt.run_id  # type: ignore[index]


def test_a_dead_holder_on_this_host_is_taken_over_through_a_claim() -> None:
    lock = MemoryLock()
    dead = ledger(lock, pid=100)
    dead.acquire()  # then SIGKILLed: nothing released
    rerun = ledger(lock, pid=200, alive=False)
    racer = ledger(lock, pid=300, alive=False)
    rerun.acquire()
    assert lock.read()["run_id"] == rerun.run_id  # type: ignore[index]
    assert any("no longer exists on this host" in n and "memory lock" in n for n in rerun.notes)
    assert lock.claims == {}  # the claim goes once the new lock is in place
    with pytest.raises(errors.LedgerLocked):  # the lock is the rerun's now, a live pid elsewhere
        ledger(lock, host="bastion", pid=9).acquire()
    rerun.release()
    assert lock.read() is None and lock.claims == {}
    # two reruns after one crash: the second taker of the same dead lock refuses
    dead = ledger(lock, pid=100)
    dead.acquire()
    lock.claim(f"takeover.{dead.run_id}", {"run_id": "someone"})
    with pytest.raises(errors.LedgerLocked, match="another run on this host is taking over"):
        racer.acquire()
    assert lock.read()["run_id"] == dead.run_id  # type: ignore[index]


def test_a_broken_outer_lock_stops_its_former_holder_at_the_next_renewal() -> None:
    lock = MemoryLock()
    first = ledger(lock, pid=100)
    first.acquire()
    ledger(lock, host="bastion", pid=7).break_lock("checked: gone")
    with pytest.raises(errors.LedgerLocked, match="no longer holds the lock"):
        first.renew()


def test_a_held_ledger_lock_refuses_before_the_outer_lock_is_written() -> None:
    backend = MemoryBackend()
    ledger(None, backend, host="laptop", pid=100).acquire()  # a run without an outer lock holds it
    lock = MemoryLock()
    with pytest.raises(errors.LedgerLocked, match="ops@laptop pid 100"):
        ledger(lock, backend, host="bastion", pid=7).acquire()
    assert lock.writes == 0 and lock.read() is None


def test_apply_releases_the_outer_lock_also_on_failure() -> None:
    lock = MemoryLock()

    def boom() -> None:
        raise errors.PlanError("no")

    plan = planmod.Plan("p", [planmod.Step("s", "s", kind="create", action=boom)])
    with pytest.raises(planmod.ApplyFailed):
        planmod.apply(plan, ledger(lock))
    assert lock.read() is None


@pytest.mark.parametrize(
    "stack, runbook, name",
    [
        ("sandbox", "10-provision", "/atlbook/sandbox/ledger-lock/10-provision"),
        ("prod eu", "30-upgrade/jira", "/atlbook/prod-eu/ledger-lock/30-upgrade-jira"),
    ],
    ids=["plain", "unsafe-characters"],
)
def test_lock_parameter_name(stack: str, runbook: str, name: str) -> None:
    assert lock_parameter_name(stack, runbook) == name


def test_lock_parameter_name_refuses_empty_names() -> None:
    with pytest.raises(errors.PlanError, match="no lock parameter name"):
        lock_parameter_name("//", "10-provision")


@pytest.fixture
def ssm_clients() -> Any:
    with mock_aws():
        bundle = Clients(
            ResolvedTarget(
                name="custom", aws_region="us-east-1", aws_access_key_id="k", aws_secret_access_key="s"
            )
        )
        yield bundle
        bundle.close()


def test_parameter_lock_on_ssm(ssm_clients: Any) -> None:
    lock = ParameterLock(ssm_clients, "demo", "10-provision")
    assert lock.description == "SSM parameter /atlbook/demo/ledger-lock/10-provision"
    assert lock.read() is None
    assert lock.create({"run_id": "a", "holder": "A"}) == {"run_id": "a", "holder": "A"}
    assert lock.create({"run_id": "b", "holder": "B"})["run_id"] == "a"  # the atomic create lost
    lock.replace({"run_id": "a", "holder": "A", "lease_until": "later"})
    assert lock.read() == {"run_id": "a", "holder": "A", "lease_until": "later"}
    assert lock.claim("takeover.x", {"run_id": "b"}) and not lock.claim("takeover.x", {"run_id": "c"})
    lock.unclaim("takeover.x")
    lock.unclaim("takeover.x")  # absent: no-op
    lock.delete()
    lock.delete()
    assert lock.read() is None


def test_two_ledgers_on_ssm_exclude_each_other(ssm_clients: Any) -> None:
    first = ledger(ParameterLock(ssm_clients, "demo", "10-provision"), pid=100)
    first.acquire()
    with pytest.raises(errors.LedgerLocked, match="SSM parameter /atlbook/demo/ledger-lock/10-provision"):
        ledger(ParameterLock(ssm_clients, "demo", "10-provision"), host="bastion", pid=7).acquire()
    first.release()
    assert ParameterLock(ssm_clients, "demo", "10-provision").read() is None


def test_a_parameter_that_is_no_lock_is_refused(ssm_clients: Any) -> None:
    ssm_clients.aws("ssm").put_parameter(
        Name="/atlbook/demo/ledger-lock/10-provision", Value="not json", Type="String"
    )
    with pytest.raises(errors.PlanError, match="not a lock"):
        ParameterLock(ssm_clients, "demo", "10-provision").read()


def test_pid_alive_counts_a_zombie_as_gone() -> None:
    assert planmod._pid_alive(os.getpid())  # noqa: SLF001 - the liveness rule itself
    child = subprocess.Popen(["true"])  # noqa: S603, S607 - a child that exits at once
    try:
        stat = pathlib.Path(f"/proc/{child.pid}/stat")
        while stat.read_text().rsplit(")", 1)[-1].split()[0] != "Z":  # not reaped: a zombie
            os.sched_yield()
        assert not planmod._pid_alive(child.pid)  # noqa: SLF001
    finally:
        child.wait()
    assert not planmod._pid_alive(child.pid)  # noqa: SLF001 - reaped: gone
