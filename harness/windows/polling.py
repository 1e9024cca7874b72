"""Polling with exponential backoff inside a deadline, and the timeout a caller maps itself.

Every wait of the harness is a poll: observe, decide, wait a little longer each time (never past
the deadline), observe again. `WaitTimeout` carries the last observation, because running out
of time while waiting for a device is a *product* observation the caller judges (a test
failure, or a broken DUT), not an infrastructure error.

>>> list(itertools.islice(Backoff().delays(), 5))
[0.05, 0.08, 0.128, 0.2048, 0.32768]
>>> Backoff(start_s=1, factor=2, cap_s=3).delay(5)
3
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from harness.errors import HarnessError
from harness.remote.deadline import Deadline

Sleep = Callable[[float], None]


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
    """

    def __init__(self, message: str, *, last: Any, observations: int, waited_s: float) -> None:
        super().__init__(message)
        self.last = last
        self.observations = observations
        self.waited_s = waited_s
