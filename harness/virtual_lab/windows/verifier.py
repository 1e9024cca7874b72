"""`verifier.exe` on a simulated DUT (docs/domain.md §5).

Persistent settings (`/flags F /driver a.sys`, `/standard`, `/reset`) are written to
`HKLM\\SYSTEM\\CurrentControlSet\\Control\\Session Manager\\Memory Management`
(`VerifyDriverLevel`, `VerifyDrivers`) and take effect at the next boot: exit code 2
(`EXIT_CODE_REBOOT_NEEDED`). `/volatile /flags F /adddriver a.sys` changes what runs now and is
lost at reboot: exit 0. `/querysettings` shows the next boot's settings, `/query` the active ones.
Quirk `volatile_verifier_promotes` (default true) decides whether volatile targets count when a
device is added.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from harness.virtual_lab.windows import kernel_rules as rules
from harness.virtual_lab.windows.registry import MEMORY_MANAGEMENT

if TYPE_CHECKING:
    from harness.virtual_lab.windows.machine import WindowsMachine

EXIT_SUCCESS, EXIT_ERROR, EXIT_REBOOT_NEEDED = 0, 1, 2
STANDARD_FLAGS = 0x000209BB
REBOOT_TEXT = "The system reboot is required for the changes to take effect.\r\n"
FLAG_NAMES = [
    (0x1, "Special pool"),
    (0x2, "Force IRQL checking"),
    (0x8, "Pool tracking"),
    (0x10, "I/O verification"),
    (0x20, "Deadlock detection"),
    (0x80, "DMA checking"),
    (0x100, "Security checks"),
    (0x800, "Miscellaneous checks"),
    (0x20000, "DDI compliance checking"),
]


def _parse_flags(text: str) -> int | None:
    try:
        return int(text, 16) if text.lower().startswith("0x") else int(text)
    except ValueError:
        return None


def _drivers(text: str) -> list[str]:
    return [d for d in text.replace(",", " ").split() if d]


def run(machine: WindowsMachine, args: list[str]) -> tuple[int, str]:
    low = [a.lower() for a in args]
    if not low:
        return EXIT_ERROR, "Usage: verifier /flags FLAGS /driver NAME [NAME ...] | /reset | ...\r\n"
    if low[0] == "/querysettings":
        return EXIT_SUCCESS, querysettings(machine)
    if low[0] == "/query":
        return EXIT_SUCCESS, query(machine)
    if low[0] == "/reset":
        machine.registry.delete(MEMORY_MANAGEMENT, "VerifyDriverLevel")
        machine.registry.delete(MEMORY_MANAGEMENT, "VerifyDrivers")
        return EXIT_REBOOT_NEEDED, REBOOT_TEXT
    volatile = low[0] == "/volatile"
    rest, rest_low = (args[1:], low[1:]) if volatile else (args, low)
    flags: int | None = None
    drivers: list[str] = []
    i = 0
    while i < len(rest_low):
        word = rest_low[i]
        if word == "/flags" and i + 1 < len(rest):
            flags = _parse_flags(rest[i + 1])
            if flags is None:
                return EXIT_ERROR, f"Invalid flags value: {rest[i + 1]}\r\n"
            i += 2
        elif word == "/standard":
            flags = STANDARD_FLAGS
            i += 1
        elif word in ("/driver", "/adddriver"):
            drivers += rest[i + 1 :]
            break
        else:
            return EXIT_ERROR, f"Invalid argument: {rest[i]}\r\n"
    if flags is None:
        return EXIT_ERROR, "Missing /flags or /standard.\r\n"
    if volatile:
        level, active = machine.verifier_active
        added = {d.lower().removesuffix(".sys") for d in drivers}
        machine.verifier_active = (level | flags, active | frozenset(added))
        if rules.quirk(machine.quirks, "volatile_verifier_promotes") is False:
            machine.volatile_only = machine.volatile_only | frozenset(added)
        return EXIT_SUCCESS, "New verifier settings:\r\n\r\n" + _flag_lines(flags)
    if not drivers:
        return EXIT_ERROR, "Missing /driver NAME.\r\n"
    machine.registry.set(MEMORY_MANAGEMENT, "VerifyDriverLevel", flags)
    machine.registry.set(MEMORY_MANAGEMENT, "VerifyDrivers", " ".join(drivers))
    return EXIT_REBOOT_NEEDED, REBOOT_TEXT


def _flag_lines(flags: int) -> str:
    return "".join(
        f"{name}: {'Enabled' if flags & bit else 'Disabled'}\r\n" for bit, name in FLAG_NAMES
    )


def querysettings(machine: WindowsMachine) -> str:
    level = machine.registry.get(MEMORY_MANAGEMENT, "VerifyDriverLevel") or 0
    drivers = _drivers(str(machine.registry.get(MEMORY_MANAGEMENT, "VerifyDrivers") or ""))
    text = f"Verifier Flags: 0x{level:08x}\r\n\r\n  Standard Flags:\r\n\r\n"
    text += "".join(f"    {line}\r\n" for line in _flag_lines(level).splitlines())
    text += "\r\nVerified Drivers:\r\n\r\n"
    text += "".join(f"{d}\r\n" for d in drivers) if drivers else "None\r\n"
    return text


def query(machine: WindowsMachine) -> str:
    level, drivers = machine.verifier_active
    if not drivers:
        return "No drivers are currently verified.\r\n"
    text = f"Level: {level:08X}\r\nRaiseIrqls: 0\r\nAcquireSpinLocks: 0\r\n\r\nVerified drivers:\r\n\r\n"
    text += "".join(f"Name: {d}.sys, loads: 1, unloads: 0\r\n" for d in sorted(drivers))
    return text


def active_settings(machine: WindowsMachine) -> tuple[int | None, list[str]]:
    level, drivers = machine.verifier_active
    return (level or None), [f"{d}.sys" for d in sorted(drivers)]


def pending_settings(machine: WindowsMachine) -> tuple[int | None, list[str]]:
    level = machine.registry.get(MEMORY_MANAGEMENT, "VerifyDriverLevel")
    drivers = _drivers(str(machine.registry.get(MEMORY_MANAGEMENT, "VerifyDrivers") or ""))
    return level, drivers
