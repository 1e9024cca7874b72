"""Scenario outcomes: the taxonomy of DESIGN.md ("Contracts") as one enum, with what each means
for the Allure report, the journal and the exit code of `harness run`.

>>> Outcome.EXPECTATION_MAY_BE_WRONG.allure_status
'failed'
>>> run_exit_code([Outcome.PASSED, Outcome.INFRASTRUCTURE_ERROR])
3
"""

from __future__ import annotations

import enum
from collections.abc import Iterable


class Outcome(str, enum.Enum):
    """The final outcome of one scenario (one line of `journal.jsonl`)."""

    PASSED = "passed"
    #: Passed; an `unverified` expectation differed from what was observed (recorded, not failed).
    OBSERVED = "observed"
    #: A `documented` expectation failed, or the product crashed under Verifier: a product defect.
    FAILED = "failed"
    #: Only `inferred` expectations failed: the product or the oracle may be wrong.
    EXPECTATION_MAY_BE_WRONG = "expectation-may-be-wrong"
    #: The DUT crashed outside a Verifier scenario or did not come back.
    DUT_ERROR = "dut-error"
    #: Network, WinRM/SSH, switch, lease trouble (after the plan's retries).
    INFRASTRUCTURE_ERROR = "infrastructure-error"
    HARNESS_BUG = "harness-bug"
    #: Not run (quarantined DUT, deselected after an abort, ...); the journal says why.
    NOT_RUN = "not-run"

    @property
    def allure_status(self) -> str:
        return _ALLURE_STATUS[self]

    @property
    def is_pass(self) -> bool:
        return self in (Outcome.PASSED, Outcome.OBSERVED)

    @property
    def is_test_failure(self) -> bool:
        """Counts as "a scenario failed" for the exit code."""
        return self in (Outcome.FAILED, Outcome.EXPECTATION_MAY_BE_WRONG, Outcome.DUT_ERROR)


_ALLURE_STATUS = {
    Outcome.PASSED: "passed",
    # not a plain pass in the report's overview: Allure's "unknown" (an observation to read)
    Outcome.OBSERVED: "unknown",
    Outcome.FAILED: "failed",
    Outcome.EXPECTATION_MAY_BE_WRONG: "failed",
    Outcome.DUT_ERROR: "broken",
    Outcome.INFRASTRUCTURE_ERROR: "broken",
    Outcome.HARNESS_BUG: "broken",
    Outcome.NOT_RUN: "skipped",
}

#: The first words of the Allure status message of each outcome; categories.json matches them.
MESSAGE_PREFIX = {
    Outcome.OBSERVED: "observation:",
    Outcome.FAILED: "product defect:",
    Outcome.EXPECTATION_MAY_BE_WRONG: "expectation may be wrong:",
    Outcome.DUT_ERROR: "DUT error:",
    Outcome.INFRASTRUCTURE_ERROR: "lab infrastructure:",
    Outcome.HARNESS_BUG: "harness bug:",
    Outcome.NOT_RUN: "not run:",
}


def run_exit_code(outcomes: Iterable[Outcome]) -> int:
    """0 all passed, 1 a scenario failed, 3 only infrastructure trouble (no scenario failed).

    A run with no outcome at all (nothing ran) is 3: something stopped it before any scenario.
    """
    seen = list(outcomes)
    if not seen:
        return 3
    if any(o.is_test_failure for o in seen):
        return 1
    if all(o.is_pass for o in seen):
        return 0
    return 3
