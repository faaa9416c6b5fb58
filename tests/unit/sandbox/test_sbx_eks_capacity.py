"""EKS node math: max pods, kube-reserved CPU, allocatable (eks-capacity.md §(e) worked numbers),
node names, and the EKS bearer-token authenticator."""

from __future__ import annotations

import base64
import datetime as dt

import pytest

from atlbook.sandbox.eks_mirror import (
    authenticate_eks_token,
    kube_reserved_cpu_millicores,
    max_pods,
    node_name,
    node_resources,
)


@pytest.mark.parametrize(
    "itype, pods, cpu_reserved, alloc_cpu",
    [
        ("m5.large", 29, 70, "1930m"),
        ("m5.xlarge", 58, 80, "3920m"),
        ("m5.2xlarge", 58, 90, "7910m"),
        ("r6i.2xlarge", 58, 90, "7910m"),
        ("m5.4xlarge", 234, 110, "15890m"),
        ("m5.8xlarge", 234, 150, "31850m"),
    ],
)
def test_worked_numbers(itype: str, pods: int, cpu_reserved: int, alloc_cpu: str) -> None:
    assert max_pods(itype) == pods
    cap, alloc = node_resources(itype)
    assert kube_reserved_cpu_millicores(int(cap["cpu"])) == cpu_reserved
    assert alloc["cpu"] == alloc_cpu
    assert alloc["pods"] == str(pods)


def test_allocatable_memory_m5_xlarge() -> None:
    _, alloc = node_resources("m5.xlarge")
    gib = int(alloc["memory"].removesuffix("Ki")) / 1024 / 1024
    assert gib == pytest.approx(13.8, abs=0.1)


def test_unknown_instance_defaults_to_110_pods() -> None:
    assert max_pods("zz9.mega") == 110


def test_node_name() -> None:
    assert node_name("10.0.1.23", "us-east-1") == "ip-10-0-1-23.ec2.internal"
    assert node_name("10.0.1.23", "eu-west-1") == "ip-10-0-1-23.eu-west-1.compute.internal"


def _token(url: str) -> str:
    return "k8s-aws-v1." + base64.urlsafe_b64encode(url.encode()).decode().rstrip("=")


GOOD = (
    "http://127.0.0.1:5000/?Action=GetCallerIdentity&Version=2011-06-15&X-Amz-Algorithm=AWS4-HMAC-SHA256"
    "&X-Amz-Credential=AKIAX%2F20261126%2Fus-east-1%2Fsts%2Faws4_request&X-Amz-Date={date}"
    "&X-Amz-Expires=60&X-Amz-SignedHeaders={signed}&X-Amz-Signature=ab"
)


def _stamp(minutes_ago: int) -> str:
    # Taken when the test runs, not at collection: a long suite must not age the "fresh" token.
    return (dt.datetime.now(dt.UTC) - dt.timedelta(minutes=minutes_ago)).strftime("%Y%m%dT%H%M%SZ")


@pytest.mark.parametrize(
    "url, minutes_ago, user",
    [
        (GOOD.replace("{signed}", "host%3Bx-k8s-aws-id"), 0, "arn:aws:iam::123456789012:user/AKIAX"),
        (GOOD.replace("{signed}", "host"), 0, None),
        (GOOD.replace("{signed}", "host%3Bx-k8s-aws-id"), 20, None),
        ("https://sts.amazonaws.com/?Action=AssumeRole&X-Amz-Credential=A%2Fx&X-Amz-Signature=ab", 0, None),
        ("https://sts.amazonaws.com/?Action=GetCallerIdentity", 0, None),
    ],
    ids=["valid", "cluster-id-unsigned", "expired", "wrong-action", "unsigned"],
)
def test_token(url: str, minutes_ago: int, user: str | None) -> None:
    assert authenticate_eks_token(_token(url.replace("{date}", _stamp(minutes_ago)))) == user


@pytest.mark.parametrize("token", ["k8s-aws-v1.!!!", "some-other-token"], ids=["garbage", "not-eks"])
def test_malformed_token(token: str) -> None:
    assert authenticate_eks_token(token) is None
