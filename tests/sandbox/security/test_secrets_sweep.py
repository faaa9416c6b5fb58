"""Secrets sweep over every channel (issue 10, item 4): 0 planted values in any record, log or CLI output.

Distinct values are planted, each through one channel, and reach the runbooks through ``-p`` overrides
given as references (never as values):

- ``env``: the Jira admin password (``env:ATLBOOK_SANDBOX_ADMIN_PASSWORD``) and the database master
  password (``env:ATLBOOK_SANDBOX_DB_PASSWORD``), from the operator's environment;
- ``k8s-secret``: the Confluence admin password, a key of the Kubernetes Secret ``default/sweep``;
- ``aws-secretsmanager``: the Bitbucket admin password, a JSON key of a Secrets Manager secret in moto;
- product echo: the test-only :mod:`atlbook.sandbox.products.debug_echo` makes every product node echo
  its admin user/password (raw, basic-auth base64, the request's ``os_password`` query) in each JSON
  answer and in a DEBUG log line, and Jira's index summary fail with the password in the error message
  (an exception channel);
- pod logs: those DEBUG lines, read by 40-diagnose for the crash-looping pod it investigates.

Then ``atlbook run`` (the CLI, in a subprocess, as an operator runs it) executes 10-provision (apply),
20-capacity, 30-upgrade (apply), 40-diagnose, 50-index-recovery (apply) and 40-diagnose again; every
file of every record (notebook, HTML, summary, the kernel log, index.jsonl) and the CLI's
stdout/stderr are searched for each value, raw, URL-encoded and base64 (standard and URL-safe, any
alignment): 0 found. The channels are shown to have carried the values (the product logs hold them,
the records counted masks). Records are owner-only (files 0600, directories 0700).
"""

from __future__ import annotations

import base64
import json
import os
import pathlib
import secrets
import stat
import subprocess
import sys
import urllib.parse
from typing import Any

import boto3

from atlbook import demo, parameters
from atlbook.sandbox.products import debug_echo

ROOT = pathlib.Path(__file__).resolve().parents[3]
SANDBOX_YAML = ROOT / "parameters" / "sandbox.yaml"
_SCRIPT = pathlib.Path(sys.executable).parent / "atlbook"
ATLBOOK = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "atlbook.cli"]


def _b64_cores(value: str) -> set[str]:
    """Substrings every base64 encoding of ``value`` contains, for each of the 3 byte alignments."""
    raw = value.encode()
    out: set[str] = set()
    for k in range(3):
        for enc in (base64.b64encode, base64.urlsafe_b64encode):
            text = enc(b"\0" * k + raw).decode().rstrip("=")
            lead = 4 if k else 0
            out.add(text[lead:-4])
    return out


def needles(value: str) -> set[str]:
    forms = {value, urllib.parse.quote(value, safe=""), urllib.parse.quote_plus(value)}
    forms |= _b64_cores(value)
    forms |= _b64_cores(f"admin:{value}")
    return {f for f in forms if len(f) >= 8}


def test_no_planted_secret_reaches_any_record_or_output(sandbox: Any, tmp_path: pathlib.Path) -> None:
    box = sandbox
    box.reset()
    planted = {
        "env:jira-admin": f"JiraSweep/{secrets.token_hex(8)}+{secrets.token_hex(4)}",
        "env:db-master": f"dbSweep{secrets.token_hex(10)}",
        "k8s-secret:confluence-admin": f"ConfSweep/{secrets.token_hex(8)}+{secrets.token_hex(4)}",
        "aws-secretsmanager:bitbucket-admin": f"BbSweep/{secrets.token_hex(8)}+{secrets.token_hex(4)}",
    }
    box.kube.store.create(
        "secrets",
        {
            "metadata": {"name": "sweep", "namespace": "default"},
            "type": "Opaque",
            "data": {"password": base64.b64encode(planted["k8s-secret:confluence-admin"].encode()).decode()},
        },
        "default",
    )
    sm = boto3.client(
        "secretsmanager",
        endpoint_url=box.aws.url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    arn = sm.create_secret(
        Name="atlbook/sweep",
        SecretString=json.dumps({"password": planted["aws-secretsmanager:bitbucket-admin"]}),
    )["ARN"]
    refs = [
        "-p", "stack.products.confluence.admin.password", "k8s-secret:default/sweep#password",
        "-p", "stack.products.bitbucket.admin.password", f"aws-secretsmanager:{arn}#password",
    ]  # fmt: skip
    records_dir = tmp_path / "records"
    env = {
        **os.environ,
        "ATLBOOK_SANDBOX_DIR": str(box.state_dir),
        "ATLBOOK_RECORDS_DIR": str(records_dir),
        "ATLBOOK_SANDBOX_ADMIN_PASSWORD": planted["env:jira-admin"],
        "ATLBOOK_SANDBOX_DB_PASSWORD": planted["env:db-master"],
        "IPYTHONDIR": str(tmp_path / "ipython"),
    }
    outputs: list[str] = []

    def run(runbook: str, *args: str) -> int:
        proc = subprocess.run(
            [*ATLBOOK, "run", runbook, "-f", str(SANDBOX_YAML), *refs, *args],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        outputs.extend([proc.stdout, proc.stderr])
        return proc.returncode

    spec = parameters.load_stack(str(SANDBOX_YAML))
    codes = {"10-provision": run("10-provision", "--apply")}
    codes["20-capacity"] = run("20-capacity")
    codes["30-upgrade"] = run(
        "30-upgrade", "-p", "product", "jira", "-p", "target_version",
        demo.next_patch_version(spec.products.jira.version), "--apply",
    )  # fmt: skip
    box.faults_book.set(debug_echo.ECHO)
    box.faults_book.set(debug_echo.ECHO_ERRORS, "jira")
    try:
        box.fault("index-corrupt", "jira-1")
        box.fault("crash-loop", "confluence-1")
        codes["40-diagnose"] = run("40-diagnose")
        box.fault("crash-loop", "confluence-1", clear=True)
        codes["50-index-recovery"] = run("50-index-recovery", "--apply")
        codes["40-diagnose again"] = run("40-diagnose")
        logs = "\n".join(line for n in box.products.nodes() for line in n.all_logs())
    finally:  # not in the fault catalogue: the sandbox's own clear_all does not know them
        box.faults_book.clear(debug_echo.ECHO)
        box.faults_book.clear(debug_echo.ECHO_ERRORS)
    assert codes["10-provision"] == 0, outputs[:2]

    # the channels carried the values: the product nodes echoed them (logs), the runs resolved them
    for key in ("env:jira-admin", "k8s-secret:confluence-admin", "aws-secretsmanager:bitbucket-admin"):
        assert planted[key] in logs, f"{key} was not echoed by the products"

    files = [p for p in records_dir.rglob("*") if p.is_file()]
    assert len([p for p in records_dir.iterdir() if p.is_dir()]) == len(codes)
    texts = {str(p): p.read_bytes().decode("utf-8", errors="replace") for p in files}
    texts.update({f"cli output {i}": t for i, t in enumerate(outputs)})
    found = {
        (key, where)
        for key, value in planted.items()
        for where, text in texts.items()
        for n in needles(value)
        if n in text
    }
    masked = 0
    for p in records_dir.glob("*/summary.json"):
        summary = json.loads(p.read_text())
        assert summary["redaction"]["ran"] is True
        masked += int(summary["redaction"]["masked_total"])
    print(
        f"\nsecrets planted: {len(planted)} values × {len(needles(planted['env:jira-admin']))} forms; "
        f"files searched: {len(files)} + CLI output of {len(codes)} runs; found: {len(found)}; "
        f"masks counted in the records: {masked}; exit codes: {codes}"
    )
    assert found == set(), sorted(found)
    assert masked > 0
    for p in [records_dir, *records_dir.rglob("*")]:
        mode = stat.S_IMODE(p.stat().st_mode)
        assert mode == (0o700 if p.is_dir() else 0o600), (p, oct(mode))
