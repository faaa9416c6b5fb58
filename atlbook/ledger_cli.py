"""``atlbook ledger ...``: look at a runbook's ledger on a stack, and break a stale lock — explicitly.

A mutating run holds its ledger lock (:mod:`atlbook.plan`) while it applies; a second run refuses to
start, naming the holder and since when. A lock left by a run that is gone for good (a laptop that
lost its VPN, a kernel killed on another host) is never taken over silently: an operator breaks it here,
with a reason that the ledger keeps (who broke it, when, why, and the lock that was removed).

- ``show --runbook R [-f FILE] [--namespace NS]`` — the ledger as JSON (lock, steps done, history),
  with ``outer_lock``: the SSM parameter ``/atlbook/<stack>/ledger-lock/R`` a run holds while its
  ledger cannot live on the stack yet (10-provision of an empty stack, :class:`atlbook.plan.ParameterLock`);
- ``break-lock --runbook R [-f FILE] [--namespace NS] --reason TEXT`` — remove whoever's lock: the
  ledger's and the SSM one.

The ledger ConfigMap is read through the target's kubeconfig, else through the stack's EKS cluster; when
there is neither (an empty stack being provisioned) only the SSM lock is shown and broken. When the
ConfigMap cannot be read (the kubeconfig's cluster does not exist yet, the API is unreachable) the SSM
lock is still shown and broken, and the command says so and exits 1.

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


class _NoLedger(plan.MemoryBackend):
    """No Kubernetes API to read the ledger from yet (no kubeconfig, no EKS cluster): an empty ledger."""

    def __init__(self, why: str) -> None:
        super().__init__()
        self.description = f"no ledger on the stack yet ({why})"


def _backend(bundle: clients.Clients, spec: Any, namespace: str, runbook: str) -> plan.LedgerBackend:
    if bundle.target.kubeconfig is None:
        try:
            bundle.k8s_from_eks(spec.name)
        except errors.NotFound:
            return _NoLedger(f"EKS cluster {spec.name} does not exist")
    return plan.ConfigMapBackend(bundle, namespace, runbook, create_namespace=False)


def _ledger(args: argparse.Namespace) -> tuple[plan.Ledger, clients.Clients]:
    spec = parameters.load_stack(args.file)
    bundle = clients.connect(spec.target)
    try:
        backend = _backend(bundle, spec, args.namespace or spec.namespace, args.runbook)
        outer = plan.ParameterLock(bundle, spec.name, args.runbook)
    except BaseException:
        bundle.close()
        raise
    return plan.Ledger(backend, runbook=args.runbook, stack=spec.name, outer=outer), bundle


def run(args: argparse.Namespace) -> int:
    """Execute a parsed ``ledger`` command; returns the exit code (``ConfigError`` propagates → 2).

    ``break-lock`` refuses (exit 2, nothing changed) a blank ``--reason``.
    """
    if args.ledger_command == "break-lock" and not args.reason.strip():
        sys.stderr.write("atlbook: --reason must say why the lock is broken\n")
        return 2
    ledger, bundle = _ledger(args)
    assert ledger.outer is not None
    try:
        unreadable = None
        try:
            doc = ledger.refresh()
        except errors.ConfigError:
            raise
        except errors.AtlbookError as e:  # e.g. a kubeconfig whose cluster does not exist yet
            doc, unreadable = {}, f"{ledger.backend.description}: could not be read: {e}"
        outer = ledger.outer.read()
        if args.ledger_command == "show":
            shown = {**doc, "outer_lock": {"where": ledger.outer.description, "lock": outer}}
            if unreadable:
                shown["ledger_error"] = unreadable
            sys.stdout.write(json.dumps(shown, indent=2, sort_keys=True, default=str) + "\n")
            return 1 if unreadable else 0
        if unreadable:  # the SSM lock can still be broken: it is the one an empty stack's run holds
            if outer:
                ledger.outer.delete()
                sys.stdout.write(
                    f"{ledger.outer.description}: broke the lock of {outer.get('holder')} "
                    f"(run {outer.get('run_id')}, since {outer.get('since')}): {args.reason}\n"
                )
            sys.stderr.write(f"atlbook: {unreadable}; its lock (if any) was not broken\n")
            return 1
        if not doc and outer is None:
            sys.stdout.write(
                f"{ledger.backend.description}: no ledger, and no {ledger.outer.description}; "
                "nothing to break\n"
            )
            return 0
        held = doc.get("lock")
        ledger.break_lock(args.reason)
        for where, lock in ((ledger.backend.description, held), (ledger.outer.description, outer)):
            if lock:
                sys.stdout.write(
                    f"{where}: broke the lock of {lock.get('holder')} "
                    f"(run {lock.get('run_id')}, since {lock.get('since')}): {args.reason}\n"
                )
            else:
                sys.stdout.write(f"{where}: no lock held; nothing to break\n")
        return 0
    except errors.ConfigError:
        raise
    except errors.AtlbookError as e:
        sys.stderr.write(f"atlbook: {e}\n")
        return 1
    finally:
        bundle.close()
