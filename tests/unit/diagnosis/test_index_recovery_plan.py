"""Index recovery planning and the RBAC shipped with the runbooks, without a server.

Aspects: the plan's steps, kinds and targets for one and for two bad nodes; blocked without a healthy
node (and ``apply`` refuses it before anything runs); nothing to do when every index is fine; node
health rules; the waiting helper times out naming the last reason; ``rbac/diagnose-role.yaml`` is
read-only and covers every kind the collection lists plus ``pods/log`` and ``pods/proxy``; the
index-recovery Role grants only what the plan does.
"""

from __future__ import annotations

import pathlib

import pytest
import yaml

from atlbook import errors, plan
from atlbook.diagnosis import collect
from atlbook.remediation import index_recovery as ir

ROOT = pathlib.Path(__file__).resolve().parents[3]


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def node(pod: str, drift: int = 0, *, state: str = "RUNNING", ready: bool = True) -> ir.NodeIndex:
    return ir.NodeIndex(pod, f"uid-{pod}", ready, state, True, 1000, 1000 - drift)


def assessment(*nodes: ir.NodeIndex, bad: list[str]) -> ir.Assessment:
    by = {n.pod: n for n in nodes}
    healthy = [p for p, n in by.items() if p not in bad and n.healthy()]
    return ir.Assessment("atlassian", by, bad, healthy)


def test_plan_for_one_bad_node() -> None:
    a = assessment(node("jira-0", 137), node("jira-1"), bad=["jira-0"])
    p = ir.build_plan(object(), None, a)
    assert [(s.id, s.kind) for s in p.steps] == [
        ("healthy-node", "check"),
        ("snapshot", "update"),
        ("restart-jira-0", "delete"),
        ("verify-jira-0", "check"),
    ]
    assert p.step("restart-jira-0").target == "Pod atlassian/jira-0"
    assert not p.is_blocked and p.changes == 2
    assert "jira-1" in p.step("snapshot").description


def test_plan_for_two_bad_nodes() -> None:
    a = assessment(node("jira-0", 137), node("jira-1", 500), node("jira-2"), bad=["jira-0", "jira-1"])
    ids = [s.id for s in ir.build_plan(object(), None, a).steps]
    assert ids == [
        "healthy-node",
        "snapshot",
        "restart-jira-0",
        "verify-jira-0",
        "restart-jira-1",
        "verify-jira-1",
    ]


def test_no_healthy_node_blocks_and_apply_refuses() -> None:
    a = assessment(node("jira-0", 137), node("jira-1", 99), bad=["jira-0", "jira-1"])
    p = ir.build_plan(object(), None, a)
    assert p.is_blocked and "full reindex" in p.blocked[0][1]
    with pytest.raises(errors.PlanError, match="blocked"):
        plan.apply(p, plan.Ledger(plan.MemoryBackend(), runbook=ir.RUNBOOK))


def test_nothing_to_do() -> None:
    a = assessment(node("jira-0"), node("jira-1"), bad=[])
    p = ir.build_plan(object(), None, a)
    assert [s.id for s in p.steps] == ["nothing-to-do"] and p.changes == 0
    report = plan.apply(p, None)
    assert report.counts == {"checked": 1}


@pytest.mark.parametrize(
    ("n", "healthy"),
    [
        (node("a"), True),
        (node("a", ir.TOLERANCE), True),
        (node("a", ir.TOLERANCE + 1), False),
        (node("a", state="STARTING"), False),
        (node("a", ready=False), False),
        (
            ir.NodeIndex(
                "a", state="RUNNING", ready=True, readable=False, count_in_database=5, count_in_index=5
            ),
            False,
        ),
    ],
)
def test_node_health(n: ir.NodeIndex, healthy: bool) -> None:
    assert n.healthy() is healthy


def test_assessment_rows() -> None:
    a = assessment(node("jira-0", 137), node("jira-1"), bad=["jira-0"])
    rows = {r["pod"]: r for r in a.rows()}
    assert rows["jira-0"]["verdict"] == "bad" and rows["jira-0"]["drift"] == 137
    assert rows["jira-1"]["verdict"] == "healthy"
    assert list(a.table()["pod"]) == ["jira-0", "jira-1"]


def test_wait_times_out_naming_the_last_reason() -> None:
    clock = FakeClock()
    opts = ir.Options(timeout=5, poll=1, sleep=clock.sleep, clock=clock)
    with pytest.raises(errors.PlanError, match="timed out after 5 s waiting for the snapshot: still running"):
        ir._wait("the snapshot", lambda: "still running", opts)
    answers = iter([errors.api_error(errors.ProductApiError, "503", status=503), "not yet", True])
    clock.now = 0

    def check() -> bool | str:
        value = next(answers)
        if isinstance(value, Exception):
            raise value
        return value

    assert ir._wait("it", check, opts).startswith("it after 2.0 s")


# --- RBAC ---------------------------------------------------------------------------------------------

_KIND_RESOURCES = {
    "Pod": "pods",
    "Event": "events",
    "StatefulSet": "statefulsets",
    "PersistentVolumeClaim": "persistentvolumeclaims",
    "PodDisruptionBudget": "poddisruptionbudgets",
    "Service": "services",
    "Endpoints": "endpoints",
    "Ingress": "ingresses",
    "NetworkPolicy": "networkpolicies",
}


def _rules(path: str) -> list[tuple[str, str, set[str]]]:
    out = []
    for doc in yaml.safe_load_all((ROOT / "rbac" / path).read_text()):
        if doc["kind"] in ("Role", "ClusterRole"):
            for rule in doc["rules"]:
                for group in rule["apiGroups"]:
                    for resource in rule["resources"]:
                        out.append((doc["kind"], f"{group}/{resource}", set(rule["verbs"])))
    return out


def test_diagnose_role_is_read_only_and_complete() -> None:
    rules = _rules("diagnose-role.yaml")
    for _, _, verbs in rules:
        assert verbs <= {"get", "list", "watch"}
    granted = {res for _, res, verbs in rules if {"get", "list"} <= verbs}
    for kind in collect.LIST_KINDS:
        assert any(g.endswith("/" + _KIND_RESOURCES[kind]) for g in granted), kind
    assert ("ClusterRole", "/nodes", {"get", "list", "watch"}) in rules
    subresources = {res: verbs for _, res, verbs in rules if "/" in res.split("/", 1)[1]}
    assert subresources == {"/pods/log": {"get"}, "/pods/proxy": {"get"}}


def test_index_recovery_role_grants_only_what_the_plan_does() -> None:
    rules = {res: verbs for _, res, verbs in _rules("index-recovery-role.yaml")}
    assert rules["/pods"] == {"get", "list", "watch", "delete"}
    assert rules["/pods/proxy"] == {"get", "create"}
    assert "delete" not in rules["/configmaps"]
    assert all("delete" not in v for r, v in rules.items() if r != "/pods")
