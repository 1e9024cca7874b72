"""The registry of the virtual DUT's operations: handlers by name, their simulated durations,
and the small helpers the handler modules share.

A handler takes the machine (its lock held) and the decoded parameters and returns the JSON
object the PowerShell script of the same name returns on a real host (docs/windows-operations.md);
`@operation` registers it under its name without the `op_` prefix. The handlers live in
`operations` (host, files, Verifier, DMAGuard, firmware, sessions), `driver_ops` (driver
packages, PnP) and `crash_ops` (reboot, crash evidence, probes, readiness); `executor` imports
all three. `OperationError` is an unexpected failure (the script would `throw`): the command
exits 1 with the message on stderr. `DURATIONS_S` are real-world seconds, scaled by the lab's
`time_scale`.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from harness.virtual_lab.ssh_server import windows_to_local
from harness.virtual_lab.windows.machine import WindowsMachine, iso


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


def operation(fn: Handler) -> Handler:
    HANDLERS[fn.__name__.removeprefix("op_")] = fn
    return fn


def iso_or_none(when: datetime | None) -> str | None:
    return None if when is None else iso(when)


def local_path(m: WindowsMachine, path: str) -> Path:
    """The file of the DUT's Windows `path` (C:\\...) in the lab's work folder."""
    return windows_to_local(m.fs_root, path, m.username)


def need(p: dict[str, Any], key: str, kind: type | tuple[type, ...]) -> Any:
    value = p.get(key)
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is int):
        raise OperationError(f"parameter '{key}' is missing or not {kind}")
    return value


def duration_s(name: str, params: dict[str, Any]) -> float:
    """Real-world duration of one operation (before time_scale)."""
    if name == "storage_probe":
        raw = params.get("size_mib")
        size = raw if isinstance(raw, int) else 0
        return 0.5 + size / PROBE_WRITE_MB_S + size / PROBE_READ_MB_S
    return DURATIONS_S.get(name, DEFAULT_DURATION_S)
