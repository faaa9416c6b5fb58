"""The only place boto3, kubernetes and psycopg clients are built — from a target, lazily.

Public surface::

    from atlbook import clients
    clients.check_target("sandbox")            # files only; TargetError with the fix
    c = clients.connect("sandbox")             # a Clients bundle; nothing built yet
    c.aws("eks"), c.k8s, c.db("jira", user=..., password="env:PGPASS")

Submodules (import them as modules): ``target``, ``retry``, ``secrets``, ``aws``, ``k8s``, ``db``.
SDK exceptions never leave this package: each SDK module has one ``translate`` table into
:mod:`atlbook.errors`, applied with ``raise ... from e``. Layering: imports ``atlbook.errors`` (and
``atlbook.stack``/``atlbook.parameters`` types) only.
"""

from __future__ import annotations

from atlbook.clients.bundle import Clients, connect
from atlbook.clients.target import ResolvedTarget, check_target, resolve_target

__all__ = ["Clients", "ResolvedTarget", "check_target", "connect", "resolve_target"]
