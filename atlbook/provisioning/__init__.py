"""Provisioning: plan and apply the whole HA stack on AWS and Kubernetes, idempotently, then verify it.

``desired`` (pure: stack description → resources) → ``observe`` (what exists, through the clients) →
``diff`` (the plan: create / update field by field / unchanged / present-but-not-desired, plus the
blocking checks) → ``apply`` (steps in dependency order, waiting on real conditions, resumable through
the ledger) → ``postchecks`` (the table the record keeps). ``export`` writes the Kubernetes objects as
YAML for review. The notebook ``10-provision`` only calls these.
"""

__all__: list[str] = []
