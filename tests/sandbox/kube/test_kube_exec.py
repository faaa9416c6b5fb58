"""``pods/exec`` on the emulator: the WebSocket channel protocol, the tiny shell, per-volume files.

Aspects covered, through the official client's stream API and through kubectl:
- echo > file / cat / rm round trip in one pod (``sh -c`` and bare argv), globs, ``&&``/``;``;
- two pods mounting one ReadWriteMany claim see each other's files; two pods with their own
  ReadWriteOnce claims (and their own container roots) do not; a read-only mount refuses writes;
- a non-zero exit code surfaces as the client reports it (``returncode`` from the channel-3 Status;
  kubectl's ``command terminated with exit code N`` and its exit status); an unknown command is 127;
- a ServiceAccount without the rule is refused with the real Forbidden Status (``get`` from the
  request, then ``create`` as kube-apiserver 1.35+ checks a websocket upgrade); with ``get`` and
  ``create`` on ``pods/exec`` it runs;
- a pod that is not running (unscheduled) is refused with 400; discovery lists ``pods/exec``;
  ``reset()`` forgets the files.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from kubernetes.stream import stream

from atlbook.sandbox.kube import KubeEmulator
from atlbook.sandbox.kube import exec as pod_exec

NS = "default"


def _claim(core: client.CoreV1Api, name: str, mode: str) -> None:
    core.create_namespaced_persistent_volume_claim(
        NS,
        {
            "metadata": {"name": name},
            "spec": {
                "accessModes": [mode],
                "storageClassName": "gp2",
                "resources": {"requests": {"storage": "1Gi"}},
            },
        },
    )


def _pod(core: client.CoreV1Api, name: str, claim: str | None, *, node: str | None = None) -> None:
    mounts = [
        {"name": "home", "mountPath": "/var/home"},
        {"name": "ro", "mountPath": "/etc/ro", "readOnly": True},
    ]
    volumes: list[dict[str, Any]] = [{"name": "ro", "emptyDir": {}}]
    volumes.append(
        {"name": "home", "persistentVolumeClaim": {"claimName": claim}}
        if claim
        else {"name": "home", "emptyDir": {}}
    )
    spec: dict[str, Any] = {
        "containers": [{"name": "app", "image": "busybox", "volumeMounts": mounts}],
        "volumes": volumes,
    }
    if node is not None:
        spec["nodeSelector"] = {"kubernetes.io/hostname": node}
    core.create_namespaced_pod(NS, {"metadata": {"name": name}, "spec": spec})


@pytest.fixture
def running(core: client.CoreV1Api, nodes: Any, wait: Any) -> Callable[..., None]:
    """``running(name, claim=None)``: a pod (claim or emptyDir at /var/home), waited Running."""
    nodes(3)

    def make(name: str, claim: str | None = None) -> None:
        _pod(core, name, claim)
        wait(lambda: core.read_namespaced_pod(name, NS).status.phase == "Running", f"{name} running")

    return make


def sh(core: client.CoreV1Api, pod: str, script: str) -> str:
    """Run ``sh -c script`` through the official stream API; stdout and stderr together."""
    out: str = stream(
        core.connect_get_namespaced_pod_exec,
        pod,
        NS,
        command=["sh", "-c", script],
        stderr=True,
        stdin=False,
        stdout=True,
        tty=False,
    )
    return out


def exit_code(core: client.CoreV1Api, pod: str, command: list[str]) -> tuple[int, str, str]:
    """``(returncode, stdout, stderr)`` as the client reports them (``_preload_content=False``)."""
    ws = stream(
        core.connect_get_namespaced_pod_exec,
        pod,
        NS,
        command=command,
        stderr=True,
        stdin=False,
        stdout=True,
        tty=False,
        _preload_content=False,
    )
    ws.run_forever(timeout=30)
    return int(ws.returncode), ws.read_stdout(), ws.read_stderr()


def _kubectl(kubectl: str, kubeconfig: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [kubectl, "--kubeconfig", str(kubeconfig), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_echo_cat_rm_round_trip(core: client.CoreV1Api, running: Any, kube: KubeEmulator) -> None:
    running("one")
    assert sh(core, "one", "echo hello world > /var/home/a && cat /var/home/a") == "hello world\n"
    assert sh(core, "one", "echo more >> /var/home/a; cat /var/home/a") == "hello world\nmore\n"
    assert sh(core, "one", "echo x > /tmp/b; ls /tmp; cat /var/home/*") == "b\nhello world\nmore\n"
    assert exit_code(core, "one", ["test", "-w", "/var/home/a"])[0] == 0
    assert exit_code(core, "one", ["rm", "-f", "/var/home/a"]) == (0, "", "")
    code, out, err = exit_code(core, "one", ["cat", "/var/home/a"])
    assert (code, out, err) == (1, "", "cat: /var/home/a: No such file or directory\n")
    assert exit_code(core, "one", ["rm", "-f", "/var/home/a"])[0] == 0  # -f: gone is fine
    assert exit_code(core, "one", ["sh", "-c", "cat /var/home/.m-* || echo none"]) == (
        0,
        "none\n",
        "cat: /var/home/.m-*: No such file or directory\n",
    )
    code, _, err = exit_code(core, "one", ["sh", "-c", "echo no > /etc/ro/x"])
    assert code == 2 and "Read-only file system" in err
    assert exit_code(core, "one", ["test", "-w", "/etc/ro"])[0] == 1
    code, _, err = exit_code(core, "one", ["sh", "-c", "echo x > /var/home/d/f"])
    assert (code, err) == (2, "sh: 1: cannot create /var/home/d/f: Directory nonexistent\n")
    assert sh(core, "one", "mkdir -p /var/home/d && echo x > /var/home/d/f && ls /var/home/d") == "f\n"
    kube.reset()
    assert not kube.exec_files._volumes


def test_rwx_claim_is_shared_and_rwo_claims_are_not(core: client.CoreV1Api, running: Any) -> None:
    _claim(core, "shared", "ReadWriteMany")
    _claim(core, "own-a", "ReadWriteOnce")
    _claim(core, "own-b", "ReadWriteOnce")
    running("s-0", "shared")
    running("s-1", "shared")
    running("r-0", "own-a")
    running("r-1", "own-b")
    for pod in ("s-0", "s-1", "r-0", "r-1"):
        sh(core, pod, f"echo {pod} > /var/home/.m-{pod} && echo {pod} > /root-{pod}")
    assert sh(core, "s-1", "cat /var/home/.m-*") == "s-0\ns-1\n"
    assert sh(core, "s-0", "ls -a /var/home") == ".m-s-0\n.m-s-1\n"
    assert sh(core, "r-0", "cat /var/home/.m-*") == "r-0\n"
    assert sh(core, "r-1", "cat /var/home/.m-*") == "r-1\n"
    assert exit_code(core, "s-1", ["cat", "/root-s-0"])[0] == 1  # container roots are per pod
    sh(core, "s-0", "rm -f /var/home/.m-s-0")
    assert sh(core, "s-1", "cat /var/home/.m-*") == "s-1\n"


def test_exit_codes_and_unknown_commands(core: client.CoreV1Api, running: Any) -> None:
    running("one")
    assert exit_code(core, "one", ["sh", "-c", "true && exit 7"])[0] == 7
    assert exit_code(core, "one", ["false"])[0] == 1
    assert exit_code(core, "one", ["sh", "-c", "false; true"])[0] == 0
    code, _, err = exit_code(core, "one", ["sh", "-c", "curl http://x"])
    assert (code, err) == (127, "sh: 1: curl: not found\n")
    code, _, err = exit_code(core, "one", ["curl"])
    assert code == 126 and 'exec: "curl": executable file not found in $PATH' in err


def test_kubectl_exec(core: client.CoreV1Api, running: Any, kubectl: str, kubeconfig: Path) -> None:
    _claim(core, "shared", "ReadWriteMany")
    running("s-0", "shared")
    running("s-1", "shared")
    r = _kubectl(kubectl, kubeconfig, "exec", "s-0", "--", "sh", "-c", "echo from-s-0 > /var/home/m")
    assert (r.returncode, r.stdout, r.stderr) == (0, "", "")
    r = _kubectl(kubectl, kubeconfig, "exec", "s-1", "-c", "app", "--", "cat", "/var/home/m")
    assert (r.returncode, r.stdout) == (0, "from-s-0\n"), r.stderr
    r = _kubectl(kubectl, kubeconfig, "exec", "s-1", "--", "rm", "/var/home/m")
    assert r.returncode == 0, r.stderr
    r = _kubectl(kubectl, kubeconfig, "exec", "s-0", "--", "cat", "/var/home/m")
    assert r.returncode == 1
    assert r.stderr == "cat: /var/home/m: No such file or directory\ncommand terminated with exit code 1\n"
    r = _kubectl(kubectl, kubeconfig, "exec", "s-0", "--", "sh", "-c", "exit 3")
    assert (r.returncode, r.stderr) == (3, "command terminated with exit code 3\n")


def test_not_running_pod_is_refused(
    core: client.CoreV1Api, kube: KubeEmulator, kubectl: str, kubeconfig: Path
) -> None:
    _pod(core, "pending", None)  # no nodes: never scheduled
    with pytest.raises(ApiException) as e:
        sh(core, "pending", "true")
    assert "Handshake status 400" in str(e.value.reason)
    assert pod_exec.NO_HOST_MSG.format(name="pending") in str(e.value.reason)
    r = _kubectl(kubectl, kubeconfig, "exec", "pending", "--", "true")
    assert r.returncode == 1 and pod_exec.NO_HOST_MSG.format(name="pending") in r.stderr
    with pytest.raises(ApiException) as e:
        sh(core, "missing", "true")
    assert "Handshake status 404" in str(e.value.reason)


def test_discovery_lists_pods_exec(core: client.CoreV1Api) -> None:
    found = {r.name: r.verbs for r in core.get_api_resources().resources}
    assert found["pods/exec"] == ["create", "get"]


# -- RBAC ----------------------------------------------------------------------------------------------
@pytest.fixture
def sa_core(kube: KubeEmulator, api: client.ApiClient) -> Iterator[Callable[[list[str]], client.CoreV1Api]]:
    """``sa_core(verbs)``: a CoreV1Api for ServiceAccount ``runner`` bound to ``verbs`` on pods/exec."""
    made: list[client.ApiClient] = []
    core = client.CoreV1Api(api)
    rbac = client.RbacAuthorizationV1Api(api)
    core.create_namespaced_service_account(NS, {"metadata": {"name": "runner"}})
    token = core.create_namespaced_service_account_token("runner", NS, {"spec": {}}).status.token

    def make(verbs: list[str]) -> client.CoreV1Api:
        rules = [{"apiGroups": [""], "resources": ["pods/exec"], "verbs": verbs}] if verbs else []
        rbac.create_namespaced_role(NS, {"metadata": {"name": "exec"}, "rules": rules})
        rbac.create_namespaced_role_binding(
            NS,
            {
                "metadata": {"name": "exec"},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "exec"},
                "subjects": [{"kind": "ServiceAccount", "name": "runner", "namespace": NS}],
            },
        )
        cfg = client.Configuration()
        cfg.host = kube.url
        cfg.api_key = {"authorization": token}
        cfg.api_key_prefix = {"authorization": "Bearer"}
        c = client.ApiClient(cfg)
        made.append(c)
        return client.CoreV1Api(c)

    yield make
    for c in made:
        c.close()


def _refusal(e: pytest.ExceptionInfo[ApiException]) -> dict[str, Any]:
    reason = str(e.value.reason)
    assert "Handshake status 403" in reason, reason
    text = reason.split(" -+-+- ")[2]  # websocket-client folds status, headers and body together
    body: dict[str, Any] = json.loads(text[text.index("{") : text.rindex("}") + 1])
    return body


@pytest.mark.parametrize(
    "verbs, refused_verb",
    [([], "get"), (["get"], "create"), (["create"], "get")],
    ids=["no-rule", "get-only", "create-only"],
)
def test_forbidden_without_the_rule(running: Any, sa_core: Any, verbs: list[str], refused_verb: str) -> None:
    running("one")
    with pytest.raises(ApiException) as e:
        sh(sa_core(verbs), "one", "true")
    body = _refusal(e)
    user = f"system:serviceaccount:{NS}:runner"
    assert body["kind"] == "Status" and body["code"] == 403 and body["reason"] == "Forbidden"
    assert body["message"] == (
        f'pods "one" is forbidden: User "{user}" cannot {refused_verb} resource "pods/exec" '
        f'in API group "" in the namespace "{NS}"'
    )


def test_allowed_with_get_and_create(running: Any, sa_core: Any) -> None:
    running("one")
    assert sh(sa_core(["create", "get"]), "one", "echo ok") == "ok\n"
