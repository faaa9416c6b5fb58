"""Product catalogue: ports, paths, chart labels, defaults, and the ZDU eligibility table.

Covers: values from the reference (§3.2, §8, §9, §11) per product; both [verify] candidates kept for
Confluence/Bitbucket mutations; label helpers; version parsing; zdu_eligible per product rule, with
ids, including downgrades and same-version.
"""

from __future__ import annotations

import pytest

from atlbook import errors
from atlbook.products import catalogue


@pytest.mark.parametrize(
    "product, http, cluster, image, grace, pool",
    [
        ("jira", 8080, {"ehcache": 40001, "ehcacheobject": 40011}, "atlassian/jira-software", 30, 100),
        ("confluence", 8090, {"hazelcast": 5701}, "atlassian/confluence", 25, 100),
        ("bitbucket", 7990, {"hazelcast": 5701}, "atlassian/bitbucket", 35, 80),
    ],
    ids=["jira", "confluence", "bitbucket"],
)
def test_facts(product: str, http: int, cluster: dict[str, int], image: str, grace: int, pool: int) -> None:
    info = catalogue.get(product)
    assert info.http_port == http and dict(info.cluster_ports) == cluster and info.image == image
    assert info.termination_grace_seconds == grace and info.default_pool_max == pool
    assert info.health_path == "/status"
    assert info.local_home.endswith(product)


def test_bitbucket_specifics() -> None:
    info = catalogue.get("bitbucket")
    assert info.all_ports == {"http": 7990, "hazelcast": 5701, "ssh": 7999}
    assert info.shared_home_storage == "nfs" and info.needs_discovery_rbac
    assert not catalogue.get("jira").needs_discovery_rbac


@pytest.mark.parametrize("product", ["confluence", "bitbucket"])
def test_zdu_mutations_keep_both_verify_variants(product: str) -> None:
    zdu = catalogue.get(product).zdu
    for action in ("start", "cancel", "approve"):
        paths = getattr(zdu, action)
        assert paths[0] == f"/rest/zdu/{action}"
        assert f"/rest/zdu/cluster/zdu/{action}" in paths


def test_jira_zdu_paths() -> None:
    zdu = catalogue.get("jira").zdu
    assert zdu.state == "/rest/api/2/cluster/zdu/state"
    assert zdu.retry == ("/rest/api/2/cluster/zdu/retryUpgrade",)


def test_labels_and_selector() -> None:
    assert catalogue.labels("jira") == {
        "app.kubernetes.io/name": "jira",
        "app.kubernetes.io/instance": "jira",
    }
    assert catalogue.selector("confluence", "wiki") == (
        "app.kubernetes.io/name=confluence,app.kubernetes.io/instance=wiki"
    )


def test_unknown_product() -> None:
    with pytest.raises(errors.ConfigError, match="unknown product 'bamboo'"):
        catalogue.get("bamboo")


@pytest.mark.parametrize(
    "text, parts",
    [
        ("9.12.3", (9, 12, 3)),
        ("9.12", (9, 12, 0)),
        ("9.4.16-ubuntu-jdk17", (9, 4, 16)),
        ("v10.2.7", (10, 2, 7)),
    ],
    ids=["full", "no-patch", "tag-suffix", "v-prefix"],
)
def test_parse_version(text: str, parts: tuple[int, int, int]) -> None:
    v = catalogue.parse_version(text)
    assert (v.major, v.minor, v.patch) == parts and v.tag == text


def test_parse_version_refuses() -> None:
    with pytest.raises(errors.ConfigError):
        catalogue.parse_version("latest")


@pytest.mark.parametrize(
    "product, old, new, ok, why",
    [
        ("jira", "9.12.1", "9.12.3", True, "same platform line"),
        ("jira", "9.4.10", "9.12.3", True, "same platform line"),
        ("jira", "9.17.0", "10.3.0", False, "crosses platform lines"),
        ("jira", "7.2.0", "7.2.4", False, "7.3 or later"),
        ("jira", "9.12.3", "9.12.3", False, "same version"),
        ("jira", "9.12.3", "9.12.1", False, "downgrade"),
        ("bitbucket", "9.4.12", "9.4.16", True, "bug-fix upgrade"),
        ("bitbucket", "9.3.5", "9.4.0", False, "only bug-fix"),
        ("bitbucket", "8.19.0", "9.0.0", False, "only bug-fix"),
        ("bitbucket", "7.8.0", "7.8.1", False, "7.9 or later"),
        ("confluence", "7.8.0", "7.8.3", False, "7.9 or later"),
        ("confluence", "7.12.0", "7.12.2", True, "bug-fix"),
        ("confluence", "7.12.0", "7.13.0", False, "only bug-fix"),
        ("confluence", "7.14.0", "7.15.1", True, "next feature version"),
        ("confluence", "7.14.0", "7.17.0", False, "more than one feature version"),
        ("confluence", "7.19.16", "8.0.0", False, "platform upgrade"),
        ("confluence", "10.2.2", "10.2.7", True, "bug-fix"),
        ("confluence", "10.1.0", "10.2.7", True, "next feature version"),
    ],
    ids=lambda v: str(v),
)
def test_zdu_eligible(product: str, old: str, new: str, ok: bool, why: str) -> None:
    eligible, reason = catalogue.zdu_eligible(product, old, new)
    assert eligible is ok
    assert why in reason and old.split("-")[0] in reason
