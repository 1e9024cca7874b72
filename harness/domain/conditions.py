"""The vocabulary of the domain: the conditions one scenario runs under.

Every value here is an enum whose `.value` is the spelling used on the command line,
in plan files and in JSON, so one vocabulary serves the CLI, the config and the reports.

>>> c = Conditions(build=22631, inf=(InfValue.V2,), port=PortKind.EXTERNAL)
>>> c.session.value
'unlocked'
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class InfValue(str, Enum):
    """Per-driver `HKR,Parameters,DmaRemappingCompatible` value in the INF [docs/domain.md §1.1]."""

    ABSENT = "absent"
    V0 = "0"
    V1 = "1"
    V2 = "2"
    V3 = "3"


class DeviceKey(str, Enum):
    """Per-device `DMA Management` RemappingSupported / RemappingFlags value [§1.2]."""

    ABSENT = "absent"
    V0 = "0"
    V1 = "1"


class PortKind(str, Enum):
    """Where the device is attached [§3.2]."""

    EXTERNAL = "external"  # _DSD ExternalFacingPort: Thunderbolt / USB4
    EXPOSED = "exposed"  # _DSD DmaProperty: internal but user-accessible (M.2)
    INTERNAL = "internal"  # neither


class DmaGuardPolicy(str, Enum):
    """`DeviceEnumerationPolicy` under HKLM\\SOFTWARE\\Policies\\Microsoft\\Windows\\Kernel DMA Protection [§4.1].

    CSP / Group Policy numbering (not Intune Graph's, see §0.7).
    """

    ABSENT = "absent"
    BLOCK_ALL = "0"
    AFTER_LOGIN = "1"
    ALLOW_ALL = "2"


class SessionState(str, Enum):
    """Console session state at the moment the device is plugged [§4.3, §7]."""

    NO_USER = "no-user"  # nobody signed in since boot, or signed out
    LOCKED = "locked"
    UNLOCKED = "unlocked"


class OnOff(str, Enum):
    ON = "on"
    OFF = "off"

    @classmethod
    def of(cls, flag: bool) -> OnOff:
        return cls.ON if flag else cls.OFF

    def __bool__(self) -> bool:
        return self is OnOff.ON


class Evidence(str, Enum):
    """How sure the expectation is (DESIGN.md, Contracts: the oracle).

    documented: asserted. inferred: asserted; a failure is labelled "expectation may be wrong".
    unverified: observed and recorded, never failed.
    """

    DOCUMENTED = "documented"
    INFERRED = "inferred"
    UNVERIFIED = "unverified"

    @property
    def rank(self) -> int:
        return _EVIDENCE_RANK[self]

    @staticmethod
    def weakest(*levels: Evidence) -> Evidence:
        return max(levels, key=lambda e: e.rank)


_EVIDENCE_RANK = {Evidence.DOCUMENTED: 0, Evidence.INFERRED: 1, Evidence.UNVERIFIED: 2}


@dataclass(frozen=True)
class Conditions:
    """Everything the oracle needs to know about one plug event.

    `inf` holds one value per driver of the device's stack (function driver and filters).
    `verifier_dma` means Driver Verifier DMA verification (flag 0x80) targets the stack's drivers
    and was in effect when the device was added.
    """

    build: int
    inf: tuple[InfValue, ...] = (InfValue.ABSENT,)
    device_remapping_supported: DeviceKey = DeviceKey.ABSENT
    device_remapping_flags: DeviceKey = DeviceKey.ABSENT
    graphics: bool = False
    port: PortKind = PortKind.EXTERNAL
    verifier_dma: bool = False
    kdp: bool = True
    dmaguard: DmaGuardPolicy = DmaGuardPolicy.ABSENT
    session: SessionState = SessionState.UNLOCKED

    def as_dict(self) -> dict[str, object]:
        return {
            "build": self.build,
            "inf": [v.value for v in self.inf],
            "device_remapping_supported": self.device_remapping_supported.value,
            "device_remapping_flags": self.device_remapping_flags.value,
            "graphics": self.graphics,
            "port": self.port.value,
            "verifier_dma": OnOff.of(self.verifier_dma).value,
            "kdp": OnOff.of(self.kdp).value,
            "dmaguard": self.dmaguard.value,
            "session": self.session.value,
        }
