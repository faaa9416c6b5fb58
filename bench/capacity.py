"""Capacity planner benchmark (issue 6): W1–W4 × {KS-default + CA, KS+CA made N+1, FFD, ours} + bounds.

``run()`` plans every workload fixture in ``bench/workloads/*.yaml`` with each algorithm, each in a
forked child process (so peak RSS is per run), and returns one row per (workload, algorithm):
nodes, $/h, ratio to the lower bound, violations, node-N+1 %, zone-N+1 %, wall time, peak RSS. Rows
are also written to ``bench/results/capacity.json``.

Algorithms:
- ``ks-ca``: kube-scheduler default scoring + cluster-autoscaler estimator/least-waste, from one
  m5.2xlarge per zone (the Terraform default) — what EKS + CA builds, with no N+1 reserve;
- ``ks-ca+n1``: the same, then empty nodes added (of the start type) until every single node loss
  re-places (an operator's overprovisioning);
- ``ks-most``: the same with kube-scheduler's MostAllocated scoring (the bin-packing profile);
- ``karpenter``: Karpenter's provisioning scheduler (CPU-then-memory order, in-flight claims with
  fewest pods first, cheapest type that holds the claim), no consolidation, no N+1 reserve;
  ``karpenter+n1`` adds empty nodes until every single node loss re-places;
- ``ffd``: first-fit decreasing with the hard constraints, cheapest single type, no reserve;
- ``ours``: ``atlbook.capacity.recommend`` (9 s budget, deterministic; up to 2 instance types: the
  pattern model, plans zone by zone (``zonewise``), or the heuristics);
- ``bound``: the best lower bound for single-type plans (``ratio``; ``bound_by`` names it);
  ``bound_any`` holds for every plan mixing any number of the catalogue types the planner may use
  (``ratio_any``; ``bound_any_by`` names it: ``lp``, ``aggregate``, ``patterns`` or ``scenario``, the
  zone-content scenario bound :func:`atlbook.capacity.patterns.scenario_bound`, computed here;
  ``patterns`` is the larger of the planner's and a :data:`BOUND_TIME` rerun's proven bound). The
  bench's own bound solves run after planning: ``bench_bounds_s``, not in ``wall_s``.

Raw ``ks-ca`` / ``ks-most`` / ``karpenter`` / ``ffd`` plans are not N+1 (see ``node_n1``): the target
"never costlier than KS + CA" is judged against ``ks-ca+n1``, the cheapest way an operator gets the same
guarantee from EKS + CA; both rows are kept.

Environment: ``BENCH_CAPACITY_ONLY=W1,W2`` restricts the workloads; ``BENCH_CAPACITY_TIME`` sets the
planner's budget (default 9 s, so that the whole call incl. bounds stays < 10 s).
"""

from __future__ import annotations

import json
import multiprocessing
import os
import pathlib
import resource
import time
from typing import Any

import yaml

from atlbook.capacity import baselines, classes, heuristics, patterns, plan, workload
from atlbook.capacity.catalogue import load_catalogue
from atlbook.capacity.cluster import ClusterState
from atlbook.capacity.survivability import simulate

HERE = pathlib.Path(__file__).resolve().parent
WORKLOADS = HERE / "workloads"
RESULTS = HERE / "results" / "capacity.json"
FAMILIES = ["m5", "m6i", "m7i", "r6i", "c6i"]
ALGORITHMS = ["ks-ca", "ks-ca+n1", "ks-most", "karpenter", "karpenter+n1", "ffd", "ours"]
START_TYPE = "m5.2xlarge"
MAX_TYPES = 2
"""``ours`` may mix up to this many instance types; ``bound_any`` holds for any mix of the same space."""
BOUND_TIME = 20.0
"""Deterministic seconds the bench gives :func:`atlbook.capacity.patterns.mixed_bound` after planning
(the planner itself gives it 0.3 s); the larger of the two proven bounds is reported."""


def fixtures() -> list[str]:
    """Workload ids in run order (W1 … W4), filtered by ``BENCH_CAPACITY_ONLY``."""
    keys = sorted(p.stem for p in WORKLOADS.glob("W*.yaml"))
    keys.sort(
        key=lambda k: (
            k.split("-")[0],
            int(k.split("-")[1]) if k.count("-") and k.split("-")[1].isdigit() else 0,
            k,
        )
    )
    only = os.environ.get("BENCH_CAPACITY_ONLY")
    if only:
        keys = [k for k in keys if k in only.split(",")]
    return keys


def load(key: str) -> tuple[workload.Workload, list[str]]:
    """The workload and zones of fixture ``key``."""
    doc = yaml.safe_load((WORKLOADS / f"{key}.yaml").read_text())
    return workload.workload_from_dict(doc), list(doc["zones"])


def _state_metrics(state: ClusterState) -> dict[str, Any]:
    rep = simulate(state)
    return {
        "nodes": len(state.used_nodes()),
        "cost": round(state.cost(), 4),
        "types": ",".join(sorted({state.nodes[n].shape.name for n in state.used_nodes()})),
        "violations": len(state.violations()),
        "node_n1": round(rep.node_pct, 1),
        "zone_n1": round(rep.zone_pct, 1),
        "stranded_pinned_zone": sum(sum(s.stranded_pinned.values()) for s in rep.zones),
    }


def _one(key: str, alg: str, budget: float) -> dict[str, Any]:
    w, zones = load(key)
    cat = load_catalogue(FAMILIES)
    shapes = plan.shapes_for(cat, w)
    start = next((s for s in shapes if s.name == START_TYPE), shapes[0])
    t0 = time.monotonic()
    extra: dict[str, Any] = {}
    planned: float | None = None
    if alg == "ours":
        rec = plan.recommend(w, cat, zones, time_limit=budget, seed=0, max_types=MAX_TYPES)
        planned = time.monotonic() - t0  # the planner's wall time; the bench's own bound is extra
        state = rec.state
        longer = None
        space = plan.mix_space(cat, w, max_types=MAX_TYPES)
        scenario = patterns.scenario_bound(w, space, zones, seed=0)
        if classes.aggregatable(w, zones):
            longer = patterns.mixed_bound(w, space, zones, deterministic_time=BOUND_TIME, seed=0)
        any_mix = {
            "lp": rec.bounds.lp,
            "aggregate": rec.bounds.aggregate,
            "patterns": max(rec.bounds.patterns, longer or 0.0),
            "scenario": scenario or 0.0,
        }
        any_by = max(any_mix, key=lambda k: any_mix[k])
        best = max(rec.bounds.homogeneous, any_mix[any_by])
        extra = {
            "status": rec.solver_status,
            "method": rec.algorithm,
            "bound": round(best, 4),
            "bound_by": any_by if any_mix[any_by] >= rec.bounds.homogeneous else "homogeneous",
            "bound_any": round(any_mix[any_by], 4),
            "bound_any_by": any_by,
            "bound_lp": round(rec.bounds.lp, 4),
            "bound_aggregate": round(rec.bounds.aggregate, 4),
            "bound_patterns": round(any_mix["patterns"], 4),
            "bound_patterns_planner": round(rec.bounds.patterns, 4),
            "bound_scenario": round(scenario, 4) if scenario is not None else None,
            "bound_homogeneous": round(rec.bounds.homogeneous, 4),
            "bench_bounds_s": round(time.monotonic() - t0 - planned, 3),
        }
    elif alg in ("ks-ca", "ks-ca+n1"):
        state = baselines.ks_ca(w, shapes, zones, seed=0, initial=start)
        if alg == "ks-ca+n1":
            state = heuristics.make_survivable(state, max_extra=10000)
    elif alg == "ks-most":
        state = baselines.ks_ca(w, shapes, zones, seed=0, initial=start, strategy="most")
    elif alg in ("karpenter", "karpenter+n1"):
        state = baselines.karpenter_like(w, shapes, zones, seed=0)
        if alg == "karpenter+n1":
            state = heuristics.make_survivable(state, max_extra=10000)
    elif alg == "ffd":
        state = baselines.ffd_baseline(w, shapes, zones)
    else:
        raise ValueError(alg)
    wall = time.monotonic() - t0 if planned is None else planned
    row = {"workload": key, "pods": w.pods, "algorithm": alg, "wall_s": round(wall, 3)}
    row.update(_state_metrics(state))
    row.update(extra)
    row["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    return row


def _child(q: Any, key: str, alg: str, budget: float) -> None:
    try:
        q.put(_one(key, alg, budget))
    except Exception as e:  # reported as a row, the benchmark goes on
        q.put({"workload": key, "algorithm": alg, "error": f"{type(e).__name__}: {e}"})


def _run_forked(key: str, alg: str, budget: float) -> dict[str, Any]:
    ctx = multiprocessing.get_context("fork")
    q = ctx.Queue()
    p = ctx.Process(target=_child, args=(q, key, alg, budget))
    p.start()
    row: dict[str, Any] = q.get()
    p.join()
    return row


def _targets(key: str, got: list[dict[str, Any]]) -> str:
    """The issue's pass targets for ``ours`` on one workload: "ok", or the ones missed."""
    ours = next(r for r in got if r["algorithm"] == "ours")
    ks = next((r for r in got if r["algorithm"] == "ks-ca+n1" and "cost" in r), None)
    limit = 1.10 if key.startswith("W4") else 1.05
    missed = []
    if ours["violations"]:
        missed.append(f"{ours['violations']} violations")
    if ours["node_n1"] < 100.0:
        missed.append(f"node-N+1 {ours['node_n1']} %")
    if ours["ratio_any"] is None or ours["ratio_any"] > limit:
        missed.append(f"ratio_any {ours['ratio_any']} > {limit}")
    if ks is not None and ours["cost"] > ks["cost"] + 1e-9:
        missed.append(f"costlier than ks-ca+n1 ({ks['cost']})")
    if ours["pods"] >= 5000 and ours["wall_s"] >= 10.0:
        missed.append(f"{ours['pods']} pods in {ours['wall_s']} s ≥ 10 s")
    return "ok" if not missed else "; ".join(missed)


def run() -> list[dict[str, Any]]:
    """Run the benchmark, write ``bench/results/capacity.json`` and return the rows."""
    budget = float(os.environ.get("BENCH_CAPACITY_TIME", "9"))
    rows: list[dict[str, Any]] = []
    for key in fixtures():
        got = [_run_forked(key, alg, budget) for alg in ALGORITHMS]
        ours = next((r for r in got if r["algorithm"] == "ours" and "bound" in r), None)
        if ours is not None:
            for r in got:
                if "cost" in r:
                    r["ratio"] = round(r["cost"] / ours["bound"], 4) if ours["bound"] else None
                    r["ratio_any"] = round(r["cost"] / ours["bound_any"], 4) if ours["bound_any"] else None
            got.append(
                {
                    "workload": key,
                    "pods": ours["pods"],
                    "algorithm": "bound",
                    "cost": ours["bound"],
                    "bound_by": ours["bound_by"],
                    "bound_any": ours["bound_any"],
                    "bound_any_by": ours["bound_any_by"],
                    "bound_lp": ours["bound_lp"],
                    "bound_aggregate": ours["bound_aggregate"],
                    "bound_patterns": ours["bound_patterns"],
                    "bound_scenario": ours["bound_scenario"],
                    "bound_homogeneous": ours["bound_homogeneous"],
                }
            )
            ours["targets"] = _targets(key, got)
        rows.extend(got)
        print(
            " ".join(f"{r['algorithm']}={r.get('cost', r.get('error'))}" for r in got), f"[{key}]", flush=True
        )
        if ours is not None:
            print(
                f"  [{key}] ours ${ours['cost']}/h ({ours['types']}, {ours['status']}): "
                f"ratio {ours['ratio']} vs single-type bound ${ours['bound']} ({ours['bound_by']}); "
                f"ratio_any {ours['ratio_any']} vs any-mix bound ${ours['bound_any']} "
                f"({ours['bound_any_by']}); targets: {ours['targets']}",
                flush=True,
            )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(rows, indent=1))
    print(NOTE, flush=True)
    return rows


NOTE = (
    "note: ks-ca, ks-most, karpenter and ffd plans are not N+1 (node_n1 < 100); 'never costlier than "
    "KS+CA' is judged against ks-ca+n1 (KS+CA plus the empty nodes that make it survive any node loss). "
    "ratio = cost / best bound for single-type plans (bound_by names it; < 1: a mix cheaper than any "
    "single-type plan can be); ratio_any = cost / bound "
    "valid for every plan mixing any number of the catalogue types ours may use (bound_any_by names it: "
    "lp, aggregate, patterns, or scenario = per-zone node-loss scenarios over zone contents). targets "
    "(ours): 0 violations, 100 % node-N+1, ratio_any ≤ 1.05 on W1–W3 and ≤ 1.10 on W4, never costlier "
    "than ks-ca+n1, 5,000 pods in < 10 s."
)


COLUMNS = [
    "workload",
    "pods",
    "algorithm",
    "nodes",
    "types",
    "cost",
    "ratio",
    "ratio_any",
    "bound_by",
    "bound_any_by",
    "violations",
    "node_n1",
    "zone_n1",
    "wall_s",
    "peak_rss_mb",
    "status",
    "method",
    "targets",
]
