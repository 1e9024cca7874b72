"""The run deadline of a pytest session: the plans' `timeouts.run_s`, as a wall-clock end.

The controller computes it once (hooks.pytest_configure) and hands it to xdist workers through
`workerinput`, so all workers stop at the same moment; each process turns it into a monotonic
`Deadline` that scenario deadlines nest in (run > scenario > step > remote call).
"""

from __future__ import annotations

import time

import pytest

from harness.remote.deadline import Deadline

__all__ = ["RUN_END", "RUN_END_INPUT", "run_deadline"]

RUN_END = pytest.StashKey["float | None"]()
RUN_END_INPUT = "harness_run_end"


def run_deadline(config: pytest.Config) -> Deadline | None:
    """The run's deadline in this process, or None when the plans set no `run_s`."""
    end = config.stash.get(RUN_END, None)
    if end is None:
        return None
    return Deadline.after(max(0.0, end - time.time()), "the run (timeouts.run_s)")
