"""Builders for the upgrade unit tests: observations of a healthy (or not) product cluster, facts."""

from __future__ import annotations

import dataclasses
from typing import Any

from atlbook.products import client as pclient
from atlbook.upgrade import model


def healthy(
    product: str = "jira", replicas: int = 2, version: str = "11.3.1", **changes: Any
) -> model.Observation:
    """An observation every gate passes."""
    image = {
        "jira": "atlassian/jira-software",
        "confluence": "atlassian/confluence",
        "bitbucket": "atlassian/bitbucket",
    }[product]
    pods = [
        model.PodView(
            name=f"{product}-{i}",
            ordinal=i,
            uid=f"uid-{i}",
            node=f"node-{i}",
            ip=f"10.0.0.{i + 10}",
            phase="Running",
            ready=True,
            image=f"{image}:{version}",
            status_state="RUNNING",
            status_http=200,
        )
        for i in range(replicas)
    ]
    nodes = [pclient.ClusterNode(p.name, "ACTIVE", True, version, "1", p.ip) for p in pods]
    obs = model.Observation(
        product=product,
        namespace="atlassian",
        statefulset=product,
        replicas=replicas,
        container=product,
        image=f"{image}:{version}",
        service=product,
        pods=pods,
        cluster_nodes=nodes,
        zdu=pclient.ZduState("STABLE", False, version, "1"),
        pdbs=[product],
        room=[{"pod": p.name, "fits": True, "evidence": f"{p.name} fits"} for p in pods],
        index=(
            {p.name: pclient.IndexSummary(p.name, None, True, 100, 100, None, None, {}) for p in pods}
            if product == "jira"
            else {}
        ),
        rds={"identifier": "sandbox-db", "status": "available", "engine": "postgres"},
    )
    for key, value in changes.items():
        setattr(obs, key, value)
    return obs


def facts(product: str = "jira", replicas: int = 2, **changes: Any) -> model.Facts:
    base = model.Facts(
        product=product,
        namespace="atlassian",
        statefulset=product,
        container=product,
        replicas=replicas,
        from_version="11.3.1",
        to_version="11.3.2",
        image_from="atlassian/jira-software:11.3.1",
        image_to="atlassian/jira-software:11.3.2",
        partition_before=0,
        service=product,
        snapshot_id="atlbook-sandbox-jira-11-3-1-to-11-3-2-20261126",
        db_instance="sandbox-db",
    )
    return dataclasses.replace(base, **changes)
