"""Polling with exponential backoff inside a deadline, and the timeout a caller maps itself.

Every wait of the harness is a poll: observe, decide, wait a little longer each time (never past
the deadline), observe again. `WaitTimeout` carries the last observation, because running out
of time while waiting for a device is a *product* observation the caller judges (a test
failure, or a broken DUT), not an infrastructure error.

>>> list(itertools.islice(Backoff().delays(), 5))
[0.05, 0.08, 0.128, 0.2048, 0.32768]
>>> Backoff(start_s=1, factor=2, cap_s=3).delay(5)
3

`poll_until` is that loop, written once: every wait of the harness goes through it.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

from harness.errors import HarnessError, InfrastructureError
from harness.remote.deadline import Deadline

Sleep = Callable[[float], None]
T = TypeVar("T")


@dataclass(frozen=True)
class Backoff:
    """Delays between polls: `start_s`, times `factor` each time, at most `cap_s`."""

    start_s: float = 0.05
    factor: float = 1.6
    cap_s: float = 2.0

    def __post_init__(self) -> None:
        if self.start_s <= 0 or self.factor < 1 or self.cap_s < self.start_s:
            raise ValueError(f"invalid backoff {self}")

    def delay(self, attempt: int) -> float:
        """The delay after poll number `attempt` (0-based)."""
        return min(self.cap_s, round(self.start_s * self.factor**attempt, 9))

    def delays(self) -> Iterator[float]:
        return (self.delay(i) for i in itertools.count())


DEFAULT_BACKOFF = Backoff()


def pause(deadline: Deadline, seconds: float, sleep: Sleep) -> None:
    """Sleep `seconds`, but never past `deadline`."""
    wait = min(seconds, deadline.remaining())
    if wait > 0:
        sleep(wait)


class WaitTimeout(HarnessError):
    """The awaited state was not observed by the deadline; `last` is the last observation.

    Deliberately not an `InfrastructureError` (which is retried): the caller decides whether it
    is a `TestFailure` (the device never started) or a `DutError` (the DUT stopped answering).
    `error` is the `InfrastructureError` of the last probe when that probe failed.
    """

    def __init__(
        self,
        message: str,
        *,
        last: Any,
        observations: int,
        waited_s: float,
        error: InfrastructureError | None = None,
    ) -> None:
        super().__init__(message)
        self.last = last
        self.observations = observations
        self.waited_s = waited_s
        self.error = error


def poll_until(
    probe: Callable[[], T],
    done: Callable[[T], bool],
    *,
    deadline: Deadline,
    sleep: Sleep,
    backoff: Backoff = DEFAULT_BACKOFF,
    what: str | None = None,
    retry_errors: bool = False,
) -> T:
    """Call `probe()` until `done(value)`; that value.

    Between probes it waits `backoff`'s delays, never past `deadline`. The first probe is always
    made; no later probe starts once the deadline has passed. An `InfrastructureError` from
    `probe` is remembered and polled past with `retry_errors`; without, it is raised, unless
    the deadline has passed by then, which ends the wait as below.

    Out of time: `WaitTimeout("{what}: not reached within N s ...")` (`what`: the deadline's)
    with the last value `probe` returned (None if none), how many it returned, the time waited
    and the error of the last probe if that one failed.
    """
    start = deadline.clock()
    last: T | None = None
    count = 0
    error: InfrastructureError | None = None
    for delay in backoff.delays():
        try:
            value = probe()
        except InfrastructureError as exc:
            if not retry_errors and not deadline.expired:
                raise
            error = exc
        else:
            last, count, error = value, count + 1, None
            if done(value):
                return value
        if deadline.expired:
            break
        pause(deadline, delay, sleep)
        if deadline.expired:
            break  # no time left for another observation
    waited = deadline.clock() - start
    seen = f"last: {last!r:.200}" if count else "nothing observed"
    failed = f"; last error: {error}" if error is not None else ""
    raise WaitTimeout(
        f"{what or deadline.what}: not reached within {waited:.1f} s "
        f"({count} observations; {seen}{failed})",
        last=last,
        observations=count,
        waited_s=waited,
        error=error,
    )
