"""``atlbook sandbox ...``: the CLI of the sandbox. ``atlbook.cli`` calls :func:`register`.

- ``up [--detach] [--time-factor N] [--dir D]`` — start everything; in the foreground until Ctrl-C, or
  with ``--detach`` as a background process (pid in ``<dir>/sandbox.pid``, log in ``<dir>/sandbox.log``);
  prints what runs where.
- ``down`` — stop the background sandbox (SIGTERM to the pid, then wait).
- ``status`` — what is up, and active faults.
- ``reset`` — everything back to empty.
- ``faults`` — the fault catalogue, with active targets.
- ``fault NAME [--target T] [--clear]`` — inject or clear a fault.
- ``api-faults --rate R [--api k8s,eks,…] [--kinds 429,500,503,reset,slow] [--seed N] | --off`` —
  fault a share of client API requests (:mod:`atlbook.sandbox.api_faults`); without options, show the
  configuration and the faults injected so far.

Exit codes: 0 done, 1 failed (e.g. not running), 2 bad input (unknown fault).
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import signal
import subprocess
import sys
import threading
import time
from typing import Any

__all__ = ["main", "register", "run", "running_pid"]

PID_FILE = "sandbox.pid"
LOG_FILE = "sandbox.log"


def _say(*parts: object, file: Any = None, end: str = "\n") -> None:
    """Write a line for the operator (stdout, or ``file``)."""
    (file or sys.stdout).write(" ".join(str(p) for p in parts) + end)


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``sandbox`` command (with its subcommands) to an argparse ``subparsers`` object."""
    p: argparse.ArgumentParser = subparsers.add_parser(
        "sandbox", help="start, inspect and fault the local sandbox"
    )
    _add_arguments(p)
    p.set_defaults(func=run)
    return p


def _add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--dir", dest="state_dir", default=None, help="state directory (default: .atlbook/sandbox)"
    )
    sub = p.add_subparsers(dest="sandbox_command", required=True)
    up = sub.add_parser("up", help="start the sandbox")
    up.add_argument("--detach", action="store_true", help="run in the background")
    up.add_argument("--time-factor", type=float, default=None, help="simulated seconds per wall second")
    sub.add_parser("down", help="stop the background sandbox")
    sub.add_parser("status", help="what runs where, active faults")
    sub.add_parser("reset", help="back to empty")
    sub.add_parser("faults", help="list the faults")
    f = sub.add_parser("fault", help="inject or clear a fault")
    f.add_argument("name")
    f.add_argument("--target", default=None)
    f.add_argument("--clear", action="store_true")
    af = sub.add_parser("api-faults", help="fault a share of API requests (429/500/503/reset/slow)")
    af.add_argument("--rate", type=float, default=None, help="share of requests to fault, 0..1")
    af.add_argument("--api", default=None, help="comma-separated APIs: k8s, products, eks, rds, efs, …")
    af.add_argument("--kinds", default=None, help="comma-separated kinds: 429,500,503,reset,slow")
    af.add_argument("--seed", type=int, default=None, help="RNG seed (reproducible faults)")
    af.add_argument("--retry-after", type=float, default=1.0, help="Retry-After seconds for 429/503")
    af.add_argument("--slow-seconds", type=float, default=0.5, help="delay of a slow answer")
    af.add_argument("--off", action="store_true", help="stop injecting")
    serve = sub.add_parser("_serve", help=argparse.SUPPRESS)
    serve.add_argument("--time-factor", type=float, default=None)


def _state_dir(args: argparse.Namespace) -> pathlib.Path:
    from atlbook.sandbox.paths import default_state_dir

    return pathlib.Path(args.state_dir) if args.state_dir else default_state_dir()


def _state(d: pathlib.Path) -> dict[str, Any] | None:
    try:
        data: dict[str, Any] = json.loads((d / "state.json").read_text())
    except (OSError, ValueError):
        return None
    return data


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def running_pid(d: pathlib.Path) -> int | None:
    """The pid of the sandbox serving state dir ``d`` if that process is alive, else None (never raises)."""
    try:
        pid = int((d / PID_FILE).read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if _alive(pid) else None


def _print_where(status: dict[str, Any]) -> None:
    _say(
        f"atlbook sandbox up in {status.get('startup_seconds') or 0:.2f} s "
        f"(time factor {status['time_factor']:g})"
    )
    _say(f"  kubernetes   {(status.get('kubernetes') or {}).get('url')}")
    _say(f"  aws          {(status.get('aws') or {}).get('endpoint_url')}")
    pg = status.get("postgres") or {}
    _say(f"  postgresql   {pg.get('host')}:{pg.get('port')}" if pg else "  postgresql   (off)")
    _say(f"  ingress      {(status.get('ingress') or {}).get('url')}")
    _say(f"  state        {status['state_dir']}  (kubeconfig, target.yaml, env)")
    if status.get("eks_clusters") or status.get("nodes"):
        clusters = ", ".join(status.get("eks_clusters") or []) or "-"
        _say(f"  eks          clusters {clusters}; nodes {status.get('nodes')}")
    if status.get("products"):
        for p in status["products"]:
            _say(f"  {p['product']:<12} {p['namespace']}/{p['pod']} {p['version']} {p['state']}")
    if status.get("faults"):
        _say(f"  faults       {status['faults']}")


def run(args: argparse.Namespace) -> int:
    """Execute a parsed ``sandbox`` command; returns the exit code."""
    d = _state_dir(args)
    cmd = args.sandbox_command
    if cmd in ("up", "_serve"):
        return _up(args, d)
    if cmd == "down":
        return _down(d)
    if cmd == "faults" and running_pid(d) is None:
        from atlbook.sandbox.faults import FAULTS

        for f in FAULTS.values():
            _say(f"{f.name:<24} {f.target}\n{'':<24} → {f.symptom}")
        return 0
    state = _state(d)
    if state is None or not state.get("running") or running_pid(d) is None or not state.get("control_url"):
        _say(
            f"the sandbox is not running (state dir {d}); start it with `atlbook sandbox up --detach`",
            file=sys.stderr,
        )
        return 1
    from atlbook.sandbox.control import ControlClient

    client = ControlClient(str(state["control_url"]))
    try:
        if cmd == "status":
            _print_where(client.status())
            return 0
        if cmd == "reset":
            client.reset()
            _say("sandbox reset")
            return 0
        if cmd == "faults":
            for row in client.faults():
                active = f" (active: {', '.join(row['active'])})" if row.get("active") else ""
                _say(f"{row['name']:<24} {row['target']}{active}\n{'':<24} → {row['symptom']}")
            return 0
        if cmd == "fault":
            result = client.fault(args.name, args.target, args.clear)
            verb = "cleared" if args.clear else "injected"
            _say(f"{verb} {result['name']}" + (f" on {result['target']}" if result.get("target") else ""))
            return 0
        if cmd == "api-faults":
            return _api_faults(client, args)
    except ValueError as e:
        _say(f"error: {e}", file=sys.stderr)
        return 2
    return 2


def _api_faults(client: Any, args: argparse.Namespace) -> int:
    """``api-faults``: configure, switch off or show; prints config and counts as JSON."""
    if args.off and args.rate is not None:
        _say("error: give --rate or --off, not both", file=sys.stderr)
        return 2
    if args.off:
        result = client.api_faults(off=True)
    elif args.rate is not None:
        result = client.api_faults(
            rate=args.rate,
            apis=args.api,
            kinds=args.kinds,
            seed=args.seed,
            retry_after=args.retry_after,
            slow_seconds=args.slow_seconds,
        )
    else:
        result = client.api_faults()
    _say(json.dumps(result, indent=2, sort_keys=True))
    return 0


def _up(args: argparse.Namespace, d: pathlib.Path) -> int:
    from atlbook.sandbox.stack import DEFAULT_TIME_FACTOR, Sandbox

    factor = args.time_factor or DEFAULT_TIME_FACTOR
    if running_pid(d) is not None:
        _say(f"the sandbox is already running (pid {running_pid(d)}, state dir {d})", file=sys.stderr)
        return 1
    d.mkdir(parents=True, exist_ok=True)
    if args.sandbox_command == "up" and args.detach:
        log = open(d / LOG_FILE, "ab")  # noqa: SIM115 - handed to the child
        (d / "state.json").unlink(missing_ok=True)
        proc = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            [
                sys.executable,
                "-m",
                "atlbook.sandbox.cli",
                "--dir",
                str(d),
                "_serve",
                "--time-factor",
                str(factor),
            ],
            stdout=log,
            stderr=log,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            state = _state(d)
            if state and state.get("running") and state.get("pid") == proc.pid:
                from atlbook.sandbox.control import ControlClient

                _print_where(ControlClient(str(state["control_url"])).status())
                _say(f"  pid          {proc.pid} (stop with `atlbook sandbox down`)")
                return 0
            if proc.poll() is not None:
                _say(f"the sandbox failed to start; see {d / LOG_FILE}", file=sys.stderr)
                return 1
            time.sleep(0.05)
        _say(f"the sandbox did not come up in 60 s; see {d / LOG_FILE}", file=sys.stderr)
        return 1
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    sandbox = Sandbox(time_factor=factor, state_dir=d)
    try:
        sandbox.start()
    except Exception as e:  # noqa: BLE001 - report and exit 1
        _say(f"the sandbox failed to start: {e}", file=sys.stderr)
        return 1
    (d / PID_FILE).write_text(str(os.getpid()))
    try:
        if args.sandbox_command == "up":
            _print_where(sandbox.status())
            _say("  (Ctrl-C stops it)")
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        sandbox.stop()
        (d / PID_FILE).unlink(missing_ok=True)
    return 0


def _down(d: pathlib.Path) -> int:
    pid = running_pid(d)
    if pid is None:
        (d / PID_FILE).unlink(missing_ok=True)
        _say("the sandbox is not running")
        return 0
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and _alive(pid):
        time.sleep(0.05)
        try:
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass
    if _alive(pid):
        os.kill(pid, signal.SIGKILL)
    (d / PID_FILE).unlink(missing_ok=True)
    _say(f"sandbox stopped (pid {pid})")
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m atlbook.sandbox.cli ...`` (what ``up --detach`` runs)."""
    parser = argparse.ArgumentParser(prog="atlbook sandbox")
    _add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
