"""``atlbook checks``: list the diagnosis catalogue. Import-light: the CLI owner calls :func:`register`.

Only :mod:`argparse` is imported at module level; the catalogue (and with it pandas-free check modules)
is imported when the command runs.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

__all__ = ["register", "run"]


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``checks`` command to an argparse ``subparsers`` object; returns its parser."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "checks",
        help="list the diagnosis checks (id, layer, severity rule, remedy)",
        description="List the checks runbook 40-diagnose runs: id, layer, title, severity rule and remedy.",
    )
    parser.add_argument("--layer", help="only the checks of this layer (aws, kubernetes, product, ...)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    """Print the catalogue; exit code 0 (2 for an unknown layer)."""
    from atlbook.diagnosis.checks import LAYERS, catalogue

    layer = getattr(args, "layer", None)
    if layer and layer not in LAYERS:
        sys.stderr.write(f"unknown layer {layer!r} (allowed: {', '.join(LAYERS)})\n")
        return 2
    rows = [c for c in catalogue() if not layer or c.layer == layer]
    if getattr(args, "json", False):
        doc = [
            {"id": c.id, "layer": c.layer, "title": c.title, "severity": c.severity_rule, "remedy": c.remedy}
            for c in rows
        ]
        sys.stdout.write(json.dumps(doc, indent=2) + "\n")
        return 0
    width = max((len(c.id) for c in rows), default=10)
    for c in rows:
        sys.stdout.write(f"{c.id:<{width}}  {c.layer:<10}  {c.title}\n")
        sys.stdout.write(f"{'':<{width}}  {'':<10}  severity: {c.severity_rule}\n")
        sys.stdout.write(f"{'':<{width}}  {'':<10}  remedy:   {c.remedy}\n")
    sys.stdout.write(f"{len(rows)} checks\n")
    return 0
