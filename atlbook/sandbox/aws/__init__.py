"""The sandbox's AWS: moto in server mode with the missing calls served in front, and a CloudWatch feeder.

- :mod:`.server` — :class:`AwsSandbox` (moto + front layer on one loopback port, audit, EKS endpoint)
- :mod:`.addons` — EKS add-ons (moto has none)
- :mod:`.extras` — EFS ``UpdateFileSystem``, RDS ``DescribeDBEngineVersions``
- :mod:`.metrics` — the CloudWatch feeder (EFS and RDS metrics every simulated minute)
"""

from atlbook.sandbox.aws.server import (
    ACCOUNT_ID,
    DUMMY_ACCESS_KEY_ID,
    DUMMY_SECRET_ACCESS_KEY,
    AwsSandbox,
)

__all__ = ["ACCOUNT_ID", "DUMMY_ACCESS_KEY_ID", "DUMMY_SECRET_ACCESS_KEY", "AwsSandbox"]
