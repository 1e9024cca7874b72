"""DUT quarantine: a DUT that misbehaves stops taking scenarios for the rest of the run.

LAVA's lesson (anchor-systems.md): a broken device must not eat the rest of the job. A DUT is
quarantined when

- a scenario on it ends as a DUT error (a bugcheck outside a Verifier scenario, no return
  within the reboot deadline, a condition that will not take), or
- `limit` scenarios in a row on it end as infrastructure errors after their retries (the plan's
  `retries.quarantine_after`), or it cannot be reached at all before its first scenario.

Its remaining scenarios are reported as not run, with the reason and the scenario that caused
it; the other DUTs go on. Quarantine is per run and per DUT (a DUT is driven by one worker).

>>> q = Quarantine(limit=2)
>>> q.note("tb-01", Outcome.INFRASTRUCTURE_ERROR, "switch silent", "s1") is None
True
>>> q.note("tb-01", Outcome.INFRASTRUCTURE_ERROR, "switch silent", "s2")
'2 infrastructure errors in a row (last in s2: switch silent)'
>>> q.reason("tb-01") is not None, q.reason("m2-01")
(True, None)
"""

from __future__ import annotations

from dataclasses import dataclass, field

from harness.outcomes import Outcome

__all__ = ["Quarantine"]


@dataclass
class Quarantine:
    limit: int = 2
    _reasons: dict[str, str] = field(default_factory=dict)
    _in_a_row: dict[str, int] = field(default_factory=dict)

    def note(self, dut: str, outcome: Outcome, text: str, scenario: str) -> str | None:
        """Count one scenario's outcome; the reason if this quarantines the DUT now."""
        if dut in self._reasons:
            return None
        if outcome is Outcome.DUT_ERROR:
            return self._quarantine(dut, f"DUT error in {scenario}: {text}")
        if outcome is Outcome.INFRASTRUCTURE_ERROR:
            n = self._in_a_row[dut] = self._in_a_row.get(dut, 0) + 1
            if n >= max(1, self.limit):
                return self._quarantine(
                    dut, f"{n} infrastructure errors in a row (last in {scenario}: {text})"
                )
            return None
        if outcome is not Outcome.NOT_RUN:
            self._in_a_row[dut] = 0
        return None

    def unreachable(self, dut: str, text: str) -> str:
        """The DUT could not be opened at all (connection, authentication, lease)."""
        return self._quarantine(dut, f"unreachable: {text}")

    def reason(self, dut: str) -> str | None:
        return self._reasons.get(dut)

    def quarantined(self) -> dict[str, str]:
        return dict(self._reasons)

    def _quarantine(self, dut: str, reason: str) -> str:
        self._reasons[dut] = reason
        return reason
