"""kube-scheduler, reduced to its filters and a simple spreading score, on the simulated clock.

Filters run in the default profile's order and a node fails at the first one that rejects it
(``NodeResourcesFit`` may give several reasons): NodeUnschedulable, TaintToleration, NodeAffinity
(nodeSelector, required node affinity incl. ``matchFields`` on ``metadata.name``), NodeResourcesFit
(cpu, memory, pod slots from ``status.allocatable``), VolumeBinding/VolumeZone (PV node affinity, unbound
Immediate claims), PodTopologySpread (``DoNotSchedule``), InterPodAffinity (required affinity,
anti-affinity and existing pods' anti-affinity, the symmetric case). Pending pods are taken in
PriorityClass order (higher first), then age. A pod that fits nowhere gets ``PodScheduled=False`` and a
``FailedScheduling`` event worded like kube-scheduler's. Feasible nodes are scored to spread pods of the
same owner over zones and nodes, then by least requested memory. Preemption is not implemented.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any

from .admission import pod_requests
from .models import Obj, rfc3339
from .quantity import parse_quantity
from .selectors import match_label_selector

if TYPE_CHECKING:
    from .emulator import KubeEmulator

__all__ = [
    "FAILED_SCHEDULING_MSG",
    "REASON_AFFINITY",
    "REASON_ANTI_AFFINITY",
    "REASON_EXISTING_ANTI_AFFINITY",
    "REASON_NODE_AFFINITY",
    "REASON_SPREAD",
    "REASON_UNSCHEDULABLE",
    "REASON_VOLUME_ZONE",
    "Scheduler",
    "failed_scheduling_message",
    "node_matches_affinity",
    "tolerates",
]

FAILED_SCHEDULING_MSG = "0/{total} nodes are available: {reasons}."
REASON_UNSCHEDULABLE = "node(s) were unschedulable"
REASON_TAINT = "node(s) had untolerated taint {{{key}: {value}}}"
REASON_NODE_AFFINITY = "node(s) didn't match Pod's node affinity/selector"
REASON_VOLUME_ZONE = "node(s) had volume node affinity conflict"
REASON_SPREAD = "node(s) didn't match pod topology spread constraints"
REASON_AFFINITY = "node(s) didn't match pod affinity rules"
REASON_ANTI_AFFINITY = "node(s) didn't match pod anti-affinity rules"
REASON_EXISTING_ANTI_AFFINITY = "node(s) didn't satisfy existing pods anti-affinity rules"
ZONE = "topology.kubernetes.io/zone"


def failed_scheduling_message(total: int, reasons: Counter[str]) -> str:
    """``0/6 nodes are available: 2 Insufficient memory, 4 node(s) ...``: counts sorted as text."""
    parts = sorted(f"{n} {r}" for r, n in reasons.items())
    return FAILED_SCHEDULING_MSG.format(total=total, reasons=", ".join(parts))


def tolerates(tolerations: list[dict[str, Any]], taint: dict[str, Any]) -> bool:
    """Whether any toleration matches ``taint`` (key/operator/value/effect; ``Exists`` with no key = all)."""
    for t in tolerations or []:
        if t.get("effect") and t["effect"] != taint.get("effect"):
            continue
        op = t.get("operator", "Equal")
        if not t.get("key"):
            if op == "Exists":
                return True
            continue
        if t["key"] != taint.get("key"):
            continue
        if op == "Exists" or t.get("value", "") == taint.get("value", ""):
            return True
    return False


def _expr_ok(expr: dict[str, Any], value: str | None) -> bool:
    op, vals = expr.get("operator"), expr.get("values") or []
    if op == "In":
        return value is not None and value in vals
    if op == "NotIn":
        return value is None or value not in vals
    if op == "Exists":
        return value is not None
    if op == "DoesNotExist":
        return value is None
    if op in ("Gt", "Lt") and value is not None and vals:
        try:
            return int(value) > int(vals[0]) if op == "Gt" else int(value) < int(vals[0])
        except ValueError:
            return False
    return False


def node_matches_affinity(pod: Obj, node: Obj) -> bool:
    """nodeSelector and required node affinity (terms ORed, expressions ANDed, ``matchFields`` on name)."""
    spec = pod.get("spec", {})
    if not spec.get("nodeSelector") and not spec.get("affinity"):
        return True
    labels = node["metadata"].get("labels") or {}
    for k, v in (spec.get("nodeSelector") or {}).items():
        if labels.get(k) != v:
            return False
    req = ((spec.get("affinity") or {}).get("nodeAffinity") or {}).get(
        "requiredDuringSchedulingIgnoredDuringExecution"
    ) or {}
    terms = req.get("nodeSelectorTerms") or []
    if not terms:
        return True
    for term in terms:
        ok = all(_expr_ok(e, labels.get(e.get("key", ""))) for e in term.get("matchExpressions") or [])
        ok = ok and all(
            _expr_ok(e, node["metadata"]["name"] if e.get("key") == "metadata.name" else None)
            for e in term.get("matchFields") or []
        )
        if ok and (term.get("matchExpressions") or term.get("matchFields")):
            return True
    return False


class _NodeInfo:
    __slots__ = (
        "obj",
        "name",
        "labels",
        "cpu",
        "mem",
        "pods",
        "used_cpu",
        "used_mem",
        "used_pods",
        "taints",
        "unschedulable",
        "assigned",
    )

    def __init__(self, obj: Obj) -> None:
        self.obj = obj
        self.name: str = obj["metadata"]["name"]
        self.labels: dict[str, str] = obj["metadata"].get("labels") or {}
        st = obj.get("status") or {}
        alloc = st.get("allocatable") or st.get("capacity") or {}
        self.cpu = parse_quantity(alloc.get("cpu", "0"))
        self.mem = parse_quantity(alloc.get("memory", "0"))
        self.pods = parse_quantity(alloc.get("pods", "110"))
        self.used_cpu = 0.0
        self.used_mem = 0.0
        self.used_pods = 0
        self.taints: list[dict[str, Any]] = [
            t
            for t in (obj.get("spec") or {}).get("taints") or []
            if t.get("effect") in ("NoSchedule", "NoExecute")
        ]
        self.unschedulable = bool((obj.get("spec") or {}).get("unschedulable"))
        self.assigned: list[Obj] = []


def _terms(pod: Obj, kind: str) -> list[dict[str, Any]]:
    aff = ((pod.get("spec") or {}).get("affinity") or {}).get(kind) or {}
    return list(aff.get("requiredDuringSchedulingIgnoredDuringExecution") or [])


class Scheduler:
    """Binds pending pods to nodes; see the module docstring for the filters."""

    component = "default-scheduler"

    def __init__(self, emu: KubeEmulator) -> None:
        """Schedule for ``emu`` (its store, clock, events and volume binder)."""
        self.emu = emu
        self._failed: dict[str, tuple[str, float]] = {}
        self._anti_assigned: list[tuple[Obj, _NodeInfo]] = []
        self.retry_seconds = 5.0

    def reset(self) -> None:
        """Forget back-off state."""
        self._failed.clear()

    def reconcile(self, changed: bool) -> None:
        """One scheduling cycle over pending pods; ``changed``: the cluster changed since the last one."""
        store = self.emu.store
        now = self.emu.clock.monotonic()
        pending = [
            p
            for p in store.iter("pods")
            if not p["spec"].get("nodeName")
            and not p["metadata"].get("deletionTimestamp")
            and p["spec"].get("schedulerName", "default-scheduler") == "default-scheduler"
            and (p.get("status") or {}).get("phase", "Pending") == "Pending"
        ]
        if not pending:
            return
        todo = []
        for p in pending:
            f = self._failed.get(p["metadata"]["uid"])
            if f is not None and not changed and now - f[1] < self.retry_seconds:
                continue
            todo.append(p)
        if not todo:
            return
        todo.sort(
            key=lambda p: (
                -int(p["spec"].get("priority", 0)),
                p["metadata"].get("creationTimestamp", ""),
                p["metadata"]["name"],
            )
        )
        nodes = [_NodeInfo(n) for n in store.iter("nodes")]
        by_name = {n.name: n for n in nodes}
        assigned: list[tuple[Obj, _NodeInfo]] = []
        for p in store.iter("pods"):
            node = p["spec"].get("nodeName")
            if not node or (p.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
                continue
            ni = by_name.get(node)
            if ni is None:
                continue
            r = pod_requests(p)
            ni.used_cpu += r["cpu"]
            ni.used_mem += r["memory"]
            ni.used_pods += 1
            ni.assigned.append(p)
            assigned.append((p, ni))
        self._anti_assigned = [(p, ni) for p, ni in assigned if _terms(p, "podAntiAffinity")]
        owner_count: dict[tuple[str, str], int] = Counter()
        zone_owner_count: dict[tuple[str, str], int] = Counter()
        for p, ni in assigned:
            for o in p["metadata"].get("ownerReferences") or []:
                owner_count[(ni.name, o.get("uid", ""))] += 1
                zone_owner_count[(ni.labels.get(ZONE, ""), o.get("uid", ""))] += 1
        for pod in todo:
            if store.peek("pods", pod["metadata"]["namespace"], pod["metadata"]["name"]) is not pod:
                continue
            chosen, message = self._schedule_one(pod, nodes, assigned, owner_count, zone_owner_count)
            uid = pod["metadata"]["uid"]
            if chosen is None:
                prev = self._failed.get(uid)
                self._failed[uid] = (message, now)
                if prev is None or prev[0] != message or changed:
                    self._mark_unschedulable(pod, message)
                if message.startswith("0/"):
                    self._preempt(pod, nodes, assigned)
                continue
            self._failed.pop(uid, None)
            if not self.emu.volumes.bind_for_pod(pod, chosen.obj):
                continue
            bound = self._bind(pod, chosen.name)
            if bound is None:
                continue
            r = pod_requests(pod)
            chosen.used_cpu += r["cpu"]
            chosen.used_mem += r["memory"]
            chosen.used_pods += 1
            chosen.assigned.append(bound)
            assigned.append((bound, chosen))
            if _terms(bound, "podAntiAffinity"):
                self._anti_assigned.append((bound, chosen))
            for o in pod["metadata"].get("ownerReferences") or []:
                owner_count[(chosen.name, o.get("uid", ""))] += 1
                zone_owner_count[(chosen.labels.get(ZONE, ""), o.get("uid", ""))] += 1

    # -- one pod ---------------------------------------------------------------------------------------
    def _schedule_one(
        self,
        pod: Obj,
        nodes: list[_NodeInfo],
        assigned: list[tuple[Obj, _NodeInfo]],
        owner_count: dict[tuple[str, str], int],
        zone_owner_count: dict[tuple[str, str], int],
    ) -> tuple[_NodeInfo | None, str]:
        spec = pod["spec"]
        if not nodes:
            return None, "no nodes available to schedule pods"
        vol = self.emu.volumes.pod_volume_constraints(pod)
        if isinstance(vol, str):
            return None, FAILED_SCHEDULING_MSG.format(total=len(nodes), reasons=vol)
        tolerations = spec.get("tolerations") or []
        req = pod_requests(pod)
        ns = pod["metadata"]["namespace"]
        labels = pod["metadata"].get("labels") or {}
        anti_terms = _terms(pod, "podAntiAffinity")
        aff_terms = _terms(pod, "podAffinity")
        spread = [
            c
            for c in spec.get("topologySpreadConstraints") or []
            if c.get("whenUnsatisfiable", "DoNotSchedule") == "DoNotSchedule"
        ]
        anti_domains = [self._domains(t, ns, assigned) for t in anti_terms]
        aff_domains = [self._domains(t, ns, assigned) for t in aff_terms]
        existing_anti = self._existing_anti(pod, ns, labels, self._anti_assigned)
        spread_counts = [self._spread_counts(c, pod, nodes, assigned) for c in spread]
        reasons: Counter[str] = Counter()
        feasible: list[_NodeInfo] = []
        for n in nodes:
            if n.unschedulable and not tolerates(
                tolerations, {"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}
            ):
                reasons[REASON_UNSCHEDULABLE] += 1
                continue
            bad = next((t for t in n.taints if not tolerates(tolerations, t)), None)
            if bad is not None:
                reasons[REASON_TAINT.format(key=bad.get("key", ""), value=bad.get("value", ""))] += 1
                continue
            if not node_matches_affinity(pod, n.obj):
                reasons[REASON_NODE_AFFINITY] += 1
                continue
            fit: list[str] = []
            if n.used_pods + 1 > n.pods:
                fit.append("Too many pods")
            if req["cpu"] and n.used_cpu + req["cpu"] > n.cpu + 1e-9:
                fit.append("Insufficient cpu")
            if req["memory"] and n.used_mem + req["memory"] > n.mem:
                fit.append("Insufficient memory")
            if fit:
                for f in fit:
                    reasons[f] += 1
                continue
            if vol and not all(
                node_matches_affinity(
                    {
                        "spec": {
                            "affinity": {
                                "nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": na}
                            }
                        }
                    },
                    n.obj,
                )
                for na in vol
            ):
                reasons[REASON_VOLUME_ZONE] += 1
                continue
            if spread and not self._spread_ok(spread, spread_counts, n):
                reasons[REASON_SPREAD] += 1
                continue
            if not all(
                self._affinity_ok(t, d, n, labels) for t, d in zip(aff_terms, aff_domains, strict=True)
            ):
                reasons[REASON_AFFINITY] += 1
                continue
            if any(
                (t.get("topologyKey", ""), n.labels.get(t.get("topologyKey", ""))) in d[0]
                for t, d in zip(anti_terms, anti_domains, strict=True)
            ):
                reasons[REASON_ANTI_AFFINITY] += 1
                continue
            if any((k, n.labels.get(k)) in existing_anti for k in {k for k, _v in existing_anti}):
                reasons[REASON_EXISTING_ANTI_AFFINITY] += 1
                continue
            feasible.append(n)
        if not feasible:
            return None, failed_scheduling_message(len(nodes), reasons)
        owners = [o.get("uid", "") for o in pod["metadata"].get("ownerReferences") or []]

        def score(n: _NodeInfo) -> tuple[float, ...]:
            same_zone = sum(zone_owner_count.get((n.labels.get(ZONE, ""), o), 0) for o in owners)
            same_node = sum(owner_count.get((n.name, o), 0) for o in owners)
            frac = (n.used_mem + req["memory"]) / n.mem if n.mem else 1.0
            cfrac = (n.used_cpu + req["cpu"]) / n.cpu if n.cpu else 1.0
            return (same_node, same_zone, max(frac, cfrac), n.used_pods)

        return min(feasible, key=lambda n: (score(n), n.name)), ""

    @staticmethod
    def _domains(
        term: dict[str, Any], ns: str, assigned: list[tuple[Obj, _NodeInfo]]
    ) -> tuple[set[tuple[str, str | None]], bool]:
        key = term.get("topologyKey", "")
        namespaces = set(term.get("namespaces") or []) or {ns}
        any_ns = term.get("namespaceSelector") == {}
        sel = term.get("labelSelector")
        out: set[tuple[str, str | None]] = set()
        for p, ni in assigned:
            if not any_ns and p["metadata"]["namespace"] not in namespaces:
                continue
            if match_label_selector(sel, p["metadata"].get("labels") or {}):
                v = ni.labels.get(key)
                if v is not None:
                    out.add((key, v))
        return out, not out

    @staticmethod
    def _affinity_ok(
        term: dict[str, Any],
        dom: tuple[set[tuple[str, str | None]], bool],
        n: _NodeInfo,
        labels: dict[str, str],
    ) -> bool:
        key = term.get("topologyKey", "")
        value = n.labels.get(key)
        if value is None:
            return False
        if (key, value) in dom[0]:
            return True
        # no pod matches anywhere: the first pod of a group that matches its own term may go anywhere
        return dom[1] and match_label_selector(term.get("labelSelector"), labels)

    @staticmethod
    def _existing_anti(
        pod: Obj, ns: str, labels: dict[str, str], assigned: list[tuple[Obj, _NodeInfo]]
    ) -> set[tuple[str, str | None]]:
        out: set[tuple[str, str | None]] = set()
        for p, ni in assigned:
            for t in _terms(p, "podAntiAffinity"):
                namespaces = set(t.get("namespaces") or []) or {p["metadata"]["namespace"]}
                if t.get("namespaceSelector") != {} and ns not in namespaces:
                    continue
                if match_label_selector(t.get("labelSelector"), labels):
                    key = t.get("topologyKey", "")
                    if ni.labels.get(key) is not None:
                        out.add((key, ni.labels.get(key)))
        return out

    @staticmethod
    def _spread_counts(
        c: dict[str, Any], pod: Obj, nodes: list[_NodeInfo], assigned: list[tuple[Obj, _NodeInfo]]
    ) -> dict[str, int]:
        key = c.get("topologyKey", "")
        counts: dict[str, int] = {}
        for n in nodes:
            if key in n.labels and node_matches_affinity(pod, n.obj):
                counts.setdefault(n.labels[key], 0)
        ns = pod["metadata"]["namespace"]
        for p, ni in assigned:
            if p["metadata"]["namespace"] != ns or p["metadata"].get("deletionTimestamp"):
                continue
            v = ni.labels.get(key)
            if v in counts and match_label_selector(
                c.get("labelSelector"), p["metadata"].get("labels") or {}
            ):
                counts[v] += 1
        return counts

    @staticmethod
    def _spread_ok(spread: list[dict[str, Any]], counts: list[dict[str, int]], n: _NodeInfo) -> bool:
        for c, cnt in zip(spread, counts, strict=True):
            v = n.labels.get(c.get("topologyKey", ""))
            if v is None or v not in cnt:
                return False
            low = min(cnt.values()) if cnt else 0
            if cnt[v] + 1 - low > int(c.get("maxSkew", 1)):
                return False
        return True

    # -- preemption ------------------------------------------------------------------------------------
    def _preempt(self, pod: Obj, nodes: list[_NodeInfo], assigned: list[tuple[Obj, _NodeInfo]]) -> None:
        """DefaultPreemption, simplified: on the node where evicting the fewest lower-priority pods (lowest
        priority first) lets ``pod`` pass every filter, delete those victims and nominate the node."""
        spec = pod["spec"]
        prio = int(spec.get("priority", 0))
        if spec.get("preemptionPolicy") == "Never":
            return
        nominated = (pod.get("status") or {}).get("nominatedNodeName")
        if nominated and any(
            p["metadata"].get("deletionTimestamp") for p in self.emu.store.pods_on_node(nominated)
        ):
            return  # victims are still terminating
        best: tuple[tuple[int, int], _NodeInfo, list[Obj]] | None = None
        saved = self._anti_assigned
        try:
            for n in nodes:
                lower = sorted(
                    (
                        p
                        for p in n.assigned
                        if int(p["spec"].get("priority", 0)) < prio
                        and not p["metadata"].get("deletionTimestamp")
                    ),
                    key=lambda p: (int(p["spec"].get("priority", 0)), p["metadata"]["name"]),
                )
                if not lower:
                    continue
                victims = self._fewest_victims(pod, n, lower, assigned)
                if victims is None:
                    continue
                rank = (len(victims), max(int(v["spec"].get("priority", 0)) for v in victims))
                if best is None or rank < best[0]:
                    best = (rank, n, victims)
        finally:
            self._anti_assigned = saved
        if best is None:
            return
        _rank, node, victims = best
        for v in victims:
            self.emu.events.record(
                v,
                "Normal",
                "Preempted",
                f"Preempted by pod {pod['metadata']['uid']} on node {node.name}",
                self.component,
            )
            self.emu.store.delete("pods", v["metadata"]["namespace"], v["metadata"]["name"])

        def nominate(p: Obj) -> Obj:
            p.setdefault("status", {})["nominatedNodeName"] = node.name
            return p

        self.emu.store.mutate(
            "pods", pod["metadata"]["namespace"], pod["metadata"]["name"], nominate, subresource="status"
        )

    def _fewest_victims(
        self, pod: Obj, n: _NodeInfo, lower: list[Obj], assigned: list[tuple[Obj, _NodeInfo]]
    ) -> list[Obj] | None:
        def fits(removed: list[Obj]) -> bool:
            gone = {p["metadata"]["uid"] for p in removed}
            trial = _NodeInfo(n.obj)
            trial.used_cpu = n.used_cpu - sum(pod_requests(p)["cpu"] for p in removed)
            trial.used_mem = n.used_mem - sum(pod_requests(p)["memory"] for p in removed)
            trial.used_pods = n.used_pods - len(removed)
            trial.assigned = [p for p in n.assigned if p["metadata"]["uid"] not in gone]
            rest = [(p, trial if ni is n else ni) for p, ni in assigned if p["metadata"]["uid"] not in gone]
            self._anti_assigned = [(p, ni) for p, ni in rest if _terms(p, "podAntiAffinity")]
            chosen, _msg = self._schedule_one(pod, [trial], rest, Counter(), Counter())
            return chosen is not None

        if not fits(lower):
            return None
        victims = list(lower)
        for p in sorted(
            lower, key=lambda p: -int(p["spec"].get("priority", 0))
        ):  # reprieve the highest first
            trial = [v for v in victims if v is not p]
            if fits(trial):
                victims = trial
        return victims

    # -- writes ----------------------------------------------------------------------------------------
    def _bind(self, pod: Obj, node: str) -> Obj | None:
        now = rfc3339(self.emu.clock.now())

        def fn(p: Obj) -> Obj | None:
            if p["spec"].get("nodeName"):
                return None
            p["spec"]["nodeName"] = node
            st = p.setdefault("status", {})
            conds = [c for c in st.get("conditions") or [] if c.get("type") != "PodScheduled"]
            conds.append(
                {"type": "PodScheduled", "status": "True", "lastProbeTime": None, "lastTransitionTime": now}
            )
            st["conditions"] = conds
            return p

        bound = self.emu.store.mutate("pods", pod["metadata"]["namespace"], pod["metadata"]["name"], fn)
        if bound is not None:
            self.emu.events.record(
                bound,
                "Normal",
                "Scheduled",
                f"Successfully assigned {pod['metadata']['namespace']}/{pod['metadata']['name']} to {node}",
                self.component,
            )
        return bound

    def _mark_unschedulable(self, pod: Obj, message: str) -> None:
        now = rfc3339(self.emu.clock.now())

        def fn(p: Obj) -> Obj:
            st = p.setdefault("status", {})
            conds = [c for c in st.get("conditions") or [] if c.get("type") != "PodScheduled"]
            conds.append(
                {
                    "type": "PodScheduled",
                    "status": "False",
                    "reason": "Unschedulable",
                    "message": message,
                    "lastProbeTime": None,
                    "lastTransitionTime": now,
                }
            )
            st["conditions"] = conds
            return p

        updated = self.emu.store.mutate(
            "pods", pod["metadata"]["namespace"], pod["metadata"]["name"], fn, subresource="status"
        )
        self.emu.events.record(updated or pod, "Warning", "FailedScheduling", message, self.component)
