"""Read what an upgrade's gates judge, in one pass, through the official clients only.

- Kubernetes: the product's StatefulSet (found by the chart's ``app.kubernetes.io/name`` label or by
  name), its pods, the Nodes and every pod of the cluster (for :mod:`atlbook.capacity`), the PDBs and
  the ledgers (ConfigMaps labelled ``atlbook.io/ledger``) of the stack's namespaces;
- each node through the pod proxy: ``/status``, the product's cluster-nodes endpoint and ZDU state, and
  for Jira the index summary;
- AWS: the RDS instance the snapshot is taken of.

Nothing here changes anything, and nothing raises for a source that cannot be read: the error is kept in
the :class:`~atlbook.upgrade.model.Observation` and the gate that needs it fails with that evidence.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
from collections.abc import Mapping, Sequence
from typing import Any

from atlbook import capacity, errors, plan
from atlbook.capacity import cluster as ccluster
from atlbook.capacity import eks as ceks
from atlbook.capacity import workload as cworkload
from atlbook.clients import Clients, k8s
from atlbook.products import catalogue
from atlbook.products import client as pclient
from atlbook.upgrade import model

__all__ = [
    "auth",
    "container_of",
    "context_path",
    "find_statefulset",
    "image_tag",
    "ledgers",
    "observe",
    "pod_view",
    "product_client",
    "rds_instance",
    "room",
    "with_tag",
]

LEDGER_LABEL = "atlbook.io/ledger=true"


def _name(obj: Mapping[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("name", ""))


def image_tag(image: str) -> str:
    """The tag of ``repo[:tag]`` (``latest`` when none)."""
    last = image.split("@", 1)[0].rsplit("/", 1)[-1]
    return last.split(":", 1)[1] if ":" in last else "latest"


def with_tag(image: str, tag: str) -> str:
    """``image`` with its tag replaced by ``tag`` (digest dropped)."""
    base = image.split("@", 1)[0]
    head, _, last = base.rpartition("/")
    repo = last.split(":", 1)[0]
    return f"{head + '/' if head else ''}{repo}:{tag}"


def _repo_matches(image: str, product: str) -> bool:
    want = catalogue.get(product).image.rsplit("/", 1)[-1]
    repo = image.split("@", 1)[0].rsplit("/", 1)[-1].split(":", 1)[0]
    return repo == want or product in repo


def container_of(template_or_pod: Mapping[str, Any], product: str) -> tuple[int, dict[str, Any]] | None:
    """(index, container) of the product container in a pod or pod template."""
    spec = template_or_pod.get("spec") or {}
    containers = spec.get("containers") or []
    for i, c in enumerate(containers):
        if c.get("name") == product or _repo_matches(str(c.get("image", "")), product):
            return i, c
    return None


def find_statefulset(clients: Clients, namespace: str, product: str) -> dict[str, Any]:
    """The product's StatefulSet in ``namespace`` (``NotFound`` when there is none).

    Preference: the chart label ``app.kubernetes.io/name=<product>`` with the product image and no
    ``component`` (Synchrony is labelled ``confluence`` too), then a StatefulSet named like the product.
    """
    sets = k8s.list(clients.k8s, "StatefulSet", namespace, policy=clients.policy)
    candidates = []
    for sts in sets:
        template = (sts.get("spec") or {}).get("template") or {}
        labels = (template.get("metadata") or {}).get("labels") or {}
        if labels.get("app.kubernetes.io/component"):
            continue
        if container_of(template, product) is None:
            continue
        candidates.append(sts)
    candidates.sort(key=lambda s: (_name(s) != product, _name(s)))
    if not candidates:
        raise errors.api_error(
            errors.K8sApiError,
            f"no {product} StatefulSet in namespace {namespace} "
            f"(StatefulSets: {', '.join(sorted(_name(s) for s in sets)) or 'none'})",
            status=404,
            operation="find StatefulSet",
        )
    return candidates[0]


def context_path(pod: Mapping[str, Any], product: str) -> str:
    """Where the product serves in this pod: its readiness probe's ``<ctx>/status``, else its env."""
    found = container_of(pod, product)
    first = found[1] if found else {}
    probe = ((first.get("readinessProbe") or {}).get("httpGet") or {}).get("path")
    if isinstance(probe, str) and probe.rstrip("/").endswith("/status"):
        return probe.rstrip("/")[: -len("/status")].rstrip("/")
    for env in first.get("env") or []:
        if env.get("name") in ("ATL_TOMCAT_CONTEXTPATH", "SERVER_CONTEXT_PATH") and env.get("value"):
            value = "/" + str(env["value"]).strip("/")
            return "" if value == "/" else value
    return ""


def auth(clients: Clients, spec: Any, product: str) -> pclient.BasicAuth | None:
    """The product's admin credentials from the stack spec (``None`` when the spec names none)."""
    pspec = getattr(getattr(spec, "products", None), product, None)
    admin = getattr(pspec, "admin", None)
    return pclient.auth_from_spec(admin, clients) if admin is not None else None


def product_client(
    clients: Clients, product: str, namespace: str, pod: str, creds: pclient.BasicAuth | None, ctx: str
) -> pclient.ProductClient:
    """A client for one node through the pod proxy."""
    return pclient.ProductClient.for_pod(clients, product, namespace, pod, creds, context_path=ctx)


def _ready(pod: Mapping[str, Any]) -> bool:
    for cond in (pod.get("status") or {}).get("conditions") or []:
        if cond.get("type") == "Ready":
            return bool(cond.get("status") == "True")
    return False


def pod_view(
    clients: Clients,
    product: str,
    pod: Mapping[str, Any],
    creds: pclient.BasicAuth | None,
    *,
    ask: bool = True,
) -> model.PodView:
    """A :class:`PodView` of ``pod``; with ``ask`` its ``/status`` through the pod proxy too."""
    meta = pod.get("metadata") or {}
    status = pod.get("status") or {}
    name = str(meta.get("name", ""))
    suffix = name.rsplit("-", 1)[-1]
    found = container_of(pod, product)
    cstatus: dict[str, Any] = next(
        (
            c
            for c in status.get("containerStatuses") or []
            if found is not None and c.get("name") == found[1].get("name")
        ),
        {},
    )
    view = model.PodView(
        name=name,
        ordinal=int(suffix) if suffix.isdigit() else -1,
        uid=str(meta.get("uid", "")),
        node=(pod.get("spec") or {}).get("nodeName"),
        ip=status.get("podIP"),
        phase=status.get("phase"),
        ready=_ready(pod) and not meta.get("deletionTimestamp"),
        terminating=bool(meta.get("deletionTimestamp")),
        image=str(found[1].get("image", "")) if found else "",
        revision=str((meta.get("labels") or {}).get("controller-revision-hash", "")),
        restarts=int(cstatus.get("restartCount") or 0),
        waiting_reason=((cstatus.get("state") or {}).get("waiting") or {}).get("reason"),
    )
    if ask and view.phase == "Running" and not view.terminating:
        try:
            answer = product_client(
                clients, product, str(meta.get("namespace")), name, creds, context_path(pod, product)
            ).status()
            view.status_state, view.status_http = answer.state, answer.http_status
        except errors.AtlbookError as e:
            view.error = f"{type(e).__name__}: {e}"
    return view


def _iso_to_dt(text: Any) -> dt.datetime | None:
    if not isinstance(text, str):
        return None
    try:
        return dt.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)
    except ValueError:
        return None


def _dead_here(lock: Mapping[str, Any]) -> bool:
    """Whether the lock was taken by a process on this host that no longer exists."""
    pid = lock.get("pid")
    if lock.get("host") != socket.gethostname() or not isinstance(pid, int):
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def ledgers(
    clients: Clients, namespaces: list[str], now: dt.datetime | None = None
) -> list[model.LedgerView]:
    """Every atlbook ledger in ``namespaces``: who holds its lock (lease still running?), unfinished?"""
    moment = now or dt.datetime.now(dt.UTC)
    out: list[model.LedgerView] = []
    for ns in dict.fromkeys(namespaces):
        try:
            maps = k8s.list(clients.k8s, "ConfigMap", ns, label_selector=LEDGER_LABEL, policy=clients.policy)
        except errors.NotFound:
            continue
        for cm in maps:
            raw = (cm.get("data") or {}).get(plan.ConfigMapBackend.KEY) or "{}"
            try:
                doc = json.loads(raw)
            except ValueError:
                doc = {}
            lock = doc.get("lock") or {}
            lease = _iso_to_dt(lock.get("lease_until"))
            steps = doc.get("steps") or {}
            out.append(
                model.LedgerView(
                    runbook=str(
                        doc.get("runbook")
                        or ((cm.get("metadata") or {}).get("annotations") or {}).get("atlbook.io/runbook")
                        or _name(cm)
                    ),
                    configmap=f"{ns}/{_name(cm)}",
                    holder=lock.get("holder"),
                    since=lock.get("since"),
                    lease_until=lock.get("lease_until"),
                    live_lock=bool(lock) and (lease is None or lease > moment),
                    unfinished=bool(steps) and not doc.get("completed"),
                    steps_done=len(steps),
                    detail={"steps": steps, "failures": doc.get("failures") or [], "plan": doc.get("plan")},
                    dead_holder=bool(lock) and _dead_here(lock),
                )
            )
    return out


def rds_instance(clients: Clients, spec: Any, wanted: str = "") -> dict[str, Any]:
    """The stack's RDS instance: ``wanted``, else ``<stack>-db``, else the one naming the stack / the only.

    Raises ``NotFound`` (with the instances seen) when none can be chosen.
    """
    doc = clients.aws_call("rds", "describe_db_instances", idempotent=True)
    instances = list(doc.get("DBInstances") or [])
    stack_name = str(getattr(spec, "name", "") or "")
    names = [str(i.get("DBInstanceIdentifier")) for i in instances]
    for want in (wanted, f"{stack_name}-db" if stack_name else ""):
        if want:
            for inst in instances:
                if inst.get("DBInstanceIdentifier") == want:
                    return dict(inst)
            if want == wanted:
                break
    if not wanted:
        named = [i for i in instances if stack_name and stack_name in str(i.get("DBInstanceIdentifier"))]
        if len(named) == 1:
            return dict(named[0])
        if len(instances) == 1:
            return dict(instances[0])
    raise errors.api_error(
        errors.AwsApiError,
        f"no RDS instance {'named ' + wanted if wanted else 'for stack ' + repr(stack_name)} "
        f"(instances: {', '.join(names) or 'none'}); name it with the db_instance option",
        status=404,
        service="rds",
        operation="DescribeDBInstances",
    )


def _requests(pod: Mapping[str, Any]) -> tuple[int, int]:
    cpu = mem = 0
    for c in (pod.get("spec") or {}).get("containers") or []:
        req = (c.get("resources") or {}).get("requests") or {}
        if req.get("cpu"):
            cpu += cworkload.parse_cpu_m(req["cpu"])
        if req.get("memory"):
            mem += cworkload.parse_memory_mi(req["memory"])
    return cpu, mem


def _schedulable(node: Mapping[str, Any]) -> bool:
    spec = node.get("spec") or {}
    if spec.get("unschedulable"):
        return False
    if any(t.get("effect") in ("NoSchedule", "NoExecute") for t in spec.get("taints") or []):
        return False
    for cond in (node.get("status") or {}).get("conditions") or []:
        if cond.get("type") == "Ready":
            return bool(cond.get("status") == "True")
    return False


def _anti_affinity(pod: Mapping[str, Any]) -> bool:
    terms = (((pod.get("spec") or {}).get("affinity") or {}).get("podAntiAffinity") or {}).get(
        "requiredDuringSchedulingIgnoredDuringExecution"
    ) or []
    return any(t.get("topologyKey") == "kubernetes.io/hostname" for t in terms)


def _zone_spread(pod: Mapping[str, Any]) -> bool:
    return any(
        c.get("topologyKey") == "topology.kubernetes.io/zone"
        and c.get("whenUnsatisfiable") == "DoNotSchedule"
        for c in (pod.get("spec") or {}).get("topologySpreadConstraints") or []
    )


def room(
    nodes: Sequence[Mapping[str, Any]],
    pods: Sequence[Mapping[str, Any]],
    product_pods: Sequence[str],
    volume_zones: Mapping[str, str] | None = None,
) -> list[dict[str, Any]]:
    """Whether each product pod, deleted now, finds a node again — :mod:`atlbook.capacity`'s filters.

    The cluster is modelled with :class:`atlbook.capacity.cluster.ClusterState` from the Nodes'
    allocatable and every pod's requests; for each product pod the pod is taken off its node and every
    schedulable (Ready, not cordoned, not tainted) node in its volume's zone is tried. Pure.
    """
    zones = sorted(
        {
            str(((n.get("metadata") or {}).get("labels") or {}).get("topology.kubernetes.io/zone", ""))
            for n in nodes
        }
    )
    sets: dict[str, dict[str, Any]] = {}
    placed: list[tuple[str, str]] = []
    for pod in pods:
        meta = pod.get("metadata") or {}
        if meta.get("deletionTimestamp") or (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
            continue
        owner = next((r.get("name") for r in meta.get("ownerReferences") or [] if r.get("controller")), None)
        key = f"{meta.get('namespace')}/{owner or _name(pod)}"
        cpu, mem = _requests(pod)
        entry = sets.setdefault(key, {"cpu": 0, "mem": 0, "n": 0, "anti": False, "spread": False})
        entry["cpu"], entry["mem"] = max(entry["cpu"], cpu), max(entry["mem"], mem)
        entry["n"] += 1
        entry["anti"] = entry["anti"] or _anti_affinity(pod)
        entry["spread"] = entry["spread"] or _zone_spread(pod)
        node = (pod.get("spec") or {}).get("nodeName")
        if node:
            placed.append((key, str(node)))
    product_set = {
        f"{(p.get('metadata') or {}).get('namespace')}/"
        + str(
            next(
                (
                    r.get("name")
                    for r in (p.get("metadata") or {}).get("ownerReferences") or []
                    if r.get("controller")
                ),
                _name(p),
            )
        )
        for p in pods
        if _name(p) in product_pods
    }
    keys = sorted(sets)
    workload = capacity.Workload(
        tuple(
            capacity.PodSet(
                name=k,
                replicas=sets[k]["n"],
                cpu_m=sets[k]["cpu"],
                memory_mi=sets[k]["mem"],
                anti_affinity=sets[k]["anti"] if k in product_set else False,
                zone_spread=sets[k]["spread"] if k in product_set else False,
                ebs=False,
            )
            for k in keys
        ),
        name="live",
    )
    cnodes = []
    for n in nodes:
        alloc = (n.get("status") or {}).get("allocatable") or {}
        cpu_m = cworkload.parse_cpu_m(alloc.get("cpu", "0") or "0") if alloc.get("cpu") else 0
        mem_mi = cworkload.parse_memory_mi(alloc.get("memory")) if alloc.get("memory") else 0
        slots = int(alloc.get("pods") or 110)
        inst = capacity.InstanceType(
            str(
                ((n.get("metadata") or {}).get("labels") or {}).get(
                    "node.kubernetes.io/instance-type", "live"
                )
            ),
            max(1, cpu_m // 1000),
            mem_mi,
            1,
            2,
            0.0,
        )
        zone = str(((n.get("metadata") or {}).get("labels") or {}).get("topology.kubernetes.io/zone", ""))
        cnodes.append(ccluster.Node(_name(n), zone, ceks.NodeShape(inst, slots, 0, 0, cpu_m, mem_mi, slots)))
    state = ccluster.ClusterState(workload, cnodes, zones)
    index = {k: i for i, k in enumerate(keys)}
    pos = {n.name: i for i, n in enumerate(cnodes)}
    for i, raw in enumerate(nodes):
        if not _schedulable(raw):
            state.set_ghost(i, True)
    where: dict[str, str] = {}
    for key, node in placed:
        if node in pos:
            state.place(index[key], pos[node])
    for pod in pods:
        if _name(pod) in product_pods:
            where[_name(pod)] = str((pod.get("spec") or {}).get("nodeName") or "")
    out: list[dict[str, Any]] = []
    vz = volume_zones or {}
    for pod in pods:
        name = _name(pod)
        if name not in product_pods:
            continue
        meta = pod.get("metadata") or {}
        owner = next((r.get("name") for r in meta.get("ownerReferences") or [] if r.get("controller")), None)
        s = index.get(f"{meta.get('namespace')}/{owner or name}")
        current = where.get(name, "")
        if s is None:
            out.append({"pod": name, "fits": False, "evidence": "pod not modelled (terminating or finished)"})
            continue
        if current in pos:
            state.unplace(s, pos[current])
        pin_zone = vz.get(name)
        zone_i = state.zone_index.get(pin_zone) if pin_zone else None
        fits = [cnodes[m].name for m in range(len(cnodes)) if state.fits(s, m, zone_i)]
        if current in pos:
            state.place(s, pos[current])
        need = f"{sets[keys[s]]['cpu']}m CPU / {sets[keys[s]]['mem']} MiB"
        pin = f" in zone {pin_zone}" if pin_zone else ""
        out.append(
            {
                "pod": name,
                "fits": bool(fits),
                "evidence": (
                    f"{name} ({need}) fits again{pin} on {', '.join(fits[:3])}"
                    + (f" (+{len(fits) - 3} more)" if len(fits) > 3 else "")
                    if fits
                    else f"{name} ({need}) would not fit on any schedulable node{pin}"
                ),
            }
        )
    return out


def _volume_zones(clients: Clients, namespace: str, pods: list[dict[str, Any]]) -> dict[str, str]:
    """Zone of each pod's first bound volume that names one (PV label or node affinity)."""
    out: dict[str, str] = {}
    for pod in pods:
        for vol in (pod.get("spec") or {}).get("volumes") or []:
            claim = (vol.get("persistentVolumeClaim") or {}).get("claimName")
            if not claim:
                continue
            try:
                pvc = k8s.get(clients.k8s, "PersistentVolumeClaim", claim, namespace, policy=clients.policy)
                pv_name = (pvc.get("spec") or {}).get("volumeName")
                if not pv_name:
                    continue
                pv = k8s.get(clients.k8s, "PersistentVolume", pv_name, policy=clients.policy)
            except errors.NotFound:
                continue
            labels = (pv.get("metadata") or {}).get("labels") or {}
            zone = labels.get("topology.kubernetes.io/zone")
            if not zone:
                terms = (((pv.get("spec") or {}).get("nodeAffinity") or {}).get("required") or {}).get(
                    "nodeSelectorTerms"
                ) or []
                for term in terms:
                    for expr in term.get("matchExpressions") or []:
                        if expr.get("key") == "topology.kubernetes.io/zone" and expr.get("values"):
                            zone = expr["values"][0]
            if zone:
                out[_name(pod)] = str(zone)
                break
    return out


def observe(
    clients: Clients, spec: Any, product: str, options: model.Options | None = None
) -> model.Observation:
    """Read everything the gates judge (see the module docstring); never raises for a missing source."""
    opts = options or model.Options()
    info = catalogue.get(product)
    namespace = str(spec.namespace_of(product)) if hasattr(spec, "namespace_of") else str(spec.namespace)
    obs = model.Observation(product=info.name, namespace=namespace, statefulset=None)
    stack_ns = str(getattr(spec, "namespace", namespace))
    try:
        obs.ledgers = ledgers(clients, [stack_ns, namespace])
    except errors.AtlbookError as e:
        obs.ledgers = []
        obs.error = f"ledgers: {type(e).__name__}: {e}"
    own = model.runbook_name(product)
    obs.own_ledger = next((lv for lv in obs.ledgers if lv.runbook == own), None)
    if obs.own_ledger is not None and obs.own_ledger.unfinished:
        steps = obs.own_ledger.detail.get("steps") or {}
        first = steps.get("preflight") or {}
        if first.get("detail"):
            try:
                obs.resume = model.Facts.from_json(str(first["detail"]))
            except (ValueError, TypeError):
                obs.resume = None
        failures = obs.own_ledger.detail.get("failures") or []
        if failures:
            obs.resume_failed_step = str(failures[-1].get("step"))
    try:
        sts = find_statefulset(clients, namespace, product)
    except errors.AtlbookError as e:
        obs.error = f"{type(e).__name__}: {e}"
        return obs
    sspec = sts.get("spec") or {}
    template = sspec.get("template") or {}
    found = container_of(template, product)
    obs.statefulset = _name(sts)
    obs.replicas = int(sspec.get("replicas", 1))
    obs.container = str(found[1].get("name")) if found else ""
    obs.image = str(found[1].get("image", "")) if found else ""
    strategy = sspec.get("updateStrategy") or {}
    obs.strategy = str(strategy.get("type", "RollingUpdate"))
    obs.partition = int((strategy.get("rollingUpdate") or {}).get("partition", 0) or 0)
    sstatus = sts.get("status") or {}
    obs.current_revision = str(sstatus.get("currentRevision", ""))
    obs.update_revision = str(sstatus.get("updateRevision", ""))
    creds = auth(clients, spec, product)
    selector = (sspec.get("selector") or {}).get("matchLabels") or {}
    all_pods = k8s.list(clients.k8s, "Pod", None, policy=clients.policy)
    mine = sorted(
        (
            p
            for p in all_pods
            if (p.get("metadata") or {}).get("namespace") == namespace
            and any(
                r.get("uid") == (sts.get("metadata") or {}).get("uid")
                for r in (p.get("metadata") or {}).get("ownerReferences") or []
            )
        ),
        key=_name,
    )
    obs.pods = [pod_view(clients, product, p, creds) for p in mine]
    running = [p for p in obs.pods if p.running]
    asked = running[0] if running else None
    if mine:
        obs.context_path = context_path(mine[0], product)
    try:
        services = k8s.list(clients.k8s, "Service", namespace, policy=clients.policy)
        svc = next(
            (
                s
                for s in sorted(services, key=lambda s: (_name(s) != product, _name(s)))
                if selector
                and ((s.get("spec") or {}).get("selector") or {})
                and all(
                    selector.get(k) == v for k, v in ((s.get("spec") or {}).get("selector") or {}).items()
                )
                and (s.get("spec") or {}).get("clusterIP") != "None"
            ),
            None,
        )
        obs.service = _name(svc) if svc else ""
    except errors.AtlbookError:
        obs.service = ""
    if asked is not None:
        api = product_client(clients, product, namespace, asked.name, creds, obs.context_path)
        try:
            obs.cluster_nodes = api.cluster_nodes()
        except errors.AtlbookError as e:
            obs.cluster_error = f"{type(e).__name__}: {e}"
        try:
            obs.zdu = api.zdu_state()
        except errors.AtlbookError as e:
            obs.zdu_error = f"{type(e).__name__}: {e}"
    else:
        obs.cluster_error = obs.zdu_error = "no node answers /status RUNNING"
    if product == "jira":
        for p in running:
            try:
                obs.index[p.name] = product_client(
                    clients, product, namespace, p.name, creds, obs.context_path
                ).index_summary()
            except errors.AtlbookError as e:
                obs.index[p.name] = f"{type(e).__name__}: {e}"
    try:
        pdbs = k8s.list(clients.k8s, "PodDisruptionBudget", namespace, policy=clients.policy)
        labels = (template.get("metadata") or {}).get("labels") or {}
        for pdb in pdbs:
            want = ((pdb.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
            if want and all(labels.get(k) == v for k, v in want.items()):
                obs.pdbs.append(_name(pdb))
    except errors.AtlbookError as e:
        obs.pdb_error = f"{type(e).__name__}: {e}"
    try:
        nodes = k8s.list(clients.k8s, "Node", policy=clients.policy)
        obs.room = room(nodes, all_pods, [p.name for p in obs.pods], _volume_zones(clients, namespace, mine))
    except errors.AtlbookError as e:
        obs.room_error = f"{type(e).__name__}: {e}"
    try:
        inst = rds_instance(clients, spec, opts.db_instance)
        obs.rds = {
            "identifier": inst.get("DBInstanceIdentifier"),
            "status": inst.get("DBInstanceStatus"),
            "engine": inst.get("Engine"),
        }
    except errors.AtlbookError as e:
        obs.rds_error = f"{type(e).__name__}: {e}"
    return obs
