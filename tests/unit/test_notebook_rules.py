"""House rules for every committed runbook (``notebooks/*.ipynb``, the template included).

Aspects covered (STYLE.md items 1–2, HACKING.md "Parameters contract"):
- valid JSON and a valid nbformat document;
- committed without outputs and without execution counts;
- exactly one ``parameters``-tagged cell; it is the second code cell (the first is imports only),
  it holds plain literal assignments, and it starts with ``stack =``;
- no ``def`` / ``class`` (or lambda) in any code cell: logic lives in ``atlbook``;
- runbooks are named ``NN-name.ipynb`` (``_template.ipynb`` is the one exception);
- the template carries the authoring contract: title, purpose, numbered steps, "what to do if this fails".
"""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
NAME_RE = re.compile(r"^(\d{2}-[a-z0-9][a-z0-9-]*|_template)\.ipynb$")


def _code_cells(nb: dict) -> list[dict]:
    return [c for c in nb["cells"] if c["cell_type"] == "code"]


def _source(cell: dict) -> str:
    src = cell["source"]
    return "".join(src) if isinstance(src, list) else src


def _python(cell: dict) -> str:
    """The cell's source with IPython magics / shell lines blanked, so ``ast`` can parse it."""
    return "\n".join(
        "" if line.lstrip().startswith(("%", "!")) else line for line in _source(cell).splitlines()
    )


def test_there_are_notebooks() -> None:
    assert (ROOT / "notebooks" / "_template.ipynb") in NOTEBOOKS


@pytest.fixture(params=NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def notebook(request) -> tuple[Path, dict]:
    path: Path = request.param
    with path.open(encoding="utf-8") as fh:
        return path, json.load(fh)  # valid JSON, or this fails


def test_name(notebook) -> None:
    path, _ = notebook
    assert NAME_RE.match(path.name), f"{path.name}: runbooks are named NN-name.ipynb"


def test_valid_nbformat(notebook) -> None:
    path, _ = notebook
    nbformat.validate(nbformat.read(path, as_version=4))


def test_no_outputs_or_execution_counts(notebook) -> None:
    path, nb = notebook
    for i, cell in enumerate(_code_cells(nb)):
        assert cell.get("outputs") == [], f"{path.name} code cell {i}: commit notebooks without outputs"
        assert cell.get("execution_count") is None, f"{path.name} code cell {i}: clear execution counts"


def test_parameters_cell(notebook) -> None:
    path, nb = notebook
    tagged = [c for c in nb["cells"] if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1, f"{path.name}: exactly one cell tagged 'parameters'"
    code = _code_cells(nb)
    assert len(code) >= 2 and code[1] is tagged[0], (
        f"{path.name}: the parameters cell is the second code cell"
    )
    src = _source(tagged[0])
    assert src.lstrip().startswith("stack ="), f"{path.name}: the parameters cell starts with `stack =`"
    tree = ast.parse(src)
    for node in tree.body:
        assert isinstance(node, ast.Assign | ast.AnnAssign), f"{path.name}: parameters are plain assignments"
        ast.literal_eval(node.value)  # plain literals only
    for line in src.splitlines():
        if line.strip() and "=" in line:
            assert "#" in line, f"{path.name}: every parameter has a comment (papermill help): {line!r}"


def test_first_code_cell_is_imports(notebook) -> None:
    path, nb = notebook
    tree = ast.parse(_python(_code_cells(nb)[0]))
    assert tree.body and all(isinstance(n, ast.Import | ast.ImportFrom) for n in tree.body), (
        f"{path.name}: the first code cell holds imports only"
    )


def test_no_logic_in_cells(notebook) -> None:
    path, nb = notebook
    for i, cell in enumerate(_code_cells(nb)):
        tree = ast.parse(_python(cell))
        for node in ast.walk(tree):
            assert not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef | ast.Lambda), (
                f"{path.name} code cell {i}: no def/class/lambda in notebooks; put it in atlbook.<module>"
            )


def test_template_is_the_authoring_contract() -> None:
    nb = json.loads((ROOT / "notebooks" / "_template.ipynb").read_text())
    text = "\n".join(_source(c) for c in nb["cells"] if c["cell_type"] == "markdown")
    assert text.startswith("# ")
    assert "**Purpose.**" in text
    assert re.search(r"^## 1\. ", text, re.M) and re.search(r"^## 2\. ", text, re.M)
    assert "## What to do if this fails" in text
