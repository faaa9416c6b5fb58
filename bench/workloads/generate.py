"""Write the seeded benchmark workloads W1–W4 (``eks-capacity.md``, "Proposed benchmark") as YAML.

Run ``python -m bench.workloads.generate`` to regenerate; the YAML files are committed so that every
run plans exactly the same pods. Sizes: chart defaults (W1), DCAPT enterprise-scale (W2), mixed
prod/staging stacks of DCAPT-small and default sizes (W3), synthetic ReplicaSets after Panigrahy et al.
(W4: uniform, CPU-heavy, memory-heavy, anti-correlated requests).
"""

from __future__ import annotations

import pathlib
import random
from typing import Any

import yaml

HERE = pathlib.Path(__file__).resolve().parent


def _s(name: str, replicas: int, cpu: str, memory: str, app: str = "", **kw: Any) -> dict[str, Any]:
    d: dict[str, Any] = {"name": name, "app": app or name, "replicas": replicas, "cpu": cpu, "memory": memory}
    d.update(kw)
    return d


def w1() -> dict[str, Any]:
    """Chart defaults, 2 replicas each, on 3 AZs."""
    return {
        "name": "W1 atl-default",
        "zones": ["us-east-1a", "us-east-1b", "us-east-1c"],
        "sets": [
            _s("jira", 2, "2", "2G", db_pool_max=100),
            _s("confluence", 2, "2", "2G", db_pool_max=100),
            _s("synchrony", 2, "2", "2.5G", priority=90000),
            _s("bitbucket", 2, "2", "2G", db_pool_max=80),
            _s("mesh", 3, "1", "2G", priority=90000),
            _s("bitbucket-nfs", 1, "1", "1Gi", app="nfs", priority=90000),
            _s("opensearch", 1, "1", "1Gi", priority=90000),
            _s("eazybi", 1, "1", "4Gi", priority=50000),
        ],
    }


def w2() -> dict[str, Any]:
    """DCAPT enterprise-scale sizes, 4 nodes per product."""
    return {
        "name": "W2 atl-dcapt",
        "zones": ["us-east-1a", "us-east-1b", "us-east-1c"],
        "sets": [
            _s("jira", 4, "6", "16Gi", db_pool_max=100),
            _s("confluence", 4, "6", "16Gi", db_pool_max=100),
            _s("synchrony", 2, "1", "3Gi", priority=90000),
            _s("bitbucket", 4, "4", "16Gi", db_pool_max=80),
            _s("bitbucket-nfs", 1, "2", "8Gi", app="nfs", priority=90000),
            _s("opensearch", 2, "1.5", "4Gi", priority=90000),
            _s("mesh", 3, "1", "2G", priority=90000),
            _s("eazybi", 1, "2", "8Gi", priority=50000),
        ],
    }


_SMALL = {"jira": ("1500m", "11Gi"), "confluence": ("900m", "6Gi"), "bitbucket": ("2", "8Gi")}
_DEFAULT = {"jira": ("2", "2G"), "confluence": ("2", "2G"), "bitbucket": ("2", "2G")}


def w3(target: int, seed: int) -> dict[str, Any]:
    """Prod + staging stacks per team, DCAPT-small or default sizes, until ``target`` pods."""
    rng = random.Random(seed)
    sets: list[dict[str, Any]] = []
    pods = 0
    team = 0
    while pods < target:
        for env in ("prod", "stg"):
            prof = _SMALL if rng.random() < 0.5 else _DEFAULT
            reps = rng.choice([2, 3]) if env == "prod" else 1
            prefix = f"t{team:02d}-{env}-"
            for product in rng.sample(["jira", "confluence", "bitbucket"], rng.choice([1, 2, 3])):
                cpu, mem = prof[product]
                sets.append(_s(prefix + product, reps, cpu, mem, app=product, db_pool_max=60))
                pods += reps
                if product == "confluence":
                    sets.append(_s(prefix + "synchrony", reps, "1", "2.5G", app="synchrony", priority=90000))
                    pods += reps
                if product == "bitbucket":
                    sets.append(_s(prefix + "nfs", 1, "1", "2Gi", app="nfs", priority=90000))
                    pods += 1
            if pods >= target:
                break
        team += 1
    return {
        "name": f"W3 multi-stack {target}",
        "zones": ["us-east-1a", "us-east-1b", "us-east-1c"],
        "sets": sets,
    }


def _req(dist: str, rng: random.Random) -> tuple[int, int]:
    if dist == "uniform":
        return rng.randint(100, 4000), rng.randint(128, 8192)
    if dist == "cpu-heavy":
        return rng.randint(500, 6000), rng.randint(128, 4096)
    if dist == "memory-heavy":
        return rng.randint(100, 2000), rng.randint(2048, 24576)
    if dist == "anticorrelated":
        u = rng.random()
        return int(100 + u * 5900), int(128 + (1 - u) * 16000 * rng.uniform(0.8, 1.0))
    raise ValueError(dist)


def w4(pods: int, dist: str, seed: int) -> dict[str, Any]:
    """Synthetic ReplicaSets of 2–5 replicas: 30 % required anti-affinity, half zone-spread, 20 % EBS."""
    rng = random.Random(seed)
    sets: list[dict[str, Any]] = []
    n = 0
    i = 0
    while n < pods:
        reps = min(rng.randint(2, 5), pods - n)
        cpu, mem = _req(dist, rng)
        sets.append(
            _s(
                f"rs{i:04d}",
                reps,
                f"{cpu}m",
                f"{mem}Mi",
                app=f"app{i % 8}",
                anti_affinity=rng.random() < 0.3,
                zone_spread=rng.random() < 0.5,
                ebs=rng.random() < 0.2,
                priority=rng.choice([100000, 90000, 50000]),
            )
        )
        n += reps
        i += 1
    return {
        "name": f"W4 synthetic {pods} {dist} seed {seed}",
        "zones": ["us-east-1a", "us-east-1b", "us-east-1c"],
        "sets": sets,
    }


FIXTURES = {
    "W1": lambda: w1(),
    "W2": lambda: w2(),
    "W3-150": lambda: w3(150, 31),
    "W3-500": lambda: w3(500, 32),
    "W4-1000-uniform": lambda: w4(1000, "uniform", 41),
    "W4-1000-memory-heavy": lambda: w4(1000, "memory-heavy", 42),
    "W4-2500-anticorrelated": lambda: w4(2500, "anticorrelated", 43),
    "W4-5000-cpu-heavy": lambda: w4(5000, "cpu-heavy", 44),
}


def main() -> None:
    """Write every fixture as ``<id>.yaml`` next to this file."""
    for key, make in FIXTURES.items():
        doc = make()
        (HERE / f"{key}.yaml").write_text(
            f"# generated by bench/workloads/generate.py — {doc['name']}\n"
            + yaml.safe_dump(doc, sort_keys=False, width=200)
        )


if __name__ == "__main__":
    main()
