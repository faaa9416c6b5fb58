"""The AWS calls the sandbox serves in front of moto, through boto3: EKS add-ons (create, describe,
list, update, delete, describe_addon_versions, errors), EFS UpdateFileSystem, RDS
DescribeDBEngineVersions; what moto already does for provisioning (node groups, mount targets,
parameter groups, CloudFront, Secrets Manager, STS); CloudWatch metrics fed for EFS and RDS."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from botocore.exceptions import ClientError

from atlbook.sandbox.aws.addons import ADDON_NOT_FOUND_MSG
from atlbook.testing import wait_until


def test_eks_addons(sandbox_reset: Any, eks_cluster: Any, aws_client: Any) -> None:
    eks_cluster(name="c", nodes=1)
    eks = aws_client("eks")
    created = eks.create_addon(clusterName="c", addonName="aws-ebs-csi-driver")["addon"]
    assert created["status"] == "CREATING" and created["addonVersion"].startswith("v1.")
    assert eks.list_addons(clusterName="c")["addons"] == ["aws-ebs-csi-driver"]
    with pytest.raises(eks.exceptions.ResourceInUseException):
        eks.create_addon(clusterName="c", addonName="aws-ebs-csi-driver")
    with pytest.raises(eks.exceptions.ResourceNotFoundException) as e:
        eks.describe_addon(clusterName="c", addonName="coredns")
    assert ADDON_NOT_FOUND_MSG.format(addon="coredns", cluster="c") in str(e.value)
    with pytest.raises(eks.exceptions.ResourceNotFoundException):
        eks.list_addons(clusterName="nope")
    with pytest.raises(eks.exceptions.InvalidParameterException):
        eks.create_addon(clusterName="c", addonName="not-an-addon")
    old = eks.describe_addon_versions(addonName="aws-ebs-csi-driver")["addons"][0]["addonVersions"][-1]
    assert (
        eks.update_addon(clusterName="c", addonName="aws-ebs-csi-driver", addonVersion=old["addonVersion"])[
            "update"
        ]["status"]
        == "Successful"
    )
    names = {a["addonName"] for a in eks.describe_addon_versions(kubernetesVersion="1.29")["addons"]}
    assert {"vpc-cni", "kube-proxy", "coredns", "aws-ebs-csi-driver", "aws-efs-csi-driver"} <= names
    assert eks.delete_addon(clusterName="c", addonName="aws-ebs-csi-driver")["addon"]["status"] == "DELETING"
    assert eks.list_addons(clusterName="c")["addons"] == []


def test_efs_update_file_system(sandbox_reset: Any, aws_client: Any) -> None:
    efs = aws_client("efs")
    fs = efs.create_file_system(CreationToken="home", ThroughputMode="bursting")["FileSystemId"]
    assert efs.update_file_system(FileSystemId=fs, ThroughputMode="elastic")["ThroughputMode"] == "elastic"
    out = efs.update_file_system(
        FileSystemId=fs, ThroughputMode="provisioned", ProvisionedThroughputInMibps=256
    )
    assert out["ProvisionedThroughputInMibps"] == 256
    assert efs.describe_file_systems(FileSystemId=fs)["FileSystems"][0]["ThroughputMode"] == "provisioned"
    with pytest.raises(efs.exceptions.FileSystemNotFound):
        efs.update_file_system(FileSystemId="fs-00000000", ThroughputMode="elastic")
    with pytest.raises(ClientError, match="BadRequest"):
        efs.update_file_system(FileSystemId=fs, ThroughputMode="turbo")


def test_rds_engine_versions(sandbox_reset: Any, aws_client: Any) -> None:
    rds = aws_client("rds")
    v15 = rds.describe_db_engine_versions(Engine="postgres", EngineVersion="15")["DBEngineVersions"]
    assert [v["EngineVersion"] for v in v15] == ["15.12", "15.13"]
    assert v15[0]["DBParameterGroupFamily"] == "postgres15"
    assert any(t["IsMajorVersionUpgrade"] for t in v15[0]["ValidUpgradeTarget"])
    default = rds.describe_db_engine_versions(Engine="postgres", DefaultOnly=True)["DBEngineVersions"]
    assert [v["EngineVersion"] for v in default] == ["17.5"]
    fam = rds.describe_db_engine_versions(Engine="postgres", DBParameterGroupFamily="postgres12")
    assert [v["EngineVersion"] for v in fam["DBEngineVersions"]] == ["12.22"]


def test_provisioning_calls_moto_serves(sandbox_reset: Any, aws_client: Any, eks_cluster: Any) -> None:
    ids = eks_cluster(name="c", nodes=1)
    efs = aws_client("efs")
    fs = efs.create_file_system(CreationToken="t")["FileSystemId"]
    efs.create_mount_target(FileSystemId=fs, SubnetId=ids["subnets"][0])
    assert len(efs.describe_mount_targets(FileSystemId=fs)["MountTargets"]) == 1
    rds = aws_client("rds")
    rds.create_db_parameter_group(
        DBParameterGroupName="atl", DBParameterGroupFamily="postgres15", Description="d"
    )
    rds.modify_db_parameter_group(
        DBParameterGroupName="atl",
        Parameters=[
            {"ParameterName": "max_connections", "ParameterValue": "500", "ApplyMethod": "pending-reboot"}
        ],
    )
    sm = aws_client("secretsmanager")
    arn = sm.create_secret(Name="atl/db", SecretString='{"password": "x"}')["ARN"]
    assert sm.get_secret_value(SecretId=arn)["SecretString"]
    assert aws_client("sts").get_caller_identity()["Account"] == "123456789012"
    assert aws_client("cloudfront").list_distributions()["DistributionList"]["Quantity"] == 0


def test_cloudwatch_metrics_fed(sandbox_reset: Any, aws_client: Any) -> None:
    aws_client("efs").create_file_system(CreationToken="home")
    aws_client("rds").create_db_instance(
        DBInstanceIdentifier="db",
        DBInstanceClass="db.m5.large",
        Engine="postgres",
        EngineVersion="15.13",
        MasterUsername="atl",
        MasterUserPassword="placeholder-pw",
        AllocatedStorage=100,
    )
    cw = aws_client("cloudwatch")

    def metrics(namespace: str) -> set[str]:
        return {m["MetricName"] for m in cw.list_metrics(Namespace=namespace)["Metrics"]}

    wait_until(
        lambda: {"BurstCreditBalance", "PercentIOLimit", "MeteredIOBytes"} <= metrics("AWS/EFS"),
        what="EFS metrics",
    )
    wait_until(
        lambda: {"DatabaseConnections", "CPUUtilization", "FreeStorageSpace"} <= metrics("AWS/RDS"),
        what="RDS metrics",
    )
    now = dt.datetime.now(dt.UTC)
    free = cw.get_metric_statistics(
        Namespace="AWS/RDS",
        MetricName="FreeStorageSpace",
        Dimensions=[{"Name": "DBInstanceIdentifier", "Value": "db"}],
        StartTime=now - dt.timedelta(minutes=5),
        EndTime=now + dt.timedelta(minutes=1),
        Period=60,
        Statistics=["Average"],
    )["Datapoints"]
    assert free and 0 < free[0]["Average"] <= 100 * 1024**3
