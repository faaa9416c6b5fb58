"""Bad input at the CLI (issue 10, item 3): malformed parameter documents and ``-p`` overrides.

A hypothesis property drives ``atlbook.cli.main(["run", …])`` in-process with generated bad input of
eight families (unknown option, unknown nested stack key, wrong stack value, wrong option type, each
in a file or as ``-p``; a literal secret in ``-p``; a document that is not a mapping or not YAML).
For every example:

- the exit code is 2;
- stderr names the key (``key '<dotted key>'``), or the file when the document itself is unusable;
  a literal secret's value is never echoed;
- no kernel started: papermill's engine is replaced by a tripwire that counts and raises;
- no API call: the sandbox target (``target.yaml``: kubeconfig server, AWS endpoint URL, database
  tunnel) points at a loopback server that counts every TCP connection; the count stays 0.

``N_EXAMPLES`` examples run (the count is printed in the summary line of the test).
"""

from __future__ import annotations

import contextlib
import io
import os
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from atlbook import cli, runner

ROOT = Path(__file__).resolve().parents[3]
SANDBOX_DOC: dict[str, Any] = yaml.safe_load((ROOT / "parameters" / "sandbox.yaml").read_text())
N_EXAMPLES = 200
RUNBOOKS = ("10-provision", "30-upgrade", "40-diagnose", "50-index-recovery", "20-capacity")
TRIED: list[str] = []


class CountingServer:
    """A loopback TCP listener that counts connections (and answers nothing useful)."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self._stop = False
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            with contextlib.suppress(OSError):
                conn.sendall(b"HTTP/1.1 500 counted\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                conn.close()

    def close(self) -> None:
        self._stop = True
        self.sock.close()


@dataclass
class World:
    dir: Path
    server: CountingServer
    kernels: list[str] = field(default_factory=list)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """A fake but "up" sandbox whose every endpoint is the counting server; the kernel tripwire."""
    from papermill.engines import papermill_engines

    d = tmp_path_factory.mktemp("bad-input")
    server = CountingServer()
    url = f"http://127.0.0.1:{server.port}"
    box = d / "sandbox"
    box.mkdir()
    (box / "kubeconfig").write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": {"server": url}}],
                "users": [{"name": "u", "user": {"token": "counted"}}],
                "contexts": [{"name": "atlbook-sandbox", "context": {"cluster": "c", "user": "u"}}],
                "current-context": "atlbook-sandbox",
            }
        )
    )
    (box / "target.yaml").write_text(
        yaml.safe_dump(
            {
                "kubeconfig": str(box / "kubeconfig"),
                "context": "atlbook-sandbox",
                "aws_region": "us-east-1",
                "aws_endpoint_url": url,
                "aws_access_key_id": "testing",
                "aws_secret_access_key": "testing",
                "database_tunnel": {"host": "127.0.0.1", "port": server.port},
                "pid": os.getpid(),
            }
        )
    )
    (box / "env").write_text(
        "export ATLBOOK_SANDBOX_ADMIN_PASSWORD=x-admin\nexport ATLBOOK_SANDBOX_DB_PASSWORD=x-db\n"
    )
    w = World(d, server)

    def tripwire(*args: Any, **kwargs: Any) -> Any:
        w.kernels.append(str(kwargs.get("input_path")))
        raise AssertionError("Must not be called: a kernel would start")

    saved_env = {k: os.environ.get(k) for k in ("ATLBOOK_SANDBOX_DIR", "ATLBOOK_RECORDS_DIR")}
    os.environ["ATLBOOK_SANDBOX_DIR"] = str(box)
    os.environ["ATLBOOK_RECORDS_DIR"] = str(d / "records")
    saved_engine = papermill_engines.execute_notebook_with_engine
    saved_options = runner._all_options
    options = saved_options(runner.notebooks_dir())
    papermill_engines.execute_notebook_with_engine = tripwire  # type: ignore[method-assign]
    runner._all_options = lambda directory: options  # inspection is pure: once per module, not per example
    try:
        yield w
    finally:
        papermill_engines.execute_notebook_with_engine = saved_engine  # type: ignore[method-assign]
        runner._all_options = saved_options
        for k, v in saved_env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        server.close()


# --- generators --------------------------------------------------------------------------------
_ident = st.from_regex(r"\A[a-z][a-z0-9_]{2,14}\Z", fullmatch=True)


def _not_a_number(text: str) -> bool:
    """``-p`` values are YAML: ``+1``, ``0x1``, ``1_0``, ``1:0`` are integers there, so not junk."""
    try:
        return not isinstance(yaml.safe_load(text), int | float)
    except yaml.YAMLError:
        return True


_junk_text = st.text(
    st.characters(min_codepoint=33, max_codepoint=0x2FF, exclude_characters="#:'\"\\"), max_size=12
)


@dataclass
class Case:
    family: str
    runbook: str
    files: list[tuple[str, str]]  # (name, text)
    overrides: list[tuple[str, str]]
    expect: str
    hidden: str = ""


def _dump(doc: Any) -> str:
    return yaml.safe_dump(doc, sort_keys=False)


def _set(doc: dict[str, Any], dotted: str, value: Any) -> None:
    parts = dotted.split(".")
    node: Any = doc
    for p in parts[:-1]:
        node = node[int(p)] if isinstance(node, list) else node[p]
    if isinstance(node, list):
        node[int(parts[-1])] = value
    else:
        node[parts[-1]] = value


NESTED = (
    "stack",
    "stack.products.jira",
    "stack.products.confluence.jvm",
    "stack.database",
    "stack.node_groups.0",
)
BAD_VALUES: list[tuple[str, st.SearchStrategy[Any]]] = [
    (
        "stack.products.jira.replicas",
        st.one_of(st.integers(max_value=0), _junk_text.filter(_not_a_number)),
    ),
    ("stack.namespace", st.from_regex(r"\A[A-Z_][A-Za-z_!]{0,10}\Z", fullmatch=True)),
    ("stack.zones", st.one_of(st.just([]), st.integers(), st.lists(st.integers(), min_size=1, max_size=3))),
    (
        "stack.node_groups.0.desired_per_zone",
        st.one_of(st.integers(max_value=-1), st.lists(st.booleans(), min_size=1)),
    ),
    ("stack.products.jira.version", st.one_of(st.lists(st.integers(), min_size=1), st.just({"a": 1}))),
    ("stack.products.bitbucket.enabled", st.lists(st.booleans(), min_size=1)),
]


TEXT_FIELDS = {"stack.products.jira.version"}
"""String fields: `-p KEY TEXT` gives them text, a well-typed value (only a file can mistype them)."""


def _other_type(default: Any) -> st.SearchStrategy[Any]:
    if isinstance(default, bool):
        return st.one_of(st.lists(st.integers(), min_size=1, max_size=3), st.just({"x": 1}))
    if isinstance(default, int):
        return st.one_of(
            st.lists(st.integers(), min_size=1, max_size=3), st.from_regex(r"\A[a-z]{2,8}\Z", fullmatch=True)
        )
    if isinstance(default, str):
        return st.one_of(st.lists(st.integers(), min_size=1, max_size=3), st.just({"x": 1}))
    return st.just({"x": [1]})


def _yaml_scalar(value: Any) -> str:
    return yaml.safe_dump(value, default_flow_style=True).strip().removesuffix("...").strip()


@st.composite
def cases(draw: st.DrawFn) -> Case:
    runbook = draw(st.sampled_from(RUNBOOKS))
    family = draw(
        st.sampled_from(
            [
                "unknown-option",
                "unknown-stack-key",
                "bad-stack-value",
                "bad-option-type",
                "literal-secret",
                "not-a-mapping",
                "not-yaml",
            ]
        )
    )
    as_override = draw(st.booleans())
    doc = yaml.safe_load(_dump(SANDBOX_DOC))
    base = [("base.yaml", _dump(doc))]
    if family == "unknown-option":
        key = draw(_ident.filter(lambda k: k not in runner._all_options(Path()) and k != "stack"))
        value = draw(st.one_of(st.integers(), st.booleans(), _ident))
        if as_override:
            return Case(family, runbook, base, [(key, _yaml_scalar(value))], f"key '{key}'")
        doc[key] = value
        return Case(family, runbook, [("doc.yaml", _dump(doc))], [], f"key '{key}'")
    if family == "unknown-stack-key":
        where = draw(st.sampled_from(NESTED))
        key = draw(_ident)
        dotted = f"{where}.{key}"
        from atlbook import parameters  # noqa: F401 - the schema decides what is unknown

        node: Any = doc
        for p in where.split(".")[:]:
            node = node[int(p)] if isinstance(node, list) else node[p]
        if key in node:
            key = key + "_zz"
            dotted = f"{where}.{key}"
        if as_override:
            return Case(family, runbook, base, [(dotted, "1")], f"key '{dotted}'")
        node[key] = 1
        return Case(family, runbook, [("doc.yaml", _dump(doc))], [], f"key '{dotted}'")
    if family == "bad-stack-value":
        dotted, strat = draw(st.sampled_from(BAD_VALUES))
        value = draw(strat)
        if as_override and dotted not in TEXT_FIELDS:  # -p text IS a valid string value
            return Case(family, runbook, base, [(dotted, _yaml_scalar(value))], f"key '{dotted}'")
        _set(doc, dotted, value)
        return Case(family, runbook, [("doc.yaml", _dump(doc))], [], f"key '{dotted}'")
    if family == "bad-option-type":
        defaults = {
            k: v for k, v in runner.declared_defaults(runner.find_runbook(runbook)).items() if k != "stack"
        }
        key = draw(st.sampled_from(sorted(defaults)))
        value = draw(_other_type(defaults[key]))
        if as_override and not isinstance(defaults[key], str):  # -p text IS a valid string option
            return Case(family, runbook, base, [(key, _yaml_scalar(value))], f"key '{key}'")
        doc[key] = value
        return Case(family, runbook, [("doc.yaml", _dump(doc))], [], f"key '{key}'")
    if family == "literal-secret":
        product = draw(st.sampled_from(["jira", "confluence", "bitbucket"]))
        secret = "lit-" + draw(st.from_regex(r"\A[A-Za-z0-9]{12,20}\Z", fullmatch=True))
        dotted = f"stack.products.{product}.admin.password"
        if as_override:
            return Case(family, runbook, base, [(dotted, secret)], f"key '{dotted}'", hidden=secret)
        _set(doc, dotted, secret)
        return Case(family, runbook, [("doc.yaml", _dump(doc))], [], f"key '{dotted}'", hidden=secret)
    if family == "not-a-mapping":
        value = draw(st.one_of(st.lists(st.integers(), max_size=3), st.integers(), _ident))
        return Case(family, runbook, [("doc.yaml", _dump(value))], [], "doc.yaml")
    text = draw(
        st.sampled_from(["stack: [unclosed\n", "a: b\n c: d\n  - e\n", "stack: {x: 1\n", "\t- tab\n:"])
    )
    return Case(family, runbook, [("doc.yaml", text)], [], "doc.yaml")


@settings(
    max_examples=N_EXAMPLES,
    deadline=None,
    derandomize=True,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)
@given(case=cases())
def test_malformed_input_exits_2_names_the_key_and_touches_nothing(world: World, case: Case) -> None:
    d = world.dir / f"ex{len(TRIED)}"
    d.mkdir()
    args = ["run", case.runbook]
    for name, text in case.files:
        (d / name).write_text(text)
        args += ["-f", str(d / name)]
    for k, v in case.overrides:
        args += ["-p", k, v]
    kernels, connections = len(world.kernels), world.server.connections
    err, out = io.StringIO(), io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
        try:
            code = cli.main(args)
        except SystemExit as e:  # argparse usage errors
            code = int(e.code or 0)
    TRIED.append(case.family)
    message = err.getvalue()
    assert code == 2, (case, message, out.getvalue())
    assert case.expect.rstrip("'") in message, (case, message)  # the key, or a key below it
    if case.hidden:
        assert case.hidden not in message + out.getvalue()
    assert len(world.kernels) == kernels, (case, message, out.getvalue())
    assert world.server.connections == connections, (case, message)
    assert not (world.dir / "records").exists()


def test_zz_report_how_many_were_tried(world: World) -> None:
    """Runs after the property (file order): the figure for the issue's closing table."""
    from collections import Counter

    print(f"\nmalformed inputs tried: {len(TRIED)} {dict(Counter(TRIED))}; kernels 0; API connections 0")
    assert len(TRIED) >= N_EXAMPLES
    assert world.server.connections == 0
