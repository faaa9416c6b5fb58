"""API faults in the sandbox, and atlbook's behaviour under them, call by call.

Covers (issue 10 item 1):
- each kind (429 + Retry-After, 500, 503, reset, slow) reaches atlbook in its API's wire form and is
  translated into the right atlbook error (Throttled with the delay, Unavailable), counted by API/kind;
- faults are per API (``--api eks`` faults EKS only) and seeded (same seed, same faults);
- the sandbox's own calls (CloudWatch feeder, its own signed AWS client) are never faulted;
- the control endpoint and ``atlbook sandbox api-faults`` configure, show and switch off injection;
- Retry-After is honoured (the wait before the retry is at least what the server asked);
- a non-idempotent call is not retried blindly: after a reset *after processing* on a create, the
  retry is a create-or-get — security group, EFS mount target, CloudFront distribution each exist once;
  a POST to a product answered 500 is made once, not repeated;
- when retries run out, apply stops with the step, the phase, the call and the error, in the exception
  and in the ledger.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest
from conftest import ROOT, _sandbox_aws, aws_duplicates

from atlbook import clients as clientsmod
from atlbook import errors, plan
from atlbook.clients import aws, k8s, retry
from atlbook.provisioning import _aws as provaws
from atlbook.provisioning.model import Resource
from atlbook.sandbox.api_faults import ApiFaultConfig, ApiFaultInjector

ONE = retry.RetryPolicy(max_attempts=1)


def _bundle():
    return clientsmod.connect("sandbox", policy=retry.RetryPolicy(base_delay=0.01, max_delay=0.05))


@pytest.mark.parametrize(
    "kind, exc, status",
    [
        ("429", errors.Throttled, 429),
        ("500", errors.Unavailable, 500),
        ("503", errors.Unavailable, 503),
        ("reset", errors.Unavailable, None),
    ],
    ids=["429", "500", "503", "reset"],
)
def test_each_kind_in_its_wire_form_translated_and_counted(box, figures, kind, exc, status) -> None:
    bundle = _bundle()
    box.inject_api_faults(1.0, "k8s,eks,rds,ec2,efs,cloudfront,iam", kind, seed=1, retry_after=0)
    seen = {}
    calls = {
        "k8s": lambda: k8s.list(bundle.k8s, "Namespace", policy=ONE),
        "eks": lambda: aws.call(bundle.aws("eks"), "list_clusters", idempotent=True, policy=ONE),
        "rds": lambda: aws.call(bundle.aws("rds"), "describe_db_instances", idempotent=True, policy=ONE),
        "ec2": lambda: aws.call(bundle.aws("ec2"), "describe_vpcs", idempotent=True, policy=ONE),
        "efs": lambda: aws.call(bundle.aws("efs"), "describe_file_systems", idempotent=True, policy=ONE),
        "cloudfront": lambda: aws.call(
            bundle.aws("cloudfront"), "list_distributions", idempotent=True, policy=ONE
        ),
        "iam": lambda: aws.call(bundle.aws("iam"), "list_roles", idempotent=True, policy=ONE),
    }
    for api, fn in calls.items():
        with pytest.raises(exc) as info:
            fn()
        seen[api] = info.value
        if status is not None and api != "k8s" or kind == "429":
            assert info.value.status == status, (api, info.value)
        if kind == "429":
            assert info.value.delay == 0.0, (api, info.value)  # Retry-After: 0, as sent
    counts = box.api_faults.counts()
    assert set(counts) == set(calls) and all(counts[a].get(kind, 0) >= 1 for a in calls), counts
    figures.add(f"wire form {kind}", test="api-faults", faults_injected=box.api_faults.total())


def test_slow_answers_arrive_late_but_whole(box) -> None:
    bundle = _bundle()
    box.inject_api_faults(1.0, "eks", "slow", slow_seconds=0.3)
    started = time.monotonic()
    assert aws.call(bundle.aws("eks"), "list_clusters", idempotent=True, policy=ONE)["clusters"] == []
    assert time.monotonic() - started >= 0.3
    assert box.api_faults.counts() == {"eks": {"slow": 1}}


def test_per_api_and_seeded(box) -> None:
    bundle = _bundle()
    box.inject_api_faults(1.0, "eks", "500")
    aws.call(bundle.aws("rds"), "describe_db_instances", idempotent=True, policy=ONE)  # not faulted
    k8s.list(bundle.k8s, "Namespace", policy=ONE)
    assert box.api_faults.counts() == {}

    def decisions(seed: int) -> list[object]:
        inj = ApiFaultInjector()
        inj.configure(ApiFaultConfig.build(0.3, None, None, seed))
        return [inj.decide(api) for api in ("k8s", "eks", "products") * 40]

    assert decisions(7) == decisions(7) != decisions(8)
    with pytest.raises(ValueError, match="rate"):
        ApiFaultConfig.build(1.5)
    with pytest.raises(ValueError, match="kinds"):
        ApiFaultConfig.build(0.1, kinds="418")


def test_the_sandbox_own_calls_are_never_faulted(box) -> None:
    box.inject_api_faults(1.0)  # every API, every kind
    cw = _sandbox_aws(box, "cloudwatch")
    for _ in range(5):
        cw.list_metrics()  # signed as the sandbox itself
    box.feeder.reset()
    time.sleep(0.3)  # the feeder ticks every simulated minute (a fraction of a second here)
    assert "cloudwatch" not in box.api_faults.describe()["requests"], box.api_faults.describe()
    assert box.api_faults.total() == 0


def test_control_endpoint_and_cli(box) -> None:
    from atlbook.sandbox.control import ControlClient

    control = ControlClient(box.control.url)
    shown = control.api_faults(rate=0.25, apis="k8s,eks", kinds="429,reset", seed=3)
    assert shown["active"] and shown["config"]["apis"] == ["eks", "k8s"] and shown["config"]["seed"] == 3
    env = {"ATLBOOK_SANDBOX_DIR": str(box.state_dir), "PATH": "/usr/bin:/bin"}
    cli = [sys.executable, "-m", "atlbook.cli", "sandbox"]
    out = subprocess.run(
        [*cli, "api-faults", "--rate", "0.1", "--api", "rds", "--kinds", "500,503", "--seed", "9"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["config"] == {
        **doc["config"],
        "rate": 0.1,
        "apis": ["rds"],
        "kinds": ["500", "503"],
        "seed": 9,
    }
    bad = subprocess.run(
        [*cli, "api-faults", "--rate", "0.1", "--kinds", "418"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert bad.returncode == 2 and "unknown api fault kinds" in bad.stderr
    off = subprocess.run(
        [*cli, "api-faults", "--off"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert off.returncode == 0 and json.loads(off.stdout)["active"] is False
    assert box.status()["api_faults"]["active"] is False


def test_retry_after_is_honoured(box) -> None:
    bundle = _bundle()
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        box.api_faults_off()  # the server recovers during the wait

    policy = retry.RetryPolicy(base_delay=0.01, max_delay=0.05, sleep=sleep)
    box.inject_api_faults(1.0, "k8s", "429", retry_after=2)
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "ra", "namespace": "default"}}
    k8s.create(bundle.k8s, cm, policy=policy)  # a POST: urllib3 leaves it to us
    assert waits and waits[0] >= 2.0, waits
    box.inject_api_faults(1.0, "eks", "503", retry_after=2)
    waits.clear()
    aws.call(bundle.aws("eks"), "list_clusters", idempotent=True, policy=policy)
    assert waits and waits[0] >= 2.0, waits


def _vpc_and_subnet(bundle) -> tuple[str, str]:
    ec2 = bundle.aws("ec2")
    vpc = aws.call(
        ec2, "describe_vpcs", idempotent=True, Filters=[{"Name": "is-default", "Values": ["true"]}]
    )
    vpc_id = vpc["Vpcs"][0]["VpcId"]
    subnets = aws.call(
        ec2, "describe_subnets", idempotent=True, Filters=[{"Name": "vpc-id", "Values": [vpc_id]}]
    )
    return vpc_id, subnets["Subnets"][0]["SubnetId"]


def test_creates_after_a_lost_answer_are_create_or_get_never_duplicates(box, figures) -> None:
    bundle = _bundle()
    vpc_id, subnet_id = _vpc_and_subnet(bundle)
    ctx = provaws.Ctx(bundle, "rel", {"aws:Vpc/main.VpcId": vpc_id})
    tags = {"atlbook:stack": "rel"}
    sg = Resource(
        "aws", "SecurityGroup", "rel-sg", {"Description": "d", "VpcId": vpc_id, "Tags": tags, "Ingress": []}
    )
    fs_body = {
        "CreationToken": "rel-efs",
        "PerformanceMode": "generalPurpose",
        "ThroughputMode": "bursting",
        "Encrypted": True,
        "Tags": tags,
    }
    fs = Resource("aws", "EfsFileSystem", "rel-efs", fs_body)
    # every create is processed, then its answer is lost (reads are served): the retry must find it
    box.inject_api_faults(1.0, "ec2,efs", "reset", only_mutating=True, reset_after=1.0)
    mark = box.audit.mark()
    provaws.HANDLERS["SecurityGroup"].create(ctx, sg, dict(sg.body))
    provaws.HANDLERS["EfsFileSystem"].create(ctx, fs, dict(fs.body))  # token: a repeat answers "exists"
    mt_body = {
        "FileSystemId": ctx.outputs["aws:EfsFileSystem/rel-efs.FileSystemId"],
        "SubnetId": subnet_id,
        "SecurityGroups": [ctx.outputs["aws:SecurityGroup/rel-sg.GroupId"]],
    }
    mt = Resource("aws", "EfsMountTarget", "rel-mt", mt_body)
    provaws.HANDLERS["EfsMountTarget"].create(ctx, mt, dict(mt.body))
    injected = box.api_faults.counts()
    box.api_faults_off()
    assert injected == {"ec2": {"reset": 1}, "efs": {"reset": 2}}, injected  # one lost answer each, no repeat
    creates = [e.verb for e in box.audit.mutations(mark, source="aws") if e.status and e.status < 300]
    assert sorted(creates) == ["ec2:CreateSecurityGroup", "elasticfilesystem:POST", "elasticfilesystem:POST"]
    dup = aws_duplicates(box)
    assert dup["security_group"] == dup["efs"] == dup["efs_mount_target"] == 0, dup
    figures.add(
        "create-or-get (sg, efs, mount target)",
        test="api-faults",
        faults_injected=sum(sum(k.values()) for k in injected.values()),
        duplicates=sum(dup.values()),
    )


def test_a_product_post_answered_500_is_not_repeated(box) -> None:
    from atlbook.products import client as pclient

    calls = []
    transport_calls = []

    class Transport:
        description = "fake"
        clients = None

        def request(self, method, path, **kw):
            transport_calls.append((method, path, kw.get("idempotent")))
            from atlbook.clients.http import HttpResponse

            return HttpResponse(500, {}, b"boom")

    product = pclient.ProductClient(Transport(), "jira")
    with pytest.raises(errors.Unavailable):
        product.zdu_start()
    calls = [c for c in transport_calls if c[0] == "POST"]
    assert calls and all(c[2] is False for c in calls), transport_calls


def test_when_retries_run_out_apply_stops_with_step_call_and_error(box) -> None:
    bundle = _bundle()
    box.inject_api_faults(1.0, "eks", "503", retry_after=0)
    ledger = plan.Ledger(plan.ConfigMapBackend(bundle, "default", "rel-exhaust"), runbook="rel-exhaust")
    p = plan.Plan(
        "rel-exhaust",
        [
            plan.Step("first", "a change", kind="create", action=lambda: "ok"),
            plan.Step(
                "describe",
                "describe the cluster",
                kind="update",
                action=lambda: bundle.aws_call("eks", "describe_cluster", idempotent=True, name="nope"),
            ),
        ],
    )
    with pytest.raises(plan.ApplyFailed) as info:
        plan.apply(p, ledger)
    e = info.value
    assert (e.step, e.phase) == ("describe", "action") and "DescribeCluster" in e.call, (e.step, e.call)
    assert "failed after" in "".join(getattr(e.__cause__, "__notes__", [])), e.__cause__
    box.api_faults_off()
    doc = ledger.refresh()
    (failure,) = doc["failures"]
    assert (
        failure["step"] == "describe"
        and "DescribeCluster" in failure["call"]
        and "ServiceUnavailable" in failure["error"]
    )
    assert list(doc["steps"]) == ["first"] and not doc.get("lock")
