"""Scoping a diagnosis from an alert payload or by hand.

Aspects: the Datadog webhook and both OpsGenie shapes (webhook body, Alert API answer) in
``tests/data/alerts`` give product, pod, time and window; hand-given values win; a payload without a
product leaves it open; bad payloads and bad parameters are ConfigErrors that name what is wrong.
"""

from __future__ import annotations

import datetime as dt
import json
import pathlib

import pytest

from atlbook import errors
from atlbook.diagnosis import scope

ALERTS = pathlib.Path(__file__).resolve().parents[2] / "data" / "alerts"
NOW = dt.datetime(2026, 11, 26, 11, 30, tzinfo=dt.UTC)


def test_datadog_webhook() -> None:
    s = scope.scope(str(ALERTS / "datadog-webhook-jira-pod-restarts.json"), window_minutes=30, now=NOW)
    assert (s.source, s.product, s.pod) == ("datadog", "jira", "jira-1")
    assert s.alert_time == dt.datetime(2026, 11, 26, 11, 0, tzinfo=dt.UTC)
    assert s.window.start == s.alert_time - dt.timedelta(minutes=30)
    assert s.window.end == NOW
    assert s.alert_id == "148392011" and s.alert_status == "Triggered"
    assert "Jira pod restarting" in (s.alert_title or "")


def test_opsgenie_webhook() -> None:
    s = scope.scope(str(ALERTS / "opsgenie-webhook-jira-index.json"), now=NOW)
    assert (s.source, s.product, s.pod, s.alert_status) == ("opsgenie", "jira", "jira-0", "Create")
    assert s.alert_time == dt.datetime.fromtimestamp(1795690800.123, dt.UTC)


def test_opsgenie_api_answer_without_pod() -> None:
    s = scope.scope(str(ALERTS / "opsgenie-api-confluence-down.json"), now=NOW)
    assert (s.product, s.pod) == ("confluence", None)
    assert s.alert_time == dt.datetime(2026, 11, 26, 8, 0, tzinfo=dt.UTC)
    assert s.window.end == NOW


def test_alert_without_product_leaves_it_open() -> None:
    s = scope.scope(str(ALERTS / "datadog-webhook-efs-credits.json"), now=NOW)
    assert s.product is None and s.pod is None and s.source == "datadog"


def test_window_end_is_the_alert_when_it_is_in_the_future() -> None:
    s = scope.scope(str(ALERTS / "datadog-webhook-jira-pod-restarts.json"), now=NOW - dt.timedelta(hours=2))
    assert s.window.end == s.alert_time


def test_hand_given_values_win_over_the_alert() -> None:
    s = scope.scope(
        str(ALERTS / "datadog-webhook-jira-pod-restarts.json"), product="jira", node="jira-0", now=NOW
    )
    assert s.pod == "jira-0"


def test_manual_scope() -> None:
    s = scope.scope("", "", "bitbucket-1", 15, now=NOW)
    assert (s.source, s.product, s.pod) == ("manual", "bitbucket", "bitbucket-1")
    assert s.window.end - s.window.start == dt.timedelta(minutes=15)
    assert scope.scope(now=NOW).product is None
    assert s.to_dict()["pod"] == "bitbucket-1"


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ([1, 2], "must be a JSON object"),
        ({"foo": 1}, "neither a Datadog webhook"),
        ({"title": "x", "alert_scope": "pod_name:jira-1"}, "no alert time"),
        ({"title": "x", "date": "yesterday-ish"}, "is not a time"),
        (
            {"alert": {"message": "m", "createdAt": 1795690800000, "details": ["x"]}, "action": "Create"},
            "'details' must be a map",
        ),
        ({"data": {"message": "m", "createdAt": "not a date"}}, "OpsGenie 'createdAt'"),
        ({"title": "x", "date": 1795690800, "tags": "service:jira,pod_name:Jira_1"}, "is not a pod name"),
        (
            {"title": "x", "date": 1795690800, "tags": "service:jira,pod_name:confluence-1"},
            "does not belong to product 'jira'",
        ),
    ],
    ids=[
        "not-object",
        "unknown-format",
        "no-time",
        "bad-time",
        "bad-details",
        "bad-createdAt",
        "bad-pod",
        "pod-of-other-product",
    ],
)
def test_bad_payloads(doc: object, message: str) -> None:
    with pytest.raises(errors.ConfigError, match=message):
        scope.from_alert(doc, now=NOW)


def test_bad_files(tmp_path: pathlib.Path) -> None:
    with pytest.raises(errors.ConfigError, match="does not exist"):
        scope.scope(str(tmp_path / "missing.json"))
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(errors.ConfigError, match="is not JSON"):
        scope.scope(str(broken))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"product": "jiraa"}, "unknown product 'jiraa'"),
        ({"node": "jira 1"}, "is not a pod name"),
        ({"product": "jira", "node": "bitbucket-0"}, "does not belong"),
        ({"window_minutes": 0}, "positive number"),
        ({"window_minutes": -5}, "positive number"),
    ],
)
def test_bad_manual_parameters(kwargs: dict, message: str) -> None:
    with pytest.raises(errors.ConfigError, match=message):
        scope.scope(now=NOW, **kwargs)


def test_examples_are_valid_json_of_each_format() -> None:
    sources = {scope.parse_alert(json.loads(p.read_text())).source for p in ALERTS.glob("*.json")}
    assert sources == {"datadog", "opsgenie"}
