"""Preflight gates of a zero-downtime upgrade: each a row with pass/fail and its evidence. Pure.

:func:`evaluate` judges an :class:`~atlbook.upgrade.model.Observation` for a target version:

==============  ============================================================================================
``eligible``    the target is ZDU-eligible from the running version (:func:`atlbook.products.catalogue.
                zdu_eligible`); otherwise the row says why and offers the maintenance-window path
``nodes``       the StatefulSet has ≥ 2 replicas (a 1-node stack cannot stay up while its node restarts)
``active``      every pod is Ready, ``/status`` RUNNING, and listed ACTIVE by the product's cluster nodes
``one-version`` every live node runs the same version
``zdu-stable``  the ZDU state is STABLE (no upgrade already under way)
``pdb``         a PodDisruptionBudget selects the product's pods
``room``        each product pod, deleted, finds a node again (:mod:`atlbook.capacity`)
``index``       Jira: every node's index is readable and matches the database (others: not applicable)
``ledger``      no other mutating runbook holds a live lock or has an unfinished run on this stack
``rds``         the RDS instance exists and is ``available``: the plan snapshots it before any node moves
==============  ============================================================================================

Any failed gate stops the runbook before a change. When the ledger holds an unfinished upgrade of this
product (a rerun after an interruption) the state gates (``active``, ``one-version``, ``zdu-stable``,
``eligible`` from the live version) are judged against the recorded upgrade instead: they were checked
before its first change.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from atlbook.products import catalogue
from atlbook.upgrade import model

__all__ = [
    "MAINTENANCE_WINDOW",
    "Gate",
    "GateReport",
    "eligibility",
    "evaluate",
]

MAINTENANCE_WINDOW = (
    "maintenance-window path (downtime): announce the window, scale the StatefulSet to 1, set the image to "
    "{image}, wait for that node to finish its upgrade tasks and answer RUNNING, then scale back to "
    "{replicas} one node at a time (reference §7.1 'Normal'); take an RDS snapshot first"
)
"""What the ``eligible`` gate offers when a rolling upgrade is not allowed."""


@dataclasses.dataclass(frozen=True)
class Gate:
    """One preflight row."""

    id: str
    title: str
    ok: bool
    evidence: str

    def to_dict(self) -> dict[str, Any]:
        """For the record."""
        return {
            "gate": self.id,
            "check": self.title,
            "result": "pass" if self.ok else "FAIL",
            "evidence": self.evidence,
        }


@dataclasses.dataclass
class GateReport:
    """Every gate of one preflight, in order."""

    product: str
    from_version: str | None
    to_version: str
    gates: list[Gate]
    resume: bool = False

    @property
    def passed(self) -> bool:
        """True when every gate passed."""
        return all(g.ok for g in self.gates)

    @property
    def failed(self) -> list[Gate]:
        """The gates that failed."""
        return [g for g in self.gates if not g.ok]

    def gate(self, gate_id: str) -> Gate:
        """The gate ``gate_id`` (``KeyError`` if absent)."""
        for g in self.gates:
            if g.id == gate_id:
                return g
        raise KeyError(gate_id)

    def rows(self) -> list[dict[str, Any]]:
        """One dict per gate."""
        return [g.to_dict() for g in self.gates]

    def summary(self) -> str:
        """One line: passed, or which gates failed."""
        if self.passed:
            return f"all {len(self.gates)} gates passed"
        return "FAILED: " + "; ".join(f"{g.id}: {g.evidence}" for g in self.failed)

    def table(self) -> Any:
        """The gates as a pandas DataFrame."""
        import pandas as pd

        return pd.DataFrame(self.rows(), columns=["gate", "check", "result", "evidence"]).set_index("gate")

    def _repr_html_(self) -> str:
        return f"<p><b>Preflight</b>: {self.summary()}</p>" + str(self.table().to_html(border=0))

    def to_dict(self) -> dict[str, Any]:
        """For the record."""
        return {
            "product": self.product,
            "from_version": self.from_version,
            "to_version": self.to_version,
            "passed": self.passed,
            "resume": self.resume,
            "gates": self.rows(),
        }


def eligibility(product: str, from_version: str | None, to_version: str, image: str, replicas: int) -> Gate:
    """The ``eligible`` gate: ZDU rule of the product; offers the maintenance-window path when refused."""
    title = "target version is zero-downtime eligible"
    if not to_version:
        return Gate("eligible", title, False, "no target_version given (e.g. -p target_version 11.3.2)")
    if not from_version:
        return Gate("eligible", title, False, "the running version is unknown (no node listed a version)")
    try:
        ok, why = catalogue.zdu_eligible(product, from_version, to_version)
    except Exception as e:  # noqa: BLE001 - ConfigError: an unparsable version; say so in the row
        return Gate("eligible", title, False, str(e))
    if ok:
        return Gate("eligible", title, True, why)
    return Gate(
        "eligible",
        title,
        False,
        f"{why}. Offer: {MAINTENANCE_WINDOW.format(image=image or to_version, replicas=max(replicas, 2))}",
    )


def _ledger_gate(obs: model.Observation) -> Gate:
    title = "no other mutating runbook in progress on this stack"
    own = model.runbook_name(obs.product)
    busy = []
    for lv in obs.ledgers:
        if lv.live_lock and not lv.dead_holder:
            busy.append(f"{lv.runbook} is running: {lv.holder} holds {lv.configmap} since {lv.since}")
        elif lv.unfinished and lv.runbook != own:
            busy.append(f"{lv.runbook} has an unfinished run ({lv.steps_done} steps done in {lv.configmap})")
    if busy:
        return Gate("ledger", title, False, "; ".join(busy) + " — finish or roll it back first")
    resumed = " (resuming this upgrade's unfinished run)" if obs.resume else ""
    dead = [lv.configmap for lv in obs.ledgers if lv.live_lock and lv.dead_holder]
    if dead:
        resumed += f"; the lock in {', '.join(dead)} was left by a process gone from this host: recovered"
    return Gate("ledger", title, True, f"{len(obs.ledgers)} ledger(s), none locked or unfinished{resumed}")


def evaluate(obs: model.Observation, to_version: str, options: model.Options | None = None) -> GateReport:
    """Judge ``obs`` for an upgrade to ``to_version`` (see the module docstring)."""
    opts = options or model.Options()
    gates: list[Gate] = []
    versions = obs.versions()
    resume = obs.resume
    from_version = resume.from_version if resume else (versions[0] if len(versions) == 1 else None)
    if from_version is None and obs.image:
        tag = obs.image.rsplit(":", 1)[-1] if ":" in obs.image.rsplit("/", 1)[-1] else None
        from_version = tag if len(versions) <= 1 else None
    image_to = obs.image.rsplit(":", 1)[0] + f":{to_version}" if obs.image else to_version
    if obs.error and obs.statefulset is None:
        gates.append(Gate("nodes", "the product's StatefulSet", False, obs.error))
        gates.append(_ledger_gate(obs))
        return GateReport(obs.product, from_version, to_version, gates, resume=resume is not None)
    if resume is not None:
        target_ok = model.same_version(resume.to_version, to_version)
        gates.append(
            Gate(
                "eligible",
                "target version is zero-downtime eligible",
                target_ok,
                (
                    f"resuming the unfinished upgrade {resume.from_version} → {resume.to_version} "
                    "(eligibility was checked before its first change)"
                    if target_ok
                    else f"an unfinished upgrade to {resume.to_version} is in the ledger; finish it "
                    f"(rerun with target_version {resume.to_version}) or roll it back (rollback: true) first"
                ),
            )
        )
    else:
        gates.append(eligibility(obs.product, from_version, to_version, image_to, obs.replicas))
    gates.append(
        Gate(
            "nodes",
            "at least 2 nodes",
            obs.replicas >= 2,
            f"StatefulSet {obs.namespace}/{obs.statefulset}: {obs.replicas} replica(s)"
            + ("" if obs.replicas >= 2 else " — a 1-node stack has no other node to serve while it restarts"),
        )
    )
    if resume is not None:
        gates.append(
            Gate(
                "active",
                "all nodes ACTIVE",
                True,
                "not judged on resume: checked before the first change; the node steps wait for each node",
            )
        )
    else:
        problems = []
        for p in obs.pods:
            node = obs.node_for(p)
            if not p.ready:
                problems.append(f"{p.name} not Ready")
            elif not p.running:
                problems.append(f"{p.name} /status {p.status_state or p.error}")
            elif node is None:
                problems.append(f"{p.name} not listed by the cluster nodes endpoint")
            elif not node.active:
                problems.append(f"{p.name} listed {node.state}{'' if node.alive else ' (not alive)'}")
        if obs.cluster_error:
            problems.append(f"cluster nodes: {obs.cluster_error}")
        if len(obs.pods) < obs.replicas:
            problems.append(f"{len(obs.pods)} of {obs.replicas} pods exist")
        gates.append(
            Gate(
                "active",
                "all nodes ACTIVE (Ready, /status RUNNING, listed ACTIVE)",
                not problems,
                "; ".join(problems) or ", ".join(f"{p.name} RUNNING/ACTIVE" for p in obs.pods),
            )
        )
    if resume is None:
        gates.append(
            Gate(
                "one-version",
                "all nodes on one version",
                len(versions) == 1,
                f"versions: {', '.join(versions) or 'none listed'}",
            )
        )
        zdu_state = obs.zdu.state if obs.zdu else None
        gates.append(
            Gate(
                "zdu-stable",
                "ZDU state STABLE",
                zdu_state == "STABLE",
                f"state {zdu_state}" if zdu_state else f"unknown: {obs.zdu_error}",
            )
        )
    gates.append(
        Gate(
            "pdb",
            "a PodDisruptionBudget exists",
            bool(obs.pdbs),
            f"PDB {', '.join(obs.pdbs)}"
            if obs.pdbs
            else f"PDBs in {obs.namespace} cannot be read: {obs.pdb_error}"
            if obs.pdb_error
            else f"no PDB selects the {obs.product} pods in {obs.namespace}",
        )
    )
    if obs.room_error:
        gates.append(Gate("room", "room to reschedule one pod", False, obs.room_error))
    else:
        tight = [r for r in obs.room if not r["fits"]]
        gates.append(
            Gate(
                "room",
                "room to reschedule one pod (atlbook.capacity)",
                bool(obs.room) and not tight,
                "; ".join(r["evidence"] for r in (tight or obs.room[:1])) or "no pods to judge",
            )
        )
    if obs.product == "jira":
        bad = []
        for pod, summary in sorted(obs.index.items()):
            if isinstance(summary, str):
                bad.append(f"{pod}: {summary}")
            elif not summary.healthy(opts.index_tolerance, opts.index_max_queue):
                bad.append(
                    f"{pod}: readable {summary.readable}, drift {summary.drift}, queue {summary.max_queue}"
                )
        ok = not bad and (bool(obs.index) or resume is not None)
        evidence = "; ".join(bad) or (
            ", ".join(
                f"{pod}: {s.count_in_index}/{s.count_in_database} indexed"
                for pod, s in sorted(obs.index.items())
                if not isinstance(s, str)
            )
            or "no node answered"
        )
        gates.append(Gate("index", "Jira index healthy", ok, evidence))
    else:
        gates.append(Gate("index", "Jira index healthy", True, f"not applicable to {obs.info.display}"))
    gates.append(_ledger_gate(obs))
    if obs.rds:
        available = obs.rds.get("status") == "available"
        gates.append(
            Gate(
                "rds",
                "RDS snapshot before the first node moves",
                available,
                f"instance {obs.rds.get('identifier')} is {obs.rds.get('status')}"
                + ("; step rds-snapshot takes the snapshot and waits for 'available'" if available else ""),
            )
        )
    else:
        gates.append(Gate("rds", "RDS snapshot before the first node moves", False, str(obs.rds_error)))
    return GateReport(obs.product, from_version, to_version, gates, resume=resume is not None)
