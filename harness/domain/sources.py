"""Where the oracle's facts come from: `docs/domain.md` sections and the Microsoft pages behind
them, so every expectation can say, in its last reason, which pages to read.

>>> sources_line(["a (§4.3)", "b (§2, §10.2 row 14)"]).split(";")[0]
'sources: docs/domain.md §2, §4.3, §10.2'
"""

from __future__ import annotations

import re
from collections.abc import Iterable

#: Microsoft pages by the tag docs/domain.md uses: (title, URL).
PAGES: dict[str, tuple[str, str]] = {
    "DRV": (
        "Enabling DMA remapping for device drivers",
        "https://learn.microsoft.com/windows-hardware/drivers/pci/enabling-dma-remapping-for-device-drivers",
    ),
    "PROP": (
        "DEVPKEY_Device_DmaRemappingPolicy",
        "https://learn.microsoft.com/windows-hardware/drivers/install/devpkey-device-dmaremappingpolicy",
    ),
    "KDP": (
        "Kernel DMA Protection",
        "https://learn.microsoft.com/windows/security/hardware-security/kernel-dma-protection-for-thunderbolt",
    ),
    "CSP": (
        "Policy CSP - DmaGuard",
        "https://learn.microsoft.com/windows/client-management/mdm/policy-csp-dmaguard",
    ),
    "C55": (
        "CM_PROB_CONSOLE_LOCKED",
        "https://learn.microsoft.com/windows-hardware/drivers/install/cm-prob-console-locked",
    ),
    "DSD": (
        "_DSD for PCIe root ports",
        "https://learn.microsoft.com/windows-hardware/drivers/pci/dsd-for-pcie-root-ports",
    ),
    "DV": (
        "DMA Verification",
        "https://learn.microsoft.com/windows-hardware/drivers/devtest/dma-verification",
    ),
}

#: The pages each top-level section of docs/domain.md rests on.
_BY_SECTION: dict[str, tuple[str, ...]] = {
    "0": ("DRV",),
    "1": ("DRV",),
    "2": ("PROP",),
    "3": ("KDP", "DSD"),
    "4": ("CSP", "KDP", "C55"),
    "5": ("DV", "DRV"),
    "10": ("DRV", "PROP", "KDP", "CSP"),
}

_SECTION = re.compile(r"§(\d+(?:\.\d+)?)")


def _key(section: str) -> tuple[int, ...]:
    return tuple(int(x) for x in section.split("."))


def sources_line(reasons: Iterable[str]) -> str:
    """One line naming the docs/domain.md sections the reasons cite and their Microsoft pages."""
    sections = sorted({m for r in reasons for m in _SECTION.findall(r)}, key=_key)
    tags: list[str] = []
    for s in sections:
        for tag in _BY_SECTION.get(s.split(".")[0], ()):
            if tag not in tags:
                tags.append(tag)
    pages = "; ".join(f"{PAGES[t][0]} <{PAGES[t][1]}>" for t in tags)
    cited = ", ".join(f"§{s}" for s in sections) or "(none)"
    return f"sources: docs/domain.md {cited}" + (f"; Microsoft: {pages}" if pages else "")
