"""Deadlines that nest: run > scenario > step > remote call. A child never outlives its parent.

>>> d = Deadline.after(30.0, "scenario tb-01/locked")
>>> step = d.child(5.0, "device to enumerate")
>>> step.remaining() <= 5.0
True
>>> step.check()  # raises InfrastructureError naming "device to enumerate" once expired
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from harness.errors import InfrastructureError

Clock = Callable[[], float]


@dataclass(frozen=True)
class Deadline:
    """A point in monotonic time and what is being waited for until then."""

    end: float
    what: str
    budget_s: float
    clock: Clock = field(default=time.monotonic, repr=False, compare=False)

    @classmethod
    def after(cls, seconds: float, what: str, *, clock: Clock = time.monotonic) -> Deadline:
        if seconds < 0:
            raise ValueError(f"a deadline needs a non-negative budget, got {seconds}")
        return cls(clock() + seconds, what, seconds, clock)

    def remaining(self) -> float:
        """Seconds left, never negative."""
        return max(0.0, self.end - self.clock())

    @property
    def expired(self) -> bool:
        return self.clock() >= self.end

    def child(self, seconds: float, what: str) -> Deadline:
        """A nested deadline of at most `seconds`, ending no later than this one."""
        if seconds < 0:
            raise ValueError(f"a deadline needs a non-negative budget, got {seconds}")
        now = self.clock()
        end = min(now + seconds, self.end)
        return Deadline(end, what, max(0.0, end - now), self.clock)

    def check(self) -> None:
        """Raise InfrastructureError if expired."""
        if self.expired:
            raise self.error()

    def error(self, detail: str = "") -> InfrastructureError:
        extra = f": {detail}" if detail else ""
        return InfrastructureError(
            f"deadline of {self.budget_s:.1f}s expired while waiting for {self.what}{extra}"
        )
