"""The DUT's firmware (BIOS/UEFI) settings that decide Kernel DMA Protection (docs/domain.md §3.4).

Kernel DMA Protection cannot be changed from Windows; the only lever is firmware, scriptable
through the vendor's WMI interface: Lenovo `Lenovo_SetBiosSetting("KernelDMAProtection,Enable")`
+ `Lenovo_SaveBiosSettings()` (enabling it forces `VTdFeature` and `VirtualizationTechnology`
on), Dell `BIOSAttributeInterface.SetAttribute(.., "KernelDmaProtection", "Enabled")`. A saved
change applies at the next boot. A machine with `firmware: none` has no such interface.

>>> fw = Firmware("lenovo-wmi", enabled=True)
>>> fw.set("KernelDMAProtection", "Disable"), fw.apply_at_boot()
('Success', False)
"""

from __future__ import annotations

LENOVO = {
    "KernelDMAProtection": ("Disable", "Enable"),
    "VTdFeature": ("Disable", "Enable"),
    "VirtualizationTechnology": ("Disable", "Enable"),
}
DELL = {
    "KernelDmaProtection": ("Disabled", "Enabled"),
    "VtForDirectIo": ("Disabled", "Enabled"),
    "Virtualization": ("Disabled", "Enabled"),
}


class Firmware:
    def __init__(
        self, vendor: str, *, enabled: bool, dell_kdp_name: str = "KernelDmaProtection"
    ) -> None:
        self.vendor = vendor
        table = LENOVO if vendor == "lenovo-wmi" else DELL
        if table is DELL and dell_kdp_name != "KernelDmaProtection":
            # Dell does not document the attribute's name per model (quirk `dell_dma_attribute`).
            table = {dell_kdp_name if n == "KernelDmaProtection" else n: v for n, v in DELL.items()}
        self.lenovo = table is LENOVO
        self.table = table
        self.settings = {name: values[1 if enabled else 0] for name, values in table.items()}
        self.applied = dict(self.settings)

    @property
    def scriptable(self) -> bool:
        return self.vendor in ("lenovo-wmi", "dell-wmi")

    def set(self, name: str, value: str) -> str:
        """One setting, as the vendor WMI method answers ('Success', 'Invalid Parameter')."""
        match = next((n for n in self.table if n.lower() == name.lower()), None)
        if match is None or value not in self.table[match]:
            return "Invalid Parameter"
        self.settings[match] = value
        if self.lenovo and match == "KernelDMAProtection" and value == "Enable":
            self.settings["VTdFeature"] = self.settings["VirtualizationTechnology"] = "Enable"
        return "Success"

    @property
    def kdp_name(self) -> str:
        """The name of the Kernel DMA Protection setting in this BIOS."""
        return next(n for n in self.table if "dma" in n.lower())

    def kdp_setting(self) -> bool:
        """KDP as saved (what the next boot will use)."""
        return all(self.settings[n] == self.table[n][1] for n in self.table)

    def apply_at_boot(self) -> bool:
        self.applied = dict(self.settings)
        return self.kdp_setting()

    def applied_vt(self) -> bool:
        """Virtualization (VT-x/AMD-V) as running since the last boot."""
        name = "VirtualizationTechnology" if self.lenovo else "Virtualization"
        return self.applied[name] == self.table[name][1]

    def truth(self) -> dict[str, object]:
        return {"vendor": self.vendor, "saved": dict(self.settings), "applied": self.applied}
