"""EKS arithmetic pinned to the reference's worked values (eks-capacity.md §e) and the catalogue.

Aspects: max pods (ENI formula, prefix delegation caps), kube-reserved CPU ladder and memory, eviction,
estimated allocatable memory, DaemonSet overhead, bad inputs; catalogue loading, filtering and refresh
from a describe_instance_types response dict.
"""

from __future__ import annotations

import pytest

from atlbook.capacity import catalogue, eks
from atlbook.errors import CapacityExceeded, ConfigError

CAT = {t.name: t for t in catalogue.load_catalogue()}
NO_DS = eks.DaemonSetOverhead(0, 0, 0)


@pytest.mark.parametrize(
    "name, pods, res_cpu, alloc_cpu, res_mem, alloc_gib",
    [
        ("m5.large", 29, 70, 1930, 574, 6.7),
        ("m5.xlarge", 58, 80, 3920, 893, 13.8),
        ("m5.2xlarge", 58, 90, 7910, 893, 28.6),
        ("r6i.2xlarge", 58, 90, 7910, 893, 58.2),
        ("m5.4xlarge", 234, 110, 15890, 2829, 56.3),
        ("m5.8xlarge", 234, 150, 31850, 2829, 115.5),
        ("t3.xlarge", 58, 80, 3920, 893, 13.8),
    ],
    ids=lambda v: str(v),
)
def test_worked_values(
    name: str, pods: int, res_cpu: int, alloc_cpu: int, res_mem: int, alloc_gib: float
) -> None:
    sh = eks.node_shape(CAT[name], NO_DS)
    assert sh.max_pods == pods
    assert sh.kube_reserved_cpu_m == res_cpu
    assert sh.cpu_m == alloc_cpu
    assert sh.kube_reserved_memory_mi == res_mem
    assert sh.memory_mi / 1024 == pytest.approx(alloc_gib, abs=0.06)


def test_daemonsets_come_off_allocatable_and_take_slots() -> None:
    bare = eks.node_shape(CAT["m5.2xlarge"], NO_DS)
    with_ds = eks.node_shape(CAT["m5.2xlarge"])
    assert bare.cpu_m - with_ds.cpu_m == 155
    assert bare.memory_mi - with_ds.memory_mi == 104
    assert bare.pods - with_ds.pods == 3 and with_ds.pods == 55


@pytest.mark.parametrize(
    "enis, ips, vcpu, pd, expected",
    [
        (3, 10, 2, False, 29),
        (8, 30, 16, False, 234),
        (15, 50, 64, False, 737),
        (3, 10, 2, True, 110),
        (8, 30, 32, True, 250),
    ],
)
def test_max_pods(enis: int, ips: int, vcpu: int, pd: bool, expected: int) -> None:
    assert eks.max_pods(enis, ips, prefix_delegation=pd, vcpu=vcpu) == expected


def test_ladder_and_memory_formula() -> None:
    assert [eks.kube_reserved_cpu_m(v) for v in (1, 2, 4, 8, 16, 32)] == [60, 70, 80, 90, 110, 150]
    assert eks.kube_reserved_memory_mi(29) == 574
    assert eks.memory_capacity_mi(32768) == 32768 - 2458


@pytest.mark.parametrize(
    "call",
    [lambda: eks.max_pods(0, 10), lambda: eks.kube_reserved_cpu_m(0), lambda: eks.kube_reserved_memory_mi(0)],
)
def test_bad_inputs_refused(call: object) -> None:
    with pytest.raises(ConfigError):
        call()  # type: ignore[operator]


def test_daemonsets_larger_than_node_refused() -> None:
    with pytest.raises(CapacityExceeded):
        eks.node_shape(CAT["c6i.large"], eks.DaemonSetOverhead(cpu_m=5000, memory_mi=10, pods=1))


def test_catalogue_filters_and_is_dated() -> None:
    types = catalogue.load_catalogue(["m5", "r6i"], ["large", "8xlarge"])
    assert {t.name for t in types} == {"m5.large", "m5.8xlarge", "r6i.large", "r6i.8xlarge"}
    assert all(t.price_per_hour > 0 for t in types)
    assert catalogue.CATALOGUE_DATE.startswith("20")
    with pytest.raises(ConfigError, match="unknown instance families"):
        catalogue.load_catalogue(["z9"])


def test_refresh_from_describe_response() -> None:
    types = catalogue.load_catalogue(["m5"], ["large"])
    resp = {
        "InstanceTypes": [
            {
                "InstanceType": "m5.large",
                "VCpuInfo": {"DefaultVCpus": 2},
                "MemoryInfo": {"SizeInMiB": 8000},
                "NetworkInfo": {"MaximumNetworkInterfaces": 3, "Ipv4AddressesPerInterface": 12},
            }
        ]
    }
    (t,) = catalogue.refresh_from_describe(types, resp)
    assert (t.memory_mib, t.ipv4_per_eni, t.price_per_hour) == (8000, 12, 0.096)
    with pytest.raises(ConfigError):
        catalogue.refresh_from_describe(types, {})
