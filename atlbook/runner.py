"""Run a runbook by number or name with parameter files, headless, and always leave a redacted record.

The order of a run, and why:

1. **Find the runbook** (``notebooks/NN-name.ipynb``) — :class:`~atlbook.errors.UnknownRunbookError`
   lists the choices.
2. **Validate every parameter** with :func:`atlbook.parameters.resolve` (notebook defaults < ``-f``
   files in order < ``-p key value``) and **check the target** (files only, no API call) — all before
   any kernel starts, so bad input costs nothing and changes nothing (CLI exit code 2).
3. **Execute** with papermill's nbclient engine, wrapped (engine ``atlbook``) to: start the kernel
   from this interpreter in the notebooks directory with ``ATLBOOK_HEADLESS=1``,
   ``ATLBOOK_SECRETS_FILE`` and, for a sandbox target, ``ATLBOOK_SANDBOX_DIR`` plus the variables of
   ``<sandbox dir>/env`` the operator has not set (:func:`kernel_environment`); hook
   ``atlbook.clients.secrets`` → :func:`atlbook.records.redaction.register_secret` inside the kernel
   (``IPKernelApp.exec_lines``, so no cell is added); report progress per cell on stderr — a bar on a
   terminal, one line per cell otherwise (CI logs stay readable) — and stream the notebook's stdout
   lines (the runbooks' headless progress lines: steps, waits, plan-only notices) to stderr as they
   come, each passed through a redactor rebuilt whenever the kernel's side file of secrets grows.
   Rich outputs (tables, plots) and the kernel's stderr stay in the record only.
4. **Write the record** (:func:`atlbook.records.write_record`) — also when a cell raised, the kernel
   died or the run was interrupted — after redacting with every secret known: those the kernel
   registered (side file, deleted afterwards), those resolved in this process, and the process
   registry. Unredacted output never touches the disk: papermill saves nothing during the run.

What this refuses: runbook names that match nothing or several; ``apply=True`` for a runbook that
declares no ``apply`` option; a runbook option referencing an unset ``env:`` variable; anything
:mod:`atlbook.parameters` or the target check refuses.
"""

from __future__ import annotations

import ast
import contextlib
import json
import os
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from atlbook import errors, records
from atlbook.records import redaction

__all__ = [
    "ENGINE_NAME",
    "NOTEBOOKS_DIR_ENV",
    "RUNBOOK_RE",
    "RunResult",
    "Runbook",
    "declared_defaults",
    "find_runbook",
    "kernel_environment",
    "kernel_setup",
    "list_runbooks",
    "notebooks_dir",
    "run",
]

NOTEBOOKS_DIR_ENV = "ATLBOOK_NOTEBOOKS_DIR"
"""Overrides where runbooks are looked up (tests point it at ``tests/data/notebooks``)."""

ENGINE_NAME = "atlbook"
RUNBOOK_RE = re.compile(r"^(?P<number>\d{2})-(?P<name>[a-z0-9][a-z0-9-]*)\.ipynb$")
_KERNEL = "python3"
_KERNEL_SETUP = (
    "import atlbook.runner as _atlbook_runner; _atlbook_runner.kernel_setup(); del _atlbook_runner"
)


@dataclass(frozen=True)
class Runbook:
    """A notebook under the notebooks directory named ``NN-name.ipynb``."""

    number: str
    name: str
    path: Path
    parameters: dict[str, dict[str, Any]] = field(default_factory=dict)
    """papermill's inspection: name → {name, inferred_type_name, default, help}."""

    @property
    def id(self) -> str:
        """``NN-name``, as used in record names."""
        return f"{self.number}-{self.name}"


@dataclass(frozen=True)
class RunResult:
    """The outcome of :func:`run`."""

    runbook: str
    stack: str
    outcome: str
    """``succeeded``, ``failed`` or ``interrupted``."""
    exit_code: int
    """0 succeeded, 1 failed (the record is written either way)."""
    record: records.RecordInfo
    duration_s: float
    timings: dict[str, float] = field(default_factory=dict)
    """Seconds: ``validate``, ``kernel_start``, ``execute``, ``record_write``."""
    error: dict[str, Any] | None = None
    """Redacted ``{ename, evalue, cell}`` of the first failure."""

    @property
    def values(self) -> dict[str, Any]:
        """Values the notebook recorded (redacted)."""
        return dict(self.record.summary.get("values", {}))


def notebooks_dir() -> Path:
    """``$ATLBOOK_NOTEBOOKS_DIR``, else ``notebooks/`` of the source checkout, else ``./notebooks``."""
    env = os.environ.get(NOTEBOOKS_DIR_ENV)
    if env:
        return Path(env).resolve()
    checkout = Path(__file__).resolve().parent.parent / "notebooks"
    if checkout.is_dir():
        return checkout
    return Path.cwd() / "notebooks"


def list_runbooks(directory: Path | None = None, *, inspect: bool = True) -> list[Runbook]:
    """Runbooks (``NN-name.ipynb``) in ``directory``, by number, with their parameters if ``inspect``."""
    base = directory or notebooks_dir()
    found = []
    for path in sorted(base.glob("*.ipynb")) if base.is_dir() else []:
        m = RUNBOOK_RE.match(path.name)
        if not m:
            continue
        params: dict[str, dict[str, Any]] = {}
        if inspect:
            import papermill

            params = {k: dict(v) for k, v in papermill.inspect_notebook(str(path)).items()}
        found.append(Runbook(m["number"], m["name"], path, params))
    return found


def find_runbook(query: str, directory: Path | None = None) -> Runbook:
    """The runbook named by number (``30``), name (``upgrade``), both (``30-upgrade``) or file name.

    Refuses (:class:`~atlbook.errors.UnknownRunbookError`, listing the choices) no match or several.
    """
    base = directory or notebooks_dir()
    q = query.strip().removesuffix(".ipynb")
    q = Path(q).name
    books = list_runbooks(base, inspect=False)
    matches = [b for b in books if q in (b.id, b.number, b.name)]
    if len(matches) != 1:
        choices = ", ".join(b.id for b in books) or f"none (no NN-name.ipynb in {base})"
        why = "matches several runbooks" if matches else "matches no runbook"
        raise errors.UnknownRunbookError(
            f"runbook {query!r} {why}; choose one of: {choices} (number, name or both)"
        )
    import papermill

    book = matches[0]
    params = {k: dict(v) for k, v in papermill.inspect_notebook(str(book.path)).items()}
    return Runbook(book.number, book.name, book.path, params)


def kernel_setup() -> None:
    """Run inside a kernel started by :func:`run`: announce every resolved secret to the redaction side file.

    Connects :mod:`atlbook.clients.secrets` (which knows nothing of records, by layering) to
    :func:`atlbook.records.redaction.register_secret`. A no-op if ``atlbook.clients`` is absent.
    """
    try:
        from atlbook.clients import secrets
    except ImportError:  # pragma: no cover - clients is part of the package
        return
    secrets.add_listener(redaction.register_secret)


def _check_target(target: Any, start: Path) -> Any:
    """Call ``atlbook.clients`` check_target if the clients layer provides it (files only).

    Returns the resolved target (or ``None`` when there is no check to call).
    """
    try:
        from atlbook import clients
    except ImportError:
        return None
    check = getattr(clients, "check_target", None)
    if check is None:
        try:
            from atlbook.clients import target as target_mod
        except ImportError:
            return None
        check = target_mod.check_target
    return check(target, start=start)


def _read_env_file(path: Path) -> dict[str, str]:
    """``KEY=VALUE`` / ``export KEY=VALUE`` lines (optionally quoted); anything else is skipped."""
    out: dict[str, str] = {}
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError:
        return out
    for line in lines:
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        line = line.removeprefix("export ").strip()
        key, sep, value = line.partition("=")
        if not sep or not key.replace("_", "").isalnum():
            continue
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        out[key] = value
    return out


def kernel_environment(resolved_target: Any, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment a runbook kernel starts with: this process's, plus the sandbox's when targeted.

    For a sandbox target, ``ATLBOOK_SANDBOX_DIR`` is set and the variables of ``<sandbox dir>/env``
    (written by ``atlbook sandbox up``) are added where the operator has not set them.
    """
    env = dict(os.environ if base is None else base)
    sandbox_dir = getattr(resolved_target, "sandbox_dir", None)
    if sandbox_dir is not None:
        env.setdefault("ATLBOOK_SANDBOX_DIR", str(sandbox_dir))
        for key, value in _read_env_file(Path(sandbox_dir) / "env").items():
            env.setdefault(key, value)
    return env


def declared_defaults(book: Runbook) -> dict[str, Any]:
    """The runbook's parameter defaults as Python values (papermill's inspection gives source text)."""
    out: dict[str, Any] = {}
    for name, p in book.parameters.items():
        text = p.get("default")
        try:
            out[name] = ast.literal_eval(text) if isinstance(text, str) else text
        except (ValueError, SyntaxError):
            out[name] = text
    return out


def _all_options(directory: Path) -> set[str]:
    """Option names declared by any runbook (a runbook that cannot be inspected contributes none)."""
    import papermill

    names: set[str] = set()
    for book in list_runbooks(directory, inspect=False):
        try:
            names.update(papermill.inspect_notebook(str(book.path)))
        except Exception:  # someone's broken notebook must not block other runbooks
            continue
    return names


# --- progress ------------------------------------------------------------------------------------


class _Reporter:
    """Per-cell progress on a stream: a tqdm bar on a terminal, one plain line per cell otherwise."""

    def __init__(self, label: str, code_cells: list[int], stream: TextIO, headings: list[str]) -> None:
        self.label = label
        self.order = {index: n for n, index in enumerate(code_cells, start=1)}  # markdown cells are silent
        self.total = len(code_cells)
        self.stream = stream
        self.headings = headings
        self.tty = stream.isatty()
        self.kernel_started: float | None = None
        self._cell_t0 = 0.0
        self._bar: Any = None
        self._pending = ""
        self.redact: Callable[[str], str] = lambda text: text
        if self.tty:
            from tqdm import tqdm

            # a pty without a size (CI runners, `script`) reports 0x0, and tqdm then hides the bar
            size = shutil.get_terminal_size((100, 20))
            width, rows = min(size.columns or 100, 120), size.lines or 20

            self._bar = tqdm(
                total=self.total, unit="cell", desc=label, file=stream, leave=True, ncols=width, nrows=rows
            )
        else:
            self._line(f"{label}: starting kernel")

    def _line(self, text: str) -> None:
        self.stream.write(f"[atlbook] {text}\n")
        self.stream.flush()

    def output(self, text: str) -> None:
        """A chunk of the notebook's stdout: complete lines go out redacted, a partial line waits."""
        self._pending += text
        *lines, self._pending = self._pending.split("\n")
        for line in lines:
            self._emit(line)

    def _emit(self, line: str) -> None:
        if not line.strip():
            return
        shown = self.redact(line.rstrip())
        if self._bar is not None:
            self._bar.write(f"  {shown}", file=self.stream)
        else:
            self._line(f"{self.label} | {shown}")

    def _flush_output(self) -> None:
        pending, self._pending = self._pending, ""
        self._emit(pending)

    def cell_start(self, index: int) -> None:
        if index not in self.order:
            return
        now = time.monotonic()
        if self.kernel_started is None:
            self.kernel_started = now
        self._cell_t0 = now
        if self._bar is not None:
            self._bar.set_description(f"{self.label} {self.headings[index]}"[:60])

    def cell_complete(self, index: int, failed: bool) -> None:
        if index not in self.order:
            return
        self._flush_output()
        took = time.monotonic() - self._cell_t0
        if self._bar is not None:
            self._bar.update(1)
            return
        status = "FAILED" if failed else "ok"
        heading = f" — {self.headings[index]}" if self.headings[index] else ""
        self._line(f"{self.label}: cell {self.order[index]}/{self.total} {status} ({took:.1f} s){heading}")

    def close(self) -> None:
        self._flush_output()
        if self._bar is not None:
            self._bar.close()


def _headings(nb: Any) -> list[str]:
    """For each cell, the nearest markdown heading above it (authored text, never outputs or values)."""
    current = ""
    out = []
    for cell in nb.cells:
        if cell.get("cell_type") == "markdown":
            for line in str(cell.get("source", "")).splitlines():
                if line.startswith("#"):
                    current = line.lstrip("#").strip()[:50]
                    break
        if "injected-parameters" in cell.get("metadata", {}).get("tags", []):
            out.append("injected parameters")
        else:
            out.append(current)
    return out


def _known_secrets(side_file: Path, values: Mapping[str, Any], env: Mapping[str, str]) -> set[str]:
    """Every secret a run can know of: the kernel's side file, this process, the env references."""
    known = set(redaction.load_secrets_file(side_file))
    with contextlib.suppress(ImportError):
        from atlbook.clients import secrets as secrets_mod

        known.update(secrets_mod.resolved_values())
    names: set[str] = set()
    _env_references(values, names)
    known.update(env[n] for n in names if n in env)
    return known


class _LiveRedactor:
    """Redacts streamed lines with the secrets known so far; rebuilt when the kernel's side file grows."""

    def __init__(self, side_file: Path, values: Mapping[str, Any], env: Mapping[str, str]) -> None:
        self.side_file, self.values, self.env = side_file, values, env
        self._size = -1
        self._redactor = redaction.default_redactor(_known_secrets(side_file, values, env))

    def __call__(self, text: str) -> str:
        try:
            size = self.side_file.stat().st_size
        except OSError:
            size = 0
        if size != self._size:
            self._size = size
            self._redactor = redaction.default_redactor(_known_secrets(self.side_file, self.values, self.env))
        return self._redactor.redact_text(text)


def _register_engine() -> None:
    from papermill.clientwrap import PapermillNotebookClient
    from papermill.engines import NBClientEngine, papermill_engines

    class AtlbookEngine(NBClientEngine):  # type: ignore[misc]
        """nbclient engine with a kernel environment, cwd, setup line and per-cell progress."""

        @classmethod
        def execute_managed_notebook(cls, nb_man: Any, kernel_name: str, **kwargs: Any) -> Any:
            env = kwargs.pop("atlbook_env")
            cwd = kwargs.pop("atlbook_cwd")
            reporter: _Reporter = kwargs.pop("atlbook_reporter")
            kernel_log = kwargs.pop("atlbook_kernel_log")
            start_cell, complete_cell = nb_man.cell_start, nb_man.cell_complete

            def cell_start(cell: Any, cell_index: int | None = None, **kw: Any) -> None:
                reporter.cell_start(cell_index or 0)
                start_cell(cell, cell_index, **kw)

            def cell_complete(cell: Any, cell_index: int | None = None, **kw: Any) -> None:
                complete_cell(cell, cell_index, **kw)
                failed = any(o.get("output_type") == "error" for o in cell.get("outputs", []))
                reporter.cell_complete(cell_index or 0, failed)

            nb_man.cell_start, nb_man.cell_complete = cell_start, cell_complete

            class Client(PapermillNotebookClient):  # type: ignore[misc]
                """Passes each stdout stream message to the reporter (redacted there) as it arrives."""

                def process_message(self, *args: Any, **kw: Any) -> Any:
                    output = super().process_message(*args, **kw)
                    if (
                        output is not None
                        and output.get("output_type") == "stream"
                        and output.get("name") == "stdout"
                    ):
                        reporter.output("".join(output.get("text", "")))
                    return output

            client = Client(
                nb_man,
                kernel_name=kernel_name,
                startup_timeout=kwargs.get("start_timeout", 60),
                timeout=kwargs.get("execution_timeout"),
                log=kwargs.get("log") or _quiet_logger(),
                log_output=False,
                extra_arguments=[f"--IPKernelApp.exec_lines={_KERNEL_SETUP}"],
                coalesce_streams=True,
            )
            # the kernel process's own stdout/stderr (warnings, crashes) go to a private file that is
            # redacted into the record, never to the terminal
            return client.execute(env=env, cwd=cwd, stdout=kernel_log, stderr=kernel_log)

    papermill_engines.register(ENGINE_NAME, AtlbookEngine)


def _quiet_logger() -> Any:
    import logging

    log = logging.getLogger("atlbook.runner.kernel")
    log.propagate = False
    log.addHandler(logging.NullHandler())
    return log


def _first_error(nb: Any) -> dict[str, Any] | None:
    for index, cell in enumerate(nb.cells):
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                return {"ename": out.get("ename"), "evalue": out.get("evalue"), "cell": index}
    return None


def _mark_failure(nb: Any, cell_index: int, stack: str) -> None:
    """Put a visible marker above the failing cell (papermill does the same) and at the top."""
    import nbformat

    v4: Any = nbformat.v4
    marker = v4.new_markdown_cell(
        f"**atlbook: this cell failed** (run on stack `{stack}`). Read the error below, then the "
        '"What to do if this fails" section of this runbook.'
    )
    marker.metadata["tags"] = ["atlbook-error-marker"]
    nb.cells.insert(cell_index, marker)


def _env_references(value: Any, found: set[str]) -> None:
    """Collect ``env:NAME`` references anywhere in the parameter values."""
    if isinstance(value, str) and value.startswith("env:"):
        found.add(value[4:])
    elif isinstance(value, Mapping):
        for v in value.values():
            _env_references(v, found)
    elif isinstance(value, list | tuple):
        for v in value:
            _env_references(v, found)


def _check_env_references(resolved: Any, env: Mapping[str, str]) -> None:
    """Refuse (before any kernel) a runbook option that references an unset environment variable.

    Only the runbook's own options are checked: references inside the stack are resolved by the
    runbooks that need them (a read-only runbook must not be refused for an admin password it never uses).
    """
    provenance = dict(getattr(resolved, "provenance", {}) or {})
    for key, value in resolved.values.items():
        if key == "stack" or not isinstance(value, str) or not value.startswith("env:"):
            continue
        name = value[4:]
        if name not in env:
            raise errors.ParameterError(
                f"references the environment variable {name}, which is not set",
                source=provenance.get(key, "parameters"),
                key=key,
                allowed=f"export {name}=... before `atlbook run`, or give another reference: -p {key} REF",
            )


def _stack_name(resolved: Any) -> str:
    stack = getattr(resolved, "stack", None)
    name = getattr(stack, "name", None)
    if isinstance(name, str) and name:
        return name
    raw = getattr(resolved, "values", {}).get("stack")
    if isinstance(raw, Mapping) and isinstance(raw.get("name"), str):
        return str(raw["name"])
    return str(raw) if isinstance(raw, str) else "unknown"


def run(
    runbook: str,
    files: Sequence[Path],
    overrides: Sequence[tuple[str, str]],
    apply: bool = False,
    output_root: Path = Path("records"),
    *,
    directory: Path | None = None,
    stream: TextIO | None = None,
    start_timeout: float = 60,
    execution_timeout: float | None = None,
    on_record: Callable[[records.RecordInfo], None] | None = None,
) -> RunResult:
    """Validate, check the target, execute ``runbook`` headless and write its redacted record.

    Raises :class:`~atlbook.errors.ConfigError` (and subclasses) before any kernel starts for bad
    input. Returns a :class:`RunResult`; a failing notebook is ``outcome="failed"``, ``exit_code=1``
    (its record is written). ``KeyboardInterrupt`` writes the record (``interrupted``) and re-raises.
    """
    t0 = time.monotonic()
    started = datetime.now(UTC)
    out = stream or sys.stderr
    base = (directory or notebooks_dir()).resolve()
    book = find_runbook(runbook, base)
    if apply and "apply" not in book.parameters:
        raise errors.ConfigError(
            f"--apply: runbook {book.id} declares no 'apply' option (it changes nothing); drop --apply"
        )
    overrides = list(overrides) + ([("apply", "true")] if apply else [])

    from atlbook import parameters as parameters_mod

    resolved = parameters_mod.resolve(
        declared_defaults(book), [Path(f) for f in files], overrides, known_options=_all_options(base)
    )
    stack = _stack_name(resolved)
    cwd = Path.cwd()
    stack_spec = getattr(resolved, "stack", None)
    resolved_target = None
    if stack_spec is not None and getattr(stack_spec, "target", None) is not None:
        resolved_target = _check_target(stack_spec.target, cwd)
    env = kernel_environment(resolved_target)
    # Where each value came from (default / file / -p), for the parameter panel of atlbook.widgets.
    env["ATLBOOK_PARAMETER_PROVENANCE"] = json.dumps(dict(getattr(resolved, "provenance", {}) or {}))
    _check_env_references(resolved, env)
    t_validated = time.monotonic()
    values = dict(resolved.values)
    output_root = Path(output_root).resolve()

    import papermill
    from papermill.engines import papermill_engines
    from papermill.execute import prepare_notebook_metadata
    from papermill.iorw import load_notebook_node

    _register_engine()
    nb = load_notebook_node(str(book.path))
    nb = papermill.parameterize.parameterize_notebook(nb, values, kernel_name=_KERNEL, language="python")
    nb = prepare_notebook_metadata(nb, str(book.path), "")
    code_cells = [i for i, c in enumerate(nb.cells) if c.get("cell_type") == "code"]
    reporter = _Reporter(book.id, code_cells, out, _headings(nb))
    outcome, crash, interrupted = "succeeded", None, False
    private = Path(tempfile.mkdtemp(prefix="atlbook-run-"))  # 0700: the side file and kernel.log
    try:
        side_file = private / "secrets.jsonl"
        env.update(
            {
                redaction.SECRETS_FILE_ENV: str(side_file),
                "ATLBOOK_HEADLESS": "1",
                "ATLBOOK_RUNBOOK": book.id,
                "ATLBOOK_STACK": stack,
                "PYTHONUNBUFFERED": "1",
            }
        )
        reporter.redact = _LiveRedactor(side_file, values, env)
        t_exec = time.monotonic()
        with (private / "kernel.log").open("wb") as kernel_log:
            try:
                nb = papermill_engines.execute_notebook_with_engine(
                    ENGINE_NAME,
                    nb,
                    kernel_name=_KERNEL,
                    input_path=str(book.path),
                    output_path=None,
                    progress_bar=False,
                    log_output=False,
                    autosave_cell_every=0,
                    start_timeout=start_timeout,
                    execution_timeout=execution_timeout,
                    atlbook_env=env,
                    atlbook_cwd=str(base),
                    atlbook_reporter=reporter,
                    atlbook_kernel_log=kernel_log,
                )
            except KeyboardInterrupt:
                outcome, interrupted = "interrupted", True
                crash = {"ename": "KeyboardInterrupt", "evalue": "interrupted by the operator", "cell": None}
            except Exception as e:  # kernel died, timeout, …: still write the record
                outcome = "failed"
                crash = {"ename": type(e).__name__, "evalue": str(e), "cell": None}
            finally:
                reporter.close()
        t_done = time.monotonic()

        error = _first_error(nb) or crash
        if error is not None and outcome == "succeeded":
            outcome = "failed"
        failed_cell = error.get("cell") if error is not None else None
        if error is not None and isinstance(failed_cell, int):
            error["step"] = _headings(nb)[failed_cell]
            _mark_failure(nb, failed_cell, stack)

        redactor = redaction.default_redactor(_known_secrets(side_file, values, env))

        exit_code = 0 if outcome == "succeeded" else 1
        kernel_start = (reporter.kernel_started - t_exec) if reporter.kernel_started else None
        timings = {
            "validate": round(t_validated - t0, 3),
            "kernel_start": round(kernel_start, 3) if kernel_start is not None else None,
            "execute": round(t_done - t_exec, 3),
        }
        info = records.write_record(
            nb,
            runbook=book.id,
            stack=stack,
            outcome=outcome,
            started=started,
            finished=datetime.now(UTC),
            parameters=values,
            redactor=redactor,
            output_root=output_root,
            exit_code=exit_code,
            error=error,
            extra={
                "timings_s": timings,
                "provenance": dict(getattr(resolved, "provenance", {}) or {}),
                "ignored_options": dict(getattr(resolved, "ignored", {}) or {}),
                "advisories": list(getattr(resolved, "advisories", []) or []),
                "notebook": str(book.path),
            },
            attachments={
                "kernel.log": (private / "kernel.log").read_text(encoding="utf-8", errors="replace")
            },
        )
    finally:
        shutil.rmtree(
            private, ignore_errors=True
        )  # unredacted side file and kernel log never outlive the run
    timings["record_write"] = round(time.monotonic() - t_done, 3)
    if on_record is not None:
        on_record(info)
    if interrupted:
        raise KeyboardInterrupt
    return RunResult(
        runbook=book.id,
        stack=stack,
        outcome=outcome,
        exit_code=exit_code,
        record=info,
        duration_s=round(time.monotonic() - t0, 3),
        timings={k: v for k, v in timings.items() if v is not None},
        error=info.summary.get("error"),
    )
