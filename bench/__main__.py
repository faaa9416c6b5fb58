"""``python -m bench [module ...]``: run each bench module's ``run()``, print a table, write results.

Without arguments every ``bench/*.py`` module that defines ``run()`` is run. Each module's rows are
written to ``bench/results/<module>.json``. A module may set ``COLUMNS`` to choose the printed columns.
"""

from __future__ import annotations

import importlib
import json
import pathlib
import sys
from typing import Any

HERE = pathlib.Path(__file__).resolve().parent


def _table(rows: list[dict[str, Any]], columns: list[str]) -> str:
    cols = [c for c in columns if any(c in r for r in rows)]
    cells = [[("" if r.get(c) is None else str(r.get(c))) for c in cols] for r in rows]
    width = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(cols)]
    out = [" | ".join(c.ljust(w) for c, w in zip(cols, width, strict=True))]
    out.append("-|-".join("-" * w for w in width))
    out += [" | ".join(v.ljust(w) for v, w in zip(row, width, strict=True)) for row in cells]
    return "\n".join(out)


def main(argv: list[str]) -> int:
    """Run the named bench modules (default: all)."""
    names = argv or sorted(
        p.stem for p in HERE.glob("*.py") if not p.stem.startswith("_") and "def run(" in p.read_text()
    )
    for name in names:
        mod = importlib.import_module(f"bench.{name}")
        rows = mod.run()
        out = HERE / "results" / f"{name}.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(rows, indent=1))
        columns = getattr(mod, "COLUMNS", None) or sorted({k for r in rows for k in r})
        print(f"\n## {name}\n")
        print(_table(rows, columns))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
