"""Where the sandbox keeps its state (light: no SDK imports, so the CLI answers fast)."""

from __future__ import annotations

import os
import pathlib

__all__ = ["default_state_dir"]


def default_state_dir(cwd: pathlib.Path | None = None) -> pathlib.Path:
    """``$ATLBOOK_SANDBOX_DIR``, else the first ``.atlbook/sandbox`` walking up, else ``./.atlbook/sandbox``.

    Reads the environment when called (never at import time).
    """
    env = os.environ.get("ATLBOOK_SANDBOX_DIR")
    if env:
        return pathlib.Path(env)
    here = (cwd or pathlib.Path.cwd()).resolve()
    for d in (here, *here.parents):
        if (d / ".atlbook" / "sandbox").is_dir():
            return d / ".atlbook" / "sandbox"
    return here / ".atlbook" / "sandbox"
