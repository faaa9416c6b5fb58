"""10-provision against the sandbox, through the same clients a real target uses.

Covers (issue 5, "Done means"): from an empty sandbox one apply builds everything and every post-check
passes; an immediate second run plans 0 changes and makes 0 mutating calls (the sandbox audit log);
the shared-home row is the marker check (written by each pod through pods/exec, read by every pod);
Jira replicas 2 → 3 plans exactly that change and jira-2 lands on a third worker; apply: false makes 0
mutating calls; an interrupted apply resumes on rerun without repeating finished steps.
"""

from __future__ import annotations

import dataclasses
import json
from collections import Counter
from typing import Any

import pytest

from atlbook import errors
from atlbook.clients import Clients, k8s
from atlbook.provisioning import apply, runbook

WAITS = apply.Waits(timeout=60)


def _applied(clients: Any, spec: Any) -> dict[str, Any]:
    pplan = runbook.make_plan(clients, spec)
    assert not pplan.blocked, pplan.findings
    return apply.apply(clients, pplan, confirmed=True, waits=WAITS, progress=lambda e: None).to_dict()


def test_empty_to_ha_stack_then_idempotent_then_scale_jira(clients, spec, sandbox_reset):
    first = runbook.make_plan(clients, spec)
    assert first.counts["create"] > 80 and first.counts["update"] == 0 and not first.blocked
    report = apply.apply(clients, first, confirmed=True, waits=WAITS, progress=lambda e: None)
    assert report.counts == {"done": first.mutations}

    rows = runbook.postcheck_table(clients, first)
    failed = [r for r in rows if not r["ok"]]
    assert not failed, failed
    assert {r["check"] for r in rows} == {
        "running",
        "placement",
        "shared-home",
        "network-policy",
        "sticky-ingress",
        "connection-budget",
        "cloudfront-origin",
        "product-databases",  # provisioning.databases: the product databases exist in RDS
    }
    shared = [r for r in rows if r["check"] == "shared-home"]
    assert shared and all(  # the emulator serves pods/exec: the marker check runs, no fallback
        r["detail"].endswith("; marker written by each pod, read by every pod") for r in shared
    ), shared

    mark = sandbox_reset.audit.mark()
    seen: list[Any] = []
    recording = [True]
    sandbox_reset.kube.add_request_observer(lambda e: seen.append(e) if recording[0] else None)
    second = runbook.make_plan(clients, spec)
    recording[0] = False
    reads = Counter((e.verb, e.resource, e.namespace) for e in seen)
    assert not [k for k in reads if k[0] == "get"], reads  # no GET per object
    assert set(reads.values()) == {1}, reads  # one list per kind per namespace
    assert second.mutations == 0, [c.row() for c in second.changes if c.mutating]
    apply.apply(clients, second, confirmed=True, waits=WAITS, progress=lambda e: None)
    assert sandbox_reset.audit.mutations(mark) == []

    stray = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": "left-over",
            "namespace": "atlassian",
            "labels": {"atlbook.io/stack": spec.name},
        },
    }
    k8s.create(clients.k8s, stray)
    kept = runbook.make_plan(clients, spec)
    assert [(c.action, c.name) for c in kept.changes if c.action in ("undesired", "delete")] == [
        ("undesired", "left-over")
    ]
    assert kept.mutations == 0
    pruned = runbook.make_plan(clients, spec, delete_undesired=True)
    assert [(c.action, c.name) for c in pruned.changes if c.mutating] == [("delete", "left-over")]
    apply.apply(clients, pruned, confirmed=True, waits=WAITS, progress=lambda e: None)
    with pytest.raises(errors.NotFound):
        k8s.get(clients.k8s, "ConfigMap", "left-over", "atlassian")

    scaled = spec.model_copy(deep=True)
    scaled.products.jira.replicas = 3
    third = runbook.make_plan(clients, scaled)
    (change,) = [c for c in third.changes if c.mutating]
    assert change.key == "k8s/StatefulSet/atlassian/jira"
    assert [str(f) for f in change.fields] == ["spec.replicas: 2 → 3"]
    apply.apply(clients, third, confirmed=True, waits=WAITS, progress=lambda e: None)
    pods = k8s.list(clients.k8s, "Pod", "atlassian", label_selector="app.kubernetes.io/name=jira")
    nodes = {p["metadata"]["name"]: p["spec"]["nodeName"] for p in pods}
    assert sorted(nodes) == ["jira-0", "jira-1", "jira-2"]
    assert len(set(nodes.values())) == 3, nodes
    rows = runbook.postcheck_table(clients, third)
    assert all(r["ok"] for r in rows if r["subject"] == "jira"), rows


def test_apply_false_makes_no_mutating_call(clients, spec, sandbox_reset):
    mark = sandbox_reset.audit.mark()
    pplan = runbook.make_plan(clients, spec)
    assert pplan.mutations > 0
    with pytest.raises(errors.PlanError, match="not confirmed"):
        apply.apply(clients, pplan, confirmed=False, waits=WAITS)
    rows = runbook.postcheck_table(clients, pplan)
    assert not all(r["ok"] for r in rows)
    assert sandbox_reset.audit.mutations(mark) == []


class _Interrupt(Exception):
    pass


def test_interrupted_apply_resumes_without_repeating_finished_steps(clients, spec, sandbox_reset):
    pplan = runbook.make_plan(clients, spec)
    done: list[str] = []

    def stop_after_30(event: Any) -> None:
        if event.status == "done":
            done.append(event.step.target)
            if len(done) == 30:
                raise _Interrupt("operator pressed stop")

    mark = sandbox_reset.audit.mark()
    with pytest.raises(_Interrupt):
        apply.apply(clients, pplan, confirmed=True, waits=WAITS, progress=stop_after_30)
    first_calls = sandbox_reset.audit.mutations(mark)
    ledger = k8s.get(clients.k8s, "ConfigMap", "atlbook-ledger-10-provision", "atlassian")
    doc = json.loads(ledger["data"]["ledger.json"])
    assert len(doc["steps"]) == 30 and not doc.get("lock")

    # resume as an operator whose target names no kubeconfig: the cluster is reached from
    # describe_cluster (endpoint + CA) and an EKS token, as right after creating it
    eks_only = Clients(dataclasses.replace(clients.target, kubeconfig=None, context=None))
    mark = sandbox_reset.audit.mark()
    rerun = runbook.make_plan(eks_only, spec)

    def target(c: Any) -> str:
        return f"{c.kind} {c.namespace + '/' if c.namespace else ''}{c.name}"

    before = {target(c) for c in pplan.changes if c.mutating}
    after = {target(c) for c in rerun.changes if c.mutating}
    # what is left: everything not done, less the stack namespace the ledger needed first
    assert after == before - set(done) - {"Namespace atlassian"}
    apply.apply(eks_only, rerun, confirmed=True, waits=WAITS, progress=lambda e: None)
    endpoint = eks_only.aws_call("eks", "describe_cluster", idempotent=True, name=spec.name)["cluster"][
        "endpoint"
    ]
    assert eks_only.target.kubeconfig is None and eks_only.k8s.configuration.host == endpoint.rstrip("/")
    second_calls = sandbox_reset.audit.mutations(mark)
    assert first_calls and second_calls
    # the 30 finished steps were every AWS resource but CloudFront (it comes last) and the first
    # Kubernetes objects: the rerun calls no AWS mutation other than CloudFront's, and creates none of
    # the finished Kubernetes objects again
    aws_first = {(e.verb, e.path) for e in first_calls if e.source == "aws"}
    assert any(v == "eks:POST" and p.rstrip("/").endswith("/clusters") for v, p in aws_first)
    aws_again = [(e.verb, e.path) for e in second_calls if e.source == "aws"]
    lock = [v for v, _ in aws_again if v.startswith("ssm:")]  # the outer ledger lock (atlbook.plan)
    assert lock == ["ssm:PutParameter", "ssm:DeleteParameter"], aws_again
    assert all(v.startswith(("cloudfront:", "ssm:")) for v, _ in aws_again), aws_again
    k8s_first = [e.path for e in first_calls if e.source == "k8s" and e.verb == "POST"]
    k8s_again = [e.path for e in second_calls if e.source == "k8s" and e.verb == "POST"]
    assert "/apis/scheduling.k8s.io/v1/priorityclasses" in k8s_first
    assert "/apis/scheduling.k8s.io/v1/priorityclasses" not in k8s_again
    assert all(r["ok"] for r in runbook.postcheck_table(eks_only, rerun))
