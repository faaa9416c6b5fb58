"""A test-only leak: simulated product nodes that echo credentials, for the secrets sweep.

Real products sometimes echo what they should not: a debug endpoint that returns the admin login, an
error page quoting the request URL (with ``os_password``), a DEBUG log line with the password. The
secrets sweep (``tests/sandbox/security``) turns this on to prove atlbook's records never keep such
values. It is not in the fault catalogue (``atlbook sandbox fault`` does not offer it); tests set it
on the :class:`~atlbook.sandbox.products.faultbook.FaultBook` directly:

- :data:`ECHO` (target: pod, ``ns/pod``, product or namespace): every JSON answer of the node gains a
  ``debug`` object with the admin user and password of the cluster's Secret, their basic-auth form,
  and the request's query string; the node logs a DEBUG line with the same;
- :data:`ECHO_ERRORS`: on top, Jira's ``/rest/api/2/index/summary`` answers 500 with the password in
  the error message (the way a stack trace would quote it).

It refuses nothing and changes nothing else; with neither fault active, answers pass unchanged.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from .faultbook import FaultBook
from .http import Request, Response, json_response

__all__ = ["ECHO", "ECHO_ERRORS", "answer"]

ECHO = "debug-echo-secrets"
ECHO_ERRORS = "debug-echo-secrets-errors"


def answer(faults: FaultBook, node: Any, req: Request, resp: Response) -> Response:
    """``resp``, or a copy that leaks the node's admin credentials when :data:`ECHO` applies to it."""
    ns = node.cluster.namespace
    attrs = (node.pod_name, f"{ns}/{node.pod_name}", node.product, ns)
    if not faults.applies(ECHO, *attrs):
        return resp
    creds = node.cluster.admin_credentials() or ("", "")
    user, password = creds
    basic = base64.b64encode(f"{user}:{password}".encode()).decode()
    query = str(getattr(req, "query", "") or "")
    node.log("DEBUG", f"auth check user={user} password={password} basic={basic} query={query}")
    debug = {"adminUser": user, "adminPassword": password, "basic": basic, "query": query}
    if faults.applies(ECHO_ERRORS, *attrs) and str(getattr(req, "path", "")).endswith("/index/summary"):
        return json_response(
            500, {"message": f"IndexSummaryException: login {user}/{password} refused", "debug": debug}
        )
    try:
        data = json.loads(resp.body or b"null")
    except ValueError:
        return resp
    if not isinstance(data, dict):
        return resp
    data["debug"] = debug
    return Response(resp.status, dict(resp.headers), json.dumps(data).encode())
