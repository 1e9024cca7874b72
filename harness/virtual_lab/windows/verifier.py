"""`verifier.exe` on a simulated DUT (docs/domain.md §5).

Persistent settings (`/flags F /driver a.sys`, `/standard`, `/reset`) are written to
`HKLM\\SYSTEM\\CurrentControlSet\\Control\\Session Manager\\Memory Management`
(`VerifyDriverLevel`, `VerifyDrivers`) and take effect at the next boot: exit code 2
(`EXIT_CODE_REBOOT_NEEDED`). `/volatile /flags F /adddriver a.sys` changes what runs now and is
lost at reboot: exit 0. `/querysettings` shows the next boot's settings, `/query` the active ones.
Quirk `volatile_verifier_promotes` (default true) decides whether volatile targets count when a
device is added.

Volatile settings are documented as separate commands, `/volatile /flags F` (the flags replace
the running ones) and `/volatile /adddriver a.sys`. The undocumented combined form
`/volatile /flags F /adddriver a.sys` applies only its first switch here (quirk
`verifier_volatile_combined`: `first-switch-only` by default, `both`), the risk the review of the
harness raised. Quirk `verifier_volatile_refused` (default false) makes `/volatile` fail, as on a
build where it is retired; on Windows 11 (build 22000+) `/dif <class> ... /now /driver a.sys`
applies rule classes at once (class n is flag bit n-1: 8 is DMA checking, 0x80).

`/query` is printed in the display language (quirk `locale`, `sources.py`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from harness.virtual_lab.windows import kernel_rules as rules
from harness.virtual_lab.windows import sources
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
    if low[0] == "/dif":
        return _dif(machine, args[1:])
    volatile = low[0] == "/volatile"
    if volatile and machine.quirks.get("verifier_volatile_refused") is True:
        return EXIT_ERROR, "The /volatile option is not supported on this system. Use /dif.\r\n"
    if volatile and low[1:2] == ["/adddriver"]:
        level, active = machine.verifier_active
        added = {d.lower().removesuffix(".sys") for d in args[2:] if d}
        if not added:
            return EXIT_ERROR, "Missing driver name.\r\n"
        machine.verifier_active = (level, active | frozenset(added))
        if rules.quirk(machine.quirks, "volatile_verifier_promotes") is False:
            machine.volatile_only = machine.volatile_only | frozenset(added)
        return EXIT_SUCCESS, "".join(
            f"Added {d}.sys to the verified driver list.\r\n" for d in sorted(added)
        )
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
        if (
            drivers
            and machine.quirks.get("verifier_volatile_combined", "first-switch-only") != "both"
        ):
            added = set()  # the undocumented combined form: only /flags took effect
        machine.verifier_active = (flags, active | frozenset(added))
        if rules.quirk(machine.quirks, "volatile_verifier_promotes") is False:
            machine.volatile_only = machine.volatile_only | frozenset(added)
        return EXIT_SUCCESS, "New verifier settings:\r\n\r\n" + _flag_lines(flags)
    if not drivers:
        return EXIT_ERROR, "Missing /driver NAME.\r\n"
    machine.registry.set(MEMORY_MANAGEMENT, "VerifyDriverLevel", flags)
    machine.registry.set(MEMORY_MANAGEMENT, "VerifyDrivers", " ".join(drivers))
    return EXIT_REBOOT_NEEDED, REBOOT_TEXT


def _dif(machine: WindowsMachine, args: list[str]) -> tuple[int, str]:
    """`/dif <class> [<class> ...] /now /driver a.sys`: Windows 11 only, applied at once."""
    low = [a.lower() for a in args]
    if machine.build < rules.WINDOWS11_BUILD or "/now" not in low or "/driver" not in low:
        return EXIT_ERROR, f"Invalid argument: /dif {' '.join(args)}\r\n"
    classes = args[: low.index("/now")] if low.index("/now") < low.index("/driver") else []
    drivers = args[low.index("/driver") + 1 :]
    flags = 0
    for c in classes:
        if not c.isdigit() or not 1 <= int(c) <= 32:
            return EXIT_ERROR, f"Invalid rule class: {c}\r\n"
        flags |= 1 << (int(c) - 1)
    if not flags or not drivers:
        return EXIT_ERROR, "Missing rule classes or /driver NAME.\r\n"
    level, active = machine.verifier_active
    added = frozenset(d.lower().removesuffix(".sys") for d in drivers)
    machine.verifier_active = (level | flags, active | added)
    return EXIT_SUCCESS, "New verifier settings:\r\n\r\n" + _flag_lines(flags)


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
    t = sources.TEXTS[sources.locale(machine)]
    if not drivers:
        return t["vf_none"] + "\r\n"
    text = (
        f"{t['vf_level']}: {level:08X}\r\nRaiseIrqls: 0\r\nAcquireSpinLocks: 0\r\n\r\n"
        f"{t['vf_drivers']}:\r\n\r\n"
    )
    text += "".join(
        f"{t['vf_name']}: {d}.sys, {t['vf_loads']}: 1, {t['vf_unloads']}: 0\r\n"
        for d in sorted(drivers)
    )
    return text


def active_settings(machine: WindowsMachine) -> tuple[int | None, list[str]]:
    level, drivers = machine.verifier_active
    return (level or None), [f"{d}.sys" for d in sorted(drivers)]


def pending_settings(machine: WindowsMachine) -> tuple[int | None, list[str]]:
    level = machine.registry.get(MEMORY_MANAGEMENT, "VerifyDriverLevel")
    drivers = _drivers(str(machine.registry.get(MEMORY_MANAGEMENT, "VerifyDrivers") or ""))
    return level, drivers
