"""Lab-time estimates: what a reboot, a package install, a session change and one scenario cost.

Pure functions of the lab's `CostModel` (`cost_model:` in the lab file; real-world defaults in
`harness.config.lab_models.CostModel`). The scheduler (`harness.lab.schedule`) uses them to
order and balance scenarios, and `harness plan show --json` reports the estimates.

A boot state (`harness.lab.boot_state.BootState`) is the part of a scenario's conditions that
only a reboot changes; everything else (driver package, session state) changes without one.

>>> from harness.config.lab_models import CostModel
>>> from harness.domain.conditions import DmaGuardPolicy, OnOff
>>> a = BootState(OnOff.ON, DmaGuardPolicy.ABSENT, OnOff.OFF)
>>> b = BootState(OnOff.ON, DmaGuardPolicy.AFTER_LOGIN, OnOff.ON, ("dmalab_nvme.sys",))
>>> a.differences(b), setting_cost(a, b, CostModel())
(('dmaguard', 'verifier'), 6.0)
"""

from __future__ import annotations

from harness.config.lab_models import CostModel
from harness.config.scenarios import Scenario
from harness.domain.conditions import SessionState
from harness.lab.boot_state import BootState

__all__ = [
    "scenario_cost",
    "scenario_end_session",
    "session_cost",
    "setting_cost",
]


def setting_cost(a: BootState, b: BootState, costs: CostModel) -> float:
    """Writing the settings that differ (not the reboot that applies them)."""
    total = 0.0
    for field in a.differences(b):
        total += costs.firmware_setting_s if field == "kdp" else costs.os_setting_s
    return total


_NO, _LOCKED, _UNLOCKED = SessionState.NO_USER, SessionState.LOCKED, SessionState.UNLOCKED


def session_cost(a: SessionState, b: SessionState, costs: CostModel) -> float:
    """Going from session state `a` to `b` (a reboot leaves the DUT at `no-user`)."""
    if a is b:
        return 0.0
    if b is _NO:
        return costs.sign_out_s
    if a is _NO:
        return costs.sign_in_s + (costs.lock_s if b is _LOCKED else 0.0)
    return costs.lock_s if b is _LOCKED else costs.unlock_s


def scenario_end_session(s: Scenario) -> SessionState:
    """Where a scenario leaves the session: the `after_unlock` check unlocks a locked DUT."""
    if s.session is _LOCKED and "after_unlock" in s.checks:
        return _UNLOCKED
    return s.session


def scenario_cost(s: Scenario, costs: CostModel) -> float:
    """One scenario once its conditions, package and session are in place."""
    total = costs.plug_s + costs.unplug_s + costs.round_trip_s * costs.operations_per_scenario
    if "dma_probe" in s.checks:
        total += costs.dma_probe_s
    if s.session is _LOCKED and "after_unlock" in s.checks:
        total += costs.unlock_s
    return total
