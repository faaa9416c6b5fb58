"""``atlbook demo``: the rehearsal of DESIGN.md on the sandbox, each step a record.

Sandbox up (or reset when it already runs) → ``10-provision`` with apply → ``20-capacity`` →
``30-upgrade`` Jira to the next patch version under load → the ``index-corrupt`` fault on a Jira node →
``40-diagnose`` names it → ``50-index-recovery`` fixes it → ``40-diagnose`` again is clean. Runbooks in
``notebooks/`` that the story does not name run afterwards, plan-only. One line per runbook with its
outcome and record; the last line lists the records. Re-running starts from a reset sandbox and gives
the same outcome.

The demo reaches the stack only the way an operator does: ``atlbook run`` (the runner) for runbooks,
and the sandbox's own control endpoint for faults (a rehearsal, not a runbook step).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from atlbook import errors

__all__ = ["DemoStep", "next_patch_version", "register", "run", "story"]

SANDBOX_FILE = Path("parameters/sandbox.yaml")


@dataclass
class DemoStep:
    """One step of the story: a runbook with its overrides, and what must hold afterwards."""

    runbook: str
    overrides: list[tuple[str, str]] = field(default_factory=list)
    apply: bool = False
    label: str = ""
    before: Callable[[Any], str] | None = None
    """Called with the sandbox control client before the run; returns a line to print (or "")."""
    expect: Callable[[dict[str, Any]], str | None] | None = None
    """Called with the run's recorded values; returns a failure reason, or None when the step did its job."""


def next_patch_version(version: str) -> str:
    """``11.3.1`` → ``11.3.2``. Refuses versions that are not dotted numbers."""
    parts = version.split(".")
    if len(parts) < 2 or not all(p.isdigit() for p in parts):
        raise errors.ConfigError(f"version {version!r} is not dotted numbers (e.g. 11.3.1)")
    parts[-1] = str(int(parts[-1]) + 1)
    return ".".join(parts)


def _expect_postchecks(values: dict[str, Any]) -> str | None:
    return None if values.get("postchecks_passed") else "post-checks did not all pass"


def _expect_index_drift(values: dict[str, Any]) -> str | None:
    top = values.get("most_likely") or {}
    check = str(top.get("check") or top.get("id") or "")
    return None if "index" in check else f"most likely cause was {check or 'nothing'}, not the index drift"


def _expect_healthy(values: dict[str, Any]) -> str | None:
    return None if values.get("healthy") else "the stack is not healthy after the recovery"


def _expect_index_fixed(values: dict[str, Any]) -> str | None:
    return None if not values.get("bad_after") else f"still bad after recovery: {values.get('bad_after')}"


def _inject_index_corrupt(control: Any) -> str:
    from atlbook.sandbox import rehearsal

    return f"fault     {rehearsal.inject(control, 'index-corrupt', 'jira-1')}"


def story(jira_version: str) -> list[DemoStep]:
    """The demo's steps for a stack whose Jira runs ``jira_version``."""
    target = next_patch_version(jira_version)
    return [
        DemoStep("00-sandbox", label="sandbox status"),
        DemoStep("10-provision", apply=True, label="empty sandbox → HA stack", expect=_expect_postchecks),
        DemoStep("20-capacity", label="placement + N+1 for the stack just built"),
        DemoStep(
            "30-upgrade",
            [("product", "jira"), ("target_version", target)],
            apply=True,
            label=f"Jira {jira_version} → {target} under load",
        ),
        DemoStep(
            "40-diagnose",
            label="diagnose the paged incident",
            before=_inject_index_corrupt,
            expect=_expect_index_drift,
        ),
        DemoStep("50-index-recovery", apply=True, label="recover the index", expect=_expect_index_fixed),
        DemoStep("40-diagnose", label="diagnose again: clean", expect=_expect_healthy),
    ]


def run(args: argparse.Namespace) -> int:
    """Run the demo story; exit 0 when every step succeeded and did its job, else 1."""
    from atlbook import parameters, records, runner

    root = Path.cwd()
    files = [root / SANDBOX_FILE]
    if not files[0].is_file():
        print(f"error: {SANDBOX_FILE} not found; run `make demo` from the repository root", file=sys.stderr)
        return 2
    spec = parameters.load_stack(str(files[0]))
    from atlbook.sandbox import rehearsal

    control, line = rehearsal.ensure_running(
        Path(args.state_dir) if args.state_dir else None, time_factor=args.time_factor, reset=True
    )
    print(line)
    available = {b.id for b in runner.list_runbooks(inspect=False)}
    steps = [s for s in story(spec.products.jira.version) if s.runbook in available]
    named = {s.runbook for s in steps}
    steps += [DemoStep(b, label="plan only") for b in sorted(available - named)]
    missing = sorted({s.runbook for s in story(spec.products.jira.version)} - available)
    if missing:
        print(f"skipped   {', '.join(missing)} (not in notebooks/ yet)")

    written: list[str] = []
    failures = 0
    records_dir = getattr(args, "records_dir", None) or os.environ.get("ATLBOOK_RECORDS_DIR")
    output_root = Path(records_dir or "records")
    for step in steps:
        if step.before is not None:
            line = step.before(control)
            if line:
                print(line)
        result = runner.run(step.runbook, files, step.overrides, apply=step.apply, output_root=output_root)
        written.append(str(result.record.path))
        reason = None
        if result.exit_code == 0 and step.expect is not None:
            reason = step.expect(records.read(result.record.path))
        ok = result.exit_code == 0 and reason is None
        failures += 0 if ok else 1
        why = ""
        if result.error:
            why = f" — {result.error.get('ename')}: {str(result.error.get('evalue'))[:160]}"
        elif reason:
            why = f" — {reason}"
        status = "ok" if ok else "FAILED"
        print(
            f"{status:<9} {step.runbook:<18} {result.duration_s:6.1f}s  {step.label:<42} "
            f"record={result.record.path}{why}",
            flush=True,
        )
    print(f"records   {' '.join(written)}")
    return 0 if failures == 0 else 1


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``atlbook demo [--time-factor N] [--dir D]`` to an argparse ``subparsers`` object."""
    p: argparse.ArgumentParser = subparsers.add_parser(
        "demo", help="rehearse the whole life of the stack on the sandbox, each step a record"
    )
    p.add_argument("--dir", dest="state_dir", default=None, help="sandbox state directory")
    p.add_argument("--time-factor", type=float, default=None, help="simulated seconds per wall second")
    p.set_defaults(func=run)
    return p
