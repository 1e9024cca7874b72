"""What a DUT's reboot-requiring conditions are (`DutState`), read from the host.

Four settings decide a scenario's conditions, and every one of them applies only at the next
boot (docs/domain.md §3.4, §4.1, §5; the virtual lab models the same): the firmware's Kernel
DMA Protection, the DMAGuard `DeviceEnumerationPolicy`, Driver Verifier's DMA verification
(flag 0x80) on the package's drivers, and test signing. Each is therefore observed twice: what
is in effect now (`active`) and what the next boot will use (`pending`).

How each `active` value is read from the host:

- KDP: `host_facts().kdp.enabled` (the running kernel) is the active value; the firmware setting
  (`kdp_firmware_get`) is pending. Without a firmware lever the next boot runs what runs now.
- Verifier: `verifier_state()` reports both (`verifier /query` and the registry); `/query` is
  printed in the display language, so when the op cannot read it (`active_known` false) the
  active value is carried or unknown like any other unreadable setting, never "off".
- DMAGuard: the registry value (`host_facts().dmaguard_policy`, the same value `dmaguard_get`
  reads) is what the next boot loads. It is also the value in effect when the policy key (or,
  with no key, its parent) was last written before this boot
  (`host_facts().dmaguard_policy_written.before_boot`): nothing changed it since the boot loaded it.
- Test signing: `host_facts().test_signing` comes from `bcdedit /enum {current}`, the BCD store,
  i.e. the next boot's value; `host_facts().test_signing_in_effect` is the running kernel's
  code integrity option `CODEINTEGRITY_OPTION_TESTSIGN`.

Those are `Knowledge.OBSERVED`. When the host cannot tell (DMAGuard written since the boot, a
host whose native queries fail, a kernel debugger hiding the test-signing bit) the active value is
*carried*: a pending value seen before a boot and still pending after it is taken to be in effect
since that boot (the DUT is leased: nobody else writes these settings). Without such a previous
observation (first contact in this process) it is `UNKNOWN`, and the strategy plans a reboot to
make it known rather than run a scenario under conditions it cannot vouch for. So a DUT already in
the required state costs no reboot at first contact; one whose DMAGuard key was written since its
boot, or whose BCD store differs from the test signing in effect, still does.

What must be is a `harness.lab.boot_state.BootState` (the scheduler's model too).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Generic, TypeVar

from harness.config.lab_models import Dut
from harness.domain.conditions import OnOff
from harness.remote.deadline import Deadline
from harness.windows.results import HostFacts, VerifierSettings, VerifierState

if TYPE_CHECKING:
    from harness.windows.host import WindowsHost

__all__ = [
    "DMA_VERIFICATION",
    "DutState",
    "Knowledge",
    "Setting",
    "combine",
    "observe",
]

#: Driver Verifier flag bit 7: DMA verification (docs/domain.md §5).
DMA_VERIFICATION = 0x80

T = TypeVar("T")


class Knowledge(str, enum.Enum):
    """How a setting's `active` value is known."""

    OBSERVED = "observed"  # read from the running system
    CARRIED = "carried"  # the pending value seen before the boot that applied it
    DECLARED = "declared"  # unreadable and unchangeable: the lab file's declaration
    UNKNOWN = "unknown"  # not known: only a reboot makes it known


@dataclass(frozen=True)
class Setting(Generic[T]):
    """One setting: in effect now (`active`, meaningful unless `UNKNOWN`) and at the next boot."""

    active: T
    pending: T
    known: Knowledge = Knowledge.OBSERVED

    @property
    def active_known(self) -> bool:
        return self.known is not Knowledge.UNKNOWN

    def describe(self) -> str:
        active = "unknown" if not self.active_known else f"{self.active!r}"
        if self.active_known and self.pending == self.active:
            return active
        return f"{active} now, {self.pending!r} at the next boot"


@dataclass(frozen=True)
class DutState:
    """The four settings of one DUT as of the boot `last_boot_utc`."""

    dut: str
    last_boot_utc: datetime
    kdp: Setting[bool | None]  # None: unknown (no firmware lever to read, host cannot tell)
    kdp_lever: bool  # the firmware setting can be changed from Windows
    dmaguard: Setting[int | None]  # None: the value is absent
    verifier: Setting[VerifierSettings]
    test_signing: Setting[bool | None]
    secure_boot: bool | None

    def describe(self) -> str:
        return (
            f"{self.dut}: kdp {self.kdp.describe()}, dmaguard {self.dmaguard.describe()}, "
            f"verifier {self.verifier.describe()}, test_signing {self.test_signing.describe()}"
        )


def _carry(
    read: T, previous: Setting[T] | None, previous_boot: datetime | None, boot: datetime
) -> tuple[T, Knowledge]:
    """The active value of a setting whose active value cannot be read (see module doc)."""
    if previous is not None and previous_boot is not None:
        if previous_boot == boot:
            return previous.active, previous.known
        if previous_boot < boot and previous.pending == read:
            return read, Knowledge.CARRIED
    return read, Knowledge.UNKNOWN


def combine(
    dut_name: str,
    dut: Dut,
    facts: HostFacts,
    verifier: Setting[VerifierSettings],
    kdp_firmware: bool | None,
    previous: DutState | None = None,
) -> DutState:
    """The state from one observation, `previous` supplying what the host cannot report.

    `kdp_firmware` is the firmware's saved KDP setting (ignored without a firmware lever).
    """
    boot = facts.last_boot_utc
    prev_boot = previous.last_boot_utc if previous is not None else None
    lever = dut.kdp.firmware_control != "none"

    if facts.kdp.enabled is not None:
        kdp_active: bool | None = facts.kdp.enabled
        kdp_known = Knowledge.OBSERVED
    elif not lever:
        kdp_active, kdp_known = dut.kdp.declared is OnOff.ON, Knowledge.DECLARED
    else:
        kdp_active, kdp_known = _carry(
            kdp_firmware, previous.kdp if previous else None, prev_boot, boot
        )
    kdp = Setting(kdp_active, kdp_firmware if lever else kdp_active, kdp_known)

    guard_read = facts.dmaguard_policy
    if facts.dmaguard_policy_in_effect:  # the key is unchanged since this boot loaded it
        dmaguard = Setting(guard_read, guard_read, Knowledge.OBSERVED)
    else:
        guard_active, guard_known = _carry(
            guard_read, previous.dmaguard if previous else None, prev_boot, boot
        )
        dmaguard = Setting(guard_active, guard_read, guard_known)

    signing_read = facts.test_signing  # the BCD store: the next boot's value
    if facts.test_signing_in_effect is not None:
        signing = Setting(facts.test_signing_in_effect, signing_read, Knowledge.OBSERVED)
    else:
        s_active, s_known = _carry(
            signing_read, previous.test_signing if previous else None, prev_boot, boot
        )
        signing = Setting(s_active, signing_read, s_known)

    return DutState(dut_name, boot, kdp, lever, dmaguard, verifier, signing, facts.secure_boot)


def verifier_setting(
    state: VerifierState,
    previous: DutState | None = None,
    boot: datetime | None = None,
) -> Setting[VerifierSettings]:
    """Verifier's setting; when `verifier /query` could not be read (`active_known` false: a
    display language whose "nothing verified" sentence the op does not know) the active value
    is carried from `previous` like any unreadable setting, else UNKNOWN, never "off"."""
    if state.active_known:
        return Setting(state.active, state.pending, Knowledge.OBSERVED)
    prev_boot = previous.last_boot_utc if previous is not None else None
    if boot is None:
        return Setting(state.pending, state.pending, Knowledge.UNKNOWN)
    active, known = _carry(state.pending, previous.verifier if previous else None, prev_boot, boot)
    return Setting(active, state.pending, known)


def observe(
    host: WindowsHost,
    dut: Dut,
    deadline: Deadline,
    *,
    previous: DutState | None = None,
    facts: HostFacts | None = None,
) -> DutState:
    """Observe all four settings (2–3 operations; `facts` saves one if already at hand)."""
    if facts is None:
        facts = host.host_facts(deadline=deadline)
    verifier = verifier_setting(
        host.verifier_state(deadline=deadline), previous, facts.last_boot_utc
    )
    firmware: bool | None = None
    if dut.kdp.firmware_control != "none":
        firmware = host.kdp_firmware_get(dut.kdp.firmware_control, deadline=deadline).enabled
    return combine(host.name, dut, facts, verifier, firmware, previous)
