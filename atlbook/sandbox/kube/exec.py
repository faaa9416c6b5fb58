"""``pods/exec`` for the emulated API server: the WebSocket channel protocol and a tiny shell.

No process runs. A command is interpreted against an in-memory filesystem per volume:

- **Where a path lives**: the longest ``volumeMounts[].mountPath`` of the container that prefixes it
  picks a pod volume; a ``persistentVolumeClaim`` volume is the claim (namespace + name + uid: every
  pod mounting one claim sees the same files, ReadWriteMany or not), ``emptyDir`` and any other
  volume type are per pod; a path under no mount is the container's own root (per pod + container).
  A recreated pod (new uid) starts with an empty root and emptyDirs. ``readOnly`` mounts refuse
  writes. :meth:`ExecFiles.reset` forgets everything (the emulator's ``reset()``).
- **What runs** (:func:`run`): ``sh -c "<script>"`` (also ``bash``/``/bin/sh``) with ``;``, ``&&``,
  ``||``, ``> file``, ``>> file`` and ``*``/``?`` globs in the last path segment, and the same
  commands as bare argv: ``echo [-n]``, ``cat``, ``rm [-f] [-r]``, ``ls [-a] [-1]``, ``mkdir [-p]``,
  ``touch``, ``test``/``[`` (``-e -f -d -w -r -s``), ``true``, ``false``, ``exit N``. Anything else
  is ``not found`` (127 in a shell, 126 as bare argv) with a shell-like stderr line.
- **The wire** (:func:`serve`): a WebSocket upgrade (RFC 6455, unmasked server frames) with the
  Kubernetes channel subprotocols ``v5.channel.k8s.io``, ``v4.channel.k8s.io`` and ``channel.k8s.io``
  (the first one the client offers wins, as in kube-apiserver); each binary message starts with its
  channel byte (1 stdout, 2 stderr, 3 error). v4/v5 end with a ``metav1.Status`` on channel 3
  (``Success``, or ``Failure``/``NonZeroExitCode`` with the exit code in ``details.causes``); v1 writes
  the error text only on failure. Then a close frame.

Not modelled: stdin (``stdin=1`` is accepted and ignored), tty and resize, SPDY (refused with 400, so
kubectl uses its WebSocket executor), variables, pipes, here-documents, file permissions, ownership.
"""

from __future__ import annotations

import base64
import fnmatch
import hashlib
import json
import shlex
import socket
import struct
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from . import resources as res
from .errors import BadRequest
from .models import Obj, Store

__all__ = [
    "COMPLETED_POD_MSG",
    "CONTAINER_NOT_FOUND_MSG",
    "CONTAINER_REQUIRED_MSG",
    "CONTAINER_INVALID_MSG",
    "NONZERO_EXIT_MSG",
    "NO_HOST_MSG",
    "PROTOCOLS",
    "PROTOCOL_MSG",
    "UPGRADE_REQUIRED_MSG",
    "ExecFiles",
    "ExecResult",
    "choose_protocol",
    "exec_target",
    "run",
    "serve",
    "status_of",
]

PROTOCOLS = ("v5.channel.k8s.io", "v4.channel.k8s.io", "channel.k8s.io")
"""Subprotocols served, newest first (the client's order decides among them)."""
NO_HOST_MSG = "pod {name} does not have a host assigned"
COMPLETED_POD_MSG = "cannot exec into a container in a completed pod; current phase is {phase}"
CONTAINER_REQUIRED_MSG = "a container name must be specified for pod {name}, choose one of: [{names}]"
CONTAINER_INVALID_MSG = "container {container} is not valid for pod {name}"
CONTAINER_NOT_FOUND_MSG = 'unable to upgrade connection: container not found ("{container}")'
NONZERO_EXIT_MSG = "command terminated with non-zero exit code: exit status {code}"
UPGRADE_REQUIRED_MSG = "Upgrade request required"
PROTOCOL_MSG = "unable to upgrade connection: none of the requested subprotocols is supported: {offered}"
_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
_SHELLS = ("sh", "/bin/sh", "bash", "/bin/bash", "/usr/bin/sh", "/usr/bin/bash")


@dataclass
class ExecResult:
    """What one command printed and its exit code."""

    stdout: str = ""
    stderr: str = ""
    code: int = 0


@dataclass
class _Volume:
    files: dict[str, bytes] = field(default_factory=dict)
    dirs: set[str] = field(default_factory=set)


class ExecFiles:
    """The in-memory filesystems, one per volume key (claim, emptyDir, container root)."""

    def __init__(self) -> None:
        """Start empty."""
        self._volumes: dict[tuple[str, ...], _Volume] = {}
        self.lock = threading.Lock()

    def reset(self) -> None:
        """Forget every file."""
        with self.lock:
            self._volumes.clear()

    def volume(self, key: tuple[str, ...]) -> _Volume:
        """The volume for ``key`` (created empty on first use)."""
        return self._volumes.setdefault(key, _Volume())


def exec_target(store: Store, namespace: str, name: str, container: str | None) -> tuple[Obj, str]:
    """The pod and container an exec reaches, or the 400/404 a real API server answers."""
    rt = res.find("", "v1", "pods")
    assert rt is not None
    pod = store.get(rt, namespace, name)  # 404 NotFound when absent
    spec = pod.get("spec") or {}
    names = [c["name"] for c in spec.get("containers") or []]
    if not container:
        if len(names) != 1:
            raise BadRequest(CONTAINER_REQUIRED_MSG.format(name=name, names=" ".join(names)))
        container = names[0]
    if container not in names:
        raise BadRequest(CONTAINER_INVALID_MSG.format(container=container, name=name))
    if not spec.get("nodeName"):
        raise BadRequest(NO_HOST_MSG.format(name=name))
    phase = (pod.get("status") or {}).get("phase")
    if phase in ("Succeeded", "Failed"):
        raise BadRequest(COMPLETED_POD_MSG.format(phase=phase))
    running = any(
        cs.get("name") == container and "running" in (cs.get("state") or {})
        for cs in (pod.get("status") or {}).get("containerStatuses") or []
    )
    if phase != "Running" or not running:
        raise BadRequest(CONTAINER_NOT_FOUND_MSG.format(container=container))
    return pod, container


# -- paths -------------------------------------------------------------------------------------------
def _norm(path: str, cwd: str = "/") -> str:
    if not path.startswith("/"):
        path = cwd.rstrip("/") + "/" + path
    out: list[str] = []
    for part in path.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if out:
                out.pop()
            continue
        out.append(part)
    return "/" + "/".join(out)


class _Fs:
    """One container's view: absolute paths → (volume, path inside it, read-only)."""

    def __init__(self, files: ExecFiles, store: Store, pod: Obj, container: str) -> None:
        self.files = files
        meta = pod["metadata"]
        ns, uid = meta.get("namespace", ""), meta.get("uid", meta["name"])
        spec = pod.get("spec") or {}
        vols = {v["name"]: v for v in spec.get("volumes") or []}
        ctr = next(c for c in spec.get("containers") or [] if c["name"] == container)
        self.mounts: list[tuple[str, tuple[str, ...], bool]] = []
        for m in ctr.get("volumeMounts") or []:
            vol = vols.get(m.get("name", ""), {})
            claim = (vol.get("persistentVolumeClaim") or {}).get("claimName")
            if claim:
                pvc = store.peek("persistentvolumeclaims", ns, claim)
                claim_uid = (pvc or {}).get("metadata", {}).get("uid", "")
                key: tuple[str, ...] = ("pvc", ns, claim, claim_uid)
            else:
                key = ("pod-volume", ns, uid, m.get("name", ""))
            self.mounts.append((_norm(m.get("mountPath", "/")), key, bool(m.get("readOnly"))))
        self.mounts.sort(key=lambda t: len(t[0]), reverse=True)
        self.root: tuple[str, ...] = ("root", ns, uid, container)

    def locate(self, path: str) -> tuple[_Volume, str, bool]:
        """``(volume, path relative to its root ("" = the root), read-only)``."""
        for mount, key, ro in self.mounts:
            if path == mount or path.startswith(mount.rstrip("/") + "/"):
                rel = path[len(mount) :].strip("/")
                return self.files.volume(key), rel, ro
        return self.files.volume(self.root), path.strip("/"), False

    def is_dir(self, path: str) -> bool:
        vol, rel, _ = self.locate(path)
        if rel == "" or rel in vol.dirs:
            return True
        prefix = rel + "/"
        return any(f.startswith(prefix) for f in vol.files) or any(d.startswith(prefix) for d in vol.dirs)

    def is_file(self, path: str) -> bool:
        vol, rel, _ = self.locate(path)
        return rel in vol.files

    def parent_ok(self, path: str) -> bool:
        """Whether ``path``'s directory exists (any directory of the container root is taken to)."""
        vol, _, _ = self.locate(path)
        return vol is self.files.volume(self.root) or self.is_dir(path.rsplit("/", 1)[0] or "/")

    def listdir(self, path: str) -> list[str]:
        vol, rel, _ = self.locate(path)
        prefix = rel + "/" if rel else ""
        names = {
            p[len(prefix) :].split("/")[0] for p in list(vol.files) + list(vol.dirs) if p.startswith(prefix)
        }
        for mount, _key, _ro in self.mounts:  # mount points show up in their parent directory
            parent, _, base = mount.rpartition("/")
            if (parent or "/") == path and base:
                names.add(base)
        return sorted(n for n in names if n)

    def glob(self, pattern: str) -> list[str]:
        directory, _, base = pattern.rpartition("/")
        directory = directory or "/"
        if not any(ch in base for ch in "*?[") or not self.is_dir(directory):
            return []
        hits = [
            n
            for n in self.listdir(directory)
            if fnmatch.fnmatchcase(n, base) and (base.startswith(".") or not n.startswith("."))
        ]
        return [directory.rstrip("/") + "/" + n for n in hits]


# -- the interpreter ---------------------------------------------------------------------------------
_Builtin = Callable[["_Shell", list[str]], int]


class _Shell:
    def __init__(self, fs: _Fs, shell: bool) -> None:
        self.fs, self.shell = fs, shell
        self.out: list[str] = []
        self.err: list[str] = []
        self.line = 1

    def fail(self, msg: str, code: int = 1) -> int:
        self.err.append(msg + "\n")
        return code

    def write(self, path: str, data: bytes, append: bool) -> bool:
        path = _norm(path)
        name = self._who()
        vol, rel, ro = self.fs.locate(path)
        if ro:
            self.err.append(f"{name}: cannot create {path}: Read-only file system\n")
            return False
        if rel == "" or self.fs.is_dir(path):
            self.err.append(f"{name}: cannot create {path}: Is a directory\n")
            return False
        if not self.fs.parent_ok(path):
            self.err.append(f"{name}: cannot create {path}: Directory nonexistent\n")
            return False
        vol.files[rel] = (vol.files.get(rel, b"") if append else b"") + data
        return True

    def _who(self) -> str:
        return f"sh: {self.line}" if self.shell else "sh"


def _echo(sh: _Shell, args: list[str]) -> int:
    newline = True
    if args[:1] == ["-n"]:
        newline, args = False, args[1:]
    sh.out.append(" ".join(args) + ("\n" if newline else ""))
    return 0


def _cat(sh: _Shell, args: list[str]) -> int:
    code = 0
    for a in args:
        p = _norm(a)
        if sh.fs.is_file(p):
            vol, rel, _ = sh.fs.locate(p)
            sh.out.append(vol.files[rel].decode("utf-8", "replace"))
        elif sh.fs.is_dir(p):
            code = sh.fail(f"cat: {a}: Is a directory")
        else:
            code = sh.fail(f"cat: {a}: No such file or directory")
    return code


def _rm(sh: _Shell, args: list[str]) -> int:
    flags = "".join(a[1:] for a in args if a.startswith("-") and len(a) > 1)
    force, recursive = "f" in flags, "r" in flags or "R" in flags
    code = 0
    for a in (a for a in args if not (a.startswith("-") and len(a) > 1)):
        p = _norm(a)
        vol, rel, ro = sh.fs.locate(p)
        if sh.fs.is_file(p):
            if ro:
                code = sh.fail(f"rm: cannot remove '{a}': Read-only file system")
            else:
                del vol.files[rel]
        elif sh.fs.is_dir(p):
            if not recursive:
                code = sh.fail(f"rm: cannot remove '{a}': Is a directory")
            elif ro or rel == "":
                code = sh.fail(f"rm: cannot remove '{a}': Device or resource busy")
            else:
                for f in [f for f in vol.files if f.startswith(rel + "/")]:
                    del vol.files[f]
                vol.dirs -= {d for d in vol.dirs if d == rel or d.startswith(rel + "/")}
        elif not force:
            code = sh.fail(f"rm: cannot remove '{a}': No such file or directory")
    return code


def _ls(sh: _Shell, args: list[str]) -> int:
    flags = "".join(a[1:] for a in args if a.startswith("-") and len(a) > 1)
    paths = [a for a in args if not (a.startswith("-") and len(a) > 1)] or ["."]
    code = 0
    for a in paths:
        p = _norm(a)
        if sh.fs.is_file(p):
            sh.out.append(a + "\n")
        elif sh.fs.is_dir(p):
            names = sh.fs.listdir(p)
            if "a" not in flags and "A" not in flags:
                names = [n for n in names if not n.startswith(".")]
            sh.out.append("".join(n + "\n" for n in names))
        else:
            code = sh.fail(f"ls: cannot access '{a}': No such file or directory", 2)
    return code


def _mkdir(sh: _Shell, args: list[str]) -> int:
    parents = "-p" in args
    code = 0
    for a in (a for a in args if a != "-p"):
        p = _norm(a)
        vol, rel, ro = sh.fs.locate(p)
        if sh.fs.is_dir(p) or sh.fs.is_file(p):
            if not parents:
                code = sh.fail(f"mkdir: cannot create directory '{a}': File exists")
        elif ro:
            code = sh.fail(f"mkdir: cannot create directory '{a}': Read-only file system")
        elif not parents and not sh.fs.parent_ok(p):
            code = sh.fail(f"mkdir: cannot create directory '{a}': No such file or directory")
        else:
            vol.dirs.add(rel)
    return code


def _touch(sh: _Shell, args: list[str]) -> int:
    code = 0
    for a in args:
        p = _norm(a)
        if sh.fs.is_file(p) or sh.fs.is_dir(p):
            continue
        if not sh.write(p, b"", append=True):
            code = 1
    return code


def _test(sh: _Shell, args: list[str]) -> int:
    if args[-1:] == ["]"]:
        args = args[:-1]
    if len(args) == 1:
        return 0 if args[0] else 1
    if len(args) != 2:
        return sh.fail("sh: test: unsupported expression", 2)
    op, a = args
    p = _norm(a)
    vol, rel, ro = sh.fs.locate(p)
    exists = sh.fs.is_file(p) or sh.fs.is_dir(p)
    checks = {
        "-e": exists,
        "-f": sh.fs.is_file(p),
        "-d": sh.fs.is_dir(p),
        "-r": exists,
        "-w": exists and not ro,
        "-s": sh.fs.is_file(p) and bool(vol.files.get(rel)),
        "-n": bool(a),
        "-z": not a,
    }
    if op not in checks:
        return sh.fail(f"sh: test: {op}: unexpected operator", 2)
    return 0 if checks[op] else 1


_BUILTINS: dict[str, _Builtin] = {
    "echo": _echo,
    "cat": _cat,
    "rm": _rm,
    "ls": _ls,
    "mkdir": _mkdir,
    "touch": _touch,
    "test": _test,
    "[": _test,
    "true": lambda sh, a: 0,
    "false": lambda sh, a: 1,
}


def _simple(sh: _Shell, words: list[str]) -> int:
    """Run one simple command (redirections and globs already in ``words`` as shell tokens)."""
    argv: list[str] = []
    redirect: tuple[str, bool] | None = None
    i = 0
    while i < len(words):
        w = words[i]
        if w in (">", ">>"):
            if i + 1 >= len(words):
                return sh.fail(f"sh: {sh.line}: Syntax error: newline unexpected", 2)
            redirect, i = (words[i + 1], w == ">>"), i + 2
            continue
        matches = sh.fs.glob(_norm(w)) if sh.shell and any(c in w for c in "*?[") else []
        argv.extend(matches or [w])
        i += 1
    if not argv:
        return 0
    prog = argv[0].rsplit("/", 1)[-1]
    if prog == "exit" and sh.shell:
        raise _Exit(int(argv[1]) if len(argv) > 1 and argv[1].isdigit() else 0)
    fn = _BUILTINS.get(prog)
    if fn is None:
        if sh.shell:
            return sh.fail(f"sh: {sh.line}: {argv[0]}: not found", 127)
        return sh.fail(
            f'OCI runtime exec failed: exec failed: unable to start container process: exec: "{argv[0]}": '
            "executable file not found in $PATH: unknown",
            126,
        )
    if redirect is None:
        return fn(sh, argv[1:])
    mark = len(sh.out)
    code = fn(sh, argv[1:])
    data = "".join(sh.out[mark:]).encode()
    del sh.out[mark:]
    if redirect[0] == "/dev/null":
        return code
    return code if sh.write(redirect[0], data, redirect[1]) else 2


class _Exit(Exception):
    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


def _script(sh: _Shell, script: str) -> int:
    lexer = shlex.shlex(script, posix=True, punctuation_chars=";&|<>")
    lexer.whitespace_split = True
    try:
        tokens = list(lexer)
    except ValueError as e:
        return sh.fail(f"sh: {sh.line}: Syntax error: {e}", 2)
    code, op = 0, ";"
    words: list[str] = []
    for tok in [*tokens, ";"]:
        if tok in (";", "&&", "||", ";;", "\n"):
            if words and (op == ";" or (op == "&&" and code == 0) or (op == "||" and code != 0)):
                code = _simple(sh, words)
            words, op = [], (";" if tok == ";;" else tok)
        elif tok in ("|", "&", "<", "<<", ">&", "&>", "|&"):
            return sh.fail(f"sh: {sh.line}: unsupported in the sandbox: {tok}", 2)
        else:
            words.append(tok)
    return code


def run(files: ExecFiles, store: Store, pod: Obj, container: str, command: list[str]) -> ExecResult:
    """Interpret ``command`` in ``container`` of ``pod`` against the in-memory volumes."""
    fs = _Fs(files, store, pod, container)
    with files.lock:
        if command[:1] and command[0] in _SHELLS:
            sh = _Shell(fs, shell=True)
            args = command[1:]
            if args[:1] != ["-c"] or len(args) < 2:
                return ExecResult("", "sh: the sandbox runs only 'sh -c <script>'\n", 2)
            try:
                code = _script(sh, args[1])
            except _Exit as e:
                code = e.code
        else:
            sh = _Shell(fs, shell=False)
            code = _simple(sh, list(command)) if command else sh.fail("no command given", 126)
    return ExecResult("".join(sh.out), "".join(sh.err), code)


# -- the wire ----------------------------------------------------------------------------------------
def choose_protocol(offered: str | None) -> str | None:
    """The first subprotocol in the client's ``Sec-WebSocket-Protocol`` list that we serve."""
    for p in (offered or "").split(","):
        if p.strip() in PROTOCOLS:
            return p.strip()
    return None


def status_of(code: int) -> dict[str, Any]:
    """The ``metav1.Status`` a v4/v5 exec stream ends with on channel 3."""
    if code == 0:
        return {"metadata": {}, "status": "Success"}
    return {
        "metadata": {},
        "status": "Failure",
        "message": NONZERO_EXIT_MSG.format(code=code),
        "reason": "NonZeroExitCode",
        "details": {"causes": [{"reason": "ExitCode", "message": str(code)}]},
    }


def _frame(opcode: int, payload: bytes) -> bytes:
    n = len(payload)
    head = bytes([0x80 | opcode])
    if n < 126:
        head += bytes([n])
    elif n < 1 << 16:
        head += bytes([126]) + struct.pack(">H", n)
    else:
        head += bytes([127]) + struct.pack(">Q", n)
    return head + payload


def _drain(conn: socket.socket, rfile: Any, seconds: float) -> None:
    """Read client frames until its close frame (or EOF, or ``seconds`` of silence)."""
    conn.settimeout(seconds)
    try:
        while True:
            head = rfile.read(2)
            if len(head) < 2:
                return
            opcode, n = head[0] & 0x0F, head[1] & 0x7F
            if n == 126:
                n = struct.unpack(">H", rfile.read(2))[0]
            elif n == 127:
                n = struct.unpack(">Q", rfile.read(8))[0]
            if head[1] & 0x80:
                rfile.read(4)
            rfile.read(n)
            if opcode == 0x8:
                return
    except (TimeoutError, OSError):
        return


def serve(handler: Any, protocol: str, result: ExecResult) -> None:
    """Answer the upgrade on ``handler`` (a ``BaseHTTPRequestHandler``) and stream ``result``."""
    key = handler.headers.get("Sec-WebSocket-Key", "")
    accept = base64.b64encode(hashlib.sha1((key + _GUID).encode()).digest()).decode()
    handler.send_response(101, "Switching Protocols")
    handler.send_header("Upgrade", "websocket")
    handler.send_header("Connection", "Upgrade")
    handler.send_header("Sec-WebSocket-Accept", accept)
    handler.send_header("Sec-WebSocket-Protocol", protocol)
    handler.end_headers()
    frames = b""
    if result.stdout:
        frames += _frame(0x2, b"\x01" + result.stdout.encode())
    if result.stderr:
        frames += _frame(0x2, b"\x02" + result.stderr.encode())
    if protocol == "channel.k8s.io":
        if result.code:
            frames += _frame(
                0x2, b"\x03" + f"command terminated with non-zero exit code: {result.code}".encode()
            )
    else:
        frames += _frame(0x2, b"\x03" + json.dumps(status_of(result.code), separators=(",", ":")).encode())
    frames += _frame(0x8, struct.pack(">H", 1000))
    handler.wfile.write(frames)
    handler.wfile.flush()
    _drain(handler.connection, handler.rfile, 5.0)
    handler.close_connection = True
