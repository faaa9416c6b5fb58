"""Jira / Confluence / Bitbucket knowledge (:mod:`.catalogue`) and REST clients (:mod:`.client`).

Import as modules: ``from atlbook.products import catalogue, client``. Layering: imports
``atlbook.clients``, ``atlbook.stack`` and ``atlbook.errors`` only; no SDK exception leaves it.
"""

from __future__ import annotations

__all__: list[str] = []
