"""Redaction: mask secrets in everything a record contains, before it is written.

The pass is always on. There is no parameter, option or environment variable that turns it off; the
only knob is *more* secrets (:func:`register_secret`).

What is masked:

(a) every **registered secret value** (exact match), and the forms it takes when it travels: base64
    (standard and URL-safe, with or without padding, at any byte alignment inside a longer base64
    string), URL-encoded (``quote``/``quote_plus``), HTML-escaped and JSON-escaped;
(b) **patterns** that are secrets whoever produced them: AWS access key ids (``AKIA``/``ASIA``/…),
    AWS secret access keys (40 characters after an ``aws_secret_access_key``-like key, and standalone
    40-character strings that look random enough — mixed case, a digit and a ``/`` or ``+``), bearer /
    basic ``Authorization`` values, JSON Web Tokens, passwords in URLs (``scheme://user:PASSWORD@``),
    ``password=`` / ``*_password:`` / ``api_key=`` / ``access_token=`` fields in JDBC / libpq /
    connection strings, YAML, JSON and logs (not a Kubernetes Secret *name* such as ``tls_secret``),
    PEM private keys and Atlassian
    API tokens (``ATATT…``, ``ATCTT…``, ``ATBB…``).

Masks read ``[REDACTED:<kind>]``; counts are kept per kind, never values.

How secrets resolved inside a kernel reach the runner (which redacts after the kernel is gone): the
runner creates a private temporary directory (0700) and passes the path of a side file in it through
the ``ATLBOOK_SECRETS_FILE`` environment variable of the kernel. :func:`register_secret` in the kernel
appends each value to that file (0600, flushed at once, so it survives a crashing kernel); the runner
reads it with :func:`load_secrets_file` into its own :class:`Redactor` and deletes it when the record
is written. Re-resolving references in the runner was rejected: it cannot see values the notebook
resolves on its own (a Kubernetes Secret read mid-run, a token minted by a call).

What this refuses: registering values shorter than :data:`MIN_SECRET_LENGTH` (masking a 3-character
string everywhere would garble the record without protecting anything; such a value is not a secret).
"""

from __future__ import annotations

import base64
import html
import json
import os
import re
import threading
import urllib.parse
from collections import Counter
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

__all__ = [
    "MIN_SECRET_LENGTH",
    "SECRETS_FILE_ENV",
    "Redactor",
    "clear_secrets",
    "default_redactor",
    "load_secrets_file",
    "mask",
    "redact_notebook",
    "redact_text",
    "redact_value",
    "register_secret",
    "registered_secret_count",
]

MIN_SECRET_LENGTH = 4
"""Values shorter than this are not registered (see the module docstring)."""

SECRETS_FILE_ENV = "ATLBOOK_SECRETS_FILE"
"""Environment variable naming the side file a kernel appends its registered secrets to."""

SECRET_KIND = "secret"

# MIME types whose payload is binary (base64) and never carries text worth masking.
_BINARY_MIME_PREFIXES = ("image/png", "image/jpeg", "image/gif", "image/webp", "image/bmp", "application/pdf")

_REFERENCE = r"(?!(?:env|k8s-secret|aws-secretsmanager):)(?!\[REDACTED)"

# (kind, compiled pattern, group to mask). Group 0 masks the whole match.
_PATTERNS: tuple[tuple[str, re.Pattern[str], int], ...] = (
    (
        "private_key",
        re.compile(
            r"-----BEGIN ([A-Z0-9 ]*)PRIVATE KEY-----[\s\S]*?(?:-----END \1PRIVATE KEY-----|\Z)",
        ),
        0,
    ),
    (
        "atlassian_token",
        re.compile(r"(?<![A-Za-z0-9])(?:ATATT|ATCTT|ATBB|ATOA)[A-Za-z0-9_=\-]{20,}"),
        0,
    ),
    (
        "jwt",
        re.compile(r"(?<![A-Za-z0-9_-])eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"),
        0,
    ),
    (
        "auth_header",
        re.compile(r"(?i)\b(?:Bearer|Basic|Token)\s+(" + _REFERENCE + r"[A-Za-z0-9._~+/=\-]{8,})"),
        1,
    ),
    (
        "aws_access_key_id",
        re.compile(
            r"(?<![A-Z0-9])(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA|ANVA|AIPA|ABIA|ACCA)[A-Z0-9]{16}(?![A-Z0-9])"
        ),
        0,
    ),
    (
        "aws_secret_access_key",
        re.compile(
            r"(?i)(?:aws_?secret_?(?:access_?)?key|secret_?access_?key|SecretAccessKey)"
            r"[\"']?\s*(?:[:=]|=>)\s*[\"']?([A-Za-z0-9/+]{40})(?![A-Za-z0-9/+])"
        ),
        1,
    ),
    (
        # Standalone: 40 chars of the secret-key alphabet with mixed case, a digit and a / or +,
        # bounded on both sides, and not more than three slashes (so paths do not match).
        "aws_secret_access_key",
        re.compile(
            r"(?<![A-Za-z0-9/+=])"
            r"(?=[A-Za-z0-9/+]{0,39}[A-Z])(?=[A-Za-z0-9/+]{0,39}[a-z])(?=[A-Za-z0-9/+]{0,39}[0-9])"
            r"(?=[A-Za-z0-9/+]{0,39}[/+])(?![A-Za-z0-9+]*/[A-Za-z0-9+]*/[A-Za-z0-9+]*/[A-Za-z0-9+]*/)"
            r"[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+=])"
        ),
        0,
    ),
    (
        "url_password",
        re.compile(r"(?i)\b[a-z][a-z0-9+.\-]*://[^\s:/@?#\"']+:([^\s@/?#\"']+)@"),
        1,
    ),
    (
        "password_field",
        re.compile(
            r"(?i)(?:password|passwd|pwd|passphrase|client_secret|secret_key|api_?key|access_token|auth_token"
            r"|refresh_token)[\"']?\s*(?:[:=]|=>)\s*[\"']?("
            + _REFERENCE
            + r"(?!(?:None|null|true|false)\b)[^\s\"'&;,)}\]<>]{3,})"
        ),
        1,
    ),
)


def _hints() -> dict[int, tuple[str, ...]]:
    """Per pattern (by index), lowercase substrings one of which must occur for it to match."""
    by_kind: dict[str, tuple[str, ...]] = {
        "private_key": ("private key-----",),
        "atlassian_token": ("atatt", "atctt", "atbb", "atoa"),
        "jwt": ("eyj",),
        "auth_header": ("bearer", "basic", "token"),
        "aws_access_key_id": ("akia", "asia", "agpa", "aida", "aroa", "anpa", "anva", "aipa", "abia", "acca"),
        "url_password": ("://",),
        "password_field": ("pass", "pwd", "secret", "key", "token"),
    }
    hints: dict[int, tuple[str, ...]] = {}
    seen: set[str] = set()
    for index, (kind, _, _) in enumerate(_PATTERNS):
        if kind == "aws_secret_access_key":
            if kind not in seen:  # the context form needs a key name; the standalone form has no hint
                hints[index] = ("secret",)
        elif kind in by_kind:
            hints[index] = by_kind[kind]
        seen.add(kind)
    return hints


_HINTS = _hints()


def mask(kind: str) -> str:
    """The text that replaces a masked value of ``kind``."""
    return f"[REDACTED:{kind}]"


def _secret_forms(value: str) -> set[str]:
    """Every form of ``value`` worth searching for (exact, base64 at any alignment, URL/HTML/JSON)."""
    forms = {value}
    raw = value.encode("utf-8")
    for pad in range(3):
        for encode in (base64.b64encode, base64.urlsafe_b64encode):
            enc = encode(b"\0" * pad + raw).decode("ascii")
            start = -(-8 * pad // 6)  # first char not touched by the padding bytes
            end = (8 * (pad + len(raw))) // 6  # last char fully determined by the value
            core = enc[start:end]
            if len(core) >= MIN_SECRET_LENGTH + 2:
                forms.add(core)
        if pad == 0:
            full = base64.b64encode(raw).decode("ascii")
            forms.update({full, full.rstrip("=")})
    forms.add(urllib.parse.quote(value, safe=""))
    forms.add(urllib.parse.quote(value))
    forms.add(urllib.parse.quote_plus(value))
    forms.add(html.escape(value))
    forms.add(html.escape(value, quote=False))
    forms.add(json.dumps(value)[1:-1])
    forms.add(json.dumps(value, ensure_ascii=False)[1:-1])
    return {f for f in forms if len(f) >= MIN_SECRET_LENGTH}


class Redactor:
    """Masks a set of secret values plus the built-in patterns; keeps counts per kind.

    A redactor is cheap; the runner makes one per run from the process registry and the kernel's
    side file. Counts accumulate across calls until :meth:`reset_counts`.
    """

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._secrets: set[str] = set()
        self._forms: list[str] = []
        self._regex: re.Pattern[str] | None = None
        self.counts: Counter[str] = Counter()
        for value in secrets:
            self.add_secret(value)

    def add_secret(self, value: str) -> bool:
        """Add a value to mask. Returns ``False`` (and masks nothing) for values that are too short."""
        if not isinstance(value, str) or len(value) < MIN_SECRET_LENGTH or value in self._secrets:
            return False
        self._secrets.add(value)
        forms = set(self._forms) | _secret_forms(value)
        self._forms = sorted(forms, key=lambda f: (-len(f), f))
        self._regex = re.compile("|".join(re.escape(f) for f in self._forms))
        return True

    def clone(self) -> Redactor:
        """A redactor with the same secrets and fresh counts."""
        twin = Redactor()
        twin._secrets = set(self._secrets)
        twin._forms = list(self._forms)
        twin._regex = self._regex
        return twin

    @property
    def secret_count(self) -> int:
        """How many distinct secret values this redactor masks."""
        return len(self._secrets)

    def reset_counts(self) -> None:
        """Forget the counts so far."""
        self.counts.clear()

    def redact_text(self, text: str) -> str:
        """Mask registered secrets (all forms), then the built-in patterns. There is no way to skip either."""
        if not text:
            return text
        if self._regex is not None:
            text, n = self._regex.subn(mask(SECRET_KIND), text)
            if n:
                self.counts[SECRET_KIND] += n
        lowered = text.lower()
        for index, (kind, pattern, group) in enumerate(_PATTERNS):
            hints = _HINTS.get(index)
            if hints is not None and not any(h in lowered for h in hints):
                continue  # cheap substring test first: most text holds none of the keywords
            text = self._sub(kind, pattern, group, text)
            lowered = text.lower() if hints is not None else lowered
        return text

    def _sub(self, kind: str, pattern: re.Pattern[str], group: int, text: str) -> str:
        hits = 0

        def repl(m: re.Match[str]) -> str:
            nonlocal hits
            hits += 1
            if group == 0:
                return mask(kind)
            whole = m.group(0)
            s, e = m.start(group) - m.start(0), m.end(group) - m.start(0)
            return whole[:s] + mask(kind) + whole[e:]

        text = pattern.sub(repl, text)
        if hits:
            self.counts[kind] += hits
        return text

    def redact_value(self, value: Any) -> Any:
        """Redact every string (keys too) in a JSON-like value; returns a new value."""
        if isinstance(value, str):
            return self.redact_text(value)
        if isinstance(value, Mapping):
            items = {
                self.redact_text(k) if isinstance(k, str) else k: self.redact_value(v)
                for k, v in value.items()
            }
            return type(value)(items) if isinstance(value, dict) else items  # keeps NotebookNode
        if isinstance(value, list | tuple):
            return type(value)(self.redact_value(v) for v in value)
        return value

    def redact_notebook(self, nb: Any) -> Any:
        """Redact a notebook in place (and return it): every cell source, output and metadata field.

        Walks every stream (consecutive streams of one name are merged first, so a secret printed in
        two flushes is still one string), every MIME type of every display/result output (binary
        images excepted), error ``ename``/``evalue``/``traceback``, the injected-parameters cell,
        cell and notebook metadata (``papermill.parameters``, ``papermill.exception``, widget state)
        and attachments' names.
        """
        for cell in nb.get("cells", []):
            if "source" in cell:
                cell["source"] = self.redact_value(_join(cell["source"]))
            if "metadata" in cell:
                cell["metadata"] = self.redact_value(cell["metadata"])
            if "attachments" in cell:
                cell["attachments"] = {
                    self.redact_text(k): self._redact_bundle(v) for k, v in cell["attachments"].items()
                }
            if "outputs" in cell:
                cell["outputs"] = [self._redact_output(o) for o in _coalesce_streams(cell["outputs"])]
        if "metadata" in nb:
            nb["metadata"] = self.redact_value(nb["metadata"])
        return nb

    def _redact_output(self, output: Any) -> Any:
        kind = output.get("output_type")
        if kind == "stream":
            output["text"] = self.redact_text(_join(output.get("text", "")))
        elif kind == "error":
            output["ename"] = self.redact_text(output.get("ename", ""))
            output["evalue"] = self.redact_text(output.get("evalue", ""))
            output["traceback"] = [self.redact_text(line) for line in output.get("traceback", [])]
        if "data" in output:
            output["data"] = self._redact_bundle(output["data"])
        for key in ("metadata", "transient"):
            if key in output:
                output[key] = self.redact_value(output[key])
        # any other field a future nbformat adds is still walked
        for key in list(output.keys()):
            if key not in _WALKED_OUTPUT_KEYS:
                output[key] = self.redact_value(output[key])
        return output

    def _redact_bundle(self, data: Any) -> Any:
        out: Any = type(data)() if isinstance(data, dict) else {}
        for mime, payload in data.items():
            if mime.startswith(_BINARY_MIME_PREFIXES):
                out[mime] = payload
            elif isinstance(payload, str | list) and not mime.endswith("json"):
                out[mime] = self.redact_text(_join(payload))
            else:
                out[mime] = self.redact_value(payload)
        return out


_WALKED_OUTPUT_KEYS = frozenset(
    {"output_type", "text", "ename", "evalue", "traceback", "data", "metadata", "transient"}
)


def _join(value: Any) -> Any:
    """nbformat allows multi-line strings as lists of lines; join them so patterns see whole text."""
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return "".join(value)
    return value


def _coalesce_streams(outputs: list[Any]) -> list[Any]:
    merged: list[Any] = []
    for out in outputs:
        if (
            out.get("output_type") == "stream"
            and merged
            and merged[-1].get("output_type") == "stream"
            and merged[-1].get("name") == out.get("name")
        ):
            merged[-1]["text"] = _join(merged[-1].get("text", "")) + _join(out.get("text", ""))
        else:
            merged.append(out)
    return merged


# --- the process registry --------------------------------------------------------------------------

_LOCK = threading.Lock()
_REGISTRY: set[str] = set()


def register_secret(value: str) -> bool:
    """Register a secret value resolved in this process so that every record masks it.

    Called by :mod:`atlbook.clients.secrets` for every resolved reference. In a kernel started by
    ``atlbook run`` the value is also appended to the side file named by ``ATLBOOK_SECRETS_FILE``
    (read at call time, not import time) so the runner can mask it. Returns ``False`` for values
    shorter than :data:`MIN_SECRET_LENGTH`, which are refused.
    """
    if not isinstance(value, str) or len(value) < MIN_SECRET_LENGTH:
        return False
    with _LOCK:
        if value in _REGISTRY:
            return True
        _REGISTRY.add(value)
        side = os.environ.get(SECRETS_FILE_ENV)
        if side:
            fd = os.open(side, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            with os.fdopen(fd, "a", encoding="utf-8") as fh:
                fh.write(json.dumps(value) + "\n")
                fh.flush()
                os.fsync(fh.fileno())
    return True


def registered_secret_count() -> int:
    """How many secrets this process has registered (never the values)."""
    with _LOCK:
        return len(_REGISTRY)


def clear_secrets() -> None:
    """Forget every registered secret of this process (tests use it between cases)."""
    with _LOCK:
        _REGISTRY.clear()


def default_redactor(extra: Iterable[str] = ()) -> Redactor:
    """A fresh :class:`Redactor` masking this process's registered secrets plus ``extra``."""
    with _LOCK:
        values = set(_REGISTRY)
    return Redactor([*values, *extra])


def load_secrets_file(path: Path) -> list[str]:
    """Read the values a kernel appended to its side file (missing file → none). Bad lines are skipped."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return []
    values = []
    for line in lines:
        try:
            value = json.loads(line)
        except ValueError:
            continue
        if isinstance(value, str):
            values.append(value)
    return values


def redact_text(text: str) -> tuple[str, dict[str, int]]:
    """Mask ``text`` with the process registry and the patterns; returns ``(text, counts by kind)``."""
    r = default_redactor()
    return r.redact_text(text), dict(r.counts)


def redact_value(value: Any) -> tuple[Any, dict[str, int]]:
    """Mask every string in a JSON-like value; returns ``(value, counts by kind)``."""
    r = default_redactor()
    return r.redact_value(value), dict(r.counts)


def redact_notebook(nb: Any, secrets: Iterable[str] = ()) -> tuple[Any, dict[str, int]]:
    """Redact a notebook in place with the process registry plus ``secrets``; returns ``(nb, counts)``."""
    r = default_redactor(secrets)
    return r.redact_notebook(nb), dict(r.counts)
