"""Per-kind AWS handlers: observe (describe → the desired body's shape), create, update, readiness.

Every call goes through ``Clients.aws_call`` (translated errors, retries). Observing normalises a
describe result to the shape of the desired request, limited to the fields provisioning can change
(:data:`UPDATABLE`), so the diff compares like with like. Creates are by name / creation token, so a
repeat answers ``Conflict`` (= exists) rather than making a second one. EKS creates carry a
``clientRequestToken`` derived from the stack and the name; creates AWS does not make idempotent by
themselves (security groups, mount targets, CloudFront distributions), and EFS, go through
:meth:`Ctx.create_or_get`: after a lost answer they look the object up by its natural key before
creating again.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Callable, Mapping
from typing import Any

from atlbook import errors
from atlbook.clients import retry
from atlbook.clients.bundle import Clients
from atlbook.provisioning.kinds import AWS_UPDATABLE as UPDATABLE
from atlbook.provisioning.model import Resource, bind, unbound

__all__ = ["HANDLERS", "UPDATABLE", "Ctx", "Handler"]


@dataclasses.dataclass
class Ctx:
    """What a handler needs: the clients, the stack name and the late-bound outputs known so far."""

    clients: Clients
    stack: str
    outputs: dict[str, Any]

    def call(self, service: str, operation: str, *, idempotent: bool = True, **params: Any) -> dict[str, Any]:
        """One AWS call (translated, retried when idempotent)."""
        return self.clients.aws_call(service, operation, idempotent=idempotent, **params)

    def create_or_get(
        self,
        service: str,
        operation: str,
        find: Callable[[], dict[str, Any] | None],
        **params: Any,
    ) -> dict[str, Any]:
        """A create that is safe to retry: one attempt, and after a lost answer ``find()`` first.

        Returns the create's answer, or what ``find()`` found (see :func:`retry.create_or_get`).
        """
        return retry.create_or_get(
            lambda: self.call(service, operation, idempotent=False, **params),
            find,
            description=f"{service}.{operation}",
            policy=self.clients.policy,
        )

    def token(self, r: Resource) -> str:
        """A client request token for creating ``r``: the same on every retry and rerun of this stack."""
        return hashlib.sha256(f"{self.stack}/{r.kind}/{r.name}".encode()).hexdigest()[:32]

    def out(self, r: Resource, field: str, value: Any) -> None:
        """Record a late-bound output of ``r``."""
        self.outputs[f"aws:{r.kind}/{r.name}.{field}"] = value


Observe = Callable[[Ctx, Resource], dict[str, Any] | None]
Act = Callable[[Ctx, Resource, dict[str, Any]], None]
Ready = Callable[[Ctx, Resource], tuple[bool, str]]


@dataclasses.dataclass(frozen=True)
class Handler:
    """The four operations of one AWS kind."""

    observe: Observe
    create: Act
    update: Act
    ready: Ready


def _tags(tags: Mapping[str, str]) -> list[dict[str, str]]:
    return [{"Key": k, "Value": v} for k, v in tags.items()]


def _tag_dict(tags: Any) -> dict[str, str]:
    if isinstance(tags, Mapping):
        return {str(k): str(v) for k, v in tags.items()}
    return {t["Key"]: t["Value"] for t in tags or []}


def _always(_: Ctx, __: Resource) -> tuple[bool, str]:
    return True, "exists"


def _no_update(_: Ctx, r: Resource, __: dict[str, Any]) -> None:
    raise errors.PlanError(f"{r.kind} {r.name} cannot be changed in place")


def _lookup_only(_: Ctx, r: Resource, __: dict[str, Any]) -> None:
    raise errors.PlanError(f"{r.kind} {r.name} is looked up, never created: create it first")


# --- VPC and subnets (lookups) -----------------------------------------------------------------------


def _vpc_observe(ctx: Ctx, r: Resource) -> dict[str, Any] | None:
    if r.body.get("VpcId"):
        vpcs = ctx.call("ec2", "describe_vpcs", VpcIds=[r.body["VpcId"]])["Vpcs"]
    elif r.body.get("Filters"):
        vpcs = ctx.call("ec2", "describe_vpcs", Filters=r.body["Filters"])["Vpcs"]
    else:
        vpcs = ctx.call(
            "ec2", "describe_vpcs", Filters=[{"Name": "tag:atlbook:stack", "Values": [ctx.stack]}]
        )["Vpcs"]
        if not vpcs:
            vpcs = ctx.call("ec2", "describe_vpcs", Filters=[{"Name": "is-default", "Values": ["true"]}])[
                "Vpcs"
            ]
    if not vpcs:
        return None
    vpc = sorted(vpcs, key=lambda v: v["VpcId"])[0]
    ctx.out(r, "VpcId", vpc["VpcId"])
    ctx.out(r, "CidrBlock", vpc["CidrBlock"])
    return {"VpcId": vpc["VpcId"]}


def _subnets_observe(ctx: Ctx, r: Resource) -> dict[str, Any] | None:
    vpc = ctx.outputs.get("aws:Vpc/main.VpcId")
    if not vpc:
        return None
    subnets = ctx.call("ec2", "describe_subnets", Filters=[{"Name": "vpc-id", "Values": [vpc]}])["Subnets"]
    prefer = r.body.get("PreferTag", "")
    chosen: list[str] = []
    for az in r.body["AvailabilityZones"]:
        here = [s for s in subnets if s["AvailabilityZone"] == az]
        if not here:
            return None
        here.sort(
            key=lambda s: (
                prefer not in _tag_dict(s.get("Tags")),
                bool(s.get("MapPublicIpOnLaunch")),
                s["SubnetId"],
            )
        )
        chosen.append(here[0]["SubnetId"])
        ctx.out(r, az, here[0]["SubnetId"])
    ctx.out(r, "SubnetIds", chosen)
    return {"SubnetIds": chosen}


# --- IAM ---------------------------------------------------------------------------------------------


def _role_observe(ctx: Ctx, r: Resource) -> dict[str, Any] | None:
    try:
        role = ctx.call("iam", "get_role", RoleName=r.name)["Role"]
    except errors.NotFound:
        return None
    ctx.out(r, "Arn", role["Arn"])
    attached = ctx.call("iam", "list_attached_role_policies", RoleName=r.name)["AttachedPolicies"]
    have = {p["PolicyArn"] for p in attached}
    return {"ManagedPolicyArns": [a for a in r.body["ManagedPolicyArns"] if a in have]}


def _role_create(ctx: Ctx, r: Resource, body: dict[str, Any]) -> None:
    try:
        role = ctx.call(
            "iam",
            "create_role",
            idempotent=True,
            RoleName=r.name,
            AssumeRolePolicyDocument=json.dumps(body["AssumeRolePolicyDocument"]),
            Tags=_tags(body["Tags"]),
        )["Role"]
        ctx.out(r, "Arn", role["Arn"])
    except errors.Conflict:
        ctx.out(r, "Arn", ctx.call("iam", "get_role", RoleName=r.name)["Role"]["Arn"])
    _role_update(ctx, r, body)


def _role_update(ctx: Ctx, r: Resource, body: dict[str, Any]) -> None:
    for arn in body["ManagedPolicyArns"]:
        ctx.call("iam", "attach_role_policy", RoleName=r.name, PolicyArn=arn)


# --- security groups -----------------------------------------------------------------------------------


def _sg_rules(group: Mapping[str, Any]) -> list[dict[str, Any]]:
    rules = []
    for perm in group.get("IpPermissions") or []:
        proto = perm.get("IpProtocol", "-1")
        lo, hi = perm.get("FromPort", -1), perm.get("ToPort", -1)
        for pair in perm.get("UserIdGroupPairs") or []:
            if pair.get("GroupId") == group["GroupId"]:
                rules.append({"Protocol": proto, "FromPort": lo, "ToPort": hi, "Source": "self"})
            else:
                rules.append(
                    {"Protocol": proto, "FromPort": lo, "ToPort": hi, "SourceGroupId": pair["GroupId"]}
                )
    return rules


def _sg_find(ctx: Ctx, r: Resource) -> dict[str, Any] | None:
    vpc = ctx.outputs.get("aws:Vpc/main.VpcId")
    if not vpc:
        return None
    groups = ctx.call(
        "ec2",
        "describe_security_groups",
        Filters=[{"Name": "group-name", "Values": [r.name]}, {"Name": "vpc-id", "Values": [vpc]}],
    )["SecurityGroups"]
    return groups[0] if groups else None


def _norm_rule(rule: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(rule)
    if str(out.get("Protocol")) == "-1":
        out["FromPort"] = out["ToPort"] = -1
    return out


def _sg_observe(ctx: Ctx, r: Resource) -> dict[str, Any] | None:
    group = _sg_find(ctx, r)
    if group is None:
        return None
    ctx.out(r, "GroupId", group["GroupId"])
    have = [_norm_rule(x) for x in _sg_rules(group)]
    wanted = [_norm_rule(x) for x in r.body["Ingress"]]
    # only the rules we want that exist (in our order): a missing one shows as a change, extras are left
    present = [bind(w, ctx.outputs) for w in wanted if any(_rule_matches(w, h, ctx) for h in have)]
    return {"Ingress": present}


def _rule_matches(want: Mapping[str, Any], have: Mapping[str, Any], ctx: Ctx) -> bool:
    w = bind(dict(want), ctx.outputs)
    return all(
        str(w.get(k)) == str(have.get(k))
        for k in ("Protocol", "FromPort", "ToPort", "Source", "SourceGroupId")
        if k in w or k in have
    )


def _permission(group_id: str, rule: Mapping[str, Any]) -> dict[str, Any]:
    perm: dict[str, Any] = {"IpProtocol": str(rule["Protocol"])}
    if str(rule["Protocol"]) != "-1":
        perm["FromPort"] = int(rule["FromPort"])
        perm["ToPort"] = int(rule["ToPort"])
    source = group_id if rule.get("Source") == "self" else rule["SourceGroupId"]
    perm["UserIdGroupPairs"] = [{"GroupId": source}]
    return perm


def _sg_create(ctx: Ctx, r: Resource, body: dict[str, Any]) -> None:
    group = _sg_find(ctx, r)
    if group is None:
        gid = ctx.create_or_get(
            "ec2",
            "create_security_group",
            lambda: _sg_find(ctx, r),
            GroupName=r.name,
            Description=body["Description"],
            VpcId=body["VpcId"],
            TagSpecifications=[{"ResourceType": "security-group", "Tags": _tags(body["Tags"])}],
        )["GroupId"]
    else:
        gid = group["GroupId"]
    ctx.out(r, "GroupId", gid)
    _sg_update(ctx, r, body)


def _sg_update(ctx: Ctx, r: Resource, body: dict[str, Any]) -> None:
    group = _sg_find(ctx, r)
    if group is None:
        raise errors.PlanError(f"security group {r.name} vanished")
    have = [_norm_rule(x) for x in _sg_rules(group)]
    for rule in body["Ingress"]:
        if any(_rule_matches(_norm_rule(rule), h, ctx) for h in have):
            continue
        try:
            ctx.call(
                "ec2",
                "authorize_security_group_ingress",
                GroupId=group["GroupId"],
                IpPermissions=[_permission(group["GroupId"], rule)],
            )
        except errors.Conflict:
            pass


# --- EKS -----------------------------------------------------------------------------------------------


def _eks_cluster_observe(ctx: Ctx, r: Resource) -> dict[str, Any] | None:
    try:
        cluster = ctx.call("eks", "describe_cluster", name=r.name)["cluster"]
    except errors.NotFound:
        return None
    ctx.out(r, "Arn", cluster.get("arn"))
    ctx.out(r, "Endpoint", cluster.get("endpoint"))
    ctx.out(r, "Status", cluster.get("status"))
    return {"version": cluster.get("version")}


def _eks_cluster_create(ctx: Ctx, r: Resource, body: dict[str, Any]) -> None:
    try:
        ctx.call("eks", "create_cluster", clientRequestToken=ctx.token(r), **body)
    except errors.Conflict:
        pass


def _eks_cluster_update(ctx: Ctx, r: Resource, body: dict[str, Any]) -> None:
    ctx.call("eks", "update_cluster_version", name=r.name, version=body["version"])


def _eks_cluster_ready(ctx: Ctx, r: Resource) -> tuple[bool, str]:
    status = ctx.call("eks", "describe_cluster", name=r.name)["cluster"].get("status")
    return status == "ACTIVE", f"cluster {status}"


def _ng_observe(ctx: Ctx, r: Resource) -> dict[str, Any] | None:
    try:
        ng = ctx.call("eks", "describe_nodegroup", clusterName=r.body["clusterName"], nodegroupName=r.name)[
            "nodegroup"
        ]
    except errors.NotFound:
        return None
    scaling = ng.get("scalingConfig") or {}
    return {
        "scalingConfig": {k: scaling.get(k) for k in ("minSize", "maxSize", "desiredSize")},
        "labels": ng.get("labels") or {},
    }


def _ng_create(ctx: Ctx, r: Resource, body: dict[str, Any]) -> None:
    try:
        ctx.call("eks", "create_nodegroup", clientRequestToken=ctx.token(r), **body)
    except errors.Conflict:
        pass


def _ng_update(ctx: Ctx, r: Resource, body: dict[str, Any]) -> None:
    ctx.call(
        "eks",
        "update_nodegroup_config",
        clusterName=body["clusterName"],
        nodegroupName=r.name,
        scalingConfig=body["scalingConfig"],
        labels={"addOrUpdateLabels": body["labels"]},
    )


def _ng_ready(ctx: Ctx, r: Resource) -> tuple[bool, str]:
    ng = ctx.call("eks", "describe_nodegroup", clusterName=r.body["clusterName"], nodegroupName=r.name)[
        "nodegroup"
    ]
    return ng.get("status") == "ACTIVE", f"node group {ng.get('status')}"


def _addon_observe(ctx: Ctx, r: Resource) -> dict[str, Any] | None:
    try:
        addon = ctx.call(
            "eks", "describe_addon", clusterName=r.body["clusterName"], addonName=r.body["addonName"]
        )["addon"]
    except errors.NotFound:
        return None
    ctx.out(r, "Status", addon.get("status"))
    return {"configurationValues": addon.get("configurationValues") or ""}


def _addon_create(ctx: Ctx, r: Resource, body: dict[str, Any]) -> None:
    try:
        ctx.call("eks", "create_addon", clientRequestToken=ctx.token(r), **body)
    except errors.Conflict:
        _addon_update(ctx, r, body)


def _addon_update(ctx: Ctx, r: Resource, body: dict[str, Any]) -> None:
    params = {
        k: body[k]
        for k in ("clusterName", "addonName", "resolveConflicts", "configurationValues")
        if k in body
    }
    ctx.call("eks", "update_addon", **params)


def _addon_ready(ctx: Ctx, r: Resource) -> tuple[bool, str]:
    addon = ctx.call(
        "eks", "describe_addon", clusterName=r.body["clusterName"], addonName=r.body["addonName"]
    )["addon"]
    return addon.get("status") == "ACTIVE", f"add-on {addon.get('status')}"


# --- EFS -----------------------------------------------------------------------------------------------


def _efs_find(ctx: Ctx, r: Resource) -> dict[str, Any] | None:
    systems = ctx.call("efs", "describe_file_systems", CreationToken=r.body["CreationToken"])["FileSystems"]
    return systems[0] if systems else None


def _efs_observe(ctx: Ctx, r: Resource) -> dict[str, Any] | None:
    fs = _efs_find(ctx, r)
    if fs is None:
        return None
    ctx.out(r, "FileSystemId", fs["FileSystemId"])
    return {"ThroughputMode": fs.get("ThroughputMode")}


def _efs_create(ctx: Ctx, r: Resource, body: dict[str, Any]) -> None:
    # the CreationToken makes a repeat answer "exists"; create-or-get also survives a repeat that fails too
    fs = ctx.create_or_get(
        "efs",
        "create_file_system",
        lambda: _efs_find(ctx, r),
        CreationToken=body["CreationToken"],
        PerformanceMode=body["PerformanceMode"],
        ThroughputMode=body["ThroughputMode"],
        Encrypted=body["Encrypted"],
        Tags=_tags(body["Tags"]),
    )
    ctx.out(r, "FileSystemId", fs["FileSystemId"])


def _efs_update(ctx: Ctx, r: Resource, body: dict[str, Any]) -> None:
    fs = _efs_find(ctx, r)
    if fs:
        ctx.call(
            "efs",
            "update_file_system",
            FileSystemId=fs["FileSystemId"],
            ThroughputMode=body["ThroughputMode"],
        )


def _efs_ready(ctx: Ctx, r: Resource) -> tuple[bool, str]:
    fs = _efs_find(ctx, r)
    state = fs.get("LifeCycleState") if fs else "absent"
    return state == "available", f"file system {state}"


def _mt_find(ctx: Ctx, r: Resource) -> dict[str, Any] | None:
    body = bind(r.body, ctx.outputs)
    if unbound(body["FileSystemId"]) or unbound(body["SubnetId"]):
        return None
    targets = ctx.call("efs", "describe_mount_targets", FileSystemId=body["FileSystemId"])["MountTargets"]
    return next((t for t in targets if t.get("SubnetId") == body["SubnetId"]), None)


def _mt_observe(ctx: Ctx, r: Resource) -> dict[str, Any] | None:
    target = _mt_find(ctx, r)
    return None if target is None else {"MountTargetId": target["MountTargetId"]}


def _mt_create(ctx: Ctx, r: Resource, body: dict[str, Any]) -> None:
    if _mt_find(ctx, r) is not None:
        return
    ctx.create_or_get(
        "efs",
        "create_mount_target",
        lambda: _mt_find(ctx, r),
        FileSystemId=body["FileSystemId"],
        SubnetId=body["SubnetId"],
        SecurityGroups=body["SecurityGroups"],
    )


def _mt_ready(ctx: Ctx, r: Resource) -> tuple[bool, str]:
    target = _mt_find(ctx, r)
    state = target.get("LifeCycleState") if target else "absent"
    return state == "available", f"mount target {state}"


# --- RDS -----------------------------------------------------------------------------------------------


def _subnet_group_observe(ctx: Ctx, r: Resource) -> dict[str, Any] | None:
    try:
        groups = ctx.call("rds", "describe_db_subnet_groups", DBSubnetGroupName=r.name)["DBSubnetGroups"]
    except errors.NotFound:
        return None
    return {} if groups else None


def _subnet_group_create(ctx: Ctx, r: Resource, body: dict[str, Any]) -> None:
    try:
        ctx.call(
            "rds",
            "create_db_subnet_group",
            DBSubnetGroupName=r.name,
            DBSubnetGroupDescription=body["DBSubnetGroupDescription"],
            SubnetIds=body["SubnetIds"],
            Tags=_tags(body["Tags"]),
        )
    except errors.Conflict:
        pass


def _pg_observe(ctx: Ctx, r: Resource) -> dict[str, Any] | None:
    try:
        groups = ctx.call("rds", "describe_db_parameter_groups", DBParameterGroupName=r.name)[
            "DBParameterGroups"
        ]
    except errors.NotFound:
        return None
    if not groups:
        return None
    params = ctx.call("rds", "describe_db_parameters", DBParameterGroupName=r.name, Source="user")[
        "Parameters"
    ]
    values = {p["ParameterName"]: p.get("ParameterValue") for p in params}
    return {"Parameters": {k: values.get(k) for k in r.body["Parameters"]}}


def _pg_create(ctx: Ctx, r: Resource, body: dict[str, Any]) -> None:
    try:
        ctx.call(
            "rds",
            "create_db_parameter_group",
            DBParameterGroupName=r.name,
            DBParameterGroupFamily=body["DBParameterGroupFamily"],
            Description=body["Description"],
            Tags=_tags(body["Tags"]),
        )
    except errors.Conflict:
        pass
    _pg_update(ctx, r, body)


def _pg_update(ctx: Ctx, r: Resource, body: dict[str, Any]) -> None:
    ctx.call(
        "rds",
        "modify_db_parameter_group",
        DBParameterGroupName=r.name,
        Parameters=[
            {"ParameterName": k, "ParameterValue": str(v), "ApplyMethod": "pending-reboot"}
            for k, v in body["Parameters"].items()
        ],
    )


def _db_find(ctx: Ctx, r: Resource) -> dict[str, Any] | None:
    try:
        dbs = ctx.call("rds", "describe_db_instances", DBInstanceIdentifier=r.name)["DBInstances"]
    except errors.NotFound:
        return None
    return dbs[0] if dbs else None


def _db_observe(ctx: Ctx, r: Resource) -> dict[str, Any] | None:
    db = _db_find(ctx, r)
    if db is None:
        return None
    endpoint = db.get("Endpoint") or {}
    if endpoint.get("Address"):
        ctx.out(r, "Address", endpoint["Address"])
        ctx.out(r, "Port", endpoint.get("Port", 5432))
    return {k: db.get(k) for k in UPDATABLE["RdsInstance"]}


def _db_create(ctx: Ctx, r: Resource, body: dict[str, Any]) -> None:
    params = {k: v for k, v in body.items() if k != "Tags"}
    try:
        ctx.call("rds", "create_db_instance", Tags=_tags(body["Tags"]), **params)
    except errors.Conflict:
        pass


def _db_update(ctx: Ctx, r: Resource, body: dict[str, Any]) -> None:
    ctx.call(
        "rds",
        "modify_db_instance",
        DBInstanceIdentifier=r.name,
        ApplyImmediately=False,
        **{k: body[k] for k in UPDATABLE["RdsInstance"]},
    )


def _db_ready(ctx: Ctx, r: Resource) -> tuple[bool, str]:
    db = _db_find(ctx, r)
    status = db.get("DBInstanceStatus") if db else "absent"
    if db and (db.get("Endpoint") or {}).get("Address"):
        ctx.out(r, "Address", db["Endpoint"]["Address"])
        ctx.out(r, "Port", db["Endpoint"].get("Port", 5432))
    return status == "available", f"database {status}"


# --- CloudFront ----------------------------------------------------------------------------------------


def _cf_find(ctx: Ctx, r: Resource) -> dict[str, Any] | None:
    items = (ctx.call("cloudfront", "list_distributions").get("DistributionList") or {}).get("Items") or []
    return next((d for d in items if d.get("Comment") == r.body["Comment"]), None)


def _origin(dist: Mapping[str, Any]) -> dict[str, Any]:
    origins = (dist.get("Origins") or {}).get("Items") or [{}]
    o = origins[0]
    return {
        "Id": o.get("Id"),
        "DomainName": o.get("DomainName"),
        "OriginProtocolPolicy": (o.get("CustomOriginConfig") or {}).get("OriginProtocolPolicy"),
    }


def _cf_observe(ctx: Ctx, r: Resource) -> dict[str, Any] | None:
    dist = _cf_find(ctx, r)
    if dist is None:
        return None
    ctx.out(r, "Id", dist["Id"])
    ctx.out(r, "DomainName", dist.get("DomainName"))
    return {"Origin": _origin(dist)}


def _behaviour(b: Mapping[str, Any], target: str) -> dict[str, Any]:
    fwd = b["ForwardedValues"]
    out: dict[str, Any] = {
        "TargetOriginId": target,
        "ViewerProtocolPolicy": "redirect-to-https",
        "MinTTL": b["MinTTL"],
        "DefaultTTL": b["DefaultTTL"],
        "MaxTTL": b["MaxTTL"],
        "ForwardedValues": {
            "QueryString": fwd["QueryString"],
            "Cookies": fwd["Cookies"],
            "Headers": {"Quantity": len(fwd["Headers"]), "Items": fwd["Headers"]},
        },
        "AllowedMethods": {
            "Quantity": 7,
            "Items": ["GET", "HEAD", "OPTIONS", "PUT", "POST", "PATCH", "DELETE"],
            "CachedMethods": {"Quantity": 2, "Items": ["GET", "HEAD"]},
        },
    }
    return out


def _cf_config(r: Resource, body: Mapping[str, Any]) -> dict[str, Any]:
    origin = body["Origin"]
    behaviours = [
        {"PathPattern": b["PathPattern"], **_behaviour(b, origin["Id"])} for b in body["CacheBehaviors"]
    ]
    return {
        "CallerReference": r.name,
        "Comment": body["Comment"],
        "Enabled": body["Enabled"],
        "PriceClass": body["PriceClass"],
        "Aliases": {"Quantity": len(body["Aliases"]), "Items": body["Aliases"]}
        if body["Aliases"]
        else {"Quantity": 0},
        "Origins": {
            "Quantity": 1,
            "Items": [
                {
                    "Id": origin["Id"],
                    "DomainName": origin["DomainName"],
                    "CustomOriginConfig": {
                        "HTTPPort": 80,
                        "HTTPSPort": 443,
                        "OriginProtocolPolicy": origin["OriginProtocolPolicy"],
                    },
                }
            ],
        },
        "DefaultCacheBehavior": _behaviour(body["DefaultCacheBehavior"], origin["Id"]),
        "CacheBehaviors": {"Quantity": len(behaviours), "Items": behaviours},
    }


def _cf_create(ctx: Ctx, r: Resource, body: dict[str, Any]) -> None:
    if _cf_find(ctx, r) is not None:
        return
    if unbound(body["Origin"]["DomainName"]):
        raise errors.PlanError(
            "the ingress load balancer has no host name yet: CloudFront needs it as origin"
        )
    # CallerReference = the resource name: a repeat answers DistributionAlreadyExists (Conflict) → found
    answer = ctx.create_or_get(
        "cloudfront",
        "create_distribution_with_tags",
        lambda: _cf_find(ctx, r),
        DistributionConfigWithTags={
            "DistributionConfig": _cf_config(r, body),
            "Tags": {"Items": _tags(body["Tags"])},
        },
    )
    dist = answer.get("Distribution", answer)
    ctx.out(r, "Id", dist["Id"])
    ctx.out(r, "DomainName", dist.get("DomainName"))


def _cf_update(ctx: Ctx, r: Resource, body: dict[str, Any]) -> None:
    dist = _cf_find(ctx, r)
    if dist is None:
        raise errors.PlanError(f"CloudFront distribution {r.name} vanished")
    current = ctx.call("cloudfront", "get_distribution_config", Id=dist["Id"])
    config = current["DistributionConfig"]
    config["Origins"] = _cf_config(r, body)["Origins"]
    ctx.call(
        "cloudfront", "update_distribution", Id=dist["Id"], IfMatch=current["ETag"], DistributionConfig=config
    )


HANDLERS: dict[str, Handler] = {
    "Vpc": Handler(_vpc_observe, _lookup_only, _lookup_only, _always),
    "Subnets": Handler(_subnets_observe, _lookup_only, _lookup_only, _always),
    "IamRole": Handler(_role_observe, _role_create, _role_update, _always),
    "SecurityGroup": Handler(_sg_observe, _sg_create, _sg_update, _always),
    "EksCluster": Handler(_eks_cluster_observe, _eks_cluster_create, _eks_cluster_update, _eks_cluster_ready),
    "EksNodegroup": Handler(_ng_observe, _ng_create, _ng_update, _ng_ready),
    "EksAddon": Handler(_addon_observe, _addon_create, _addon_update, _addon_ready),
    "EfsFileSystem": Handler(_efs_observe, _efs_create, _efs_update, _efs_ready),
    "EfsMountTarget": Handler(_mt_observe, _mt_create, _no_update, _mt_ready),
    "RdsSubnetGroup": Handler(_subnet_group_observe, _subnet_group_create, _no_update, _always),
    "RdsParameterGroup": Handler(_pg_observe, _pg_create, _pg_update, _always),
    "RdsInstance": Handler(_db_observe, _db_create, _db_update, _db_ready),
    "CloudFrontDistribution": Handler(_cf_observe, _cf_create, _cf_update, _always),
}
