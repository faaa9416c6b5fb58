"""``atlbook lab [--port N]``: the sandbox (started detached when not up) and JupyterLab on the runbooks.

What it does, in order:

1. Starts the sandbox with ``atlbook sandbox up --detach`` unless one is already running in the state
   directory (``--no-sandbox`` skips this, for a real target).
2. Merges the settings that make JupyterLab reliable for runbooks into
   ``{sys.prefix}/share/jupyter/lab/settings/overrides.json`` (:data:`LAB_OVERRIDES`: no update check,
   no news toast, the default kernel started without a "Select Kernel" dialog). Settings already there
   are kept; only these keys are set.
3. Runs ``jupyter lab`` in the foreground on the notebooks folder, **loopback only** (``127.0.0.1``),
   with a fresh random token (printed, passed through ``JUPYTER_TOKEN``, never on the command line),
   and the kernel environment of ``atlbook run`` for a sandbox target (``ATLBOOK_SANDBOX_DIR`` plus
   ``<sandbox dir>/env``), so the runbooks find the sandbox. Ctrl-C stops JupyterLab; the sandbox keeps
   running (``atlbook sandbox down`` stops it).

What it refuses: a port outside 1–65535 or already taken (exit code 2, before anything starts); a
sandbox that does not come up (exit code 1, its log named).
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import socket
import subprocess
import sys
import types
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = [
    "LAB_OVERRIDES",
    "lab_command",
    "lab_environment",
    "overrides_path",
    "register",
    "run",
    "write_overrides",
]

LAB_OVERRIDES: dict[str, dict[str, Any]] = {
    "@jupyterlab/apputils-extension:notification": {"checkForUpdates": False, "fetchNews": "false"},
    "@jupyterlab/notebook-extension:tracker": {"autoStartDefaultKernel": True},
}
"""JupyterLab settings without which a news toast or a "Select Kernel" dialog interrupts a run."""

DEFAULT_PORT = 8888


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``atlbook lab`` to the CLI (see :data:`atlbook.cli.EXTENSIONS`)."""
    p: argparse.ArgumentParser = subparsers.add_parser(
        "lab",
        help="start the sandbox and JupyterLab on the runbooks (loopback only, token printed)",
        description=__doc__.split("\n\n", 1)[0] if __doc__ else None,
    )
    p.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help=f"port on 127.0.0.1 (default {DEFAULT_PORT})"
    )
    p.add_argument("--notebooks", type=Path, default=None, help="folder to serve (default: the runbooks)")
    p.add_argument("--no-sandbox", action="store_true", help="do not start the sandbox")
    p.set_defaults(func=run)
    return p


def overrides_path(prefix: str | None = None) -> Path:
    """``{prefix}/share/jupyter/lab/settings/overrides.json`` (``prefix`` defaults to ``sys.prefix``)."""
    return Path(prefix or sys.prefix) / "share" / "jupyter" / "lab" / "settings" / "overrides.json"


def write_overrides(
    path: Path | None = None, settings: Mapping[str, Mapping[str, Any]] = LAB_OVERRIDES
) -> Path:
    """Merge ``settings`` into the overrides file at ``path``; keeps every other key. Returns the path.

    Refuses (``ValueError``) a file that exists but is not a JSON object — it is not overwritten.
    """
    target = path or overrides_path()
    current: dict[str, Any] = {}
    if target.exists():
        text = target.read_text(encoding="utf-8").strip()
        if text:
            loaded = json.loads(text)
            if not isinstance(loaded, dict):
                raise ValueError(f"{target}: not a JSON object; not overwriting it")
            current = loaded
    merged = dict(current)
    for plugin, values in settings.items():
        section = merged.get(plugin)
        merged[plugin] = {**(section if isinstance(section, dict) else {}), **dict(values)}
    if merged != current or not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(merged, indent=2) + "\n", encoding="utf-8")
        os.replace(tmp, target)
    return target


def lab_environment(sandbox_dir: Path | None, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The Jupyter server's environment (inherited by its kernels): ``atlbook run``'s for a sandbox."""
    from atlbook import runner

    target = types.SimpleNamespace(sandbox_dir=sandbox_dir) if sandbox_dir is not None else None
    env = runner.kernel_environment(target, base)
    env.pop(runner.NOTEBOOKS_DIR_ENV, None)
    return env


def lab_command(port: int, root_dir: Path) -> list[str]:
    """The ``jupyter lab`` command line: loopback, no browser, ``root_dir`` served (token via env)."""
    cmd = [
        sys.executable,
        "-m",
        "jupyterlab",
        "--no-browser",
        "--ip=127.0.0.1",
        f"--port={port}",
        "--ServerApp.port_retries=0",
        "--ServerApp.password=",
        f"--ServerApp.root_dir={root_dir}",
    ]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")
    return cmd


def _say(text: str, *, err: bool = False) -> None:
    print(text, file=sys.stderr if err else sys.stdout, flush=True)  # noqa: T201 - a CLI command


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _ensure_sandbox(state_dir: Path) -> int:
    from atlbook.sandbox import cli as sandbox_cli

    if sandbox_cli.running_pid(state_dir) is not None:
        _say(f"sandbox: already running (state dir {state_dir})")
        return 0
    _say("sandbox: starting (atlbook sandbox up --detach) …")
    return sandbox_cli.main(["--dir", str(state_dir), "up", "--detach"])


def run(args: argparse.Namespace) -> int:
    """Execute ``atlbook lab``; returns the exit code (JupyterLab's, 2 for bad input)."""
    from atlbook import runner
    from atlbook.sandbox.paths import default_state_dir

    port = int(args.port)
    if not 0 < port < 65536:
        _say(f"atlbook lab: --port {port}: not a port (1–65535)", err=True)
        return 2
    if not _port_free(port):
        _say(f"atlbook lab: port {port} on 127.0.0.1 is taken; choose another with --port N", err=True)
        return 2
    root = (args.notebooks or runner.notebooks_dir()).resolve()
    if not root.is_dir():
        _say(f"atlbook lab: no notebooks folder at {root}", err=True)
        return 2
    sandbox_dir: Path | None = None
    if not args.no_sandbox:
        sandbox_dir = default_state_dir().resolve()
        code = _ensure_sandbox(sandbox_dir)
        if code != 0:
            return code
    settings = write_overrides()
    token = secrets.token_hex(24)
    env = lab_environment(sandbox_dir)
    env["JUPYTER_TOKEN"] = token
    _say(f"settings: {settings}")
    _say(f"JupyterLab on {root} (loopback only); Ctrl-C stops it")
    _say(f"  open:  http://127.0.0.1:{port}/lab?token={token}")
    _say(f"  token: {token}")
    proc = subprocess.Popen(lab_command(port, root), env=env, cwd=str(root))  # noqa: S603 - our interpreter
    try:
        return proc.wait()
    except KeyboardInterrupt:
        proc.terminate()
        try:
            return proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            return proc.wait()
