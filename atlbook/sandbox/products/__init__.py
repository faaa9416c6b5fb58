"""Simulated Jira / Confluence / Bitbucket / Synchrony nodes behind the pods of the emulated cluster.

- :mod:`.zdu` — the shared zero-downtime-upgrade state machine (pure)
- :mod:`.node` — a node's state, rules, log and REST endpoints; the product cluster they share
- :mod:`.registry` — binds nodes to pods through the emulator hooks
- :mod:`.pool` — the real PostgreSQL connection pool each node holds
- :mod:`.faultbook` — which faults are active, consulted by the nodes
- :mod:`.http` — the request/response contract
"""

__all__: list[str] = []
