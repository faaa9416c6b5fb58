"""Merge patch (RFC 7386), JSON patch (RFC 6902) and strategic merge patch with patch merge keys."""

from __future__ import annotations

from typing import Any

import pytest

from atlbook.sandbox.kube.errors import BadRequest, Invalid
from atlbook.sandbox.kube.patch import (
    json_patch,
    merge_key,
    merge_patch,
    removal_patch,
    strategic_merge_patch,
)

POD: dict[str, Any] = {
    "metadata": {"name": "p", "labels": {"a": "1"}, "finalizers": ["x"]},
    "spec": {
        "containers": [
            {
                "name": "app",
                "image": "app:1",
                "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
                "ports": [{"containerPort": 8080, "name": "http"}],
                "volumeMounts": [{"name": "h", "mountPath": "/h"}],
            },
            {"name": "side", "image": "side:1"},
        ],
        "tolerations": [{"key": "a", "operator": "Exists"}],
        "volumes": [{"name": "h", "emptyDir": {}}],
    },
}


def test_merge_patch() -> None:
    out = merge_patch(POD, {"metadata": {"labels": {"a": None, "b": "2"}}, "spec": {"tolerations": []}})
    assert out["metadata"]["labels"] == {"b": "2"} and out["spec"]["tolerations"] == []
    assert POD["metadata"]["labels"] == {"a": "1"}, "the target is not modified"


@pytest.mark.parametrize(
    "ops, check",
    [
        (
            [{"op": "add", "path": "/metadata/labels/b", "value": "2"}],
            lambda o: o["metadata"]["labels"]["b"] == "2",
        ),
        ([{"op": "remove", "path": "/spec/containers/1"}], lambda o: len(o["spec"]["containers"]) == 1),
        (
            [{"op": "replace", "path": "/spec/containers/0/image", "value": "app:2"}],
            lambda o: o["spec"]["containers"][0]["image"] == "app:2",
        ),
        (
            [{"op": "add", "path": "/spec/volumes/-", "value": {"name": "z"}}],
            lambda o: o["spec"]["volumes"][-1]["name"] == "z",
        ),
        (
            [{"op": "copy", "from": "/metadata/labels", "path": "/metadata/annotations"}],
            lambda o: o["metadata"]["annotations"] == {"a": "1"},
        ),
        (
            [{"op": "move", "from": "/metadata/labels/a", "path": "/metadata/labels/c"}],
            lambda o: o["metadata"]["labels"] == {"c": "1"},
        ),
        (
            [{"op": "add", "path": "/metadata/labels/a~1b", "value": "x"}],
            lambda o: o["metadata"]["labels"]["a/b"] == "x",
        ),
        ([{"op": "test", "path": "/metadata/name", "value": "p"}], lambda o: o == POD),
    ],
    ids=lambda v: v[0]["op"] if isinstance(v, list) else "",
)
def test_json_patch(ops: list[dict[str, Any]], check: Any) -> None:
    assert check(json_patch(POD, ops))


@pytest.mark.parametrize(
    "ops, exc",
    [
        ([{"op": "test", "path": "/metadata/name", "value": "q"}], Invalid),
        ([{"op": "replace", "path": "/metadata/nope", "value": 1}], Invalid),
        ([{"op": "frobnicate", "path": "/x"}], BadRequest),
        ({"op": "add"}, BadRequest),
    ],
    ids=["test-fails", "missing-path", "unknown-op", "not-a-list"],
)
def test_json_patch_errors(ops: Any, exc: type[Exception]) -> None:
    with pytest.raises(exc):
        json_patch(POD, ops)


def test_strategic_merge_keeps_other_containers_and_merges_by_key() -> None:
    out = strategic_merge_patch(
        POD,
        {
            "spec": {
                "containers": [
                    {
                        "name": "app",
                        "image": "app:2",
                        "env": [{"name": "B", "value": "3"}, {"name": "C", "value": "4"}],
                        "ports": [{"containerPort": 8080, "protocol": "TCP"}],
                    }
                ]
            }
        },
        "Pod",
    )
    app, side = out["spec"]["containers"]
    assert side == {"name": "side", "image": "side:1"}
    assert app["image"] == "app:2"
    assert app["env"] == [
        {"name": "A", "value": "1"},
        {"name": "B", "value": "3"},
        {"name": "C", "value": "4"},
    ]
    assert app["ports"] == [{"containerPort": 8080, "name": "http", "protocol": "TCP"}]
    assert app["volumeMounts"] == [{"name": "h", "mountPath": "/h"}]


def test_strategic_merge_directives_and_atomic_lists() -> None:
    out = strategic_merge_patch(
        POD,
        {
            "metadata": {"finalizers": ["y"], "$deleteFromPrimitiveList/finalizers": ["x"]},
            "spec": {
                "containers": [{"name": "side", "$patch": "delete"}],
                "tolerations": [{"key": "b", "operator": "Exists"}],
                "volumes": [{"name": "h", "$patch": "delete"}, {"name": "n", "emptyDir": {}}],
                "$setElementOrder/containers": [{"name": "app"}],
            },
        },
        "Pod",
    )
    assert [c["name"] for c in out["spec"]["containers"]] == ["app"]
    assert out["spec"]["tolerations"] == [{"key": "b", "operator": "Exists"}], (
        "tolerations are atomic (replace)"
    )
    assert out["spec"]["volumes"] == [{"name": "n", "emptyDir": {}}]
    assert out["metadata"]["finalizers"] == ["y"]
    replaced = strategic_merge_patch(POD, {"spec": {"$patch": "replace", "containers": []}}, "Pod")
    assert replaced["spec"] == {"containers": []}


@pytest.mark.parametrize(
    "kind, path, key",
    [
        ("Pod", ("spec", "containers"), "name"),
        ("Pod", ("spec", "containers", "ports"), "containerPort"),
        ("Service", ("spec", "ports"), "port"),
        ("Pod", ("spec", "tolerations"), None),
        ("Node", ("status", "addresses"), "type"),
        ("Endpoints", ("subsets", "addresses"), None),
        ("StatefulSet", ("spec", "template", "spec", "volumes"), "name"),
        ("Pod", ("status", "conditions"), "type"),
    ],
    ids=repr,
)
def test_merge_keys(kind: str, path: tuple[str, ...], key: str | None) -> None:
    assert merge_key(kind, path) == key


def test_strategic_merge_refuses_items_without_merge_key() -> None:
    with pytest.raises(BadRequest):
        strategic_merge_patch(POD, {"spec": {"containers": [{"image": "x"}]}}, "Pod")


def test_removal_patch_for_server_side_apply() -> None:
    prev = {
        "metadata": {"labels": {"a": "1", "b": "2"}},
        "data": {"x": "1", "y": "2"},
        "spec": {
            "containers": [
                {"name": "app", "image": "i:1", "env": [{"name": "A"}, {"name": "B"}]},
                {"name": "side", "image": "s:1"},
            ]
        },
    }
    new = {
        "metadata": {"labels": {"a": "1"}},
        "data": {"x": "1"},
        "spec": {"containers": [{"name": "app", "image": "i:1", "env": [{"name": "A"}]}]},
    }
    patch = removal_patch(prev, new, "Pod")
    assert patch == {
        "metadata": {"labels": {"b": None}},
        "data": {"y": None},
        "spec": {
            "containers": [
                {"name": "app", "env": [{"name": "B", "$patch": "delete"}]},
                {"name": "side", "$patch": "delete"},
            ]
        },
    }
    live = strategic_merge_patch({**prev, "status": {"phase": "Running"}}, patch, "Pod")
    assert live["data"] == {"x": "1"} and [c["name"] for c in live["spec"]["containers"]] == ["app"]
    assert live["status"] == {"phase": "Running"}, "fields the manager never applied stay"
