"""Plan construction of 30-upgrade, without a stack (the steps' actions are not run).

Aspects: the upgrade plan's steps in order for 2 and 3 nodes (highest ordinal first), every step
recorded in the ledger (mutating), digests stable for the same facts (so a rerun skips what is done) and
different for another target; the retry step sits before the node steps; the rollback plan rolls back
only the pods not on the old image, highest first, and is blocked once the upgrade tasks ran; RDS
snapshot ids are valid; Facts survive the ledger (JSON); image tag helpers; the room check on a
modelled cluster (fits, full node, cordoned node, zone pin).
"""

from __future__ import annotations

import re

import pytest
import upgrade_builders as b

from atlbook.clients.target import ResolvedTarget
from atlbook.products import client as pclient
from atlbook.upgrade import model, observe, sequence
from atlbook.upgrade import timeline as tl


def _ctx(facts: model.Facts) -> sequence.Context:
    return sequence.Context(object(), None, facts, model.Options(), tl.Timeline())  # type: ignore[arg-type]


@pytest.mark.parametrize("replicas", [2, 3])
def test_upgrade_plan_steps(replicas) -> None:
    facts = b.facts(replicas=replicas)
    steps = sequence.upgrade_plan(_ctx(facts))
    nodes = [f"node-jira-{i}" for i in range(replicas - 1, -1, -1)]
    assert [s.id for s in steps] == [
        "preflight",
        "rds-snapshot",
        "zdu-start",
        "hold-partition",
        "set-image",
        *nodes,
        "wait-tasks-ready",
        "approve",
        "wait-stable",
        "post-checks",
    ]
    assert [s.id for s in steps] == sequence.upgrade_step_ids(facts)
    assert all(s.is_mutating for s in steps)  # every step is recorded: none runs twice
    assert not steps.is_blocked
    assert steps.name == "30-upgrade-jira"
    hold = steps.step("hold-partition")
    assert hold.diffs[0].new == replicas and hold.diffs[0].old == 0
    assert steps.step("set-image").diffs[0].new == "atlassian/jira-software:11.3.2"
    assert "partition → 0" in steps.step("node-jira-0").description


def test_digests_are_stable_and_follow_the_target() -> None:
    one = sequence.upgrade_plan(_ctx(b.facts()))
    two = sequence.upgrade_plan(_ctx(b.facts()))
    assert [s.digest() for s in one] == [s.digest() for s in two]
    other = sequence.upgrade_plan(
        _ctx(b.facts(to_version="11.3.3", image_to="atlassian/jira-software:11.3.3"))
    )
    assert one.step("set-image").digest() != other.step("set-image").digest()


def test_retry_step_comes_before_the_nodes() -> None:
    steps = sequence.upgrade_plan(_ctx(b.facts()), retry_pod="jira-1", retry_count=2, retry_uid="u1")
    ids = [s.id for s in steps]
    assert ids.index("retry-jira-1-2") == ids.index("set-image") + 1
    assert steps.step("retry-jira-1-2").kind == "delete"


def _obs_after_halt(zdu: str = "MIXED", original: str = "11.3.1") -> model.Observation:
    obs = b.healthy(replicas=3)
    obs.pods[2].image = "atlassian/jira-software:11.3.2"
    obs.pods[2].ready = False
    obs.image = "atlassian/jira-software:11.3.2"
    obs.partition = 2
    obs.zdu = pclient.ZduState(zdu, True, original, "1")
    return obs


def test_rollback_plan_rolls_back_only_what_moved() -> None:
    facts = b.facts(replicas=3)
    steps = sequence.rollback_plan(_ctx(facts), _obs_after_halt())
    assert [s.id for s in steps] == [
        "rb-hold-partition",
        "rb-set-image",
        "rb-node-jira-2",
        "rb-partition",
        "rb-cancel",
        "rb-verify",
    ]
    assert not steps.is_blocked
    assert steps.step("rb-set-image").diffs[0].new == "atlassian/jira-software:11.3.1"
    assert steps.step("rb-partition").diffs[0].new == 0
    assert "deleted first if stuck" in steps.step("rb-node-jira-2").description


@pytest.mark.parametrize("zdu, original", [("RUNNING_UPGRADE_TASKS", "11.3.1"), ("STABLE", "11.3.2")])
def test_rollback_is_blocked_once_the_tasks_ran(zdu, original) -> None:
    steps = sequence.rollback_plan(_ctx(b.facts(replicas=3)), _obs_after_halt(zdu, original))
    assert steps.is_blocked
    assert "restore RDS snapshot" in steps.blocked[0][1]


@pytest.mark.parametrize(
    "args",
    [
        ("sandbox", "jira", "11.3.1", "11.3.2", "20261126154244"),
        ("9prod", "bitbucket", "9.4.16-jdk17", "9.4.17-jdk17", "x"),
        ("a--b", "confluence", "10.2.7", "10.3.0", "--"),
    ],
)
def test_snapshot_ids_are_valid(args) -> None:
    sid = sequence.snapshot_id(*args)
    assert re.fullmatch(r"[a-z][a-z0-9]*(-[a-z0-9]+)*", sid), sid
    assert len(sid) <= 255


def test_facts_roundtrip_through_the_ledger() -> None:
    facts = b.facts(replicas=3)
    assert model.Facts.from_json(facts.to_json()) == facts
    assert facts.ordinals == [2, 1, 0] and facts.pod(1) == "jira-1"
    assert model.Facts.from_json(facts.to_json()[:-1] + ', "later_field": 1}') == facts


def test_image_helpers() -> None:
    assert observe.image_tag("atlassian/jira-software:11.3.1") == "11.3.1"
    assert observe.image_tag("registry:5000/atlassian/jira") == "latest"
    assert observe.with_tag("registry:5000/atlassian/jira:1", "2") == "registry:5000/atlassian/jira:2"
    assert observe.with_tag("jira@sha256:abc", "2") == "jira:2"
    assert model.same_version("9.12.3-jdk17", "9.12.3") and not model.same_version("9.12.3", None)


def test_match_node_by_id_then_ip() -> None:
    nodes = [pclient.ClusterNode("a1b2", "ACTIVE", True, "1", "1", "10.0.0.5")]
    assert model.match_node(nodes, "jira-0", "10.0.0.5") is nodes[0]
    assert model.match_node(nodes, "jira-0", "10.0.0.6") is None


def _node(name: str, zone: str, cpu: str = "8", memory: str = "32Gi", **spec) -> dict:
    return {
        "metadata": {"name": name, "labels": {"topology.kubernetes.io/zone": zone}},
        "spec": spec,
        "status": {
            "allocatable": {"cpu": cpu, "memory": memory, "pods": "58"},
            "conditions": [{"type": "Ready", "status": "True"}],
        },
    }


def _pod(name: str, node: str, cpu: str = "2", memory: str = "4Gi", owner: str = "jira") -> dict:
    return {
        "metadata": {
            "name": name,
            "namespace": "atlassian",
            "ownerReferences": [{"name": owner, "controller": True}],
        },
        "spec": {
            "nodeName": node,
            "containers": [{"name": "c", "resources": {"requests": {"cpu": cpu, "memory": memory}}}],
            "affinity": {
                "podAntiAffinity": {
                    "requiredDuringSchedulingIgnoredDuringExecution": [
                        {"topologyKey": "kubernetes.io/hostname"}
                    ]
                }
            },
        },
        "status": {"phase": "Running"},
    }


def test_room_fits_back() -> None:
    nodes = [_node("n1", "us-east-1a"), _node("n2", "us-east-1b")]
    pods = [_pod("jira-0", "n1"), _pod("jira-1", "n2")]
    rows = observe.room(nodes, pods, ["jira-0", "jira-1"])
    assert [r["fits"] for r in rows] == [True, True]
    assert "fits again" in rows[0]["evidence"] and "n1" in rows[0]["evidence"]


def test_room_cordoned_and_full() -> None:
    nodes = [_node("n1", "us-east-1a", unschedulable=True), _node("n2", "us-east-1b", cpu="3")]
    pods = [_pod("jira-0", "n1"), _pod("jira-1", "n2"), _pod("big-0", "n2", cpu="1", owner="big")]
    rows = {r["pod"]: r for r in observe.room(nodes, pods, ["jira-0", "jira-1"])}
    assert not rows["jira-0"]["fits"]  # its node is cordoned, the other has a jira pod (anti-affinity)
    assert rows["jira-1"]["fits"]  # back on n2 once it is gone


def test_room_respects_the_volume_zone() -> None:
    nodes = [
        _node("n1", "us-east-1a"),
        _node("n2", "us-east-1b"),
        _node("n3", "us-east-1a", unschedulable=True),
    ]
    pods = [_pod("jira-0", "n3")]
    rows = observe.room(nodes, pods, ["jira-0"], {"jira-0": "us-east-1a"})
    assert rows[0]["fits"] and "n1" in rows[0]["evidence"] and "us-east-1a" in rows[0]["evidence"]
    rows = observe.room(nodes[1:], pods, ["jira-0"], {"jira-0": "us-east-1a"})
    assert not rows[0]["fits"]


class _Clients:
    def __init__(self, product_url=None) -> None:
        self.target = ResolvedTarget(name="custom", product_url=product_url)


def test_ingress_base_url_comes_from_the_target() -> None:
    from atlbook.upgrade import runbook

    class Spec:
        class ingress:  # noqa: N801 - a stand-in for StackSpec.ingress
            host = "atlassian.example.com"

        class products:  # noqa: N801
            class jira:  # noqa: N801
                context_path = "/jira"

    facts = b.facts()
    assert runbook.ingress_base_url(_Clients(), Spec, facts) == "https://atlassian.example.com/jira"
    assert runbook.ingress_base_url(_Clients(), Spec, facts, "http://lb/jira/") == "http://lb/jira"
    sandboxed = _Clients("http://127.0.0.1:5555/{namespace}/{service}{context_path}")
    url = runbook.ingress_base_url(sandboxed, Spec, facts, context_path="/jira")
    assert url == "http://127.0.0.1:5555/atlassian/jira/jira"
    tunnel = _Clients("https://localhost:8443{context_path}")  # a tunnel to the load balancer
    assert runbook.ingress_base_url(tunnel, Spec, facts) == "https://localhost:8443/jira"
    hosted = _Clients("https://{host}:8443{context_path}")
    assert runbook.ingress_base_url(hosted, Spec, facts) == "https://atlassian.example.com:8443/jira"
