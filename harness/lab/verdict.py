"""Compare what a scenario observed with the oracle's expectation, field by field, by evidence.

A `documented` field that differs fails the scenario (a product defect); an `inferred` one fails
it as "expectation may be wrong"; an `unverified` one never fails: it is recorded as an
observation of undocumented behaviour (DESIGN.md, Contracts: the oracle).

>>> from harness.domain.conditions import Conditions
>>> from harness.domain.policy import expect
>>> exp = expect(Conditions(build=22631))
>>> seen = Observed(present=True, started=True, problem_code=0, dma_policy=None,
...                 dma_policy_key="DEVPKEY_Device_DmaRemappingPolicy")
>>> judge(exp, PlugObservations(at_plug=seen, after_unlock=None, probe_locked=None,
...                             probe_ok=None), checks=("devpkey",)).outcome
<Outcome.PASSED: 'passed'>
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from harness.domain.conditions import Evidence, SessionState
from harness.domain.policy import Expectation
from harness.outcomes import Outcome


@dataclass(frozen=True)
class Observed:
    """The device as `pnp_devices` showed it at one moment."""

    present: bool
    started: bool
    problem_code: int
    dma_policy: int | None
    dma_policy_key: str
    status: str = ""
    instance_id: str = ""
    driver_stack: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "present": self.present,
            "started": self.started,
            "status": self.status,
            "problem_code": self.problem_code,
            "dma_policy": self.dma_policy,
            "dma_policy_key": self.dma_policy_key,
            "instance_id": self.instance_id,
            "driver_stack": list(self.driver_stack),
        }


@dataclass(frozen=True)
class PlugObservations:
    at_plug: Observed
    after_unlock: Observed | None  # only when the session at plug was not unlocked
    probe_locked: bool | None  # DMA probe result while locked / signed out (None: not probed)
    probe_ok: bool | None  # DMA probe result with the session unlocked (None: not probed)

    def to_json(self) -> dict[str, Any]:
        return {
            "at_plug": self.at_plug.to_json(),
            "after_unlock": self.after_unlock.to_json() if self.after_unlock else None,
            "probe_locked": self.probe_locked,
            "probe_ok": self.probe_ok,
        }


@dataclass(frozen=True)
class FieldCheck:
    field: str
    expected: Any
    observed: Any
    evidence: Evidence

    @property
    def ok(self) -> bool:
        return bool(self.expected == self.observed)

    def describe(self) -> str:
        return (
            f"{self.field}: expected {self.expected!r}, observed {self.observed!r} "
            f"({self.evidence.value})"
        )


@dataclass(frozen=True)
class Verdict:
    outcome: Outcome
    checks: tuple[FieldCheck, ...]
    evidence_level: str
    message: str
    observations: tuple[str, ...] = field(default=())

    @property
    def mismatches(self) -> tuple[FieldCheck, ...]:
        return tuple(c for c in self.checks if not c.ok)


def _field_checks(
    exp: Expectation, seen: PlugObservations, checks: Sequence[str]
) -> list[FieldCheck]:
    ev = exp.evidence
    plug = seen.at_plug
    out: list[FieldCheck] = []

    def add(name: str, expected: Any, observed: Any) -> None:
        out.append(FieldCheck(name, expected, observed, ev[name]))

    if "devpkey" in checks:
        add("devpkey", 0 if exp.devpkey_absent else exp.devpkey, plug.dma_policy or 0)
        add("devpkey_absent", exp.devpkey_absent, plug.dma_policy is None)
        add("devpkey_key", exp.devpkey_key, plug.dma_policy_key)
    if "starts_at_plug" in checks:
        add("starts_at_plug", exp.starts_at_plug, plug.started)
    if "problem_code" in checks and not exp.starts_at_plug and not plug.started:
        add("problem_code", exp.problem_code, plug.problem_code)
    locked = exp.conditions.session is not SessionState.UNLOCKED
    if "dma_probe" in checks and locked:
        # DMA while locked: the device did DMA (probe passed) at the lock state of the plug.
        did_dma = plug.started and (seen.probe_locked is not False)
        add("dma_while_locked", exp.dma_while_locked, did_dma)
    if "after_unlock" in checks and locked and exp.starts_after_unlock is not None:
        after = seen.after_unlock
        add("starts_after_unlock", exp.starts_after_unlock, bool(after and after.started))
    return out


def judge(exp: Expectation, seen: PlugObservations, *, checks: Sequence[str]) -> Verdict:
    """The scenario's outcome from its expectation and what was observed."""
    results = _field_checks(exp, seen, checks)
    if "dma_probe" in checks and seen.probe_ok is False:
        # A started, unlocked device must do DMA: Windows documents no case where it may not.
        results.append(FieldCheck("dma_probe_unlocked", True, False, Evidence.DOCUMENTED))
    bad = [c for c in results if not c.ok]
    by_level = {lvl: [c for c in bad if c.evidence is lvl] for lvl in Evidence}
    observations = tuple(c.describe() for c in by_level[Evidence.UNVERIFIED])
    # the scenario's level: one definition shared with `plan show` (Expectation.evidence_level);
    # a failure below replaces it with the level of what failed
    level = exp.evidence_level(checks).value
    if by_level[Evidence.DOCUMENTED]:
        outcome = Outcome.FAILED
        shown = by_level[Evidence.DOCUMENTED] + by_level[Evidence.INFERRED]
        level = Evidence.DOCUMENTED.value
    elif by_level[Evidence.INFERRED]:
        outcome = Outcome.EXPECTATION_MAY_BE_WRONG
        shown = by_level[Evidence.INFERRED]
        level = Evidence.INFERRED.value
    elif observations:
        outcome = Outcome.OBSERVED
        shown = by_level[Evidence.UNVERIFIED]
    else:
        outcome = Outcome.PASSED
        shown = []
    message = "; ".join(c.describe() for c in shown)
    return Verdict(outcome, tuple(results), level, message, observations)
