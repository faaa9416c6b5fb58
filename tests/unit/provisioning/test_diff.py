"""Diff semantics: desired vs observed → the plan.

Covers: empty world → every resource `create` (lookups `missing` block); identical world with server-set
fields and API defaults → 0 changes; a replicas change → exactly one `update` with `spec.replicas: 2 → 3`;
int/string equality; named-list matching (env by name); Secrets compared by keys only (values never
shown); unbound late values skipped; present-but-not-desired reported, deleted only on request;
NetworkPolicy engine check; counts and the table rows.
"""

from __future__ import annotations

import copy
import dataclasses
import json

import pytest

from atlbook.provisioning import desired, diff
from atlbook.provisioning.model import bind

pytestmark = pytest.mark.unit

OUTPUTS = {
    "aws:Vpc/main.VpcId": "vpc-1",
    "aws:Vpc/main.CidrBlock": "10.0.0.0/16",
    "aws:Subnets/private.SubnetIds": ["subnet-a", "subnet-b", "subnet-c"],
}


def _served(body):
    """What an API server returns for a created object: server fields and defaults added."""
    out = copy.deepcopy(bind(body, OUTPUTS))
    meta = out.setdefault("metadata", {})
    meta.update(uid="u-1", resourceVersion="42", creationTimestamp="2026-11-26T15:00:00Z", generation=1)
    out["status"] = {"observedGeneration": 1}
    if out.get("kind") == "StatefulSet":
        out["spec"]["revisionHistoryLimit"] = 10
        out["spec"]["template"]["spec"]["dnsPolicy"] = "ClusterFirst"
        out["spec"]["template"]["spec"]["containers"][0]["terminationMessagePath"] = "/dev/termination-log"
    if out.get("kind") == "Secret":
        data = out.pop("stringData")
        out["data"] = {k: "cmVkYWN0ZWQ=" for k in data}
    return out


def _world(state):
    objects = {}
    for r in state.resources:
        objects[r.key] = _served(r.body) if r.provider == "k8s" else copy.deepcopy(bind(r.body, OUTPUTS))
    return objects


def test_empty_world_plans_creates_and_missing_lookups_block(sandbox_spec):
    state = desired.build(sandbox_spec)
    plan = diff.plan(state, diff.Observed(objects={}))
    counts = plan.counts
    assert counts["create"] == len([r for r in state.resources if not r.lookup])
    assert counts["missing"] == 2 and plan.blocked
    assert {f.code for f in plan.findings if f.severity == "blocker"} == {
        "vpc-not-found",
        "subnets-not-found",
    }


def test_identical_world_plans_zero_changes(sandbox_spec):
    state = desired.build(sandbox_spec)
    plan = diff.plan(state, diff.Observed(objects=_world(state), outputs=OUTPUTS, engine="vpc-cni"))
    assert plan.mutations == 0, [c.row() for c in plan.changes if c.mutating]
    assert plan.counts["unchanged"] + plan.counts["found"] == len(state.resources)
    assert not plan.blocked


def test_replicas_change_is_exactly_one_field_level_update(sandbox_spec, variant):
    before = desired.build(sandbox_spec)
    after = desired.build(variant(**{"products.jira.replicas": 3}))
    plan = diff.plan(after, diff.Observed(objects=_world(before), outputs=OUTPUTS, engine="vpc-cni"))
    (sts,) = [c for c in plan.changes if c.mutating]
    assert sts.key == "k8s/StatefulSet/atlassian/jira" and sts.action == "update"
    assert [str(f) for f in sts.fields] == ["spec.replicas: 2 → 3"]


def test_compare_semantics():
    assert diff.compare({"a": 1}, {"a": "1", "b": 2}) == []
    assert diff.compare({"port": 80}, {"port": 80, "protocol": "TCP"}) == []
    env_d = [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]
    env_o = [{"name": "B", "value": "2"}, {"name": "A", "value": "x"}]
    assert [str(c) for c in diff.compare({"env": env_d}, {"env": env_o})] == ["env[A].value: x → 1"]
    assert [str(c) for c in diff.compare({"x": {"y": True}}, {"x": {}})] == ["x.y: ∅ → true"]
    assert diff.compare({"id": "${aws:EfsFileSystem/x.FileSystemId}"}, {"id": "fs-1"}) == []
    assert [str(c) for c in diff.compare({"l": [1, 2]}, {"l": [1]})] == ["l: [1] → [1, 2]"]


def test_secret_values_are_never_compared_or_shown(sandbox_spec):
    state = desired.build(sandbox_spec)
    world = _world(state)
    key = "k8s/Secret/atlassian/jira-admin"
    world[key]["data"] = {"username": "YWRtaW4="}  # password key missing
    plan = diff.plan(state, diff.Observed(objects=world, outputs=OUTPUTS, engine="vpc-cni"))
    (change,) = [c for c in plan.changes if c.mutating]
    assert change.key == key and [str(f) for f in change.fields] == [
        "data.password: ∅ → <from env:ATLBOOK_SANDBOX_ADMIN_PASSWORD>"
    ]
    assert "YWRtaW4=" not in json.dumps(plan.rows())


def test_present_but_not_desired_is_reported_and_only_deleted_on_request(sandbox_spec):
    state = desired.build(sandbox_spec)
    extra = {
        "k8s/ConfigMap/atlassian/old-thing": {"metadata": {"name": "old-thing"}},
        "aws/EksNodegroup/sandbox-apps-us-east-1d": {"nodegroupName": "sandbox-apps-us-east-1d"},
    }
    observed = diff.Observed(objects=_world(state), outputs=OUTPUTS, extra=extra, engine="vpc-cni")
    kept = diff.plan(state, observed)
    (row,) = [c for c in kept.changes if c.name == "old-thing"]
    assert row.action == "undesired" and not row.mutating and kept.mutations == 0
    (ng,) = [c for c in kept.changes if c.kind == "EksNodegroup" and c.action == "undesired"]
    assert ng.name == "sandbox-apps-us-east-1d" and "never deleted" in ng.note
    gone = diff.plan(state, observed, delete_undesired=True)
    (row,) = [c for c in gone.changes if c.name == "old-thing"]
    assert row.action == "delete" and gone.mutations == 1  # the AWS node group is still only reported


def test_network_policy_engine_absent_blocks(sandbox_spec):
    state = desired.build(sandbox_spec)
    without = dataclasses.replace(
        state, resources=tuple(r for r in state.resources if r.name != "sandbox-vpc-cni")
    )
    plan = diff.plan(without, diff.Observed(objects=_world(without), outputs=OUTPUTS))
    assert plan.blocked and "no-network-policy-engine" in {f.code for f in plan.findings}
    ok = diff.plan(without, diff.Observed(objects=_world(without), outputs=OUTPUTS, engine="calico"))
    assert not ok.blocked
    installs = diff.plan(state, diff.Observed(objects={}, outputs=OUTPUTS))
    assert "no-network-policy-engine" not in {f.code for f in installs.findings}


def test_plan_summary_is_json_and_counts_every_action(sandbox_spec):
    state = desired.build(sandbox_spec)
    plan = diff.plan(state, diff.Observed(objects={}))
    summary = json.loads(json.dumps(plan.summary(), default=str))
    assert set(summary["counts"]) == {
        "create",
        "update",
        "delete",
        "unchanged",
        "found",
        "undesired",
        "missing",
    }
    assert summary["blocked"] is True
    assert all(set(row) >= {"action", "kind", "name", "changes"} for row in plan.rows())


class _Tripwire:
    """Clients that must not be used: any attribute access fails the test."""

    def __getattr__(self, name):
        raise AssertionError(f"Must not be called: clients.{name}")


def test_findings_reach_the_plan_and_a_blocked_plan_is_never_applied(variant):
    from atlbook import errors
    from atlbook.provisioning import apply

    efs = desired.build(variant(**{"storage.bitbucket_shared_home": "efs"}))
    warned = diff.plan(efs, diff.Observed(objects=_world(efs), outputs=OUTPUTS, engine="vpc-cni"))
    assert "bitbucket-on-efs" in {f["code"] for f in warned.summary()["findings"]} and not warned.blocked

    over = desired.build(
        variant(
            **{
                "database.instance_class": "db.t3.medium",
                "products.jira.replicas": 6,
                "products.jira.db_pool_max": 100,
            }
        )
    )
    blocked = diff.plan(over, diff.Observed(objects={}, outputs=OUTPUTS, engine="vpc-cni"))
    (finding,) = [f for f in blocked.summary()["findings"] if f["code"] == "connection-budget"]
    assert (
        finding["severity"] == "blocker"
        and finding["numbers"]["need"] > finding["numbers"]["max_connections"]
    )
    with pytest.raises(errors.PlanError, match="blocked"):
        apply.apply(_Tripwire(), blocked, confirmed=True)
    steps = apply.to_plan(_Tripwire(), blocked)
    assert steps.is_blocked and any("DB connections" in reason for _, reason in steps.blocked)


def test_plan_shows_secret_references_never_values(sandbox_spec, monkeypatch):
    monkeypatch.setenv("ATLBOOK_SANDBOX_ADMIN_PASSWORD", "planted-admin-value")
    state = desired.build(sandbox_spec)
    plan = diff.plan(state, diff.Observed(objects={}, outputs=OUTPUTS, engine="vpc-cni"))
    (row,) = [r for r in plan.rows() if r["kind"] == "Secret" and r["name"] == "jira-admin"]
    assert "data.password: ∅ → <from env:ATLBOOK_SANDBOX_ADMIN_PASSWORD>" in row["changes"]
    assert "planted-admin-value" not in json.dumps(plan.summary(), default=str)
