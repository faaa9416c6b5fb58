"""Fixtures: the shipped stacks (parameters/sandbox.yaml, parameters/example-production.yaml) and variants."""

from __future__ import annotations

import pathlib
from typing import Any

import pytest
import yaml

from atlbook import parameters, stack

ROOT = pathlib.Path(__file__).resolve().parents[3]


def _document(name: str) -> dict[str, Any]:
    doc = yaml.safe_load((ROOT / "parameters" / f"{name}.yaml").read_text())
    return dict(doc["stack"])


@pytest.fixture(params=["sandbox", "example-production"])
def shipped(request: pytest.FixtureRequest) -> stack.StackSpec:
    return parameters.load_stack(str(ROOT / "parameters" / f"{request.param}.yaml"))


@pytest.fixture
def sandbox_spec() -> stack.StackSpec:
    return parameters.load_stack(str(ROOT / "parameters" / "sandbox.yaml"))


@pytest.fixture
def variant():
    """Build a StackSpec from parameters/sandbox.yaml with some keys changed: ``variant(**{"a.b": v})``."""

    def build(**changes: Any) -> stack.StackSpec:
        doc = _document("sandbox")
        for dotted, value in changes.items():
            node = doc
            parts = dotted.split(".")
            for part in parts[:-1]:
                node = node.setdefault(part, {})
            node[parts[-1]] = value
        return stack.StackSpec.model_validate(doc)

    return build
