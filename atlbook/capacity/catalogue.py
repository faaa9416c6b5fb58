"""EC2 instance catalogue: the static, dated table in ``instances.csv`` plus a pure refresh step.

The table holds vCPU, memory (MiB), ENIs, IPv4 addresses per ENI and the us-east-1 on-demand price per
hour. Prices are static (the Pricing API is not reachable from the sandbox); vCPU, memory and ENI data
can be refreshed from an EC2 ``describe_instance_types`` *response dict* that the clients layer fetched.
No client is created here.
"""

from __future__ import annotations

import csv
import dataclasses
import importlib.resources
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from atlbook.errors import ConfigError

__all__ = [
    "CATALOGUE_DATE",
    "CATALOGUE_REGION",
    "InstanceType",
    "load_catalogue",
    "refresh_from_describe",
]

CATALOGUE_DATE = "2026-11-26"
"""Date the static price table was written (prices to be confirmed)."""
CATALOGUE_REGION = "us-east-1"
"""Region of the static on-demand prices."""


@dataclasses.dataclass(frozen=True)
class InstanceType:
    """One EC2 instance type as the planner sees it.

    Attributes:
        name: e.g. ``m5.2xlarge``.
        vcpu: default vCPUs.
        memory_mib: EC2 memory in MiB (nominal; the kubelet sees less, see :mod:`.eks`).
        enis: maximum network interfaces.
        ipv4_per_eni: IPv4 addresses per interface.
        price_per_hour: on-demand USD per hour in :data:`CATALOGUE_REGION`.
    """

    name: str
    vcpu: int
    memory_mib: int
    enis: int
    ipv4_per_eni: int
    price_per_hour: float

    @property
    def family(self) -> str:
        """The part before the dot, e.g. ``m5``."""
        return self.name.split(".", 1)[0]

    @property
    def size(self) -> str:
        """The part after the dot, e.g. ``2xlarge``."""
        return self.name.split(".", 1)[1] if "." in self.name else ""


def _parse_rows(lines: Iterable[str]) -> list[InstanceType]:
    rows = [ln for ln in lines if ln.strip() and not ln.lstrip().startswith("#")]
    out: list[InstanceType] = []
    for rec in csv.DictReader(rows):
        try:
            out.append(
                InstanceType(
                    name=rec["name"].strip(),
                    vcpu=int(rec["vcpu"]),
                    memory_mib=int(rec["memory_mib"]),
                    enis=int(rec["enis"]),
                    ipv4_per_eni=int(rec["ipv4_per_eni"]),
                    price_per_hour=float(rec["price_per_hour"]),
                )
            )
        except (KeyError, ValueError, TypeError) as e:
            raise ConfigError(f"instance catalogue row {rec!r} is malformed: {e}") from e
    return out


def load_catalogue(
    families: Sequence[str] | None = None,
    sizes: Sequence[str] | None = None,
    *,
    text: str | None = None,
) -> list[InstanceType]:
    """Return the instance types of the static table, optionally filtered by family and size.

    ``text`` replaces the packaged ``instances.csv`` (same columns). Refuses (``ConfigError``) unknown
    families or sizes, and a filter that leaves nothing.
    """
    if text is None:
        text = importlib.resources.files("atlbook.capacity").joinpath("instances.csv").read_text()
    types = _parse_rows(text.splitlines())
    if families is not None:
        known = {t.family for t in types}
        unknown = sorted(set(families) - known)
        if unknown:
            raise ConfigError(f"unknown instance families {unknown}; catalogue has {sorted(known)}")
        types = [t for t in types if t.family in set(families)]
    if sizes is not None:
        known_sizes = {t.size for t in types}
        unknown = sorted(set(sizes) - known_sizes)
        if unknown:
            raise ConfigError(f"unknown instance sizes {unknown}; catalogue has {sorted(known_sizes)}")
        types = [t for t in types if t.size in set(sizes)]
    if not types:
        raise ConfigError("instance catalogue filter leaves no instance type")
    return types


def refresh_from_describe(
    catalogue: Sequence[InstanceType], response: Mapping[str, Any]
) -> list[InstanceType]:
    """Update vCPU, memory and ENI data from an EC2 ``describe_instance_types`` response dict.

    Types absent from the response keep their static values; prices are never taken from the response.
    Refuses (``ConfigError``) a response without an ``InstanceTypes`` list.
    """
    items = response.get("InstanceTypes")
    if not isinstance(items, list):
        raise ConfigError("describe_instance_types response has no 'InstanceTypes' list")
    by_name: dict[str, Mapping[str, Any]] = {}
    for it in items:
        if isinstance(it, Mapping) and "InstanceType" in it:
            by_name[str(it["InstanceType"])] = it
    out: list[InstanceType] = []
    for t in catalogue:
        it = by_name.get(t.name)
        if it is None:
            out.append(t)
            continue
        vcpu = it.get("VCpuInfo", {}).get("DefaultVCpus", t.vcpu)
        mem = it.get("MemoryInfo", {}).get("SizeInMiB", t.memory_mib)
        net = it.get("NetworkInfo", {})
        enis = net.get("MaximumNetworkInterfaces", t.enis)
        ips = net.get("Ipv4AddressesPerInterface", t.ipv4_per_eni)
        out.append(
            dataclasses.replace(t, vcpu=int(vcpu), memory_mib=int(mem), enis=int(enis), ipv4_per_eni=int(ips))
        )
    return out
