"""Kubernetes resource quantities (``500m``, ``2``, ``1Gi``, ``1.5G``, ``1e3``) as numbers.

CPU is returned in cores, memory and storage in bytes. Malformed quantities raise ``ValueError``;
the API layer turns that into a 422 on the field.
"""

from __future__ import annotations

import re

__all__ = ["format_bytes", "parse_quantity"]

_SUFFIX = {
    "": 1.0,
    "n": 1e-9,
    "u": 1e-6,
    "m": 1e-3,
    "k": 1e3,
    "M": 1e6,
    "G": 1e9,
    "T": 1e12,
    "P": 1e15,
    "E": 1e18,
    "Ki": 1024.0,
    "Mi": 1024.0**2,
    "Gi": 1024.0**3,
    "Ti": 1024.0**4,
    "Pi": 1024.0**5,
    "Ei": 1024.0**6,
}
_RE = re.compile(r"^([+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E)?$")


def parse_quantity(value: str | int | float | None) -> float:
    """The numeric value of a quantity; ``None`` → 0; refuses malformed strings (``ValueError``)."""
    if value is None:
        return 0.0
    if isinstance(value, int | float):
        return float(value)
    m = _RE.match(str(value).strip())
    if not m:
        raise ValueError(f"quantities must match the regular expression '{_RE.pattern}': {value!r}")
    return float(m.group(1)) * _SUFFIX[m.group(2) or ""]


def format_bytes(n: float) -> str:
    """A byte count in the binary suffix kubectl would show (``512Mi``, ``4Gi``)."""
    for suffix, mult in (
        ("Ei", 1024.0**6),
        ("Pi", 1024.0**5),
        ("Ti", 1024.0**4),
        ("Gi", 1024.0**3),
        ("Mi", 1024.0**2),
        ("Ki", 1024.0),
    ):
        if n >= mult and n % mult == 0:
            return f"{int(n // mult)}{suffix}"
    return str(int(n))
