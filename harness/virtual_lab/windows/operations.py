"""The Windows operations of docs/windows-operations.md on a simulated DUT: the host, files,
Driver Verifier, DMAGuard, firmware KDP, test signing and sessions (`op_registry` holds the
registry; `driver_ops` and `crash_ops` the other handlers).

Where Windows offers a localized text and a locale-free source, a handler answers from the one
the script's code reads (`sources.py`): a script parsing English labels out of German pnputil
output finds nothing here, as it would on a real de-DE host.
"""

from __future__ import annotations

import base64
import hashlib
import re
from typing import Any

from harness.virtual_lab.windows import boot_security, cert_stores, commands, sources, verifier
from harness.virtual_lab.windows import kernel_rules as rules
from harness.virtual_lab.windows.machine import WindowsMachine, iso
from harness.virtual_lab.windows.op_registry import (
    OperationError,
    iso_or_none,
    local_path,
    need,
    operation,
)
from harness.virtual_lab.windows.ps_syntax import check_syntax
from harness.virtual_lab.windows.registry import DMAGUARD, FVE, WINLOGON

#: SYSTEM_CODEINTEGRITY_INFORMATION.CodeIntegrityOptions bits (winternl.h).
CI_ENABLED, CI_TESTSIGN = 0x01, 0x02
#: How far up `host_facts` looks for an existing parent of the DMAGuard policy key.
POLICIES = r"HKLM\SOFTWARE\Policies"


# -- host -----------------------------------------------------------------------------------------
@operation
def op_host_facts(m: WindowsMachine, p: dict[str, Any]) -> dict[str, Any]:
    product = f"Windows {'11' if m.build >= rules.WINDOWS11_BUILD else '10'} {m.spec.edition}"
    return {
        "computer_name": m.hostname,
        "build": m.build,
        "ubr": 4460,
        "edition": m.spec.edition,
        "product_name": product,
        "last_boot_utc": iso_or_none(m.booted_at),
        "kdp": {"enabled": m.kdp_active, "source": "ntquery"},
        "virtualization_firmware": m.firmware.applied_vt(),
        "iommu_dma_protection_available": m.spec.kdp_capable,
        "secure_boot": m.spec.secure_boot,
        "test_signing": _test_signing_read(m),
        "bitlocker_disable_external_dma_under_lock": m.registry.get(
            FVE, "DisableExternalDMAUnderLock"
        ),
        "dmaguard_policy": m.registry.get(DMAGUARD, "DeviceEnumerationPolicy"),
        "code_integrity_options": CI_ENABLED | (CI_TESTSIGN if m.test_signing_active else 0),
        "test_signing_in_effect": m.test_signing_active,
        "dmaguard_policy_written": _key_written(m, DMAGUARD, stop=POLICIES),
    }


def _test_signing_read(m: WindowsMachine) -> bool:
    """The BCD store's testsigning (the next boot's value), as the script reads it: the BCD WMI
    provider's element 0x16000049 is a boolean; bcdedit's text says Yes/No in the display
    language, so an English match reads any other language as off."""
    if sources.reads(m, "BcdStore"):
        return m.test_signing_pending
    code, text = commands.bcdedit(m, ["/enum", "{current}"])
    return code == 0 and re.search(r"testsigning\s+Yes", text, re.IGNORECASE) is not None


def _key_written(m: WindowsMachine, key: str, *, stop: str) -> dict[str, Any] | None:
    """The last-write time of `key`, else of its nearest existing parent up to `stop`."""
    found = m.registry.nearest_written(key, stop=stop)
    if found is None:
        return None
    path, written = found
    return {"key": path, "last_write_utc": iso(written), "before_boot": written < m.booted_at}


@operation
def op_file_write(m: WindowsMachine, p: dict[str, Any]) -> dict[str, Any]:
    path, mode = need(p, "path", str), p.get("mode", "create")
    if re.match(r"^(?:[A-Za-z]:\\|\\\\)", path) is None and (
        not path.startswith("\\") or sources.reads(m, "^[A-Za-z]:")
    ):
        # A script checking `^[A-Za-z]:\|^\\` refuses drive-relative `\x`; one using
        # IsPathRooted accepts it (Windows resolves it against the current drive).
        raise OperationError(f"file_write: path must be absolute: {path}")
    data = base64.b64decode(need(p, "data_base64", str), validate=True)
    target = local_path(m, path)
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target, "wb" if mode == "create" else "ab") as fh:
        fh.write(data)
    return {"path": path, "size": target.stat().st_size}


@operation
def op_file_hash(m: WindowsMachine, p: dict[str, Any]) -> dict[str, Any]:
    path = need(p, "path", str)
    target = local_path(m, path)
    if not target.is_file():
        return {"path": path, "exists": False, "size": None, "sha256": None}
    data = target.read_bytes()
    return {
        "path": path,
        "exists": True,
        "size": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
    }


@operation
def op_ps_parse(m: WindowsMachine, p: dict[str, Any]) -> dict[str, Any]:
    scripts = need(p, "scripts", dict)
    return {"results": {name: check_syntax(str(text)) for name, text in scripts.items()}}


@operation
def op_command_run(m: WindowsMachine, p: dict[str, Any]) -> dict[str, Any]:
    out = commands.run_command_line(m, need(p, "command", str))
    if out is None:
        return {
            "exit_code": 1,
            "output": "'{}' is not recognized as an internal or external "
            "command,\r\noperable program or batch file.\r\n".format(p["command"].split()[0]),
        }
    return {"exit_code": out[0], "output": out[1]}


# -- Driver Verifier ------------------------------------------------------------------------------
@operation
def op_verifier_state(m: WindowsMachine, p: dict[str, Any]) -> dict[str, Any]:
    pf, pd = verifier.pending_settings(m)
    af, ad = verifier.active_settings(m)
    known = True
    if not sources.english(m):
        if sources.reads(m, "active_known"):
            # Locale-free reading of /query: the driver file names and the 8-digit level are
            # not translated; "nothing verified" is a sentence, unknown outside English.
            known = bool(ad)
        else:
            # English labels only: "Level" is not found; "Name:" lines are where the language
            # keeps that word; the missing sentence reads as drivers being verified.
            text = verifier.query(m)
            ad = [n.lower() for n in re.findall(r"(?im)^\s*Name\s*:\s*([^,\s]+)", text)]
            af = None
    same = (pf or 0) == (af or 0) and sorted(d.lower() for d in pd) == sorted(ad)
    result: dict[str, Any] = {
        "pending": {"flags": pf, "drivers": pd},
        "active": {"flags": af, "drivers": ad} if known else {"flags": None, "drivers": []},
        "reboot_pending": not same if known else None,
    }
    if sources.reads(m, "active_known"):
        result["active_known"] = known
    return result


@operation
def op_verifier_set(m: WindowsMachine, p: dict[str, Any]) -> dict[str, Any]:
    mode = need(p, "mode", str)
    drivers = [str(d) for d in p.get("drivers") or []]
    flags = int(p.get("flags") or 0)
    hexflags = f"0x{flags:x}"
    if mode == "persistent":
        runs = [["/flags", hexflags, "/driver", *drivers]]
    elif mode == "volatile":
        if sources.reads_pattern(m, r"'/volatile',\s*'/flags',\s*\$flags,\s*'/adddriver'"):
            runs = [["/volatile", "/flags", hexflags, "/adddriver", *drivers]]  # one command
        else:
            return _verifier_volatile(m, flags, drivers)
    elif mode == "reset":
        runs = [["/reset"]]
    else:
        raise OperationError(f"unknown verifier mode {mode!r}")
    code, text = verifier.run(m, runs[0])
    result: dict[str, Any] = {
        "exit_code": code,
        "reboot_required": code == verifier.EXIT_REBOOT_NEEDED,
        "output": text,
    }
    if mode != "volatile":
        result["method"] = mode
    return result


def _verifier_volatile(m: WindowsMachine, flags: int, drivers: list[str]) -> dict[str, Any]:
    """The documented volatile form: `/volatile /flags F`, then `/volatile /adddriver a.sys`,
    each checked; on Windows 11, `/dif <classes> /now /driver a.sys` when /volatile is refused."""
    code, text = verifier.run(m, ["/volatile", "/flags", f"0x{flags:x}"])
    outputs = [text]
    method = "volatile"
    if code != verifier.EXIT_SUCCESS and m.build >= rules.WINDOWS11_BUILD:
        classes = [str(bit + 1) for bit in range(32) if flags >> bit & 1]
        code, text = verifier.run(m, ["/dif", *classes, "/now", "/driver", *drivers])
        outputs.append(text)
        method = "dif-now"
    elif code == verifier.EXIT_SUCCESS:
        code, text = verifier.run(m, ["/volatile", "/adddriver", *drivers])
        outputs.append(text)
    return {
        "exit_code": code,
        "reboot_required": False,
        "output": "".join(outputs),
        "method": method,
    }


# -- DMAGuard, firmware, test signing -------------------------------------------------------------
@operation
def op_dmaguard_get(m: WindowsMachine, p: dict[str, Any]) -> dict[str, Any]:
    return {"policy": m.registry.get(DMAGUARD, "DeviceEnumerationPolicy")}


@operation
def op_dmaguard_set(m: WindowsMachine, p: dict[str, Any]) -> dict[str, Any]:
    previous = m.registry.get(DMAGUARD, "DeviceEnumerationPolicy")
    policy = p.get("policy")
    if policy is None:
        m.registry.delete(DMAGUARD, "DeviceEnumerationPolicy")
    elif isinstance(policy, int) and not isinstance(policy, bool) and 0 <= policy <= 2:
        m.registry.set(DMAGUARD, "DeviceEnumerationPolicy", policy)
    else:
        raise OperationError(f"DeviceEnumerationPolicy must be 0, 1, 2 or null, not {policy!r}")
    return {"previous": previous, "policy": policy, "reboot_required": True}


def _firmware(m: WindowsMachine, p: dict[str, Any]) -> str:
    vendor = need(p, "vendor", str)
    if not m.firmware.scriptable or vendor != m.firmware.vendor:
        raise OperationError(f"Invalid namespace: no {vendor} BIOS WMI interface on this machine")
    return vendor


@operation
def op_kdp_firmware_get(m: WindowsMachine, p: dict[str, Any]) -> dict[str, Any]:
    vendor = _firmware(m, p)
    return {
        "vendor": vendor,
        "settings": dict(m.firmware.settings),
        "enabled": m.firmware.kdp_setting(),
    }


@operation
def op_kdp_firmware_set(m: WindowsMachine, p: dict[str, Any]) -> dict[str, Any]:
    vendor = _firmware(m, p)
    try:
        return boot_security.kdp_firmware_set(m, vendor, need(p, "enabled", bool))
    except boot_security.ScriptFailed as exc:
        raise OperationError(str(exc)) from None


@operation
def op_test_signing_set(m: WindowsMachine, p: dict[str, Any]) -> dict[str, Any]:
    return boot_security.test_signing_set(m, need(p, "enabled", bool))


# -- sessions -------------------------------------------------------------------------------------
@operation
def op_session_state(m: WindowsMachine, p: dict[str, Any]) -> dict[str, Any]:
    user = None if m.session.value == "no-user" else f"{m.hostname}\\{m.username}"
    state = m.session.value
    if user is not None and m.session_unknown_left > 0:
        m.session_unknown_left -= 1  # SessionFlags reads WTS_SESSIONSTATE_UNKNOWN (-1)
        if not sources.reads(m, "'unknown'"):
            raise OperationError(
                "session_state: SessionFlags is WTS_SESSIONSTATE_UNKNOWN (0xFFFFFFFF) for session 1"
            )
        state = "unknown"
    if user is not None and not sources.reads(m, "WTSUserName"):
        user = f"{m.hostname}\\{m.username[:20]}"  # WTSINFOEX_LEVEL1_W.UserName is WCHAR[21]
    return {"state": state, "user": user, "session_id": None if user is None else 1}


@operation
def op_session_lock(m: WindowsMachine, p: dict[str, Any]) -> dict[str, Any]:
    return {"requested": m.lock_session(), "task": "HarnessLock"}


@operation
def op_session_signout(m: WindowsMachine, p: dict[str, Any]) -> dict[str, Any]:
    return {"requested": m.sign_out()}


@operation
def op_autologon_set(m: WindowsMachine, p: dict[str, Any]) -> dict[str, Any]:
    need(p, "enabled", bool)
    return boot_security.autologon_set(m, p)


@operation
def op_autologon_state(m: WindowsMachine, p: dict[str, Any]) -> dict[str, Any]:
    """Winlogon's registry values; an LSA secret (autologon_set, quirk `stale_lsa_autologon`)
    is not a registry value, so it never counts as `password_in_registry`."""
    user = m.registry.get(WINLOGON, "DefaultUserName")
    return {
        "enabled": str(m.registry.get(WINLOGON, "AutoAdminLogon") or "0") == "1",
        "user": str(user) if user else None,
        "password_in_registry": m.registry.value(WINLOGON, "DefaultPassword") is not None,
    }


@operation
def op_token_state(m: WindowsMachine, p: dict[str, Any]) -> dict[str, Any]:
    return boot_security.token_state(m)


@operation
def op_bitlocker_state(m: WindowsMachine, p: dict[str, Any]) -> dict[str, Any]:
    return boot_security.bitlocker_state(m)


@operation
def op_cert_provision(m: WindowsMachine, p: dict[str, Any]) -> dict[str, Any]:
    try:
        return cert_stores.provision(m, p)
    except cert_stores.BadCertificate as exc:
        raise OperationError(str(exc)) from None
