"""The contract between clients.secrets (below) and records.redaction (above): a listener.

``atlbook.clients`` may not import ``atlbook.records`` (layers point down), so resolved values reach the
redaction filter through ``secrets.add_listener(redaction.register_secret)`` — wired by the records
side. Covers: a value resolved before or after wiring is masked in record text; an EKS token and basic
auth header produced in clients are masked too.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from atlbook.clients import secrets
from atlbook.products.client import BasicAuth
from atlbook.records import redaction


@pytest.fixture
def wired() -> Iterator[None]:
    secrets.clear()
    redaction.clear_secrets()
    secrets.register("resolved-before-wiring-1")
    secrets.add_listener(redaction.register_secret)
    yield
    secrets.remove_listener(redaction.register_secret)
    secrets.clear()
    redaction.clear_secrets()


def test_values_resolved_before_and_after_wiring_are_masked(wired: None) -> None:
    secrets.resolve("env:PW", environ={"PW": "resolved-after-wiring-2"})
    header = BasicAuth("admin", "product-admin-pw-3").headers()["Authorization"]
    text = f"a resolved-before-wiring-1 b resolved-after-wiring-2 c {header} d product-admin-pw-3"
    masked, counts = redaction.redact_text(text)
    for value in (
        "resolved-before-wiring-1",
        "resolved-after-wiring-2",
        "product-admin-pw-3",
        header.split()[1],
    ):
        assert value not in masked
    assert sum(counts.values()) >= 4
