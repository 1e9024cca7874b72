"""Deadline: remaining time, expiry, nesting that never outlives the parent."""

from __future__ import annotations

import pytest

from harness.errors import InfrastructureError
from harness.remote.base import call_deadline
from harness.remote.deadline import Deadline


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_remaining_and_expiry() -> None:
    clock = FakeClock()
    d = Deadline.after(10.0, "the DUT to boot", clock=clock)
    assert d.remaining() == 10.0 and not d.expired
    clock.now += 4
    assert d.remaining() == 6.0
    clock.now += 6
    assert d.expired and d.remaining() == 0.0
    clock.now += 5
    assert d.remaining() == 0.0  # never negative


def test_check_names_what_was_awaited() -> None:
    clock = FakeClock()
    d = Deadline.after(2.5, "device VEN_8086 to start", clock=clock)
    d.check()
    clock.now += 3
    with pytest.raises(
        InfrastructureError, match=r"2\.5s expired while waiting for device VEN_8086"
    ):
        d.check()
    assert "extra detail" in str(d.error("extra detail"))


def test_child_never_outlives_parent() -> None:
    clock = FakeClock()
    parent = Deadline.after(5.0, "scenario", clock=clock)
    short = parent.child(2.0, "step")
    assert short.remaining() == 2.0
    long = parent.child(60.0, "remote call")
    assert long.remaining() == 5.0 and long.end == parent.end
    clock.now += 3
    grandchild = long.child(10.0, "receive")
    assert grandchild.remaining() == 2.0
    assert short.expired and not long.expired
    clock.now += 2
    assert parent.expired and long.expired and grandchild.expired


def test_negative_budgets_are_refused() -> None:
    with pytest.raises(ValueError):
        Deadline.after(-1.0, "x")
    with pytest.raises(ValueError):
        Deadline.after(1.0, "x").child(-0.1, "y")


def test_call_deadline_nests_in_the_enclosing_one() -> None:
    clock = FakeClock()
    outer = Deadline.after(3.0, "step", clock=clock)
    call = call_deadline(30.0, outer, "run hostname")
    assert call.remaining() == 3.0 and call.what == "run hostname"
    alone = call_deadline(1.0, None, "run hostname")
    assert 0.0 < alone.remaining() <= 1.0
