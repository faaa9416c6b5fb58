"""Targets: resolving 'sandbox' and real targets, and check_target's refusals (files only, no API call).

Covers: sandbox dir from $ATLBOOK_SANDBOX_DIR and by walking up; relative kubeconfig paths; mapping,
duck-typed and stack-wrapped targets; refusals — sandbox not up (no dir, no target.yaml, stale pid),
missing kubeconfig, missing context, missing AWS profile — each a TargetError that says how to fix it.
"""

from __future__ import annotations

import os
import pathlib
import types

import pytest
import yaml

from atlbook import errors
from atlbook.clients import target as tgt

KUBECONFIG = {
    "apiVersion": "v1",
    "kind": "Config",
    "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:6443"}}],
    "users": [{"name": "u", "user": {"token": "x"}}],
    "contexts": [{"name": "prod", "context": {"cluster": "c", "user": "u"}}],
    "current-context": "prod",
}


@pytest.fixture
def sandbox(tmp_path: pathlib.Path) -> pathlib.Path:
    d = tmp_path / "repo" / ".atlbook" / "sandbox"
    d.mkdir(parents=True)
    (d / "kubeconfig").write_text(
        yaml.safe_dump(
            {
                **KUBECONFIG,
                "contexts": [{"name": "atlbook-sandbox", "context": {"cluster": "c", "user": "u"}}],
            }
        )
    )
    (d / "target.yaml").write_text(
        yaml.safe_dump(
            {
                "kubeconfig": "kubeconfig",
                "context": "atlbook-sandbox",
                "aws_region": "us-east-1",
                "aws_endpoint_url": "http://127.0.0.1:5000",
                "aws_access_key_id": "testing",
                "aws_secret_access_key": "testing",
                "database_tunnel": {"host": "127.0.0.1", "port": 55432},
            }
        )
    )
    return d


@pytest.fixture
def kubeconfig(tmp_path: pathlib.Path) -> pathlib.Path:
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(KUBECONFIG))
    return path


@pytest.fixture
def aws_config(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = tmp_path / "aws-config"
    cfg.write_text("[default]\nregion = eu-west-1\n[profile ops]\nregion = eu-west-1\n")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(cfg))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))


def test_sandbox_found_by_walking_up(sandbox: pathlib.Path) -> None:
    deep = sandbox.parent.parent / "notebooks" / "x"
    deep.mkdir(parents=True)
    resolved = tgt.check_target("sandbox", start=deep, environ={})
    assert resolved.name == "sandbox"
    assert resolved.kubeconfig == sandbox / "kubeconfig"
    assert resolved.context == "atlbook-sandbox"
    assert resolved.database_tunnel == ("127.0.0.1", 55432)
    assert resolved.aws_endpoint_url == "http://127.0.0.1:5000"
    assert "testing" not in repr(resolved)
    assert "aws_secret_access_key" not in resolved.to_dict()


def test_sandbox_from_environment(sandbox: pathlib.Path, tmp_path: pathlib.Path) -> None:
    resolved = tgt.resolve_target("sandbox", start=tmp_path, environ={"ATLBOOK_SANDBOX_DIR": str(sandbox)})
    assert resolved.sandbox_dir == sandbox


def test_sandbox_with_live_pid_passes(sandbox: pathlib.Path) -> None:
    (sandbox / "pid").write_text(str(os.getpid()))
    assert tgt.check_target("sandbox", start=sandbox, environ={}).pid == os.getpid()


def test_real_target_from_mapping_object_and_stack(kubeconfig: pathlib.Path, aws_config: None) -> None:
    raw = {
        "kubeconfig": str(kubeconfig),
        "context": "prod",
        "aws_profile": "ops",
        "aws_region": "eu-west-1",
        "database_tunnel": {"host": "127.0.0.1", "port": "6543"},
    }
    from_map = tgt.check_target(raw)
    from_obj = tgt.check_target(types.SimpleNamespace(**{**raw, "aws_endpoint_url": None}))
    from_stack = tgt.check_target(types.SimpleNamespace(target=raw, name="prod"))
    assert from_map == from_obj == from_stack
    assert from_map.name == "custom" and from_map.database_tunnel == ("127.0.0.1", 6543)
    assert tgt.resolve_target(from_map) is from_map


def test_real_target_from_stack_targetspec(kubeconfig: pathlib.Path, aws_config: None) -> None:
    from atlbook import stack

    spec = stack.TargetSpec(
        kubeconfig=str(kubeconfig),
        context="prod",
        aws_profile="ops",
        aws_region="eu-west-1",
        database_tunnel=stack.DatabaseTunnel(host="127.0.0.1", port=5433),
    )
    resolved = tgt.check_target(spec)
    assert resolved.kubeconfig == kubeconfig and resolved.database_tunnel == ("127.0.0.1", 5433)
    assert resolved.product_url is None
    tunnelled = tgt.check_target(
        spec.model_copy(update={"product_url": "https://localhost:8443{context_path}"})
    )
    assert tunnelled.product_url == "https://localhost:8443{context_path}"
    assert tunnelled.to_dict()["product_url"] == "https://localhost:8443{context_path}"


def _bad_cases() -> list[object]:
    return [
        pytest.param("no-sandbox-dir", "run `atlbook sandbox up`", id="sandbox-dir-missing"),
        pytest.param("no-target-yaml", "run `atlbook sandbox up`", id="sandbox-target-yaml-missing"),
        pytest.param("stale-pid", "stale pid", id="sandbox-stale-pid"),
        pytest.param("missing-kubeconfig", "does not exist", id="kubeconfig-missing"),
        pytest.param("missing-context", "context 'staging' is not in kubeconfig", id="context-missing"),
        pytest.param("missing-profile", "AWS profile 'nope' does not exist", id="profile-missing"),
        pytest.param("unknown-string", "unknown target", id="unknown-string"),
        pytest.param("empty-mapping", "has none of", id="empty-mapping"),
        pytest.param("product-url-placeholder", "unknown placeholder.s. port", id="product-url-placeholder"),
        pytest.param("product-url-scheme", "must start with http", id="product-url-scheme"),
        pytest.param("product-url-template", "not a valid template", id="product-url-template"),
    ]


@pytest.mark.parametrize("case, expected", _bad_cases())
def test_bad_targets_are_refused_with_a_fix(
    case: str,
    expected: str,
    tmp_path: pathlib.Path,
    sandbox: pathlib.Path,
    kubeconfig: pathlib.Path,
    aws_config: None,
) -> None:
    env: dict[str, str] = {}
    start = sandbox
    target: object = "sandbox"
    if case == "no-sandbox-dir":
        start = pathlib.Path("/")
    elif case == "no-target-yaml":
        (sandbox / "target.yaml").unlink()
    elif case == "stale-pid":
        (sandbox / "pid").write_text("999999999")
    elif case == "missing-kubeconfig":
        target = {"kubeconfig": str(tmp_path / "nope"), "context": "prod"}
    elif case == "missing-context":
        target = {"kubeconfig": str(kubeconfig), "context": "staging"}
    elif case == "missing-profile":
        target = {"kubeconfig": str(kubeconfig), "context": "prod", "aws_profile": "nope"}
    elif case == "unknown-string":
        target = "production"
    elif case == "empty-mapping":
        target = {}
    elif case.startswith("product-url"):
        url = {
            "product-url-placeholder": "https://lb:{port}{context_path}",
            "product-url-scheme": "lb.internal{context_path}",
            "product-url-template": "https://lb/{context_path",
        }[case]
        target = {"kubeconfig": str(kubeconfig), "context": "prod", "product_url": url}
    with pytest.raises(errors.TargetError, match=expected.replace("(", r"\(").replace("`", "`")):
        tgt.check_target(target, start=start, environ=env)


def test_target_error_is_a_config_error() -> None:
    with pytest.raises(errors.ConfigError):
        tgt.resolve_target(None)


@pytest.mark.parametrize(
    "state, expected",
    [
        ({"running": True, "pid": 999999999}, "stale pid 999999999"),
        ({"running": False, "pid": 1}, "says it was stopped"),
    ],
    ids=["state-json-stale-pid", "state-json-stopped"],
)
def test_sandbox_state_json(sandbox: pathlib.Path, state: dict[str, object], expected: str) -> None:
    import json

    (sandbox / "state.json").write_text(json.dumps(state))
    with pytest.raises(errors.TargetError, match=expected):
        tgt.check_target("sandbox", start=sandbox, environ={})


def test_sandbox_state_json_live_pid(sandbox: pathlib.Path) -> None:
    import json

    (sandbox / "state.json").write_text(json.dumps({"running": True, "pid": os.getpid()}))
    assert tgt.check_target("sandbox", start=sandbox, environ={}).pid == os.getpid()
