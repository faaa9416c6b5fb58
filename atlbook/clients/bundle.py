"""The :class:`Clients` bundle: every SDK client a runbook uses, built lazily from one target.

``connect(target)`` resolves (and by default checks) the target and returns a bundle; nothing is
built until asked for — no connection at import or at ``connect`` time. Workflow functions take the
bundle as an argument (STYLE 8), so the sandbox differs from production only by what the target says.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from atlbook import errors
from atlbook.clients import retry, secrets
from atlbook.clients.target import ResolvedTarget, check_target, resolve_target

if TYPE_CHECKING:
    import boto3
    import psycopg
    from kubernetes.client import ApiClient

__all__ = ["Clients", "connect"]


class Clients:
    """Lazily built boto3 / kubernetes / psycopg clients for one :class:`ResolvedTarget`.

    - :meth:`aws` — a boto3 client per service (cached), from the target's profile or sandbox keys,
      its region and endpoint URL (else ``AWS_ENDPOINT_URL`` from the environment);
    - :attr:`k8s` — the kubernetes ``ApiClient`` for the kubeconfig + context, or for the EKS cluster
      after :meth:`k8s_from_eks`;
    - :meth:`db` — a psycopg connection to the tunnel or an endpoint, password from a secret reference.

    Refuses (``TargetError``): ``k8s`` when the target has no kubeconfig and no EKS cluster was named;
    ``db`` without a tunnel or a host.
    """

    def __init__(self, target: ResolvedTarget, *, policy: retry.RetryPolicy | None = None) -> None:
        self.target = target
        self.policy = policy or retry.DEFAULT_POLICY
        self._lock = threading.RLock()
        self._session: boto3.Session | None = None
        self._aws: dict[tuple[str, str | None], Any] = {}
        self._k8s: ApiClient | None = None

    def __repr__(self) -> str:
        return f"Clients(target={self.target.name!r}, context={self.target.context!r})"

    # --- AWS -----------------------------------------------------------------------------------------

    @property
    def session(self) -> boto3.Session:
        """The boto3 Session (built on first use)."""
        from atlbook.clients import aws

        with self._lock:
            if self._session is None:
                self._session = aws.session(self.target)
            return self._session

    def aws(self, service: str, *, region: str | None = None) -> Any:
        """The boto3 client for ``service`` (e.g. ``"eks"``), cached per (service, region)."""
        from atlbook.clients import aws

        key = (service, region)
        with self._lock:
            if key not in self._aws:
                self._aws[key] = aws.client(
                    self.session, service, endpoint_url=self.target.aws_endpoint_url, region=region
                )
            return self._aws[key]

    def aws_call(self, service: str, operation: str, *, idempotent: bool, **params: Any) -> dict[str, Any]:
        """``aws(service).<operation>(**params)``, translated and retried (see :func:`aws.call`)."""
        from atlbook.clients import aws

        return aws.call(self.aws(service), operation, idempotent=idempotent, policy=self.policy, **params)

    # --- Kubernetes ----------------------------------------------------------------------------------

    @property
    def k8s(self) -> ApiClient:
        """The kubernetes ApiClient (built on first use from the kubeconfig + context)."""
        from atlbook.clients import k8s

        with self._lock:
            if self._k8s is None:
                if self.target.kubeconfig is None:
                    raise errors.TargetError(
                        "the target names no kubeconfig: call clients.k8s_from_eks(cluster_name) first"
                    )
                self._k8s = k8s.client_from_kubeconfig(self.target.kubeconfig, self.target.context)
            return self._k8s

    def k8s_from_eks(self, cluster_name: str) -> ApiClient:
        """Build (and keep as :attr:`k8s`) an ApiClient for EKS cluster ``cluster_name``.

        Reads endpoint and CA with ``describe_cluster``; authenticates with an EKS token from this
        session (refreshed before it expires). Raises the AwsApiError family (``NotFound`` …).
        """
        from atlbook.clients import aws, k8s

        cluster = self.aws_call("eks", "describe_cluster", idempotent=True, name=cluster_name)["cluster"]
        endpoint = cluster.get("endpoint")
        ca = (cluster.get("certificateAuthority") or {}).get("data")
        if not endpoint or not ca:
            raise errors.api_error(
                errors.AwsApiError,
                f"EKS cluster {cluster_name} has no endpoint/CA yet (status {cluster.get('status')})",
                status=503,
                service="eks",
                operation="DescribeCluster",
            )
        sts = self.aws("sts")
        api = k8s.client_from_eks(endpoint, ca, lambda: aws.eks_token(sts, cluster_name))
        with self._lock:
            if self._k8s is not None:
                k8s.close(self._k8s)
            self._k8s = api
        return api

    # --- secrets -------------------------------------------------------------------------------------

    def resolve_secret(self, ref: str | secrets.SecretRef) -> str:
        """Resolve a secret reference with this target (see :mod:`atlbook.clients.secrets`)."""
        return secrets.resolve(ref, self)

    def read_secret_data(self, namespace: str, name: str) -> dict[str, str]:
        """``data`` of Kubernetes Secret ``namespace/name`` (base64 values)."""
        from atlbook.clients import k8s

        doc = k8s.get(self.k8s, "Secret", name, namespace, policy=self.policy)
        return dict(doc.get("data") or {})

    def secretsmanager_string(self, secret_id: str) -> str:
        """``SecretString`` of a Secrets Manager secret."""
        out = self.aws_call("secretsmanager", "get_secret_value", idempotent=True, SecretId=secret_id)
        value = out.get("SecretString")
        if value is None:
            raise errors.AwsApiError(
                "secret has no SecretString (binary secrets are not supported)",
                service="secretsmanager",
                operation="GetSecretValue",
            )
        return str(value)

    # --- database ------------------------------------------------------------------------------------

    def db(
        self,
        database: str,
        *,
        user: str,
        password: str | secrets.SecretRef,
        host: str | None = None,
        port: int | None = None,
        connect_timeout: int = 5,
    ) -> psycopg.Connection[dict[str, Any]]:
        """A psycopg connection to ``database`` through the target's tunnel, or ``host``/``port`` when given.

        ``password`` is a secret reference (``env:…``, ``k8s-secret:…``, ``aws-secretsmanager:…``).
        Refuses a literal password (``LiteralSecretError``) and a target with neither tunnel nor host.
        """
        from atlbook.clients import db

        if isinstance(password, str) and not secrets.is_reference(password):
            raise errors.LiteralSecretError(
                "the database password must be a reference (env:, k8s-secret:, aws-secretsmanager:)",
                key="password",
            )
        if host is None:
            if self.target.database_tunnel is None:
                raise errors.TargetError("the target has no database_tunnel; pass host= (the RDS endpoint)")
            host, tunnel_port = self.target.database_tunnel
            port = port or tunnel_port
        value = self.resolve_secret(password)
        return db.connect(
            host, port or 5432, database, user, value, connect_timeout=connect_timeout, policy=self.policy
        )

    # --- lifecycle -----------------------------------------------------------------------------------

    def close(self) -> None:
        """Close the Kubernetes client's pools (boto3 clients need no closing)."""
        with self._lock:
            if self._k8s is not None:
                from atlbook.clients import k8s

                k8s.close(self._k8s)
                self._k8s = None
            self._aws.clear()

    def __enter__(self) -> Clients:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def connect(target: Any, *, check: bool = True, policy: retry.RetryPolicy | None = None) -> Clients:
    """A :class:`Clients` bundle for ``target`` (``"sandbox"``, a TargetSpec-like object or mapping).

    With ``check`` (default) the target is verified first by :func:`check_target` — files only, no API
    call — so a wrong kubeconfig/context/profile or a sandbox that is down fails here with a
    ``TargetError`` saying how to fix it. No client is built until used.
    """
    resolved = check_target(target) if check else resolve_target(target)
    return Clients(resolved, policy=policy)
