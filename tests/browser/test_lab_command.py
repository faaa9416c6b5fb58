"""``atlbook lab``: what it writes and how it starts JupyterLab (without starting anything).

Covers: the settings overrides are merged into an existing overrides.json (other settings kept, a
file that is not a JSON object refused and left alone); JupyterLab is bound to loopback, serves the
given folder and never gets the token on its command line; a taken port is refused with exit code 2
before the sandbox or JupyterLab start.
"""

from __future__ import annotations

import json
import socket

import pytest

from atlbook import cli
from atlbook import lab as labmod


def test_overrides_are_merged_not_clobbered(tmp_path) -> None:
    path = tmp_path / "settings" / "overrides.json"
    path.parent.mkdir()
    path.write_text(
        json.dumps(
            {
                "@jupyterlab/apputils-extension:themes": {"theme": "JupyterLab Dark"},
                "@jupyterlab/notebook-extension:tracker": {"codeCellConfig": {"lineNumbers": True}},
            }
        )
    )
    labmod.write_overrides(path)
    data = json.loads(path.read_text())
    assert data["@jupyterlab/apputils-extension:themes"] == {"theme": "JupyterLab Dark"}
    assert data["@jupyterlab/notebook-extension:tracker"] == {
        "codeCellConfig": {"lineNumbers": True},
        "autoStartDefaultKernel": True,
    }
    assert data["@jupyterlab/apputils-extension:notification"] == {
        "checkForUpdates": False,
        "fetchNews": "false",
    }
    assert labmod.write_overrides(path) == path and json.loads(path.read_text()) == data  # idempotent

    path.write_text("[1, 2]")
    with pytest.raises(ValueError, match="not a JSON object"):
        labmod.write_overrides(path)
    assert path.read_text() == "[1, 2]"


def test_jupyterlab_is_loopback_only_and_the_token_is_not_on_the_command_line(tmp_path) -> None:
    cmd = labmod.lab_command(8999, tmp_path)
    assert "--ip=127.0.0.1" in cmd and "--port=8999" in cmd and "--no-browser" in cmd
    assert f"--ServerApp.root_dir={tmp_path}" in cmd
    assert not any("token" in part.lower() for part in cmd)


def test_a_taken_port_is_refused_before_anything_starts(capsys) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        assert cli.main(["lab", "--port", str(port)]) == 2
    assert f"port {port} on 127.0.0.1 is taken" in capsys.readouterr().err
