"""Records: publishing values, writing a record, reading it back.

Aspects covered:
- ``record()`` emits the custom MIME type plus text/html and text/plain twins; refuses bad names
  and values that are not JSON;
- ``read()`` / ``read_notebook()`` return recorded values (later wins), from a file or a record dir;
- ``write_record()`` writes notebook, HTML, summary and attachments with owner-only permissions,
  redacts before writing (notebook, parameters, error, attachments, HTML), lifts plan/steps/findings,
  never overwrites (same-second runs get a suffix) and appends to index.jsonl;
- the HTML render loads no script or stylesheet from the network and drops widget views;
- ``list_records`` filters by runbook (number / name / both), stack and since; ``show_record`` takes an
  id, a unique prefix or ``latest`` and refuses unknown / ambiguous ids with ConfigError.
"""

from __future__ import annotations

import json
import re
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import nbformat
import pytest

from atlbook import errors, records
from atlbook.records import redaction

T0 = datetime(2026, 11, 26, 15, 0, 0, tzinfo=UTC)


def _record_output(name: str, value: object) -> nbformat.NotebookNode:
    return nbformat.v4.new_output(
        "display_data", data={records.RECORD_MIME: {"name": name, "value": value}, "text/plain": f"{name}"}
    )


def _executed(secret: str = "Rec-Secret-123") -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    a = nbformat.v4.new_code_cell("records.record('n', 1)")
    a.outputs = [_record_output("n", 1), _record_output("plan", {"steps": 2}), _record_output("n", 2)]
    b = nbformat.v4.new_code_cell("print(pw)")
    b.outputs = [
        nbformat.v4.new_output("stream", name="stdout", text=f"pw={secret}\n"),
        nbformat.v4.new_output(
            "display_data",
            data={
                "application/vnd.jupyter.widget-view+json": {
                    "model_id": "abc",
                    "version_major": 2,
                    "version_minor": 0,
                },
                "text/plain": "Button()",
            },
        ),
        _record_output("findings", [{"severity": "warning", "text": f"saw {secret}"}]),
    ]
    nb.cells = [nbformat.v4.new_markdown_cell("# Title"), a, b]
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {}, "version_major": 2}}
    return nb


def _write(
    root: Path, nb=None, *, runbook="30-upgrade", stack="sandbox", started=T0, outcome="succeeded", **kw
):
    secret = "Rec-Secret-123"
    return records.write_record(
        nb if nb is not None else _executed(secret),
        runbook=runbook,
        stack=stack,
        outcome=outcome,
        started=started,
        finished=started + timedelta(seconds=3),
        parameters={"stack": {"name": stack}, "db_password": "env:DB_PW", "note": f"x {secret}"},
        redactor=redaction.Redactor([secret]),
        output_root=root,
        exit_code=0 if outcome == "succeeded" else 1,
        **kw,
    )


def test_record_emits_mime_and_twins(monkeypatch) -> None:
    shown = []
    monkeypatch.setattr("IPython.display.display", lambda obj, raw=False: shown.append((obj, raw)))
    records.record("rds_instance_class", {"class": "db.r6g.large", "n": 2})
    ((bundle, raw),) = shown
    assert raw is True
    assert bundle[records.RECORD_MIME] == {
        "name": "rds_instance_class",
        "value": {"class": "db.r6g.large", "n": 2},
    }
    assert "db.r6g.large" in bundle["text/html"] and "rds_instance_class" in bundle["text/plain"]


@pytest.mark.parametrize("name", ["", "1abc", "has space", None])
def test_record_refuses_bad_names(name) -> None:
    with pytest.raises(ValueError):
        records.record(name, 1)


@pytest.mark.parametrize("value", [object(), {1, 2}, float("nan")])
def test_record_refuses_non_json(value) -> None:
    with pytest.raises(TypeError):
        records.record("x", value)


def test_read_notebook_later_wins(tmp_path) -> None:
    nb = _executed()
    assert records.read_notebook(nb)["n"] == 2
    path = tmp_path / "nb.ipynb"
    nbformat.write(nb, path)
    assert records.read(path)["plan"] == {"steps": 2}


def test_write_record_layout_permissions_and_redaction(tmp_path) -> None:
    root = tmp_path / "records"
    info = _write(root, attachments={"kernel.log": "warn Rec-Secret-123 AKIAIOSFODNN7EXAMPLE"})
    assert info.id == "20261126T150000Z-30-upgrade-sandbox"
    assert sorted(p.name for p in info.path.iterdir()) == [
        "kernel.log",
        "notebook.ipynb",
        "record.html",
        "summary.json",
    ]
    assert stat.S_IMODE(root.stat().st_mode) == 0o700
    assert stat.S_IMODE(info.path.stat().st_mode) == 0o700
    for f in [*info.path.iterdir(), root / records.INDEX_NAME]:
        assert stat.S_IMODE(f.stat().st_mode) == 0o600, f
        assert "Rec-Secret-123" not in f.read_text(), f
    assert "AKIAIOSFODNN7EXAMPLE" not in (info.path / "kernel.log").read_text()

    summary = json.loads((info.path / "summary.json").read_text())
    assert summary["outcome"] == "succeeded" and summary["duration_s"] == 3.0
    assert summary["plan"] == {"steps": 2}
    assert summary["findings"][0]["severity"] == "warning"
    assert summary["steps_done"] is None
    assert summary["values"] == {"n": 2}
    assert summary["parameters"]["db_password"] == "env:DB_PW"
    assert summary["redaction"]["ran"] is True
    assert summary["redaction"]["masked"]["secret"] >= 3
    assert summary["redaction"]["masked"]["aws_access_key_id"] == 1
    assert records.read(info.path) == {"n": 2, "plan": {"steps": 2}, "findings": summary["findings"]}
    nbformat.validate(nbformat.read(info.path / "notebook.ipynb", as_version=4))  # still opens in JupyterLab


def test_html_reads_offline(tmp_path) -> None:
    info = _write(tmp_path)
    page = (info.path / "record.html").read_text()
    assert not re.search(r"<script[^>]*\bsrc=[\"']https?://", page)
    assert not re.search(r"<link[^>]*\bhref=[\"']https?://", page)
    assert "cdnjs" not in page and "unpkg" not in page
    assert "widget-view" not in page
    assert "Title" in page and "plan" in page


def test_same_second_runs_do_not_overwrite(tmp_path) -> None:
    a = _write(tmp_path)
    b = _write(tmp_path)
    assert a.path != b.path and b.id.endswith("-2")
    lines = (tmp_path / records.INDEX_NAME).read_text().splitlines()
    assert [json.loads(x)["id"] for x in lines] == [a.id, b.id]


def test_list_and_show(tmp_path) -> None:
    a = _write(tmp_path, runbook="30-upgrade", stack="sandbox", started=T0)
    b = _write(
        tmp_path, runbook="40-diagnose", stack="prod", started=T0 + timedelta(days=1), outcome="failed"
    )
    assert [e["id"] for e in records.list_records(root=tmp_path)] == [a.id, b.id]
    for q in ("30", "upgrade", "30-upgrade"):
        assert [e["id"] for e in records.list_records(q, root=tmp_path)] == [a.id]
    assert [e["id"] for e in records.list_records(stack="prod", root=tmp_path)] == [b.id]
    assert [e["id"] for e in records.list_records(since="2026-11-27", root=tmp_path)] == [b.id]
    assert records.list_records(root=tmp_path / "nothing") == []
    with pytest.raises(errors.ConfigError, match="not a date"):
        records.list_records(since="yesterday", root=tmp_path)

    assert records.show_record(a.id, root=tmp_path)["runbook"] == "30-upgrade"
    assert records.show_record("latest", root=tmp_path)["outcome"] == "failed"
    assert records.show_record(b.id[:18], root=tmp_path)["id"] == b.id
    with pytest.raises(errors.ConfigError, match="ambiguous"):
        records.show_record("2026", root=tmp_path)
    with pytest.raises(errors.ConfigError, match="no record"):
        records.show_record("1999", root=tmp_path)


def test_all_is_in_step() -> None:
    public = {
        n
        for n, v in vars(records).items()
        if not n.startswith("_") and getattr(v, "__module__", None) == records.__name__
    }
    assert public <= set(records.__all__)
