"""Fixtures of the browser tier: the sandbox, JupyterLab on a copy of the runbooks, headless Chromium.

- ``lab`` (session): ``jupyter lab`` on a free loopback port, its own root dir (a copy of ``notebooks/``
  and ``parameters/``), its own settings / workspaces / runtime dirs, the settings overrides of
  ``atlbook.lab`` merged into ``{sys.prefix}``'s ``overrides.json``, and the kernel environment of a
  sandbox target (``ATLBOOK_SANDBOX_DIR`` …) so the runbooks find the session's sandbox.
- ``browser`` (session): Debian's ``/usr/bin/chromium`` driven by Playwright for Python, headless, with
  the flags of ``reference/tooling.md`` (never ``playwright install``).
- ``jira_cluster``: the sandbox reset, then a two-node Jira cluster ready for a zero-downtime upgrade,
  built as the upgrade sandbox tests build it (``tests/sandbox/upgrade/upgrade_stack.py``): EKS cluster,
  RDS instance, Jira StatefulSet + Service + PDB on ``VERSIONS["jira"]``, every node Ready.
- ``page``: a fresh browser context per test; a screenshot is saved under the test's ``tmp_path`` when
  the test ends (``screenshot.png``), and ``shot(name)`` saves more on the way.

The whole tier is skipped, with the reason, when chromium or Playwright is missing (CI installs both).
"""

from __future__ import annotations

import ctypes
import importlib.util
import os
import pathlib
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from atlbook import lab as labmod
from atlbook.testing import (  # noqa: F401 - fixtures
    ADMIN_PASSWORD,
    aws_client,
    boto3_session,
    k8s_api,
    sandbox,
    sandbox_reset,
    sandbox_target,
)

ROOT = pathlib.Path(__file__).resolve().parents[2]
CHROMIUM = pathlib.Path(os.environ.get("ATLBOOK_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-dev-shm-usage",
]
SOURCE_ENV = "ATLBOOK_BROWSER_SOURCE"
"""Where the runbooks are copied from (default: this checkout); for trying unmerged notebooks."""

# provisioning attaches AWS managed policies to the roles it creates; moto loads them only when asked
# (read when its IAM backend is re-created, i.e. at a sandbox reset)
os.environ.setdefault("MOTO_IAM_LOAD_MANAGED_POLICIES", "true")


def _missing() -> str | None:
    if not CHROMIUM.exists():
        return f"{CHROMIUM} not found: install Debian's chromium (apt-get install -y chromium; .ci/run does)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright (Python) is not installed: pip install -e '.[dev]'"
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    reason = _missing()
    if reason is None:
        return
    here = pathlib.Path(__file__).parent
    for item in items:
        if pathlib.Path(str(item.fspath)).is_relative_to(here):
            item.add_marker(pytest.mark.skip(reason=reason))


def _prctl() -> Any:
    try:
        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


_PRCTL = _prctl()
_PR_SET_PDEATHSIG = 1
_SIGTERM = int(signal.SIGTERM)


def _die_with_parent() -> None:
    """In the child: SIGTERM when the test process dies, even by SIGKILL (no orphaned JupyterLab).

    Runs between fork and exec: no imports, no allocation beyond the call itself.
    """
    if _PRCTL is not None:
        _PRCTL(_PR_SET_PDEATHSIG, _SIGTERM)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class Lab:
    """A running JupyterLab: ``url(path)`` adds the token; ``root`` is its root dir."""

    def __init__(self, port: int, token: str, root: pathlib.Path, proc: subprocess.Popen[bytes]) -> None:
        self.port, self.token, self.root, self.proc = port, token, root, proc

    def url(self, path: str = "lab") -> str:
        return f"http://127.0.0.1:{self.port}/{path}?token={self.token}"


@pytest.fixture(scope="session")
def lab(sandbox: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:  # noqa: F811
    base = tmp_path_factory.mktemp("lab")
    source = pathlib.Path(os.environ.get(SOURCE_ENV) or ROOT)
    root = base / "root"
    root.mkdir()
    shutil.copytree(source / "notebooks", root / "notebooks")
    shutil.copytree(source / "parameters", root / "parameters")
    labmod.write_overrides()
    # every cell rendered (no windowing / content-visibility), so text outside the viewport can be read
    tracker = base / "settings" / "@jupyterlab" / "notebook-extension" / "tracker.jupyterlab-settings"
    tracker.parent.mkdir(parents=True)
    tracker.write_text('{"windowingMode": "none"}')
    env = labmod.lab_environment(sandbox.state_dir)
    token = "browser-tier-" + os.urandom(8).hex()
    env.update(
        {
            "JUPYTER_TOKEN": token,
            "JUPYTERLAB_SETTINGS_DIR": str(base / "settings"),
            "JUPYTERLAB_WORKSPACES_DIR": str(base / "workspaces"),
            "JUPYTER_RUNTIME_DIR": str(base / "runtime"),
            "JUPYTER_CONFIG_DIR": str(base / "config"),
            "MPLBACKEND": "module://matplotlib_inline.backend_inline",
        }
    )
    # the values of the env references parameters/sandbox.yaml names, as this sandbox set them
    env.update(getattr(sandbox, "passwords", None) or {"ATLBOOK_SANDBOX_ADMIN_PASSWORD": ADMIN_PASSWORD})
    env.pop("ATLBOOK_HEADLESS", None)
    port = _free_port()
    log = (base / "jupyter.log").open("wb")
    cmd = labmod.lab_command(port, root / "notebooks")
    proc = subprocess.Popen(  # noqa: S603 - our interpreter
        cmd, env=env, cwd=str(root / "notebooks"), stdout=log, stderr=log, preexec_fn=_die_with_parent
    )
    server = Lab(port, token, root / "notebooks", proc)
    deadline = time.monotonic() + 90
    while True:
        try:
            with urllib.request.urlopen(server.url("api/status"), timeout=2) as r:  # noqa: S310 - loopback
                if r.status == 200:
                    break
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            log.close()
            pytest.fail(f"JupyterLab did not start; log: {(base / 'jupyter.log').read_text()[-3000:]}")
        time.sleep(0.2)
    try:
        yield server
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_FLAGS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def page(browser: Any, tmp_path: pathlib.Path) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1600, "height": 1100})
    context.set_default_timeout(30_000)
    pg = context.new_page()
    try:
        yield pg
    finally:
        try:
            pg.screenshot(path=str(tmp_path / "screenshot.png"), full_page=False)
        finally:
            context.close()


@pytest.fixture
def shot(page: Any, tmp_path: pathlib.Path) -> Callable[[str], pathlib.Path]:
    """``shot("name")`` saves ``<tmp_path>/name.png`` of the page now."""

    def take(name: str) -> pathlib.Path:
        path = tmp_path / f"{name}.png"
        page.screenshot(path=str(path))
        return path

    return take


def _upgrade_stack() -> Any:
    """``tests/sandbox/upgrade/upgrade_stack.py``, the builder the upgrade sandbox tests use."""
    if "upgrade_stack" in sys.modules:
        return sys.modules["upgrade_stack"]
    path = ROOT / "tests" / "sandbox" / "upgrade" / "upgrade_stack.py"
    spec = importlib.util.spec_from_file_location("upgrade_stack", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["upgrade_stack"] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def jira_cluster(
    sandbox_reset: Any,  # noqa: F811
    aws_client: Any,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Any]:
    """The sandbox with two Jira nodes on the old version, Ready; yields the builder module.

    The admin Secret holds the password the lab's kernels know (the sandbox's own random one, which
    ``parameters/sandbox.yaml`` references), not the builder's fixed one.
    """
    import base64

    from atlbook import clients
    from atlbook.clients import k8s

    builder = _upgrade_stack()
    monkeypatch.setenv("ATLBOOK_SANDBOX_DIR", str(sandbox_reset.state_dir.resolve()))
    password = (getattr(sandbox_reset, "passwords", None) or {}).get("ATLBOOK_SANDBOX_ADMIN_PASSWORD")
    bundle = clients.connect("sandbox")
    try:
        builder.build(bundle.k8s, aws_client, "jira", 2)
        if password:
            data = {"password": base64.b64encode(password.encode()).decode()}
            k8s.patch(bundle.k8s, "Secret", "jira-admin", {"data": data}, builder.NAMESPACE)
        builder.wait_ready(bundle.k8s, "jira", 2)
        yield builder
    finally:
        bundle.close()
