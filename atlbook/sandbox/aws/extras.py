"""Calls moto lacks that the runbooks make, other than EKS add-ons: EFS ``UpdateFileSystem`` and RDS
``DescribeDBEngineVersions``, served in their real wire forms against moto's own in-process state.

``UpdateFileSystem`` changes the throughput mode of a file system moto holds (``bursting``,
``provisioned`` with ``ProvisionedThroughputInMibps``, ``elastic``) and refuses unknown file systems
(``FileSystemNotFound``, 404) and invalid modes (``BadRequest``, 400). ``DescribeDBEngineVersions``
answers from the static table :data:`ENGINE_VERSIONS` (the versions the Atlassian Terraform modules map
major versions to, plus neighbours), filtered by ``Engine``, ``EngineVersion``, ``DBParameterGroupFamily``
and ``DefaultOnly``.
"""

from __future__ import annotations

import json
import uuid
from typing import Any
from xml.sax.saxutils import escape

from moto.efs.models import efs_backends

__all__ = ["ENGINE_VERSIONS", "describe_db_engine_versions", "update_file_system"]

ENGINE_VERSIONS: dict[str, list[str]] = {
    "postgres": [
        "12.22",
        "13.20",
        "13.21",
        "14.17",
        "14.18",
        "15.12",
        "15.13",
        "16.8",
        "16.9",
        "17.4",
        "17.5",
    ],
}
"""Engine → versions offered, oldest first; the newest of the newest major is the default."""

_THROUGHPUT_MODES = ("bursting", "provisioned", "elastic")


def update_file_system(
    account: str, region: str, fs_id: str, body: bytes
) -> tuple[int, dict[str, str], bytes]:
    """EFS ``PUT /2015-02-01/file-systems/{id}``."""
    headers = {"Content-Type": "application/json"}
    backend = efs_backends[account][region]
    fs = backend.file_systems_by_id.get(fs_id)
    if fs is None:
        headers["x-amzn-ErrorType"] = "FileSystemNotFound"
        msg = {"ErrorCode": "FileSystemNotFound", "Message": f"File system '{fs_id}' does not exist."}
        return 404, headers, json.dumps(msg).encode()
    payload: dict[str, Any] = json.loads(body) if body else {}
    mode = payload.get("ThroughputMode")
    if mode is not None:
        if mode not in _THROUGHPUT_MODES:
            headers["x-amzn-ErrorType"] = "BadRequest"
            msg = {"ErrorCode": "BadRequest", "Message": f"Invalid ThroughputMode {mode}"}
            return 400, headers, json.dumps(msg).encode()
        if mode == "provisioned" and not payload.get("ProvisionedThroughputInMibps"):
            headers["x-amzn-ErrorType"] = "BadRequest"
            msg = {"ErrorCode": "BadRequest", "Message": "ProvisionedThroughputInMibps is required"}
            return 400, headers, json.dumps(msg).encode()
        fs.throughput_mode = mode
    if payload.get("ProvisionedThroughputInMibps") is not None:
        fs.provisioned_throughput_in_mibps = int(payload["ProvisionedThroughputInMibps"])
    info: dict[str, Any] = fs.info_json()
    if fs.throughput_mode != "provisioned":
        info.pop("ProvisionedThroughputInMibps", None)
    return 202, headers, json.dumps(info, default=str).encode()


def _major_jump(a: str, b: str) -> str:
    return "true" if a.split(".")[0] != b.split(".")[0] else "false"


def _family(engine: str, version: str) -> str:
    major = version.split(".")[0]
    return f"{engine}{major}"


def describe_db_engine_versions(params: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
    """RDS ``Action=DescribeDBEngineVersions`` (query protocol, XML answer)."""
    engine = params.get("Engine")
    version = params.get("EngineVersion")
    family = params.get("DBParameterGroupFamily")
    default_only = params.get("DefaultOnly", "false").lower() == "true"
    items = []
    for eng, versions in ENGINE_VERSIONS.items():
        if engine and engine != eng:
            continue
        default = versions[-1]
        for i, v in enumerate(versions):
            if version and not (v == version or v.startswith(version + ".")):
                continue
            if family and _family(eng, v) != family:
                continue
            if default_only and v != default:
                continue
            targets = "".join(
                "<UpgradeTarget>"
                f"<Engine>{eng}</Engine><EngineVersion>{t}</EngineVersion>"
                f"<Description>{eng} {t}</Description><AutoUpgrade>false</AutoUpgrade>"
                f"<IsMajorVersionUpgrade>{_major_jump(v, t)}</IsMajorVersionUpgrade>"
                "</UpgradeTarget>"
                for t in versions[i + 1 :]
            )
            items.append(
                "<DBEngineVersion>"
                f"<Engine>{escape(eng)}</Engine><EngineVersion>{escape(v)}</EngineVersion>"
                f"<DBParameterGroupFamily>{_family(eng, v)}</DBParameterGroupFamily>"
                "<DBEngineDescription>PostgreSQL</DBEngineDescription>"
                f"<DBEngineVersionDescription>PostgreSQL {escape(v)}-R1</DBEngineVersionDescription>"
                f"<ValidUpgradeTarget>{targets}</ValidUpgradeTarget>"
                "<SupportsLogExportsToCloudwatchLogs>true</SupportsLogExportsToCloudwatchLogs>"
                "<SupportsReadReplica>true</SupportsReadReplica>"
                "<Status>available</Status>"
                "</DBEngineVersion>"
            )
    body = (
        '<DescribeDBEngineVersionsResponse xmlns="http://rds.amazonaws.com/doc/2014-10-31/">'
        f"<DescribeDBEngineVersionsResult><DBEngineVersions>{''.join(items)}</DBEngineVersions>"
        "</DescribeDBEngineVersionsResult>"
        f"<ResponseMetadata><RequestId>{uuid.uuid4()}</RequestId></ResponseMetadata>"
        "</DescribeDBEngineVersionsResponse>"
    )
    return 200, {"Content-Type": "text/xml"}, body.encode()
