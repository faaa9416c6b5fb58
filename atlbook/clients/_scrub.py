"""Cap and scrub text from remote payloads before it goes into an error message or a log line.

Masks every value registered in :mod:`atlbook.clients.secrets` and credential-shaped patterns (AWS key
ids, Authorization headers, EKS tokens, passwords in URLs, JSON/query ``password``/``token`` fields), then
cuts the text to ``limit`` characters. The records layer runs its own, broader pass on everything written;
this one keeps SDK payloads from carrying secrets into exception messages in the first place.
"""

from __future__ import annotations

import re

from atlbook.clients import secrets

__all__ = ["MASK", "scrub"]

MASK = "***"
_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"(?i)\b(authorization['\"]?\s*[:=]\s*['\"]?)(bearer|basic)\s+[^\s'\",}]+"), r"\1\2 " + MASK),
    (re.compile(r"k8s-aws-v1\.[A-Za-z0-9_\-]+"), "k8s-aws-v1." + MASK),
    (re.compile(r"\b(AKIA|ASIA)[0-9A-Z]{16}\b"), MASK),
    (re.compile(r"(://[^/\s:@]+:)[^@\s/]+@"), r"\1" + MASK + "@"),
    (
        re.compile(
            r"(?i)(['\"](?:password|passwd|secret|token|secretstring|secretaccesskey)['\"]\s*:\s*['\"])[^'\"]*"
        ),
        r"\1" + MASK,
    ),
    (re.compile(r"(?i)((?:password|passwd|token|secret)=)[^&\s;]+"), r"\1" + MASK),
)


def scrub(text: object, limit: int = 1000) -> str:
    """``text`` as a string with secrets masked and at most ``limit`` characters (plus a length note)."""
    out = text.decode("utf-8", "replace") if isinstance(text, bytes) else str(text)
    for value in sorted(secrets.resolved_values(), key=len, reverse=True):
        if value in out:
            out = out.replace(value, MASK)
    for pattern, repl in _PATTERNS:
        out = pattern.sub(repl, out)
    if len(out) > limit:
        out = f"{out[:limit]}… [{len(out) - limit} more chars]"
    return out
