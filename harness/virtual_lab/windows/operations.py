"""The Windows operations of docs/windows-operations.md, implemented on a simulated DUT.

Each handler takes the machine (its lock held) and the decoded parameters and returns the same
JSON object the PowerShell script of the same name returns on a real host. Where Windows offers a
localized text and a locale-free source, the handler answers from the one the script's code reads
(`sources.py`): a script parsing English labels out of German pnputil output finds nothing here,
as it would on a real de-DE host. `OperationError` is an
unexpected failure (the script would `throw`): the command exits 1 with the message on stderr.
`DURATIONS_S` are real-world seconds, scaled by the lab's `time_scale`.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from harness.virtual_lab.catalog import authenticode_signature
from harness.virtual_lab.signing import SignatureStatus
from harness.virtual_lab.ssh_server import windows_to_local
from harness.virtual_lab.windows import boot_security, cert_stores, commands, sources, verifier
from harness.virtual_lab.windows import kernel_rules as rules
from harness.virtual_lab.windows.machine import WindowsMachine, iso
from harness.virtual_lab.windows.pnp_install import verified_services
from harness.virtual_lab.windows.ps_syntax import check_syntax
from harness.virtual_lab.windows.registry import DMAGUARD, FVE, SERVICES, WINLOGON


class OperationError(Exception):
    """The operation failed on the host (the real script would throw)."""


Handler = Callable[[WindowsMachine, dict[str, Any]], dict[str, Any]]
HANDLERS: dict[str, Handler] = {}
DURATIONS_S: dict[str, float] = {
    "host_facts": 1.5,
    "driver_install": 8.0,
    "driver_uninstall": 4.0,
    "driver_signature": 1.0,
    "verifier_set": 1.0,
    "kdp_firmware_set": 2.0,
    "session_lock": 1.0,
    "pnp_devices": 0.8,
    "crash_evidence": 1.5,
    "reboot_request": 0.5,
}
DEFAULT_DURATION_S = 0.3
PROBE_WRITE_MB_S, PROBE_READ_MB_S = 900.0, 1450.0  # a TB3 NVMe enclosure, roughly
INSTALL_OUTCOMES = {
    0: "installed",
    259: "no_device",
    3010: "reboot_required",
    1641: "reboot_initiated",
}
DMA_POLICY_FRIENDLY = "DEVPKEY_Device_DmaRemappingPolicy"
DMA_POLICY_GUID = "{83DA6326-97A6-4088-9453-A1923F573B29} 18"
#: SYSTEM_CODEINTEGRITY_INFORMATION.CodeIntegrityOptions bits (winternl.h).
CI_ENABLED, CI_TESTSIGN = 0x01, 0x02
#: How far up `host_facts` looks for an existing parent of the DMAGuard policy key.
POLICIES = r"HKLM\SOFTWARE\Policies"


def operation(fn: Handler) -> Handler:
    HANDLERS[fn.__name__.removeprefix("op_")] = fn
    return fn


def _iso(when: datetime | None) -> str | None:
    return None if when is None else iso(when)


def _need(p: dict[str, Any], key: str, kind: type | tuple[type, ...]) -> Any:
    value = p.get(key)
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is int):
        raise OperationError(f"parameter '{key}' is missing or not {kind}")
    return value


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
        "last_boot_utc": _iso(m.booted_at),
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


def _local(m: WindowsMachine, path: str) -> Any:
    return windows_to_local(m.fs_root, path, m.username)


@operation
def op_file_write(m: WindowsMachine, p: dict[str, Any]) -> dict[str, Any]:
    path, mode = _need(p, "path", str), p.get("mode", "create")
    if re.match(r"^(?:[A-Za-z]:\\|\\\\)", path) is None and (
        not path.startswith("\\") or sources.reads(m, "^[A-Za-z]:")
    ):
        # A script checking `^[A-Za-z]:\|^\\` refuses drive-relative `\x`; one using
        # IsPathRooted accepts it (Windows resolves it against the current drive).
        raise OperationError(f"file_write: path must be absolute: {path}")
    data = base64.b64decode(_need(p, "data_base64", str), validate=True)
    target = _local(m, path)
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target, "wb" if mode == "create" else "ab") as fh:
        fh.write(data)
    return {"path": path, "size": target.stat().st_size}


@operation
def op_file_hash(m: WindowsMachine, p: dict[str, Any]) -> dict[str, Any]:
    path = _need(p, "path", str)
    target = _local(m, path)
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
    scripts = _need(p, "scripts", dict)
    return {"results": {name: check_syntax(str(text)) for name, text in scripts.items()}}


@operation
def op_command_run(m: WindowsMachine, p: dict[str, Any]) -> dict[str, Any]:
    out = commands.run_command_line(m, _need(p, "command", str))
    if out is None:
        return {
            "exit_code": 1,
            "output": "'{}' is not recognized as an internal or external "
            "command,\r\noperable program or batch file.\r\n".format(p["command"].split()[0]),
        }
    return {"exit_code": out[0], "output": out[1]}


# -- driver packages ------------------------------------------------------------------------------
@operation
def op_driver_signature(m: WindowsMachine, p: dict[str, Any]) -> dict[str, Any]:
    expected = _need(p, "expected_signer", str)
    # Get-AuthenticodeSignature applies the user-mode policy: LocalMachine Root is trusted
    # whether or not test signing is on. It asks the system catalog database first (the
    # catalogs of staged packages), then the file's own signature.
    roots = list(m.release_roots) + list(m.cert_stores["Root"])
    files = []
    for path in _need(p, "paths", list):
        local = _local(m, str(path))
        if not local.is_file():
            raise OperationError(f"Cannot find path '{path}' because it does not exist.")
        check = authenticode_signature(local, m.store.catalogs(), roots)
        status = check.status
        if status is SignatureStatus.NotTrusted:
            # Get-AuthenticodeSignature reports an untrusted root (CERT_E_UNTRUSTEDROOT) as
            # UnknownError; NotTrusted is for an explicitly distrusted certificate.
            status = SignatureStatus.UnknownError
        files.append(
            {
                "path": path,
                "status": status.name,
                "status_code": int(status),
                "signature_type": check.signature_type.name_ps,
                "signer_subject": check.signer_subject,
                "signer_matches": check.signer_cn == expected,
                "signer_thumbprint": check.signer_thumbprint,
            }
        )
    return {"files": files}


@operation
def op_driver_install(m: WindowsMachine, p: dict[str, Any]) -> dict[str, Any]:
    prompt = cert_stores.install_prompt(m, _local(m, _need(p, "inf_path", str)))
    if prompt is not None:  # the Windows Security dialog waits in session 0, unanswered
        m.op_wait_s += cert_stores.PROMPT_WAIT_S
        return {"exit_code": 1, "outcome": "failed", "published_name": None, "output": prompt}
    code, text, published = commands.add_driver(m, _need(p, "inf_path", str), install=True)
    return {
        "exit_code": code,
        "outcome": INSTALL_OUTCOMES.get(code, "failed"),
        "published_name": published,
        "output": text,
    }


@operation
def op_driver_uninstall(m: WindowsMachine, p: dict[str, Any]) -> dict[str, Any]:
    code, text = commands.delete_driver(
        m, _need(p, "published_name", str), uninstall=True, force=True
    )
    return {"exit_code": code, "outcome": INSTALL_OUTCOMES.get(code, "failed"), "output": text}


#: The English pnputil labels a text-parsing driver_list keys on, and its result fields.
_PNPUTIL_FIELDS = {
    "Published Name": "published_name",
    "Original Name": "original_name",
    "Provider Name": "provider",
    "Class Name": "class_name",
    "Driver Version": "version",
    "Signer Name": "signer",
}


@operation
def op_driver_list(m: WindowsMachine, p: dict[str, Any]) -> dict[str, Any]:
    if not sources.reads(m, "Get-WindowsDriver", "Win32_PnPSignedDriver"):
        # pnputil /enum-drivers parsed by its English labels: nothing in another language.
        blocks = sources.label_blocks(
            commands.enum_drivers(m), _PNPUTIL_FIELDS, first="Published Name"
        )
        fields = list(_PNPUTIL_FIELDS.values())
        return {"drivers": [{f: b.get(f) for f in fields} for b in blocks]}
    return {
        "drivers": [
            {
                "published_name": pk.published_name,
                "original_name": pk.original_name,
                "provider": pk.provider,
                "class_name": pk.info.class_name,
                "version": (pk.info.driver_ver or "").replace(",", " "),
                "signer": pk.signer,
            }
            for pk in m.store.packages()
        ]
    }


@operation
def op_service_dma_compat(m: WindowsMachine, p: dict[str, Any]) -> dict[str, Any]:
    service = _need(p, "service", str)
    key = f"{SERVICES}\\{service}"
    exists = m.registry.get(key, "ImagePath") is not None or bool(m.registry.values(key))
    params = key + "\\Parameters"
    return {
        "service": service,
        "exists": exists or bool(m.registry.values(params)),
        "dma_remapping_compatible": m.registry.get(params, "DmaRemappingCompatible"),
        "dma_remapping_on_hiber_path": m.registry.get(params, "DmaRemappingOnHiberPath"),
    }


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
    mode = _need(p, "mode", str)
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
    vendor = _need(p, "vendor", str)
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
        return boot_security.kdp_firmware_set(m, vendor, _need(p, "enabled", bool))
    except boot_security.ScriptFailed as exc:
        raise OperationError(str(exc)) from None


@operation
def op_test_signing_set(m: WindowsMachine, p: dict[str, Any]) -> dict[str, Any]:
    return boot_security.test_signing_set(m, _need(p, "enabled", bool))


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
    _need(p, "enabled", bool)
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


# -- PnP ------------------------------------------------------------------------------------------
@operation
def op_pnp_devices(m: WindowsMachine, p: dict[str, Any]) -> dict[str, Any]:
    import fnmatch

    pattern = _need(p, "hardware_id", str).lower()
    present_only = bool(p.get("present_only", True))
    key = DMA_POLICY_FRIENDLY if m.build >= 18362 else DMA_POLICY_GUID
    found = []
    for d in m.devices.values():
        if d.last_arrival is None or (present_only and not d.present):
            continue
        ids = [h.lower() for h in (*d.hardware_ids, d.instance_id)]
        if not any(fnmatch.fnmatchcase(h, pattern) for h in ids):
            continue
        filters = list(d.stack[1:])
        found.append(
            {
                "instance_id": d.instance_id,
                "friendly_name": d.description,
                "class": d.device_class,
                "present": d.present,
                "status": d.status,
                "problem_code": d.problem_code if d.present else 0,
                "dma_policy": d.dma_policy or None,
                "dma_policy_key": key,
                "service": d.stack[0] if d.stack else None,
                "lower_filters": filters,
                "upper_filters": [],
                "driver_stack": list(d.stack),
                "inf_name": d.package,
                "last_arrival_utc": _iso(d.last_arrival),
                "last_removal_utc": _iso(d.last_removal),
                "dma_management": _dma_management(m, d.instance_id),
            }
        )
    return {"devices": found}


def _dma_management(m: WindowsMachine, instance_id: str) -> dict[str, Any] | None:
    """`Enum\\<instance>\\Device Parameters\\DMA Management`: null when the key has no values."""
    key = rules.device_key(instance_id)
    values = {
        "remapping_supported": m.registry.get(key, "RemappingSupported"),
        "remapping_flags": m.registry.get(key, "RemappingFlags"),
    }
    return values if any(v is not None for v in values.values()) else None


@operation
def op_pnp_rescan(m: WindowsMachine, p: dict[str, Any]) -> dict[str, Any]:
    commands.rescan(m)
    return {"exit_code": 0}


# -- reboot, crash evidence, probes ---------------------------------------------------------------
@operation
def op_reboot_request(m: WindowsMachine, p: dict[str, Any]) -> dict[str, Any]:
    last = _iso(m.booted_at)
    if not boot_security.restart_vetoed(m):  # else: "an app is preventing restart"
        m.request_reboot()
    return {"requested": True, "last_boot_utc": last}


#: crash_evidence: the default bound on its wait for WER's event 1001 (real-world seconds).
REPORT_WAIT_S = 40.0


@operation
def op_crash_evidence(m: WindowsMachine, p: dict[str, Any]) -> dict[str, Any]:
    """Events 1001 and 41 and the dumps since `since_utc`, as the script reads them: 41's
    BugcheckCode and parameters when its code reads the event data (`BugcheckCode`), and a
    bounded wait for a 1001 still to come when its code has one (`report_wait_s`)."""
    since = datetime.fromisoformat(_need(p, "since_utc", str).replace("Z", "+00:00"))
    with_41_data = sources.reads(m, "BugcheckCode")
    evidence = _crash_evidence(m, since, with_41_data)
    coded = [s for s in evidence["unexpected_shutdowns"] if s.get("bugcheck_code")]
    if (
        sources.reads(m, "report_wait_s")
        and not evidence["bugchecks"]
        and (coded or evidence["dumps"])
    ):
        wait_s = float(p.get("report_wait_s", REPORT_WAIT_S))
        now = datetime.now(since.tzinfo)
        horizon = now + timedelta(seconds=m.scaled(wait_s))
        due = [at for at, e in m.due_events if e["id"] == 1001 and at <= horizon]
        if due:
            m.log_due_now(max(due))
            m.op_wait_s = max(0.0, (max(due) - now).total_seconds()) / m.time_scale
        else:
            m.op_wait_s = wait_s
        evidence = _crash_evidence(m, since, with_41_data)
        coded = [s for s in evidence["unexpected_shutdowns"] if s.get("bugcheck_code")]
    if with_41_data and not evidence["bugchecks"]:
        dump = evidence["dumps"][0]["path"] if evidence["dumps"] else None
        evidence["bugchecks"] = [
            {
                "time_utc": s["time_utc"],
                "stop_code": s["bugcheck_code"],
                "parameters": s["parameters"],
                "dump_path": dump,
                "source": "kernel-power-41",
            }
            for s in coded
        ]
    return evidence


def _crash_evidence(m: WindowsMachine, since: datetime, with_41_data: bool) -> dict[str, Any]:
    bugchecks: list[dict[str, Any]] = []
    shutdowns: list[dict[str, Any]] = []
    for e in m.events:
        if e["time"] < since:
            continue
        if e["id"] == 1001:
            params = [int(x) for x in e["data"]["param2"]]
            bugchecks.append(
                {
                    "time_utc": _iso(e["time"]),
                    "stop_code": int(e["data"]["param1"], 16),
                    "parameters": params,
                    "dump_path": r"C:\Windows\MEMORY.DMP",
                    "source": "wer-1001",
                }
            )
        elif e["id"] == 41:
            shutdown: dict[str, Any] = {"time_utc": _iso(e["time"])}
            if with_41_data:
                data = e["data"]
                shutdown["bugcheck_code"] = int(data.get("BugcheckCode", 0))
                shutdown["parameters"] = [
                    int(data.get(f"BugcheckParameter{i}", 0)) for i in range(1, 5)
                ]
            shutdowns.append(shutdown)
    dumps = []
    windows = m.fs_root / "C" / "Windows"
    candidates = [windows / "MEMORY.DMP", *sorted((windows / "Minidump").glob("*.dmp"))]
    for f in candidates:
        if f.is_file():
            stat = f.stat()
            modified = datetime.fromtimestamp(stat.st_mtime).astimezone()
            if modified >= since:
                rel = "\\".join(f.relative_to(m.fs_root / "C").parts)
                dumps.append(
                    {"path": f"C:\\{rel}", "size": stat.st_size, "modified_utc": _iso(modified)}
                )
    return {
        "bugchecks": bugchecks,
        "unexpected_shutdowns": shutdowns,
        "dumps": dumps,
        "setupapi_tail": "",
    }


@operation
def op_storage_probe(m: WindowsMachine, p: dict[str, Any]) -> dict[str, Any]:
    iid, label = _need(p, "instance_id", str), _need(p, "volume_label", str)
    size = _need(p, "size_mib", int)
    device = next((d for d in m.devices.values() if d.instance_id.lower() == iid.lower()), None)
    empty = {
        "ok": False,
        "drive_letter": None,
        "disk_number": None,
        "bytes": 0,
        "write_mb_s": None,
        "read_mb_s": None,
        "verified": False,
    }
    if device is None or not device.present:
        return {**empty, "reason": f"device {iid} is not present"}
    if not device.started:
        return {**empty, "reason": f"device {iid} is not started (problem {device.problem_code})"}
    if device.volume_label is None or device.volume_label.lower() != label.lower():
        return {**empty, "reason": f"no volume labelled {label} on {iid}"}
    faulty = m.spec.faulty_driver
    if faulty and faulty.lower() in verified_services(m, device.stack):
        p1 = 0x26 if device.dma_policy == 2 and m.kdp_active else 0x0F
        m.bugcheck(0xE6, (p1, 0xFFFF_A000_1234_5000, 0x1_0000_0000, 0x2))
    disk = 1 + list(m.devices).index(device.port)
    return {
        "ok": True,
        "reason": None,
        "drive_letter": device.drive_letter,
        "disk_number": disk,
        "bytes": size * 1024 * 1024,
        "write_mb_s": PROBE_WRITE_MB_S,
        "read_mb_s": PROBE_READ_MB_S,
        "verified": True,
    }


@operation
def op_lab_readiness(m: WindowsMachine, p: dict[str, Any]) -> dict[str, Any]:
    """What `lab doctor --deep` reads: PowerShell 5.1, the display language, OpenSSH's default
    shell (registry), the WinRM limits (Windows' defaults unless a quirk sets them) and the echo."""
    echo = _need(p, "echo", str)
    culture = str(m.quirks.get("locale", "en-US"))
    limit = m.quirks.get
    return {
        "ps_version": f"5.1.{m.build}.1",
        "language_mode": str(limit("language_mode", "FullLanguage")),
        "ui_culture": culture,
        "culture": culture,
        "openssh_default_shell": m.registry.get(r"HKLM\SOFTWARE\OpenSSH", "DefaultShell"),
        "wsman": {
            "max_envelope_kb": int(limit("winrm_max_envelope_kb", 500)),
            "max_operations_per_user": int(limit("winrm_max_operations_per_user", 1500)),
            "idle_timeout_ms": int(limit("winrm_idle_timeout_ms", 7_200_000)),
        },
        "echo_length": len(echo),
        "echo_sha256": hashlib.sha256(echo.encode("utf-8")).hexdigest(),
    }


def duration_s(name: str, params: dict[str, Any]) -> float:
    """Real-world duration of one operation (before time_scale)."""
    if name == "storage_probe":
        raw = params.get("size_mib")
        size = raw if isinstance(raw, int) else 0
        return 0.5 + size / PROBE_WRITE_MB_S + size / PROBE_READ_MB_S
    return DURATIONS_S.get(name, DEFAULT_DURATION_S)
