"""Native Windows tools of a simulated DUT with realistic output: what a user types over WinRM or
SSH (`hostname`, `whoami`, `pnputil`, `verifier`, `shutdown`, `bcdedit`), and what the
operations call underneath (docs/domain.md §5–§6).

`run_command_line(machine, line)` returns `(exit_code, stdout)` or None when the line is not one
of these tools (the caller falls back to its generic cmd.exe subset). pnputil's output is the
"Label: value" blocks of `/enum-drivers` and `/enum-devices`; its exit codes are those of
`pnputil-return-values` (0, 259, 3010) and the failing call's error code. The labels of
`/enum-drivers` and `/enum-devices` and bcdedit's Yes/No are in the DUT's display language
(quirk `locale`, `sources.py`).
"""

from __future__ import annotations

import shlex
from typing import TYPE_CHECKING

from harness.virtual_lab.windows import sources, verifier
from harness.virtual_lab.windows.driver_store import ERROR_IN_USE, ERROR_NO_MORE_ITEMS
from harness.virtual_lab.windows.pnp_install import model_for, unbind

if TYPE_CHECKING:
    from harness.virtual_lab.windows.machine import WindowsMachine

BANNER = "Microsoft PnP Utility\r\n\r\n"
ERROR_NOT_AN_INSTALLED_OEM_INF = -536870142  # 0xE0000302
CLASS_GUIDS = {"scsiadapter": "{4d36e97b-e325-11ce-bfc1-08002be10318}"}
PROBLEM_NAMES = {28: "CM_PROB_FAILED_INSTALL", 55: "CM_PROB_CONSOLE_LOCKED"}


def split_args(line: str) -> list[str]:
    try:
        return shlex.split(line, posix=False)
    except ValueError:
        return line.split()


def _unquote(arg: str) -> str:
    return arg[1:-1] if len(arg) >= 2 and arg[0] == arg[-1] == '"' else arg


def run_command_line(machine: WindowsMachine, line: str) -> tuple[int, str] | None:
    words = [_unquote(w) for w in split_args(line.strip())]
    if not words:
        return None
    tool = words[0].lower().removesuffix(".exe").split("\\")[-1]
    args = words[1:]
    if tool == "hostname":
        return 0, machine.hostname + "\r\n"
    if tool == "whoami":
        return 0, f"{machine.hostname.lower()}\\{machine.username.lower()}\r\n"
    if tool == "pnputil":
        return pnputil(machine, args)
    if tool == "verifier":
        return verifier.run(machine, args)
    if tool == "shutdown":
        return shutdown(machine, args)
    if tool == "bcdedit":
        return bcdedit(machine, args)
    return None


# -- pnputil ---------------------------------------------------------------------------------------
def pnputil(machine: WindowsMachine, args: list[str]) -> tuple[int, str]:
    low = [a.lower() for a in args]
    if low[:1] in (["/add-driver"], ["-a"]) and len(args) >= 2:
        code, text, _ = add_driver(machine, args[1], install="/install" in low or "-i" in low)
        return code, text
    if low[:1] in (["/delete-driver"], ["-d"]) and len(args) >= 2:
        return delete_driver(
            machine, args[1], uninstall="/uninstall" in low, force="/force" in low or "-f" in low
        )
    if low[:1] in (["/enum-drivers"], ["-e"]):
        return 0, enum_drivers(machine)
    if low[:1] == ["/enum-devices"]:
        return 0, enum_devices(machine, connected="/connected" in low, problem="/problem" in low)
    if low[:1] == ["/scan-devices"]:
        rescan(machine)
        return 0, BANNER + "Scanning for device hardware changes.\r\nScan complete.\r\n"
    return 87, BANNER + "Invalid command. Type pnputil /? for usage.\r\n"


def add_driver(machine: WindowsMachine, path: str, *, install: bool) -> tuple[int, str, str | None]:
    from harness.virtual_lab.ssh_server import windows_to_local

    local = windows_to_local(machine.fs_root, path, machine.username)
    name = path.replace("/", "\\").split("\\")[-1]
    text = BANNER + f"Adding driver package:  {name}\r\n"
    # Staging checks the user-mode policy (LocalMachine Root); the kernel-mode policy applies
    # when the driver loads (pnp_install.kernel_refusal: Code 52).
    roots = list(machine.release_roots) + list(machine.cert_stores["Root"])
    result = machine.store.add(local, trusted_roots=roots)
    if result.package is None:
        text += f"Failed to add driver package: {result.message}\r\n"
        text += "\r\nTotal attempted:              1\r\nNumber successfully imported: 0\r\n"
        return result.exit_code, text, None
    package = result.package
    published = sources.text(machine, "published") + ":"
    text += f"{result.message}\r\n{published.ljust(24)}{package.published_name}\r\n"
    code = 0
    if install:
        targets = [d for d in machine.devices.values() if d.present and model_for(package, d)]
        for device in targets:
            device.package = package.published_name
            device.history.append(f"driver {package.published_name} installed")
            machine.readd(device)
        if targets:
            text += "Driver package installed on matching devices.\r\n"
        else:
            code = ERROR_NO_MORE_ITEMS
    text += "\r\nTotal driver packages:  1\r\nAdded driver packages:  1\r\n"
    return code, text, package.published_name


def delete_driver(
    machine: WindowsMachine, published: str, *, uninstall: bool, force: bool
) -> tuple[int, str]:
    package = machine.store.get(published)
    if package is None:
        return ERROR_NOT_AN_INSTALLED_OEM_INF, BANNER + (
            "Failed to delete driver package: The specified file is not an installed OEM INF.\r\n"
        )
    users = [d for d in machine.devices.values() if d.package == package.published_name]
    if users and not (uninstall or force):
        return ERROR_IN_USE, BANNER + (
            "Failed to delete driver package: One or more devices are presently installed using "
            "the specified INF.\r\n"
        )
    machine.store.delete(published)
    for device in unbind(machine, package):
        device.history.append(f"driver {package.published_name} uninstalled")
        machine.readd(device)
    return 0, BANNER + "Driver package deleted successfully.\r\n"


def rescan(machine: WindowsMachine) -> None:
    for device in machine.devices.values():
        if device.present and not device.started and device.last_arrival is None:
            machine.readd(device)


def enum_drivers(machine: WindowsMachine) -> str:
    t = _texts(machine)
    text = t["banner"] + "\r\n\r\n"
    for p in machine.store.packages():
        version = (p.info.driver_ver or "").replace(",", " ")
        rows = [
            ("published", p.published_name),
            ("original", p.original_name),
            ("provider", p.provider),
            ("class", p.info.class_name or "Unknown"),
            ("class_guid", (p.info.class_guid or "").lower()),
            ("version", version),
            ("signer", p.signer or ""),
        ]
        text += _rows(t, rows, 20) + "\r\n"
    return text


def _rows(t: dict[str, str], rows: list[tuple[str, str]], width: int) -> str:
    return "".join(f"{(t[key] + ':').ljust(width)}{value}\r\n" for key, value in rows)


def _texts(machine: WindowsMachine) -> dict[str, str]:
    return sources.TEXTS[sources.locale(machine)]


def enum_devices(machine: WindowsMachine, *, connected: bool, problem: bool) -> str:
    t = _texts(machine)
    text = t["banner"] + "\r\n\r\n"
    for d in machine.devices.values():
        if d.last_arrival is None or (connected and not d.present):
            continue
        if problem and d.problem_code == 0:
            continue
        status = (
            t["started"] if d.started else (t["problem_status"] if d.present else t["disconnected"])
        )
        rows = [
            ("instance", d.instance_id),
            ("description", d.description),
            ("class", d.device_class),
            ("class_guid", CLASS_GUIDS.get(d.device_class.lower(), "")),
            ("manufacturer", "DMA Lab"),
            ("status", status),
        ]
        if d.present and d.problem_code:
            name = PROBLEM_NAMES.get(d.problem_code, "")
            rows.append(("problem", f"{d.problem_code} (0x{d.problem_code:X}) [{name}]"))
        rows.append(("driver", d.package or ""))
        text += _rows(t, rows, 28) + "\r\n"
    return text


# -- shutdown / bcdedit ----------------------------------------------------------------------------
def shutdown(machine: WindowsMachine, args: list[str]) -> tuple[int, str]:
    low = [a.lower() for a in args]
    if "/r" in low:
        machine.request_reboot()
        return 0, ""
    if "/a" in low:
        return (
            1116,
            "Unable to abort the system shutdown because no shutdown was in progress.(1116)\r\n",
        )
    return 1, 'Usage: shutdown [/r | /a] [/t xxx] [/d [p|u:]xx:yy [/c "comment"]]\r\n'


def bcdedit(machine: WindowsMachine, args: list[str]) -> tuple[int, str]:
    low = [a.lower() for a in args]
    if (
        low[:2] == ["/set", "testsigning"]
        and len(low) == 3
        and low[2] in ("on", "off", "yes", "no")
    ):
        if machine.spec.secure_boot:
            return 1, (
                "An error has occurred setting the element data.\r\n"
                "The value is protected by Secure Boot policy and cannot be modified or deleted.\r\n"
            )
        machine.test_signing_pending = low[2] in ("on", "yes")
        return 0, "The operation completed successfully.\r\n"
    if low[:1] == ["/enum"]:
        # The store (the next boot's value), its Yes/No in the display language.
        testsigning = sources.text(machine, "yes" if machine.test_signing_pending else "no")
        return 0, (
            "Windows Boot Loader\r\n-------------------\r\nidentifier              {current}\r\n"
            "device                  partition=C:\r\npath                    "
            "\\WINDOWS\\system32\\winload.efi\r\ndescription             Windows Boot Manager\r\n"
            f"testsigning             {testsigning}\r\nnx                      OptIn\r\n"
        )
    return 1, "The parameter is incorrect.\r\n"
