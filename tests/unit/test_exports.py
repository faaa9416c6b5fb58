"""Every atlbook module declares ``__all__``; it lists exactly the public names the module defines."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from types import ModuleType

import pytest

import atlbook


def _modules() -> list[str]:
    names = ["atlbook"]
    for info in pkgutil.walk_packages(atlbook.__path__, prefix="atlbook."):
        names.append(info.name)
    return sorted(names)


@pytest.mark.parametrize("name", _modules())
def test_all_matches_public_names(name: str) -> None:
    module: ModuleType = importlib.import_module(name)
    exported = getattr(module, "__all__", None)
    assert exported is not None, f"{name} has no __all__"
    assert len(exported) == len(set(exported)), f"{name}.__all__ has duplicates"
    missing = [n for n in exported if not hasattr(module, n)]
    assert not missing, f"{name}.__all__ names what the module does not define: {missing}"
    defined_here = {
        n
        for n, obj in vars(module).items()
        if not n.startswith("_")
        and (inspect.isfunction(obj) or inspect.isclass(obj))
        and getattr(obj, "__module__", None) == name
    }
    unexported = sorted(defined_here - set(exported))
    assert not unexported, f"{name} defines public names missing from __all__: {unexported}"
