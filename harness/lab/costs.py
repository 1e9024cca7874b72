"""Lab-time estimates: what a reboot, a package install, a session change and one scenario cost.

Pure functions of the lab's `CostModel` (`cost_model:` in the lab file; real-world defaults in
`harness.config.lab_models.CostModel`). The scheduler (`harness.lab.schedule`) uses them to
order and balance scenarios, and `harness plan show --json` reports the estimates.

A boot state (`BootState`) is the part of a scenario's conditions that only a reboot changes:
Kernel DMA Protection (firmware), the DMAGuard policy, Driver Verifier's DMA verification with
the drivers it targets, and test signing (docs/domain.md §3.4, §4.1, §5). Everything else
(driver package, session state) changes without a reboot.

>>> from harness.config.lab_models import CostModel
>>> a = BootState("on", "absent", (), "off")
>>> b = BootState("on", "1", ("dmalab_nvme.sys",), "off")
>>> a.differences(b), setting_cost(a, b, CostModel())
(('dmaguard', 'verifier'), 6.0)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from harness.config.lab_models import Baseline, CostModel
from harness.config.scenarios import Scenario
from harness.domain.conditions import OnOff, SessionState

__all__ = [
    "BootState",
    "scenario_cost",
    "scenario_end_session",
    "session_cost",
    "setting_cost",
]


def _driver(name: str) -> str:
    low = name.strip().lower()
    return low if low.endswith(".sys") else f"{low}.sys"


@dataclass(frozen=True, order=True)
class BootState:
    """The reboot-requiring conditions; `verifier` lists the drivers DMA verification targets
    (empty: off)."""

    kdp: str
    dmaguard: str
    verifier: tuple[str, ...]
    test_signing: str

    @classmethod
    def of(cls, scenario: Scenario, drivers: Mapping[str, tuple[str, ...]]) -> BootState:
        """`drivers`: each driver package's binaries (`harness.lab.packages.drivers_of`)."""
        targets: tuple[str, ...] = ()
        if scenario.verifier_dma is OnOff.ON:
            names = drivers.get(scenario.driver_package, ())
            targets = tuple(sorted({_driver(d) for d in names})) or ("?",)
        return cls(
            scenario.kdp.value, scenario.dmaguard.value, targets, scenario.test_signing.value
        )

    @classmethod
    def baseline(cls, baseline: Baseline) -> BootState:
        # A baseline with Verifier DMA on names no drivers; it differs from every scenario's.
        targets = ("*",) if baseline.verifier_dma is OnOff.ON else ()
        return cls(
            baseline.kdp.value, baseline.dmaguard.value, targets, baseline.test_signing.value
        )

    def differences(self, other: BootState) -> tuple[str, ...]:
        return tuple(
            f
            for f in ("kdp", "dmaguard", "verifier", "test_signing")
            if getattr(self, f) != getattr(other, f)
        )

    def describe(self) -> str:
        dv = f"on ({', '.join(self.verifier)})" if self.verifier else "off"
        return (
            f"kdp {self.kdp}, dmaguard {self.dmaguard}, verifier_dma {dv}, "
            f"test_signing {self.test_signing}"
        )


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
