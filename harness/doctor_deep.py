"""`harness lab doctor --deep`: is a DUT ready for its first real run?

The basic doctor asks whether a DUT answers and is configured as the lab says. The deep checks
exercise, read-only, each assumption the harness makes about a real Windows host (docs/real-lab.md
lists them with the experiment that settles each on real hardware):

- a request line of several thousand characters reaches PowerShell whole (a WinRM command whose
  stdin is in console mode cuts lines at 254 characters), and the persistent host starts;
- Windows PowerShell 5.1 in FullLanguage mode (Constrained Language refuses `Add-Type`);
- the display language (the operations read locale-free sources; it is recorded for evidence);
- OpenSSH's DefaultShell (SSH DUTs) and the WinRM limits the transport depends on (WinRM DUTs);
- every read-only operation runs and its result parses (one row each, with its duration).

Each check yields `(name, status, detail)`; `harness.doctor` adds them to the DUT's rows. Nothing
here changes the DUT.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

from harness.config.lab import Lab
from harness.errors import HarnessError
from harness.remote.deadline import Deadline
from harness.remote.ssh_transport import SshShell
from harness.remote.winrm_transport import WinRMShell
from harness.windows.host import WindowsHost
from harness.windows.readiness import bitlocker_state, certificate_state, token_state
from harness.windows.shape import JsonObject

Row = tuple[str, str, str]  # (check, "OK"|"WARN"|"FAIL"|"SKIP", detail)

#: Characters of the echo: well past console mode's 254 and cmd.exe's 8191-character line.
ECHO_CHARS = 12_000
#: The largest request the WinRM transport sends (one Send of 192 KiB base64-encoded, with its
#: envelope): a MaxEnvelopeSizekb below this refuses it with HTTP 413.
LARGEST_SEND_KB = 300
#: Commands a shell runs before the transport should recycle it; a host whose quota is below
#: this needs the quota raised (or the harness's recycling tuned).
MIN_OPERATIONS_PER_USER = 200


def deep_checks(
    lab: Lab, shell: WinRMShell | SshShell, host: WindowsHost, name: str, timeout_s: float
) -> Iterator[Row]:
    """The deep rows of DUT `name`, one check after another (each bounded by `timeout_s`)."""
    readiness: dict[str, Any] | None = None
    echo = secrets.token_hex(ECHO_CHARS // 2)
    try:
        readiness = host.call("lab_readiness", {"echo": echo}, timeout_s=timeout_s)
    except HarnessError as exc:
        yield (
            "long request lines arrive whole",
            "FAIL",
            f"a {ECHO_CHARS}-character request failed: {exc}",
        )
    if readiness is not None:
        yield _echo_row(readiness, echo)
        yield _language_row(readiness)
        yield _culture_row(readiness)
        if isinstance(shell, SshShell):
            yield _default_shell_row(readiness)
        else:
            yield _wsman_row(readiness)
    yield from _read_only_operations(lab, host, name, timeout_s)
    yield _elevation_row(host, timeout_s)
    yield _bitlocker_row(host, timeout_s)
    yield from _certificate_rows(lab, host, timeout_s)
    yield _host_mode_row(shell)


def _elevation_row(host: WindowsHost, timeout_s: float) -> Row:
    name = "elevated (full administrator token)"
    try:
        state = token_state(host, deadline=Deadline.after(timeout_s, "token_state"))
    except HarnessError as exc:
        return (name, "FAIL", str(exc))
    if state.elevated:
        return (name, "OK", f"{state.user}")
    policy = state.local_account_token_filter_policy
    return (
        name,
        "FAIL",
        f"{state.user} has a filtered token: bcdedit, verifier and pnputil would fail. Use the "
        "built-in Administrator or set LocalAccountTokenFilterPolicy=1 (now: "
        f"{policy if policy is not None else 'absent'})",
    )


def _bitlocker_row(host: WindowsHost, timeout_s: float) -> Row:
    name = "BitLocker on the OS volume"
    try:
        state = bitlocker_state(host, deadline=Deadline.after(timeout_s, "bitlocker_state"))
    except HarnessError as exc:
        return (name, "FAIL", str(exc))
    if not state.available:
        return (name, "OK", "not available (no BitLocker on this edition or volume)")
    if state.protected:
        return (
            name,
            "OK",
            f"protection on ({', '.join(state.key_protectors) or 'no protector listed'}): the "
            "harness suspends it for one reboot before a test-signing or firmware change; keep "
            "the recovery key at hand for the first run",
        )
    return (name, "OK", f"protection {state.protection_status or 'unknown'}")


def _certificate_rows(lab: Lab, host: WindowsHost, timeout_s: float) -> Iterator[Row]:
    """Each test-signing certificate the lab's packages name, in Root and TrustedPublisher?"""
    thumbprints: dict[str, str] = {}
    for pkg_name, pkg in lab.driver_packages.items():
        for cert in pkg.test_certificates:
            try:
                der = lab.resolve_path(cert).read_bytes()
            except OSError as exc:
                yield ("test-signing certificates", "FAIL", f"{pkg_name}: {cert}: {exc}")
                return
            thumbprints.setdefault(hashlib.sha1(der).hexdigest().upper(), pkg_name)
    if not thumbprints:
        return
    name = "test-signing certificates"
    try:
        state = certificate_state(
            host, sorted(thumbprints), deadline=Deadline.after(timeout_s, "certificates")
        )
    except HarnessError as exc:
        yield (name, "FAIL", str(exc))
        return
    if not state.missing:
        yield (name, "OK", f"{len(thumbprints)} in LocalMachine Root and TrustedPublisher")
        return
    missing = "; ".join(
        f"{thumbprints.get(t, '?')} {t[:8]}… not in {'/'.join(stores)}"
        for t, stores in sorted(state.missing.items())
    )
    yield (
        name,
        "WARN",
        f"{missing}: the harness imports them before it installs the package (pnputil would "
        "otherwise wait on a session-0 dialog)",
    )


def _echo_row(r: dict[str, Any], echo: str) -> Row:
    name = "long request lines arrive whole"
    obj = JsonObject("lab_readiness", r)
    length, digest = obj.integer("echo_length"), obj.text("echo_sha256")
    if length == len(echo) and digest == hashlib.sha256(echo.encode()).hexdigest():
        return (name, "OK", f"{len(echo)} characters intact (stdin in pipe mode)")
    return (
        name,
        "FAIL",
        f"sent {len(echo)} characters, the host read {length}: stdin is cutting lines "
        "(a WinRM command started with console-mode stdin reads at most 254 characters)",
    )


def _language_row(r: dict[str, Any]) -> Row:
    obj = JsonObject("lab_readiness", r)
    version, mode = obj.text("ps_version"), obj.text("language_mode")
    name = "Windows PowerShell 5.1, FullLanguage"
    if mode != "FullLanguage":
        return (
            name,
            "FAIL",
            f"language mode {mode} (PowerShell {version}): Add-Type and the persistent host are "
            "refused; exempt the lab account from WDAC/AppLocker script enforcement",
        )
    if not version.startswith("5.1"):
        return (name, "WARN", f"PowerShell {version}: the operations are written for 5.1")
    return (name, "OK", f"PowerShell {version}, {mode}")


def _culture_row(r: dict[str, Any]) -> Row:
    obj = JsonObject("lab_readiness", r)
    ui, fmt = obj.text("ui_culture"), obj.text("culture")
    detail = f"display language {ui or 'invariant'}, formats {fmt or 'invariant'}"
    if not ui.lower().startswith("en"):
        detail += " (the operations read locale-free sources; tool output is localized)"
    return ("display language", "OK", detail)


def _default_shell_row(r: dict[str, Any]) -> Row:
    shell = JsonObject("lab_readiness", r).otext("openssh_default_shell")
    name = "OpenSSH DefaultShell"
    if not shell or shell.lower().endswith("cmd.exe"):
        return (name, "OK", shell or "not set: cmd.exe")
    exe = shell.replace("/", "\\").rsplit("\\", 1)[-1].lower()
    if exe in ("powershell.exe", "pwsh.exe"):
        return (
            name,
            "OK",
            f"{shell}: the SSH transport runs each line through cmd.exe /c and keeps its exit "
            "code with '; exit $LASTEXITCODE' (found by a probe on each connection); the "
            "persistent host's stdin passes through this outer shell (checked by the "
            "PowerShell host row)",
        )
    return (
        name,
        "WARN",
        f"{shell}: the SSH transport handles cmd.exe and PowerShell as DefaultShell only; "
        "set it to one of them (or remove the value: cmd.exe)",
    )


def _wsman_row(r: dict[str, Any]) -> Row:
    wsman = r.get("wsman") if isinstance(r.get("wsman"), dict) else {}
    assert isinstance(wsman, dict)
    envelope = wsman.get("max_envelope_kb")
    quota = wsman.get("max_operations_per_user")
    idle = wsman.get("idle_timeout_ms")
    detail = (
        f"MaxEnvelopeSizekb {envelope if envelope is not None else '?'}, "
        f"MaxConcurrentOperationsPerUser {quota if quota is not None else '?'}, "
        f"IdleTimeout {f'{idle / 1000:g} s' if isinstance(idle, int) else '?'}"
    )
    name = "WinRM limits"
    if isinstance(envelope, int) and envelope < LARGEST_SEND_KB:
        return (
            name,
            "FAIL",
            f"{detail}: the largest request is about {LARGEST_SEND_KB} KB "
            f"(Set-Item WSMan:\\localhost\\MaxEnvelopeSizekb 500)",
        )
    if isinstance(quota, int) and quota < MIN_OPERATIONS_PER_USER:
        return (name, "WARN", f"{detail}: a low quota makes the harness recycle shells often")
    if envelope is None or quota is None:
        return (name, "WARN", f"{detail}: the WSMan: drive could not be read")
    return (name, "OK", detail)


def _host_mode_row(shell: WinRMShell | SshShell) -> Row:
    name = "PowerShell host"
    starts = shell.powershell_starts
    if shell.persistent_powershell:
        return (name, "OK", f"persistent host ({starts} powershell.exe for every call so far)")
    return (
        name,
        "WARN",
        f"per-call PowerShell ({starts} powershell.exe started): slower, one process per call",
    )


def _read_only_operations(
    lab: Lab, host: WindowsHost, name: str, timeout_s: float
) -> Iterator[Row]:
    dut = lab.duts[name]
    since = datetime.now(timezone.utc) - timedelta(days=1)
    hardware_id = next(
        (lab.devices[p.device].hardware_id for p in dut.ports.values()), "PCI\\VEN_FFFF"
    )
    calls: list[tuple[str, Callable[[], object]]] = [
        ("host_facts", lambda: host.host_facts(timeout_s=timeout_s)),
        ("dmaguard_get", lambda: host.dmaguard_get(timeout_s=timeout_s)),
        ("driver_list", lambda: host.list_drivers(timeout_s=timeout_s)),
        ("verifier_state", lambda: host.verifier_state(timeout_s=timeout_s)),
        ("session_state", lambda: host.session_state(timeout_s=timeout_s)),
        ("autologon_state", lambda: host.autologon_state(timeout_s=timeout_s)),
        ("pnp_devices", lambda: host.pnp_devices(hardware_id, False, timeout_s=timeout_s)),
        ("crash_evidence", lambda: host.crash_evidence(since, timeout_s=timeout_s)),
    ]
    vendor = dut.kdp.firmware_control
    if vendor != "none":
        calls.append(
            ("kdp_firmware_get", lambda: host.kdp_firmware_get(vendor, timeout_s=timeout_s))
        )
    failed: list[str] = []
    took: list[str] = []
    for op, call in calls:
        started = time.monotonic()
        try:
            call()
        except HarnessError as exc:
            failed.append(f"{op}: {exc}")
            continue
        took.append(f"{op} {time.monotonic() - started:.1f}s")
    if failed:
        return iter([("read-only operations", "FAIL", "; ".join(failed))])
    return iter([("read-only operations", "OK", ", ".join(took))])
