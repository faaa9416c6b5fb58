"""The test-only product echo (:mod:`atlbook.sandbox.products.debug_echo`) the secrets sweep relies on.

Aspects covered: off by default (the answer passes unchanged); on, a JSON answer gains the admin
user/password, their basic-auth form and the query, and the node logs a DEBUG line with them; non-JSON
answers pass unchanged; the error variant makes Jira's index summary a 500 quoting the password, only
for its targets; the echo is not in the fault catalogue.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from typing import Any

from atlbook.sandbox.faults import FAULTS
from atlbook.sandbox.products import debug_echo
from atlbook.sandbox.products.faultbook import FaultBook
from atlbook.sandbox.products.http import Response, json_response


@dataclass
class _Cluster:
    namespace: str = "atlassian"

    def admin_credentials(self) -> tuple[str, str]:
        return ("admin", "pw-Echo/123+")


@dataclass
class _Node:
    cluster: _Cluster = field(default_factory=_Cluster)
    pod_name: str = "jira-0"
    product: str = "jira"
    lines: list[str] = field(default_factory=list)

    def log(self, level: str, message: str) -> None:
        self.lines.append(f"{level} {message}")


@dataclass
class _Req:
    method: str = "GET"
    path: str = "/jira/status"
    query: str = "os_username=admin&os_password=pw-Echo%2F123%2B"
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


def test_off_by_default_and_not_in_the_catalogue() -> None:
    resp = json_response(200, {"state": "RUNNING"})
    assert debug_echo.answer(FaultBook(), _Node(), _Req(), resp) is resp
    assert debug_echo.ECHO not in FAULTS and debug_echo.ECHO_ERRORS not in FAULTS


def test_echo_adds_credentials_to_json_and_logs_them() -> None:
    book, node = FaultBook(), _Node()
    book.set(debug_echo.ECHO, "jira")
    out = debug_echo.answer(book, node, _Req(), json_response(200, {"state": "RUNNING"}))
    data: dict[str, Any] = json.loads(out.body)
    assert data["state"] == "RUNNING" and data["debug"]["adminPassword"] == "pw-Echo/123+"
    assert data["debug"]["basic"] == base64.b64encode(b"admin:pw-Echo/123+").decode()
    assert "os_password=pw-Echo%2F123%2B" in data["debug"]["query"]
    assert any("password=pw-Echo/123+" in line for line in node.lines)
    text = Response(200, {"Content-Type": "text/plain"}, b"OK")
    assert debug_echo.answer(book, node, _Req(), text) is text


def test_error_variant_only_for_the_index_summary_of_its_targets() -> None:
    book = FaultBook()
    book.set(debug_echo.ECHO)
    book.set(debug_echo.ECHO_ERRORS, "jira")
    summary = _Req(path="/jira/rest/api/2/index/summary")
    out = debug_echo.answer(book, _Node(), summary, json_response(200, {}))
    assert out.status == 500 and b"pw-Echo/123+" in out.body
    other = debug_echo.answer(
        book, _Node(product="confluence", pod_name="confluence-0"), summary, json_response(200, {})
    )
    assert other.status == 200
