"""An emulated Kubernetes API server with real controllers, built like a moto service.

- :mod:`.models` — state and rules (the store, indices, watches); :mod:`.admission` — defaults,
  validation, admission plugins
- :mod:`.routes` — the wire (HTTP routing, encoding, watch streams); :mod:`.tables` — kubectl tables
- :mod:`.errors` — ``v1.Status`` errors and message templates
- controllers: :mod:`.scheduler`, :mod:`.kubelet`, :mod:`.workloads`, :mod:`.volumes`, :mod:`.cluster`
- :mod:`.exec` — ``pods/exec``: the WebSocket channel protocol and a tiny shell over in-memory volumes
- :mod:`.emulator` — :class:`KubeEmulator`, the entry point

The official ``kubernetes`` client and ``kubectl`` talk to it unchanged through a kubeconfig.
"""

from .emulator import DEFAULT_TOKEN, HookAlreadySet, KubeEmulator, KubeSettings
from .hooks import ApiRequest, AuditEntry, ProxyRequest, ProxyResponse

__all__ = [
    "DEFAULT_TOKEN",
    "ApiRequest",
    "AuditEntry",
    "HookAlreadySet",
    "KubeEmulator",
    "KubeSettings",
    "ProxyRequest",
    "ProxyResponse",
]
