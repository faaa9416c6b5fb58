"""Loading and validating runbook parameters: papermill's precedence, atlbook's checks.

A parameters file (``parameters/*.yaml``) is a mapping: ``stack:`` holds the stack description
(:class:`atlbook.stackmod.StackSpec`), every other top-level key is a runbook option declared in some
notebook's ``parameters`` cell. :func:`resolve` merges, in this order (later wins):

1. the notebook's defaults (``declared``, from papermill's inspection),
2. each ``-f`` file in the order given (mappings are merged deeply, anything else is replaced),
3. each ``-p KEY VALUE`` override (dotted keys such as ``stack.products.jira.replicas``; the value is
   read as a YAML scalar, dates stay strings like papermill's ``NoDatesSafeLoader``),

then validates the result and reports every problem as a :class:`~atlbook.errors.ParameterError`
naming the source (file or ``-p``), the dotted key, the bad value and what is allowed — before any
kernel starts and before any API call. :func:`load_stack` is the notebook side: the ``stack``
parameter (a name, a path or the mapping ``atlbook run`` injects) becomes a typed ``StackSpec``.

Secrets are never values. Secret fields of the stack take references only (``env:NAME``,
``k8s-secret:NAMESPACE/NAME#KEY``, ``aws-secretsmanager:ARN[#JSONKEY]``), and any key anywhere whose
name suggests a secret (password, token, api_key, credentials, ...) or any value that looks like
one (AWS access key id, private key, password in a URL) is refused with
:class:`~atlbook.errors.LiteralSecretError`. Error messages never contain such a value.

Boundaries: imports only :mod:`atlbook.stack` and :mod:`atlbook.errors` (plus yaml, pydantic); files
are read only when a function is called; the environment is never read.
"""

from __future__ import annotations

import copy
import difflib
import re
import types
import typing
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from atlbook import errors
from atlbook import stack as stackmod

__all__ = [
    "NoDatesSafeLoader",
    "Resolved",
    "find_parameters_file",
    "is_secret_key",
    "load_stack",
    "parse_override",
    "read_document",
    "resolve",
    "scan_secrets",
    "schema_keys",
]

_OVERRIDE = "-p"
_DEFAULT = "default"
_INJECTED = "stack (injected mapping)"


# --- YAML ------------------------------------------------------------------------------------------


class NoDatesSafeLoader(yaml.SafeLoader):
    """A ``SafeLoader`` that keeps dates as strings (like papermill's) and refuses duplicate keys."""

    yaml_implicit_resolvers = {
        k: [r for r in v if r[0] != "tag:yaml.org,2002:timestamp"]
        for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        """Build a mapping; refuses (``ConstructorError``) a key given twice, which YAML would drop."""
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if isinstance(key, typing.Hashable) and key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key '{key}'", key_node.start_mark
                )
            if isinstance(key, typing.Hashable):
                seen.add(key)
        return super().construct_mapping(node, deep=deep)


def read_document(path: Path) -> dict[str, Any]:
    """Read a parameters file: a YAML mapping with string keys (an empty file is an empty mapping).

    Refuses (:class:`~atlbook.errors.ParameterError` naming the file): a missing or unreadable file,
    invalid YAML (with line and column), duplicate keys, a document that is not a mapping, and
    non-string top-level keys.
    """
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise errors.ParameterError(
            "parameters file not found", source=source, allowed="an existing YAML file"
        ) from None
    except IsADirectoryError:
        raise errors.ParameterError("is a directory, not a parameters file", source=source) from None
    except (OSError, UnicodeDecodeError) as e:
        raise errors.ParameterError(
            f"cannot read the parameters file ({type(e).__name__})", source=source
        ) from e
    try:
        document = yaml.load(text, Loader=NoDatesSafeLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(e, "problem", None) or "malformed YAML"
        raise errors.ParameterError(f"not valid YAML{where}: {problem}", source=source) from None
    if document is None:
        return {}
    if not isinstance(document, dict):
        raise errors.ParameterError(
            f"the document is a {_kind(document)}, not a mapping",
            source=source,
            allowed="a mapping of 'stack:' and runbook options",
        )
    for key in document:
        if not isinstance(key, str):
            raise errors.ParameterError(
                "top-level keys must be text", source=source, key=str(key), allowed="option names"
            )
    return document


def parse_override(raw: str) -> Any:
    """Read the value of ``-p KEY VALUE`` as YAML (``3`` → int, ``true`` → bool, dates stay text).

    Text that is not valid YAML is kept as the string given; never raises.
    """
    try:
        return yaml.load(raw, Loader=NoDatesSafeLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError:
        return raw


# --- secrets ---------------------------------------------------------------------------------------

_SECRET_KEY_RE = re.compile(
    r"password|passwd|passphrase|secret|token|api[_-]?key|apikey|private[_-]?key|access[_-]?key|"
    r"credential|(^|[_-])pwd($|[_-])|(^|[_-])pass($|[_-])",
    re.IGNORECASE,
)
# Keys whose names contain a secret word but whose values are names or settings, not secrets.
_NOT_SECRET_KEYS = {"tls_secret", "secret_name", "token_file"}
_NOT_SECRET_SUFFIXES = ("_name", "_file", "_path", "_arn", "_ref", "_enabled", "_seconds", "_ttl", "_length")

_SECRET_VALUE_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"(?<![A-Z0-9])(AKIA|ASIA)[A-Z0-9]{16}(?![A-Z0-9])"), "an AWS access key id"),
    (re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"), "a private key"),
    (re.compile(r"\bATATT[A-Za-z0-9_\-=]{20,}"), "an Atlassian API token"),
    (re.compile(r"[a-zA-Z][a-zA-Z0-9+.-]*://[^/\s:@]+:[^/\s@]+@"), "a URL with a password"),
    (re.compile(r"(?i)\bpassword=[^&;\s]+"), "a connection string with a password"),
    (re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{16,}"), "an authorization header"),
)


def is_secret_key(name: str) -> bool:
    """True when a key's name suggests its value is a secret (password, token, api_key, ...)."""
    lowered = name.lower()
    if lowered in _NOT_SECRET_KEYS or lowered.endswith(_NOT_SECRET_SUFFIXES):
        return False
    return bool(_SECRET_KEY_RE.search(lowered))


def _is_reference(value: str) -> bool:
    try:
        stackmod.parse_secret_ref(value)
    except ValueError:
        return False
    return True


def scan_secrets(document: Any, *, source: str, prefix: str = "") -> None:
    """Refuse literal secrets anywhere in a parameters document (or an override value).

    A value under a secret-named key must be a secret reference (or empty/null/boolean); any string
    that looks like a credential (AWS access key id, private key, API token, password in a URL) is
    refused wherever it is. Raises :class:`~atlbook.errors.LiteralSecretError` naming ``source`` and
    the dotted key, never the value.
    """
    for path, key, value in _walk(document, prefix):
        if isinstance(value, str):
            for pattern, what in _SECRET_VALUE_PATTERNS:
                if pattern.search(value):
                    raise errors.LiteralSecretError(
                        f"the value looks like {what}; secrets must be given by reference",
                        source=source,
                        key=path,
                        allowed=stackmod.SECRET_REF_HELP,
                    )
        if key is None or not is_secret_key(key):
            continue
        if value is None or isinstance(value, bool) or value == "" or isinstance(value, dict | list):
            continue
        if isinstance(value, str) and _is_reference(value):
            continue
        if isinstance(value, str) and value.split(":", 1)[0] in stackmod.SECRET_REF_KINDS:
            message = "malformed secret reference"
        else:
            message = "a secret must be given as a reference, not as a value"
        raise errors.LiteralSecretError(message, source=source, key=path, allowed=stackmod.SECRET_REF_HELP)


def _walk(node: Any, prefix: str) -> Iterator[tuple[str, str | None, Any]]:
    """Yield (dotted path, key name or None for list items, value) for every node below ``node``."""
    if isinstance(node, dict):
        for key, value in node.items():
            path = f"{prefix}.{key}" if prefix else str(key)
            yield path, str(key), value
            yield from _walk(value, path)
    elif isinstance(node, list):
        for index, value in enumerate(node):
            path = f"{prefix}.{index}" if prefix else str(index)
            last = prefix.rsplit(".", 1)[-1] if prefix else None
            yield path, last, value
            yield from _walk(value, path)


# --- finding and loading stacks --------------------------------------------------------------------

_NAME_RE = re.compile(r"^[A-Za-z0-9][-_A-Za-z0-9]*$")


def find_parameters_file(name: str, *, base_dir: Path | None = None, source: str | None = None) -> Path:
    """Find ``parameters/<name>.yaml`` in ``base_dir`` (default: the current directory) or a parent.

    Refuses (:class:`~atlbook.errors.ParameterError`, key ``stack``, ``source`` = where the name was
    given) a name that is not a plain file name, and a name no ``parameters/`` directory on the way up
    has.
    """
    if not _NAME_RE.match(name):
        raise errors.ParameterError(
            f"'{name}' is not a parameters name",
            source=source,
            key="stack",
            allowed="a name under parameters/ without .yaml (e.g. 'sandbox'), a path to a .yaml file, "
            "or a mapping",
        )
    start = (base_dir or Path.cwd()).resolve()
    for directory in (start, *start.parents):
        candidate = directory / "parameters" / f"{name}.yaml"
        if candidate.is_file():
            return candidate
    raise errors.ParameterError(
        f"no parameters/{name}.yaml in {start} or any directory above it",
        source=source,
        key="stack",
        value=name,
        allowed="a name under parameters/ without .yaml, or a path to a .yaml file",
    )


def _stack_file(reference: str, base_dir: Path | None, source: str | None) -> Path:
    if reference.endswith((".yaml", ".yml")) or "/" in reference or "\\" in reference:
        path = Path(reference).expanduser()
        if not path.is_absolute():
            path = (base_dir or Path.cwd()) / path
        return path
    return find_parameters_file(reference, base_dir=base_dir, source=source)


def _stack_from_file(
    reference: str, base_dir: Path | None, seen: tuple[Path, ...] = (), *, source: str | None = None
) -> tuple[Any, Path]:
    """The raw ``stack:`` mapping named by ``reference`` (following ``stack: other`` once per file)."""
    path = _stack_file(reference, base_dir, source)
    document = read_document(path)
    scan_secrets(document, source=str(path))
    if "stack" not in document:
        raise errors.ParameterError(
            "the file has no 'stack:' key",
            source=str(path),
            key="stack",
            allowed="a mapping describing the stack",
        )
    value = document["stack"]
    if isinstance(value, str):
        resolved = path.resolve()
        if resolved in seen:
            raise errors.ParameterError(
                "stack references form a cycle", source=str(path), key="stack", value=value
            )
        return _stack_from_file(value, path.parent, (*seen, resolved), source=str(path))
    return value, path


def load_stack(
    stack: str | Mapping[str, Any] | stackmod.StackSpec, *, base_dir: Path | None = None
) -> stackmod.StackSpec:
    """Turn a runbook's ``stack`` parameter into a validated :class:`~atlbook.stackmod.StackSpec`.

    ``stack`` is a ``StackSpec`` (returned as is), a mapping (what ``atlbook run`` injects), a
    path to a YAML file, or a name: ``"sandbox"`` is the ``stack:`` key of the first
    ``parameters/sandbox.yaml`` found walking up from ``base_dir`` (default: the current directory).
    Refuses, with :class:`~atlbook.errors.ParameterError`: a missing/unreadable/non-YAML/non-mapping
    file, a file without ``stack:``, any schema violation (unknown key with a suggestion, wrong type,
    replicas < 1, ...), and literal secrets (:class:`~atlbook.errors.LiteralSecretError`).
    """
    if isinstance(stack, stackmod.StackSpec):
        return stack
    if isinstance(stack, Mapping):
        document: Any = dict(stack)
        source = _INJECTED
        scan_secrets(document, source=source, prefix="stack")
    elif isinstance(stack, str):
        document, path = _stack_from_file(stack, base_dir)
        source = str(path)
    else:
        raise errors.ParameterError(
            f"expected a name, a path or a mapping, got a {_kind(stack)}",
            key="stack",
            allowed="'sandbox', a path to a .yaml file, or a mapping",
        )
    return _validate_stack(document, lambda _key: source)


def _validate_stack(document: Any, source_of: Callable[[str], str]) -> stackmod.StackSpec:
    if not isinstance(document, dict):
        raise errors.ParameterError(
            f"expected a mapping describing the stack, got a {_kind(document)}",
            source=source_of("stack"),
            key="stack",
            value=None if isinstance(document, str) else document,
            allowed="a mapping with name, target, zones, node_groups, products, database, ingress, ...",
        )
    try:
        return stackmod.StackSpec.model_validate(document)
    except ValidationError as e:
        raise _translate(e, document, source_of) from None


# --- resolving runbook parameters ------------------------------------------------------------------


@dataclass(frozen=True)
class Resolved:
    """The outcome of :func:`resolve`.

    ``values``: every parameter of the runbook, ready to pass to papermill; ``values["stack"]`` is the
    validated stack as a JSON-ready mapping (``StackSpec.model_dump(mode="json")``).
    ``provenance``: dotted key → ``"default"``, the file path that set it, or ``"-p"``.
    ``stack``: the typed stack. ``ignored``: top-level key → source, for options given that belong to
    other runbooks. ``advisories``: valid but risky choices (:meth:`StackSpec.advisories`).
    """

    values: dict[str, Any]
    provenance: dict[str, str]
    stack: stackmod.StackSpec
    ignored: dict[str, str] = field(default_factory=dict)
    advisories: list[str] = field(default_factory=list)


class _Merger:
    """The state of one :func:`resolve` call: merged values plus where each leaf came from."""

    def __init__(self, declared: Mapping[str, Any], known: Collection[str], base_dir: Path | None) -> None:
        self.declared = dict(declared)
        self.known = set(known)
        self.base_dir = base_dir
        self.stack_base = base_dir  # where a stack name/path is looked up: beside the file that gave it
        self.values: dict[str, Any] = copy.deepcopy(self.declared)
        self.values.setdefault("stack", "sandbox")
        self.provenance: dict[str, str] = {}
        self.ignored: dict[str, str] = {}
        for path, _, value in _walk(self.values, ""):
            if not isinstance(value, dict | list) or not value:
                self.provenance[path] = _DEFAULT

    # provenance helpers
    def _forget(self, prefix: str) -> None:
        for key in [k for k in self.provenance if k == prefix or k.startswith(prefix + ".")]:
            del self.provenance[key]

    def _mark(self, prefix: str, value: Any, source: str) -> None:
        parts = prefix.split(".")
        for depth in range(1, len(parts)):
            self.provenance.pop(".".join(parts[:depth]), None)  # an ancestor is no longer a leaf
        if isinstance(value, dict | list) and value:
            for path, _, leaf in _walk(value, prefix):
                if not isinstance(leaf, dict | list) or not leaf:
                    self.provenance[path] = source
        else:
            self.provenance[prefix] = source

    def source_of(self, dotted: str) -> str:
        """Where ``dotted`` was set: its own source, else the sources of what is below it, else above."""
        key = dotted
        while True:
            if key in self.provenance:
                return self.provenance[key]
            below = list(dict.fromkeys(v for k, v in self.provenance.items() if k.startswith(key + ".")))
            below = [v for v in below if v != _DEFAULT] or below
            if below:
                return " + ".join(below)
            if "." not in key:
                return "parameters"
            key = key.rsplit(".", 1)[0]

    # the stack
    def expand_stack(self) -> None:
        """Replace a stack name/path by the raw mapping of the file it names."""
        value = self.values["stack"]
        if isinstance(value, str):
            where = self.provenance.get("stack", _DEFAULT)
            source = "notebook default" if where == _DEFAULT else where
            document, path = _stack_from_file(value, self.stack_base, source=source)
            self.values["stack"] = copy.deepcopy(document)
            self._forget("stack")
            self._mark("stack", document, str(path))

    # top-level keys
    def classify(self, key: str, source: str) -> bool:
        """True if ``key`` is a parameter of this runbook; records or refuses it otherwise."""
        if key in self.values:
            return True
        if key in self.known:
            self.ignored[key] = source
            return False
        candidates = sorted(set(self.values) | self.known)
        raise errors.ParameterError(
            "unknown parameter",
            source=source,
            key=key,
            allowed=_listing(candidates),
            suggestion=_suggest(key, candidates),
        )

    def apply_file(self, path: Path) -> None:
        """Merge one ``-f`` file; refuses bad files, unknown keys, wrong types and literal secrets."""
        source = str(path)
        document = read_document(path)
        scan_secrets(document, source=source)
        for key, value in document.items():
            if not self.classify(key, source):
                continue
            if key == "stack":
                self._set_stack(value, source)
                continue
            _check_type(key, value, self.declared.get(key), source)
            self._merge(self.values, key, value, key, source)

    def _merge(self, container: dict[str, Any], key: str, value: Any, path: str, source: str) -> None:
        """Deep-merge ``value`` into ``container[key]`` (mappings merge, anything else replaces)."""
        current = container.get(key)
        if isinstance(current, dict) and isinstance(value, dict):
            if key in container and not current:
                self._forget(path)
            for sub_key, sub_value in value.items():
                self._merge(current, sub_key, sub_value, f"{path}.{sub_key}", source)
            if not value and not current:
                self.provenance[path] = source
            return
        self._forget(path)
        container[key] = copy.deepcopy(value)
        self._mark(path, value, source)

    def _set_stack(self, value: Any, source: str) -> None:
        if not isinstance(value, dict | str):
            raise errors.ParameterError(
                f"expected a mapping or a stack name, got {_show(value)} ({_kind(value)})",
                source=source,
                key="stack",
                value=value,
                allowed="a mapping describing the stack, a parameters name, or a path",
            )
        self._merge(self.values, "stack", value, "stack", source)
        if isinstance(value, str):
            self.stack_base = self.base_dir if source == _OVERRIDE else Path(source).parent

    def apply_override(self, dotted: str, raw: str) -> None:
        """Apply one ``-p KEY VALUE``; refuses malformed or unknown keys, wrong types, literal secrets."""
        parts = dotted.split(".")
        if not dotted or any(not p for p in parts):
            raise errors.ParameterError(
                "malformed key",
                source=_OVERRIDE,
                key=dotted,
                allowed="dotted names like stack.products.jira.replicas",
            )
        # a secret is never read as YAML: "env:" would become a mapping, "0123" a number
        value = raw if is_secret_key(parts[-1]) else parse_override(raw)
        scan_secrets({parts[-1]: value}, source=_OVERRIDE, prefix=".".join(parts[:-1]))
        top = parts[0]
        if not self.classify(top, _OVERRIDE):
            return
        if top == "stack":
            if len(parts) == 1:
                self._set_stack(value if isinstance(value, dict) else raw, _OVERRIDE)
                return
            self.expand_stack()
            if _schema_leaf_is_text(parts[1:]) and not isinstance(value, str) and value is not None:
                value = raw  # a version such as 10.0 stays the text the operator typed
            _set_path(self.values, parts, value, _OVERRIDE)
        else:
            default = self.declared.get(top)
            if len(parts) == 1:
                if isinstance(default, str) and not isinstance(value, str):
                    value = raw
                _check_type(top, value, default, _OVERRIDE)
                self.values[top] = value
            else:
                if default is not None and not isinstance(default, dict):
                    raise errors.ParameterError(
                        f"'{top}' is a {_kind(default)} option and has no sub-keys",
                        source=_OVERRIDE,
                        key=dotted,
                        allowed=f"-p {top} VALUE",
                    )
                _set_path(self.values, parts, value, _OVERRIDE)
        self._forget(dotted)
        self._mark(dotted, value, _OVERRIDE)


def resolve(
    declared: Mapping[str, Any],
    files: Sequence[Path],
    overrides: Sequence[tuple[str, str]],
    *,
    known_options: Collection[str] = (),
    base_dir: Path | None = None,
) -> Resolved:
    """Merge a runbook's parameters (defaults < files in order < ``-p``) and validate them.

    ``declared`` are the notebook's defaults (papermill inspection); ``files`` the ``-f`` files;
    ``overrides`` the ``-p KEY VALUE`` pairs as typed; ``known_options`` the option names of all
    runbooks (keys of other runbooks are ignored and reported in ``Resolved.ignored``); ``base_dir``
    where a stack name such as ``sandbox`` is looked up (default: the current directory).

    Refuses, with :class:`~atlbook.errors.ParameterError` naming the file or ``-p``, the dotted key,
    the value and what is allowed: missing/unreadable/non-YAML/non-mapping files, unknown keys (with
    a "did you mean"), option values whose type differs from the notebook default's, every stack
    schema violation (e.g. replicas < 1), and literal secrets (:class:`~atlbook.errors.LiteralSecretError`,
    without the value).
    """
    scan_secrets(dict(declared), source="notebook defaults")
    merger = _Merger(declared, set(known_options) | {"stack"}, base_dir)
    for file in files:
        merger.apply_file(Path(file))
    for key, raw in overrides:
        merger.apply_override(key, raw)
    merger.expand_stack()
    spec = _validate_stack(merger.values["stack"], lambda dotted: merger.source_of(dotted))
    dumped = spec.model_dump(mode="json")
    merger.values["stack"] = dumped
    for dotted, _, value in _walk(dumped, "stack"):
        if (not isinstance(value, dict | list) or not value) and dotted not in merger.provenance:
            if not any(k.startswith(dotted + ".") for k in merger.provenance):
                merger.provenance[dotted] = _DEFAULT
    return Resolved(
        values=merger.values,
        provenance=merger.provenance,
        stack=spec,
        ignored=merger.ignored,
        advisories=spec.advisories(),
    )


# --- helpers ---------------------------------------------------------------------------------------


def _set_path(root: dict[str, Any], parts: Sequence[str], value: Any, source: str) -> None:
    node: Any = root
    for depth, part in enumerate(parts[:-1]):
        if isinstance(node, dict):
            if node.get(part) is None:
                node[part] = {}
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            raise _no_sub_key(parts, depth, node, source)
    last = parts[-1]
    if isinstance(node, dict):
        node[last] = value
    elif isinstance(node, list) and last.isdigit() and int(last) < len(node):
        node[int(last)] = value
    else:
        raise _no_sub_key(parts, len(parts) - 1, node, source)


def _no_sub_key(parts: Sequence[str], depth: int, node: Any, source: str) -> errors.ParameterError:
    parent = ".".join(parts[:depth])
    if isinstance(node, list):
        what = (
            f"a list of {len(node)} item(s), so '{parts[depth]}' must be an index from 0 to {len(node) - 1}"
        )
    else:
        what = f"{_kind(node)} ({_show(node)}), so it has no key '{parts[depth]}'"
    return errors.ParameterError(
        f"'{parent}' is {what}",
        source=source,
        key=".".join(parts),
        allowed="a path through mappings, or set the whole value in a parameters file",
    )


_TYPE_NAMES: dict[type, str] = {
    bool: "true or false",
    int: "a whole number",
    float: "a number",
    str: "text",
    list: "a list, e.g. [a, b]",
    dict: "a mapping, e.g. {key: value}",
}


def _check_type(key: str, value: Any, default: Any, source: str) -> None:
    """Refuse an option value whose type differs from the notebook default's (None default: any)."""
    if default is None or value is None:
        return
    expected = type(default)
    if expected is bool:
        ok = isinstance(value, bool)
    elif expected is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif expected is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
    else:
        ok = isinstance(value, expected) and not (isinstance(value, bool) and expected is not bool)
    if not ok:
        secret = is_secret_key(key.rsplit(".", 1)[-1])
        got = "" if secret else f", got {_show(value)} ({_kind(value)})"
        hint = " — quote it in YAML" if expected is str else ""
        raise errors.ParameterError(
            f"wrong type{got}{hint}",
            source=source,
            key=key,
            value=None if secret else value,
            allowed=_TYPE_NAMES.get(expected, expected.__name__),
        )


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "whole number"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, list | tuple):
        return "list"
    if isinstance(value, dict | Mapping):
        return "mapping"
    return type(value).__name__


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _listing(names: Sequence[str]) -> str:
    shown = ", ".join(names[:20])
    return shown + (f", ... ({len(names)} in all)" if len(names) > 20 else "")


def _suggest(key: str, candidates: Collection[str]) -> str | None:
    matches = difflib.get_close_matches(key, list(candidates), n=1, cutoff=0.6)
    if not matches:
        lowered = {c.lower(): c for c in candidates}
        if key.lower() in lowered:
            return lowered[key.lower()]
    return matches[0] if matches else None


# --- the schema, walked by name --------------------------------------------------------------------


def _model_of(annotation: Any) -> tuple[type[BaseModel] | None, bool]:
    """The model class inside an annotation (Optional, Annotated, list, union) and whether it is a list."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _model_of(typing.get_args(annotation)[0])
    if origin is list:
        inner, _ = _model_of(typing.get_args(annotation)[0])
        return inner, True
    if origin is typing.Union or origin is types.UnionType:
        for arg in typing.get_args(annotation):
            inner, is_list = _model_of(arg)
            if inner is not None:
                return inner, is_list
        return None, False
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        if issubclass(annotation, stackmod.SecretRef):
            return None, False
        return annotation, False
    return None, False


def _model_at(parts: Sequence[str | int]) -> type[BaseModel] | None:
    """The StackSpec sub-model at a path of keys (list indexes skipped), or None for a leaf."""
    model: type[BaseModel] | None = stackmod.StackSpec
    in_list = False
    for part in parts:
        if model is None:
            return None
        if isinstance(part, int) or (isinstance(part, str) and part.isdigit()):
            if in_list:
                in_list = False
                continue
            return None
        info = model.model_fields.get(part)
        if info is None:
            return None
        model, in_list = _model_of(info.annotation)
    return None if in_list else model


def _schema_leaf_is_text(parts: Sequence[str]) -> bool:
    parent = _model_at(parts[:-1])
    if parent is None:
        return False
    info = parent.model_fields.get(parts[-1])
    if info is None:
        return False
    annotation = info.annotation
    if annotation is str:
        return True
    args = typing.get_args(annotation)
    return typing.get_origin(annotation) in (typing.Union, types.UnionType) and str in args


def schema_keys() -> set[str]:
    """Every dotted key of :class:`~atlbook.stackmod.StackSpec` (list items add no index), e.g.
    ``products.jira.replicas``, ``node_groups.taints.effect``. Free-form mappings (``tags``,
    ``node_groups.labels``) appear as one key; secret references are leaves."""
    keys: set[str] = set()

    def visit(model: type[BaseModel], prefix: str) -> None:
        """Add the keys of ``model`` below ``prefix``."""
        for name, info in model.model_fields.items():
            path = f"{prefix}.{name}" if prefix else name
            keys.add(path)
            inner, _ = _model_of(info.annotation)
            if inner is not None:
                visit(inner, path)

    visit(stackmod.StackSpec, "")
    return keys


# --- pydantic errors → operator messages -----------------------------------------------------------

_FRIENDLY: dict[str, str] = {
    "missing": "is required but missing",
    "extra_forbidden": "unknown key",
    "int_type": "wrong type: expected a whole number",
    "int_parsing": "wrong type: expected a whole number",
    "int_from_float": "wrong type: expected a whole number",
    "float_type": "wrong type: expected a number",
    "float_parsing": "wrong type: expected a number",
    "bool_type": "wrong type: expected true or false",
    "bool_parsing": "wrong type: expected true or false",
    "string_type": "wrong type: expected text (quote it in YAML)",
    "dict_type": "wrong type: expected a mapping",
    "model_type": "wrong type: expected a mapping",
    "model_attributes_type": "wrong type: expected a mapping",
    "list_type": "wrong type: expected a list",
    "literal_error": "not one of the allowed values",
    "greater_than_equal": "too small",
    "greater_than": "too small",
    "less_than_equal": "too large",
    "less_than": "too large",
    "too_short": "too few items",
    "too_long": "too many items",
    "string_too_short": "must not be empty",
    "string_pattern_mismatch": "does not have the expected format",
    "frozen_instance": "cannot be changed",
    "invalid_key": "keys must be text",
}


def _clean_loc(loc: Sequence[str | int], document: Any) -> list[str | int]:
    """Drop pydantic's union tags from ``loc`` by following the keys that exist in ``document``."""
    path: list[str | int] = []
    node: Any = document
    for position, part in enumerate(loc):
        if isinstance(node, dict) and part in node:
            path.append(part)
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            path.append(part)
            node = node[part]
        elif position == len(loc) - 1 and isinstance(node, dict):
            path.append(part)  # a missing key
            node = None
        # otherwise: a union/discriminator tag, or a key under a non-mapping — skip it
    return path


def _lookup(document: Any, path: Sequence[str | int]) -> tuple[bool, Any]:
    node = document
    for part in path:
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            node = node[part]
        else:
            return False, None
    return True, node


def _allowed(kind: str, ctx: Mapping[str, Any], path: Sequence[str | int]) -> str | None:
    if kind == "literal_error":
        return str(ctx.get("expected", "")).replace("'", "")
    if kind in ("greater_than_equal", "greater_than", "less_than_equal", "less_than"):
        sign = {"greater_than_equal": ">=", "greater_than": ">", "less_than_equal": "<=", "less_than": "<"}[
            kind
        ]
        bound = next(iter(v for k, v in ctx.items() if k in ("ge", "gt", "le", "lt")), "")
        return f"{sign} {bound}"
    if kind == "too_short":
        return f"at least {ctx.get('min_length')} item(s)"
    if kind == "too_long":
        return f"at most {ctx.get('max_length')} item(s)"
    if kind == "string_pattern_mismatch":
        return f"text matching {ctx.get('pattern')}"
    if kind == "extra_forbidden":
        model = _model_at(path[:-1])
        if model is not None:
            return _listing(list(model.model_fields))
    if kind == "missing":
        model = _model_at(path[:-1])
        if model is not None:
            info = model.model_fields.get(str(path[-1]))
            if info is not None and info.description:
                return info.description.rstrip(".")
    return None


def _translate(exc: ValidationError, document: Any, source_of: Callable[[str], str]) -> errors.ParameterError:
    """One readable ParameterError for a StackSpec ValidationError: the first problem (a literal secret
    first), its file, dotted key, value and what is allowed, plus how many other problems there are."""
    problems = exc.errors(include_url=False)
    problems.sort(key=lambda p: 0 if p["type"] in ("literal_secret", "secret_ref") else 1)
    first = problems[0]
    kind = first["type"]
    path = _clean_loc(first["loc"], document)
    dotted = ".".join(["stack", *(str(p) for p in path)])
    source = source_of(dotted)
    found, value = _lookup(document, path)
    secret = kind in ("literal_secret", "secret_ref") or any(
        isinstance(p, str) and is_secret_key(p) for p in path
    )
    ctx: Mapping[str, Any] = first.get("ctx") or {}
    if kind in ("value_error", "assertion_error"):
        message = str(first["msg"]).removeprefix("Value error, ").removeprefix("Assertion failed, ")
    elif kind in ("literal_secret", "secret_ref"):
        message = str(first["msg"]).split("; allowed:", 1)[0]
    else:
        message = _FRIENDLY.get(kind, str(first["msg"]))
    if kind == "missing":
        missing = [p for p in problems if p["type"] == "missing" and len(_clean_loc(p["loc"], document)) == 1]
        if len(path) == 1 and len(missing) > 1:
            names = ", ".join(str(p["loc"][-1]) for p in missing)
            message = (
                f"the stack is incomplete: {names} are missing (a 'stack:' mapping replaces the "
                "notebook default; give the whole stack, or an earlier -f file with it, "
                "e.g. -f parameters/sandbox.yaml)"
            )
            problems = [p for p in problems if p not in missing] + [first]
        else:
            description = _allowed(kind, ctx, path)
            message += f" ({description})" if description else ""
    show = found and not secret and kind not in ("extra_forbidden", "missing", "invalid_key")
    show = show and not isinstance(value, dict)
    if show and str(value) not in message:
        message += f", got {_show(value)}"
    more = len(problems) - 1
    if more:
        message += f" (and {more} more problem{'s' if more > 1 else ''}: fix this one and run again)"
    suggestion = None
    if kind == "extra_forbidden":
        model = _model_at(path[:-1])
        if model is not None:
            suggestion = _suggest(str(path[-1]), model.model_fields)
    error_type = errors.LiteralSecretError if kind == "literal_secret" else errors.ParameterError
    if kind == "missing":
        allowed = None
    elif secret:
        allowed = stackmod.SECRET_REF_HELP
    else:
        allowed = _allowed(kind, ctx, path)
    return error_type(
        message,
        source=source,
        key=dotted,
        value=None if secret or not found else value,
        allowed=allowed,
        suggestion=suggestion,
    )
