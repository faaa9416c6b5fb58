"""Export every desired Kubernetes object as YAML, one file per object, in apply order (GitOps review).

Files are named ``NNN-<kind>-<namespace>-<name>.yaml`` (``NNN`` = apply order), so a directory listing
reads in the order the objects are created. Late-bound values that are known (``outputs``) are filled
in; unknown ones stay as ``${aws:…}`` placeholders. Secrets hold ``<from env:NAME>`` references only:
no secret value is ever written.
"""

from __future__ import annotations

import pathlib
from collections.abc import Mapping
from typing import Any

import yaml

from atlbook import errors
from atlbook.provisioning.model import DesiredState, bind

__all__ = ["export_dir"]


def export_dir(
    state: DesiredState, directory: str | pathlib.Path, *, outputs: Mapping[str, Any] | None = None
) -> list[pathlib.Path]:
    """Write one YAML file per Kubernetes object of ``state`` into ``directory``; return the paths in order.

    Creates the directory. Refuses (``ConfigError``) a path that exists and is not a directory, or a
    directory holding other files than a previous export's (``NNN-*.yaml``), which it would mix with.
    Files of a previous export are replaced.
    """
    root = pathlib.Path(directory)
    if root.exists() and not root.is_dir():
        raise errors.ConfigError(f"export_dir {root} exists and is not a directory")
    root.mkdir(parents=True, exist_ok=True)
    foreign = [p.name for p in root.iterdir() if not (p.suffix == ".yaml" and p.name[:3].isdigit())]
    if foreign:
        raise errors.ConfigError(
            f"export_dir {root} holds other files ({', '.join(sorted(foreign)[:5])}); use an empty directory"
        )
    for old in root.glob("[0-9][0-9][0-9]-*.yaml"):
        old.unlink()
    written = []
    for index, r in enumerate(state.k8s(), 1):
        body = bind(r.body, outputs or {})
        name = f"{index:03d}-{r.kind.lower()}-{r.namespace or 'cluster'}-{r.name}.yaml"
        path = root / name
        path.write_text(yaml.safe_dump(body, sort_keys=False, default_flow_style=False))
        written.append(path)
    return written
