"""The sandbox: an emulated stack on loopback that runbooks reach exactly like a real one.

Submodules: :mod:`atlbook.sandbox.clock` (simulated time shared by every component) and
:mod:`atlbook.sandbox.kube` (an emulated Kubernetes API server with controllers). Only
``atlbook.cli``, ``atlbook.testing`` and tests import this package. Nothing starts at import time.
"""

__all__: list[str] = []
