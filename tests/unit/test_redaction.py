"""Redaction: every pattern kind, registered secrets in all their forms, the notebook walk, counts.

Aspects covered:
- each built-in pattern masks its kind and counts it (table-driven), and leaves the context readable;
- look-alikes that are not secrets stay (paths, git SHAs, URLs without passwords, references);
- registered secrets are masked exactly and as base64 (any alignment), URL-, HTML- and JSON-encoded;
- values shorter than MIN_SECRET_LENGTH are refused;
- the kernel → runner side file (ATLBOOK_SECRETS_FILE) round-trips;
- redact_notebook walks streams (split across flushes), every MIME type, errors, the injected
  parameters cell, cell and notebook metadata (papermill parameters/exception, widget state);
- counts are per kind and never contain values.
"""

from __future__ import annotations

import base64
import html
import json
import urllib.parse

import nbformat
import pytest

from atlbook.records import redaction

AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
PEM = "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA7x\nabcdef==\n-----END RSA PRIVATE KEY-----"
JWT = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW0ifQ.c2lnbmF0dXJlLXNpZ25hdHVyZQ"

PATTERNS = [
    ("aws_access_key_id", "key AKIAIOSFODNN7EXAMPLE here", "AKIAIOSFODNN7EXAMPLE"),
    ("aws_access_key_id", "sts ASIAY34FZKBOKMUTVV7A.", "ASIAY34FZKBOKMUTVV7A"),
    ("aws_secret_access_key", f"aws_secret_access_key = {AWS_SECRET}", AWS_SECRET),
    ("aws_secret_access_key", f'"SecretAccessKey": "{AWS_SECRET}"', AWS_SECRET),
    ("aws_secret_access_key", f"creds {AWS_SECRET} end", AWS_SECRET),
    ("auth_header", "Authorization: Bearer abcdefghijklmnop.qrs", "abcdefghijklmnop.qrs"),
    ("auth_header", "Authorization: Basic dXNlcjpwYXNzd29yZA==", "dXNlcjpwYXNzd29yZA=="),
    ("jwt", f"token {JWT}", JWT),
    ("url_password", "postgres://jira:hunter22x@db.example:5432/jira", "hunter22x"),
    ("password_field", "jdbc:postgresql://db:5432/jira?user=jira&password=hunter22x&ssl=true", "hunter22x"),
    ("password_field", "jdbc:sqlserver://db;user=sa;password=hunter22x;", "hunter22x"),
    ("password_field", "host=db user=jira password=hunter22x dbname=jira", "hunter22x"),
    ("password_field", '{"db_password": "hunter22x", "replicas": 2}', "hunter22x"),
    ("password_field", "JIRA_ADMIN_PASSWORD=hunter22x", "hunter22x"),
    ("password_field", "client_secret: hunter22x", "hunter22x"),
    ("private_key", f"key:\n{PEM}\nafter", "MIIEowIBAAKCAQEA7x"),
    ("private_key", "-----BEGIN PRIVATE KEY-----\nMIIEtruncated", "MIIEtruncated"),
    ("atlassian_token", "token ATATT3xFfGF0T4kYabcdefghijklmnopqrstuvwx=12AB34CD", "ATATT3xFfGF0T4kY"),
    (
        "atlassian_token",
        "app password ATBB4dZpWs9kYxqR3bUvTn8mLc7Jh2Gf0000",
        "ATBB4dZpWs9kYxqR3bUvTn8mLc7Jh2Gf",
    ),
]


@pytest.mark.parametrize(
    "kind, text, secret", PATTERNS, ids=[f"{k}-{i}" for i, (k, *_) in enumerate(PATTERNS)]
)
def test_pattern_masks_its_kind(kind: str, text: str, secret: str) -> None:
    r = redaction.Redactor()
    out = r.redact_text(text)
    assert secret not in out
    assert redaction.mask(kind) in out
    assert r.counts[kind] >= 1
    assert sum(r.counts.values()) == r.counts[kind], dict(r.counts)


NOT_SECRETS = [
    "path /work/main/atlbook/records/redaction/abc/Def1 x",
    "commit 0123456789abcdef0123456789abcdef01234567",
    "http://localhost:8080/status and https://jira.example.com:443/rest/api/2",
    'db_password = "env:ATLBOOK_DB_PASSWORD"',
    "admin: k8s-secret:atlassian/jira-admin#password",
    "aws-secretsmanager:arn:aws:secretsmanager:eu-west-1:123456789012:secret:db",
    "replicas: 2, version 11.3.1, pod jira-0 Ready",
    "Bearer",
    '"tls_secret": "jira-tls", "password": None, "api_key": null',
    "os.getcwd() and cwd=/work",
]


@pytest.mark.parametrize("text", NOT_SECRETS)
def test_look_alikes_are_left_alone(text: str) -> None:
    r = redaction.Redactor()
    assert r.redact_text(text) == text
    assert not r.counts


SECRET = "s3cr3t-Value!/+x"


@pytest.mark.parametrize(
    "form",
    [
        SECRET,
        base64.b64encode(SECRET.encode()).decode(),
        base64.b64encode(SECRET.encode()).decode().rstrip("="),
        base64.urlsafe_b64encode(SECRET.encode()).decode(),
        base64.b64encode(b"admin:" + SECRET.encode()).decode(),  # inside a longer base64 (alignment 0)
        base64.b64encode(b"x:" + SECRET.encode()).decode(),  # alignment 2
        base64.b64encode(b"ab:" + SECRET.encode() + b"\n").decode(),  # alignment 0, trailing
        base64.b64encode(b"u:" + SECRET.encode() + b"z").decode(),
        urllib.parse.quote(SECRET, safe=""),
        urllib.parse.quote_plus(SECRET),
        json.dumps({"v": SECRET}),
    ],
    ids=[
        "exact",
        "b64",
        "b64-nopad",
        "b64-url",
        "b64-in-basic",
        "b64-align2",
        "b64-trailing",
        "b64-align1",
        "url",
        "url-plus",
        "json",
    ],
)
def test_registered_secret_forms(form: str) -> None:
    r = redaction.Redactor([SECRET])
    out = r.redact_text(f"before {form} after")
    assert SECRET not in out
    assert form not in out
    assert r.counts["secret"] >= 1


def test_base64_inside_longer_base64_at_every_alignment() -> None:
    r = redaction.Redactor([SECRET])
    for prefix in (b"", b"a", b"ab", b"abc", b"abcd"):
        for suffix in (b"", b"z", b"zz"):
            blob = base64.b64encode(prefix + SECRET.encode() + suffix).decode()
            assert blob not in r.redact_text(blob), (prefix, suffix)


def test_html_and_json_escapes() -> None:
    value = 'pa"ss<wo>rd&1'
    r = redaction.Redactor([value])
    for form in (html.escape(value), json.dumps(value)[1:-1]):
        assert form not in r.redact_text(f"x {form} y")


def test_short_values_are_refused() -> None:
    r = redaction.Redactor()
    assert r.add_secret("abc") is False
    assert r.redact_text("abc abc") == "abc abc"
    assert r.add_secret("abcd") is True


def test_process_registry_and_side_file(tmp_path, monkeypatch) -> None:
    side = tmp_path / "secrets.jsonl"
    monkeypatch.setenv(redaction.SECRETS_FILE_ENV, str(side))
    redaction.clear_secrets()
    try:
        assert redaction.register_secret("kernel-side-Secret-1")
        assert redaction.register_secret("kernel-side-Secret-1")  # idempotent
        assert redaction.register_secret("line\nbreak-Secret-2")
        assert not redaction.register_secret("ab")
        assert redaction.registered_secret_count() == 2
        assert oct(side.stat().st_mode & 0o777) == "0o600"
        assert redaction.load_secrets_file(side) == ["kernel-side-Secret-1", "line\nbreak-Secret-2"]
        text, counts = redaction.redact_text("x kernel-side-Secret-1 y")
        assert "kernel-side-Secret-1" not in text and counts == {"secret": 1}
    finally:
        redaction.clear_secrets()
    assert redaction.load_secrets_file(tmp_path / "missing") == []


def _notebook(secret: str) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell(f'stack = "sandbox"\ntoken = "{secret}"\n')
    params.metadata["tags"] = ["injected-parameters"]
    code = nbformat.v4.new_code_cell("print(token)")
    code.outputs = [
        nbformat.v4.new_output("stream", name="stdout", text=secret[:6]),  # split across two flushes
        nbformat.v4.new_output("stream", name="stdout", text=secret[6:] + "\n"),
        nbformat.v4.new_output("stream", name="stderr", text=f"warn {secret}\n"),
        nbformat.v4.new_output(
            "display_data",
            data={
                "text/plain": f"'{secret}'",
                "text/html": [f"<b>{secret}</b>", "\n"],
                "image/svg+xml": f"<svg><text>{secret}</text></svg>",
                "image/png": base64.b64encode(b"\x89PNG not a secret").decode(),
                "application/json": {"nested": [secret, {"k": secret}]},
                "application/vnd.atlbook.record+json": {"name": "leak", "value": secret},
            },
            metadata={"note": secret},
        ),
        nbformat.v4.new_output("execute_result", data={"text/plain": secret}, execution_count=2),
        nbformat.v4.new_output(
            "error",
            ename="RuntimeError",
            evalue=f"login failed with {secret}",
            traceback=[f"\x1b[0;31m{secret}"],
        ),
    ]
    md = nbformat.v4.new_markdown_cell(f"pasted by mistake: {secret}")
    nb.cells = [params, code, md]
    nb.metadata["papermill"] = {
        "parameters": {"token": secret},
        "exception": True,
        "exception_message": f"x {secret}",
    }
    nb.metadata["widgets"] = {
        "application/vnd.jupyter.widget-state+json": {"state": {"m1": {"state": {"value": secret}}}}
    }
    return nb


def test_notebook_walk_every_channel() -> None:
    secret = "Nb-Walk-Secret-77"
    nb = _notebook(secret)
    png = nb.cells[1].outputs[3]["data"]["image/png"]
    out, counts = redaction.redact_notebook(nb, [secret])
    assert secret not in json.dumps(out)
    assert secret[:6] not in json.dumps(out["cells"][1]["outputs"])  # the split stream was coalesced
    assert out.cells[1].outputs[2]["data"]["image/png"] == png  # binary payloads untouched
    assert counts["secret"] >= 14
    assert set(counts) == {"secret"}
    nbformat.validate(out)


def test_patterns_in_notebook_are_counted_not_leaked() -> None:
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("1")
    cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text="AKIAIOSFODNN7EXAMPLE\n" + PEM)]
    nb.cells = [cell]
    out, counts = redaction.redact_notebook(nb)
    dumped = json.dumps(out)
    assert "AKIAIOSFODNN7EXAMPLE" not in dumped and "MIIEowIBAAKCAQEA7x" not in dumped
    assert counts == {"aws_access_key_id": 1, "private_key": 1}
    assert all(isinstance(v, int) for v in counts.values())


def test_redact_value_keeps_structure() -> None:
    value, counts = redaction.redact_value({"a": ["AKIAIOSFODNN7EXAMPLE", 3, None], "b": {"c": True}})
    assert value == {"a": [redaction.mask("aws_access_key_id"), 3, None], "b": {"c": True}}
    assert counts == {"aws_access_key_id": 1}


def test_all_is_in_step() -> None:
    public = {
        n
        for n in vars(redaction)
        if not n.startswith("_") and getattr(getattr(redaction, n), "__module__", None) == redaction.__name__
    }
    assert public <= set(redaction.__all__)
