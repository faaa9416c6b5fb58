"""Targets: how to reach a stack, resolved and checked without any API call.

A *target* names a kubeconfig + context, an AWS profile + region (+ optional endpoint URL) and an
optional database tunnel. ``"sandbox"`` stands for what ``atlbook sandbox up`` wrote to
``<sandbox dir>/target.yaml``; anything else is a ``TargetSpec``-like object (attributes) or a mapping
with the same keys. Runbook code never asks which kind it has: :func:`resolve_target` turns either into
one :class:`ResolvedTarget`.

:func:`check_target` is the preflight the runner calls before a kernel starts: it reads files only
(kubeconfig YAML, the AWS config/credentials files through botocore's profile list, the sandbox's
``target.yaml`` and pid) and raises :class:`~atlbook.errors.TargetError` saying how to fix it. It never
contacts an API.

Refuses: unknown target shapes, a sandbox that is not up (no sandbox dir, no ``target.yaml``, or a pid
that is not running), a missing kubeconfig file, a context not in it, an AWS profile that does not exist.
"""

from __future__ import annotations

import dataclasses
import json
import os
import pathlib
import string
from collections.abc import Mapping
from typing import Any

import yaml

from atlbook import errors

__all__ = [
    "PRODUCT_URL_FIELDS",
    "SANDBOX",
    "SANDBOX_NOT_UP",
    "ResolvedTarget",
    "check_target",
    "find_sandbox_dir",
    "resolve_target",
]

SANDBOX = "sandbox"
#: Message template (tests import it) for every "the sandbox is not running" case.
SANDBOX_NOT_UP = "the sandbox is not up ({why}); run `atlbook sandbox up` first"

_SANDBOX_ENV = "ATLBOOK_SANDBOX_DIR"
_SANDBOX_REL = pathlib.Path(".atlbook") / "sandbox"
_PID_FILES = ("pid", "sandbox.pid")
_FIELDS = (
    "kubeconfig",
    "context",
    "aws_profile",
    "aws_region",
    "aws_endpoint_url",
    "aws_access_key_id",
    "aws_secret_access_key",
    "database_tunnel",
    "product_url",
)
#: Placeholders a ``product_url`` template may use.
PRODUCT_URL_FIELDS = ("host", "namespace", "service", "context_path")


@dataclasses.dataclass(frozen=True)
class ResolvedTarget:
    """A target with every field known; what :func:`atlbook.clients.connect` builds clients from."""

    name: str
    """``"sandbox"`` or ``"custom"`` — for messages and records only; code must not branch on it."""
    kubeconfig: pathlib.Path | None = None
    """Absolute kubeconfig path; ``None`` when the cluster is reached through EKS (``k8s_from_eks``)."""
    context: str | None = None
    """kubeconfig context; ``None`` means the file's current-context."""
    aws_profile: str | None = None
    """Named AWS profile (``~/.aws/config``); ``None`` uses the default credential chain or the keys below."""
    aws_region: str | None = None
    aws_endpoint_url: str | None = None
    """Endpoint override for every AWS service (moto in the sandbox); else ``AWS_ENDPOINT_URL`` if set."""
    aws_access_key_id: str | None = dataclasses.field(default=None, repr=False)
    """Dummy sandbox credentials only; a real target uses a profile."""
    aws_secret_access_key: str | None = dataclasses.field(default=None, repr=False)
    database_tunnel: tuple[str, int] | None = None
    """``(host, port)`` of a local tunnel to PostgreSQL (the sandbox's PostgreSQL, or an SSM/SSH tunnel)."""
    sandbox_dir: pathlib.Path | None = None
    """The sandbox directory when ``name == "sandbox"``."""
    product_url: str | None = None
    """Template of a product's base URL through the ingress (placeholders :data:`PRODUCT_URL_FIELDS`);
    ``None`` = ``https://{host}{context_path}`` from the stack description. The sandbox's ingress
    routes ``/<namespace>/<service>``; a real target sets it when the public host is not reachable from
    where atlbook runs (e.g. a tunnel to the load balancer)."""
    pid: int | None = None
    """PID of the sandbox process if it wrote one — ``pid`` in target.yaml or state.json, or a ``pid``
    file (checked by :func:`check_target`)."""

    def to_dict(self) -> dict[str, Any]:
        """A record-safe description (no credentials)."""
        return {
            "name": self.name,
            "kubeconfig": str(self.kubeconfig) if self.kubeconfig else None,
            "context": self.context,
            "aws_profile": self.aws_profile,
            "aws_region": self.aws_region,
            "aws_endpoint_url": self.aws_endpoint_url,
            "product_url": self.product_url,
            "database_tunnel": (
                {"host": self.database_tunnel[0], "port": self.database_tunnel[1]}
                if self.database_tunnel
                else None
            ),
        }


def find_sandbox_dir(
    start: pathlib.Path | None = None, environ: Mapping[str, str] | None = None
) -> pathlib.Path:
    """The sandbox dir: ``$ATLBOOK_SANDBOX_DIR``, else the first ``.atlbook/sandbox/`` above ``start``.

    Raises :class:`TargetError` when neither exists.
    """
    env = os.environ if environ is None else environ
    explicit = env.get(_SANDBOX_ENV)
    if explicit:
        path = pathlib.Path(explicit).expanduser().resolve()
        if not path.is_dir():
            raise errors.TargetError(
                SANDBOX_NOT_UP.format(why=f"${_SANDBOX_ENV}={explicit} is not a directory")
            )
        return path
    here = (start or pathlib.Path.cwd()).resolve()
    for folder in (here, *here.parents):
        candidate = folder / _SANDBOX_REL
        if candidate.is_dir():
            return candidate
    raise errors.TargetError(
        SANDBOX_NOT_UP.format(why=f"no {_SANDBOX_REL}/ in {here} or above, and ${_SANDBOX_ENV} is unset")
    )


def _get(target: Any, key: str) -> Any:
    if isinstance(target, Mapping):
        return target.get(key)
    return getattr(target, key, None)


def _tunnel(value: Any) -> tuple[str, int] | None:
    if value is None:
        return None
    host = _get(value, "host")
    port = _get(value, "port")
    if isinstance(value, (tuple, list)) and len(value) == 2:
        host, port = value
    if not host or port is None:
        raise errors.TargetError(f"database_tunnel needs host and port, got {value!r}")
    try:
        return str(host), int(port)
    except (TypeError, ValueError) as e:
        raise errors.TargetError(f"database_tunnel port must be a number, got {port!r}") from e


def _opt_str(value: Any) -> str | None:
    return None if value is None or value == "" else str(value)


def _product_url(value: Any) -> str | None:
    template = _opt_str(value)
    if template is None:
        return None
    try:
        names = {field for _, field, _, _ in string.Formatter().parse(template) if field is not None}
    except ValueError as e:
        raise errors.TargetError(f"product_url {template!r} is not a valid template: {e}") from None
    unknown = sorted(names - set(PRODUCT_URL_FIELDS))
    if unknown:
        raise errors.TargetError(
            f"product_url {template!r} uses unknown placeholder(s) {', '.join(unknown)}; "
            f"use {', '.join('{' + f + '}' for f in PRODUCT_URL_FIELDS)}"
        )
    if not template.startswith(("http://", "https://")):
        raise errors.TargetError(f"product_url {template!r} must start with http:// or https://")
    return template


def _from_fields(name: str, raw: Any, base: pathlib.Path | None, **extra: Any) -> ResolvedTarget:
    kubeconfig = _opt_str(_get(raw, "kubeconfig"))
    kube_path: pathlib.Path | None = None
    if kubeconfig:
        kube_path = pathlib.Path(kubeconfig).expanduser()
        if not kube_path.is_absolute() and base is not None:
            kube_path = base / kube_path
        kube_path = kube_path.absolute()
    return ResolvedTarget(
        name=name,
        kubeconfig=kube_path,
        context=_opt_str(_get(raw, "context")),
        aws_profile=_opt_str(_get(raw, "aws_profile")),
        aws_region=_opt_str(_get(raw, "aws_region")),
        aws_endpoint_url=_opt_str(_get(raw, "aws_endpoint_url")),
        aws_access_key_id=_opt_str(_get(raw, "aws_access_key_id")),
        aws_secret_access_key=_opt_str(_get(raw, "aws_secret_access_key")),
        database_tunnel=_tunnel(_get(raw, "database_tunnel")),
        product_url=_product_url(_get(raw, "product_url")),
        **extra,
    )


def _read_pid(sandbox_dir: pathlib.Path, doc: Mapping[str, Any]) -> int | None:
    raw = doc.get("pid")
    state_file = sandbox_dir / "state.json"
    if raw is None and state_file.is_file():
        try:
            state = json.loads(state_file.read_text())
        except (OSError, ValueError):
            state = {}
        if isinstance(state, Mapping):
            if state.get("running") is False:
                raise errors.TargetError(SANDBOX_NOT_UP.format(why=f"{state_file} says it was stopped"))
            raw = state.get("pid")
    if raw is None:
        for fname in _PID_FILES:
            path = sandbox_dir / fname
            if path.is_file():
                raw = path.read_text().strip()
                break
    if raw is None or raw == "":
        return None
    try:
        return int(raw)
    except (TypeError, ValueError):
        raise errors.TargetError(
            SANDBOX_NOT_UP.format(why=f"unreadable pid {raw!r} in {sandbox_dir}")
        ) from None


def _resolve_sandbox(start: pathlib.Path | None, environ: Mapping[str, str] | None) -> ResolvedTarget:
    sandbox_dir = find_sandbox_dir(start, environ)
    path = sandbox_dir / "target.yaml"
    if not path.is_file():
        raise errors.TargetError(SANDBOX_NOT_UP.format(why=f"{path} does not exist"))
    try:
        doc = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as e:
        raise errors.TargetError(
            SANDBOX_NOT_UP.format(why=f"{path} is unreadable: {type(e).__name__}")
        ) from e
    if not isinstance(doc, Mapping):
        raise errors.TargetError(SANDBOX_NOT_UP.format(why=f"{path} is not a mapping"))
    return _from_fields(SANDBOX, doc, sandbox_dir, sandbox_dir=sandbox_dir, pid=_read_pid(sandbox_dir, doc))


def resolve_target(
    target: Any,
    *,
    start: pathlib.Path | None = None,
    environ: Mapping[str, str] | None = None,
) -> ResolvedTarget:
    """Turn ``target`` into a :class:`ResolvedTarget`, reading files only.

    ``target`` is ``"sandbox"``; a :class:`ResolvedTarget`; a ``TargetSpec``-like object or mapping with the
    keys kubeconfig, context, aws_profile, aws_region, aws_endpoint_url, database_tunnel{host, port}; or
    a stack spec/mapping whose ``target`` is one of those. ``start``/``environ`` override the cwd and
    environment used to find the sandbox (tests).

    Refuses (``TargetError``): other strings, a sandbox that has not written ``target.yaml``.
    """
    if isinstance(target, ResolvedTarget):
        return target
    if isinstance(target, str):
        if target == SANDBOX:
            return _resolve_sandbox(start, environ)
        raise errors.TargetError(
            f"unknown target {target!r}: use 'sandbox' or a mapping with "
            "kubeconfig/context/aws_profile/aws_region"
        )
    if target is None:
        raise errors.TargetError(
            "no target given: use 'sandbox' or a mapping with kubeconfig/context/aws_profile"
        )
    if not any(_get(target, key) is not None for key in _FIELDS):
        inner = _get(target, "target")
        if inner is not None:
            return resolve_target(inner, start=start, environ=environ)
        raise errors.TargetError(
            f"target of type {type(target).__name__} has none of {', '.join(_FIELDS[:6])}"
        )
    return _from_fields("custom", target, None)


def _pid_running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _kube_contexts(path: pathlib.Path) -> tuple[list[str], str | None]:
    try:
        doc = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as e:
        raise errors.TargetError(
            f"kubeconfig {path} is unreadable ({type(e).__name__}); check the file"
        ) from e
    if not isinstance(doc, Mapping):
        raise errors.TargetError(f"kubeconfig {path} is not a kubeconfig mapping")
    names = [str(c.get("name")) for c in doc.get("contexts") or [] if isinstance(c, Mapping)]
    current = doc.get("current-context")
    return names, str(current) if current else None


def _aws_profiles() -> list[str]:
    import botocore.session

    return list(botocore.session.Session().available_profiles)


def check_target(
    target: Any,
    *,
    start: pathlib.Path | None = None,
    environ: Mapping[str, str] | None = None,
) -> ResolvedTarget:
    """Resolve ``target`` and verify it can be used — files only, no API call. Returns the resolved target.

    Checks: the sandbox is up (its ``target.yaml`` exists, its pid, if recorded, is running); the
    kubeconfig exists and has the context (or a current-context when none is named); the AWS profile,
    when named, is one botocore knows. Raises :class:`TargetError` naming what is wrong and how to fix it.
    """
    resolved = resolve_target(target, start=start, environ=environ)
    if resolved.pid is not None and not _pid_running(resolved.pid):
        raise errors.TargetError(
            SANDBOX_NOT_UP.format(
                why=f"stale pid {resolved.pid} in {resolved.sandbox_dir}: the process is gone"
            )
        )
    hint = "run `atlbook sandbox up`" if resolved.name == SANDBOX else "fix `kubeconfig` in the target"
    if resolved.kubeconfig is not None:
        if not resolved.kubeconfig.is_file():
            raise errors.TargetError(f"kubeconfig {resolved.kubeconfig} does not exist; {hint}")
        contexts, current = _kube_contexts(resolved.kubeconfig)
        if resolved.context is not None and resolved.context not in contexts:
            known = ", ".join(sorted(contexts)) or "none"
            raise errors.TargetError(
                f"context {resolved.context!r} is not in kubeconfig {resolved.kubeconfig} (it has: {known}); "
                "fix `context` in the target or run `aws eks update-kubeconfig`"
            )
        if resolved.context is None and current is None:
            raise errors.TargetError(
                f"kubeconfig {resolved.kubeconfig} has no current-context and the target names none; "
                "set `context`"
            )
    elif resolved.name == SANDBOX:
        raise errors.TargetError(SANDBOX_NOT_UP.format(why="its target.yaml names no kubeconfig"))
    if resolved.aws_profile is not None:
        profiles = _aws_profiles()
        if resolved.aws_profile not in profiles:
            known = ", ".join(sorted(profiles)) or "none"
            raise errors.TargetError(
                f"AWS profile {resolved.aws_profile!r} does not exist (known profiles: {known}); "
                "add it with `aws configure --profile NAME` or fix `aws_profile` in the target"
            )
    return resolved
