"""The ``atlbook`` command.

::

    atlbook run RUNBOOK -f FILE... [-p KEY VALUE]... [--apply]
    atlbook runbooks
    atlbook records [--runbook R] [--stack S] [--since DATE]
    atlbook records show ID

Exit codes: 0 success; 1 the runbook ran and failed (its record is written); 2 bad input — nothing
was started, and the message on stderr says what was wrong and how to fix it.

Commands owned by other modules register themselves: each module in :data:`EXTENSIONS` exposes
``register(subparsers)`` which adds its sub-command and sets ``func`` (``args -> int``) on it. They are
imported lazily, when the parser is built, and skipped when the module does not exist (yet); an
extension that exists but fails to import is a bug and is not hidden.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from atlbook import errors

__all__ = ["EXTENSIONS", "EXIT_BAD_INPUT", "EXIT_FAILED", "EXIT_OK", "build_parser", "main"]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_BAD_INPUT = 2

EXTENSIONS = (
    "atlbook.sandbox.cli",
    "atlbook.demo",
    "atlbook.lab",
    "atlbook.diagnosis.cli",
    "atlbook.ledger_cli",
)
"""Modules that add sub-commands with ``register(subparsers)`` (sandbox, demo, lab, checks)."""

RECORDS_DIR_ENV = "ATLBOOK_RECORDS_DIR"


class _Parser(argparse.ArgumentParser):
    """argparse, but usage errors exit with 2 and say how to get help (argparse's default code is 2 too)."""

    def error(self, message: str) -> Any:
        self.print_usage(sys.stderr)
        sys.stderr.write(f"atlbook: error: {message}\n  see: {self.prog} --help\n")
        raise SystemExit(EXIT_BAD_INPUT)


def _records_root(args: argparse.Namespace) -> Path:
    return Path(getattr(args, "records_dir", None) or os.environ.get(RECORDS_DIR_ENV) or "records")


def _notebooks_dir(args: argparse.Namespace) -> Path | None:
    value = getattr(args, "notebooks_dir", None)
    return Path(value) if value else None


def _cmd_run(args: argparse.Namespace) -> int:
    from atlbook import runner

    directory = _notebooks_dir(args)
    overrides = [(k, v) for k, v in (args.param or [])]
    written: list[Any] = []
    try:
        result = runner.run(
            args.runbook,
            [Path(f) for f in args.file or []],
            overrides,
            apply=args.apply,
            output_root=_records_root(args),
            directory=directory,
            on_record=written.append,
        )
    except KeyboardInterrupt:
        where = f"record={written[0].path}" if written else "no record written"
        print(f"{'interrupted':<9} {args.runbook}  {where}")
        return 130
    err = ""
    if result.error:
        step, cell = result.error.get("step"), result.error.get("cell")
        where = f" at '{step}'" if step else (f" in cell {cell}" if cell is not None else "")
        err = f" — {result.error.get('ename')}{where}: {str(result.error.get('evalue'))[:200]}"
    print(
        f"{result.outcome:<9} {result.runbook}  stack={result.stack}  {result.duration_s:.1f}s  "
        f"record={result.record.path}{err}"
    )
    return result.exit_code


def _cmd_runbooks(args: argparse.Namespace) -> int:
    from atlbook import runner

    directory = _notebooks_dir(args)
    books = runner.list_runbooks(directory)
    if not books:
        print(f"no runbooks (NN-name.ipynb) in {directory or runner.notebooks_dir()}")
    for book in books:
        print(f"{book.id}  ({book.path})")
        defaults = runner.declared_defaults(book)
        for name, p in book.parameters.items():
            kind = p.get("inferred_type_name")
            kind = kind if kind and kind != "None" else type(defaults.get(name)).__name__
            help_ = f"  # {p['help']}" if p.get("help") else ""
            print(f"    {name}: {kind} = {p.get('default')}{help_}")
    return EXIT_OK


def _cmd_records(args: argparse.Namespace) -> int:
    from atlbook import records

    root = _records_root(args)
    if args.records_cmd == "show":
        summary = records.show_record(args.id, root=root)
        print(json.dumps(summary, indent=2, default=str))
        return EXIT_OK
    entries = records.list_records(args.runbook, args.stack, args.since, root=root)
    if not entries:
        filtered = any((args.runbook, args.stack, args.since))
        print(f"no records {'match' if filtered else 'yet'} under {root}")
    for e in entries:
        print(f"{e['id']}  {e.get('outcome', '?'):<9} {e.get('duration_s', 0):>7.1f}s  {e.get('path')}")
    return EXIT_OK


def _add_extension_commands(sub: Any) -> None:
    for modname in EXTENSIONS:
        try:
            module = importlib.import_module(modname)
        except ModuleNotFoundError as e:
            if e.name is not None and (modname == e.name or modname.startswith(e.name + ".")):
                continue  # not written yet
            raise
        module.register(sub)


def build_parser(*, extensions: bool = True) -> argparse.ArgumentParser:
    """The argument parser, with the commands of :data:`EXTENSIONS` that exist when ``extensions``."""
    parser = _Parser(prog="atlbook", description="Runbooks for Atlassian Data Center on EKS.")
    # SUPPRESS: a sub-command's default must not overwrite a value given before it
    common = _Parser(add_help=False, argument_default=argparse.SUPPRESS)
    common.add_argument(
        "--records-dir", help=f"where records live (default: ${RECORDS_DIR_ENV} or ./records)"
    )
    common.add_argument(
        "--notebooks-dir", help="where runbooks live (default: $ATLBOOK_NOTEBOOKS_DIR or notebooks/)"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    p = sub.add_parser("run", parents=[common], help="run a runbook headless and write its record")
    p.add_argument("runbook", help="number, name or both, e.g. 30, upgrade, 30-upgrade")
    p.add_argument(
        "-f", "--file", action="append", metavar="FILE", help="parameters YAML file (repeat; later wins)"
    )
    p.add_argument(
        "-p",
        "--param",
        action="append",
        nargs=2,
        metavar=("KEY", "VALUE"),
        help="override (dotted key; YAML scalar)",
    )
    p.add_argument("--apply", action="store_true", help="apply the plan (sets option apply: true)")
    p.set_defaults(func=_cmd_run)

    p = sub.add_parser("runbooks", parents=[common], help="list runbooks and their parameters")
    p.set_defaults(func=_cmd_runbooks)

    p = sub.add_parser("records", parents=[common], help="list records, or show one")
    p.add_argument("--runbook", help="number, name or both")
    p.add_argument("--stack", help="stack name")
    p.add_argument("--since", help="UTC date or time, e.g. 2026-11-26")
    rsub = p.add_subparsers(dest="records_cmd", metavar="show", parser_class=_Parser)
    show = rsub.add_parser("show", parents=[common], help="show one record's summary")
    show.add_argument("id", help="record id, a unique prefix of it, or 'latest'")
    p.set_defaults(func=_cmd_records)

    if extensions:
        _add_extension_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code: int = args.func(args)
    except errors.ConfigError as e:
        sys.stderr.write(f"atlbook: {e}\n")
        return EXIT_BAD_INPUT
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
