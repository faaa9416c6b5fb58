"""Controllers of the emulated cluster, pinned to the behaviour the Kubernetes documentation describes.

Covers: StatefulSet partitioned rolling update (highest ordinal first, each waiting for Ready),
OrderedReady scale-up waiting for Ready vs Parallel, deleting a StatefulSet removes its pods (claims
stay); scheduler filters and the kube-scheduler-style FailedScheduling message (anti-affinity +
resources, symmetric anti-affinity, taints, pod slots, topology spread, PriorityClass order);
zone-pinned volumes and RWX claims; PDB-guarded eviction (429); Endpoints following readiness;
Deployment rollout; DaemonSet per node; kubelet OOMKill and crash restarts; graceful deletion with
lifecycle listeners; node lost → taints → eviction → reschedule; node deleted → pods recreated.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from atlbook.sandbox.kube.errors import EVICTION_PDB_CAUSE_MSG, EVICTION_PDB_MSG
from atlbook.sandbox.kube.scheduler import FAILED_SCHEDULING_MSG

NS = "default"


def _pods(core: client.CoreV1Api, sel: str) -> dict[str, Any]:
    return {p.metadata.name: p for p in core.list_namespaced_pod(NS, label_selector=sel).items}


def _ready(p: Any) -> bool:
    return (
        p.status.phase == "Running"
        and not p.metadata.deletion_timestamp
        and any(c.type == "Ready" and c.status == "True" for c in p.status.conditions or [])
    )


def _sts_ready(apps: client.AppsV1Api, name: str, n: int) -> bool:
    s = apps.read_namespaced_stateful_set(name, NS).status
    return bool(s and s.ready_replicas == n and s.replicas == n)


def _scheduled_message(core: client.CoreV1Api, name: str) -> str | None:
    p = core.read_namespaced_pod(name, NS)
    for c in p.status.conditions or []:
        if c.type == "PodScheduled" and c.status == "False":
            return str(c.message)
    return None


def test_partitioned_rolling_update_goes_highest_ordinal_first_waiting_for_ready(
    kube: Any, core: client.CoreV1Api, apps: client.AppsV1Api, nodes: Any, wait: Any, sts_body: Any
) -> None:
    nodes(4)
    apps.create_namespaced_stateful_set(NS, sts_body("jira", 4))
    wait(lambda: _sts_ready(apps, "jira", 4), "4 ready replicas")
    old_rev = apps.read_namespaced_stateful_set("jira", NS).status.current_revision
    held: set[str] = set()
    kube.set_readiness_hook(
        lambda pod: (
            pod["metadata"]["name"] not in held
            if pod["metadata"]["labels"].get("controller-revision-hash") != old_rev
            else None
        )
    )
    deleted: list[str] = []
    kube.store.add_listener(
        lambda ev: (
            deleted.append(ev.obj["metadata"]["name"]) if ev.key == "pods" and ev.type == "DELETED" else None
        )
    )
    held.update({"jira-3", "jira-2", "jira-1", "jira-0"})
    apps.patch_namespaced_stateful_set(
        "jira",
        NS,
        {
            "spec": {
                "updateStrategy": {"rollingUpdate": {"partition": 2}},
                "template": {
                    "spec": {"containers": [{"name": "jira", "image": "atlassian/jira-software:9.12.1"}]}
                },
            }
        },
    )
    wait(
        lambda: (
            (p := _pods(core, "app=jira").get("jira-3")) is not None
            and p.metadata.labels["controller-revision-hash"] != old_rev
            and p.status.phase == "Running"
        ),
        "jira-3 recreated at the new revision",
    )
    kube.wait_for(lambda: False, 60)  # one simulated minute: jira-2 must not move while jira-3 is unready
    assert deleted == ["jira-3"]
    assert _pods(core, "app=jira")["jira-2"].metadata.labels["controller-revision-hash"] == old_rev
    held.discard("jira-3")
    wait(
        lambda: _pods(core, "app=jira")["jira-2"].metadata.labels["controller-revision-hash"] != old_rev,
        "jira-2 updated after jira-3 became Ready",
    )
    held.discard("jira-2")
    wait(
        lambda: (
            apps.read_namespaced_stateful_set("jira", NS).status.updated_replicas == 2
            and apps.read_namespaced_stateful_set("jira", NS).status.ready_replicas == 4
        ),
        "2 updated and 4 ready",
    )
    kube.wait_for(lambda: False, 60)
    assert deleted == ["jira-3", "jira-2"], "the partition protects ordinals 0 and 1"
    status = apps.read_namespaced_stateful_set("jira", NS).status
    assert status.current_revision == old_rev and status.update_revision != old_rev
    held.clear()
    apps.patch_namespaced_stateful_set(
        "jira", NS, {"spec": {"updateStrategy": {"rollingUpdate": {"partition": 0}}}}
    )
    wait(
        lambda: (
            apps.read_namespaced_stateful_set("jira", NS).status.current_revision
            == apps.read_namespaced_stateful_set("jira", NS).status.update_revision
        ),
        "the rollout to complete",
    )
    assert deleted == ["jira-3", "jira-2", "jira-1", "jira-0"]
    assert apps.read_namespaced_stateful_set("jira", NS).status.updated_replicas == 4


def test_on_delete_strategy_waits_for_the_operator(
    core: client.CoreV1Api, apps: client.AppsV1Api, nodes: Any, wait: Any, kube: Any, sts_body: Any
) -> None:
    nodes(2)
    apps.create_namespaced_stateful_set(NS, sts_body("conf", 2, strategy="OnDelete"))
    wait(lambda: _sts_ready(apps, "conf", 2), "2 ready")
    old = apps.read_namespaced_stateful_set("conf", NS).status.current_revision
    apps.patch_namespaced_stateful_set(
        "conf",
        NS,
        {
            "spec": {
                "template": {
                    "spec": {"containers": [{"name": "conf", "image": "atlassian/confluence:8.5.1"}]}
                }
            }
        },
    )
    kube.wait_for(lambda: False, 60)
    assert {p.metadata.labels["controller-revision-hash"] for p in _pods(core, "app=conf").values()} == {old}
    core.delete_namespaced_pod("conf-1", NS)
    wait(
        lambda: (
            (p := _pods(core, "app=conf").get("conf-1")) is not None
            and p.metadata.labels["controller-revision-hash"] != old
            and _ready(p)
        ),
        "conf-1 recreated, new revision",
    )


def test_ordered_ready_scale_up_waits_for_ready_parallel_does_not(
    kube: Any, core: client.CoreV1Api, apps: client.AppsV1Api, nodes: Any, wait: Any, sts_body: Any
) -> None:
    nodes(3)
    gate = {"open": False}
    kube.set_readiness_hook(lambda pod: gate["open"])
    apps.create_namespaced_stateful_set(NS, sts_body("ord", 3))
    apps.create_namespaced_stateful_set(NS, sts_body("par", 3, policy="Parallel"))
    wait(
        lambda: (
            "ord-0" in _pods(core, "app=ord") and _pods(core, "app=ord")["ord-0"].status.phase == "Running"
        ),
        "ord-0 running",
    )
    wait(lambda: len(_pods(core, "app=par")) == 3, "all Parallel pods created")
    kube.wait_for(lambda: False, 120)
    assert list(_pods(core, "app=ord")) == ["ord-0"], "OrderedReady must wait for ord-0 to be Ready"
    gate["open"] = True
    wait(lambda: _sts_ready(apps, "ord", 3), "ord scaled up once pods turn Ready")
    apps.patch_namespaced_stateful_set_scale("ord", NS, {"spec": {"replicas": 1}})
    wait(lambda: list(_pods(core, "app=ord")) == ["ord-0"], "scale down to ord-0")


def test_deleting_a_statefulset_removes_its_pods_and_keeps_claims(
    core: client.CoreV1Api, apps: client.AppsV1Api, nodes: Any, wait: Any, sts_body: Any
) -> None:
    nodes(3)
    apps.create_namespaced_stateful_set(NS, sts_body("bb", 2, claims=True))
    wait(lambda: _sts_ready(apps, "bb", 2), "2 ready")
    apps.delete_namespaced_stateful_set("bb", NS)
    wait(lambda: not _pods(core, "app=bb"), "pods garbage-collected")
    claims = core.list_namespaced_persistent_volume_claim(NS).items
    assert sorted(c.metadata.name for c in claims) == ["local-home-bb-0", "local-home-bb-1"]
    assert all(c.status.phase == "Bound" for c in claims)


def test_anti_affinity_and_memory_leave_a_pod_pending_with_the_scheduler_message(
    core: client.CoreV1Api, apps: client.AppsV1Api, nodes: Any, wait: Any, sts_body: Any
) -> None:
    nodes(4, memory="16Gi", prefix="big")
    nodes(2, memory="4Gi", prefix="small")
    apps.create_namespaced_stateful_set(
        NS, sts_body("jira", 5, anti_affinity=True, memory="8Gi", policy="Parallel")
    )
    wait(
        lambda: (
            _scheduled_message(core, "jira-4") is not None if "jira-4" in _pods(core, "app=jira") else False
        ),
        "jira-4 to be found unschedulable",
    )
    expected = (
        "0/6 nodes are available: 2 Insufficient memory, 4 node(s) didn't match pod anti-affinity rules."
    )
    assert _scheduled_message(core, "jira-4") == expected
    assert expected == FAILED_SCHEDULING_MSG.format(
        total=6, reasons="2 Insufficient memory, 4 node(s) didn't match pod anti-affinity rules"
    )
    pod = core.read_namespaced_pod("jira-4", NS)
    assert pod.status.phase == "Pending" and pod.spec.node_name is None
    events = core.list_namespaced_event(
        NS, field_selector="involvedObject.name=jira-4,reason=FailedScheduling"
    )
    assert events.items and events.items[0].message == expected and events.items[0].type == "Warning"
    assert events.items[0].source.component == "default-scheduler"
    placed = {p.spec.node_name for n, p in _pods(core, "app=jira").items() if n != "jira-4"}
    assert placed == {"big-0", "big-1", "big-2", "big-3"}


@pytest.mark.parametrize(
    "case, expected",
    [
        ("symmetric", "0/1 nodes are available: 1 node(s) didn't satisfy existing pods anti-affinity rules."),
        ("taint", "0/1 nodes are available: 1 node(s) had untolerated taint {dedicated: jira}."),
        ("slots", "0/1 nodes are available: 1 Too many pods."),
        ("selector", "0/1 nodes are available: 1 node(s) didn't match Pod's node affinity/selector."),
        ("cpu", "0/1 nodes are available: 1 Insufficient cpu."),
    ],
    ids=lambda v: v if len(v) < 12 else "",
)
def test_scheduler_filters(core: client.CoreV1Api, nodes: Any, wait: Any, case: str, expected: str) -> None:
    nodes(
        1,
        pods="1" if case == "slots" else "110",
        taints=[{"key": "dedicated", "value": "jira", "effect": "NoSchedule"}] if case == "taint" else None,
    )
    if case in ("symmetric", "slots"):
        first = {
            "metadata": {"name": "first", "labels": {"app": "a"}},
            "spec": {"containers": [{"name": "c", "image": "x:1"}]},
        }
        if case == "symmetric":
            first["spec"]["affinity"] = {
                "podAntiAffinity": {
                    "requiredDuringSchedulingIgnoredDuringExecution": [
                        {
                            "topologyKey": "kubernetes.io/hostname",
                            "labelSelector": {"matchLabels": {"app": "b"}},
                        }
                    ]
                }
            }
        core.create_namespaced_pod(NS, first)
        wait(lambda: core.read_namespaced_pod("first", NS).spec.node_name, "first scheduled")
    spec: dict[str, Any] = {"containers": [{"name": "c", "image": "x:1"}]}
    if case == "selector":
        spec["nodeSelector"] = {"disk": "ssd"}
    if case == "cpu":
        spec["containers"][0]["resources"] = {"requests": {"cpu": "5"}}
    core.create_namespaced_pod(NS, {"metadata": {"name": "second", "labels": {"app": "b"}}, "spec": spec})
    wait(lambda: _scheduled_message(core, "second") is not None, "second to be unschedulable")
    assert _scheduled_message(core, "second") == expected


def test_topology_spread_do_not_schedule(core: client.CoreV1Api, nodes: Any, wait: Any) -> None:
    names = nodes(2, zones=("us-east-1a", "us-east-1b"))
    core.patch_node(names[1], {"spec": {"unschedulable": True}})

    def pod(name: str) -> dict[str, Any]:
        return {
            "metadata": {"name": name, "labels": {"app": "s"}},
            "spec": {
                "containers": [{"name": "c", "image": "x:1"}],
                "topologySpreadConstraints": [
                    {
                        "maxSkew": 1,
                        "topologyKey": "topology.kubernetes.io/zone",
                        "whenUnsatisfiable": "DoNotSchedule",
                        "labelSelector": {"matchLabels": {"app": "s"}},
                    }
                ],
            },
        }

    core.create_namespaced_pod(NS, pod("s1"))
    wait(lambda: core.read_namespaced_pod("s1", NS).spec.node_name == names[0], "s1 in zone a")
    core.create_namespaced_pod(NS, pod("s2"))
    wait(lambda: _scheduled_message(core, "s2") is not None, "s2 unschedulable")
    assert _scheduled_message(core, "s2") == (
        "0/2 nodes are available: 1 node(s) didn't match pod topology spread "
        "constraints, 1 node(s) were unschedulable."
    )
    core.patch_node(names[1], {"spec": {"unschedulable": False}})
    wait(lambda: core.read_namespaced_pod("s2", NS).spec.node_name == names[1], "s2 lands in zone b")


def test_priority_class_order(core: client.CoreV1Api, nodes: Any, wait: Any) -> None:
    client.SchedulingV1Api(core.api_client).create_priority_class(
        {"metadata": {"name": "high"}, "value": 1000}
    )
    (node,) = nodes(1, pods="1")
    core.patch_node(node, {"spec": {"unschedulable": True}})
    for name, pc in (("low", None), ("urgent", "high")):
        spec: dict[str, Any] = {"containers": [{"name": "c", "image": "x:1"}]}
        if pc:
            spec["priorityClassName"] = pc
        core.create_namespaced_pod(NS, {"metadata": {"name": name}, "spec": spec})
    assert core.read_namespaced_pod("urgent", NS).spec.priority == 1000
    wait(lambda: _scheduled_message(core, "low") is not None, "low pending")
    core.patch_node(node, {"spec": {"unschedulable": False}})
    wait(lambda: core.read_namespaced_pod("urgent", NS).spec.node_name == node, "urgent scheduled first")
    assert core.read_namespaced_pod("low", NS).spec.node_name is None
    with pytest.raises(ApiException) as e:
        core.create_namespaced_pod(
            NS,
            {
                "metadata": {"name": "x"},
                "spec": {"priorityClassName": "nope", "containers": [{"name": "c", "image": "x:1"}]},
            },
        )
    assert e.value.status == 403


def test_zone_pinned_volume_keeps_the_pod_in_its_zone(
    kube: Any, core: client.CoreV1Api, apps: client.AppsV1Api, nodes: Any, wait: Any, sts_body: Any
) -> None:
    nodes(3)
    apps.create_namespaced_stateful_set(NS, sts_body("jira", 1, claims=True))
    wait(lambda: _sts_ready(apps, "jira", 1), "jira-0 ready")
    node = core.read_namespaced_pod("jira-0", NS).spec.node_name
    zone = core.read_node(node).metadata.labels["topology.kubernetes.io/zone"]
    pv = core.read_persistent_volume(
        core.read_namespaced_persistent_volume_claim("local-home-jira-0", NS).spec.volume_name
    )
    assert pv.spec.node_affinity.required.node_selector_terms[0].match_expressions[0].values == [zone]
    core.patch_node(node, {"spec": {"unschedulable": True}})
    core.delete_namespaced_pod("jira-0", NS)
    wait(
        lambda: "jira-0" in _pods(core, "app=jira") and _scheduled_message(core, "jira-0") is not None,
        "jira-0 recreated and unschedulable",
    )
    assert _scheduled_message(core, "jira-0") == (
        "0/3 nodes are available: 1 node(s) were unschedulable, 2 node(s) had volume node affinity conflict."
    )
    core.create_node(
        {
            "metadata": {
                "name": "spare",
                "labels": {"topology.kubernetes.io/zone": zone, "kubernetes.io/hostname": "spare"},
            },
            "status": {"capacity": {"cpu": "4", "memory": "16Gi", "pods": "110"}},
        }
    )
    wait(
        lambda: core.read_namespaced_pod("jira-0", NS).spec.node_name == "spare",
        "jira-0 on the spare in its zone",
    )


def test_rwx_claims_bind_without_zone(core: client.CoreV1Api) -> None:
    client.StorageV1Api(core.api_client).create_storage_class(
        {"metadata": {"name": "efs"}, "provisioner": "efs.csi.aws.com", "volumeBindingMode": "Immediate"}
    )
    core.create_namespaced_persistent_volume_claim(
        NS,
        {
            "metadata": {"name": "shared"},
            "spec": {
                "storageClassName": "efs",
                "accessModes": ["ReadWriteMany"],
                "resources": {"requests": {"storage": "5Gi"}},
            },
        },
    )
    import time

    for _ in range(500):
        pvc = core.read_namespaced_persistent_volume_claim("shared", NS)
        if pvc.status.phase == "Bound":
            break
        time.sleep(0.01)
    assert pvc.status.phase == "Bound" and pvc.status.access_modes == ["ReadWriteMany"]
    assert core.read_persistent_volume(pvc.spec.volume_name).spec.node_affinity is None


def test_pdb_refuses_eviction_with_429(
    core: client.CoreV1Api,
    apps: client.AppsV1Api,
    policy: client.PolicyV1Api,
    nodes: Any,
    wait: Any,
    sts_body: Any,
) -> None:
    nodes(2)
    apps.create_namespaced_stateful_set(NS, sts_body("jira", 2))
    policy.create_namespaced_pod_disruption_budget(
        NS,
        {
            "metadata": {"name": "jira"},
            "spec": {"minAvailable": 2, "selector": {"matchLabels": {"app": "jira"}}},
        },
    )
    wait(lambda: _sts_ready(apps, "jira", 2), "2 ready")
    wait(
        lambda: (
            (
                policy.read_namespaced_pod_disruption_budget("jira", NS).status
                or client.V1PodDisruptionBudgetStatus(
                    current_healthy=0, desired_healthy=0, disruptions_allowed=0, expected_pods=0
                )
            ).current_healthy
            == 2
        ),
        "PDB status",
    )
    eviction = {
        "apiVersion": "policy/v1",
        "kind": "Eviction",
        "metadata": {"name": "jira-0", "namespace": NS},
    }
    with pytest.raises(ApiException) as e:
        core.create_namespaced_pod_eviction("jira-0", NS, eviction)
    body = json.loads(e.value.body)
    assert (
        e.value.status == 429 and body["reason"] == "TooManyRequests" and body["message"] == EVICTION_PDB_MSG
    )
    assert body["details"]["causes"][0]["message"] == EVICTION_PDB_CAUSE_MSG.format(
        pdb="jira", desired=2, current=2
    )
    assert policy.read_namespaced_pod_disruption_budget("jira", NS).status.disruptions_allowed == 0
    policy.patch_namespaced_pod_disruption_budget("jira", NS, {"spec": {"minAvailable": 1}})
    uid = core.read_namespaced_pod("jira-0", NS).metadata.uid
    core.create_namespaced_pod_eviction("jira-0", NS, eviction)
    wait(
        lambda: (
            (p := _pods(core, "app=jira").get("jira-0")) is not None and p.metadata.uid != uid and _ready(p)
        ),
        "jira-0 evicted and recreated",
    )


def test_endpoints_follow_ready_pods(
    kube: Any, core: client.CoreV1Api, apps: client.AppsV1Api, nodes: Any, wait: Any, sts_body: Any
) -> None:
    nodes(2)
    unready: set[str] = set()
    kube.set_readiness_hook(lambda pod: pod["metadata"]["name"] not in unready)
    core.create_namespaced_service(
        NS,
        {
            "metadata": {"name": "jira"},
            "spec": {
                "selector": {"app": "jira"},
                "ports": [{"name": "http", "port": 80, "targetPort": "http"}],
            },
        },
    )
    apps.create_namespaced_stateful_set(NS, sts_body("jira", 2))

    def addresses() -> tuple[list[str], list[str]]:
        try:
            subsets = core.read_namespaced_endpoints("jira", NS).subsets or []
        except ApiException as e:
            if e.status == 404:  # the endpoints controller has not caught up yet
                return [], []
            raise
        ready = sorted(a.target_ref.name for s in subsets for a in s.addresses or [])
        not_ready = sorted(a.target_ref.name for s in subsets for a in s.not_ready_addresses or [])
        return ready, not_ready

    wait(lambda: addresses() == (["jira-0", "jira-1"], []), "both pods in endpoints")
    assert core.read_namespaced_endpoints("jira", NS).subsets[0].ports[0].port == 8080
    unready.add("jira-1")
    wait(lambda: addresses() == (["jira-0"], ["jira-1"]), "jira-1 moved to notReadyAddresses")


def test_deployment_rollout(core: client.CoreV1Api, apps: client.AppsV1Api, nodes: Any, wait: Any) -> None:
    nodes(3)
    body = {
        "metadata": {"name": "web"},
        "spec": {
            "replicas": 3,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "web", "image": "nginx:1.25"}]},
            },
        },
    }
    apps.create_namespaced_deployment(NS, body)

    def done(image: str) -> bool:
        d = apps.read_namespaced_deployment("web", NS)
        pods = [p for p in _pods(core, "app=web").values() if not p.metadata.deletion_timestamp]
        return bool(
            d.status
            and d.status.updated_replicas == 3
            and d.status.available_replicas == 3
            and len(pods) == 3
            and all(p.spec.containers[0].image == image and _ready(p) for p in pods)
        )

    wait(lambda: done("nginx:1.25"), "first rollout")
    apps.patch_namespaced_deployment(
        "web", NS, {"spec": {"template": {"spec": {"containers": [{"name": "web", "image": "nginx:1.26"}]}}}}
    )
    wait(lambda: done("nginx:1.26"), "second rollout")
    rs = apps.list_namespaced_replica_set(NS).items
    assert sorted(r.spec.replicas for r in rs) == [0, 3]
    assert (
        apps.read_namespaced_deployment("web", NS).metadata.annotations["deployment.kubernetes.io/revision"]
        == "2"
    )
    apps.patch_namespaced_deployment_scale("web", NS, {"spec": {"replicas": 1}})
    wait(
        lambda: len([p for p in _pods(core, "app=web").values() if not p.metadata.deletion_timestamp]) == 1,
        "scaled to 1",
    )


def test_daemonset_one_pod_per_eligible_node(
    core: client.CoreV1Api, apps: client.AppsV1Api, nodes: Any, wait: Any
) -> None:
    nodes(3)
    nodes(1, prefix="gpu", taints=[{"key": "gpu", "value": "true", "effect": "NoSchedule"}])
    apps.create_namespaced_daemon_set(
        NS,
        {
            "metadata": {"name": "agent"},
            "spec": {
                "selector": {"matchLabels": {"app": "agent"}},
                "template": {
                    "metadata": {"labels": {"app": "agent"}},
                    "spec": {"containers": [{"name": "a", "image": "agent:1"}]},
                },
            },
        },
    )
    wait(
        lambda: (
            (s := apps.read_namespaced_daemon_set("agent", NS).status) is not None and s.number_ready == 3
        ),
        "3 agents ready",
    )
    assert sorted(p.spec.node_name for p in _pods(core, "app=agent").values()) == [
        "node-0",
        "node-1",
        "node-2",
    ]


def test_oom_kill_and_crash_restarts(kube: Any, core: client.CoreV1Api, nodes: Any, wait: Any) -> None:
    nodes(1)
    hungry = {"on": False}

    def usage(pod: Any, container: str) -> int:
        if hungry["on"]:  # one reading above the limit
            hungry["on"] = False
            return 3 * 1024**3
        return 512 * 1024**2

    kube.set_memory_usage_hook(usage)
    core.create_namespaced_pod(
        NS,
        {
            "metadata": {"name": "jvm"},
            "spec": {
                "containers": [{"name": "jvm", "image": "jira:9", "resources": {"limits": {"memory": "2Gi"}}}]
            },
        },
    )
    wait(lambda: _ready(core.read_namespaced_pod("jvm", NS)), "jvm ready")
    hungry["on"] = True
    wait(
        lambda: (
            core.read_namespaced_pod("jvm", NS).status.container_statuses[0].last_state.terminated is not None
        ),
        "an OOM kill",
    )
    cs = core.read_namespaced_pod("jvm", NS).status.container_statuses[0]
    assert cs.last_state.terminated.reason == "OOMKilled" and cs.last_state.terminated.exit_code == 137
    wait(lambda: _ready(core.read_namespaced_pod("jvm", NS)), "jvm restarted")
    assert core.read_namespaced_pod("jvm", NS).status.container_statuses[0].restart_count == 1
    kube.kill_container(NS, "jvm")
    wait(
        lambda: (
            (s := core.read_namespaced_pod("jvm", NS).status.container_statuses[0]).state.waiting is not None
            and s.state.waiting.reason == "CrashLoopBackOff"
        ),
        "back-off after the second crash",
    )
    wait(
        lambda: (
            core.read_namespaced_pod("jvm", NS).status.container_statuses[0].restart_count == 2
            and _ready(core.read_namespaced_pod("jvm", NS))
        ),
        "running again after back-off",
    )


def test_graceful_deletion_and_lifecycle_listeners(
    kube: Any, core: client.CoreV1Api, nodes: Any, wait: Any
) -> None:
    nodes(1)
    started: list[str] = []
    stopped: list[str] = []
    kube.add_pod_lifecycle_listener(
        lambda p: started.append(p["metadata"]["name"]), lambda p: stopped.append(p["metadata"]["name"])
    )
    core.create_namespaced_pod(
        NS, {"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "x:1"}]}}
    )
    wait(lambda: started == ["p"], "on_started")
    deleted = core.delete_namespaced_pod("p", NS)
    assert (
        deleted.metadata.deletion_timestamp is not None
        and deleted.metadata.deletion_grace_period_seconds == 30
    )
    wait(lambda: not core.list_namespaced_pod(NS).items, "the pod to terminate")
    assert stopped == ["p"]


def test_node_lost_taints_evicts_and_reschedules(
    kube: Any, core: client.CoreV1Api, apps: client.AppsV1Api, nodes: Any, wait: Any
) -> None:
    names = nodes(3)
    apps.create_namespaced_deployment(
        NS,
        {
            "metadata": {"name": "web"},
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": {"app": "web"}},
                "template": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {
                        "tolerations": [
                            {
                                "key": "node.kubernetes.io/unreachable",
                                "operator": "Exists",
                                "effect": "NoExecute",
                                "tolerationSeconds": 30,
                            }
                        ],
                        "containers": [{"name": "web", "image": "nginx:1"}],
                    },
                },
            },
        },
    )
    wait(lambda: len([p for p in _pods(core, "app=web").values() if _ready(p)]) == 2, "2 web pods")
    victim = sorted(p.spec.node_name for p in _pods(core, "app=web").values())[0]
    kube.stop_kubelet(victim)
    wait(
        lambda: any(
            t.key == "node.kubernetes.io/unreachable" and t.effect == "NoExecute"
            for t in core.read_node(victim).spec.taints or []
        ),
        "unreachable taint",
    )
    ready = {c.type: c.status for c in core.read_node(victim).status.conditions}
    assert ready["Ready"] == "Unknown"
    wait(
        lambda: (
            len([p for p in _pods(core, "app=web").values() if _ready(p) and p.spec.node_name != victim]) == 2
        ),
        "a replacement on a healthy node",
    )
    stuck = [p for p in _pods(core, "app=web").values() if p.spec.node_name == victim]
    assert stuck and all(p.metadata.deletion_timestamp for p in stuck), "pods on a lost node stay Terminating"
    core.delete_node(victim)
    wait(lambda: all(p.spec.node_name != victim for p in _pods(core, "app=web").values()), "pod GC")
    assert set(names) - {victim}


def test_readiness_waits_for_the_probe_initial_delay(
    kube: Any, core: client.CoreV1Api, nodes: Any, wait: Any
) -> None:
    nodes(1)
    core.create_namespaced_pod(
        NS,
        {
            "metadata": {"name": "slow"},
            "spec": {
                "containers": [
                    {
                        "name": "jira",
                        "image": "jira:9",
                        "readinessProbe": {
                            "httpGet": {"path": "/status", "port": 8080},
                            "initialDelaySeconds": 1200,  # 6 s of wall time at the tests' factor:
                        },  # a loaded machine cannot let it pass unseen between the two reads below
                    }
                ]
            },
        },
    )
    wait(lambda: core.read_namespaced_pod("slow", NS).status.phase == "Running", "slow running")
    kube.wait_for(lambda: False, 60)
    assert not _ready(core.read_namespaced_pod("slow", NS)), "not Ready before initialDelaySeconds"
    wait(lambda: _ready(core.read_namespaced_pod("slow", NS)), "Ready after the initial delay", 2400)


def test_preemption_of_lower_priority_pods(core: client.CoreV1Api, nodes: Any, wait: Any) -> None:
    sched = client.SchedulingV1Api(core.api_client)
    sched.create_priority_class({"metadata": {"name": "product"}, "value": 1000})
    sched.create_priority_class({"metadata": {"name": "batch"}, "value": 10})
    nodes(1, cpu="2")

    def pod(name: str, pc: str, cpu: str) -> dict[str, Any]:
        return {
            "metadata": {"name": name},
            "spec": {
                "priorityClassName": pc,
                "containers": [{"name": "c", "image": "i:1", "resources": {"requests": {"cpu": cpu}}}],
            },
        }

    core.create_namespaced_pod(NS, pod("batch-a", "batch", "500m"))
    core.create_namespaced_pod(NS, pod("batch-b", "batch", "1"))
    wait(lambda: all(_ready(p) for p in core.list_namespaced_pod(NS).items), "batch pods running")
    core.create_namespaced_pod(NS, pod("jira-0", "product", "1"))
    wait(
        lambda: core.read_namespaced_pod("jira-0", NS).spec.node_name == "node-0",
        "jira-0 scheduled by preemption",
    )
    names = {p.metadata.name for p in core.list_namespaced_pod(NS).items}
    assert names == {"batch-a", "jira-0"}, "only the victim needed (batch-b) was preempted"
    events = core.list_namespaced_event(NS, field_selector="involvedObject.name=batch-b,reason=Preempted")
    assert events.items and events.items[0].message.startswith("Preempted by pod")
