"""Workload building, connection budget, policy objects, baselines, live comparison and plots.

Aspects: workload_from_stack on the sandbox StackSpec and on a plain dict; RDS max_connections and the
two fixes; policy dicts accepted by the kubernetes client models; kube-scheduler scoring direction and
the KS+CA baseline; compare_live on a hand-built cluster; figures render with the Agg backend.
"""

from __future__ import annotations

import io
import random
from types import SimpleNamespace

import kubernetes.client as k8s
import matplotlib
import pytest
from capacity_builders import pset, shape, wl

from atlbook import parameters
from atlbook.capacity import baselines, budget, catalogue, plan, plots, policy, workload
from atlbook.capacity.cluster import ClusterState, Node
from atlbook.errors import ConfigError

matplotlib.use("Agg")
Z3 = ["a", "b", "c"]


def test_workload_from_sandbox_stack() -> None:
    spec = parameters.load_stack("sandbox")
    w = workload.workload_from_stack(spec)
    names = {s.name for s in w.sets}
    assert {"jira", "confluence", "bitbucket"} <= names
    jira = next(s for s in w.sets if s.name == "jira")
    assert jira.replicas == spec.products.jira.replicas and jira.anti_affinity and jira.ebs


def test_workload_from_plain_dict_and_duck_typing() -> None:
    doc = {
        "products": {
            "jira": {"enabled": True, "replicas": 3, "cpu": "6", "memory": "16Gi"},
            "confluence": {"enabled": False, "replicas": 2, "cpu": "2", "memory": "2G"},
            "bitbucket": SimpleNamespace(
                enabled=True,
                replicas=2,
                resources={"requests": {"cpu": "4", "memory": "16Gi"}},
                nfs={"resources": {"requests": {"cpu": "2", "memory": "8Gi"}}},
                opensearch={"enabled": True, "replicas": 2, "cpu": "1500m", "memory": "4Gi"},
                mesh=None,
            ),
        },
        "extras": [{"name": "eazybi", "replicas": 1, "cpu": "2", "memory": "8Gi"}],
    }
    w = workload.workload_from_stack(doc)
    assert [s.name for s in w.sets] == ["jira", "bitbucket", "bitbucket-nfs", "opensearch", "eazybi"]
    assert w.sets[0].cpu_m == 6000 and w.sets[0].memory_mi == 16384
    assert w.sets[3].cpu_m == 1500


@pytest.mark.parametrize(
    "doc, match",
    [
        ({}, "products"),
        ({"products": {"jira": {"replicas": 1, "cpu": "1"}}}, "requests"),
        ({"products": {"jira": {"replicas": 1, "cpu": "x", "memory": "1Gi"}}}, "CPU"),
        ({"products": {"jira": {"enabled": False}}}, "no enabled product"),
    ],
    ids=["no-products", "no-memory", "bad-cpu", "nothing-enabled"],
)
def test_bad_stack_refused(doc: dict[str, object], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        workload.workload_from_stack(doc)


@pytest.mark.parametrize(
    "cls, expected",
    [
        ("db.t3.micro", 112),
        ("db.m5.large", 901),
        ("db.r6g.large", 1802),
        ("db.m5.xlarge", 1802),
        ("db.r5.24xlarge", 5000),
    ],
)
def test_max_connections(cls: str, expected: int) -> None:
    assert budget.max_connections(cls) == expected


def test_budget_deficit_and_fixes() -> None:
    b = budget.connection_budget(
        {"jira": (3, 100), "confluence": (3, 100), "bitbucket": (3, 80)}, "db.m5.large"
    )
    assert (b.need, b.fits, b.deficit) == (950, False, 49)
    assert b.bigger_class is not None and budget.max_connections(b.bigger_class) >= 950
    assert b.pool_max_that_fits == (901 - 10) // 10
    assert "short by 49" in b.explain()
    ok = budget.connection_budget({"jira": (2, 100)}, "db.m5.large")
    assert ok.fits and ok.bigger_class is None and ok.deficit == 0
    with pytest.raises(ConfigError):
        budget.max_connections("db.z9.large")


def test_policy_objects_are_valid_kubernetes_models() -> None:
    w = wl(pset("jira", 2, anti_affinity=True, zone_spread=True), pset("eazybi", 1, priority=50000))
    objs = policy.policy_objects(w, "atl")
    jira = objs["pod_placement"]["jira"]
    aff = k8s.V1Affinity.from_dict(jira["affinity"])
    term = aff.pod_anti_affinity.required_during_scheduling_ignored_during_execution[0]
    assert term.topology_key == "kubernetes.io/hostname"
    tsc = k8s.V1TopologySpreadConstraint.from_dict(jira["topologySpreadConstraints"][0])
    assert (tsc.max_skew, tsc.when_unsatisfiable) == (1, "DoNotSchedule")
    assert jira["priorityClassName"] == "atlbook-apps"
    res = k8s.V1ResourceRequirements.from_dict(jira["resources"])
    assert res.limits["memory"] == res.requests["memory"] == "1024Mi"
    assert objs["pod_placement"]["eazybi"]["priorityClassName"] == "atlbook-extras"
    pdb = k8s.V1PodDisruptionBudget.from_dict(objs["pod_disruption_budgets"][0])
    assert pdb.spec.max_unavailable == 1
    values = sorted(k8s.V1PriorityClass.from_dict(pc).value for pc in objs["priority_classes"])
    assert values == [-10, 50000, 90000, 100000]
    quota = k8s.V1ResourceQuota.from_dict(objs["resource_quota"])
    assert quota.spec.hard["requests.cpu"] == f"{2 * 1000 + 1000 + 1000}m"
    assert k8s.V1LimitRange.from_dict(objs["limit_range"]).spec.limits[0].type == "Container"


def test_least_allocated_spreads_most_allocated_packs() -> None:
    """A pod of another set: LeastAllocated picks the empty node, MostAllocated the used one (the
    system-default spread score is neutral here: no pod of the incoming set anywhere)."""
    w = wl(pset("a", 1, 1000, 1000), pset("b", 1, 1000, 1000))
    st = ClusterState(w, [Node("n0", "a", shape()), Node("n1", "a", shape())], ["a"])
    st.place(0, 0)
    assert baselines.ks_schedule_pod(st, 1, None, random.Random(0), "least") == 1
    assert baselines.ks_schedule_pod(st, 1, None, random.Random(0), "most") == 0


def test_ks_ca_places_everything(w1_doc: dict[str, object]) -> None:
    w = workload.workload_from_dict(w1_doc)
    shapes = plan.shapes_for(catalogue.load_catalogue(["m5"]), w)
    st = baselines.ks_ca(w, shapes, Z3, seed=0)
    assert st.violations() == [] and st.placed() == w.pods
    ffd = baselines.ffd_baseline(w, shapes, Z3)
    assert ffd.violations() == []


def test_compare_live_flags_a_fragile_cluster() -> None:
    nodes = [plan.LiveNode("ip-1", "a", "m5.2xlarge"), plan.LiveNode("ip-2", "b", "m5.2xlarge")]
    pods = [
        plan.LivePod("jira-0", "jira", 2000, 2048, node="ip-1", pv_zone="a"),
        plan.LivePod("jira-1", "jira", 2000, 2048, node="ip-2", pv_zone="b"),
        plan.LivePod("web-0", "web", 500, 512, node=None),
    ]
    cmp = plan.compare_live(nodes, pods, catalogue.load_catalogue(["m5"]), time_limit=1.5)
    s = cmp.summary()
    assert s["current_node_n1_pct"] == 0.0 and s["unplaced_pods"] == 1
    assert cmp.recommendation.survivability.node_pct == 100.0
    assert cmp.recommendation.violations == []


def test_plots_render(w1_doc: dict[str, object]) -> None:
    w = workload.workload_from_dict(w1_doc)
    rec = plan.recommend(w, catalogue.load_catalogue(["m5"], ["xlarge", "2xlarge"]), Z3, time_limit=1)
    figs = [
        plots.plot_nodes(rec.state),
        plots.plot_survivability(rec.survivability),
        plots.plot_cost_vs_bound(rec.cost_rows()),
    ]
    for fig in figs:
        buf = io.BytesIO()
        fig.savefig(buf, format="png")
        assert buf.getvalue()[:4] == b"\x89PNG"
        assert fig._repr_png_()[:4] == b"\x89PNG"
    with pytest.raises(ConfigError):
        plots.plot_cost_vs_bound([])
