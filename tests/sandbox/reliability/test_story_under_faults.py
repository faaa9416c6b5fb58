"""Every runbook of the story through the runner (the real path: a kernel per run) at a 10 % API fault rate.

Covers (issue 10 item 1): with 429 (Retry-After), 500, 503, resets (half of them after the request was
processed) and slow answers injected into 10 % of the client requests to Kubernetes, every AWS service
and the product endpoints, each runbook — 00-sandbox, 10-provision apply, 20-capacity, 30-upgrade apply,
40-diagnose, 50-index-recovery apply — either completes, or stops cleanly (exit 1, a
record written, its error naming the step and the failed call) and completes on rerun. Afterwards:
0 duplicate AWS resources (by natural key in moto, and successful creates in the audit log: one EKS
cluster, one RDS instance, one EFS per token, one CloudFront distribution), 0 steps done twice (the
ledgers after every run), the post-checks and the story's own expectations hold, and a fresh plan of
10-provision has nothing left to do. Figures: faults injected / runs / clean stops / duplicates / steps
done twice, per runbook. Retry-After is sent as 0 here to keep the tier short (honouring a real wait is
proven in ``test_api_faults.py``).
"""

from __future__ import annotations

import json
import pathlib
from typing import Any

from conftest import (
    FAULT_RATE,
    NOTEBOOKS,
    SANDBOX_FILE,
    LedgerWatch,
    audit_creates,
    aws_duplicates,
    aws_inventory,
)

from atlbook import clients as clientsmod
from atlbook import demo, parameters, records, runner
from atlbook.provisioning import runbook as provisioning

MAX_RUNS = 4
LEDGERS = {
    "10-provision": "atlbook-ledger-10-provision",
    "30-upgrade": "atlbook-ledger-30-upgrade-jira",
    "50-index-recovery": "atlbook-ledger-50-index-recovery",
}


def _stop_is_clean(result: runner.RunResult) -> str:
    """A stopped run left a record whose error names the step and the call; returns that error."""
    summary = json.loads((pathlib.Path(result.record.path) / "summary.json").read_text())
    assert summary["outcome"] == "failed", summary
    err = result.error or {}
    assert err.get("ename") and err.get("evalue"), err
    text = f"{err.get('ename')}: {err.get('evalue')}"
    if err.get("ename") == "ApplyFailed":
        # "step i/n <id> (<what>) failed in <phase>: <service.Operation / verb kind name>: <error>"
        assert " failed in " in text and text.split("failed in ", 1)[1].split(":", 1)[0] in (
            "precondition",
            "action",
            "verify",
        ), text
    return text


def test_story_at_10_percent_api_faults(box, figures, tmp_path) -> None:
    spec = parameters.load_stack(str(SANDBOX_FILE))
    # the demo's story, 40-diagnose once (its second, "clean again" run is the demo's own test)
    steps = [s for i, s in enumerate(demo.story(spec.products.jira.version)) if i < 6]
    box.inject_api_faults(FAULT_RATE, seed=10, retry_after=0, slow_seconds=0.2)
    api = None
    watches: dict[str, LedgerWatch] = {}
    outcome: dict[str, dict[str, Any]] = {}
    for n, step in enumerate(steps):
        label = step.runbook if step.runbook not in outcome else f"{step.runbook} (again)"
        if step.before is not None:
            # the rehearsal's fault goes through the sandbox's own API, never faulted
            box.fault("index-corrupt", "jira-1")
        before = box.api_faults.total()
        runs, stops, errors_seen = 0, 0, []
        values: dict[str, Any] = {}
        while runs < MAX_RUNS:
            runs += 1
            result = runner.run(
                step.runbook,
                [SANDBOX_FILE],
                step.overrides,
                apply=step.apply,
                output_root=tmp_path / "records",
                directory=NOTEBOOKS,
            )
            if step.runbook in LEDGERS and api is not None:
                watches.setdefault(step.runbook, LedgerWatch(api, LEDGERS[step.runbook])).snap()
            if result.exit_code == 0:
                values = records.read(pathlib.Path(result.record.path))
                break
            stops += 1
            errors_seen.append(_stop_is_clean(result))
        assert result.exit_code == 0, (step.runbook, errors_seen)
        if step.expect is not None:
            assert step.expect(values) is None, (step.runbook, step.expect(values))
        if api is None and step.runbook == "10-provision":
            bundle = clientsmod.connect("sandbox")
            api = bundle.k8s
            watches[step.runbook] = LedgerWatch(api, LEDGERS[step.runbook])
            watches[step.runbook].snap()
        outcome[label] = {
            "runs": runs,
            "stops": stops,
            "faults": box.api_faults.total() - before,
            "errors": errors_seen,
            "order": n,
        }

    injected = box.api_faults.describe()
    box.api_faults_off()
    duplicates = aws_duplicates(box)
    creates = audit_creates(box)
    eks_clusters = sum(n for k, n in creates.items() if k.startswith("eks:POST") and k.endswith("/clusters"))
    rds = sum(n for k, n in creates.items() if k.startswith("rds:CreateDBInstance "))
    efs = sum(
        n for k, n in creates.items() if k.startswith("elasticfilesystem:POST /2015-02-01/file-systems")
    )
    cloudfront = sum(n for k, n in creates.items() if k.startswith("cloudfront:POST"))
    twice = {rb: list(w.twice) for rb, w in watches.items()}
    bundle = clientsmod.connect("sandbox")
    upgraded = spec.model_copy(deep=True)
    upgraded.products.jira.version = demo.next_patch_version(spec.products.jira.version)
    again = provisioning.make_plan(bundle, upgraded)  # the stack as built and upgraded: nothing left to do

    for label, row in sorted(outcome.items(), key=lambda kv: kv[1]["order"]):
        rb = label.split(" ")[0]
        figures.add(
            label,
            test="story@10%",
            faults_injected=row["faults"],
            runs=row["runs"],
            completed=1,
            clean_stops=row["stops"],
            duplicates=sum(duplicates.values()) if rb == "10-provision" else 0,
            steps_done_twice=len(twice.get(rb, [])) if label == rb else 0,
        )
    (tmp_path / "story-figures.json").write_text(
        json.dumps(
            {"outcome": outcome, "injected": injected, "duplicates": duplicates, "twice": twice}, indent=2
        )
    )
    assert injected["total"] > 0 and set(injected["injected"]) >= {"k8s", "products"}, injected
    assert sum(duplicates.values()) == 0, duplicates
    assert (eks_clusters, rds, cloudfront) == (1, 1, 1) and efs == aws_inventory(box)["efs"] > 0, creates
    assert all(not v for v in twice.values()), twice
    assert again.mutations == 0, [c.row() for c in again.changes if c.mutating]


def test_when_retries_run_out_the_record_names_the_step_and_the_call(box, figures, tmp_path) -> None:
    """EKS answering 503 to everything: 10-provision stops cleanly, its record names the step and the call."""
    box.inject_api_faults(1.0, "eks", "503", retry_after=0)
    result = runner.run(
        "10-provision", [SANDBOX_FILE], [], apply=True, output_root=tmp_path / "records", directory=NOTEBOOKS
    )
    injected = box.api_faults.total()
    box.api_faults_off()
    assert result.exit_code == 1
    text = _stop_is_clean(result)
    assert "eks.Describe" in text and "ServiceUnavailable" in text, text
    assert (result.error or {}).get("step"), result.error
    assert box.audit.mutations(source="aws") == []  # it stopped before changing anything
    figures.add(
        "10-provision (EKS down)",
        test="retries exhausted",
        faults_injected=injected,
        runs=1,
        completed=0,
        clean_stops=1,
        stop=f"{(result.error or {}).get('step')}: {text[:80]}",
    )
