"""Fixtures for capacity tests."""

from __future__ import annotations

import pytest


@pytest.fixture
def w1_doc() -> dict[str, object]:
    return {
        "sets": [
            {"name": "jira", "replicas": 2, "cpu": "2", "memory": "2G", "db_pool_max": 100},
            {"name": "confluence", "replicas": 2, "cpu": "2", "memory": "2G", "db_pool_max": 100},
            {"name": "synchrony", "replicas": 2, "cpu": "2", "memory": "2.5G", "priority": 90000},
            {"name": "bitbucket", "replicas": 2, "cpu": "2", "memory": "2G", "db_pool_max": 80},
            {"name": "opensearch", "replicas": 1, "cpu": "1", "memory": "1Gi", "priority": 90000},
        ]
    }
