"""Pure pieces of the emulator: the simulated clock, scheduler helpers and message wording, the Status
bodies of errors, discovery documents, admission helpers, and every module's ``__all__``."""

from __future__ import annotations

import importlib
import pkgutil
import threading
from collections import Counter

import pytest

import atlbook.sandbox.kube as kube_pkg
from atlbook.sandbox.clock import SimClock
from atlbook.sandbox.kube import errors, resources
from atlbook.sandbox.kube.admission import pod_requests, qos_class, template_hash
from atlbook.sandbox.kube.scheduler import failed_scheduling_message, node_matches_affinity, tolerates


def test_clock_runs_faster_and_advances() -> None:
    clock = SimClock(1000.0)
    t0 = clock.monotonic()
    clock.sleep(5.0)  # 5 ms of wall time
    assert clock.monotonic() - t0 >= 5.0
    before = clock.now()
    clock.advance(3600)
    assert (clock.now() - before).total_seconds() >= 3600
    with pytest.raises(ValueError):
        clock.advance(-1)
    with pytest.raises(ValueError):
        SimClock(0)


def test_clock_wait_wakes_on_notify() -> None:
    clock = SimClock(1.0)
    flag = threading.Event()
    threading.Timer(0.05, lambda: (flag.set(), clock.notify())).start()
    assert clock.wait(3600, until=flag.is_set) is True
    assert clock.wait(0.001) is False


def test_failed_scheduling_message_sorts_like_kube_scheduler() -> None:
    reasons = Counter({"node(s) didn't match pod anti-affinity rules": 4, "Insufficient memory": 2})
    assert failed_scheduling_message(6, reasons) == (
        "0/6 nodes are available: 2 Insufficient memory, 4 node(s) didn't match pod anti-affinity rules."
    )


@pytest.mark.parametrize(
    "tolerations, taint, ok",
    [
        ([], {"key": "a", "effect": "NoSchedule"}, False),
        ([{"operator": "Exists"}], {"key": "a", "effect": "NoSchedule"}, True),
        (
            [{"key": "a", "operator": "Equal", "value": "x"}],
            {"key": "a", "value": "x", "effect": "NoSchedule"},
            True,
        ),
        ([{"key": "a", "value": "y"}], {"key": "a", "value": "x", "effect": "NoSchedule"}, False),
        (
            [{"key": "a", "operator": "Exists", "effect": "NoExecute"}],
            {"key": "a", "effect": "NoSchedule"},
            False,
        ),
    ],
    ids=repr,
)
def test_tolerations(tolerations: list[dict[str, str]], taint: dict[str, str], ok: bool) -> None:
    assert tolerates(tolerations, taint) is ok


def test_node_affinity() -> None:
    node = {"metadata": {"name": "n1", "labels": {"zone": "a", "cpu": "8"}}}
    pod = {
        "spec": {
            "nodeSelector": {"zone": "a"},
            "affinity": {
                "nodeAffinity": {
                    "requiredDuringSchedulingIgnoredDuringExecution": {
                        "nodeSelectorTerms": [
                            {"matchExpressions": [{"key": "cpu", "operator": "Gt", "values": ["4"]}]},
                        ]
                    }
                }
            },
        }
    }
    assert node_matches_affinity(pod, node)
    fields = {
        "spec": {
            "affinity": {
                "nodeAffinity": {
                    "requiredDuringSchedulingIgnoredDuringExecution": {
                        "nodeSelectorTerms": [
                            {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n2"]}]}
                        ]
                    }
                }
            }
        }
    }
    assert not node_matches_affinity(fields, node)


def test_pod_requests_and_qos() -> None:
    pod = {
        "spec": {
            "containers": [
                {
                    "name": "a",
                    "resources": {
                        "requests": {"cpu": "500m", "memory": "1Gi"},
                        "limits": {"cpu": "500m", "memory": "1Gi"},
                    },
                },
            ],
            "initContainers": [{"name": "i", "resources": {"requests": {"cpu": "2"}}}],
        }
    }
    assert pod_requests(pod) == {"cpu": 2.0, "memory": 1024.0**3}
    assert qos_class({"spec": {"containers": [pod["spec"]["containers"][0]]}}) == "Guaranteed"
    assert qos_class({"spec": {"containers": [{"name": "x"}]}}) == "BestEffort"
    assert template_hash({"a": 1}) == template_hash({"a": 1}) != template_hash({"a": 2})


def test_status_bodies() -> None:
    e = errors.NotFound.of("statefulsets", "jira", "apps")
    assert e.body() == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": 'statefulsets.apps "jira" not found',
        "reason": "NotFound",
        "code": 404,
        "details": {"name": "jira", "kind": "statefulsets", "group": "apps"},
    }
    inv = errors.Invalid.of("Pod", "p", [("spec.containers", "FieldValueRequired", "Required value")])
    assert inv.message == 'Pod "p" is invalid: spec.containers: Required value' and inv.code == 422
    assert errors.TooManyRequests("x").code == 429 and errors.Conflict.of("pods", "p").reason == "Conflict"


def test_discovery_documents() -> None:
    core = resources.api_resource_list("", "v1")
    assert core is not None and {"pods", "pods/log", "nodes"} <= {r["name"] for r in core["resources"]}
    assert resources.api_resource_list("apps", "v2") is None
    assert "apps" in {g["name"] for g in resources.api_group_list()["groups"]}
    assert set(resources.version_info()) >= {"major", "minor", "gitVersion", "platform"}


def test_every_module_declares_all() -> None:
    for info in pkgutil.iter_modules(kube_pkg.__path__):
        mod = importlib.import_module(f"atlbook.sandbox.kube.{info.name}")
        assert hasattr(mod, "__all__"), info.name
        for name in mod.__all__:
            assert hasattr(mod, name), f"{info.name}.{name}"
