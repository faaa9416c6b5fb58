"""atlbook: parameterised runbooks for Atlassian Data Center (Jira, Confluence, Bitbucket) on Amazon EKS.

The notebooks in ``notebooks/`` are thin; the logic lives in the modules of this package, layered as
DESIGN.md draws it (imports only point down; checked by import-linter):

- ``cli``, ``runner`` — run a notebook by name with parameter files, write records
- ``provisioning``, ``upgrade``, ``diagnosis``, ``remediation`` — workflows, independent of each other
- ``capacity`` — pure placement math
- ``plan``, ``records``, ``widgets`` — plan/apply/ledger, records + redaction, confirm gates
- ``products`` — Jira / Confluence / Bitbucket knowledge and REST clients
- ``clients`` — the only place boto3 / kubernetes / psycopg clients are built
- ``stack``, ``parameters`` — typed stack description, YAML loading + validation
- ``errors`` — one error tree
- ``sandbox`` — the emulated stack (imported only by ``cli`` and ``testing``)

Nothing here builds a client or reads the environment at import time.
"""

__all__ = ["__version__"]

__version__ = "0.1.0"
