"""``atlbook ledger ...``: look at a runbook's ledger on a stack, and break a stale lock — explicitly.

A mutating run holds its ledger lock (:mod:`atlbook.plan`) while it applies; a second run refuses to
start, naming the holder and since when. A lock left by a run that is gone for good (a laptop that
lost its VPN, a kernel killed on another host) is never taken over silently: an operator breaks it here,
with a reason that the ledger keeps (who broke it, when, why, and the lock that was removed).

- ``show --runbook R [-f FILE] [--namespace NS]`` — the ledger as JSON (lock, steps done, history);
- ``break-lock --runbook R [-f FILE] [--namespace NS] --reason TEXT`` — remove whoever's lock.

``R`` is the ledger's runbook name (``10-provision``, ``30-upgrade-jira``, ``50-index-recovery``);
``FILE`` the parameters file naming the stack (default: ``sandbox``); ``NS`` the ledger's namespace
(default: the stack's namespace). Exit codes: 0 done (also "there was no lock"), 1 the stack could not
be read or written, 2 bad input (unknown file, missing reason).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from atlbook import clients, errors, parameters, plan

__all__ = ["register", "run"]


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``ledger`` command (``show``, ``break-lock``) to an argparse ``subparsers`` object."""
    p: argparse.ArgumentParser = subparsers.add_parser(
        "ledger", help="show a runbook's ledger on a stack, or break a stale lock explicitly"
    )
    sub = p.add_subparsers(dest="ledger_command", required=True)
    for name, text in (("show", "the ledger as JSON"), ("break-lock", "remove the lock (explicitly)")):
        s = sub.add_parser(name, help=text)
        s.add_argument("--runbook", required=True, help="ledger runbook name, e.g. 10-provision")
        s.add_argument("-f", "--file", default="sandbox", help="parameters file naming the stack")
        s.add_argument("--namespace", default=None, help="ledger namespace (default: the stack's)")
        if name == "break-lock":
            s.add_argument("--reason", required=True, help="why (kept in the ledger's history)")
    p.set_defaults(func=run)
    return p


def _ledger(args: argparse.Namespace) -> tuple[plan.Ledger, clients.Clients]:
    spec = parameters.load_stack(args.file)
    bundle = clients.connect(spec.target)
    namespace = args.namespace or spec.namespace
    backend = plan.ConfigMapBackend(bundle, namespace, args.runbook, create_namespace=False)
    return plan.Ledger(backend, runbook=args.runbook, stack=spec.name), bundle


def run(args: argparse.Namespace) -> int:
    """Execute a parsed ``ledger`` command; returns the exit code (``ConfigError`` propagates → 2)."""
    ledger, bundle = _ledger(args)
    try:
        if args.ledger_command == "show":
            doc = ledger.refresh()
            sys.stdout.write(json.dumps(doc or {}, indent=2, sort_keys=True, default=str) + "\n")
            return 0
        if not args.reason.strip():
            sys.stderr.write("atlbook: --reason must say why the lock is broken\n")
            return 2
        if not ledger.refresh():
            sys.stdout.write(f"{ledger.backend.description}: no ledger; nothing to break\n")
            return 0
        broken = ledger.break_lock(args.reason)
        if broken is None:
            sys.stdout.write(f"{ledger.backend.description}: no lock held; nothing to break\n")
        else:
            sys.stdout.write(
                f"{ledger.backend.description}: broke the lock of {broken.get('holder')} "
                f"(run {broken.get('run_id')}, since {broken.get('since')}): {args.reason}\n"
            )
        return 0
    except errors.ConfigError:
        raise
    except errors.AtlbookError as e:
        sys.stderr.write(f"atlbook: {e}\n")
        return 1
    finally:
        bundle.close()
