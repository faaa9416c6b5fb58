"""Shared pytest setup: the tier marker of a test follows its folder (tests/unit → ``unit`` …)."""

from __future__ import annotations

import pathlib

import pytest

TIERS = ("unit", "sandbox", "notebooks", "browser")
ROOT = pathlib.Path(__file__).resolve().parent.parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        parts = pathlib.Path(str(item.fspath)).relative_to(ROOT / "tests").parts
        if parts and parts[0] in TIERS:
            item.add_marker(getattr(pytest.mark, parts[0]))
