"""The runbooks in JupyterLab, in headless Chromium, against the sandbox.

Covers (issue 9):
- 10-provision: Run All shows the parameter panel and the plan table; *Apply* asks for confirmation
  naming the creates / updates / deletes and the stack; *Confirm* applies with a live status table and
  shows the post-checks table; the sandbox then holds the stack (official kubernetes client);
- 40-diagnose: the findings table and the timeline plot render;
- 30-upgrade: Run All against a two-node Jira cluster shows the plan table (node steps included) and
  *Apply*; the confirmation names the counts and the stack; *Confirm* upgrades node by node with a live
  status table and shows the post-checks on the new version; the sandbox's Jira nodes then run it;
- the parameter panel: an invalid value shows the schema's error text and changes nothing; a valid edit
  makes the plan stale and disables *Apply*.
Each test leaves ``screenshot.png`` (and named shots) under its ``tmp_path``.
"""

from __future__ import annotations

import re

from jupyterlab_ui import (
    apply_and_confirm,
    open_notebook,
    run_all_and_wait,
    scroll_to,
    shutdown_sessions,
    wait_idle,
    with_parameters,
)
from kubernetes import client as k8s
from playwright.sync_api import expect

NAMESPACE = "atlassian"


def test_provision_plan_apply_confirm_postchecks(lab, page, shot, sandbox_reset, k8s_api) -> None:
    shutdown_sessions(lab)
    open_notebook(page, lab, "10-provision.ipynb")
    run_all_and_wait(page, ".atlbook-apply-gate button:has-text('Apply')")

    panel = page.locator(".atlbook-parameter-panel").first
    expect(panel).to_contain_text("file parameters/sandbox.yaml")
    plan = page.locator(".atlbook-plan").first
    plan.locator("table").first.wait_for()
    expect(plan).to_contain_text(re.compile(r"\d+ create\(s\)"))
    assert plan.locator("td:text-is('create')").count() > 10
    gate = page.locator(".atlbook-apply-gate").first
    scroll_to(gate)
    shot("plan")

    after = apply_and_confirm(page, gate)
    expect(gate.locator(".atlbook-after")).to_contain_text("Post-checks")
    assert gate.locator(".atlbook-status td:text-is('done')").count() > 10
    scroll_to(after)
    shot("applied")

    apps = k8s.AppsV1Api(k8s_api)
    sets = {s.metadata.name: s for s in apps.list_namespaced_stateful_set(NAMESPACE).items}
    for product in ("jira", "confluence", "bitbucket"):
        assert product in sets, sorted(sets)
        assert sets[product].status.ready_replicas == sets[product].spec.replicas == 2
    ingresses = k8s.NetworkingV1Api(k8s_api).list_namespaced_ingress(NAMESPACE).items
    assert ingresses


def test_upgrade_plan_apply_confirm_new_version(lab, page, shot, jira_cluster, sandbox) -> None:
    old, new = jira_cluster.VERSIONS["jira"], jira_cluster.NEXT["jira"]
    shutdown_sessions(lab)
    name = with_parameters(lab, "30-upgrade.ipynb", "30-upgrade-jira.ipynb", target_version=new)
    open_notebook(page, lab, name)
    run_all_and_wait(page, ".atlbook-apply-gate button:has-text('Apply')")

    plan = page.locator(".atlbook-plan").first
    plan.locator("table").first.wait_for()
    for step in ("rds-snapshot", "zdu-start", "node-jira-1", "node-jira-0", "post-checks"):
        expect(plan.locator(f"td:text-is('{step}')")).to_have_count(1)
    expect(plan).to_contain_text(re.compile(r"\d+ update\(s\)"))
    scroll_to(plan)
    shot("upgrade-plan")
    gate = page.locator(".atlbook-apply-gate").first
    scroll_to(gate)

    after = apply_and_confirm(page, gate)
    expect(gate.locator(".atlbook-after")).to_contain_text("Post-checks")
    expect(after.locator(f"td:text-is('{new}')")).to_have_count(2)  # both nodes listed on the new version
    for step in ("node-jira-1", "node-jira-0", "post-checks"):
        row = gate.locator(f".atlbook-status tr:has(td:text-is('{step}'))")
        expect(row.locator("td:text-is('done')")).to_have_count(1)
    scroll_to(after)
    shot("upgrade-applied")

    versions = {
        n.pod_name: n.version
        for n in sandbox.products.nodes()
        if n.product == "jira" and n.cluster.namespace == jira_cluster.NAMESPACE
    }
    assert versions == {"jira-0": new, "jira-1": new}, (old, versions)


def test_diagnose_findings_table_and_plot(lab, page, shot) -> None:
    shutdown_sessions(lab)
    open_notebook(page, lab, "40-diagnose.ipynb")
    run_all_and_wait(page, ".jp-OutputArea-output img", timeout=180_000)

    headers = page.locator(".jp-OutputArea-output table th:text-is('severity')")
    assert headers.count() >= 1
    findings = headers.first.locator("xpath=ancestor::table[1]")
    for column in ("rank", "check", "summary", "remedy"):
        assert findings.locator(f"th:text-is('{column}')").count() == 1
    plot = page.locator(".jp-OutputArea-output img").last
    plot.scroll_into_view_if_needed()
    box = plot.bounding_box()
    assert box is not None and box["width"] > 300 and box["height"] > 200
    shot("findings-and-plot")


def test_parameter_panel_invalid_value_shows_error_and_stales_the_plan(lab, page, shot) -> None:
    shutdown_sessions(lab)
    open_notebook(page, lab, "10-provision.ipynb")
    run_all_and_wait(page, ".atlbook-apply-gate button:has-text('Apply')")
    panel = page.locator(".atlbook-parameter-panel").first
    scroll_to(panel)
    panel.locator("summary").first.click()  # unfold the stack's values
    secret = panel.locator("tr:has(td:text-is('stack.database.master_password'))")
    expect(secret.locator("td").nth(1)).to_have_text("env:ATLBOOK_SANDBOX_DB_PASSWORD")  # the reference only

    panel.locator(".atlbook-param-key input").fill("stack.products.jira.replicas")
    panel.locator(".atlbook-param-value input").fill("0")
    panel.locator("button:text-is('Set')").click()
    error = panel.locator(".atlbook-param-error")
    expect(error).to_contain_text("key 'stack.products.jira.replicas': too small")
    expect(error).to_contain_text(">= 1")
    wait_idle(page)
    scroll_to(error)
    shot("invalid-parameter")

    gate = page.locator(".atlbook-apply-gate").first
    expect(gate.locator("button:has-text('Apply')")).to_be_enabled()  # an invalid edit changes nothing

    panel.locator(".atlbook-param-value input").fill("3")
    panel.locator("button:text-is('Set')").click()
    expect(error).to_have_count(0)
    expect(gate).to_contain_text("parameters were edited")
    expect(gate.locator("button:has-text('Apply')")).to_be_disabled()
    expect(panel).to_contain_text("override")
    wait_idle(page)
    scroll_to(gate)
    shot("stale-plan")
