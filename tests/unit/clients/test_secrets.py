"""Secret references: parsing, resolution (env, Kubernetes Secret, moto Secrets Manager), redaction hook.

Covers: reference grammar (from atlbook.stack) with ids; env resolution; k8s-secret through a source;
aws-secretsmanager whole string and #JSONKEY with moto; errors name the reference, never the value;
every resolved value is registered and announced to listeners (late listeners are replayed).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator, Mapping

import pytest
from moto import mock_aws

from atlbook import errors
from atlbook.clients import connect, secrets


@pytest.fixture(autouse=True)
def clean_registry() -> Iterator[None]:
    secrets.clear()
    yield
    secrets.clear()


@pytest.mark.parametrize(
    "ref, kind",
    [
        ("env:DB_PASSWORD", "env"),
        ("k8s-secret:atlassian/jira-admin#password", "k8s-secret"),
        (
            "aws-secretsmanager:arn:aws:secretsmanager:us-east-1:123456789012:secret:rds-AbCdEf",
            "aws-secretsmanager",
        ),
        (
            "aws-secretsmanager:arn:aws:secretsmanager:us-east-1:123456789012:secret:rds-AbCdEf#password",
            "aws-secretsmanager",
        ),
    ],
    ids=["env", "k8s-secret", "secretsmanager", "secretsmanager-jsonkey"],
)
def test_parse(ref: str, kind: str) -> None:
    parsed = secrets.parse(ref)
    assert parsed.kind == kind and str(parsed) == ref
    assert secrets.is_reference(ref)


@pytest.mark.parametrize(
    "ref",
    [
        "hunter2",
        "env:",
        "env:1BAD",
        "k8s-secret:ns/name",
        "k8s-secret:name#key",
        "aws-secretsmanager:not-an-arn",
        "vault:x",
    ],
    ids=[
        "literal",
        "env-empty",
        "env-bad-name",
        "k8s-no-key",
        "k8s-no-namespace",
        "sm-not-arn",
        "unknown-scheme",
    ],
)
def test_malformed_references_do_not_echo(ref: str) -> None:
    with pytest.raises(errors.SecretResolutionError) as info:
        secrets.parse(ref)
    if ref == "hunter2":
        assert "hunter2" not in str(info.value)


def test_env() -> None:
    assert secrets.resolve("env:PW", environ={"PW": "s3cr3t-value"}) == "s3cr3t-value"
    assert "s3cr3t-value" in secrets.resolved_values()


def test_env_missing_names_the_reference() -> None:
    with pytest.raises(errors.SecretResolutionError, match="env:NOPE"):
        secrets.resolve("env:NOPE", environ={})


class FakeSource:
    def __init__(self, data: Mapping[str, str] | Exception) -> None:
        self.data = data

    def read_secret_data(self, namespace: str, name: str) -> Mapping[str, str]:
        if isinstance(self.data, Exception):
            raise self.data
        return self.data

    def secretsmanager_string(self, secret_id: str) -> str:
        raise AssertionError("Must not be called!")


def test_k8s_secret() -> None:
    src = FakeSource({"password": base64.b64encode(b"admin-pass-1").decode()})
    assert secrets.resolve("k8s-secret:atl/jira-admin#password", src) == "admin-pass-1"
    assert "admin-pass-1" in secrets.resolved_values()


@pytest.mark.parametrize(
    "data, match",
    [
        ({"other": "eA=="}, "has no key 'password'"),
        ({"password": "%%%"}, "not base64"),
        (errors.api_error(errors.K8sApiError, "nope", status=404), "cannot read the Secret"),
    ],
    ids=["missing-key", "not-base64", "secret-missing"],
)
def test_k8s_secret_errors(data: object, match: str) -> None:
    with pytest.raises(errors.SecretResolutionError, match=match) as info:
        secrets.resolve("k8s-secret:atl/jira-admin#password", FakeSource(data))  # type: ignore[arg-type]
    assert "k8s-secret:atl/jira-admin#password" in str(info.value)


def test_needs_a_source() -> None:
    with pytest.raises(errors.SecretResolutionError, match="connected target"):
        secrets.resolve("k8s-secret:atl/x#y")


@mock_aws
def test_secretsmanager_with_moto() -> None:
    c = connect(
        {"aws_region": "us-east-1", "aws_access_key_id": "testing", "aws_secret_access_key": "testing"},
        check=False,
    )
    sm = c.aws("secretsmanager")
    plain = sm.create_secret(Name="plain", SecretString="plain-secret-1")["ARN"]
    doc = sm.create_secret(
        Name="doc", SecretString=json.dumps({"username": "atl", "password": "json-pw-22"})
    )["ARN"]
    assert c.resolve_secret(f"aws-secretsmanager:{plain}") == "plain-secret-1"
    assert c.resolve_secret(f"aws-secretsmanager:{doc}#password") == "json-pw-22"
    values = secrets.resolved_values()
    assert {"plain-secret-1", "json-pw-22", "atl"} <= values
    with pytest.raises(errors.SecretResolutionError, match="has no key 'nope'"):
        c.resolve_secret(f"aws-secretsmanager:{doc}#nope")
    with pytest.raises(errors.SecretResolutionError, match="not a JSON object"):
        c.resolve_secret(f"aws-secretsmanager:{plain}#password")
    missing = plain.replace("plain", "missing")
    with pytest.raises(errors.SecretResolutionError, match="cannot read the secret") as info:
        c.resolve_secret(f"aws-secretsmanager:{missing}")
    assert isinstance(info.value.__cause__, errors.NotFound)


def test_listeners_get_every_value_including_earlier_ones() -> None:
    secrets.register("early-value-1")
    got: list[str] = []
    secrets.add_listener(got.append)
    secrets.resolve("env:X", environ={"X": "later-value-2"})
    secrets.register("later-value-2")  # idempotent: announced once
    secrets.register("")  # ignored
    assert got == ["early-value-1", "later-value-2"]
    secrets.remove_listener(got.append)
    secrets.register("after-removal-3")
    assert got == ["early-value-1", "later-value-2"]


def test_db_refuses_literal_password() -> None:
    c = connect({"aws_region": "us-east-1", "database_tunnel": {"host": "127.0.0.1", "port": 1}}, check=False)
    with pytest.raises(errors.LiteralSecretError):
        c.db("jira", user="atl", password="hunter2")
