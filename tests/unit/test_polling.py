"""`poll_until`: the one poll loop of the harness, always bounded by its deadline."""

from __future__ import annotations

import pytest

from harness.errors import InfrastructureError
from harness.remote.deadline import Deadline
from harness.windows.polling import Backoff, WaitTimeout, poll_until


class Clock:
    """A monotonic clock that moves only when slept on (and by a probe's cost)."""

    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds >= 0
        self.sleeps.append(round(seconds, 6))
        self.now += seconds


class Answers:
    """A probe that answers `values` in turn (an exception is raised), then the last forever."""

    def __init__(self, clock: Clock, values: list[object], cost_s: float = 0.0) -> None:
        self.clock, self.values, self.cost_s = clock, values, cost_s
        self.calls: list[float] = []  # when each probe started

    def __call__(self) -> object:
        self.calls.append(self.clock.now)
        self.clock.now += self.cost_s
        value = self.values.pop(0) if len(self.values) > 1 else self.values[0]
        if isinstance(value, Exception):
            raise value
        return value


BACKOFF = Backoff(start_s=0.1, factor=2, cap_s=1.0)


def test_the_first_accepted_value_is_returned_after_the_backoff_s_delays() -> None:
    clock = Clock()
    probe = Answers(clock, [1, 2, 3, 4])
    got = poll_until(
        probe,
        lambda v: v == 3,
        deadline=Deadline.after(10, "three", clock=clock),
        sleep=clock.sleep,
        backoff=BACKOFF,
    )
    assert got == 3 and clock.sleeps == [0.1, 0.2]
    assert len(probe.calls) == 3


def test_out_of_time_is_a_wait_timeout_with_the_last_value_never_past_the_deadline() -> None:
    clock = Clock()
    probe = Answers(clock, [1, 2, 7], cost_s=0.05)
    with pytest.raises(WaitTimeout) as info:
        poll_until(
            probe,
            lambda v: v == 0,
            deadline=Deadline.after(3, "zero", clock=clock),
            sleep=clock.sleep,
            backoff=BACKOFF,
        )
    t = info.value
    assert not isinstance(t, InfrastructureError)
    assert t.last == 7 and t.error is None and t.observations == len(probe.calls)
    assert clock.now == pytest.approx(103) and t.waited_s == pytest.approx(3)
    assert max(clock.sleeps) == 1.0  # the cap
    assert all(at < 103 for at in probe.calls)  # none at or after
    assert str(t).startswith(f"zero: not reached within 3.0 s ({t.observations} observations;")
    assert "last: 7" in str(t)


def test_the_first_probe_is_made_even_when_the_deadline_has_passed() -> None:
    clock = Clock()
    deadline = Deadline.after(0, "now", clock=clock)
    assert poll_until(lambda: 5, bool, deadline=deadline, sleep=clock.sleep) == 5
    with pytest.raises(WaitTimeout, match=r"^at once: not reached within 0\.0 s \(1 obs"):
        poll_until(lambda: 0, bool, deadline=deadline, sleep=clock.sleep, what="at once")
    assert clock.sleeps == []


def test_an_infrastructure_error_is_raised_before_the_deadline() -> None:
    clock = Clock()
    probe = Answers(clock, [1, InfrastructureError("refused")])
    with pytest.raises(InfrastructureError, match="refused"):
        poll_until(
            probe, lambda v: v == 2, deadline=Deadline.after(9, "x", clock=clock), sleep=clock.sleep
        )
    assert clock.now < 101


def test_an_error_as_the_deadline_passes_ends_the_wait_with_it() -> None:
    clock = Clock()
    probe = Answers(clock, [1, InfrastructureError("slow")], cost_s=0.6)
    with pytest.raises(WaitTimeout, match=r"last: 1; last error: slow\)$") as info:
        poll_until(
            probe,
            lambda v: v == 2,
            deadline=Deadline.after(1, "two", clock=clock),
            sleep=clock.sleep,
            backoff=BACKOFF,
        )
    assert info.value.last == 1 and info.value.observations == 1
    assert str(info.value.error) == "slow"


def test_with_retry_errors_they_are_polled_past_and_the_last_one_is_kept() -> None:
    clock = Clock()
    down = InfrastructureError("refused")
    probe = Answers(clock, [down, down, "up"])
    got = poll_until(
        probe,
        lambda v: v == "up",
        deadline=Deadline.after(9, "up", clock=clock),
        sleep=clock.sleep,
        backoff=BACKOFF,
        retry_errors=True,
    )
    assert got == "up" and clock.sleeps == [0.1, 0.2]
    with pytest.raises(WaitTimeout, match=r"\(0 observations; nothing observed; last error: ref"):
        poll_until(
            Answers(clock, [down]),
            bool,
            deadline=Deadline.after(2, "up", clock=clock),
            sleep=clock.sleep,
            retry_errors=True,
        )


def test_a_value_after_an_error_clears_it() -> None:
    clock = Clock()
    probe = Answers(clock, [InfrastructureError("blip"), "old"])
    with pytest.raises(WaitTimeout) as info:
        poll_until(
            probe,
            lambda v: v == "new",
            deadline=Deadline.after(2, "new", clock=clock),
            sleep=clock.sleep,
            retry_errors=True,
        )
    assert info.value.last == "old" and info.value.error is None
