"""Secret references and their resolution; every resolved value is announced for redaction.

A parameter that holds a password or token is a *reference*, never a value:

- ``env:NAME`` — the environment variable ``NAME`` of the process running the runbook;
- ``k8s-secret:NAMESPACE/NAME#KEY`` — key ``KEY`` of the Kubernetes Secret ``NAMESPACE/NAME``;
- ``aws-secretsmanager:ARN[#JSONKEY]`` — the ``SecretString`` of a Secrets Manager secret, or the key
  ``JSONKEY`` of it when it is a JSON object.

Parsing is :func:`atlbook.stack.parse_secret_ref` (one grammar for validation and resolution).

Redaction direction (layers point down): ``atlbook.records`` sits *above* ``atlbook.clients``, so this
module does not import it. Instead it keeps the process-wide registry of resolved values and announces
each new one to listeners: ``records`` calls ``secrets.add_listener(redaction.register_secret)`` once
(listeners added late are replayed every value resolved so far) or reads :func:`resolved_values`.
Anything in ``atlbook.clients`` that produces a credential (EKS tokens, sandbox keys) calls
:func:`register` too.

Errors (:class:`~atlbook.errors.SecretResolutionError`) name the reference, never the value.
"""

from __future__ import annotations

import base64
import json
import os
import threading
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from atlbook import errors, stack

__all__ = [
    "SCHEMES",
    "SecretRef",
    "SecretSource",
    "add_listener",
    "clear",
    "is_reference",
    "parse",
    "register",
    "remove_listener",
    "resolve",
    "resolved_values",
]

SCHEMES: tuple[str, ...] = tuple(stack.SECRET_REF_KINDS)

_lock = threading.Lock()
_values: dict[str, None] = {}
_listeners: list[Callable[[str], object]] = []

#: The parsed form of a reference (``kind`` plus the fields it needs): :class:`atlbook.stack.SecretRef`.
SecretRef = stack.SecretRef


class SecretSource(Protocol):
    """What :func:`resolve` needs from a :class:`~atlbook.clients.Clients` bundle (only when used)."""

    def read_secret_data(self, namespace: str, name: str) -> Mapping[str, str]:
        """The ``data`` (base64) of a Kubernetes Secret."""
        ...

    def secretsmanager_string(self, secret_id: str) -> str:
        """``SecretString`` of a Secrets Manager secret."""
        ...


def is_reference(value: object) -> bool:
    """True when ``value`` is a string starting with one of the reference schemes."""
    return isinstance(value, stack.SecretRef) or (
        isinstance(value, str) and any(value.startswith(f"{s}:") for s in SCHEMES)
    )


def parse(ref: str | SecretRef) -> SecretRef:
    """Parse a reference string with :func:`atlbook.stack.parse_secret_ref`.

    Raises :class:`SecretResolutionError` when malformed; the message never echoes the text (it may be
    a secret pasted where a reference belongs).
    """
    if isinstance(ref, stack.SecretRef):
        return ref
    if not isinstance(ref, str):
        raise errors.SecretResolutionError(f"not a secret reference (allowed: {stack.SECRET_REF_HELP})")
    try:
        return stack.parse_secret_ref(ref)
    except ValueError as e:
        raise errors.SecretResolutionError(str(e)) from None


def register(value: str) -> None:
    """Remember ``value`` as secret and announce it to every listener (idempotent; empty values ignored).

    Listeners decide what they keep (``records.redaction`` refuses very short values).
    """
    if not value:
        return
    with _lock:
        if value in _values:
            return
        _values[value] = None
        listeners = list(_listeners)
    for fn in listeners:
        fn(value)


def add_listener(fn: Callable[[str], object]) -> None:
    """Call ``fn(value)`` for every value resolved so far and every value resolved from now on."""
    with _lock:
        _listeners.append(fn)
        known = list(_values)
    for value in known:
        fn(value)


def remove_listener(fn: Callable[[str], object]) -> None:
    """Stop announcing to ``fn`` (no error if it was not added)."""
    with _lock:
        if fn in _listeners:
            _listeners.remove(fn)


def resolved_values() -> frozenset[str]:
    """Every secret value registered in this process so far."""
    with _lock:
        return frozenset(_values)


def clear() -> None:
    """Forget registered values and listeners (tests only)."""
    with _lock:
        _values.clear()
        _listeners.clear()


def _register_json_leaves(doc: Any) -> None:
    if isinstance(doc, str):
        register(doc)
    elif isinstance(doc, Mapping):
        for v in doc.values():
            _register_json_leaves(v)
    elif isinstance(doc, list):
        for v in doc:
            _register_json_leaves(v)


def resolve(
    ref: str | SecretRef,
    source: SecretSource | None = None,
    *,
    environ: Mapping[str, str] | None = None,
) -> str:
    """Resolve ``ref`` to its value and register the value for redaction.

    ``source`` (a :class:`~atlbook.clients.Clients`) is needed for ``k8s-secret:`` and
    ``aws-secretsmanager:``; ``environ`` overrides ``os.environ`` for ``env:`` (tests).
    Refuses: malformed references, missing variables/Secrets/keys, non-JSON strings asked for a key —
    each a :class:`SecretResolutionError` naming the reference and, when an API failed, chaining it.
    """
    parsed = parse(ref)
    text = str(parsed)
    if parsed.kind == "env":
        assert parsed.name is not None
        env = os.environ if environ is None else environ
        if parsed.name not in env:
            raise errors.SecretResolutionError(f"{text}: environment variable {parsed.name} is not set")
        value = env[parsed.name]
        register(value)
        return value
    if source is None:
        raise errors.SecretResolutionError(f"{text}: needs a connected target (clients) to resolve")
    if parsed.kind == "k8s-secret":
        assert parsed.namespace is not None and parsed.key is not None and parsed.name is not None
        try:
            data = source.read_secret_data(parsed.namespace, parsed.name)
        except errors.ApiError as e:
            raise errors.SecretResolutionError(f"{text}: cannot read the Secret ({type(e).__name__})") from e
        if parsed.key not in data:
            raise errors.SecretResolutionError(f"{text}: the Secret has no key {parsed.key!r}")
        try:
            value = base64.b64decode(data[parsed.key], validate=True).decode("utf-8")
        except (ValueError, UnicodeDecodeError):
            raise errors.SecretResolutionError(f"{text}: the value is not base64-encoded UTF-8") from None
        register(value)
        return value
    try:
        assert parsed.arn is not None
        secret_string = source.secretsmanager_string(parsed.arn)
    except errors.ApiError as e:
        raise errors.SecretResolutionError(f"{text}: cannot read the secret ({type(e).__name__})") from e
    register(secret_string)
    if parsed.json_key is None:
        return secret_string
    try:
        doc = json.loads(secret_string)
    except ValueError:
        raise errors.SecretResolutionError(
            f"{text}: the secret is not a JSON object, cannot take a key"
        ) from None
    _register_json_leaves(doc)
    if not isinstance(doc, Mapping) or parsed.json_key not in doc:
        raise errors.SecretResolutionError(f"{text}: the secret JSON has no key {parsed.json_key!r}")
    value = doc[parsed.json_key]
    if not isinstance(value, str):
        value = json.dumps(value)
        register(value)
    return value
