"""Records: what a run leaves behind, and how a notebook publishes values into it.

Inside a notebook, :func:`record` publishes a JSON-able value as a custom MIME output
(:data:`RECORD_MIME`) with a small ``text/html`` + ``text/plain`` twin so that it reads offline.
:func:`read` returns the recorded values of an executed notebook; tests assert on these, never on
printed text.

The runner calls :func:`write_record` once per run, failed or not. It writes
``<root>/<UTC timestamp>-<runbook>-<stack>/`` (directory 0700, files 0600)::

    notebook.ipynb   the executed notebook, redacted
    record.html      a self-contained HTML render (no script or stylesheet fetched from the network)
    summary.json     outcome, timings, parameters (redacted), plan, steps done, findings, values,
                     and what the redaction pass masked (counts per kind, never values)

and appends one line to ``<root>/index.jsonl``. :func:`list_records` and :func:`show_record` read them
back. Values recorded under the reserved names ``plan``, ``steps_done`` and ``findings`` are lifted
into their own fields of ``summary.json``.

What this refuses: :func:`record` refuses names that are not identifiers and values that are not
JSON-serialisable; :func:`write_record` never writes anything before the redaction pass has run and
never overwrites an existing record; nothing here can turn redaction off.
"""

from __future__ import annotations

import contextlib
import copy
import fcntl
import html
import importlib
import json
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from atlbook import errors
from atlbook.records import redaction

__all__ = [
    "INDEX_NAME",
    "RECORD_MIME",
    "RESERVED_NAMES",
    "RecordInfo",
    "list_records",
    "read",
    "read_notebook",
    "record",
    "render_html",
    "show_record",
    "write_record",
]

RECORD_MIME = "application/vnd.atlbook.record+json"
"""MIME type of a published value: ``{"name": str, "value": <JSON>}``."""

RESERVED_NAMES = ("plan", "steps_done", "findings")
"""Recorded names that ``summary.json`` lifts into fields of their own."""

INDEX_NAME = "index.jsonl"
_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]*$")
_SAFE_RE = re.compile(r"[^A-Za-z0-9_.\-]+")
_TIMESTAMP = "%Y%m%dT%H%M%SZ"
_DIR_MODE = 0o700
_FILE_MODE = 0o600
_TWIN_LIMIT = 2000


def record(name: str, value: Any) -> None:
    """Publish ``value`` under ``name`` from a running notebook.

    Emits one display output holding :data:`RECORD_MIME` plus an HTML and a plain-text twin. Refuses
    (``ValueError``) a name that is not identifier-like and (``TypeError``) a value that is not JSON.
    """
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise ValueError(f"record name {name!r} must be identifier-like (letters, digits, _ . -)")
    try:
        text = json.dumps(value, sort_keys=True, allow_nan=False)
    except (TypeError, ValueError) as e:
        raise TypeError(f"record {name!r}: value is not JSON-serialisable ({e})") from e
    ipd: Any = importlib.import_module("IPython.display")  # only when called: nothing at import time

    short = text if len(text) <= _TWIN_LIMIT else text[:_TWIN_LIMIT] + " …"
    bundle = {
        RECORD_MIME: {"name": name, "value": json.loads(text)},
        "text/html": (
            f'<div class="atlbook-record"><b>{html.escape(name)}</b> = '
            f"<code>{html.escape(short)}</code></div>"
        ),
        "text/plain": f"{name} = {short}",
    }
    ipd.display(bundle, raw=True)


def read_notebook(nb: Any) -> dict[str, Any]:
    """Values recorded in an (in-memory) executed notebook; a later record of a name wins."""
    values: dict[str, Any] = {}
    for cell in nb.get("cells", []):
        for out in cell.get("outputs", []) or []:
            payload = (out.get("data") or {}).get(RECORD_MIME)
            if isinstance(payload, Mapping) and isinstance(payload.get("name"), str):
                values[payload["name"]] = payload.get("value")
    return values


def read(path: str | Path) -> dict[str, Any]:
    """Values recorded in the executed notebook at ``path`` (a notebook file or a record directory)."""
    p = Path(path)
    if p.is_dir():
        p = p / "notebook.ipynb"
    with p.open(encoding="utf-8") as fh:
        nb = json.load(fh)
    return read_notebook(nb)


@dataclass(frozen=True)
class RecordInfo:
    """Where a record was written and what its summary says."""

    id: str
    """Directory name, e.g. ``20261126T150102Z-30-upgrade-sandbox``."""
    path: Path
    """The record directory."""
    summary: dict[str, Any] = field(default_factory=dict)
    """The content of ``summary.json``."""


def render_html(nb: Any) -> str:
    """Render a notebook as self-contained HTML that reads offline.

    Widget views and widget state are dropped from the copy that is rendered (their content is in the
    static twins :mod:`atlbook.widgets` emits), so nbconvert adds no widget-manager script; every other
    ``<script src=http…>`` (require.js, MathJax) is removed: content never needs it.
    """
    nbconvert: Any = importlib.import_module("nbconvert")  # heavy; only when writing
    nbformat: Any = importlib.import_module("nbformat")

    work = copy.deepcopy(nb)
    work.get("metadata", {}).pop("widgets", None)
    for cell in work.get("cells", []):
        if "outputs" in cell:
            kept = []
            for out in cell["outputs"]:
                data = out.get("data") or {}
                data.pop("application/vnd.jupyter.widget-view+json", None)
                if out.get("output_type") in ("display_data", "execute_result") and not data:
                    continue
                kept.append(out)
            cell["outputs"] = kept
    exporter = nbconvert.HTMLExporter(embed_images=True)
    body, _ = exporter.from_notebook_node(nbformat.from_dict(work))
    body = re.sub(r"<script[^>]*\bsrc=[\"']https?://[^>]*>\s*</script>", "", body)
    body = re.sub(r"<link[^>]*\bhref=[\"']https?://[^>]*>", "", body)
    # inline scripts that fetch code from a CDN (mermaid loader) are dropped too
    body = re.sub(
        r"<script\b[^>]*>(?:(?!</script>).)*?https?://cdn(?:(?!</script>).)*?</script>", "", body, flags=re.S
    )
    return str(body)


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, _FILE_MODE)
    os.fchmod(fd, _FILE_MODE)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)


def _ensure_root(root: Path) -> None:
    if not root.exists():
        root.mkdir(parents=True, mode=_DIR_MODE, exist_ok=True)
        os.chmod(root, _DIR_MODE)


def _new_record_dir(root: Path, stamp: str, runbook: str, stack: str) -> Path:
    base = f"{stamp}-{_SAFE_RE.sub('_', runbook)}-{_SAFE_RE.sub('_', stack)}"
    for n in range(1, 1000):
        candidate = root / (base if n == 1 else f"{base}-{n}")
        try:
            candidate.mkdir(mode=_DIR_MODE)
        except FileExistsError:
            continue
        os.chmod(candidate, _DIR_MODE)
        return candidate
    raise errors.AtlbookError(f"cannot create a record directory under {root} for {base}")


@contextlib.contextmanager
def _locked_append(path: Path) -> Iterator[Any]:
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, _FILE_MODE)
    with os.fdopen(fd, "a", encoding="utf-8") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield fh
        finally:
            fh.flush()
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def write_record(
    nb: Any,
    *,
    runbook: str,
    stack: str,
    outcome: str,
    started: datetime,
    finished: datetime,
    parameters: Mapping[str, Any],
    redactor: redaction.Redactor,
    output_root: Path = Path("records"),
    exit_code: int | None = None,
    error: Mapping[str, Any] | None = None,
    extra: Mapping[str, Any] | None = None,
    attachments: Mapping[str, str] | None = None,
) -> RecordInfo:
    """Redact ``nb`` (in place) and everything else given, then write the record and index it.

    ``outcome`` is ``"succeeded"`` or ``"failed"``; ``error`` (ename, evalue, cell) and ``extra``
    (e.g. timings, provenance) go into ``summary.json`` after redaction; ``attachments`` (file name →
    text, e.g. ``kernel.log``) are redacted and written next to them. Nothing is written before the
    pass has run over the notebook, the parameters, the error, the attachments and the HTML.
    """
    redactor.reset_counts()
    nb = redactor.redact_notebook(nb)
    safe_params = redactor.redact_value(dict(parameters))
    safe_error = redactor.redact_value(dict(error)) if error else None
    safe_extra = redactor.redact_value(dict(extra)) if extra else {}
    safe_files = {
        _SAFE_RE.sub("_", name): redactor.redact_text(text) for name, text in (attachments or {}).items()
    }
    counts = dict(sorted(redactor.counts.items()))

    html_redactor = redactor.clone()  # same secrets, separate counts
    page = html_redactor.redact_text(render_html(nb))

    values = read_notebook(nb)
    lifted = {name: values.pop(name, None) for name in RESERVED_NAMES}

    output_root = Path(output_root)
    _ensure_root(output_root)
    stamp = started.astimezone(UTC).strftime(_TIMESTAMP)
    folder = _new_record_dir(output_root, stamp, runbook, stack)
    summary: dict[str, Any] = {
        "id": folder.name,
        "runbook": runbook,
        "stack": stack,
        "outcome": outcome,
        "exit_code": exit_code,
        "started": started.astimezone(UTC).isoformat(),
        "finished": finished.astimezone(UTC).isoformat(),
        "duration_s": round((finished - started).total_seconds(), 3),
        "parameters": safe_params,
        **lifted,
        "values": values,
        "error": safe_error,
        "redaction": {
            "ran": True,
            "secrets_registered": redactor.secret_count,
            "masked": counts,
            "masked_total": sum(counts.values()),
            "masked_in_html_pass": dict(sorted(html_redactor.counts.items())),
        },
        "files": ["notebook.ipynb", "record.html", "summary.json", *sorted(safe_files)],
        **safe_extra,
    }
    _write_private(folder / "notebook.ipynb", json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
    _write_private(folder / "record.html", page)
    for name, text in safe_files.items():
        _write_private(folder / name, text)
    _write_private(folder / "summary.json", json.dumps(summary, indent=2, default=str) + "\n")
    line = {
        "id": folder.name,
        "runbook": runbook,
        "stack": stack,
        "outcome": outcome,
        "started": summary["started"],
        "duration_s": summary["duration_s"],
        "path": str(folder),
    }
    with _locked_append(output_root / INDEX_NAME) as fh:
        fh.write(json.dumps(line) + "\n")
    return RecordInfo(id=folder.name, path=folder, summary=summary)


def _parse_since(since: str | date | datetime | None) -> datetime | None:
    if since is None:
        return None
    if isinstance(since, datetime):
        moment = since
    elif isinstance(since, date):
        moment = datetime(since.year, since.month, since.day)
    else:
        try:
            moment = datetime.fromisoformat(since.strip())
        except ValueError as e:
            raise errors.ConfigError(
                f"--since {since!r} is not a date; use YYYY-MM-DD or YYYY-MM-DDTHH:MM (UTC)"
            ) from e
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _runbook_matches(query: str, runbook: str) -> bool:
    number, _, name = runbook.partition("-")
    return query in (runbook, number, name)


def _index(root: Path) -> list[dict[str, Any]]:
    try:
        lines = (Path(root) / INDEX_NAME).read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return []
    entries = []
    for line in lines:
        with contextlib.suppress(ValueError):
            entry = json.loads(line)
            if isinstance(entry, dict) and "id" in entry:
                entries.append(entry)
    return entries


def list_records(
    runbook: str | None = None,
    stack: str | None = None,
    since: str | date | datetime | None = None,
    *,
    root: Path = Path("records"),
) -> list[dict[str, Any]]:
    """Index entries, oldest first, filtered by runbook (number, name or both), stack and start time.

    Refuses (:class:`~atlbook.errors.ConfigError`) a ``since`` that is not an ISO date/time.
    """
    moment = _parse_since(since)
    out = []
    for entry in _index(root):
        if runbook and not _runbook_matches(runbook, str(entry.get("runbook", ""))):
            continue
        if stack and entry.get("stack") != stack:
            continue
        if moment is not None:
            try:
                started = datetime.fromisoformat(str(entry.get("started")))
            except ValueError:
                continue
            if started < moment:
                continue
        out.append(entry)
    return out


def show_record(record_id: str, *, root: Path = Path("records")) -> dict[str, Any]:
    """The summary of one record: its full id, a unique prefix of it, or ``latest``.

    Refuses (:class:`~atlbook.errors.ConfigError`) an id that matches no record or several.
    """
    root = Path(root)
    entries = _index(root)
    if record_id == "latest":
        matches = entries[-1:]
    else:
        exact = [e for e in entries if e["id"] == record_id]
        matches = exact or [e for e in entries if str(e["id"]).startswith(record_id)]
    if not matches:
        raise errors.ConfigError(f"no record {record_id!r} under {root}; list them with 'atlbook records'")
    if len(matches) > 1:
        ids = ", ".join(str(e["id"]) for e in matches[:5])
        raise errors.ConfigError(f"record id {record_id!r} is ambiguous ({ids}); give more of it")
    entry = matches[0]
    folder = Path(entry.get("path") or root / entry["id"])
    try:
        summary: dict[str, Any] = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
    except FileNotFoundError as e:
        raise errors.ConfigError(f"record {entry['id']} is indexed but {folder} is missing") from e
    summary["path"] = str(folder)
    return summary
