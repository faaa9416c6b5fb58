"""Fixtures and helpers of the reliability tier (issue 10 items 1, 2, 6): API faults, interruption,
concurrency — against the in-process sandbox, each test reporting figures.

- ``box``: the session sandbox, reset, with API faults off before and after the test;
- ``figures``: ``figures.add(runbook, **numbers)`` collects rows; the session prints them as a table
  (terminal summary) and writes them to ``<basetemp>/reliability-figures.json``;
- :func:`aws_inventory` / :func:`aws_duplicates` count AWS resources by kind and by natural key (moto
  through its own, never-faulted caller), :func:`k8s_inventory` counts Kubernetes objects by kind;
- :func:`audit_creates` counts successful AWS creates in the audit log;
- :class:`LedgerWatch` snapshots ledgers after each run and counts steps done twice (a step recorded
  done by one run and done again by a later run of the same unfinished plan).
"""

from __future__ import annotations

import collections
import json
import os
import pathlib
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from atlbook.testing import (  # noqa: F401 - fixtures
    ADMIN_PASSWORD,
    aws_client,
    boto3_session,
    k8s_api,
    sandbox,
    sandbox_reset,
    sandbox_target,
)

ROOT = pathlib.Path(__file__).resolve().parents[3]
SANDBOX_FILE = ROOT / "parameters" / "sandbox.yaml"
NOTEBOOKS = ROOT / "notebooks"
FAULT_RATE = 0.1
os.environ.setdefault("MOTO_IAM_LOAD_MANAGED_POLICIES", "true")

_ROWS: list[dict[str, Any]] = []
_FIGURES_FILE: list[pathlib.Path] = []


class Figures:
    """Rows of figures for the closing table."""

    def add(self, runbook: str, **numbers: Any) -> None:
        row = {"runbook": runbook, **numbers}
        _ROWS.append(row)
        if _FIGURES_FILE:
            _FIGURES_FILE[0].write_text(json.dumps(_ROWS, indent=2, default=str))


@pytest.fixture(scope="session")
def figures(tmp_path_factory: pytest.TempPathFactory) -> Figures:
    if not _FIGURES_FILE:
        _FIGURES_FILE.append(tmp_path_factory.getbasetemp() / "reliability-figures.json")
    return Figures()


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not _ROWS:
        return
    keys: list[str] = []
    for row in _ROWS:
        keys += [k for k in row if k not in keys]
    tr = terminalreporter
    tr.section("reliability figures")
    tr.write_line(" | ".join(keys))
    for row in _ROWS:
        tr.write_line(" | ".join(str(row.get(k, "")) for k in keys))
    if _FIGURES_FILE:
        tr.write_line(f"(also in {_FIGURES_FILE[0]})")


@pytest.fixture
def box(sandbox_reset: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:  # noqa: F811
    """The reset sandbox, its env exported (kernels and ``connect("sandbox")`` find it), faults off."""
    monkeypatch.setenv("ATLBOOK_SANDBOX_DIR", str(sandbox_reset.state_dir))
    monkeypatch.setenv("ATLBOOK_SANDBOX_ADMIN_PASSWORD", ADMIN_PASSWORD)
    monkeypatch.setenv("ATLBOOK_SANDBOX_DB_PASSWORD", "sandbox-db")
    # as a detached sandbox does: the pid file lets 00-sandbox and `atlbook sandbox …` reach it
    (sandbox_reset.state_dir / "sandbox.pid").write_text(str(os.getpid()))
    sandbox_reset.api_faults_off()
    try:
        yield sandbox_reset
    finally:
        sandbox_reset.api_faults_off()


# --- counting -------------------------------------------------------------------------------------------


def _sandbox_aws(box: Any, service: str) -> Any:
    """A boto3 client signed as the sandbox itself: never faulted, never audited."""
    from atlbook.sandbox.audit import SANDBOX_CALLER

    return boto3.Session(
        aws_access_key_id=SANDBOX_CALLER, aws_secret_access_key="x", region_name="us-east-1"
    ).client(service, endpoint_url=box.aws.url)


def aws_keys(box: Any) -> dict[str, list[str]]:
    """Natural keys of every AWS resource provisioning makes, by kind (duplicates show as repeats)."""
    eks = _sandbox_aws(box, "eks")
    clusters = eks.list_clusters()["clusters"]
    nodegroups = [f"{c}/{n}" for c in clusters for n in eks.list_nodegroups(clusterName=c)["nodegroups"]]
    addons = [f"{c}/{a}" for c in clusters for a in eks.list_addons(clusterName=c)["addons"]]
    rds = _sandbox_aws(box, "rds")
    efs = _sandbox_aws(box, "efs")
    systems = efs.describe_file_systems()["FileSystems"]
    targets: list[str] = []
    for fs in systems:
        for t in efs.describe_mount_targets(FileSystemId=fs["FileSystemId"])["MountTargets"]:
            targets.append(f"{fs['CreationToken']}/{t['AvailabilityZoneName']}")
    cf = (_sandbox_aws(box, "cloudfront").list_distributions().get("DistributionList") or {}).get(
        "Items"
    ) or []
    ec2 = _sandbox_aws(box, "ec2")
    groups = [
        f"{g['VpcId']}/{g['GroupName']}"
        for g in ec2.describe_security_groups()["SecurityGroups"]
        if g["GroupName"] != "default"
    ]
    roles = [r["RoleName"] for r in _sandbox_aws(box, "iam").list_roles()["Roles"]]
    return {
        "eks_cluster": clusters,
        "eks_nodegroup": nodegroups,
        "eks_addon": addons,
        "rds_instance": [d["DBInstanceIdentifier"] for d in rds.describe_db_instances()["DBInstances"]],
        "rds_subnet_group": [
            g["DBSubnetGroupName"] for g in rds.describe_db_subnet_groups()["DBSubnetGroups"]
        ],
        "efs": [fs["CreationToken"] for fs in systems],
        "efs_mount_target": targets,
        "cloudfront": [d.get("Comment", "") for d in cf],
        "security_group": groups,
        "iam_role": roles,
    }


def aws_inventory(box: Any) -> dict[str, int]:
    """AWS resources by kind."""
    return {k: len(v) for k, v in aws_keys(box).items()}


def aws_duplicates(box: Any) -> dict[str, int]:
    """Per kind, how many resources share a natural key with another (0 everywhere = no duplicate)."""
    out = {}
    for kind, keys in aws_keys(box).items():
        out[kind] = sum(n - 1 for n in collections.Counter(keys).values() if n > 1)
    return out


K8S_KINDS = (
    "Namespace",
    "ConfigMap",
    "Secret",
    "Service",
    "StatefulSet",
    "Pod",
    "PersistentVolumeClaim",
    "Ingress",
    "NetworkPolicy",
    "PodDisruptionBudget",
    "PriorityClass",
    "ResourceQuota",
    "LimitRange",
    "ServiceAccount",
    "Role",
    "RoleBinding",
    "StorageClass",
)


def k8s_inventory(api: Any, *, ledgers: bool = False) -> dict[str, int]:
    """Kubernetes objects by kind (the ledgers' ConfigMaps left out unless ``ledgers``)."""
    from atlbook.clients import k8s

    out = {}
    for kind in K8S_KINDS:
        try:
            items = k8s.list(api, kind)
        except Exception:  # noqa: BLE001 - a kind the emulator does not serve
            continue
        if kind == "ConfigMap" and not ledgers:
            items = [i for i in items if not i["metadata"]["name"].startswith("atlbook-ledger-")]
        out[kind] = len(items)
    return out


def audit_creates(box: Any, since: int = 0) -> collections.Counter[str]:
    """Successful AWS create calls in the audit log, by ``service:Action path``."""
    return collections.Counter(
        f"{e.verb} {e.path}"
        for e in box.audit.mutations(since, source="aws")
        if e.status is not None and e.status < 300 and ("Create" in e.verb or e.verb.endswith(":POST"))
    )


class LedgerWatch:
    """Snapshots of one ledger after each run; counts steps done twice within one unfinished plan."""

    def __init__(self, api: Any, name: str, namespace: str = "atlassian") -> None:
        self.api = api
        self.name = name
        self.namespace = namespace
        self.previous: dict[str, Any] | None = None
        self.twice: list[str] = []

    def read(self) -> dict[str, Any]:
        from atlbook import errors
        from atlbook.clients import k8s

        try:
            cm = k8s.get(self.api, "ConfigMap", self.name, self.namespace)
        except errors.NotFound:
            return {}
        doc: dict[str, Any] = json.loads((cm.get("data") or {}).get("ledger.json") or "{}")
        return doc

    def snap(self) -> dict[str, Any]:
        """Read the ledger; note steps a later run did again while the plan was unfinished."""
        doc = self.read()
        prev = self.previous
        if prev is not None and not prev.get("completed"):
            before = prev.get("steps") or {}
            now = doc.get("steps") or {}
            self.twice += [s for s in before if s in now and now[s].get("run_id") != before[s].get("run_id")]
        self.previous = doc
        return doc
