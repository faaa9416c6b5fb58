"""The typed description of one HA Atlassian Data Center stack on EKS (:class:`StackSpec`).

A parameters file (``parameters/*.yaml``) holds the stack under its ``stack:`` key; this module
turns that mapping into strict pydantic models (unknown keys refused) that every runbook works with.
Loading, merging and turning validation failures into operator-readable
:class:`~atlbook.errors.ParameterError` messages is :mod:`atlbook.parameters`' job; this module
only describes the shape, the defaults (with their rationale, from ``reference/atlassian-dc.md``)
and the rules that hold between fields.

Boundaries:

- No I/O: nothing here reads files or the environment, and no client is built.
- Secrets are never values: a secret field holds a :class:`SecretRef` (``env:NAME``,
  ``k8s-secret:NAMESPACE/NAME#KEY`` or ``aws-secretsmanager:ARN[#JSONKEY]``); resolution happens in
  ``atlbook.clients.secrets``. A literal is refused with a ``literal_secret`` validation error that
  never carries the value.
- Kubernetes quantities (``"2"``, ``"500m"``, ``"2Gi"``, ``"2G"``) are kept as the operator wrote them
  (so a dump round-trips) and are validated; :func:`cpu_millicores`, :func:`memory_bytes` and
  :func:`jvm_bytes` turn them into numbers.
- A partial mapping is laid over a field's default model (``jvm: {max_heap: 2g}`` keeps the
  product's ``min_heap``); lists are replaced whole.
- Valid but risky choices (one zone, Bitbucket on EFS, no Multi-AZ, ...) are not errors: they are
  listed by :meth:`StackSpec.advisories`.
- Imports nothing from atlbook but (at most) :mod:`atlbook.errors` (layering, see ``pyproject.toml``).
"""

from __future__ import annotations

import math
import re
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationInfo,
    field_validator,
    model_serializer,
    model_validator,
)
from pydantic_core import PydanticCustomError

__all__ = [
    "AdminCredentials",
    "BitbucketSpec",
    "CdnSpec",
    "ConfluenceSpec",
    "CpuQuantity",
    "DatabaseSpec",
    "DatabaseTunnel",
    "DnsLabel",
    "DnsName",
    "IngressSpec",
    "JiraSpec",
    "JvmSize",
    "JvmSpec",
    "LocalHomeSpec",
    "MemoryQuantity",
    "MeshSpec",
    "NetworkPolicySpec",
    "NfsSpec",
    "NodeGroupSpec",
    "OpenSearchSpec",
    "PRODUCT_NAMES",
    "ProductName",
    "ProductSpec",
    "ProductsSpec",
    "ResourceAmounts",
    "ResourcesSpec",
    "SECRET_REF_KINDS",
    "SecretField",
    "SecretRef",
    "SharedHomeSpec",
    "SshServiceSpec",
    "StackSpec",
    "StorageSpec",
    "SynchronySpec",
    "TaintSpec",
    "Target",
    "TargetSpec",
    "cpu_millicores",
    "jvm_bytes",
    "memory_bytes",
    "parse_secret_ref",
]

ProductName = Literal["jira", "confluence", "bitbucket"]
PRODUCT_NAMES: tuple[ProductName, ...] = ("jira", "confluence", "bitbucket")

# --- Kubernetes quantities -------------------------------------------------------------------------

_QUANTITY_RE = re.compile(r"^(?P<num>[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?P<suffix>[eE][+-]?[0-9]+|[a-zA-Z]*)$")
_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL = {
    "n": Decimal("1e-9"),
    "u": Decimal("1e-6"),
    "m": Decimal("1e-3"),
    "": Decimal(1),
    "k": Decimal(10**3),
    "M": Decimal(10**6),
    "G": Decimal(10**9),
    "T": Decimal(10**12),
    "P": Decimal(10**15),
    "E": Decimal(10**18),
}


def _quantity(value: object) -> Decimal:
    """Parse a Kubernetes quantity into a :class:`~decimal.Decimal` (base units); ValueError if malformed."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ValueError("expected a Kubernetes quantity such as '2', '500m', '2Gi' or '2G'")
    text = repr(value) if isinstance(value, float) else str(value)
    match = _QUANTITY_RE.match(text.strip())
    if not match:
        raise ValueError(f"'{text}' is not a Kubernetes quantity (e.g. '2', '500m', '2Gi', '2G')")
    number, suffix = match.group("num"), match.group("suffix")
    try:
        base = Decimal(number)
        if suffix in _BINARY:
            return base * _BINARY[suffix]
        if suffix in _DECIMAL:
            return base * _DECIMAL[suffix]
        if suffix[:1] in ("e", "E"):
            return base * Decimal(10) ** int(suffix[1:])
    except (InvalidOperation, ValueError):
        pass
    raise ValueError(
        f"'{text}' has an unknown unit '{suffix}' (allowed: Ki Mi Gi Ti Pi Ei, n u m k M G T P E, or none)"
    )


def cpu_millicores(value: str | int | float) -> int:
    """Return a CPU quantity (``"2"``, ``"500m"``, ``1.5``) in millicores, rounded up like Kubernetes.

    Refuses (``ValueError``) malformed quantities, binary/byte units and values that are not > 0.
    """
    amount = _quantity(value)
    text = str(value)
    if any(text.endswith(s) for s in _BINARY) or text[-1:] in ("k", "M", "G", "T", "P", "E"):
        raise ValueError(f"'{text}' is not a CPU amount: use cores ('2', '0.5') or millicores ('500m')")
    if amount <= 0:
        raise ValueError(f"CPU amount '{text}' must be greater than 0")
    return math.ceil(amount * 1000)


def memory_bytes(value: str | int | float) -> int:
    """Return a memory quantity (``"2Gi"``, ``"2G"``, ``"512Mi"``, bytes as int) in bytes, rounded up.

    Refuses (``ValueError``) malformed quantities, values that are not > 0, and the milli/micro/nano
    suffixes (``"512m"`` is half a byte to Kubernetes — almost always meant as ``"512Mi"``).
    """
    text = str(value)
    match = _QUANTITY_RE.match(text.strip()) if isinstance(value, str) else None
    if match and match.group("suffix") in ("m", "u", "n"):
        raise ValueError(
            f"'{text}' is a fraction of a byte to Kubernetes; write '{match.group('num')}Mi' for mebibytes"
        )
    amount = _quantity(value)
    if amount <= 0:
        raise ValueError(f"memory amount '{text}' must be greater than 0")
    return math.ceil(amount)


_JVM_RE = re.compile(r"^(?P<num>[0-9]+)(?P<unit>[kKmMgGtT]?)$")
_JVM_UNITS = {"": 1, "k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40}


def jvm_bytes(value: str | int) -> int:
    """Return a JVM memory size in ``-Xmx`` syntax (``"768m"``, ``"12g"``, ``"2048k"``) in bytes.

    Units are binary (``m`` = MiB) as the JVM reads them. Refuses (``ValueError``) Kubernetes units
    such as ``"1Gi"``, decimals and values that are not > 0.
    """
    text = str(value).strip()
    match = _JVM_RE.match(text) if not isinstance(value, bool) else None
    if not match:
        raise ValueError(f"'{text}' is not a JVM size: use a whole number with k, m or g (e.g. '768m', '2g')")
    size = int(match.group("num")) * _JVM_UNITS[match.group("unit").lower()]
    if size <= 0:
        raise ValueError(f"JVM size '{text}' must be greater than 0")
    return size


def _check(fn: Any) -> Any:
    def validate(value: object) -> object:
        """Keep a quantity as text (numbers become text); refuses what ``fn`` cannot parse."""
        if isinstance(value, bool):
            raise ValueError("expected a quantity, not true/false")
        if isinstance(value, int | float):
            value = repr(value) if isinstance(value, float) else str(value)
        if not isinstance(value, str):
            raise ValueError("expected a quantity such as '2', '500m' or '2Gi'")
        fn(value)
        return value

    return validate


CpuQuantity = Annotated[str, BeforeValidator(_check(cpu_millicores))]
"""A CPU amount as Kubernetes writes it (``"2"``, ``"500m"``); numbers are accepted and kept as text."""
MemoryQuantity = Annotated[str, BeforeValidator(_check(memory_bytes))]
"""A memory amount as Kubernetes writes it (``"2Gi"``, ``"2G"``); numbers (bytes) are accepted."""
JvmSize = Annotated[str, BeforeValidator(_check(jvm_bytes))]
"""A JVM size as ``-Xmx`` takes it (``"768m"``, ``"2g"``)."""

_DNS_LABEL_RE = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")


def _dns_label(value: object) -> object:
    if isinstance(value, str) and not _DNS_LABEL_RE.match(value):
        raise ValueError(
            f"'{value}' is not a DNS label: lower-case letters, digits and '-', 1-63 characters, "
            "starting and ending with a letter or digit"
        )
    return value


DnsLabel = Annotated[str, BeforeValidator(_dns_label)]
"""An RFC 1123 label: a Kubernetes namespace or object name, a stack name."""

_DNS_NAME_RE = re.compile(
    r"^(?=.{1,253}$)([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)(\.[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)*$"
)


def _dns_name(value: object) -> object:
    if isinstance(value, str) and not _DNS_NAME_RE.match(value):
        raise ValueError(f"'{value}' is not a DNS host name (e.g. 'atlassian.example.com')")
    return value


DnsName = Annotated[str, BeforeValidator(_dns_name)]

# --- secret references -----------------------------------------------------------------------------

SECRET_REF_KINDS = ("env", "k8s-secret", "aws-secretsmanager")
_ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_K8S_REF_RE = re.compile(r"^(?P<ns>[^/#]+)/(?P<name>[^/#]+)#(?P<key>[-._a-zA-Z0-9]+)$")
_ARN_RE = re.compile(r"^arn:aws[-a-z]*:secretsmanager:[-a-z0-9]+:[0-9]{12}:secret:[-/_+=.@a-zA-Z0-9]+$")
SECRET_REF_HELP = (
    "env:NAME, k8s-secret:NAMESPACE/NAME#KEY or aws-secretsmanager:ARN[#JSONKEY]; "
    "keep the secret itself there, never in a parameters file"
)


class SecretRef(BaseModel):
    """A reference to a secret, parsed: ``kind`` plus the fields that kind needs.

    - ``env``: ``name`` (environment variable) — ``env:ATLBOOK_DB_PASSWORD``
    - ``k8s-secret``: ``namespace``, ``name``, ``key`` — ``k8s-secret:atlassian/jira-admin#password``
    - ``aws-secretsmanager``: ``arn``, optional ``json_key`` —
      ``aws-secretsmanager:arn:aws:secretsmanager:eu-west-1:123456789012:secret:rds-master#password``

    Serialises back to that one-line string form.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["env", "k8s-secret", "aws-secretsmanager"] = Field(description="Where the secret lives.")
    name: str | None = Field(default=None, description="env: variable name; k8s-secret: Secret name.")
    namespace: str | None = Field(default=None, description="k8s-secret: namespace of the Secret.")
    key: str | None = Field(default=None, description="k8s-secret: key inside the Secret's data.")
    arn: str | None = Field(default=None, description="aws-secretsmanager: the secret's ARN.")
    json_key: str | None = Field(
        default=None, description="aws-secretsmanager: key in a JSON secret string; none = whole string."
    )

    def __str__(self) -> str:
        if self.kind == "env":
            return f"env:{self.name}"
        if self.kind == "k8s-secret":
            return f"k8s-secret:{self.namespace}/{self.name}#{self.key}"
        suffix = f"#{self.json_key}" if self.json_key else ""
        return f"aws-secretsmanager:{self.arn}{suffix}"

    @model_serializer(mode="plain")
    def _serialise(self) -> str:
        return str(self)


def parse_secret_ref(text: str) -> SecretRef:
    """Parse ``env:NAME``, ``k8s-secret:NAMESPACE/NAME#KEY`` or ``aws-secretsmanager:ARN[#JSONKEY]``.

    Raises ``ValueError`` (without echoing ``text``, which may be a secret) when it is none of those.
    """
    kind, sep, rest = text.partition(":")
    if sep and kind == "env":
        if not _ENV_NAME_RE.match(rest):
            raise ValueError("env: reference needs a variable name such as env:ATLBOOK_DB_PASSWORD")
        return SecretRef(kind="env", name=rest)
    if sep and kind == "k8s-secret":
        match = _K8S_REF_RE.match(rest)
        if not match or _dns_label_ok(match.group("ns")) is False:
            raise ValueError("k8s-secret: reference must be k8s-secret:NAMESPACE/NAME#KEY")
        return SecretRef(
            kind="k8s-secret", namespace=match.group("ns"), name=match.group("name"), key=match.group("key")
        )
    if sep and kind == "aws-secretsmanager":
        arn, _, json_key = rest.partition("#")
        if not _ARN_RE.match(arn):
            raise ValueError(
                "aws-secretsmanager: reference needs a Secrets Manager ARN "
                "(arn:aws:secretsmanager:REGION:ACCOUNT:secret:NAME), optionally #JSONKEY"
            )
        return SecretRef(kind="aws-secretsmanager", arn=arn, json_key=json_key or None)
    raise ValueError(f"not a secret reference (allowed: {SECRET_REF_HELP})")


def _dns_label_ok(value: str) -> bool:
    return bool(_DNS_LABEL_RE.match(value))


def _secret_field(value: object) -> object:
    if isinstance(value, SecretRef):
        return value
    if isinstance(value, str) and value.split(":", 1)[0] in SECRET_REF_KINDS:
        try:
            return parse_secret_ref(value)
        except ValueError as e:
            raise PydanticCustomError("secret_ref", "{reason}", {"reason": str(e)}) from None
    raise PydanticCustomError(
        "literal_secret",
        "a secret must be given as a reference, not as a value; allowed: {allowed}",
        {"allowed": SECRET_REF_HELP},
    )


SecretField = Annotated[SecretRef, BeforeValidator(_secret_field)]
"""A field holding a secret: only a reference string (or parsed :class:`SecretRef`) is accepted."""

# --- building blocks -------------------------------------------------------------------------------


def _overlay(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in update.items():
        if isinstance(merged.get(key), dict) and isinstance(value, dict):
            merged[key] = _overlay(merged[key], value)
        else:
            merged[key] = value
    return merged


class _Model(BaseModel):
    """Base of the stack models: unknown keys refused, defaults validated, inputs kept out of errors.

    A partial mapping given for a field whose default is a model is laid over that default, so that
    ``jvm: {max_heap: 2g}`` keeps the product's default ``min_heap`` (as a YAML author expects).
    """

    model_config = ConfigDict(extra="forbid", validate_default=True, hide_input_in_errors=True)

    @model_validator(mode="before")
    @classmethod
    def _over_defaults(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        merged = dict(data)
        for name, info in cls.model_fields.items():
            if info.default_factory is None or not isinstance(data.get(name), dict):
                continue
            default = info.get_default(call_default_factory=True)
            if isinstance(default, BaseModel):
                merged[name] = _overlay(default.model_dump(exclude_unset=True), data[name])
        return merged


class DatabaseTunnel(_Model):
    """How to reach the database from the operator's machine (an SSH or port-forward tunnel)."""

    host: str = Field(description="Tunnel host on the operator side, e.g. 127.0.0.1.")
    port: int = Field(ge=1, le=65535, description="Tunnel port (TCP) on the operator side.")


class TargetSpec(_Model):
    """A real stack: how to reach its Kubernetes API and AWS account."""

    kubeconfig: str = Field(description="Path to the kubeconfig file (`~` is expanded by atlbook.clients).")
    context: str = Field(description="Kubeconfig context naming the EKS cluster and user.")
    aws_profile: str = Field(description="AWS shared-config profile used for boto3.")
    aws_region: str = Field(
        pattern=r"^[a-z]{2}(-[a-z]+)+-[0-9]$", description="AWS region of the stack, e.g. eu-west-1."
    )
    aws_endpoint_url: str | None = Field(
        default=None,
        description="Optional AWS endpoint override (VPC endpoints, testing); none = AWS default.",
    )
    database_tunnel: DatabaseTunnel | None = Field(
        default=None, description="Optional tunnel to RDS for diagnosis; none = connect to the RDS endpoint."
    )
    product_url: str | None = Field(
        default=None,
        pattern=r"^https?://",
        description="Optional template of a product's base URL through the ingress, for when the public "
        "host is not reachable from where atlbook runs (a tunnel to the load balancer): placeholders "
        "{host}, {namespace}, {service}, {context_path}; none = https://{host}{context_path}.",
    )


def _target_tag(value: object) -> str:
    return "sandbox" if isinstance(value, str) else "real"


Target = Annotated[
    Annotated[Literal["sandbox"], Tag("sandbox")] | Annotated[TargetSpec, Tag("real")],
    Discriminator(_target_tag),
]


class TaintSpec(_Model):
    """A Kubernetes node taint put on a node group's nodes."""

    key: str = Field(description="Taint key, e.g. atlassian.com/product.")
    value: str = Field(default="", description="Taint value; default empty.")
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] = Field(
        default="NoSchedule", description="Taint effect; default NoSchedule."
    )


class NodeGroupSpec(_Model):
    """An EKS managed node group, spread over every zone of the stack (counts are per zone)."""

    name: DnsLabel = Field(description="Node group name (DNS label).")
    instance_types: list[str] = Field(
        min_length=1,
        description="EC2 instance types, first preferred; reference m5.2xlarge, one product pod per node.",
    )
    min_per_zone: int = Field(default=1, ge=0, description="Minimum nodes per zone; default 1.")
    desired_per_zone: int = Field(default=1, ge=0, description="Desired nodes per zone; default 1.")
    max_per_zone: int = Field(
        default=2, ge=1, description="Maximum nodes per zone; default 2 (room for N+1)."
    )
    disk_gib: int = Field(
        default=50, ge=20, description="Root volume size in GiB; default 50 (Terraform default)."
    )
    labels: dict[str, str] = Field(default_factory=dict, description="Kubernetes labels on the nodes.")
    taints: list[TaintSpec] = Field(default_factory=list, description="Taints on the nodes; default none.")

    @model_validator(mode="after")
    def _counts(self) -> NodeGroupSpec:
        if not self.min_per_zone <= self.desired_per_zone <= self.max_per_zone:
            raise ValueError(
                f"node group '{self.name}' needs min_per_zone <= desired_per_zone <= max_per_zone "
                f"(got {self.min_per_zone} <= {self.desired_per_zone} <= {self.max_per_zone})"
            )
        return self


class ResourceAmounts(_Model):
    """CPU and memory amounts of a container (requests or limits)."""

    cpu: CpuQuantity | None = Field(default=None, description="CPU in cores or millicores ('2', '500m').")
    memory: MemoryQuantity | None = Field(default=None, description="Memory, e.g. '2Gi' or '2G'.")


class ResourcesSpec(_Model):
    """Container requests and limits. The memory limit defaults to the memory request."""

    requests: ResourceAmounts = Field(description="Scheduling requests; both cpu and memory are required.")
    limits: ResourceAmounts = Field(
        default_factory=ResourceAmounts,
        description="Limits; memory defaults to the request (JVMs: request = limit), cpu default none "
        "(no CPU throttling).",
    )

    @model_validator(mode="after")
    def _defaults(self) -> ResourcesSpec:
        if self.requests.cpu is None or self.requests.memory is None:
            raise ValueError("requests need both cpu and memory")
        if self.limits.memory is None:
            # the derived limit is not marked as set: a partial override of requests re-derives it
            derived = ResourceAmounts.model_construct(
                _fields_set=set(self.limits.model_fields_set),
                cpu=self.limits.cpu,
                memory=self.requests.memory,
            )
            object.__setattr__(self, "limits", derived)
        if memory_bytes(self.limits.memory or "0") < memory_bytes(self.requests.memory):
            raise ValueError("limits.memory is below requests.memory")
        if self.limits.cpu is not None and cpu_millicores(self.limits.cpu) < cpu_millicores(
            self.requests.cpu
        ):
            raise ValueError("limits.cpu is below requests.cpu")
        return self

    @property
    def cpu_request_millicores(self) -> int:
        """The CPU request in millicores."""
        return cpu_millicores(self.requests.cpu or "0")

    @property
    def memory_request_bytes(self) -> int:
        """The memory request in bytes."""
        return memory_bytes(self.requests.memory or "0")

    @property
    def memory_limit_bytes(self) -> int:
        """The memory limit in bytes (equal to the request unless set higher)."""
        return memory_bytes(self.limits.memory or self.requests.memory or "0")


def _resources(cpu: str, memory: str, cpu_limit: str | None = None, memory_limit: str | None = None) -> Any:
    limits = {k: v for k, v in (("cpu", cpu_limit), ("memory", memory_limit)) if v is not None}
    document: dict[str, Any] = {"requests": {"cpu": cpu, "memory": memory}}
    if limits:
        document["limits"] = limits
    return lambda: ResourcesSpec.model_validate(document)


def _gib(size: int) -> str:
    return f"{size / 2**30:.2f} GiB"


def _jvm_memory_limit(resources: ResourcesSpec) -> ResourcesSpec:
    """Refuse a JVM container whose memory limit differs from its request (the JVM cannot shrink)."""
    if resources.memory_limit_bytes != resources.memory_request_bytes:
        raise ValueError(
            "limits.memory must equal requests.memory for a JVM "
            f"(got request {resources.requests.memory}, limit {resources.limits.memory}); "
            "leave the limit out and it defaults to the request"
        )
    return resources


class JvmSpec(_Model):
    """JVM memory settings (chart ``resources.jvm``), in ``-Xmx`` syntax."""

    max_heap: JvmSize = Field(description="-Xmx, e.g. '768m'.")
    min_heap: JvmSize = Field(description="-Xms, e.g. '384m'; at most max_heap.")
    reserved_code_cache: JvmSize | None = Field(
        default=None, description="-XX:ReservedCodeCacheSize (Jira, Confluence); none for Bitbucket."
    )

    @model_validator(mode="after")
    def _order(self) -> JvmSpec:
        if jvm_bytes(self.min_heap) > jvm_bytes(self.max_heap):
            raise ValueError(f"min_heap {self.min_heap} is larger than max_heap {self.max_heap}")
        return self

    @property
    def footprint_bytes(self) -> int:
        """max heap + reserved code cache, in bytes (the JVM's fixed memory floor)."""
        cache = jvm_bytes(self.reserved_code_cache) if self.reserved_code_cache else 0
        return jvm_bytes(self.max_heap) + cache


class AdminCredentials(_Model):
    """Product administrator credentials for the REST calls runbooks make (by reference only)."""

    username: SecretField | str = Field(
        default="admin", description="Admin user name (a plain name or a secret reference); default 'admin'."
    )
    password: SecretField = Field(description="Admin password or API token, as a secret reference.")

    @field_validator("username", mode="before")
    @classmethod
    def _username(cls, value: object) -> object:
        if isinstance(value, str) and value.split(":", 1)[0] in SECRET_REF_KINDS:
            return _secret_field(value)
        return value


_PRODUCT_VERSION = re.compile(r"^\d+(\.\d+){1,3}([-+.][0-9A-Za-z][0-9A-Za-z.-]*)?$")
"""A product version as the images tag it: major.minor[.patch[.build]], optionally ``-jdk17``-style suffix."""


class ProductSpec(_Model):
    """What every Data Center product has: a StatefulSet of JVM nodes behind one Service and Ingress."""

    enabled: bool = Field(default=True, description="Deploy and operate this product; default true.")
    namespace: DnsLabel | None = Field(
        default=None, description="Kubernetes namespace; none = the stack's namespace."
    )
    replicas: int = Field(
        default=2, ge=1, description="StatefulSet replicas (nodes); default 2 so one node can fail (HA)."
    )
    version: str = Field(description="Product version; also the image tag.", min_length=1)
    image: str = Field(description="Image repository (without tag).")
    context_path: str = Field(description="Path under the ingress host, e.g. '/jira'.")
    resources: ResourcesSpec = Field(description="Container requests/limits of a product node.")
    jvm: JvmSpec = Field(description="JVM heap settings of a product node.")
    db_pool_max: int = Field(ge=1, description="Max DB connections per node (pool max size).")
    admin: AdminCredentials | None = Field(
        default=None, description="Admin credentials for REST calls; none = runbooks that need them refuse."
    )

    @field_validator("version", mode="before")
    @classmethod
    def _version_text(cls, value: object) -> object:
        if isinstance(value, int | float) and not isinstance(value, bool):
            raise ValueError(f'write the version as a quoted string, e.g. "{value}" (YAML read a number)')
        if isinstance(value, str) and not _PRODUCT_VERSION.match(value):
            raise ValueError(
                f"'{value}' is not a product version like '11.3.1' (or an image tag like '9.4.16-jdk17'): "
                "upgrades and ZDU eligibility are decided on it"
            )
        return value

    @field_validator("context_path")
    @classmethod
    def _path(cls, value: str) -> str:
        if not re.match(r"^(/[-._a-zA-Z0-9]+)*$", value):
            raise ValueError(f"'{value}' is not a path like '/jira' (or '' for the host root)")
        return value

    @property
    def image_ref(self) -> str:
        """``image:version`` — the image the StatefulSet runs."""
        return f"{self.image}:{self.version}"

    @field_validator("resources")
    @classmethod
    def _jvm_limit(cls, value: ResourcesSpec) -> ResourcesSpec:
        return _jvm_memory_limit(value)

    @field_validator("jvm")
    @classmethod
    def _jvm_fits(cls, value: JvmSpec, info: ValidationInfo) -> JvmSpec:
        resources = info.data.get("resources")
        if isinstance(resources, ResourcesSpec) and value.footprint_bytes >= resources.memory_request_bytes:
            cache = f" + reserved_code_cache {value.reserved_code_cache}" if value.reserved_code_cache else ""
            raise ValueError(
                f"max_heap {value.max_heap}{cache} = {_gib(value.footprint_bytes)} does not fit in "
                f"resources.requests.memory {resources.requests.memory} "
                f"= {_gib(resources.memory_request_bytes)}; the JVM needs native memory beyond the heap "
                "(rule of thumb: memory = 1.5-2 x max heap)"
            )
        return value


class SynchronySpec(_Model):
    """Confluence Synchrony (collaborative editing), its own StatefulSet on port 8091."""

    enabled: bool = Field(default=True, description="Run Synchrony; default true (collaborative editing).")
    replicas: int = Field(default=1, ge=1, description="Synchrony replicas; chart default 1.")
    resources: ResourcesSpec = Field(
        default_factory=_resources("2", "2.5G"),
        description="Chart default: cpu 2, memory 2.5G (limit = request).",
    )

    @field_validator("resources")
    @classmethod
    def _jvm_limit(cls, value: ResourcesSpec) -> ResourcesSpec:
        return _jvm_memory_limit(value)


class ConfluenceSpec(ProductSpec):
    """Confluence Data Center (http 8090, Hazelcast 5701). Defaults are chart 2.0.9's."""

    version: str = Field(default="10.2.7", min_length=1, description="Confluence version / image tag.")
    image: str = Field(default="atlassian/confluence", description="Image repository.")
    context_path: str = Field(default="/confluence", description="Path under the ingress host.")
    resources: ResourcesSpec = Field(
        default_factory=_resources("2", "2G"),
        description="Chart default: cpu 2, memory 2G (limit = request).",
    )
    jvm: JvmSpec = Field(
        default_factory=lambda: JvmSpec(max_heap="1g", min_heap="1g", reserved_code_cache="256m"),
        description="Chart default: heap 1g/1g, code cache 256m.",
    )
    db_pool_max: int = Field(default=100, ge=1, description="ATL_DB_POOLMAXSIZE; image default 100.")
    synchrony: SynchronySpec = Field(default_factory=SynchronySpec, description="Synchrony settings.")


class JiraSpec(ProductSpec):
    """Jira Software Data Center (http 8080, Ehcache 40001/40011). Defaults are chart 2.0.9's."""

    version: str = Field(default="11.3.1", min_length=1, description="Jira version / image tag.")
    image: str = Field(default="atlassian/jira-software", description="Image repository.")
    context_path: str = Field(default="/jira", description="Path under the ingress host.")
    resources: ResourcesSpec = Field(
        default_factory=_resources("2", "2G"),
        description="Chart default: cpu 2, memory 2G (limit = request).",
    )
    jvm: JvmSpec = Field(
        default_factory=lambda: JvmSpec(max_heap="768m", min_heap="384m", reserved_code_cache="512m"),
        description="Chart default: heap 768m/384m, code cache 512m.",
    )
    db_pool_max: int = Field(default=100, ge=1, description="ATL_DB_POOLMAXSIZE; image default 100.")


class NfsSpec(_Model):
    """The dedicated NFS server for Bitbucket's shared home (EFS is too slow for git)."""

    resources: ResourcesSpec = Field(
        default_factory=_resources("1", "1Gi", "1500m", "2Gi"),
        description="NFS server pod; default requests 1/1Gi, limits 1.5/2Gi (DCAPT profile).",
    )
    storage: MemoryQuantity = Field(
        default="100Gi", description="EBS volume behind the NFS server; default 100Gi."
    )


class OpenSearchSpec(_Model):
    """OpenSearch for Bitbucket search (a clustered Bitbucket turns off its bundled search)."""

    enabled: bool = Field(default=True, description="Install OpenSearch; default true (needed with >1 node).")
    replicas: int = Field(default=1, ge=1, description="OpenSearch replicas; default 1 (DCAPT uses 2).")
    resources: ResourcesSpec = Field(
        default_factory=_resources("1", "1Gi"), description="Sub-chart default: cpu 1, memory 1Gi."
    )
    storage: MemoryQuantity = Field(
        default="10Gi", description="Persistent volume per replica; default 10Gi."
    )

    @field_validator("resources")
    @classmethod
    def _jvm_limit(cls, value: ResourcesSpec) -> ResourcesSpec:
        return _jvm_memory_limit(value)


class MeshSpec(_Model):
    """Bitbucket Mesh (git storage nodes, gRPC 7777)."""

    enabled: bool = Field(default=False, description="Deploy Mesh; chart default false.")
    replicas: int = Field(default=3, ge=1, description="Mesh nodes; chart default 3 (quorum).")
    resources: ResourcesSpec = Field(
        default_factory=_resources("1", "2G", "2"), description="Chart default: requests 1/2G, limits 2/2G."
    )

    @field_validator("resources")
    @classmethod
    def _jvm_limit(cls, value: ResourcesSpec) -> ResourcesSpec:
        return _jvm_memory_limit(value)


class SshServiceSpec(_Model):
    """The separate LoadBalancer Service for Bitbucket SSH (chart ``bitbucket.sshService``)."""

    enabled: bool = Field(default=True, description="Create the SSH LoadBalancer; default true.")
    port: int = Field(default=22, ge=1, le=65535, description="External port; default 22 (-> pod 7999).")
    host: DnsName | None = Field(default=None, description="Public SSH host name; none = LB host name.")


class BitbucketSpec(ProductSpec):
    """Bitbucket Data Center (http 7990, ssh 7999, Hazelcast 5701). Defaults are chart 2.0.9's."""

    version: str = Field(default="9.4.16", min_length=1, description="Bitbucket version / image tag.")
    image: str = Field(default="atlassian/bitbucket", description="Image repository.")
    context_path: str = Field(default="/bitbucket", description="Path under the ingress host.")
    resources: ResourcesSpec = Field(
        default_factory=_resources("2", "2G"),
        description="Chart default: cpu 2, memory 2G (limit = request).",
    )
    jvm: JvmSpec = Field(
        default_factory=lambda: JvmSpec(max_heap="1g", min_heap="512m"),
        description="Chart default: heap 1g/512m (git runs outside the heap).",
    )
    db_pool_max: int = Field(default=80, ge=1, description="db.pool.size.max; default 80 (HikariCP).")
    nfs: NfsSpec = Field(default_factory=NfsSpec, description="Dedicated NFS server for the shared home.")
    opensearch: OpenSearchSpec = Field(default_factory=OpenSearchSpec, description="Search backend.")
    mesh: MeshSpec = Field(default_factory=MeshSpec, description="Bitbucket Mesh.")
    ssh: SshServiceSpec = Field(default_factory=SshServiceSpec, description="SSH LoadBalancer Service.")


class ProductsSpec(_Model):
    """The three products; each can be disabled."""

    jira: JiraSpec = Field(default_factory=JiraSpec, description="Jira Software DC.")
    confluence: ConfluenceSpec = Field(default_factory=ConfluenceSpec, description="Confluence DC.")
    bitbucket: BitbucketSpec = Field(default_factory=BitbucketSpec, description="Bitbucket DC.")

    def enabled(self) -> dict[ProductName, ProductSpec]:
        """The enabled products by name, in the order jira, confluence, bitbucket."""
        specs: dict[ProductName, ProductSpec] = {
            "jira": self.jira,
            "confluence": self.confluence,
            "bitbucket": self.bitbucket,
        }
        return {name: spec for name, spec in specs.items() if spec.enabled}


class LocalHomeSpec(_Model):
    """Local home: one EBS volume per pod (volumeClaimTemplates) — pins the pod to its zone."""

    storage_class: str = Field(default="gp3", description="StorageClass of the EBS volumes; default gp3.")
    size: MemoryQuantity = Field(default="20Gi", description="Size per pod; default 20Gi (indexes, caches).")


class SharedHomeSpec(_Model):
    """Shared home on EFS for Jira and Confluence (ReadWriteMany)."""

    throughput_mode: Literal["elastic", "bursting", "provisioned"] = Field(
        default="elastic",
        description="EFS throughput mode; default elastic (bursting runs out of credits during reindex).",
    )
    provisioned_mibps: float | None = Field(
        default=None, gt=0, description="MiB/s, required with throughput_mode=provisioned, otherwise none."
    )
    size: MemoryQuantity = Field(
        default="100Gi",
        description="Capacity declared on the PV (EFS is elastic; informational); default 100Gi.",
    )

    @model_validator(mode="after")
    def _provisioned(self) -> SharedHomeSpec:
        if (self.throughput_mode == "provisioned") != (self.provisioned_mibps is not None):
            raise ValueError("provisioned_mibps is required with throughput_mode 'provisioned' and only then")
        return self


class StorageSpec(_Model):
    """Where product homes live."""

    local_home: LocalHomeSpec = Field(default_factory=LocalHomeSpec, description="Per-pod EBS local home.")
    shared_home: SharedHomeSpec = Field(default_factory=SharedHomeSpec, description="EFS shared home.")
    bitbucket_shared_home: Literal["nfs", "efs"] = Field(
        default="nfs",
        description="Bitbucket shared home: nfs (dedicated server, recommended) or efs (allowed, too slow "
        "for git; provisioning warns).",
    )


class DatabaseSpec(_Model):
    """The shared RDS PostgreSQL instance (one database per product)."""

    instance_class: str = Field(
        default="db.m5.large", pattern=r"^db\.[a-z0-9]+\.[a-z0-9]+$", description="RDS instance class."
    )
    multi_az: bool = Field(default=True, description="Multi-AZ standby; default true (HA).")
    backup_retention_days: int = Field(
        default=7, ge=7, le=35, description="Automated backup retention in days; at least 7, RDS max 35."
    )
    engine_version: str = Field(default="16", description="PostgreSQL engine version, e.g. '16' or '16.9'.")
    allocated_storage_gib: int = Field(
        default=100, ge=20, le=65536, description="Storage in GiB; default 100."
    )
    master_username: str = Field(
        default="postgres",
        pattern=r"^[a-zA-Z][a-zA-Z0-9_]{0,62}$",
        description="Master user; default postgres.",
    )
    master_password: SecretField = Field(description="Master password, as a secret reference.")

    @field_validator("engine_version", mode="before")
    @classmethod
    def _version_text(cls, value: object) -> object:
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        if isinstance(value, float):
            raise ValueError(f'write the engine version as a quoted string, e.g. "{value}"')
        return value


class IngressSpec(_Model):
    """The nginx Ingress in front of the products."""

    host: DnsName = Field(description="Public host name, e.g. atlassian.example.com.")
    class_name: str = Field(default="nginx", description="IngressClass; chart default nginx.")
    tls_secret: DnsLabel | None = Field(
        default=None, description="Name of the kubernetes.io/tls Secret; none = TLS terminated before nginx."
    )
    stickiness: bool = Field(
        default=True, description="Cookie session affinity (affinity: cookie, persistent); required for DC."
    )
    max_body_size: str = Field(default="250m", description="proxy-body-size; chart default 250m.")


class CdnSpec(_Model):
    """CloudFront in front of the ingress for static assets."""

    enabled: bool = Field(default=False, description="Create the CloudFront distribution; default false.")
    static_paths: list[str] = Field(
        default_factory=lambda: ["/s/*", "/download/resources/*", "/images/*"],
        description="Path patterns served from the CDN (Atlassian static resources).",
    )


class NetworkPolicySpec(_Model):
    """Default-deny NetworkPolicies with the allow rules the products need."""

    enabled: bool = Field(default=True, description="Apply default-deny + allow rules; default true.")


class StackSpec(_Model):
    """One HA Atlassian Data Center stack on EKS: the ``stack:`` key of a parameters file."""

    name: DnsLabel = Field(description="Stack name (DNS label); used in resource names and records.")
    namespace: DnsLabel = Field(
        default="atlassian", description="Default namespace of the products; default 'atlassian'."
    )
    target: Target = Field(description="'sandbox' or {kubeconfig, context, aws_profile, aws_region, ...}.")
    zones: list[str] = Field(
        min_length=1, description="Availability zones, e.g. [eu-west-1a, eu-west-1b]; >= 2 for HA."
    )
    node_groups: list[NodeGroupSpec] = Field(min_length=1, description="EKS managed node groups.")
    products: ProductsSpec = Field(default_factory=ProductsSpec, description="Jira, Confluence, Bitbucket.")
    storage: StorageSpec = Field(default_factory=StorageSpec, description="Local and shared homes.")
    database: DatabaseSpec = Field(description="The shared RDS PostgreSQL.")
    ingress: IngressSpec = Field(description="Ingress host, class, TLS, stickiness.")
    cdn: CdnSpec = Field(default_factory=CdnSpec, description="CloudFront for static assets.")
    network_policy: NetworkPolicySpec = Field(
        default_factory=NetworkPolicySpec, description="NetworkPolicies."
    )
    tags: dict[str, str] = Field(default_factory=dict, description="AWS tags put on every resource.")

    @field_validator("zones")
    @classmethod
    def _zones(cls, zones: list[str]) -> list[str]:
        for zone in zones:
            if not re.match(r"^[a-z]{2}(-[a-z]+)+-[0-9][a-z]$", zone):
                raise ValueError(f"'{zone}' is not an availability zone name like 'eu-west-1a'")
        if len(set(zones)) != len(zones):
            raise ValueError("zones must be distinct")
        if len({z[:-1] for z in zones}) != 1:
            raise ValueError("all zones must be in one region")
        return zones

    @model_validator(mode="after")
    def _consistent(self) -> StackSpec:
        names = [g.name for g in self.node_groups]
        if len(set(names)) != len(names):
            raise ValueError("node group names must be distinct")
        if isinstance(self.target, TargetSpec) and self.target.aws_region != self.region:
            raise ValueError(
                f"target.aws_region {self.target.aws_region} does not match the zones' region {self.region}"
            )
        return self

    @property
    def region(self) -> str:
        """The AWS region the zones are in."""
        return self.zones[0][:-1]

    @property
    def is_sandbox(self) -> bool:
        """True when the target is the local sandbox."""
        return self.target == "sandbox"

    def namespace_of(self, product: ProductName) -> str:
        """The namespace a product runs in (its own, else the stack's)."""
        return getattr(self.products, product).namespace or self.namespace

    def advisories(self) -> list[str]:
        """Valid but risky choices, one sentence each (runbooks show them; provisioning warns).

        Covers: fewer than 2 zones, a product with 1 replica, Bitbucket shared home on EFS, a clustered
        Bitbucket without OpenSearch, RDS without Multi-AZ, EFS in bursting mode.
        """
        notes: list[str] = []
        if len(self.zones) < 2:
            notes.append("only one availability zone: losing it takes the whole stack down (HA needs >= 2)")
        for name, spec in self.products.enabled().items():
            if spec.replicas < 2:
                notes.append(f"{name} has 1 replica: a node failure or upgrade is an outage")
        bitbucket = self.products.bitbucket
        if bitbucket.enabled and self.storage.bitbucket_shared_home == "efs":
            notes.append(
                "bitbucket shared home on EFS: git operations will be slow; a dedicated NFS is recommended"
            )
        if bitbucket.enabled and bitbucket.replicas > 1 and not bitbucket.opensearch.enabled:
            notes.append("clustered bitbucket without OpenSearch: search is disabled on a multi-node cluster")
        if not self.database.multi_az:
            notes.append("database without Multi-AZ: an AZ or instance failure stops every product")
        if self.storage.shared_home.throughput_mode == "bursting":
            notes.append("EFS in bursting mode: burst credits run out during reindex or index snapshots")
        return notes
