"""AWS side of the bundle with moto: sessions from a target, endpoint URLs, EKS tokens, k8s from EKS.

Covers: nothing built at connect(); sandbox keys and region used; the target's endpoint URL, else
AWS_ENDPOINT_URL; the EKS token has the `aws eks get-token` shape (k8s-aws-v1. + unpadded base64url of a
presigned STS GetCallerIdentity URL signing x-k8s-aws-id) and is registered for redaction;
k8s_from_eks builds an ApiClient from describe_cluster's endpoint and CA with a bearer token, and
refreshes the token when it ages.
"""

from __future__ import annotations

import base64
import urllib.parse

import pytest
from moto import mock_aws

from atlbook import errors
from atlbook.clients import aws, connect, k8s, secrets

TARGET = {"aws_region": "us-east-1", "aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


def test_connect_builds_nothing() -> None:
    c = connect(TARGET, check=False)
    assert c._session is None and c._aws == {} and c._k8s is None


def test_endpoint_from_target_then_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:4999")
    assert (
        connect({**TARGET, "aws_endpoint_url": "http://127.0.0.1:5000"}, check=False)
        .aws("eks")
        .meta.endpoint_url
        == "http://127.0.0.1:5000"
    )
    assert connect(TARGET, check=False).aws("eks").meta.endpoint_url == "http://127.0.0.1:4999"


def test_clients_are_cached_and_configured() -> None:
    c = connect(TARGET, check=False)
    eks = c.aws("eks")
    assert c.aws("eks") is eks
    assert eks.meta.region_name == "us-east-1"
    assert eks.meta.config.retries["mode"] == "standard"


def test_missing_profile_is_a_target_error(tmp_path: object, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    c = connect({"aws_profile": "nope", "aws_region": "us-east-1"}, check=False)
    with pytest.raises(errors.TargetError, match="nope"):
        c.aws("eks")


def decode_token(token: str) -> urllib.parse.ParseResult:
    assert token.startswith("k8s-aws-v1.")
    body = token.removeprefix("k8s-aws-v1.")
    assert "=" not in body
    url = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)).decode()
    return urllib.parse.urlparse(url)


@mock_aws
def test_eks_token_shape() -> None:
    c = connect(TARGET, check=False)
    token = aws.eks_token(c.aws("sts"), "prod-eks")
    url = decode_token(token)
    query = urllib.parse.parse_qs(url.query)
    assert url.scheme == "https" and "sts" in url.netloc
    assert query["Action"] == ["GetCallerIdentity"]
    assert query["X-Amz-Expires"] == ["60"]
    assert "x-k8s-aws-id" in query["X-Amz-SignedHeaders"][0].split(";")
    assert token in secrets.resolved_values()
    # handlers are removed again: a plain presign has no k8s header
    plain = c.aws("sts").generate_presigned_url("get_caller_identity", ExpiresIn=60)
    assert "x-k8s-aws-id" not in plain


@mock_aws
def test_k8s_from_eks() -> None:
    c = connect(TARGET, check=False)
    eks = c.aws("eks")
    ec2 = c.aws("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24")["Subnet"]["SubnetId"]
    eks.create_cluster(
        name="prod", roleArn="arn:aws:iam::123456789012:role/eks", resourcesVpcConfig={"subnetIds": [subnet]}
    )
    api = c.k8s_from_eks("prod")
    assert c.k8s is api
    cluster = eks.describe_cluster(name="prod")["cluster"]
    assert api.configuration.host == cluster["endpoint"]
    bearer = api.configuration.get_api_key_with_prefix("BearerToken", alias="authorization")
    assert bearer.startswith("Bearer k8s-aws-v1.")
    assert api.configuration.ca_cert_data is None  # moto's CA is not a PEM: system CAs (warned)


@mock_aws
def test_k8s_from_eks_missing_cluster() -> None:
    c = connect(TARGET, check=False)
    with pytest.raises(errors.NotFound):
        c.k8s_from_eks("nope")


def test_eks_client_with_pem_ca() -> None:
    pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
    api = k8s.client_from_eks("https://x.eks", base64.b64encode(pem.encode()).decode(), lambda: "t")
    assert api.configuration.ca_cert_data == pem
    assert api.configuration.verify_ssl


def test_eks_client_token_refresh() -> None:
    now = [0.0]
    issued = iter(["t1", "t2", "t3"])
    pem = base64.b64encode(b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n").decode()
    api = k8s.client_from_eks("https://x.eks", pem, lambda: next(issued), token_ttl=600, clock=lambda: now[0])
    cfg = api.configuration
    assert cfg.get_api_key_with_prefix("BearerToken", alias="authorization") == "Bearer t1"
    now[0] = 599
    assert cfg.get_api_key_with_prefix("BearerToken", alias="authorization") == "Bearer t1"
    now[0] = 601
    assert cfg.get_api_key_with_prefix("BearerToken", alias="authorization") == "Bearer t2"


def test_k8s_without_kubeconfig_needs_eks() -> None:
    with pytest.raises(errors.TargetError, match="k8s_from_eks"):
        connect(TARGET, check=False).k8s  # noqa: B018


@mock_aws
def test_raw_calls_paginators_and_waiters_raise_atlbook_errors() -> None:
    import botocore.exceptions

    eks = connect(TARGET, check=False).aws("eks")
    assert isinstance(eks, aws.TranslatingClient) and eks.meta.service_model.service_name == "eks"
    with pytest.raises(errors.NotFound) as info:
        eks.describe_cluster(name="nope")
    assert info.value.operation == "DescribeCluster"
    assert isinstance(info.value.__cause__, botocore.exceptions.ClientError)
    ec2 = connect(TARGET, check=False).aws("ec2")
    with pytest.raises(errors.NotFound):
        list(ec2.get_paginator("describe_instances").paginate(InstanceIds=["i-0123456789abcdef0"]))
    assert eks.get_paginator("list_clusters").paginate().build_full_result()["clusters"] == []
    with pytest.raises(errors.AwsApiError) as waited:
        eks.get_waiter("cluster_active").wait(name="nope", WaiterConfig={"Delay": 0, "MaxAttempts": 1})
    assert not isinstance(waited.value, botocore.exceptions.WaiterError)
    with pytest.raises(errors.Invalid):
        eks.describe_cluster()  # parameter validation, client-side
