"""10-provision of an empty stack with a kubeconfig target: the ledger waits for the EKS cluster.

Covers: a kubeconfig target names a cluster an empty stack does not have yet (in production its API
cannot answer before the cluster exists), so the ledger stays in memory — and the SSM lock is what
excludes a second run — until the EKS cluster is ACTIVE: at every finished step, the ledger ConfigMap
exists only once the cluster is ACTIVE; the run's first Kubernetes call comes after the cluster was
created (audit log); the SSM lock exists from the first step to the end; the memory steps are in the
ConfigMap at the end.
"""

from __future__ import annotations

from conftest import SANDBOX_FILE, _sandbox_aws

from atlbook import clients as clientsmod
from atlbook import parameters, plan
from atlbook.provisioning import apply as papply
from atlbook.provisioning import runbook as provisioning

PARAMETER = "/atlbook/sandbox/ledger-lock/10-provision"


def test_the_ledger_stays_in_memory_until_the_cluster_is_active(box) -> None:
    spec = parameters.load_stack(str(SANDBOX_FILE))
    bundle = clientsmod.connect(spec.target)
    assert bundle.target.kubeconfig is not None
    eks, ssm = _sandbox_aws(box, "eks"), _sandbox_aws(box, "ssm")
    seen: list[tuple[str, bool, bool, bool]] = []

    def status() -> str:
        clusters = eks.list_clusters()["clusters"]
        return eks.describe_cluster(name="sandbox")["cluster"]["status"] if clusters else "absent"

    def watch(event: plan.StepEvent) -> None:
        if event.status == "done":
            ledger = box.kube.store.peek("configmaps", "atlassian", "atlbook-ledger-10-provision")
            lock = bool(ssm.get_parameters(Names=[PARAMETER])["Parameters"])
            seen.append((event.step.id, status() == "ACTIVE", ledger is not None, lock))

    mark = box.audit.mark()
    pplan = provisioning.make_plan(bundle, spec)
    report = papply.apply(bundle, pplan, confirmed=True, waits=papply.Waits(timeout=120), progress=watch)
    calls = box.audit.mutations(mark)
    bundle.close()
    assert report.counts.get("failed", 0) == 0
    assert seen and all(lock for *_, lock in seen), seen
    assert not any(ledger and not active for _, active, ledger, _ in seen), seen
    assert any(not ledger for _, _, ledger, _ in seen) and seen[-1][2], seen
    first_k8s = next(i for i, e in enumerate(calls) if e.source == "k8s")
    created = next(i for i, e in enumerate(calls) if e.verb == "eks:POST" and e.path.endswith("/clusters"))
    assert created < first_k8s, [(e.verb, e.path) for e in calls[: first_k8s + 1]]
    cm = box.kube.store.peek("configmaps", "atlassian", "atlbook-ledger-10-provision")
    assert cm is not None and all(step in cm["data"]["ledger.json"] for step, *_ in seen)
    assert not ssm.get_parameters(Names=[PARAMETER])["Parameters"]  # released at the end
