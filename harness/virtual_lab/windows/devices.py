"""PnP device nodes of a simulated DUT: identity in Windows' formats and their runtime state.

A lab device pattern such as `PCI\\VEN_144D&DEV_A808*` becomes the hardware IDs a real PCI
function reports (most specific first) and an instance ID `PCI\\VEN_..&DEV_..&SUBSYS_..&REV_..\\
4&xxxxxxxx&0&00E4` whose instance part is derived from the DUT and the port, so it is stable
across plugs and reboots, as it is for a device in the same slot.

>>> hardware_ids("PCI\\\\VEN_144D&DEV_A808*")[0]
'PCI\\\\VEN_144D&DEV_A808&SUBSYS_A801144D&REV_00'
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass, field
from datetime import datetime

_PCI = re.compile(r"^PCI\\VEN_([0-9A-F]{4})&DEV_([0-9A-F]{4})", re.IGNORECASE)


def hardware_ids(pattern: str) -> tuple[str, ...]:
    base = pattern.rstrip("*?")
    m = _PCI.match(base)
    if m is None:
        return (base,)
    ven, dev = m.group(1).upper(), m.group(2).upper()
    stem = f"PCI\\VEN_{ven}&DEV_{dev}"
    subsys = f"SUBSYS_{dev[:2]}01{ven}"
    return (
        f"{stem}&{subsys}&REV_00",
        f"{stem}&{subsys}",
        f"{stem}&CC_010802",
        f"{stem}&CC_0108",
        f"{stem}&REV_00",
        stem,
    )


def instance_id(pattern: str, dut: str, port: str) -> str:
    tag = zlib.crc32(f"{dut}/{port}".encode()) & 0xFFFFFFFF
    slot = 0xE0 + (zlib.crc32(port.encode()) % 8) * 4
    return f"{hardware_ids(pattern)[0]}\\4&{tag:x}&0&00{slot:02X}"


@dataclass
class Device:
    """One device wired to one DUT port; `present` while its switch channel is closed."""

    name: str
    port: str
    port_kind: str
    instance_id: str
    hardware_ids: tuple[str, ...]
    description: str
    device_class: str
    volume_label: str | None
    drive_letter: str
    present: bool = False
    package: str | None = None  # published oemNN.inf
    stack: tuple[str, ...] = ()
    problem_code: int = 0
    started: bool = False
    dma_policy: int = 0  # 0: property absent
    policy_trace: tuple[str, ...] = ()
    decision: str | None = None
    last_arrival: datetime | None = None
    last_removal: datetime | None = None
    history: list[str] = field(default_factory=list)

    @property
    def status(self) -> str:
        if not self.present:
            return "Unknown"
        return "OK" if self.started and self.problem_code == 0 else "Error"

    def truth(self) -> dict[str, object]:
        return {
            "device": self.name,
            "port": self.port,
            "port_kind": self.port_kind,
            "instance_id": self.instance_id,
            "present": self.present,
            "started": self.started,
            "status": self.status,
            "problem_code": self.problem_code,
            "dma_policy": self.dma_policy if self.dma_policy else None,
            "policy_trace": list(self.policy_trace),
            "decision": self.decision,
            "package": self.package,
            "stack": list(self.stack),
            "history": self.history[-20:],
        }
