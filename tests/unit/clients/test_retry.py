"""Retry policy with a fake clock: jitter bounds, Retry-After, idempotency, attempt and time budgets.

Covers: full-jitter back-off stays within [0, min(cap, base·2^n)]; a Retry-After delay is a floor; a
non-idempotent call is never retried on Unavailable but is on Throttled; permanent errors are not
retried; attempts and total time are bounded and the final error says how many attempts were made.
"""

from __future__ import annotations

import pytest

from atlbook import errors
from atlbook.clients import retry


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def unavailable(delay: float | None = None) -> errors.ApiError:
    return errors.api_error(errors.K8sApiError, "boom", status=503, delay=delay)


def throttled(delay: float | None = None) -> errors.ApiError:
    return errors.api_error(errors.K8sApiError, "slow down", status=429, delay=delay)


def failing(errs: list[BaseException], result: str = "ok") -> tuple[list[int], object]:
    calls = [0]

    def fn() -> str:
        calls[0] += 1
        if errs:
            raise errs.pop(0)
        return result

    return calls, fn


@pytest.fixture
def fake() -> FakeTime:
    return FakeTime()


def policy(fake: FakeTime, rng: object = None, **kw: object) -> retry.RetryPolicy:
    base = retry.RetryPolicy(sleep=fake.sleep, clock=fake.clock, rng=rng or (lambda a, b: b))  # type: ignore[arg-type]
    return base.with_(**kw)


def test_succeeds_after_transient_failures(fake: FakeTime) -> None:
    calls, fn = failing([unavailable(), unavailable()])
    assert retry.call(fn, idempotent=True, description="get x", policy=policy(fake)) == "ok"  # type: ignore[arg-type]
    assert calls[0] == 3
    assert fake.sleeps == [0.5, 1.0]  # rng at its upper bound: base·2^(n-1)


@pytest.mark.parametrize("bound", ["low", "high"], ids=["jitter-min", "jitter-max"])
def test_full_jitter_bounds(fake: FakeTime, bound: str) -> None:
    seen: list[tuple[float, float]] = []

    def rng(a: float, b: float) -> float:
        seen.append((a, b))
        return a if bound == "low" else b

    pol = policy(fake, rng=rng, max_attempts=8, base_delay=1.0, max_delay=10.0, total_timeout=1000)
    calls, fn = failing([unavailable() for _ in range(7)])
    retry.call(fn, idempotent=True, description="x", policy=pol)  # type: ignore[arg-type]
    assert [b for _, b in seen] == [1.0, 2.0, 4.0, 8.0, 10.0, 10.0, 10.0]
    assert all(a == 0.0 for a, _ in seen)
    expected = [0.0] * 7 if bound == "low" else [1.0, 2.0, 4.0, 8.0, 10.0, 10.0, 10.0]
    assert fake.sleeps == expected


def test_real_rng_stays_in_bounds() -> None:
    pol = retry.RetryPolicy(base_delay=0.5, max_delay=4.0)
    for n in range(1, 10):
        for _ in range(50):
            assert 0.0 <= pol.backoff(n) <= min(4.0, 0.5 * 2 ** (n - 1))


def test_retry_after_is_a_floor(fake: FakeTime) -> None:
    calls, fn = failing([throttled(delay=7.0)])
    retry.call(fn, idempotent=True, description="x", policy=policy(fake, rng=lambda a, b: a))  # type: ignore[arg-type]
    assert fake.sleeps == [7.0]


@pytest.mark.parametrize(
    "err, idempotent, attempts",
    [
        (unavailable(), True, 2),
        (unavailable(), False, 1),
        (throttled(), False, 2),
        (errors.api_error(errors.K8sApiError, "gone", status=404), True, 1),
        (errors.api_error(errors.K8sApiError, "exists", status=409), True, 1),
        (ValueError("not ours"), True, 1),
    ],
    ids=[
        "unavailable-idempotent",
        "unavailable-not-idempotent",
        "throttled-not-idempotent",
        "not-found",
        "conflict",
        "foreign-exception",
    ],
)
def test_what_is_retried(fake: FakeTime, err: BaseException, idempotent: bool, attempts: int) -> None:
    calls, fn = failing([err])
    try:
        retry.call(fn, idempotent=idempotent, description="x", policy=policy(fake))  # type: ignore[arg-type]
    except (errors.AtlbookError, ValueError) as raised:
        assert raised is err
    assert calls[0] == attempts


def test_gives_up_after_max_attempts(fake: FakeTime) -> None:
    calls, fn = failing([unavailable() for _ in range(10)])
    with pytest.raises(errors.Unavailable) as info:
        retry.call(fn, idempotent=True, description="list pods", policy=policy(fake, max_attempts=3))  # type: ignore[arg-type]
    assert calls[0] == 3
    assert any("after 3 attempts" in n for n in info.value.__notes__)


def test_gives_up_when_time_budget_is_spent(fake: FakeTime) -> None:
    calls, fn = failing([throttled(delay=30.0) for _ in range(10)])
    with pytest.raises(errors.Throttled):
        retry.call(
            fn, idempotent=True, description="x", policy=policy(fake, total_timeout=70.0, max_attempts=10)
        )  # type: ignore[arg-type]
    assert calls[0] == 3 and fake.sleeps == [30.0, 30.0]


def test_attempts_are_logged(fake: FakeTime, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("INFO", logger="atlbook.clients.retry")
    calls, fn = failing([unavailable()])
    retry.call(fn, idempotent=True, description="get cm", policy=policy(fake))  # type: ignore[arg-type]
    assert "get cm: attempt 1 failed" in caplog.text


def test_wait_until_polls_with_growing_intervals(fake: FakeTime) -> None:
    answers = [None, unavailable(), False, "ready"]

    def check() -> object:
        value = answers.pop(0)
        if isinstance(value, Exception):
            raise value
        return value

    got = retry.wait_until(
        check,
        description="pod Ready",
        timeout=60,
        first_interval=1.0,
        max_interval=2.0,
        sleep=fake.sleep,
        clock=fake.clock,
    )
    assert got == "ready" and fake.sleeps == [1.0, 1.5, 2.0]


def test_wait_until_times_out_with_the_last_observation(fake: FakeTime) -> None:
    with pytest.raises(retry.WaitTimedOut, match="waiting for ZDU state STABLE; last: MIXED") as info:
        retry.wait_until(
            _Obs("MIXED"), description="ZDU state STABLE", timeout=10, sleep=fake.sleep, clock=fake.clock
        )
    assert str(info.value.last) == "MIXED"
    assert sum(fake.sleeps) == pytest.approx(10.0)


def test_wait_until_propagates_permanent_errors(fake: FakeTime) -> None:
    def check() -> object:
        raise errors.api_error(errors.K8sApiError, "gone", status=404)

    with pytest.raises(errors.NotFound):
        retry.wait_until(check, description="x", timeout=10, sleep=fake.sleep, clock=fake.clock)


class _Obs:
    """A falsy observation that prints as its state."""

    def __init__(self, state: str) -> None:
        self.state = state

    def __call__(self) -> _Obs:
        return self

    def __bool__(self) -> bool:
        return False

    def __str__(self) -> str:
        return self.state
