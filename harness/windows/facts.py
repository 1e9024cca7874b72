"""The `host_facts` result: what a DUT is and what is in effect on it (docs/windows-operations.md).

Besides identity and the Kernel DMA Protection state, two facts say whether values that the host
can only read as "what the next boot loads" are also what is in effect now:

- `test_signing` is the BCD store (`bcdedit /enum {current}`); `test_signing_in_effect` is the
  running kernel's code integrity option `CODEINTEGRITY_OPTION_TESTSIGN`;
- `dmaguard_policy` is the registry value; `dmaguard_policy_written` says whether its key (or,
  with no key, its parent) was last written before this boot, i.e. whether this boot loaded it.

>>> from datetime import datetime, timezone
>>> w = KeyWritten("HKLM\\SOFTWARE\\Policies\\Microsoft\\Windows",
...                datetime(2026, 1, 1, tzinfo=timezone.utc), before_boot=True)
>>> w.before_boot
True
"""

from __future__ import annotations

import enum

from pydantic.dataclasses import dataclass

from harness.windows.shape import STRICT, Result, UtcTime

__all__ = ["HostFacts", "KdpSource", "KdpState", "KeyWritten"]


class KdpSource(str, enum.Enum):
    NTQUERY = "ntquery"
    MSINFO32 = "msinfo32"
    UNKNOWN = "unknown"


@dataclass(frozen=True, config=STRICT)
class KdpState:
    enabled: bool | None
    source: KdpSource


@dataclass(frozen=True, config=STRICT)
class KeyWritten:
    """The last-write time of a registry key (`RegQueryInfoKey`) next to the boot time.

    `key` is the DMAGuard policy key, or its nearest existing parent when it is missing.
    `before_boot`: the key was last written before the running boot started, so the values
    under it (or their absence) are what that boot loaded.
    """

    key: str
    last_write_utc: UtcTime
    before_boot: bool


@dataclass(frozen=True, config=STRICT)
class HostFacts(Result):
    computer_name: str
    build: int
    ubr: int | None
    edition: str
    product_name: str
    last_boot_utc: UtcTime
    kdp: KdpState
    virtualization_firmware: bool | None
    iommu_dma_protection_available: bool | None
    secure_boot: bool | None
    test_signing: bool | None
    bitlocker_disable_external_dma_under_lock: int | None
    dmaguard_policy: int | None
    #: The running kernel's `CodeIntegrityOptions` (NtQuerySystemInformation class 103).
    code_integrity_options: int | None = None
    #: Test signing in effect since this boot (`test_signing` is the BCD store: the next boot).
    test_signing_in_effect: bool | None = None
    #: When the DMAGuard policy key (or its parent) was last written, against the boot time.
    dmaguard_policy_written: KeyWritten | None = None

    @property
    def dmaguard_policy_in_effect(self) -> bool:
        """`dmaguard_policy` is the policy this boot loaded (its key is unchanged since)."""
        written = self.dmaguard_policy_written
        return written is not None and written.before_boot
