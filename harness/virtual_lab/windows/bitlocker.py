"""BitLocker on a simulated DUT's OS volume (quirk `bitlocker: true`: TPM protector, protection on).

Real Windows seals the volume key to the TPM's measurements of the boot path, which include the
BCD settings of the validation profile (`testsigning`, `nointegritychecks`, ...) and the firmware
configuration ("BCD settings and BitLocker",
https://learn.microsoft.com/windows/security/operating-system-security/data-protection/bitlocker/bcd-settings-and-bitlocker).
A change to any of them found at the next boot, with protection not suspended, stops the machine
at the BitLocker recovery screen: it does not boot and nothing on the network answers until
somebody types the recovery key (here: the control endpoint, `POST /duts/NAME/power
{"action": "recovery-key"}`). `Suspend-BitLocker -RebootCount 1`
(https://learn.microsoft.com/powershell/module/bitlocker/suspend-bitlocker) leaves the key in the
clear for one restart; that restart reseals to the new measurements and protection resumes.

>>> b = BitLocker(enabled=True, measured=("testsigning=off",))
>>> b.boot(("testsigning=on",))
False
>>> b.in_recovery, b.enter_recovery_key(("testsigning=on",)), b.in_recovery
(True, True, False)
>>> b.suspend(1); b.boot(("testsigning=off",)), b.suspended_reboots
(True, 0)
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any


class BitLocker:
    """Protection state of the OS volume and the measurements its TPM protector is sealed to."""

    def __init__(self, *, enabled: bool, measured: Hashable) -> None:
        self.enabled = enabled
        self.sealed = measured
        self.suspended_reboots = 0
        self.in_recovery = False
        self.recoveries = 0

    @property
    def protection_on(self) -> bool:
        """`Get-BitLockerVolume`'s ProtectionStatus: On unless off or suspended."""
        return self.enabled and self.suspended_reboots == 0

    def suspend(self, reboot_count: int) -> None:
        """`Suspend-BitLocker -RebootCount N` (N >= 1)."""
        if self.enabled:
            self.suspended_reboots = max(1, reboot_count)

    def boot(self, measured: Hashable) -> bool:
        """One boot with `measured` as the boot path's measurements: True if Windows starts,
        False if the machine stops at the recovery screen."""
        if not self.enabled:
            return True
        if self.suspended_reboots > 0:
            self.suspended_reboots -= 1
            self.sealed = measured  # the restart reseals to what it measured
            return True
        if measured != self.sealed:
            self.in_recovery = True
            self.recoveries += 1
            return False
        return True

    def enter_recovery_key(self, measured: Hashable) -> bool:
        """The recovery key typed at the recovery screen: the boot goes on (and the protector is
        resealed to the new measurements). False if the machine was not at that screen."""
        if not self.in_recovery:
            return False
        self.in_recovery = False
        self.sealed = measured
        return True

    def truth(self) -> dict[str, Any]:
        return {
            "enabled": self.enabled,
            "protection_on": self.protection_on,
            "suspended_reboots": self.suspended_reboots,
            "in_recovery": self.in_recovery,
            "recoveries": self.recoveries,
        }


__all__ = ["BitLocker"]
