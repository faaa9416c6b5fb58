"""Post-checks after provisioning: the table the record keeps. Read-only.

One row per check and subject (:class:`Check`):

- ``running`` — every product node answers ``/status`` RUNNING (HTTP 200 + RUNNING, reference §8.1)
  through the pod proxy, **and** is listed (active) by the product's own cluster-nodes endpoint;
- ``placement`` — no two nodes of a product on one worker, and (with ≥ 2 zones) none sharing a zone
  while another zone has fewer (zone skew ≤ 1);
- ``shared-home`` — every pod of a product mounts the same ReadWriteMany claim at the shared-home path
  and that claim is Bound. Writing and reading a marker file needs ``pods/exec``: it is tried first
  (write ``.atlbook-postcheck-<pod>`` from each pod, list them from each pod, remove them); where exec
  is refused (no ``create``/``get`` on ``pods/exec``) or not offered, the row says why and the check
  stands on the structural evidence above;
- ``network-policy`` — every pod in the product namespaces is selected by a default-deny policy
  (empty pod selector, Ingress + Egress), and a NetworkPolicy engine is running;
- ``sticky-ingress`` — each product Ingress has cookie affinity ``persistent`` and an ingress class,
  and the ingress controller is Ready;
- ``connection-budget`` — Σ nodes × pool max + surge + reserve ≤ the parameter group's
  ``max_connections`` as RDS reports it;
- ``cloudfront-origin`` — the distribution's origin is the ingress load balancer's host name;
- ``product-databases`` — every enabled product's database exists in RDS (read through the target's
  ``database_tunnel``; without one the row fails, saying they could not be verified).
"""

from __future__ import annotations

import base64
import dataclasses
import uuid
from collections import Counter
from collections.abc import Mapping
from typing import Any

from atlbook import errors
from atlbook.clients import k8s, secrets
from atlbook.clients.bundle import Clients
from atlbook.products import client as product_client
from atlbook.provisioning import _aws, databases, observe
from atlbook.provisioning.desired import INGRESS_LB, SHARED_HOME, selector
from atlbook.provisioning.model import DesiredState

__all__ = ["Check", "all_passed", "run", "table"]


@dataclasses.dataclass(frozen=True)
class Check:
    """One post-check row: ``check`` (kind), ``subject`` (product / object), ``ok``, ``detail``."""

    check: str
    subject: str
    ok: bool
    detail: str


def _label_selector(labels: Mapping[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))


def _auth(clients: Clients, namespace: str, product: str) -> product_client.BasicAuth | None:
    try:
        data = clients.read_secret_data(namespace, f"{product}-admin")
    except errors.NotFound:
        return None
    user = base64.b64decode(data.get("username", "")).decode()
    password = base64.b64decode(data.get("password", "")).decode()
    secrets.register(password)
    return product_client.BasicAuth(user, password)


def _running(clients: Clients, product: str, facts: Mapping[str, Any], pods: list[str]) -> list[Check]:
    ns = str(facts["namespace"])
    ctx_path = str(facts.get("context_path", ""))
    out: list[Check] = []
    not_running = []
    for pod in pods:
        try:
            status = product_client.ProductClient.for_pod(
                clients, product, ns, pod, context_path=ctx_path
            ).status()
            if not status.running:
                not_running.append(f"{pod}: {status.state} (HTTP {status.http_status})")
        except errors.ApiError as e:
            not_running.append(f"{pod}: {e}")
    want = int(facts["replicas"])
    ok = not not_running and len(pods) == want
    detail = "; ".join(not_running) or f"{len(pods)}/{want} nodes RUNNING"
    nodes_detail = "not asked (no RUNNING node)"
    listed_ok = False
    if pods and len(not_running) < len(pods):
        auth = _auth(clients, ns, product)
        try:
            nodes = product_client.ProductClient.for_pod(
                clients, product, ns, pods[0], auth, context_path=ctx_path
            ).cluster_nodes()
            active = sorted(n.node_id for n in nodes if n.active)
            missing = [p for p in pods if p not in active]
            listed_ok = len(active) == want and (not missing or not set(active) & set(pods))
            nodes_detail = f"cluster nodes endpoint lists {len(active)} active: {', '.join(active)}"
        except errors.ApiError as e:
            nodes_detail = f"cluster nodes endpoint failed: {e}"
    out.append(Check("running", product, ok and listed_ok, f"{detail}; {nodes_detail}"))
    return out


def _placement(product: str, pods: list[dict[str, Any]], zone_of: Mapping[str, str], zones: int) -> Check:
    nodes = [str((p.get("spec") or {}).get("nodeName") or "") for p in pods]
    if not all(nodes):
        return Check("placement", product, False, "some pods are not scheduled")
    per_node = Counter(nodes)
    per_zone = Counter(zone_of.get(n, "?") for n in nodes)
    shared = [n for n, c in per_node.items() if c > 1]
    used_zones = len(per_zone)
    skew_ok = True
    if zones >= 2:
        counts = [per_zone.get(z, 0) for z in set(zone_of.values())]
        skew_ok = max(counts) - min(counts) <= 1 if counts else True
    ok = not shared and skew_ok
    spread = dict(sorted(per_zone.items()))
    detail = f"{len(nodes)} pods on {len(per_node)} workers in {used_zones} zones ({spread})"
    if shared:
        detail += f"; workers with 2+ pods: {', '.join(shared)}"
    if not skew_ok:
        detail += "; zone skew > 1"
    return Check("placement", product, ok, detail)


def _exec(api: Any, ns: str, pod: str, container: str, command: list[str]) -> str:
    from kubernetes.client import CoreV1Api
    from kubernetes.stream import stream

    with k8s.guard(f"exec pods/{ns}/{pod}"):
        result: Any = stream(
            CoreV1Api(api).connect_get_namespaced_pod_exec,
            pod,
            ns,
            container=container,
            command=command,
            stderr=True,
            stdin=False,
            stdout=True,
            tty=False,
            _request_timeout=15,
        )
    return str(result)


def _shared_home(api: Any, product: str, ns: str, pods: list[dict[str, Any]]) -> Check:
    claims = set()
    for pod in pods:
        spec = pod.get("spec") or {}
        vols = {v["name"]: v for v in spec.get("volumes") or []}
        mounts = [
            m
            for c in spec.get("containers") or []
            for m in c.get("volumeMounts") or []
            if m.get("mountPath") == SHARED_HOME
        ]
        for m in mounts:
            claim = (vols.get(m["name"], {}).get("persistentVolumeClaim") or {}).get("claimName")
            claims.add(claim)
    if len(claims) != 1 or None in claims:
        return Check("shared-home", product, False, f"pods do not share one claim at {SHARED_HOME}: {claims}")
    (claim,) = claims
    pvc = k8s.get(api, "PersistentVolumeClaim", str(claim), ns)
    phase = (pvc.get("status") or {}).get("phase")
    modes = (pvc.get("spec") or {}).get("accessModes") or []
    structural = phase == "Bound" and "ReadWriteMany" in modes
    detail = f"{len(pods)} pods mount claim {claim} ({phase}, {', '.join(modes)}) at {SHARED_HOME}"
    token = uuid.uuid4().hex[:8]
    try:
        names = [p["metadata"]["name"] for p in pods]
        for name in names:
            _exec(
                api,
                ns,
                name,
                product,
                ["sh", "-c", f"echo {token} > {SHARED_HOME}/.atlbook-postcheck-{name}"],
            )
        for name in names:
            listing = _exec(api, ns, name, product, ["sh", "-c", f"cat {SHARED_HOME}/.atlbook-postcheck-*"])
            if listing.count(token) != len(names):
                return Check(
                    "shared-home",
                    product,
                    False,
                    f"{detail}; {name} sees {listing.count(token)} of {len(names)} marker files",
                )
        for name in names:
            _exec(api, ns, name, product, ["rm", "-f", f"{SHARED_HOME}/.atlbook-postcheck-{name}"])
        return Check(
            "shared-home", product, structural, f"{detail}; marker written by each pod, read by every pod"
        )
    except Exception as e:  # exec not offered or refused by this API server: fall back (and say so)
        reason = f"{type(e).__name__}: {' '.join(str(e).split())[:200]}"
        return Check(
            "shared-home",
            product,
            structural,
            f"{detail}; pods/exec not available ({reason}): checked the shared RWX claim only",
        )


def _network_policy(api: Any, namespaces: list[str], engine: str | None) -> list[Check]:
    out = []
    for ns in namespaces:
        policies = k8s.list(api, "NetworkPolicy", ns)
        deny = [
            p
            for p in policies
            if not ((p.get("spec") or {}).get("podSelector") or {}).get("matchLabels")
            and not ((p.get("spec") or {}).get("podSelector") or {}).get("matchExpressions")
            and {"Ingress", "Egress"} <= set((p.get("spec") or {}).get("policyTypes") or [])
        ]
        pods = k8s.list(api, "Pod", ns)
        uncovered = [] if deny else [p["metadata"]["name"] for p in pods]
        ok = bool(deny) and engine is not None
        detail = (
            f"{len(pods)} pods, all selected by {deny[0]['metadata']['name']}"
            if deny
            else f"no default-deny policy; uncovered: {', '.join(uncovered[:10])}"
        )
        detail += f"; engine: {engine or 'NONE RUNNING (policies are not enforced)'}"
        out.append(Check("network-policy", ns, ok, detail))
    return out


def _sticky(api: Any, products: Mapping[str, Mapping[str, Any]]) -> list[Check]:
    out = []
    ctrl_ok = False
    try:
        dep = k8s.get(api, "Deployment", INGRESS_LB[1], INGRESS_LB[0])
        ctrl_ok = int((dep.get("status") or {}).get("readyReplicas") or 0) >= 1
    except errors.NotFound:
        pass
    for product, facts in products.items():
        try:
            ing = k8s.get(api, "Ingress", product, str(facts["namespace"]))
        except errors.NotFound:
            out.append(Check("sticky-ingress", product, False, "no Ingress"))
            continue
        ann = (ing.get("metadata") or {}).get("annotations") or {}
        sticky = (
            ann.get("nginx.ingress.kubernetes.io/affinity") == "cookie"
            and ann.get("nginx.ingress.kubernetes.io/affinity-mode") == "persistent"
        )
        klass = (ing.get("spec") or {}).get("ingressClassName")
        ok = sticky and bool(klass) and ctrl_ok
        out.append(
            Check(
                "sticky-ingress",
                product,
                ok,
                f"affinity cookie/persistent: {sticky}; class {klass}; controller ready: {ctrl_ok}",
            )
        )
    return out


def _budget(clients: Clients, state: DesiredState) -> Check:
    b = state.facts["budget"]
    pg = next((r for r in state.aws() if r.kind == "RdsParameterGroup"), None)
    actual = None
    if pg is not None:
        ctx = _aws.Ctx(clients, state.stack, {})
        seen = _aws.HANDLERS[pg.kind].observe(ctx, pg)
        if seen:
            value = (seen.get("Parameters") or {}).get("max_connections")
            actual = int(value) if value not in (None, "") else None
    limit = actual if actual is not None else int(b["max_connections"])
    ok = int(b["need"]) <= limit
    return Check(
        "connection-budget",
        str(b["instance_class"]),
        ok,
        f"need {b['need']} ≤ max_connections {limit} (parameter group: {actual})",
    )


def _cloudfront(clients: Clients, state: DesiredState, lb_host: str | None) -> list[Check]:
    out = []
    for r in state.aws():
        if r.kind != "CloudFrontDistribution":
            continue
        ctx = _aws.Ctx(clients, state.stack, {})
        seen = _aws.HANDLERS[r.kind].observe(ctx, r)
        origin = ((seen or {}).get("Origin") or {}).get("DomainName")
        ok = bool(origin) and origin == lb_host
        out.append(
            Check("cloudfront-origin", r.name, ok, f"origin {origin}; ingress load balancer {lb_host}")
        )
    return out


def run(clients: Clients, state: DesiredState) -> list[Check]:
    """Every post-check of the issue for ``state`` against what runs now. Read-only.

    Raises the ``ApiError`` family only when the Kubernetes API itself cannot be read; a product that
    does not answer is a failed row, not an exception.
    """
    api = observe.k8s_api(clients, str(state.facts.get("cluster", state.stack)), cluster_exists=True)
    if api is None:  # pragma: no cover - cluster_exists=True always yields an API client
        raise errors.PlanError("no Kubernetes API to check")
    products: Mapping[str, Mapping[str, Any]] = state.facts["products"]
    zone_of = {
        n["metadata"]["name"]: ((n["metadata"].get("labels") or {}).get("topology.kubernetes.io/zone") or "?")
        for n in k8s.list(api, "Node")
    }
    zones = len(state.facts.get("azs") or [])
    rows: list[Check] = []
    for product, facts in products.items():
        ns = str(facts["namespace"])
        pods = k8s.list(api, "Pod", ns, label_selector=_label_selector(selector(product)))
        pods.sort(key=lambda p: p["metadata"]["name"])
        names = [p["metadata"]["name"] for p in pods]
        rows += _running(clients, product, facts, names)
        rows.append(_placement(product, pods, zone_of, zones))
        rows.append(_shared_home(api, product, ns, pods))
    observed = observe.observe(clients, state)
    rows.append(Check(databases.CHECK, *databases.check(state, observed.objects)))  # product databases exist
    rows += _network_policy(api, list(state.facts.get("namespaces") or []), observed.engine)
    rows += _sticky(api, products)
    rows.append(_budget(clients, state))
    lb_host = observed.outputs.get(f"k8s:Service/{INGRESS_LB[0]}/{INGRESS_LB[1]}.hostname")
    rows += _cloudfront(clients, state, lb_host)
    return rows


def table(checks: list[Check]) -> list[dict[str, Any]]:
    """The post-check table as rows (what the notebook shows and records)."""
    return [dataclasses.asdict(c) for c in checks]


def all_passed(checks: list[Check]) -> bool:
    """Whether every post-check passed."""
    return all(c.ok for c in checks)
