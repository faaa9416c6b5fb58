"""Rehearsal helpers over a running sandbox: reach it, show it, fault it (``00-sandbox``, ``atlbook demo``).

A detached sandbox (``atlbook sandbox up --detach``, ``make lab``, ``atlbook demo``) is reached through its
loopback control endpoint, whose URL is in ``<state dir>/state.json``. Nothing here touches the stack
through a back door a runbook could use: faults are the sandbox's own business; runbooks still see the
stack only through the Kubernetes and AWS APIs and the product endpoints.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd

from atlbook import errors, widgets
from atlbook.sandbox.control import ControlClient
from atlbook.sandbox.paths import default_state_dir

__all__ = ["SETTLED", "connect", "ensure_running", "faults_table", "inject", "status_table", "wait_settled"]

PID_FILE = "sandbox.pid"


def _running_state(d: Path) -> dict[str, Any] | None:
    try:
        state: dict[str, Any] = json.loads((d / "state.json").read_text())
        pid = int((d / PID_FILE).read_text().strip())
        os.kill(pid, 0)
    except (OSError, ValueError):
        return None
    return state if state.get("running") and state.get("control_url") else None


def connect(state_dir: Path | None = None) -> ControlClient:
    """The running sandbox's control client. Refuses (TargetError) when none runs, saying how to start one."""
    d = state_dir or default_state_dir()
    state = _running_state(d)
    if state is None:
        raise errors.TargetError(
            f"the sandbox is not running (state dir {d}); start it with `atlbook sandbox up --detach`"
        )
    return ControlClient(str(state["control_url"]))


def ensure_running(
    state_dir: Path | None = None, *, time_factor: float | None = None, reset: bool = False
) -> tuple[ControlClient, str]:
    """Reach the sandbox, starting it detached when it is not running; with ``reset``, empty a running one.

    Returns the client and a line saying what was done. Refuses (RunbookFailed) when it cannot start,
    quoting the sandbox's own error.
    """
    d = state_dir or default_state_dir()
    state = _running_state(d)
    if state is not None:
        control = ControlClient(str(state["control_url"]))
        if reset:
            control.reset()
            return control, f"sandbox   reset (pid {state.get('pid')}, {d})"
        return control, f"sandbox   running (pid {state.get('pid')}, {d})"
    cmd = [sys.executable, "-m", "atlbook.sandbox.cli", "--dir", str(d), "up", "--detach"]
    if time_factor:
        cmd += ["--time-factor", str(time_factor)]
    t0 = time.monotonic()
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)  # noqa: S603 - our own module
    state = _running_state(d)
    if done.returncode != 0 or state is None:
        detail = (done.stderr or done.stdout).strip() or f"see {d / 'sandbox.log'}"
        raise errors.RunbookFailed(f"the sandbox did not start: {detail}")
    line = f"sandbox   up in {time.monotonic() - t0:.1f} s ({d}; stop with `atlbook sandbox down`)"
    return ControlClient(str(state["control_url"])), line


def status_table(control: ControlClient) -> pd.DataFrame:
    """What runs where (component, endpoint) and each simulated product node with its version and state."""
    status = control.status()
    pg = status.get("postgres") or {}
    rows: list[dict[str, Any]] = [
        {"component": "kubernetes", "where": (status.get("kubernetes") or {}).get("url"), "state": "up"},
        {"component": "aws (moto)", "where": (status.get("aws") or {}).get("endpoint_url"), "state": "up"},
        {
            "component": "postgresql",
            "where": f"{pg.get('host')}:{pg.get('port')}" if pg else None,
            "state": f"{pg.get('connections')} connections" if pg else "off",
        },
        {"component": "ingress", "where": (status.get("ingress") or {}).get("url"), "state": "up"},
        {
            "component": "eks",
            "where": ", ".join(status.get("eks_clusters") or []) or "-",
            "state": f"{status.get('nodes', 0)} nodes",
        },
    ]
    for p in status.get("products") or []:
        rows.append(
            {
                "component": p["product"],
                "where": f"{p['namespace']}/{p['pod']}",
                "state": f"{p['version']} {p['state']}",
            }
        )
    return pd.DataFrame(rows, columns=["component", "where", "state"])


def faults_table(control: ControlClient) -> pd.DataFrame:
    """The fault catalogue: name, what it targets, the symptom a runbook observes, active targets."""
    rows = [
        {
            "fault": f["name"],
            "target": f["target"],
            "symptom": f["symptom"],
            "active": ", ".join(f.get("active") or []) or "",
        }
        for f in control.faults()
    ]
    return pd.DataFrame(rows, columns=["fault", "target", "symptom", "active"])


def inject(control: ControlClient, fault: str, target: str = "", *, clear: bool = False) -> str:
    """Inject (or clear) a fault by name; an empty name does nothing. Refuses unknown faults (ConfigError)."""
    if not fault:
        return "no fault requested"
    known = {f["name"] for f in control.faults()}
    if fault not in known:
        raise errors.ConfigError(f"unknown fault {fault!r}; known: {', '.join(sorted(known))}")
    try:
        result = control.fault(fault, target or None, clear)
    except ValueError as e:
        raise errors.ConfigError(f"fault {fault!r}: {e}") from e
    verb = "cleared" if clear else "injected"
    where = f" on {result['target']}" if result.get("target") else ""
    return f"{verb} {result['name']}{where}"


SETTLED = ("RUNNING", "ERROR")
"""Product node states that no longer change by themselves (``STARTING`` does: it becomes RUNNING)."""


def wait_settled(
    control: Any,
    *,
    timeout: float = 120.0,
    poll: float = 0.25,
    clock: Any = time.monotonic,
    sleep: Any = time.sleep,
) -> pd.DataFrame:
    """Wait until every simulated product node has settled (RUNNING or ERROR, none STARTING).

    Shows a progress bar (nodes settled / nodes) and a live status table (pod, version, state) in
    JupyterLab, progress lines headless. Returns the product nodes as a table (``settled`` per row);
    never raises for a timeout — the table says which nodes still start. Refuses (``ValueError``) a
    negative ``timeout`` or a ``poll`` that is not positive.
    """
    if timeout < 0 or poll <= 0:
        raise ValueError(f"timeout must be >= 0 and poll > 0 (got {timeout}, {poll})")
    deadline = clock() + timeout
    rows: list[dict[str, Any]] = []
    bar: widgets.Progress[Any] | None = None
    try:
        while True:
            rows = [
                {
                    "pod": f"{p['namespace']}/{p['pod']}",
                    "product": p["product"],
                    "version": p["version"],
                    "state": p["state"],
                    "settled": p["state"] in SETTLED,
                }
                for p in control.status().get("products") or []
            ]
            done = sum(1 for r in rows if r["settled"])
            if bar is None:
                bar = widgets.progress(total=len(rows), description="Product nodes settling")
            if bar.total != len(rows):
                bar.set_total(len(rows))
            for r in rows:
                bar.set_row(r["pod"], version=r["version"], state=r["state"])
            bar.update(done - bar.n)
            if done == len(rows) or clock() >= deadline:
                break
            sleep(poll)
    finally:
        if bar is not None:
            bar.close()
    return pd.DataFrame(rows, columns=["pod", "product", "version", "state", "settled"])
