"""Label selector parsing and matching (string and structured forms), field selectors, quantities."""

from __future__ import annotations

import pytest

from atlbook.sandbox.kube.errors import FIELD_LABEL_MSG, BadRequest
from atlbook.sandbox.kube.quantity import format_bytes, parse_quantity
from atlbook.sandbox.kube.selectors import (
    compile_label_selector,
    match_label_selector,
    parse_field_selector,
    parse_label_selector,
    selector_to_string,
)

LABELS = {"app": "jira", "tier": "web", "zone": "us-east-1a"}


@pytest.mark.parametrize(
    "selector, matches",
    [
        ("", True),
        ("app=jira", True),
        ("app==jira", True),
        ("app=confluence", False),
        ("app!=jira", False),
        ("missing!=x", True),
        ("app in (jira,confluence)", True),
        ("app in (bitbucket)", False),
        ("app notin (jira)", False),
        ("missing notin (x)", True),
        ("tier", True),
        ("missing", False),
        ("!missing", True),
        ("!tier", False),
        ("app=jira, tier in (web), !missing", True),
        ("topology.kubernetes.io/zone", False),
    ],
    ids=repr,
)
def test_label_selector_strings(selector: str, matches: bool) -> None:
    assert compile_label_selector(selector)(LABELS) is matches


@pytest.mark.parametrize("bad", ["app in (", "=x", "app=jira,,", "a b"], ids=repr)
def test_malformed_label_selectors_are_refused(bad: str) -> None:
    with pytest.raises(BadRequest):
        parse_label_selector(bad)


@pytest.mark.parametrize(
    "selector, matches",
    [
        ({}, True),
        (None, False),
        ({"matchLabels": {"app": "jira"}}, True),
        ({"matchLabels": {"app": "x"}}, False),
        ({"matchExpressions": [{"key": "app", "operator": "In", "values": ["jira"]}]}, True),
        ({"matchExpressions": [{"key": "app", "operator": "NotIn", "values": ["jira"]}]}, False),
        ({"matchExpressions": [{"key": "tier", "operator": "Exists"}]}, True),
        ({"matchExpressions": [{"key": "tier", "operator": "DoesNotExist"}]}, False),
    ],
    ids=repr,
)
def test_structured_selectors(selector: dict[str, object] | None, matches: bool) -> None:
    assert match_label_selector(selector, LABELS) is matches


def test_selector_to_string() -> None:
    sel = {
        "matchLabels": {"b": "2", "a": "1"},
        "matchExpressions": [{"key": "c", "operator": "In", "values": ["y", "x"]}],
    }
    assert selector_to_string(sel) == "a=1,b=2,c in (x,y)"


@pytest.mark.parametrize(
    "selector, matches",
    [
        ("metadata.name=p", True),
        ("metadata.name!=p", False),
        ("spec.nodeName=n1", True),
        ("spec.nodeName=", False),
        ("status.phase=Running,metadata.namespace=default", True),
    ],
    ids=repr,
)
def test_field_selectors(selector: str, matches: bool) -> None:
    pod = {
        "metadata": {"name": "p", "namespace": "default"},
        "spec": {"nodeName": "n1"},
        "status": {"phase": "Running"},
    }
    assert parse_field_selector(selector, "pods")(pod) is matches


def test_unsupported_field_label() -> None:
    with pytest.raises(BadRequest) as e:
        parse_field_selector("spec.replicas=1", "configmaps")
    assert e.value.message == FIELD_LABEL_MSG.format(label="spec.replicas")


@pytest.mark.parametrize(
    "text, value",
    [
        ("500m", 0.5),
        ("2", 2.0),
        ("1Gi", 1024.0**3),
        ("512Mi", 512 * 1024.0**2),
        ("1G", 1e9),
        ("1e3", 1000.0),
        ("1.5", 1.5),
        (None, 0.0),
        (3, 3.0),
    ],
    ids=repr,
)
def test_quantities(text: str | int | None, value: float) -> None:
    assert parse_quantity(text) == pytest.approx(value)


def test_bad_quantity_and_format() -> None:
    with pytest.raises(ValueError):
        parse_quantity("12 apples")
    assert format_bytes(4 * 1024.0**3) == "4Gi" and format_bytes(1000) == "1000"
