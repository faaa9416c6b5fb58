"""Small sandbox parts without servers: the fault book's targeting, the audit log's marks and
filters, EKS add-on rules (catalogue, versions, conflicts, CREATING → ACTIVE on the simulated clock),
RDS engine-version filtering, the EFS/RDS feeder maths under the efs-credits-exhausted fault."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from atlbook.sandbox.audit import SANDBOX_CALLER, AuditLog, is_mutating_aws_action
from atlbook.sandbox.aws.addons import ADDON_CREATE_SECONDS, AddonBackend, AddonError
from atlbook.sandbox.aws.extras import describe_db_engine_versions
from atlbook.sandbox.aws.metrics import EFS_MAX_CREDITS, CloudWatchFeeder, FeederInputs
from atlbook.sandbox.products.faultbook import FaultBook


def test_fault_book_targets() -> None:
    book = FaultBook()
    book.set("pod-oom", "jira-1")
    assert book.applies("pod-oom", "jira-1") and not book.applies("pod-oom", "jira-0")
    book.set("slow-start")
    assert book.applies("slow-start", None)
    book.clear("pod-oom", "jira-1")
    assert book.active() == {"slow-start": ["*"]}
    book.clear_all()
    assert book.active() == {}


def test_audit_log() -> None:
    log = AuditLog()
    log.record("aws", "ec2:CreateVpc", "/", "AKIA1")
    mark = log.mark()
    log.record("k8s", "POST", "/api/v1/namespaces", "admin")
    log.record("aws", "cloudwatch:PutMetricData", "/", SANDBOX_CALLER)
    assert [e.verb for e in log.mutations(since=mark)] == ["POST"]
    assert [e.source for e in log.mutations(source="aws")] == ["aws"]
    assert is_mutating_aws_action("CreateAddon") and not is_mutating_aws_action("DescribeAddonVersions")


def test_addon_rules() -> None:
    now = [0.0]
    backend = AddonBackend(lambda: now[0], lambda a, r, c: c == "c")
    seen: list[tuple[str, str, bool]] = []
    backend.add_listener(lambda c, n, p: seen.append((c, n, p)))
    addon = backend.create("1", "us-east-1", "c", {"addonName": "coredns"})
    assert addon.status(now[0]) == "CREATING"
    now[0] += ADDON_CREATE_SECONDS
    assert addon.status(now[0]) == "ACTIVE"
    with pytest.raises(AddonError) as e:
        backend.create("1", "us-east-1", "c", {"addonName": "coredns"})
    assert (e.value.status, e.value.code) == (409, "ResourceInUseException")
    with pytest.raises(AddonError) as e:
        backend.create("1", "us-east-1", "c", {"addonName": "coredns", "addonVersion": "v0"})
    assert e.value.code == "InvalidParameterException"
    with pytest.raises(AddonError) as e:
        backend.names("1", "us-east-1", "other")
    assert e.value.status == 404
    backend.delete("1", "us-east-1", "c", "coredns")
    assert seen == [("c", "coredns", True), ("c", "coredns", False)]


@pytest.mark.parametrize(
    "params, versions",
    [
        ({"Engine": "postgres", "EngineVersion": "16"}, ["16.8", "16.9"]),
        ({"Engine": "postgres", "EngineVersion": "16.9"}, ["16.9"]),
        ({"Engine": "mysql"}, []),
        ({"DBParameterGroupFamily": "postgres14"}, ["14.17", "14.18"]),
    ],
)
def test_engine_versions(params: dict[str, str], versions: list[str]) -> None:
    status, _, body = describe_db_engine_versions(params)
    ns = {"r": "http://rds.amazonaws.com/doc/2014-10-31/"}
    found = [e.text for e in ET.fromstring(body).findall(".//r:DBEngineVersion/r:EngineVersion", ns)]
    assert status == 200 and found == versions


def test_efs_credits_drain_and_exhaust() -> None:
    exhausted = {"fs-1": False}
    feeder = CloudWatchFeeder("http://127.0.0.1:1", 1.0, FeederInputs(efs_exhausted=lambda fs: exhausted[fs]))
    first = feeder._efs_metrics("fs-1", "bursting", pods=4)  # noqa: SLF001 - the maths under test
    assert first["BurstCreditBalance"][1] < EFS_MAX_CREDITS
    exhausted["fs-1"] = True
    assert feeder._efs_metrics("fs-1", "bursting", pods=4)["BurstCreditBalance"] == ("Bytes", 0.0)  # noqa: SLF001
    assert feeder._efs_metrics("fs-1", "bursting", pods=4)["PercentIOLimit"] == ("Percent", 100.0)  # noqa: SLF001
    exhausted["fs-1"] = False
    assert feeder._efs_metrics("fs-1", "elastic", pods=4)["BurstCreditBalance"][1] == EFS_MAX_CREDITS  # noqa: SLF001
