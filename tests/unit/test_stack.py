"""The stack schema (:mod:`atlbook.stack`).

Covers: Kubernetes quantity and JVM size parsing (tables); secret reference parsing (valid and refused
forms, round trip, no echo of the value); a minimal stack and its chart defaults (DB pools 100/100/80,
memory limit = request); the rules between fields (JVM memory, heap order, replicas, zones, node group
counts, target shape and region, EFS provisioned throughput); dump → validate round trip; advisories.
"""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from atlbook import stack


def minimal(**changes: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "name": "demo",
        "target": "sandbox",
        "zones": ["us-east-1a", "us-east-1b"],
        "node_groups": [{"name": "apps", "instance_types": ["m5.2xlarge"]}],
        "database": {"master_password": "env:DB_PASSWORD"},
        "ingress": {"host": "atlassian.example.com"},
    }
    doc.update(changes)
    return doc


def error_types(exc: ValidationError) -> set[str]:
    return {e["type"] for e in exc.errors()}


# --- quantities ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value, millicores",
    [
        ("2", 2000),
        (2, 2000),
        ("500m", 500),
        (0.5, 500),
        ("1.5", 1500),
        ("0.1", 100),
        ("250m", 250),
        ("1e1", 10000),
    ],
    ids=str,
)
def test_cpu_millicores(value: Any, millicores: int) -> None:
    assert stack.cpu_millicores(value) == millicores


@pytest.mark.parametrize("value", ["", "two", "2Gi", "2G", "-1", "0", "1.2.3", "2 cores"], ids=repr)
def test_cpu_millicores_refuses(value: str) -> None:
    with pytest.raises(ValueError):
        stack.cpu_millicores(value)


@pytest.mark.parametrize(
    "value, size",
    [
        ("2Gi", 2 * 2**30),
        ("2G", 2 * 10**9),
        ("512Mi", 512 * 2**20),
        ("2.5G", 2_500_000_000),
        ("1Ki", 1024),
        ("1k", 1000),
        ("1Ti", 2**40),
        (1073741824, 2**30),
        ("1e9", 10**9),
    ],
    ids=str,
)
def test_memory_bytes(value: Any, size: int) -> None:
    assert stack.memory_bytes(value) == size


@pytest.mark.parametrize("value", ["512m", "2gi", "2 Gi", "Gi", "-1Gi", "0", "2GB", "lots"], ids=repr)
def test_memory_bytes_refuses(value: str) -> None:
    with pytest.raises(ValueError):
        stack.memory_bytes(value)


def test_memory_bytes_suggests_mebibytes_for_milli_suffix() -> None:
    with pytest.raises(ValueError, match="512Mi"):
        stack.memory_bytes("512m")


@pytest.mark.parametrize(
    "value, size",
    [("768m", 768 * 2**20), ("1g", 2**30), ("12G", 12 * 2**30), ("2048k", 2**21), ("1024", 1024)],
    ids=str,
)
def test_jvm_bytes(value: str, size: int) -> None:
    assert stack.jvm_bytes(value) == size


@pytest.mark.parametrize("value", ["1Gi", "1.5g", "0m", "", "g", "-1g"], ids=repr)
def test_jvm_bytes_refuses(value: str) -> None:
    with pytest.raises(ValueError):
        stack.jvm_bytes(value)


# --- secret references -----------------------------------------------------------------------------

ARN = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod/rds-AbCdEf"


@pytest.mark.parametrize(
    "text, fields",
    [
        ("env:ATLBOOK_DB_PASSWORD", {"kind": "env", "name": "ATLBOOK_DB_PASSWORD"}),
        ("env:_x1", {"kind": "env", "name": "_x1"}),
        (
            "k8s-secret:atlassian/jira-admin#password",
            {"kind": "k8s-secret", "namespace": "atlassian", "name": "jira-admin", "key": "password"},
        ),
        ("k8s-secret:ns/s#tls.key", {"kind": "k8s-secret", "namespace": "ns", "name": "s", "key": "tls.key"}),
        (f"aws-secretsmanager:{ARN}", {"kind": "aws-secretsmanager", "arn": ARN, "json_key": None}),
        (
            f"aws-secretsmanager:{ARN}#password",
            {"kind": "aws-secretsmanager", "arn": ARN, "json_key": "password"},
        ),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_parse_secret_ref(text: str, fields: dict[str, Any]) -> None:
    ref = stack.parse_secret_ref(text)
    for name, value in fields.items():
        assert getattr(ref, name) == value
    assert str(ref) == text
    assert stack.parse_secret_ref(str(ref)) == ref


@pytest.mark.parametrize(
    "text",
    [
        "hunter2",
        "env:",
        "env:1ABC",
        "env:HAS SPACE",
        "k8s-secret:jira-admin#password",
        "k8s-secret:atlassian/jira-admin",
        "k8s-secret:Bad_NS/name#key",
        "aws-secretsmanager:not-an-arn",
        "aws-secretsmanager:arn:aws:s3:::bucket",
        "vault:secret/data/x",
        "",
    ],
    ids=repr,
)
def test_parse_secret_ref_refuses_without_echo(text: str) -> None:
    with pytest.raises(ValueError) as info:
        stack.parse_secret_ref(text)
    if text.split(":", 1)[-1]:
        assert text.split(":", 1)[-1] not in str(info.value)


def test_secret_ref_is_frozen_and_serialises_as_text() -> None:
    ref = stack.parse_secret_ref("env:X")
    with pytest.raises(ValidationError):
        ref.name = "Y"  # type: ignore[misc]
    spec = stack.StackSpec.model_validate(minimal())
    assert spec.model_dump(mode="json")["database"]["master_password"] == "env:DB_PASSWORD"


def test_literal_secret_in_stack_is_refused_without_the_value() -> None:
    with pytest.raises(ValidationError) as info:
        stack.StackSpec.model_validate(minimal(database={"master_password": "correct-horse-battery"}))
    assert error_types(info.value) == {"literal_secret"}
    assert "correct-horse-battery" not in str(info.value)


@pytest.mark.parametrize("value", [12345, True, {"kind": "env", "name": "X"}, ["env:X"]], ids=repr)
def test_non_text_secret_is_refused(value: Any) -> None:
    with pytest.raises(ValidationError) as info:
        stack.StackSpec.model_validate(minimal(database={"master_password": value}))
    assert error_types(info.value) == {"literal_secret"}


def test_admin_username_may_be_plain_or_a_reference() -> None:
    jira = {"admin": {"username": "env:JIRA_USER", "password": "k8s-secret:atlassian/jira#password"}}
    spec = stack.StackSpec.model_validate(
        minimal(products={"jira": jira, "confluence": {"admin": {"password": "env:P"}}})
    )
    assert spec.products.jira.admin is not None
    assert isinstance(spec.products.jira.admin.username, stack.SecretRef)
    assert spec.products.confluence.admin is not None
    assert spec.products.confluence.admin.username == "admin"


# --- a stack, its defaults and its rules -----------------------------------------------------------


def test_minimal_stack_gets_chart_defaults() -> None:
    spec = stack.StackSpec.model_validate(minimal())
    products = spec.products
    assert (products.jira.db_pool_max, products.confluence.db_pool_max, products.bitbucket.db_pool_max) == (
        100,
        100,
        80,
    )
    assert products.jira.image_ref == "atlassian/jira-software:11.3.1"
    assert products.jira.resources.limits.memory == products.jira.resources.requests.memory == "2G"
    assert products.jira.resources.cpu_request_millicores == 2000
    assert products.jira.jvm.footprint_bytes == (768 + 512) * 2**20
    assert spec.database.backup_retention_days == 7 and spec.database.multi_az
    assert spec.storage.bitbucket_shared_home == "nfs"
    assert spec.is_sandbox and spec.region == "us-east-1"
    assert spec.namespace_of("jira") == "atlassian"
    assert list(products.enabled()) == ["jira", "confluence", "bitbucket"]


def test_round_trip_through_json_dump() -> None:
    spec = stack.StackSpec.model_validate(minimal())
    assert stack.StackSpec.model_validate(spec.model_dump(mode="json")) == spec


def test_memory_limit_defaults_to_request() -> None:
    jira = {"resources": {"requests": {"cpu": "4", "memory": "8Gi"}}}
    spec = stack.StackSpec.model_validate(minimal(products={"jira": jira}))
    assert spec.products.jira.resources.limits.memory == "8Gi"
    assert spec.products.jira.resources.memory_limit_bytes == 8 * 2**30


@pytest.mark.parametrize(
    "products, fragment",
    [
        (
            {"jira": {"resources": {"requests": {"cpu": "2", "memory": "2Gi"}, "limits": {"memory": "4Gi"}}}},
            "must equal",
        ),
        (
            {"jira": {"resources": {"requests": {"cpu": "2", "memory": "1Gi"}}}},
            "does not fit in resources.requests.memory",
        ),
        ({"confluence": {"jvm": {"max_heap": "1g", "min_heap": "2g"}}}, "larger than max_heap"),
        (
            {"bitbucket": {"resources": {"requests": {"cpu": "2", "memory": "2Gi"}, "limits": {"cpu": "1"}}}},
            "limits.cpu",
        ),
        (
            {
                "confluence": {
                    "synchrony": {
                        "resources": {"requests": {"cpu": "1", "memory": "1Gi"}, "limits": {"memory": "2Gi"}}
                    }
                }
            },
            "synchrony",
        ),
    ],
    ids=[
        "jvm-limit-not-request",
        "heap-exceeds-memory",
        "min-heap-above-max",
        "cpu-limit-below-request",
        "synchrony-limit",
    ],
)
def test_jvm_memory_rules(products: dict[str, Any], fragment: str) -> None:
    with pytest.raises(ValidationError, match=fragment):
        stack.StackSpec.model_validate(minimal(products=products))


def test_resources_need_cpu_and_memory_requests() -> None:
    with pytest.raises(ValidationError, match="both cpu and memory"):
        stack.ResourcesSpec.model_validate({"requests": {"cpu": "2"}})


def test_partial_mappings_are_laid_over_the_defaults() -> None:
    products = {
        "jira": {"jvm": {"max_heap": "1g"}, "resources": {"requests": {"memory": "4Gi"}}},
        "bitbucket": {"mesh": {"resources": {"requests": {"memory": "3Gi"}}}, "nfs": {"storage": "1Ti"}},
    }
    spec = stack.StackSpec.model_validate(minimal(products=products))
    jira = spec.products.jira
    assert (jira.jvm.max_heap, jira.jvm.min_heap, jira.jvm.reserved_code_cache) == ("1g", "384m", "512m")
    assert (jira.resources.requests.cpu, jira.resources.requests.memory) == ("2", "4Gi")
    assert jira.resources.limits.memory == "4Gi"  # derived from the new request, not the old default
    mesh = spec.products.bitbucket.mesh.resources
    assert (mesh.requests.cpu, mesh.limits.cpu, mesh.limits.memory) == ("1", "2", "3Gi")
    assert spec.products.bitbucket.nfs.resources.limits.memory == "2Gi"
    assert stack.StackSpec.model_validate(spec.model_dump(mode="json")) == spec


def test_nfs_is_not_a_jvm_and_may_have_a_higher_limit() -> None:
    nfs = {"resources": {"requests": {"cpu": "1", "memory": "1Gi"}, "limits": {"memory": "2Gi"}}}
    spec = stack.StackSpec.model_validate(minimal(products={"bitbucket": {"nfs": nfs}}))
    assert spec.products.bitbucket.nfs.resources.memory_limit_bytes == 2 * 2**30


@pytest.mark.parametrize(
    "changes, loc, kind",
    [
        ({"products": {"jira": {"replicas": 0}}}, ("products", "jira", "replicas"), "greater_than_equal"),
        ({"products": {"jira": {"version": 11.3}}}, ("products", "jira", "version"), "value_error"),
        ({"zones": []}, ("zones",), "too_short"),
        ({"zones": ["us-east-1a", "us-east-1a"]}, ("zones",), "value_error"),
        ({"zones": ["us-east-1a", "eu-west-1b"]}, ("zones",), "value_error"),
        ({"zones": ["east"]}, ("zones",), "value_error"),
        ({"name": "Not_A_Label"}, ("name",), "value_error"),
        (
            {"database": {"master_password": "env:X", "backup_retention_days": 3}},
            ("database", "backup_retention_days"),
            "greater_than_equal",
        ),
        ({"storage": {"bitbucket_shared_home": "s3"}}, ("storage", "bitbucket_shared_home"), "literal_error"),
        (
            {"storage": {"shared_home": {"throughput_mode": "provisioned"}}},
            ("storage", "shared_home"),
            "value_error",
        ),
        (
            {"node_groups": [{"name": "a", "instance_types": ["m5.xlarge"], "min_per_zone": 3}]},
            ("node_groups", 0),
            "value_error",
        ),
        (
            {"node_groups": [{"name": "a", "instance_types": []}]},
            ("node_groups", 0, "instance_types"),
            "too_short",
        ),
        ({"target": "sandbx"}, ("target", "sandbox"), "literal_error"),
        (
            {"target": {"kubeconfig": "k", "context": "c", "aws_profile": "p"}},
            ("target", "real", "aws_region"),
            "missing",
        ),
        ({"colour": "blue"}, ("colour",), "extra_forbidden"),
        ({"products": {"jira": {"replicsa": 2}}}, ("products", "jira", "replicsa"), "extra_forbidden"),
        ({"ingress": {"host": "Not A Host"}}, ("ingress", "host"), "value_error"),
        (
            {"products": {"jira": {"resources": {"requests": {"cpu": "2", "memory": "512m"}}}}},
            ("products", "jira", "resources", "requests", "memory"),
            "value_error",
        ),
    ],
    ids=lambda v: ".".join(map(str, v)) if isinstance(v, tuple) else None,
)
def test_invalid_stacks(changes: dict[str, Any], loc: tuple[Any, ...], kind: str) -> None:
    with pytest.raises(ValidationError) as info:
        stack.StackSpec.model_validate(minimal(**changes))
    first = info.value.errors()[0]
    assert (first["loc"], first["type"]) == (loc, kind)


def test_real_target_region_must_match_zones() -> None:
    target = {
        "kubeconfig": "~/.kube/config",
        "context": "prod",
        "aws_profile": "prod",
        "aws_region": "eu-west-1",
    }
    with pytest.raises(ValidationError, match="does not match"):
        stack.StackSpec.model_validate(minimal(target=target))
    spec = stack.StackSpec.model_validate(minimal(target=target, zones=["eu-west-1a", "eu-west-1b"]))
    assert isinstance(spec.target, stack.TargetSpec) and not spec.is_sandbox


def test_advisories_name_risky_but_valid_choices() -> None:
    spec = stack.StackSpec.model_validate(
        minimal(
            zones=["us-east-1a"],
            products={"jira": {"replicas": 1}, "bitbucket": {"opensearch": {"enabled": False}}},
            storage={"bitbucket_shared_home": "efs", "shared_home": {"throughput_mode": "bursting"}},
            database={"master_password": "env:X", "multi_az": False},
        )
    )
    text = "\n".join(spec.advisories())
    for fragment in (
        "one availability zone",
        "jira has 1 replica",
        "EFS: git",
        "without OpenSearch",
        "Multi-AZ",
        "bursting",
    ):
        assert fragment in text
    assert stack.StackSpec.model_validate(minimal()).advisories() == []


def test_every_field_has_a_description() -> None:
    from pydantic import BaseModel

    missing = []
    for name in stack.__all__:
        obj = getattr(stack, name)
        if isinstance(obj, type) and issubclass(obj, BaseModel):
            missing += [f"{name}.{f}" for f, info in obj.model_fields.items() if not info.description]
    assert not missing


# --- product versions ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "version", ["11.3.1", "9.4.16", "10.2", "9.12.3-jdk17", "8.20.10.1", "11.3.2-broken"]
)
def test_product_versions_accepted(version: str) -> None:
    spec = stack.StackSpec.model_validate(minimal(products={"jira": {"version": version}}))
    assert spec.products.jira.version == version


@pytest.mark.parametrize("version", ["abc", "latest", "11", "11.x", "v11.3.1", "11.3.1 ", "11..3"])
def test_product_versions_refused_with_an_example(version: str) -> None:
    with pytest.raises(ValidationError) as info:
        stack.StackSpec.model_validate(minimal(products={"jira": {"version": version}}))
    assert "is not a product version like '11.3.1'" in str(info.value)
