"""The AWS front's reset gate: a moto reset waits for requests in flight and holds new ones off.

moto resets a backend by emptying its ``__dict__`` and re-running ``__init__`` on the live object; a
request inside moto meanwhile saw ``'IAMBackend' object has no attribute 'access_keys'`` (a 500 in CI).
"""

from __future__ import annotations

import threading

from atlbook.sandbox.aws.server import _ResetGate


def test_reset_waits_for_the_request_in_flight_and_new_requests_wait_for_the_reset() -> None:
    gate = _ResetGate()
    order: list[str] = []
    in_request, release_request = threading.Event(), threading.Event()
    resetting = threading.Event()

    def request(name: str, hold: threading.Event | None = None) -> None:
        with gate.shared():
            order.append(f"{name} in")
            if hold is not None:
                in_request.set()
                hold.wait(10)
            order.append(f"{name} out")

    def reset() -> None:
        with gate.exclusive():
            resetting.set()
            order.append("reset")

    first = threading.Thread(target=request, args=("first", release_request))
    first.start()
    assert in_request.wait(10)
    resetter = threading.Thread(target=reset)
    resetter.start()
    assert not resetting.wait(0.3)  # the reset cannot start while a request is inside moto
    late = threading.Thread(target=request, args=("late",))
    late.start()
    late.join(0.3)
    assert "late in" not in order  # a request arriving while a reset waits is held off too
    release_request.set()
    for t in (first, resetter, late):
        t.join(10)
    assert order == ["first in", "first out", "reset", "late in", "late out"]


def test_requests_share_the_gate() -> None:
    gate = _ResetGate()
    with gate.shared(), gate.shared():  # nested / concurrent requests never block each other
        pass
    with gate.exclusive():
        pass
    with gate.shared():
        pass
