"""kubectl against the emulator with its kubeconfig: get nodes, get pods -A -o wide, describe pod, logs,
apply -f (create then configure), server-side apply, delete. Skipped when no kubectl is on PATH."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

from kubernetes import client

NS = "default"


def _run(
    kubectl: str, kubeconfig: Path, *args: str, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [kubectl, "--kubeconfig", str(kubeconfig), *args],
        capture_output=True,
        text=True,
        input=stdin,
        timeout=60,
        check=False,
    )


def _ok(kubectl: str, kubeconfig: Path, *args: str, stdin: str | None = None) -> str:
    r = _run(kubectl, kubeconfig, *args, stdin=stdin)
    assert r.returncode == 0, f"kubectl {' '.join(args)} failed:\n{r.stderr}"
    assert "warning" not in r.stderr.lower(), r.stderr
    return r.stdout


def _running(core: client.CoreV1Api, wait: Any, nodes: Any, kube: Any) -> None:
    nodes(2)
    core.create_namespace({"metadata": {"name": "jira"}})
    core.create_namespaced_pod(
        "jira",
        {
            "metadata": {"name": "jira-0", "labels": {"app": "jira"}},
            "spec": {
                "containers": [
                    {
                        "name": "jira",
                        "image": "atlassian/jira-software:9.12.0",
                        "resources": {"requests": {"memory": "1Gi"}, "limits": {"memory": "1Gi"}},
                    }
                ]
            },
        },
    )
    wait(lambda: core.read_namespaced_pod("jira-0", "jira").status.phase == "Running", "jira-0 running")
    kube.append_log("jira", "jira-0", "jira", "Jira is ready to serve")


def test_get_nodes_and_pods(
    kubectl: str, kubeconfig: Path, core: client.CoreV1Api, wait: Any, nodes: Any, kube: Any
) -> None:
    _running(core, wait, nodes, kube)
    out = _ok(kubectl, kubeconfig, "get", "nodes")
    lines = out.splitlines()
    assert lines[0].split() == ["NAME", "STATUS", "ROLES", "AGE", "VERSION"]
    assert [line.split()[:2] for line in lines[1:]] == [["node-0", "Ready"], ["node-1", "Ready"]]
    out = _ok(kubectl, kubeconfig, "get", "pods", "-A", "-o", "wide")
    header, *rows = out.splitlines()
    assert header.split()[:9] == [
        "NAMESPACE",
        "NAME",
        "READY",
        "STATUS",
        "RESTARTS",
        "AGE",
        "IP",
        "NODE",
        "NOMINATED",
    ]
    row = next(r.split() for r in rows if "jira-0" in r)
    pod = core.read_namespaced_pod("jira-0", "jira")
    assert row[:5] == ["jira", "jira-0", "1/1", "Running", "0"]
    assert row[6:8] == [pod.status.pod_ip, pod.spec.node_name]


def test_describe_and_logs(
    kubectl: str, kubeconfig: Path, core: client.CoreV1Api, wait: Any, nodes: Any, kube: Any
) -> None:
    _running(core, wait, nodes, kube)
    out = _ok(kubectl, kubeconfig, "-n", "jira", "describe", "pod", "jira-0")
    assert "Name:             jira-0" in out and "Status:           Running" in out
    assert "Successfully assigned jira/jira-0 to node-" in out  # events are listed
    assert "Jira is ready to serve" in _ok(kubectl, kubeconfig, "-n", "jira", "logs", "jira-0")
    assert _ok(kubectl, kubeconfig, "-n", "jira", "logs", "jira-0", "--tail=1") == "Jira is ready to serve\n"


MANIFEST = """apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: web
  namespace: default
spec:
  replicas: {replicas}
  serviceName: web
  selector:
    matchLabels: {{app: web}}
  template:
    metadata:
      labels: {{app: web}}
    spec:
      containers:
      - name: web
        image: nginx:1.25
        env: [{{name: A, value: "1"}}]
      - name: sidecar
        image: busybox:1.36
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
  namespace: default
data:
  mode: "{mode}"
"""


def test_apply_and_delete(
    kubectl: str, kubeconfig: Path, apps: client.AppsV1Api, core: client.CoreV1Api, wait: Any, nodes: Any
) -> None:
    nodes(2)
    out = _ok(kubectl, kubeconfig, "apply", "-f", "-", stdin=MANIFEST.format(replicas=1, mode="a"))
    assert "statefulset.apps/web created" in out and "configmap/settings created" in out
    out = _ok(kubectl, kubeconfig, "apply", "-f", "-", stdin=MANIFEST.format(replicas=2, mode="b"))
    assert "statefulset.apps/web configured" in out and "configmap/settings configured" in out
    assert apps.read_namespaced_stateful_set("web", NS).spec.replicas == 2
    assert [c.name for c in apps.read_namespaced_stateful_set("web", NS).spec.template.spec.containers] == [
        "web",
        "sidecar",
    ]
    assert core.read_namespaced_config_map("settings", NS).data == {"mode": "b"}
    wait(
        lambda: (
            (s := apps.read_namespaced_stateful_set("web", NS).status) is not None and s.ready_replicas == 2
        ),
        "web ready",
    )
    out = _ok(
        kubectl, kubeconfig, "apply", "--server-side", "-f", "-", stdin=MANIFEST.format(replicas=2, mode="c")
    )
    assert "serverside-applied" in out
    assert core.read_namespaced_config_map("settings", NS).data == {"mode": "c"}
    assert _ok(kubectl, kubeconfig, "get", "sts").splitlines()[1].split()[:2] == ["web", "2/2"]
    out = _ok(kubectl, kubeconfig, "delete", "sts", "web", "--wait=false")
    assert 'statefulset.apps "web" deleted' in out
    wait(lambda: not core.list_namespaced_pod(NS, label_selector="app=web").items, "pods of web deleted")
    out = _ok(
        kubectl, kubeconfig, "delete", "-f", "-", stdin=MANIFEST.format(replicas=2, mode="c").split("---")[1]
    )
    assert 'configmap "settings" deleted' in out
    r = _run(kubectl, kubeconfig, "get", "cm", "settings")
    assert r.returncode == 1 and 'configmaps "settings" not found' in r.stderr


def test_drain_rollout_status_and_watch(
    kubectl: str,
    kubeconfig: Path,
    apps: client.AppsV1Api,
    core: client.CoreV1Api,
    wait: Any,
    nodes: Any,
    sts_body: Any,
) -> None:
    nodes(4)
    apps.create_namespaced_stateful_set(NS, sts_body("jira", 3, claims=True, anti_affinity=True))
    out = _ok(kubectl, kubeconfig, "rollout", "status", "sts/jira", "--timeout=60s")
    assert "roll out complete" in out
    victim = core.read_namespaced_pod("jira-0", NS)
    zone = core.read_node(victim.spec.node_name).metadata.labels["topology.kubernetes.io/zone"]
    out = _ok(kubectl, kubeconfig, "drain", victim.spec.node_name, "--ignore-daemonsets", "--timeout=60s")
    assert f"node/{victim.spec.node_name} drained" in out and "pod/jira-0 evicted" in out
    wait(
        lambda: (
            (p := core.read_namespaced_pod("jira-0", NS)).metadata.uid != victim.metadata.uid
            and p.status.phase == "Running"
        ),
        "jira-0 rescheduled",
    )
    moved = core.read_namespaced_pod("jira-0", NS).spec.node_name
    assert moved != victim.spec.node_name
    assert core.read_node(moved).metadata.labels["topology.kubernetes.io/zone"] == zone, (
        "pinned by its volume"
    )
    assert core.read_node(victim.spec.node_name).spec.unschedulable is True
    r = _run(kubectl, kubeconfig, "get", "pods", "-w", "--request-timeout=1s")
    assert r.stdout.splitlines()[0].split()[:3] == ["NAME", "READY", "STATUS"]
    assert sum("jira-" in line for line in r.stdout.splitlines()) >= 3


def test_logs_follow(
    kubectl: str, kubeconfig: Path, core: client.CoreV1Api, wait: Any, nodes: Any, kube: Any
) -> None:
    import threading

    _running(core, wait, nodes, kube)
    proc = subprocess.Popen(
        [kubectl, "--kubeconfig", str(kubeconfig), "-n", "jira", "logs", "-f", "jira-0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    got: list[str] = []
    reader = threading.Thread(target=lambda: got.extend(proc.stdout or []), daemon=True)
    reader.start()
    wait(lambda: any("ready to serve" in line for line in got), "the existing lines")
    kube.append_log("jira", "jira-0", "jira", "a new line")
    wait(lambda: any("a new line" in line for line in got), "a followed line")
    core.delete_namespaced_pod("jira-0", "jira")
    assert proc.wait(timeout=30) == 0, "the stream ends when the container stops"


def test_top_reads_the_memory_hook(
    kubectl: str, kubeconfig: Path, core: client.CoreV1Api, wait: Any, nodes: Any, kube: Any
) -> None:
    kube.set_memory_usage_hook(lambda pod, container: 700 * 1024**2)
    _running(core, wait, nodes, kube)
    out = _ok(kubectl, kubeconfig, "-n", "jira", "top", "pod", "jira-0")
    assert out.splitlines()[1].split() == ["jira-0", "0m", "700Mi"]
    metrics = client.CustomObjectsApi(core.api_client).get_namespaced_custom_object(
        "metrics.k8s.io", "v1beta1", "jira", "pods", "jira-0"
    )
    assert metrics["containers"][0]["usage"]["memory"] == f"{700 * 1024}Ki"
    assert "node-" in _ok(kubectl, kubeconfig, "top", "nodes")
