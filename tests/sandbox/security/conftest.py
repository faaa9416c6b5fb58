"""Fixtures of the security tests: the session's in-process sandbox from :mod:`atlbook.testing`."""

from __future__ import annotations

from atlbook.testing import sandbox  # noqa: F401 - fixture

__all__ = ["sandbox"]
