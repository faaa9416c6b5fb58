"""Desired state from the shipped stacks.

Covers: chart names/labels/ports/env per product; StatefulSet shape (local-home claim template on gp3,
shared home claim, readiness on /status, termination grace, RollingUpdate, memory request = limit);
required anti-affinity on hostname + zone spread maxSkew 1; Services (headless, SSH LoadBalancer);
sticky Ingress; RBAC for discovery; PDB/PriorityClass/Quota/LimitRange; NetworkPolicy allow list (§6);
no literal secret anywhere; every manifest deserializes into the official typed model (round trip);
AWS shape (RDS Multi-AZ/encrypted/backups/deletion protection/max_connections, EFS per AZ, node
groups per zone, add-ons incl. the NetworkPolicy engine, CloudFront static behaviours, tags);
Bitbucket-on-EFS warning; connection budget overflow blocked with the numbers and both fixes.
"""

from __future__ import annotations

import json

import kubernetes.client
import pytest

from atlbook.provisioning import desired, kinds
from atlbook.provisioning.model import unbound

pytestmark = pytest.mark.unit


def _by(state, kind, name, namespace="atlassian"):
    for r in state.resources:
        if r.kind == kind and r.name == name and (r.provider == "aws" or r.namespace in (namespace, "")):
            return r
    raise AssertionError(f"no {kind} {name}")


def _env(container):
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}


def test_every_manifest_round_trips_through_the_typed_models(shipped):
    api = kubernetes.client.ApiClient()
    state = desired.build(shipped)
    assert state.k8s()
    for r in state.k8s():
        model = getattr(kubernetes.client, kinds.KINDS[r.kind].model).from_dict(dict(r.body))
        assert api.sanitize_for_serialization(model) == r.body, f"{r.key} loses fields in the typed model"


def test_keys_are_unique_and_dependencies_come_first(shipped):
    state = desired.build(shipped)
    keys = [r.key for r in state.resources]
    assert len(keys) == len(set(keys))
    position = {k: i for i, k in enumerate(keys)}
    for r in state.resources:
        for dep in r.depends_on:
            if dep in position:
                assert position[dep] < position[r.key], f"{r.key} depends on later {dep}"


@pytest.mark.parametrize(
    "product, http, cluster_ports, grace",
    [
        ("jira", 8080, {"ehcache": 40001, "ehcacheobject": 40011}, 30),
        ("confluence", 8090, {"hazelcast": 5701}, 25),
        ("bitbucket", 7990, {"hazelcast": 5701, "ssh": 7999}, 35),
    ],
    ids=["jira", "confluence", "bitbucket"],
)
def test_statefulset_follows_the_chart(sandbox_spec, product, http, cluster_ports, grace):
    state = desired.build(sandbox_spec)
    sts = _by(state, "StatefulSet", product).body
    labels = {"app.kubernetes.io/name": product, "app.kubernetes.io/instance": product}
    assert sts["spec"]["selector"]["matchLabels"] == labels
    assert labels.items() <= sts["spec"]["template"]["metadata"]["labels"].items()
    assert sts["spec"]["replicas"] == 2
    assert sts["spec"]["updateStrategy"]["type"] == "RollingUpdate"
    pod = sts["spec"]["template"]["spec"]
    assert pod["terminationGracePeriodSeconds"] == grace
    assert pod["serviceAccountName"] == product
    (container,) = pod["containers"]
    assert container["image"].startswith("atlassian/")
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports["http"] == http and cluster_ports.items() <= ports.items()
    probe = container["readinessProbe"]["httpGet"]
    assert probe["path"].endswith("/status") and probe["port"] == http
    res = container["resources"]
    assert res["requests"]["memory"] == res["limits"]["memory"]
    (vct,) = sts["spec"]["volumeClaimTemplates"]
    assert vct["metadata"]["name"] == "local-home" and vct["spec"]["storageClassName"] == "gp3"
    assert vct["spec"]["accessModes"] == ["ReadWriteOnce"]
    claim = pod["volumes"][0]["persistentVolumeClaim"]["claimName"]
    assert claim == f"{product}-shared-home"
    pvc = _by(state, "PersistentVolumeClaim", claim).body
    assert pvc["spec"]["accessModes"] == ["ReadWriteMany"]
    assert pvc["spec"]["storageClassName"] == ("" if product == "bitbucket" else "efs")
    env = _env(container)
    assert env["JVM_MAXIMUM_MEMORY"] == {
        "configMapKeyRef": {"name": f"{product}-jvm-config", "key": "max_heap"}
    }
    cm = _by(state, "ConfigMap", f"{product}-jvm-config").body
    assert {"max_heap", "min_heap", "additional_jvm_args"} <= set(cm["data"])


def test_clustering_env_per_product(sandbox_spec):
    state = desired.build(sandbox_spec)
    jira = _env(_by(state, "StatefulSet", "jira").body["spec"]["template"]["spec"]["containers"][0])
    assert jira["CLUSTERED"] == "true"
    assert jira["JIRA_NODE_ID"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    assert jira["EHCACHE_LISTENER_HOSTNAME"] == {"fieldRef": {"fieldPath": "status.podIP"}}
    assert (jira["EHCACHE_LISTENER_PORT"], jira["EHCACHE_OBJECT_PORT"]) == ("40001", "40011")
    conf = _env(_by(state, "StatefulSet", "confluence").body["spec"]["template"]["spec"]["containers"][0])
    assert conf["ATL_CLUSTER_TYPE"] == "kubernetes" and conf["HAZELCAST_KUBERNETES_SERVICE_PORT"] == "5701"
    assert conf["HAZELCAST_KUBERNETES_SERVICE_NAME"] == "confluence-cluster"
    bb = _env(_by(state, "StatefulSet", "bitbucket").body["spec"]["template"]["spec"]["containers"][0])
    assert bb["HAZELCAST_NETWORK_KUBERNETES"] == "true" and bb["HAZELCAST_PORT"] == "5701"
    assert bb["HAZELCAST_GROUP_PASSWORD"] == {
        "secretKeyRef": {"name": "bitbucket-clustering", "key": "password"}
    }
    assert bb["SEARCH_ENABLED"] == "false"


def test_anti_affinity_and_zone_spread_on_every_statefulset(shipped):
    state = desired.build(shipped)
    for r in state.k8s():
        if (
            r.kind not in ("StatefulSet", "Deployment")
            or r.name.endswith("-nfs")
            or r.namespace == "kube-system"
        ):
            continue
        pod = r.body["spec"]["template"]["spec"]
        match = r.body["spec"]["selector"]["matchLabels"]
        (term,) = pod["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
        assert (
            term["topologyKey"] == "kubernetes.io/hostname" and term["labelSelector"]["matchLabels"] == match
        )
        (spread,) = pod["topologySpreadConstraints"]
        assert spread["topologyKey"] == "topology.kubernetes.io/zone"
        assert spread["maxSkew"] == 1 and spread["whenUnsatisfiable"] == "DoNotSchedule"
        assert pod["priorityClassName"] in ("atlbook-apps", "atlbook-services")


def test_memory_requests_equal_limits_for_every_jvm(shipped):
    for r in desired.build(shipped).k8s():
        if r.kind in ("StatefulSet", "Deployment") and not r.name.endswith("-nfs"):
            for c in r.body["spec"]["template"]["spec"]["containers"]:
                assert c["resources"]["requests"]["memory"] == c["resources"]["limits"]["memory"], r.key


def test_services_ingress_pdb_rbac(sandbox_spec):
    state = desired.build(sandbox_spec)
    for p in ("jira", "confluence", "bitbucket"):
        headless = _by(state, "Service", f"{p}-cluster").body["spec"]
        assert headless["clusterIP"] == "None" and headless["publishNotReadyAddresses"] is True
        assert _by(state, "StatefulSet", p).body["spec"]["serviceName"] == f"{p}-cluster"
        ann = _by(state, "Ingress", p).body["metadata"]["annotations"]
        assert ann["nginx.ingress.kubernetes.io/affinity"] == "cookie"
        assert ann["nginx.ingress.kubernetes.io/affinity-mode"] == "persistent"
        assert ann["nginx.ingress.kubernetes.io/proxy-body-size"] == "250m"
        assert "nginx.ingress.kubernetes.io/proxy-read-timeout" in ann
        assert _by(state, "Ingress", p).body["spec"]["ingressClassName"] == "nginx"
        assert _by(state, "PodDisruptionBudget", p).body["spec"]["maxUnavailable"] == 1
    ssh = _by(state, "Service", "bitbucket-ssh").body["spec"]
    assert ssh["type"] == "LoadBalancer" and ssh["ports"][0]["targetPort"] == "ssh"
    syn = _by(state, "Ingress", "confluence-synchrony").body
    assert syn["metadata"]["annotations"]["nginx.ingress.kubernetes.io/proxy-read-timeout"] == "3600"
    for p in ("confluence", "bitbucket"):
        rules = _by(state, "Role", p).body["rules"]
        assert rules == [{"apiGroups": [""], "resources": ["endpoints", "pods"], "verbs": ["get", "list"]}]
        assert _by(state, "RoleBinding", p).body["subjects"][0]["name"] == p
    assert not [r for r in state.k8s() if r.kind == "Role" and r.name == "jira"]
    assert {"atlbook-apps", "atlbook-services"} <= {r.name for r in state.k8s() if r.kind == "PriorityClass"}
    assert _by(state, "ResourceQuota", "atlbook-quota").body["spec"]["hard"]["pods"]
    assert _by(state, "LimitRange", "atlbook-limits").body["spec"]["limits"][0]["type"] == "Container"
    sc = _by(state, "StorageClass", "gp3").body
    assert sc["volumeBindingMode"] == "WaitForFirstConsumer" and sc["parameters"]["type"] == "gp3"


def _allowed(policies, product, direction):
    ports = set()
    for np in policies:
        sel = np["spec"]["podSelector"].get("matchLabels", {})
        if sel and sel.get("app.kubernetes.io/name") != product:
            continue
        for rule in np["spec"].get(direction, []):
            for port in rule.get("ports", []):
                ports.add((port["protocol"], port["port"]))
    return ports


def test_network_policies_default_deny_and_the_allow_list(sandbox_spec):
    state = desired.build(sandbox_spec)
    nps = [r.body for r in state.k8s() if r.kind == "NetworkPolicy"]
    deny = next(n for n in nps if n["metadata"]["name"] == "default-deny")
    assert deny["spec"] == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    assert {("TCP", 8080), ("TCP", 40001), ("TCP", 40011)} <= _allowed(nps, "jira", "ingress")
    assert {("TCP", 8090), ("TCP", 5701)} <= _allowed(nps, "confluence", "ingress")
    assert {("TCP", 7990), ("TCP", 5701), ("TCP", 7999)} <= _allowed(nps, "bitbucket", "ingress")
    assert {("TCP", 8091), ("TCP", 5701), ("TCP", 25500)} <= _allowed(nps, "confluence-synchrony", "ingress")
    for p in ("jira", "confluence", "bitbucket"):
        egress = _allowed(nps, p, "egress")
        assert {("TCP", 5432), ("TCP", 2049), ("UDP", 53), ("TCP", 53)} <= egress, p
    assert ("TCP", 443) in _allowed(nps, "confluence", "egress")
    assert ("TCP", 443) in _allowed(nps, "bitbucket", "egress")
    assert ("TCP", 9200) in _allowed(nps, "bitbucket", "egress")
    ingress_from = next(n for n in nps if n["metadata"]["name"] == "jira-allow")["spec"]["ingress"][0][
        "from"
    ][0]
    assert ingress_from["namespaceSelector"]["matchLabels"] == {
        "kubernetes.io/metadata.name": "ingress-nginx"
    }


def test_no_literal_secret_anywhere(shipped, monkeypatch):
    planted = "S3cr3t-value-never-shown"
    for name in ("ATLBOOK_SANDBOX_ADMIN_PASSWORD", "ATLBOOK_SANDBOX_DB_PASSWORD"):
        monkeypatch.setenv(name, planted)
    state = desired.build(shipped)
    text = json.dumps([r.body for r in state.resources], default=str)
    assert planted not in text
    for r in state.resources:
        if r.kind == "Secret":
            assert r.body["stringData"]["password"].startswith("<")
            assert set(r.secret_refs) >= {"password"}
    rds = _by(state, "RdsInstance", f"{shipped.name}-db").body
    assert rds["MasterUserPassword"] == f"<from {shipped.database.master_password}>"


def test_aws_shape(shipped):
    state = desired.build(shipped)
    rds = _by(state, "RdsInstance", f"{shipped.name}-db").body
    assert rds["MultiAZ"] is True and rds["StorageEncrypted"] is True and rds["DeletionProtection"] is True
    assert rds["BackupRetentionPeriod"] >= 7 and rds["Engine"] == "postgres"
    pg = next(r for r in state.resources if r.kind == "RdsParameterGroup").body
    assert int(pg["Parameters"]["max_connections"]) >= state.facts["budget"]["need"]
    zones = shipped.zones
    groups = [r for r in state.resources if r.kind == "EksNodegroup"]
    assert len(groups) == len(zones) * len(shipped.node_groups)
    assert all(len(g.body["subnets"]) == 1 for g in groups)
    targets = [r for r in state.resources if r.kind == "EfsMountTarget"]
    assert sorted(t.name.rsplit("-", 1)[-1][-1] for t in targets) == sorted(z[-1] for z in zones)
    efs = next(r for r in state.resources if r.kind == "EfsFileSystem")
    assert efs.body["Encrypted"] is True and efs.body["ThroughputMode"] == "elastic" and "burst" in efs.note
    sg = _by(state, "SecurityGroup", f"{shipped.name}-efs").body
    assert sg["Ingress"][0]["FromPort"] == 2049
    addons = {r.body["addonName"]: r.body for r in state.resources if r.kind == "EksAddon"}
    assert {"aws-ebs-csi-driver", "aws-efs-csi-driver", "vpc-cni"} <= set(addons)
    assert [r for r in state.k8s() if r.kind == "Deployment" and r.name == "metrics-server"]
    assert json.loads(addons["vpc-cni"]["configurationValues"]) == {"enableNetworkPolicy": "true"}
    for r in state.aws():
        if not r.lookup and r.kind != "EfsMountTarget":  # mount targets cannot be tagged
            tags = r.body.get("Tags") or r.body.get("tags")
            assert tags and tags["atlbook:stack"] == shipped.name, r.key
    cdn = [r for r in state.resources if r.kind == "CloudFrontDistribution"]
    assert len(cdn) == 1
    paths = [b["PathPattern"] for b in cdn[0].body["CacheBehaviors"]]
    assert "/jira/s/*" in paths and "/confluence/s/*" in paths
    assert unbound(cdn[0].body["Origin"]["DomainName"]) == [
        "k8s:Service/ingress-nginx/ingress-nginx-controller.hostname"
    ]


def test_bitbucket_on_efs_is_a_warning(variant):
    state = desired.build(variant(**{"storage.bitbucket_shared_home": "efs"}))
    (warning,) = [f for f in state.findings if f.code == "bitbucket-on-efs"]
    assert warning.severity == "warning" and "NFS" in warning.message
    bb = next(r for r in state.resources if r.kind == "StatefulSet" and r.name == "bitbucket")
    claim = bb.body["spec"]["template"]["spec"]["volumes"][0]["persistentVolumeClaim"]["claimName"]
    pvc = next(r for r in state.resources if r.kind == "PersistentVolumeClaim" and r.name == claim)
    assert pvc.body["spec"]["storageClassName"] == "efs"
    assert not [r for r in state.resources if r.name == "bitbucket-nfs"]
    assert not [f for f in desired.build(variant()).findings if f.code == "bitbucket-on-efs"]


def test_connection_budget_overflow_blocks_with_numbers_and_both_fixes(variant):
    spec = variant(
        **{
            "database.instance_class": "db.t3.medium",
            "products.jira.replicas": 4,
            "products.jira.db_pool_max": 100,
            "products.confluence.db_pool_max": 100,
        }
    )
    state = desired.build(spec)
    (blocker,) = [f for f in state.findings if f.code == "connection-budget"]
    assert blocker.severity == "blocker"
    n = blocker.numbers
    assert n["need"] == 4 * 100 + 2 * 100 + 2 * 20 + 100 + 10
    assert n["max_connections"] == 450 and n["need"] > n["max_connections"]
    assert n["bigger_class"] and n["pool_max_that_fits"]
    assert f"use {n['bigger_class']}" in blocker.message  # fix 1: a bigger class
    assert f"pool max ≤ {n['pool_max_that_fits']}" in blocker.message  # fix 2: smaller pools
    assert str(n["need"]) in blocker.message and "450" in blocker.message


def test_export_writes_one_ordered_file_per_object(sandbox_spec, tmp_path, monkeypatch):
    import yaml

    from atlbook.provisioning import export

    monkeypatch.setenv("ATLBOOK_SANDBOX_ADMIN_PASSWORD", "planted-secret-value")
    state = desired.build(sandbox_spec)
    paths = export.export_dir(state, tmp_path / "out")
    assert len(paths) == len(state.k8s())
    assert [p.name for p in paths] == sorted(p.name for p in paths)
    docs = [yaml.safe_load(p.read_text()) for p in paths]
    assert [(d["kind"], d["metadata"]["name"]) for d in docs] == [(r.kind, r.name) for r in state.k8s()]
    assert all("planted-secret-value" not in p.read_text() for p in paths)
    assert export.export_dir(state, tmp_path / "out") == paths  # re-export replaces
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("x")
    with pytest.raises(Exception, match="other files"):
        export.export_dir(state, tmp_path / "other")


@pytest.mark.parametrize("product", ["jira", "confluence", "bitbucket"])
def test_agrees_with_the_products_catalogue(sandbox_spec, product):
    from atlbook.products import catalogue

    info = catalogue.get(product)
    state = desired.build(sandbox_spec)
    sts = _by(state, "StatefulSet", product).body
    pod = sts["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports["http"] == info.http_port
    assert dict(info.cluster_ports).items() <= ports.items()
    assert sts["spec"]["selector"]["matchLabels"] == catalogue.labels(product)
    assert container["image"] == f"{info.image}:{sandbox_spec.products.model_dump()[product]['version']}"
    assert set(info.clustering_env) <= set(_env(container))
    assert info.pool_env is None or info.pool_env[0] in _env(container)
    assert pod["terminationGracePeriodSeconds"] == info.termination_grace_seconds
    assert pod["securityContext"]["fsGroup"] == info.fs_group
    assert container["readinessProbe"]["failureThreshold"] == info.readiness_failure_threshold
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert mounts == {"local-home": info.local_home, "shared-home": info.shared_home}
    has_role = any(r.kind == "Role" and r.name == product for r in state.k8s())
    assert has_role == info.needs_discovery_rbac
