"""The virtual DUT's reboot, crash-evidence, DMA-probe and readiness operations
(docs/windows-operations.md; `op_registry` holds the registry and the shared helpers).
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from typing import Any

from harness.virtual_lab.windows import boot_security, sources
from harness.virtual_lab.windows.machine import WindowsMachine
from harness.virtual_lab.windows.op_registry import (
    PROBE_READ_MB_S,
    PROBE_WRITE_MB_S,
    iso_or_none,
    need,
    operation,
)
from harness.virtual_lab.windows.pnp_install import verified_services


# -- reboot, crash evidence, probes ---------------------------------------------------------------
@operation
def op_reboot_request(m: WindowsMachine, p: dict[str, Any]) -> dict[str, Any]:
    last = iso_or_none(m.booted_at)
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
    since = datetime.fromisoformat(need(p, "since_utc", str).replace("Z", "+00:00"))
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
                    "time_utc": iso_or_none(e["time"]),
                    "stop_code": int(e["data"]["param1"], 16),
                    "parameters": params,
                    "dump_path": r"C:\Windows\MEMORY.DMP",
                    "source": "wer-1001",
                }
            )
        elif e["id"] == 41:
            shutdown: dict[str, Any] = {"time_utc": iso_or_none(e["time"])}
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
                    {
                        "path": f"C:\\{rel}",
                        "size": stat.st_size,
                        "modified_utc": iso_or_none(modified),
                    }
                )
    return {
        "bugchecks": bugchecks,
        "unexpected_shutdowns": shutdowns,
        "dumps": dumps,
        "setupapi_tail": "",
    }


@operation
def op_storage_probe(m: WindowsMachine, p: dict[str, Any]) -> dict[str, Any]:
    iid, label = need(p, "instance_id", str), need(p, "volume_label", str)
    size = need(p, "size_mib", int)
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
    echo = need(p, "echo", str)
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
