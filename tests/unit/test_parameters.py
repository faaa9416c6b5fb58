"""Loading and validating parameters (:mod:`atlbook.parameters`).

Covers: precedence (notebook defaults < -f files in order < -p), deep merge and dotted overrides
(nested options, list indexes), provenance; YAML reading (dates stay text, duplicate keys, empty
file); ``load_stack`` from a name (walking up), a path, a mapping, a StackSpec; keys of other
runbooks ignored; typo suggestions at the top level and nested; every bad-input kind with the file,
key and value named (missing/unreadable/non-YAML/non-mapping file, unknown key, wrong type,
replicas < 1, literal secret in a file and in -p without the value in the message); the shipped
parameters files validate and use only schema keys, and example-production shows every key; a
property test: malformed documents and overrides only ever raise ParameterError naming a key.
"""

from __future__ import annotations

import copy
import os
import string
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from atlbook import errors, parameters, stack

ROOT = Path(__file__).resolve().parents[2]
PARAMETERS = ROOT / "parameters"
SANDBOX = PARAMETERS / "sandbox.yaml"
DECLARED: dict[str, Any] = {
    "stack": "sandbox",
    "apply": False,
    "product": "jira",
    "target_version": "",
    "max_unavailable": 1,
    "error_budget": 0.1,
    "products": ["jira"],
    "options": {"timeout": 30, "nested": {"a": 1}},
    "anything": None,
}
KNOWN = {"since", "alert", *DECLARED}
SECRET = "Tr0ub4dor&3-not-for-logs"


def minimal_stack(**changes: Any) -> dict[str, Any]:
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


@pytest.fixture
def write(tmp_path: Path) -> Any:
    def _write(name: str, content: Any) -> Path:
        path = tmp_path / name
        path.write_text(content if isinstance(content, str) else yaml.safe_dump(content), encoding="utf-8")
        return path

    return _write


def run(
    files: Sequence[Path] = (), overrides: Sequence[tuple[str, str]] = (), **kwargs: Any
) -> parameters.Resolved:
    kwargs.setdefault("base_dir", ROOT)
    return parameters.resolve(DECLARED, list(files), list(overrides), known_options=KNOWN, **kwargs)


# --- precedence, merge, provenance -----------------------------------------------------------------


def test_defaults_only_loads_the_named_stack() -> None:
    resolved = run()
    assert resolved.values["apply"] is False
    assert resolved.stack.name == "sandbox"
    assert resolved.values["stack"] == resolved.stack.model_dump(mode="json")
    assert resolved.provenance["apply"] == "default"
    assert resolved.provenance["stack.name"] == str(SANDBOX)
    assert resolved.provenance["stack.products.jira.resources.limits.memory"] == "default"


def test_files_in_order_then_overrides(write: Any) -> None:
    first = write("a.yaml", {"apply": True, "product": "confluence", "options": {"timeout": 60}})
    second = write("b.yaml", {"product": "bitbucket", "stack": {"products": {"jira": {"replicas": 3}}}})
    resolved = run([SANDBOX, first, second], [("product", "jira"), ("options.nested.b", "2")])
    assert resolved.values["apply"] is True
    assert resolved.values["product"] == "jira"
    assert resolved.values["options"] == {"timeout": 60, "nested": {"a": 1, "b": 2}}
    assert resolved.stack.products.jira.replicas == 3
    assert resolved.stack.products.confluence.replicas == 2  # from sandbox.yaml, merged deeply
    assert resolved.provenance["apply"] == str(first)
    assert resolved.provenance["product"] == "-p"
    assert resolved.provenance["options.timeout"] == str(first)
    assert resolved.provenance["options.nested.a"] == "default"
    assert resolved.provenance["stack.products.jira.replicas"] == str(second)
    assert resolved.provenance["stack.products.confluence.replicas"] == str(SANDBOX)


def test_dotted_override_into_the_stack_beats_files(write: Any) -> None:
    overlay = write("o.yaml", {"stack": {"products": {"jira": {"replicas": 3}}}})
    resolved = run(
        [SANDBOX, overlay],
        [
            ("stack.products.jira.replicas", "4"),
            ("stack.node_groups.0.desired_per_zone", "2"),
            ("stack.zones", "[us-east-1a, us-east-1b]"),
            ("stack.products.jira.version", "11.0"),
            ("stack.products.bitbucket.mesh.resources.requests.memory", "3Gi"),
        ],
    )
    mesh = resolved.stack.products.bitbucket.mesh.resources  # partial override keeps the other defaults
    assert (mesh.requests.cpu, mesh.requests.memory, mesh.limits.memory) == ("1", "3Gi", "3Gi")
    assert resolved.stack.products.jira.replicas == 4
    assert resolved.stack.node_groups[0].desired_per_zone == 2
    assert resolved.stack.zones == ["us-east-1a", "us-east-1b"]
    assert resolved.stack.products.jira.version == "11.0"  # text as typed, not the float 11.0
    assert resolved.provenance["stack.products.jira.replicas"] == "-p"


def test_override_on_the_default_stack_name_expands_it() -> None:
    resolved = run(overrides=[("stack.products.bitbucket.enabled", "false")])
    assert resolved.stack.name == "sandbox" and not resolved.stack.products.bitbucket.enabled


def test_a_stack_mapping_in_a_file_replaces_the_default_name(write: Any) -> None:
    own = write("own.yaml", {"stack": minimal_stack(name="own")})
    resolved = run([own])
    assert resolved.stack.name == "own"
    assert resolved.stack.products.confluence.synchrony.resources.requests.memory == "2.5G"  # schema default


def test_stack_by_name_or_path_in_overrides_and_files(write: Any) -> None:
    own = write("own.yaml", {"stack": minimal_stack(name="own")})
    pointer = write("pointer.yaml", {"stack": str(own)})
    assert run(overrides=[("stack", str(own))]).stack.name == "own"
    assert run([pointer]).stack.name == "own"


def test_stack_name_in_a_file_is_looked_up_beside_it_and_errors_name_the_file(tmp_path: Path) -> None:
    folder = tmp_path / "parameters"
    folder.mkdir()
    (folder / "real.yaml").write_text(yaml.safe_dump({"stack": minimal_stack(name="real")}))
    (folder / "pointer.yaml").write_text("stack: real\n")
    (folder / "dangling.yaml").write_text("stack: nowhere\n")
    (folder / "loop.yaml").write_text("stack: loop\n")
    assert run([folder / "pointer.yaml"]).stack.name == "real"
    with pytest.raises(errors.ParameterError, match="no parameters/nowhere.yaml") as info:
        run([folder / "dangling.yaml"])
    assert (info.value.source, info.value.key) == (str(folder / "dangling.yaml"), "stack")
    with pytest.raises(errors.ParameterError, match="cycle"):
        run([folder / "loop.yaml"])
    with pytest.raises(errors.ParameterError, match="no parameters/nowhere.yaml") as info:
        parameters.resolve({"stack": "nowhere"}, [], [], base_dir=tmp_path)
    assert info.value.source == "notebook default"


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("true", True),
        ("3", 3),
        ("0.5", 0.5),
        ("null", None),
        ("2026-01-02", "2026-01-02"),
        ("[a, b]", ["a", "b"]),
        ("a: [", "a: ["),
    ],
    ids=str,
)
def test_parse_override_reads_yaml_scalars_and_keeps_dates_as_text(raw: str, expected: Any) -> None:
    assert parameters.parse_override(raw) == expected


def test_str_option_keeps_override_text_and_float_accepts_int() -> None:
    resolved = run(overrides=[("target_version", "11.0"), ("error_budget", "1"), ("anything", "[1, 2]")])
    assert resolved.values["target_version"] == "11.0"
    assert resolved.values["error_budget"] == 1
    assert resolved.values["anything"] == [1, 2]


def test_options_of_other_runbooks_are_ignored_and_reported(write: Any) -> None:
    path = write("p.yaml", {"since": "2026-01-01"})
    resolved = parameters.resolve(
        {"stack": "sandbox"}, [path], [("alert", "x")], known_options=KNOWN, base_dir=ROOT
    )
    assert resolved.ignored == {"since": str(path), "alert": "-p"}
    assert "since" not in resolved.values


def test_dates_in_files_stay_text(write: Any) -> None:
    resolved = run([write("d.yaml", {"product": "x"}), write("e.yaml", "target_version: 2026-01-02\n")])
    assert resolved.values["target_version"] == "2026-01-02"


def test_empty_file_is_an_empty_mapping(write: Any) -> None:
    assert run([write("empty.yaml", "")]).values["apply"] is False


def test_advisories_are_passed_through(write: Any) -> None:
    resolved = run([SANDBOX], [("stack.storage.bitbucket_shared_home", "efs")])
    assert any("EFS" in note for note in resolved.advisories)


# --- load_stack ------------------------------------------------------------------------------------


def test_load_stack_by_name_walks_up_from_base_dir(tmp_path: Path) -> None:
    (tmp_path / "parameters").mkdir()
    (tmp_path / "parameters" / "lab.yaml").write_text(yaml.safe_dump({"stack": minimal_stack(name="lab")}))
    deep = tmp_path / "notebooks" / "sub"
    deep.mkdir(parents=True)
    assert parameters.load_stack("lab", base_dir=deep).name == "lab"


def test_load_stack_by_name_from_cwd(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT / "tests")
    assert parameters.load_stack("sandbox").name == "sandbox"


def test_load_stack_from_path_mapping_and_spec(write: Any) -> None:
    path = write("s.yaml", {"stack": minimal_stack(), "apply": True})
    spec = parameters.load_stack(str(path))
    assert spec.name == "demo"
    assert parameters.load_stack(spec.model_dump(mode="json")) == spec
    assert parameters.load_stack(spec) is spec


def test_load_stack_accepts_the_injected_mapping_from_resolve() -> None:
    resolved = run([SANDBOX])
    assert parameters.load_stack(resolved.values["stack"]) == resolved.stack


@pytest.mark.parametrize(
    "argument, fragment",
    [
        ("nowhere", "no parameters/nowhere.yaml"),
        ("bad name!", "not a parameters name"),
        (42, "expected a name"),
    ],
    ids=str,
)
def test_load_stack_refuses(argument: Any, fragment: str, tmp_path: Path) -> None:
    with pytest.raises(errors.ParameterError, match=fragment) as info:
        parameters.load_stack(argument, base_dir=tmp_path)
    assert info.value.key == "stack"


def test_load_stack_file_without_stack_key(write: Any) -> None:
    path = write("opts.yaml", {"apply": True})
    with pytest.raises(errors.ParameterError, match="no 'stack:' key") as info:
        parameters.load_stack(str(path))
    assert info.value.source == str(path)


def test_load_stack_refuses_literal_secret_anywhere_in_the_file(write: Any) -> None:
    path = write("s.yaml", {"stack": minimal_stack(), "jira_token": SECRET})
    with pytest.raises(errors.LiteralSecretError) as info:
        parameters.load_stack(str(path))
    assert SECRET not in str(info.value) and info.value.key == "jira_token"


# --- bad input: file, key path, value, what is allowed ---------------------------------------------


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.yaml"
    with pytest.raises(errors.ParameterError, match="not found") as info:
        run([path])
    assert info.value.source == str(path) and str(path) in str(info.value)


def test_unreadable_file(write: Any) -> None:
    path = write("locked.yaml", {"apply": True})
    path.chmod(0)
    try:
        if os.access(path, os.R_OK):
            pytest.skip("running as a user that can read any file")
        with pytest.raises(errors.ParameterError, match="cannot read") as info:
            run([path])
        assert info.value.source == str(path)
    finally:
        path.chmod(0o644)


def test_directory_instead_of_file(tmp_path: Path) -> None:
    with pytest.raises(errors.ParameterError, match="directory"):
        run([tmp_path])


def test_binary_file(tmp_path: Path) -> None:
    path = tmp_path / "bin.yaml"
    path.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(errors.ParameterError, match="cannot read"):
        run([path])


@pytest.mark.parametrize(
    "content, fragment",
    [
        ("stack: [1, 2\n", "not valid YAML at line 2"),
        ("apply: true\napply: false\n", "duplicate key 'apply'"),
        ("- a\n- b\n", "is a list, not a mapping"),
        ("just text\n", "is a text, not a mapping"),
        ("1: one\n", "top-level keys must be text"),
        ("key: !!python/object:os.system x\n", "not valid YAML"),
    ],
    ids=["yaml-syntax", "duplicate-key", "list", "scalar", "int-key", "unsafe-tag"],
)
def test_malformed_files(write: Any, content: str, fragment: str) -> None:
    path = write("bad.yaml", content)
    with pytest.raises(errors.ParameterError, match=fragment) as info:
        run([path])
    assert str(info.value).startswith(str(path))


@pytest.mark.parametrize(
    "document, key, suggestion",
    [
        ({"aply": True}, "aply", "apply"),
        ({"target_verison": "1"}, "target_verison", "target_version"),
        ({"stack": {"prodcts": {}}}, "stack.prodcts", "products"),
        ({"stack": {"products": {"jria": {}}}}, "stack.products.jria", "jira"),
        ({"stack": {"products": {"jira": {"replcas": 2}}}}, "stack.products.jira.replcas", "replicas"),
        ({"stack": {"database": {"multiaz": True}}}, "stack.database.multiaz", "multi_az"),
        (
            {"stack": {"products": {"confluence": {"synchrony": {"enabeld": True}}}}},
            "stack.products.confluence.synchrony.enabeld",
            "enabled",
        ),
    ],
    ids=lambda v: v if isinstance(v, str) and "." in v else None,
)
def test_unknown_key_in_file_has_a_suggestion(
    write: Any, document: dict[str, Any], key: str, suggestion: str
) -> None:
    path = write("typo.yaml", document)
    with pytest.raises(errors.ParameterError) as info:
        run([SANDBOX, path])
    assert (info.value.key, info.value.suggestion, info.value.source) == (key, suggestion, str(path))
    assert f"did you mean '{suggestion}'" in str(info.value)


@pytest.mark.parametrize(
    "key, suggestion",
    [("aplly", "apply"), ("stack.products.jira.versoin", "version"), ("stack.ingres.host", "ingress")],
    ids=str,
)
def test_unknown_key_in_override_has_a_suggestion(key: str, suggestion: str) -> None:
    with pytest.raises(errors.ParameterError) as info:
        run(overrides=[(key, "1")])
    assert info.value.source == "-p" and info.value.suggestion == suggestion
    assert str(info.value).startswith("-p: key '")


def test_unknown_key_without_a_close_match_lists_what_is_allowed() -> None:
    with pytest.raises(errors.ParameterError, match=r"unknown parameter \(allowed: .*apply") as info:
        run(overrides=[("zzzzzz", "1")])
    assert info.value.suggestion is None


@pytest.mark.parametrize(
    "document, key, value",
    [
        ({"apply": "yes please"}, "apply", "yes please"),
        ({"max_unavailable": True}, "max_unavailable", True),
        ({"max_unavailable": 1.5}, "max_unavailable", 1.5),
        ({"error_budget": "high"}, "error_budget", "high"),
        ({"target_version": 11.0}, "target_version", 11.0),
        ({"products": "jira"}, "products", "jira"),
        ({"options": [1]}, "options", [1]),
        ({"stack": {"products": {"jira": {"replicas": "two"}}}}, "stack.products.jira.replicas", "two"),
        ({"stack": {"database": {"multi_az": "maybe"}}}, "stack.database.multi_az", "maybe"),
        ({"stack": {"zones": "us-east-1a"}}, "stack.zones", "us-east-1a"),
        ({"stack": {"products": {"jira": {"version": 11.0}}}}, "stack.products.jira.version", 11.0),
        ({"stack": {"products": {"jira": "on"}}}, "stack.products.jira", "on"),
        ({"stack": 42}, "stack", 42),
    ],
    ids=lambda v: v if isinstance(v, str) and v[:1].isalpha() and " " not in v else None,
)
def test_wrong_type_names_file_key_value_and_allowed(
    write: Any, document: dict[str, Any], key: str, value: Any
) -> None:
    path = write("types.yaml", document)
    with pytest.raises(errors.ParameterError) as info:
        run([SANDBOX, path])
    err = info.value
    assert (err.source, err.key, err.value) == (str(path), key, value)
    assert repr(value) in str(err) or str(value) in str(err)


def test_wrong_type_in_override() -> None:
    with pytest.raises(
        errors.ParameterError, match=r"-p: key 'apply': wrong type, got 'maybe'.*allowed: true or false"
    ):
        run(overrides=[("apply", "maybe")])


@pytest.mark.parametrize("replicas", ["0", "-1"])
def test_replicas_below_one(write: Any, replicas: str) -> None:
    path = write("r.yaml", f"stack:\n  products:\n    confluence:\n      replicas: {replicas}\n")
    with pytest.raises(errors.ParameterError) as info:
        run([SANDBOX, path])
    assert (info.value.source, info.value.key, info.value.value) == (
        str(path),
        "stack.products.confluence.replicas",
        int(replicas),
    )
    assert "allowed: >= 1" in str(info.value)
    with pytest.raises(
        errors.ParameterError, match=r"^-p: key 'stack.products.jira.replicas': too small, got 0"
    ):
        run(overrides=[("stack.products.jira.replicas", "0")])


def test_incomplete_stack_says_what_is_missing(write: Any) -> None:
    path = write("partial.yaml", {"stack": {"products": {"jira": {"replicas": 3}}}})
    with pytest.raises(errors.ParameterError, match="stack is incomplete: name, target, zones") as info:
        run([path])
    assert info.value.source == str(path)


def test_error_counts_the_other_problems(write: Any) -> None:
    path = write(
        "two.yaml", {"stack": {"products": {"jira": {"replicas": 0}, "confluence": {"replicas": 0}}}}
    )
    with pytest.raises(errors.ParameterError, match=r"and 1 more problem"):
        run([SANDBOX, path])


@pytest.mark.parametrize(
    "key, fragment",
    [
        ("stack.target.kubeconfig", "'stack.target' is text"),
        ("stack.node_groups.5.name", "index from 0 to 0"),
        ("apply.deep", "has no sub-keys"),
        ("stack..name", "malformed key"),
    ],
    ids=str,
)
def test_override_paths_that_cannot_be_set(key: str, fragment: str) -> None:
    with pytest.raises(errors.ParameterError, match=fragment) as info:
        run([SANDBOX], [(key, "x")])
    assert info.value.source == "-p" and info.value.key == key


# --- literal secrets -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "document, key",
    [
        ({"stack": {"database": {"master_password": SECRET}}}, "stack.database.master_password"),
        (
            {"stack": {"products": {"jira": {"admin": {"password": SECRET}}}}},
            "stack.products.jira.admin.password",
        ),
        ({"jira_api_token": SECRET}, "jira_api_token"),
        ({"options": {"credentials": {"password": SECRET}}}, "options.credentials.password"),
        ({"options": {"private_key": SECRET}}, "options.private_key"),
        ({"options": {"db_passwd": 123456}}, "options.db_passwd"),
        ({"options": {"tokens": [SECRET]}}, "options.tokens.0"),
        ({"options": {"note": "AKIAIOSFODNN7EXAMPLE"}}, "options.note"),
        ({"options": {"url": f"postgresql://admin:{SECRET}@db:5432/jira"}}, "options.url"),
        ({"options": {"pem": "-----BEGIN RSA PRIVATE KEY-----\nabc"}}, "options.pem"),
    ],
    ids=lambda v: v if isinstance(v, str) and "." in v or v == "jira_api_token" else None,
)
def test_literal_secret_in_file_is_refused_without_the_value(
    write: Any, document: dict[str, Any], key: str
) -> None:
    path = write("secret.yaml", document)
    with pytest.raises(errors.LiteralSecretError) as info:
        run([SANDBOX, path])
    err = info.value
    assert (err.source, err.key, err.value) == (str(path), key, None)
    assert SECRET not in str(err) and "AKIAIOSFODNN7EXAMPLE" not in str(err) and "123456" not in str(err)
    assert "env:NAME" in str(err)  # says how to fix it


@pytest.mark.parametrize(
    "key, raw",
    [
        ("stack.database.master_password", SECRET),
        ("stack.products.bitbucket.admin.password", SECRET),
        ("options.api_key", SECRET),
        ("anything", f"https://user:{SECRET}@example.com/"),
        ("stack.database.master_password", "env:"),
        ("stack.database.master_password", "k8s-secret:no-key"),
    ],
    ids=["db", "admin", "option", "url", "empty-env", "bad-k8s"],
)
def test_literal_secret_in_override_is_refused_without_the_value(key: str, raw: str) -> None:
    with pytest.raises(errors.LiteralSecretError) as info:
        run([SANDBOX], [(key, raw)])
    assert info.value.source == "-p" and info.value.value is None
    assert SECRET not in str(info.value)


@pytest.mark.parametrize(
    "raw",
    [
        "env:OTHER_PASSWORD",
        "k8s-secret:atlassian/db#password",
        f"aws-secretsmanager:{'arn:aws:secretsmanager:us-east-1:123456789012:secret:x'}#pw",
    ],
)
def test_secret_references_are_accepted(raw: str) -> None:
    resolved = run([SANDBOX], [("stack.database.master_password", raw)])
    assert str(resolved.stack.database.master_password) == raw
    assert resolved.values["stack"]["database"]["master_password"] == raw


@pytest.mark.parametrize(
    "name, secret",
    [
        ("password", True),
        ("db_passwd", True),
        ("API_KEY", True),
        ("apikey", True),
        ("client_secret", True),
        ("private_key", True),
        ("credentials", True),
        ("pass", True),
        ("access_key", True),
        ("tls_secret", False),
        ("secret_name", False),
        ("password_file", False),
        ("passive", False),
        ("replicas", False),
        ("compass", False),
    ],
    ids=str,
)
def test_is_secret_key(name: str, secret: bool) -> None:
    assert parameters.is_secret_key(name) is secret


def test_literal_secret_in_notebook_defaults_is_refused() -> None:
    with pytest.raises(errors.LiteralSecretError) as info:
        parameters.resolve({"stack": "sandbox", "admin_password": SECRET}, [], [], base_dir=ROOT)
    assert info.value.source == "notebook defaults" and SECRET not in str(info.value)


# --- the shipped files and the schema --------------------------------------------------------------


def shipped_files() -> list[Path]:
    return sorted(PARAMETERS.glob("*.yaml"))


@pytest.mark.parametrize("path", shipped_files(), ids=lambda p: p.name)
def test_shipped_parameters_files_validate(path: Path) -> None:
    spec = parameters.load_stack(str(path))
    assert isinstance(spec, stack.StackSpec)
    resolved = parameters.resolve({"stack": "sandbox"}, [path], [], known_options=KNOWN, base_dir=ROOT)
    assert resolved.stack == spec


def runbook_options() -> set[str]:
    """Option names declared in the parameters cell of any runbook (papermill's inspection)."""
    import papermill

    options: set[str] = set()
    for notebook in sorted((ROOT / "notebooks").glob("[0-9]*.ipynb")):
        options |= set(papermill.inspect_notebook(str(notebook)))
    return options


def document_keys(node: Any, prefix: str, schema: set[str]) -> set[str]:
    """Dotted keys of a document; list items add no index; free-form mappings (tags, labels) stop."""
    keys: set[str] = set()
    if isinstance(node, dict):
        for key, value in node.items():
            path = f"{prefix}.{key}" if prefix else str(key)
            keys.add(path)
            if any(k.startswith(path + ".") for k in schema):
                keys |= document_keys(value, path, schema)
    elif isinstance(node, list):
        for item in node:
            keys |= document_keys(item, prefix, schema)
    return keys


@pytest.mark.parametrize("path", shipped_files(), ids=lambda p: p.name)
def test_every_key_in_parameters_files_is_known_to_the_schema(path: Path) -> None:
    schema = parameters.schema_keys()
    document = yaml.safe_load(path.read_text())
    assert set(document) <= {"stack", *runbook_options()}
    unknown = document_keys(document["stack"], "", schema) - schema
    assert not unknown


def test_example_production_shows_every_key_and_all_reference_kinds() -> None:
    path = PARAMETERS / "example-production.yaml"
    schema = parameters.schema_keys()
    document = yaml.safe_load(path.read_text())
    assert schema - document_keys(document["stack"], "", schema) == set()
    spec = parameters.load_stack(str(path))
    assert not spec.is_sandbox
    text = path.read_text()
    for kind in stack.SECRET_REF_KINDS:
        assert f": {kind}:" in text


def test_schema_keys() -> None:
    keys = parameters.schema_keys()
    assert {
        "name",
        "products.jira.replicas",
        "node_groups.taints.effect",
        "database.master_password",
        "tags",
    } <= keys
    assert not any(k.startswith("database.master_password.") for k in keys)


# --- property: malformed input only ever gives a ParameterError that names a key --------------------

SCHEMA_PATHS = sorted(parameters.schema_keys())
TEXT = st.text(alphabet=string.ascii_letters + string.digits + "-_ .:/#@[]{}!*&'\"", max_size=12)
SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(-3, 10**6), st.floats(allow_nan=False, allow_infinity=False), TEXT
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
    max_leaves=6,
)
KEYS = st.one_of(
    st.sampled_from(SCHEMA_PATHS), TEXT.filter(bool), st.sampled_from(["replcas", "prodcts", "jira", "0"])
)


def _set(document: dict[str, Any], dotted: str, value: Any) -> None:
    node: Any = document
    parts = dotted.split(".")
    for part in parts[:-1]:
        if not isinstance(node, dict):
            return
        node = node.setdefault(part, {})
    if isinstance(node, dict):
        node[parts[-1]] = value


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("property")


SANDBOX_DOC = yaml.safe_load(SANDBOX.read_text())


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    mutations=st.lists(st.tuples(KEYS, VALUES), min_size=1, max_size=4),
    top=st.dictionaries(
        st.sampled_from(["apply", "product", "max_unavailable", "options", "aply", "since"]),
        VALUES,
        max_size=2,
    ),
    overrides=st.lists(st.tuples(st.one_of(KEYS.map(lambda k: f"stack.{k}"), KEYS), TEXT), max_size=2),
)
def test_property_malformed_input_gives_a_parameter_error_naming_a_key(
    scratch: Path, mutations: list[tuple[str, Any]], top: dict[str, Any], overrides: list[tuple[str, str]]
) -> None:
    document = copy.deepcopy(SANDBOX_DOC)
    for dotted, value in mutations:
        _set(document["stack"], dotted, value)
    document.update(top)
    path = scratch / "doc.yaml"
    path.write_text(yaml.safe_dump(document), encoding="utf-8")
    try:
        resolved = run([path], overrides)
    except errors.ParameterError as e:
        assert e.key, f"no key named: {e}"
        assert e.source
    else:
        assert isinstance(resolved.stack, stack.StackSpec)


def mapping_paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Paths of every schema mapping in a document (free-form tags/labels excluded)."""
    found: list[tuple[Any, ...]] = []
    if isinstance(node, dict) and prefix[-1:] not in (("tags",), ("labels",)):
        found.append(prefix)
        for key, value in node.items():
            found += mapping_paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += mapping_paths(value, (*prefix, index))
    return found


STACK_MAPPINGS = mapping_paths(SANDBOX_DOC["stack"])


@settings(max_examples=100, deadline=None)
@given(
    where=st.sampled_from(STACK_MAPPINGS), bogus=st.sampled_from(["zz_top", "replcas", "colour", "enabeld"])
)
def test_property_an_unknown_nested_key_is_always_named(
    scratch: Path, where: tuple[Any, ...], bogus: str
) -> None:
    document = copy.deepcopy(SANDBOX_DOC)
    node = document["stack"]
    for part in where:
        node = node[part]
    node[bogus] = 1
    path = scratch / "nested.yaml"
    path.write_text(yaml.safe_dump(document), encoding="utf-8")
    with pytest.raises(errors.ParameterError) as info:
        run([path])
    assert info.value.key == ".".join(["stack", *map(str, where), bogus])
    assert info.value.source == str(path)
    assert "unknown key" in str(info.value)


@settings(max_examples=150, deadline=None)
@given(content=st.text(max_size=60))
def test_property_any_file_content_reads_or_raises_parameter_error(scratch: Path, content: str) -> None:
    path = scratch / "raw.yaml"
    path.write_text(content, encoding="utf-8", errors="surrogatepass") if False else path.write_bytes(
        content.encode("utf-8", "surrogatepass")
    )
    try:
        document = parameters.read_document(path)
    except errors.ParameterError as e:
        assert e.source == str(path)
    else:
        assert isinstance(document, dict)
