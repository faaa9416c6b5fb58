"""Retry idempotent calls: exponential back-off with full jitter, bounded, honouring Retry-After.

The policy is ours, on top of botocore's own ``standard`` retry mode (which only handles a couple of
quick retries inside one SDK call). It works on atlbook errors only — SDK exceptions have already been
translated by the client modules — and branches on type:

- :class:`~atlbook.errors.RetryableError` (``Throttled`` 429, ``Unavailable`` 5xx/reset/timeout) is
  retried when the call is idempotent; the wait is ``uniform(0, min(cap, base * 2**n))`` ("full
  jitter"), but never shorter than the error's ``delay`` (Retry-After).
- A non-idempotent call (a create that is not by name, a POST to a product) is **never** retried blindly:
  the first failure is raised as is — except :class:`~atlbook.errors.Throttled`, where the server said it
  did not process the request, which is retried like an idempotent call.
- :class:`~atlbook.errors.PermanentError` and anything else is raised at once.

:func:`create_or_get` is the safe retry of a create that is not idempotent by itself (no client token,
or an API that answers a repeat with a second object): after a reset or a 5xx it *looks the object up
by its natural key* before creating again, and a ``Conflict`` means "exists" — so a lost answer never
becomes a duplicate.

:func:`wait_until` is the other half: poll a condition with growing intervals (no fixed sleeps) until
it holds or a deadline passes (:class:`WaitTimedOut`, with the last observation).

Attempts and total time are both bounded; when either runs out the last error is raised, with a note
of the attempts made. ``sleep``, ``clock`` and ``rng`` are injectable for tests.
"""

from __future__ import annotations

import dataclasses
import logging
import random
import time
from collections.abc import Callable
from typing import TypeVar

from atlbook import errors

__all__ = ["DEFAULT_POLICY", "RetryPolicy", "WaitTimedOut", "call", "create_or_get", "wait_until"]

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclasses.dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to retry a failing call."""

    max_attempts: int = 6
    """Total attempts including the first (≥ 1)."""
    base_delay: float = 0.5
    """Seconds; the back-off ceiling before jitter doubles from here on every attempt."""
    max_delay: float = 20.0
    """Seconds; the back-off ceiling never exceeds this (Retry-After may, up to the time budget)."""
    total_timeout: float = 120.0
    """Seconds from the first attempt after which no new attempt starts."""
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic
    rng: Callable[[float, float], float] = random.uniform
    """``rng(a, b)`` → a float in ``[a, b]``; full jitter draws from it."""

    def backoff(self, retry_number: int) -> float:
        """The jittered wait before retry ``retry_number`` (1-based), without Retry-After."""
        ceiling = min(self.max_delay, self.base_delay * (2 ** (retry_number - 1)))
        return self.rng(0.0, ceiling)

    def with_(self, **changes: object) -> RetryPolicy:
        """A copy with some fields changed (e.g. a fake clock in tests)."""
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]


DEFAULT_POLICY = RetryPolicy()


def _retryable(err: BaseException, idempotent: bool) -> bool:
    if not isinstance(err, errors.RetryableError):
        return False
    return idempotent or isinstance(err, errors.Throttled)


def call(
    fn: Callable[[], T],
    *,
    idempotent: bool,
    description: str,
    policy: RetryPolicy | None = None,
) -> T:
    """Call ``fn()`` and retry it under ``policy`` while it raises a retryable atlbook error.

    ``idempotent`` must be stated by the caller: reads, by-name creates that treat 409 as "exists",
    patches and deletes by name are idempotent; anything else is not and is not retried (except on 429).
    ``description`` names the call in logs and in the final error note.
    """
    pol = policy or DEFAULT_POLICY
    started = pol.clock()
    attempt = 0
    while True:
        attempt += 1
        try:
            return fn()
        except errors.AtlbookError as err:
            if not _retryable(err, idempotent):
                raise
            if attempt >= pol.max_attempts:
                log.warning("%s: giving up after %d attempts: %s", description, attempt, err)
                err.add_note(f"atlbook: {description} failed after {attempt} attempts")
                raise
            wait = pol.backoff(attempt)
            after = getattr(err, "delay", None)
            if after is not None:
                wait = max(wait, float(after))
            elapsed = pol.clock() - started
            if elapsed + wait > pol.total_timeout:
                log.warning(
                    "%s: giving up after %d attempts (%.1fs, next wait %.1fs exceeds %.0fs budget): %s",
                    description,
                    attempt,
                    elapsed,
                    wait,
                    pol.total_timeout,
                    err,
                )
                err.add_note(f"atlbook: {description} failed after {attempt} attempts in {elapsed:.1f}s")
                raise
            log.info("%s: attempt %d failed (%s); retrying in %.2fs", description, attempt, err, wait)
            pol.sleep(wait)


def create_or_get(
    create: Callable[[], T],
    find: Callable[[], T | None],
    *,
    description: str,
    policy: RetryPolicy | None = None,
) -> T:
    """Create something safely under faults: ``create()`` once; on a lost answer, ``find()`` before again.

    ``create`` must make one attempt (no retry of its own, e.g. ``idempotent=False``); ``find`` looks
    the object up by its natural key (name, subnet, caller reference) and returns it or ``None``.

    - ``Conflict`` from ``create`` → it exists: ``find()`` (``Conflict`` re-raised if that finds nothing);
    - a retryable error (reset, 5xx, 429) → ``find()``: found → that is the answer (the create went
      through and its answer was lost); not found → create again under ``policy`` (back-off, jitter,
      Retry-After), until the policy gives up and the last error is raised with a note;
    - anything else is raised at once.
    """

    def attempt() -> T:
        try:
            return create()
        except errors.Conflict:
            found = find()
            if found is None:
                raise
            log.info("%s: exists already (409); using it", description)
            return found
        except errors.RetryableError as err:
            try:
                found = find()
            except errors.RetryableError:
                found = None
            if found is not None:
                log.info(
                    "%s: the create went through before its answer was lost (%s); using it", description, err
                )
                return found
            raise

    return call(attempt, idempotent=True, description=description, policy=policy)


class WaitTimedOut(errors.AtlbookError):
    """A condition did not hold before the deadline; ``last`` is the last observation (or error)."""

    def __init__(self, message: str, *, last: object = None) -> None:
        super().__init__(message)
        self.last = last


def wait_until(
    check: Callable[[], T],
    *,
    description: str,
    timeout: float,
    first_interval: float = 0.25,
    max_interval: float = 5.0,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    tolerate: tuple[type[BaseException], ...] = (errors.RetryableError,),
) -> T:
    """Poll ``check()`` until it returns something truthy; return that value.

    Intervals start at ``first_interval`` and grow by half each poll up to ``max_interval``.
    Exceptions in ``tolerate`` (default: retryable atlbook errors) count as "not yet"; others propagate.
    Raises :class:`WaitTimedOut` naming ``description``, the time waited and the last observation.
    """
    started = clock()
    interval = first_interval
    last: object = None
    polls = 0
    while True:
        polls += 1
        try:
            value = check()
        except tolerate as e:
            last = e
        else:
            if value:
                return value
            last = value
        elapsed = clock() - started
        if elapsed >= timeout:
            shown = str(last)
            shown = shown if len(shown) <= 300 else shown[:299] + "…"
            raise WaitTimedOut(
                f"timed out after {elapsed:.0f}s ({polls} polls) waiting for {description}; last: {shown}",
                last=last,
            )
        pause = min(interval, max(0.0, timeout - elapsed))
        log.debug("%s: not yet (%s); polling again in %.2fs", description, last, pause)
        sleep(pause)
        interval = min(max_interval, interval * 1.5)
