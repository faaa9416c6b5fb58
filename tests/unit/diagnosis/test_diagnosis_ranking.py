"""Root-cause ranking over hand-built evidence.

Aspects: each sandbox fault's symptoms alone → its check ranks first and is the most likely cause, with
reasoning that names what it explains; the symptoms downstream (Pending/NotReady/missing cluster node,
pool-timeout log lines, crash loop after OOM, ...) are marked as explained by it; two faults together →
both are causes; a healthy stack has no cause and is ``healthy``; mutual explanations keep one direction.
"""

from __future__ import annotations

import itertools

import diagnosis_builders as b
import pytest

from atlbook import diagnosis
from atlbook.diagnosis import report
from atlbook.diagnosis.evidence import Severity

SINGLE = sorted(b.FAULTS.items())


@pytest.mark.parametrize(("fault", "mutator_and_check"), SINGLE, ids=[f for f, _ in SINGLE])
def test_single_fault_ranks_its_check_first(fault: str, mutator_and_check: tuple) -> None:
    mutate, check_id = mutator_and_check
    d = diagnosis.analyse(mutate(b.healthy()))
    assert d.most_likely is not None
    assert d.most_likely.check == check_id, d.explain()
    assert d.findings[0] is d.most_likely and d.most_likely.rank == 1
    assert d.most_likely.reasoning.startswith("likely cause")
    assert [c.check for c in d.causes][:1] == [check_id]


def test_az_outage_ranks_zone_first_and_explains_its_nodes() -> None:
    d = diagnosis.analyse(b.az_outage(b.healthy(workers_per_zone=2)))
    top = d.most_likely
    assert top is not None and top.check == "k8s.zone-outage"
    nodes = [f for f in d.findings if f.check == "k8s.node-not-ready"]
    assert len(nodes) == 2 and all(top.key in f.explained_by for f in nodes)


def test_node_lost_explains_the_downstream_symptoms() -> None:
    d = diagnosis.analyse(b.node_lost(b.healthy()))
    top = d.most_likely
    assert top is not None
    explained = {d_f.check for d_f in d.findings if top.key in d_f.explained_by}
    assert {
        "product.cluster-node-missing",
        "k8s.pdb-blocking",
        "k8s.statefulset-degraded",
        "collect.source-failed",
    } <= explained
    assert "explains" in top.reasoning


def test_pool_exhaustion_explains_pool_timeouts_in_logs() -> None:
    d = diagnosis.analyse(b.db_pool_exhausted(b.healthy()))
    top = d.most_likely
    assert top is not None and top.check == "database.max-connections"
    timeouts = [f for f in d.findings if f.check == "logs.db-pool-timeout"]
    assert timeouts and all(f.explained_by for f in timeouts)
    assert all("symptom of" in f.reasoning for f in timeouts)


def test_oom_explains_the_crash_loop() -> None:
    d = diagnosis.analyse(b.pod_oom(b.healthy()))
    loop = next(f for f in d.findings if f.check == "k8s.pod-crash-loop")
    assert loop.explained_by == [d.findings[0].key]


PAIRS = [p for p in itertools.combinations(sorted(b.FAULTS), 2)]


@pytest.mark.parametrize("pair", PAIRS, ids=["+".join(p) for p in PAIRS])
def test_two_faults_are_both_reported_as_causes(pair: tuple[str, str]) -> None:
    e = b.healthy()
    first, second = pair
    targets = {"pod-oom": "confluence-1", "crash-loop": "bitbucket-1"}
    for fault in pair:
        mutate, _ = b.FAULTS[fault]
        if fault in targets:
            mutate(e, targets[fault])
        else:
            mutate(e)
    d = diagnosis.analyse(e)
    causes = [f.check for f in d.causes]
    for fault in pair:
        assert b.FAULTS[fault][1] in causes, (pair, causes)
    assert d.findings[0].check in {b.FAULTS[first][1], b.FAULTS[second][1]}


def test_healthy_has_no_cause() -> None:
    d = diagnosis.analyse(b.healthy())
    assert d.healthy and d.most_likely is None and d.causes == []
    assert "healthy" in d.explain()


def test_rules_reference_registered_checks() -> None:
    from atlbook.diagnosis import checks

    for cause, symptom, relation in report.RULES:
        assert cause in checks.REGISTRY, cause
        assert symptom in checks.REGISTRY or symptom == "collect.check-failed", symptom
        assert relation in {"pod", "worker", "zone", "product", "any", "db-source"}


def test_mutual_explanation_keeps_the_stronger_prior() -> None:
    e = b.pod_oom(b.healthy())
    e.logs["jira-1"].lines.append("java.lang.OutOfMemoryError: Java heap space")
    d = diagnosis.analyse(e)
    oom = next(f for f in d.findings if f.check == "k8s.pod-oomkilled")
    log = next(f for f in d.findings if f.check == "logs.out-of-memory")
    assert log.key in oom.explains and oom.key not in log.explains
    assert d.most_likely is oom


def test_ranked_order_puts_causes_then_severity() -> None:
    d = diagnosis.analyse(b.node_lost(b.healthy()))
    rest = d.findings[len(d.causes) :]
    severities = [f.severity for f in rest]
    assert severities == sorted(severities, reverse=True)
    assert all(f.impact >= f.severity for f in d.findings)
    assert d.findings[0].impact == Severity.CRITICAL


def test_scope_breaks_ties_between_causes_of_equal_impact() -> None:
    e = b.index_corrupt(b.index_corrupt(b.healthy(), "jira-0"), "jira-1")
    unscoped = diagnosis.analyse(e)
    assert unscoped.most_likely is not None and unscoped.most_likely.subject == "pod/jira-0"
    sc = diagnosis.scope.manual("jira", "jira-1", now=b.NOW)
    scoped = diagnosis.analyse(e, sc)
    assert scoped.most_likely is not None and scoped.most_likely.subject == "pod/jira-1"
    assert scoped.most_likely.in_scope
    assert not next(
        f for f in scoped.findings if f.subject == "pod/jira-0" and f.check.endswith("drift")
    ).in_scope


def test_scope_never_hides_a_worse_cause_elsewhere() -> None:
    e = b.efs_exhausted(b.healthy())
    b.node_lost(e)
    sc = diagnosis.scope.manual("bitbucket", "bitbucket-0", now=b.NOW)
    d = diagnosis.analyse(e, sc)
    assert d.most_likely is not None and d.most_likely.check == "k8s.node-not-ready"  # critical beats error
