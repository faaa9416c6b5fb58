"""Scope a diagnosis: which product, which node (pod), which time window — from an alert or by hand.

Two alert formats are understood, as an on-call engineer saves them from the page:

- **Datadog webhook** JSON (the webhook integration's payload, with ``$ALERT_SCOPE``/``$TAGS``/``$DATE``
  variables): keys such as ``title``, ``body``, ``date`` (epoch ms), ``alert_scope``, ``tags``,
  ``alert_transition``, ``id``/``alert_id``.
- **OpsGenie alert** JSON: the webhook body (``{"action": ..., "alert": {...}}``) or the Alert API answer
  (``{"data": {...}}``), with ``message``, ``tags`` (list), ``details`` (map), ``createdAt`` (epoch ms or
  RFC 3339), ``alias``/``alertId``.

The product comes from tags (``service:``, ``kube_stateful_set:``, ``app:``, ``product:``), the pod from
``pod_name:``/``kube_pod_name:``/``pod:`` tags or details, else from a ``jira-1``-like name in the text.
The window ends at the later of the alert time and ``now`` and starts ``window_minutes`` before the alert.
Values given by hand win over the alert's.

Refuses (:class:`~atlbook.errors.ConfigError`, naming what is wrong): a file that is missing or not JSON,
a payload that is neither format, an unreadable alert time, an unknown product, a malformed pod name,
a non-positive window, a pod that belongs to another product than the one named.
"""

from __future__ import annotations

import datetime as dt
import json
import pathlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from atlbook import errors
from atlbook.diagnosis.evidence import PRODUCTS, Window, parse_time

__all__ = ["Alert", "Scope", "from_alert", "load_alert", "manual", "parse_alert", "scope"]

_POD_RE = re.compile(r"\b((?:jira|confluence|bitbucket)-\d+)\b")
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_PRODUCT_TAGS = (
    "service",
    "kube_stateful_set",
    "kube_statefulset",
    "statefulset",
    "app",
    "product",
    "kube_app_name",
    "app.kubernetes.io/name",
)
_POD_TAGS = ("pod_name", "kube_pod_name", "pod", "podname")


@dataclass(frozen=True)
class Scope:
    """What a diagnosis looks at."""

    window: Window
    product: str | None = None
    pod: str | None = None
    source: str = "manual"
    """``manual``, ``datadog`` or ``opsgenie``."""
    alert_id: str | None = None
    alert_title: str | None = None
    alert_time: dt.datetime | None = None
    alert_status: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """A record-friendly view."""
        return {
            "product": self.product,
            "pod": self.pod,
            "window_start": self.window.start.isoformat(),
            "window_end": self.window.end.isoformat(),
            "source": self.source,
            "alert_id": self.alert_id,
            "alert_title": self.alert_title,
            "alert_time": self.alert_time.isoformat() if self.alert_time else None,
            "alert_status": self.alert_status,
        }


def _now(now: dt.datetime | None) -> dt.datetime:
    return now or dt.datetime.now(dt.UTC)


def _check_product(product: str | None, where: str) -> str | None:
    if product in (None, ""):
        return None
    value = str(product).strip().lower()
    if value not in PRODUCTS:
        raise errors.ConfigError(f"{where}: unknown product {product!r} (allowed: {', '.join(PRODUCTS)})")
    return value


def _check_pod(pod: str | None, product: str | None, where: str) -> str | None:
    if pod in (None, ""):
        return None
    value = str(pod).strip()
    if not _DNS_LABEL.match(value):
        raise errors.ConfigError(
            f"{where}: node {pod!r} is not a pod name (lower-case DNS label, e.g. jira-1)"
        )
    if product and any(value.startswith(p + "-") for p in PRODUCTS) and not value.startswith(product + "-"):
        raise errors.ConfigError(f"{where}: node {value!r} does not belong to product {product!r}")
    return value


def _check_window(minutes: float) -> float:
    if isinstance(minutes, bool) or not isinstance(minutes, (int, float)) or minutes <= 0:
        raise errors.ConfigError(f"window_minutes must be a positive number of minutes, got {minutes!r}")
    return float(minutes)


def manual(
    product: str | None = None,
    node: str | None = None,
    window_minutes: float = 60,
    *,
    now: dt.datetime | None = None,
) -> Scope:
    """A scope given by hand: product and node (pod) optional, the last ``window_minutes``."""
    product = _check_product(product, "product")
    pod = _check_pod(node, product, "node")
    if pod and not product:
        product = next((p for p in PRODUCTS if pod.startswith(p + "-")), None)
    return Scope(window=Window.last(_check_window(window_minutes), now=_now(now)), product=product, pod=pod)


def _tags(raw: Any) -> dict[str, str]:
    items: Iterable[Any]
    if raw is None:
        return {}
    if isinstance(raw, str):
        items = [t for t in re.split(r"[,\s]+", raw) if t]
    elif isinstance(raw, Mapping):
        return {str(k).lower(): str(v) for k, v in raw.items()}
    elif isinstance(raw, (list, tuple)):
        items = raw
    else:
        return {}
    out: dict[str, str] = {}
    for item in items:
        text = str(item)
        key, sep, value = text.partition(":")
        if sep:
            out.setdefault(key.strip().lower(), value.strip())
        else:
            out.setdefault(text.strip().lower(), "")
    return out


def _product_from(tags: Mapping[str, str], texts: Iterable[str]) -> str | None:
    for key in _PRODUCT_TAGS:
        value = tags.get(key, "").lower()
        for product in PRODUCTS:
            if value == product or value.startswith(product + "-") or value.endswith("-" + product):
                return product
    for text in texts:
        pods = _POD_RE.findall(text or "")
        if pods:
            return str(pods[0]).rsplit("-", 1)[0]
    for text in texts:
        lowered = (text or "").lower()
        hits = [p for p in PRODUCTS if re.search(rf"\b{p}\b", lowered)]
        if len(hits) == 1:
            return hits[0]
    return None


def _pod_from(tags: Mapping[str, str], texts: Iterable[str]) -> str | None:
    for key in _POD_TAGS:
        if tags.get(key):
            return tags[key]
    for text in texts:
        found = _POD_RE.findall(text or "")
        if found:
            return str(found[0])
    return None


def _time(value: Any, where: str) -> dt.datetime:
    if value is None or value == "":
        raise errors.ConfigError(f"alert payload: no alert time ({where} is missing)")
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        value = int(value.strip())
    parsed = parse_time(value)
    if parsed is None:
        raise errors.ConfigError(f"alert payload: {where} {value!r} is not a time (epoch ms/s or RFC 3339)")
    return parsed


@dataclass(frozen=True)
class Alert:
    """What an alert says: where it came from, when, which product and pod, its id, title and status."""

    source: str
    time: dt.datetime
    product: str | None
    pod: str | None
    alert_id: str | None
    title: str | None
    status: str | None


def _datadog(doc: Mapping[str, Any]) -> Alert:
    tags = _tags(doc.get("tags"))
    tags.update({k: v for k, v in _tags(doc.get("alert_scope")).items() if k not in tags})
    texts = [
        str(doc.get("title") or doc.get("event_title") or ""),
        str(doc.get("body") or doc.get("event_msg") or ""),
    ]
    when = doc.get("date") if doc.get("date") not in (None, "") else doc.get("last_updated")
    return Alert(
        source="datadog",
        time=_time(when, "Datadog 'date'"),
        product=_product_from(tags, texts),
        pod=_pod_from(tags, texts),
        alert_id=str(doc.get("alert_id") or doc.get("id") or "") or None,
        title=texts[0] or None,
        status=str(doc.get("alert_transition") or doc.get("alert_status") or "") or None,
    )


def _opsgenie(alert: Mapping[str, Any], action: Any) -> Alert:
    details = alert.get("details") or {}
    if not isinstance(details, Mapping):
        raise errors.ConfigError("alert payload: OpsGenie 'details' must be a map of strings")
    tags = _tags(alert.get("tags"))
    for key, value in details.items():
        tags.setdefault(str(key).lower(), str(value))
    texts = [
        str(alert.get("message") or ""),
        str(alert.get("description") or ""),
        str(alert.get("entity") or ""),
    ]
    return Alert(
        source="opsgenie",
        time=_time(alert.get("createdAt"), "OpsGenie 'createdAt'"),
        product=_product_from(tags, texts),
        pod=_pod_from(tags, texts),
        alert_id=str(alert.get("alertId") or alert.get("id") or alert.get("alias") or "") or None,
        title=texts[0] or None,
        status=str(action or alert.get("status") or "") or None,
    )


def parse_alert(doc: Any) -> Alert:
    """Recognise a Datadog webhook or OpsGenie alert document and extract product, pod, time, id, title.

    Raises :class:`ConfigError` naming what is wrong.
    """
    if not isinstance(doc, Mapping):
        raise errors.ConfigError(f"alert payload must be a JSON object, got {type(doc).__name__}")
    if isinstance(doc.get("alert"), Mapping) and ("action" in doc or "createdAt" in doc["alert"]):
        return _opsgenie(doc["alert"], doc.get("action"))
    if isinstance(doc.get("data"), Mapping) and "createdAt" in doc["data"]:
        return _opsgenie(doc["data"], None)
    if "message" in doc and "createdAt" in doc:
        return _opsgenie(doc, None)
    datadog_keys = {
        "alert_scope",
        "alert_transition",
        "alert_id",
        "event_type",
        "org",
        "alert_metric",
        "date",
        "last_updated",
    }
    if datadog_keys & set(doc) and ("title" in doc or "event_title" in doc or "body" in doc):
        return _datadog(doc)
    raise errors.ConfigError(
        "alert payload is neither a Datadog webhook (title/body/date/alert_scope) nor an OpsGenie alert "
        f"(alert.createdAt or data.createdAt); top-level keys: {', '.join(sorted(map(str, doc))) or 'none'}"
    )


def load_alert(path: str | pathlib.Path) -> Any:
    """The JSON document in ``path`` (ConfigError when missing or not JSON)."""
    file = pathlib.Path(path).expanduser()
    if not file.is_file():
        raise errors.ConfigError(f"alert_file {str(path)!r} does not exist")
    try:
        return json.loads(file.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise errors.ConfigError(f"alert_file {str(path)!r} is not JSON: {e}") from e


def from_alert(
    doc: Any,
    *,
    product: str | None = None,
    node: str | None = None,
    window_minutes: float = 60,
    now: dt.datetime | None = None,
) -> Scope:
    """The scope an alert document gives; ``product``/``node`` given by hand override the alert's."""
    alert = parse_alert(doc)
    minutes = _check_window(window_minutes)
    chosen_product = _check_product(product, "product") or _check_product(alert.product, "alert payload")
    pod = (
        _check_pod(node, chosen_product, "node")
        if node
        else _check_pod(alert.pod, chosen_product, "alert payload")
    )
    if pod and not chosen_product:
        chosen_product = next((p for p in PRODUCTS if pod.startswith(p + "-")), None)
    end = max(alert.time, _now(now))
    window = Window(alert.time - dt.timedelta(minutes=minutes), end)
    return Scope(
        window=window,
        product=chosen_product,
        pod=pod,
        source=alert.source,
        alert_id=alert.alert_id,
        alert_title=alert.title,
        alert_time=alert.time,
        alert_status=alert.status,
    )


def scope(
    alert_file: str = "",
    product: str = "",
    node: str = "",
    window_minutes: float = 60,
    *,
    now: dt.datetime | None = None,
) -> Scope:
    """The notebook's entry: from ``alert_file`` when given, else by hand (empty strings mean "not given")."""
    if alert_file:
        return from_alert(
            load_alert(alert_file),
            product=product or None,
            node=node or None,
            window_minutes=window_minutes,
            now=now,
        )
    return manual(product or None, node or None, window_minutes, now=now)
