"""The boot state: the conditions only a reboot changes, one model for the scheduler and the DUT
strategy.

Four settings apply at the next boot (docs/domain.md §3.4, §4.1, §5): the firmware's Kernel DMA
Protection, the DMAGuard `DeviceEnumerationPolicy`, Driver Verifier's DMA verification (flag
0x80) with the driver binaries it targets, and test signing. The scheduler
(`harness.lab.schedule`) groups and orders scenarios by boot state and counts the reboots
between them; the strategy (`harness.lab.strategy`) brings a DUT to the boot state a scenario
(or the baseline) requires. Both use this class, so `plan show`'s reboot estimate counts the same
differences the strategy acts on.

>>> a = BootState(OnOff.ON, DmaGuardPolicy.ABSENT, OnOff.OFF)
>>> b = BootState(OnOff.ON, DmaGuardPolicy.AFTER_LOGIN, OnOff.ON, ("DMALab_NVMe",))
>>> a.differences(b), b.describe()
(('dmaguard', 'verifier'), 'kdp on, dmaguard 1, verifier_dma on (dmalab_nvme.sys), test_signing off')
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from harness.config.lab_models import Baseline
from harness.domain.conditions import DmaGuardPolicy, OnOff
from harness.errors import ConfigError

if TYPE_CHECKING:
    from harness.config.scenarios import Scenario

__all__ = ["BootState", "dmaguard_value", "normalize_driver"]

#: Stand-ins the scheduler uses where the drivers are not known: a package whose binaries could
#: not be read, and a baseline with Verifier DMA on (it names no package). Never normalised.
UNKNOWN_DRIVERS, ANY_DRIVERS = "?", "*"


def normalize_driver(name: str) -> str:
    """`DMALab_NVMe` / `dmalab_nvme.SYS` → `dmalab_nvme.sys` (Verifier names are case-blind)."""
    if name in (UNKNOWN_DRIVERS, ANY_DRIVERS):
        return name
    low = name.strip().lower()
    return low if low.endswith(".sys") else f"{low}.sys"


def dmaguard_value(policy: DmaGuardPolicy) -> int | None:
    """The registry value of a policy; `None` means the value is absent."""
    return None if policy is DmaGuardPolicy.ABSENT else int(policy.value)


@dataclass(frozen=True, order=True)
class BootState:
    """The reboot-requiring conditions a scenario (or the DUT's baseline) needs in effect.

    Ordered (the scheduler's tie-break) and hashable (its groups). Two boot states are equal when
    a DUT in one is in the other: with Verifier DMA off, which drivers it must *not* target (the
    package's, which the strategy checks) does not make another boot state."""

    kdp: OnOff
    dmaguard: DmaGuardPolicy
    verifier_dma: OnOff
    #: Driver binaries (`dmalab_nvme.sys`) Verifier's flag 0x80 must (or must not) target.
    verifier_drivers: tuple[str, ...] = field(default=(), compare=False)
    test_signing: OnOff = OnOff.OFF
    #: What equality and order see of the drivers: those targeted (none when Verifier DMA is off).
    _targets: tuple[str, ...] = field(init=False, repr=False, default=())

    def __post_init__(self) -> None:
        if self.verifier_dma is OnOff.ON and not self.verifier_drivers:
            raise ConfigError(
                "verifier_dma on needs the driver binaries to verify (the package has no .sys)"
            )
        names = tuple(dict.fromkeys(normalize_driver(d) for d in self.verifier_drivers))
        object.__setattr__(self, "verifier_drivers", names)
        targets = tuple(sorted(names)) if self.verifier_dma is OnOff.ON else ()
        object.__setattr__(self, "_targets", targets)

    @classmethod
    def from_scenario(cls, scenario: Scenario, drivers: Sequence[str]) -> BootState:
        """A scenario's conditions; `drivers` are its package's binaries (`drivers_of`)."""
        return cls(
            scenario.kdp,
            scenario.dmaguard,
            scenario.verifier_dma,
            tuple(drivers),
            scenario.test_signing,
        )

    @classmethod
    def from_baseline(cls, baseline: Baseline, drivers: Sequence[str] = ()) -> BootState:
        """The conditions teardown restores (`drivers` needed only if Verifier DMA is on)."""
        return cls(
            baseline.kdp,
            baseline.dmaguard,
            baseline.verifier_dma,
            tuple(drivers),
            baseline.test_signing,
        )

    @classmethod
    def planned(cls, scenario: Scenario, drivers: Mapping[str, Sequence[str]]) -> BootState:
        """For planning: `drivers` maps each package to its binaries; a package whose binaries
        are not known still gets a boot state of its own when Verifier DMA is on."""
        names: Sequence[str] = ()
        if scenario.verifier_dma is OnOff.ON:
            names = drivers.get(scenario.driver_package, ()) or (UNKNOWN_DRIVERS,)
        return cls.from_scenario(scenario, names)

    @classmethod
    def planned_baseline(cls, baseline: Baseline) -> BootState:
        """For planning: a baseline with Verifier DMA on differs from every scenario's state."""
        names = (ANY_DRIVERS,) if baseline.verifier_dma is OnOff.ON else ()
        return cls.from_baseline(baseline, names)

    @property
    def dmaguard_registry(self) -> int | None:
        return dmaguard_value(self.dmaguard)

    @property
    def verifier_targets(self) -> tuple[str, ...]:
        """The drivers Verifier DMA targets, sorted (empty: off)."""
        return self._targets

    def differences(self, other: BootState) -> tuple[str, ...]:
        """The settings that differ: `kdp`, `dmaguard`, `verifier`, `test_signing`."""
        pairs = {
            "kdp": (self.kdp, other.kdp),
            "dmaguard": (self.dmaguard, other.dmaguard),
            "verifier": (self.verifier_targets, other.verifier_targets),
            "test_signing": (self.test_signing, other.test_signing),
        }
        return tuple(name for name, (a, b) in pairs.items() if a != b)

    def describe(self) -> str:
        drivers = f" ({', '.join(self.verifier_drivers)})" if self.verifier_dma else ""
        return (
            f"kdp {self.kdp.value}, dmaguard {self.dmaguard.value}, "
            f"verifier_dma {self.verifier_dma.value}{drivers}, "
            f"test_signing {self.test_signing.value}"
        )
