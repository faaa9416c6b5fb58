"""``atlbook run`` end to end: the CLI in a subprocess, test runbooks from ``tests/data/notebooks``.

Aspects covered:
- success: exit 0, one output line with outcome and record path, record files 0600 in a 0700 dir,
  recorded values readable with ``records.read`` (assert on values, not text), ``--apply`` reaches the
  notebook as ``apply: true``, the HTML reads offline, ``atlbook records`` / ``records show`` list it;
- failure: exit 1, the record is still written with outcome ``failed`` and the error (redacted); the
  same when the kernel dies; Ctrl-C (SIGINT to the process group) exits 130 with an ``interrupted`` record;
- bad input: exit 2, a message on stderr naming what is wrong, no kernel started (an IPython kernel
  creates ``$IPYTHONDIR/profile_default`` when it starts; the success test shows the marker works) and
  no record written;
- secrets sweep: distinct values planted through ``-p`` overrides (as ``env:`` references resolved in
  the kernel, from the operator's environment and from the sandbox's ``env`` file), printed output
  (stdout/stderr, base64, URL-encoded), HTML output, recorded values, an exception message and a JDBC
  string, then every file of the record plus the CLI's stdout/stderr is
  searched: 0 found; ``summary.json`` counts what was masked. A literal secret in ``-p`` is refused
  without echoing it.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import stat
import subprocess
import sys
import time
import types
import urllib.parse
from pathlib import Path

import nbformat
import pytest

from atlbook import cli, errors, records, runner

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data" / "notebooks"
SANDBOX_YAML = ROOT / "parameters" / "sandbox.yaml"
_SCRIPT = Path(sys.executable).parent / "atlbook"  # the console script
ATLBOOK = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "atlbook.cli"]

KUBECONFIG = """\
apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:9"}}]
users: [{name: u, user: {token: not-a-real-token}}]
contexts: [{name: atlbook-sandbox, context: {cluster: c, user: u}}]
current-context: atlbook-sandbox
"""


class Workdir:
    """A scratch directory with a fake (files-only) sandbox target, and a way to run the CLI in it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.records = path / "records"
        self.ipython_dir = path / "ipython"
        sandbox = self.sandbox = path / ".atlbook" / "sandbox"
        sandbox.mkdir(parents=True)
        (sandbox / "kubeconfig").write_text(KUBECONFIG)
        (sandbox / "target.yaml").write_text(
            "kubeconfig: kubeconfig\ncontext: atlbook-sandbox\naws_region: us-east-1\n"
        )
        self.env = {
            **os.environ,
            "ATLBOOK_SANDBOX_DIR": str(sandbox),
            "ATLBOOK_NOTEBOOKS_DIR": str(DATA),
            "ATLBOOK_RECORDS_DIR": str(self.records),
            "IPYTHONDIR": str(self.ipython_dir),
        }

    def atlbook(self, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*ATLBOOK, *args],
            cwd=self.path,
            env={**self.env, **(env or {})},
            capture_output=True,
            text=True,
            timeout=300,
        )

    def run(
        self, runbook: str, *args: str, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        return self.atlbook("run", runbook, "-f", str(SANDBOX_YAML), *args, env=env)

    def record_dirs(self) -> list[Path]:
        return sorted(p for p in self.records.glob("*") if p.is_dir()) if self.records.exists() else []

    def kernel_started(self) -> bool:
        return (self.ipython_dir / "profile_default").exists()


@pytest.fixture
def work(tmp_path: Path) -> Workdir:
    return Workdir(tmp_path)


def _only_record(work: Workdir) -> Path:
    dirs = work.record_dirs()
    assert len(dirs) == 1, dirs
    return dirs[0]


def test_success_writes_a_private_record(work: Workdir) -> None:
    proc = work.run("91", "-p", "greeting", "hi there", "-p", "count", "5", "--apply")
    assert proc.returncode == 0, proc.stderr
    assert work.kernel_started()  # the marker the bad-input tests rely on
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("succeeded") and "91-echo" in lines[0]
    rec = _only_record(work)
    assert str(rec) in lines[0]
    assert rec.name.endswith("-91-echo-sandbox")
    assert stat.S_IMODE(rec.stat().st_mode) == 0o700
    assert {"notebook.ipynb", "record.html", "summary.json"} <= {p.name for p in rec.iterdir()}
    for f in [*rec.iterdir(), work.records / "index.jsonl"]:
        assert stat.S_IMODE(f.stat().st_mode) == 0o600, f

    nbformat.validate(nbformat.read(rec / "notebook.ipynb", as_version=4))
    values = records.read(rec)
    assert values == {"greeting": "hi there", "count": 10, "stack_name": "sandbox", "applied": True}
    summary = json.loads((rec / "summary.json").read_text())
    assert summary["outcome"] == "succeeded" and summary["exit_code"] == 0
    assert summary["parameters"]["apply"] is True
    assert summary["provenance"]["greeting"] == "-p"
    assert summary["redaction"]["ran"] is True
    assert summary["timings_s"]["kernel_start"] > 0
    page = (rec / "record.html").read_text()
    assert '<script src="http' not in page and "Counting" in page
    # the runbook's headless progress lines reach the terminal as they come, labelled by runbook
    streamed = [line for line in proc.stderr.splitlines() if line.startswith("[atlbook] 91-echo | ")]
    assert any("Counting: done, 5" in line for line in streamed), proc.stderr
    assert any("Applying: 2 create(s)" in line for line in streamed), proc.stderr

    listed = work.atlbook("records", "--runbook", "echo")
    assert listed.returncode == 0 and rec.name in listed.stdout
    shown = work.atlbook("records", "show", "latest")
    assert shown.returncode == 0 and json.loads(shown.stdout)["id"] == rec.name


def test_failing_notebook_exits_1_and_still_writes_the_record(work: Workdir) -> None:
    proc = work.run("fail")
    assert proc.returncode == 1, proc.stderr
    assert proc.stdout.startswith("failed") and "RuntimeError" in proc.stdout
    rec = _only_record(work)
    summary = json.loads((rec / "summary.json").read_text())
    assert summary["outcome"] == "failed" and summary["exit_code"] == 1
    assert summary["error"]["ename"] == "RuntimeError"
    assert "on purpose" in summary["error"]["evalue"]
    assert records.read(rec) == {"before": 1}
    index = [json.loads(x) for x in (work.records / "index.jsonl").read_text().splitlines()]
    assert [e["outcome"] for e in index] == ["failed"]


BAD_INPUT = [
    (["run", "99", "-f", str(SANDBOX_YAML)], "matches no runbook"),
    (["run", "91", "-f", "missing.yaml"], "missing.yaml"),
    (["run", "91", "-f", "notyaml.yaml"], "notyaml.yaml"),
    (["run", "91", "-f", str(SANDBOX_YAML), "-p", "greting", "x"], "did you mean 'greeting'"),
    (["run", "91", "-f", str(SANDBOX_YAML), "-p", "count", "many"], "count"),
    (["run", "91", "-f", str(SANDBOX_YAML), "-p", "stack.products.jira.replicas", "0"], "replicas"),
    (["run", "93", "-f", str(SANDBOX_YAML), "-p", "db_password", "Literal-Sweep-Pw-9"], "reference"),
    (["run", "92", "-f", str(SANDBOX_YAML), "--apply"], "--apply"),
    (
        ["run", "94", "-f", str(SANDBOX_YAML), "-p", "secret_ref", "env:ATLBOOK_TEST_NOT_SET"],
        "ATLBOOK_TEST_NOT_SET",
    ),
    (["run", "91", "-f", str(SANDBOX_YAML), "--bogus"], "unrecognized arguments"),
]


@pytest.mark.parametrize(
    "args, says",
    BAD_INPUT,
    ids=[
        "runbook",
        "missing-file",
        "not-yaml",
        "typo",
        "type",
        "replicas",
        "literal",
        "apply",
        "unset-env",
        "flag",
    ],
)
def test_bad_input_exits_2_and_starts_nothing(work: Workdir, args: list[str], says: str) -> None:
    (work.path / "notyaml.yaml").write_text("stack: [unclosed\n")
    proc = work.atlbook(*args)
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert says in proc.stderr
    assert "Literal-Sweep-Pw-9" not in proc.stderr + proc.stdout
    assert not work.records.exists()
    assert not work.kernel_started()
    assert "starting kernel" not in proc.stderr


def test_dead_kernel_exits_1_with_a_redacted_record(work: Workdir) -> None:
    secret = "Crash-Secret-55x"
    proc = work.run("crash", "-p", "secret_ref", "env:ATLBOOK_TEST_CR", env={"ATLBOOK_TEST_CR": secret})
    assert proc.returncode == 1, proc.stderr
    rec = _only_record(work)
    summary = json.loads((rec / "summary.json").read_text())
    assert summary["outcome"] == "failed"
    assert summary["error"]["ename"] == "DeadKernelError"
    assert records.read(rec) == {"before": 1}
    assert summary["redaction"]["secrets_registered"] >= 1  # the side file survived the kernel
    assert summary["redaction"]["masked"]["secret"] >= 1
    for f in rec.iterdir():
        assert secret not in f.read_text(errors="replace"), f


def test_interrupt_writes_the_record_and_exits_130(work: Workdir) -> None:
    proc = subprocess.Popen(
        [*ATLBOOK, "run", "sleep", "-f", str(SANDBOX_YAML)],
        cwd=work.path,
        env=work.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    assert proc.stderr is not None
    for line in proc.stderr:  # one line per cell, headless
        if "1. Wait" in line or "injected parameters" in line:
            break
    time.sleep(1.5)
    os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C: the whole process group, kernel included
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 130
    assert out.startswith("interrupted") and "record=" in out
    rec = _only_record(work)
    summary = json.loads((rec / "summary.json").read_text())
    assert summary["outcome"] == "interrupted" and summary["exit_code"] == 1
    assert "done" not in records.read(rec)


def test_sandbox_not_up_is_bad_input(work: Workdir) -> None:
    proc = work.run("91", env={"ATLBOOK_SANDBOX_DIR": str(work.path / "nowhere")})
    assert proc.returncode == 2
    assert "atlbook sandbox up" in proc.stderr
    assert not work.records.exists() and not work.kernel_started()


def test_secrets_sweep(work: Workdir) -> None:
    planted = {
        "ATLBOOK_TEST_PW": "Sweep-Pw-7f3a!q",  # operator's environment
        "ATLBOOK_TEST_RAW": "SweepJdbc4d2b",  # printed inside a JDBC URL, never registered: caught by pattern
    }
    # the sandbox's env file (written by `atlbook sandbox up`) is the other source of env: references
    (work.sandbox / "env").write_text("export ATLBOOK_TEST_TOK='sweep/Tok+9c1e=z'\n")
    refs = ["-p", "db_password", "env:ATLBOOK_TEST_PW", "-p", "api_token", "env:ATLBOOK_TEST_TOK"]
    proc = work.run("93", *refs, env=planted)
    assert proc.returncode == 1, proc.stderr  # the notebook ends by raising with both secrets in the message
    rec = _only_record(work)

    needles = {*planted.values(), "sweep/Tok+9c1e=z"}
    for value in ("Sweep-Pw-7f3a!q", "sweep/Tok+9c1e=z"):
        needles |= {
            base64.b64encode(value.encode()).decode(),
            urllib.parse.quote(value, safe=""),
            base64.b64encode(f"admin:{value}".encode()).decode(),
        }
    files = [p for p in work.records.rglob("*") if p.is_file()]
    assert len(files) >= 4
    found = {
        (str(f.relative_to(work.records)), n)
        for f in files
        for n in needles
        if n in f.read_text(errors="replace")
    }
    found |= {("cli-output", n) for n in needles if n in proc.stdout + proc.stderr}
    assert found == set()
    # the printed lines were streamed (redacted), not held back
    assert "93-secrets | password: [REDACTED:secret] token [REDACTED:secret]" in proc.stderr
    assert "password=[REDACTED" in proc.stderr  # the JDBC line, caught by pattern while streaming

    summary = json.loads((rec / "summary.json").read_text())
    masked = summary["redaction"]["masked"]
    assert summary["redaction"]["ran"] is True
    assert summary["redaction"]["secrets_registered"] >= 2
    assert masked["secret"] >= 8
    assert masked["password_field"] >= 1  # the JDBC string
    assert summary["error"]["ename"] == "RuntimeError"
    assert "[REDACTED:secret]" in summary["error"]["evalue"]
    assert records.read(rec)["leak"] == {"pw": "[REDACTED:secret]", "tok": "[REDACTED:secret]"}


# --- the pieces the CLI stands on (no kernel) -------------------------------------------------------


@pytest.mark.parametrize(
    "query", ["91", "echo", "91-echo", "91-echo.ipynb", "tests/data/notebooks/91-echo.ipynb"]
)
def test_find_runbook_by_number_name_or_both(query: str) -> None:
    book = runner.find_runbook(query, DATA)
    assert book.id == "91-echo"
    assert runner.declared_defaults(book) == {
        "stack": "sandbox",
        "apply": False,
        "greeting": "hello",
        "count": 3,
    }


def test_unknown_runbook_lists_the_choices() -> None:
    with pytest.raises(errors.UnknownRunbookError) as e:
        runner.find_runbook("upgrade", DATA)
    assert "91-echo" in str(e.value) and "95-sleep" in str(e.value)


def test_kernel_environment_adds_the_sandbox_env_file(tmp_path: Path) -> None:
    (tmp_path / "env").write_text("export A=1\nB='two words'\n# comment\nexport KEEP=sandbox\nnot a line\n")
    target = types.SimpleNamespace(sandbox_dir=tmp_path)
    env = runner.kernel_environment(target, base={"KEEP": "operator"})
    assert env == {"ATLBOOK_SANDBOX_DIR": str(tmp_path), "A": "1", "B": "two words", "KEEP": "operator"}
    assert runner.kernel_environment(types.SimpleNamespace(), base={"X": "1"}) == {"X": "1"}


def test_cli_registers_extensions_that_exist(monkeypatch) -> None:
    registered = []
    fake = types.ModuleType("atlbook_fake_ext")
    fake.register = lambda sub: registered.append(sub.add_parser("fake"))  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "atlbook_fake_ext", fake)
    monkeypatch.setattr(cli, "EXTENSIONS", ("atlbook_fake_ext", "atlbook_not_written_yet"))
    parser = cli.build_parser()
    assert registered and parser.parse_args(["fake"]).command == "fake"
