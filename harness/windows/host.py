"""`WindowsHost`: one typed method per Windows operation (docs/windows-operations.md) on one DUT.

Each method builds the operation's invocation (`OperationCatalog.build_invocation`), runs it
through the `RemoteShell` within its own timeout nested in the caller's deadline, and returns
the typed result (`harness.windows.results`). A transport failure, a script that threw or an
answer of the wrong shape is an `InfrastructureError` naming the operation and the DUT. The
transport records every call in its transcript as `op NAME {params}`, secrets masked; a host
given its own `transcript` (e.g. one per scenario step) records there too.

Every operation is a report step (`harness.steps.step`: `tb-01: pnp_devices('PCI\\VEN_...')`)
once the host has a step sink. The multi-step procedures (verified uploads, waiting for a
device, a reboot) are functions of a host in `harness.windows.actions`, steps too.

>>> host = WindowsHost(shell, name="tb-01", catalog=OperationCatalog())   # doctest: +SKIP
>>> host.host_facts().build                                             # doctest: +SKIP
22631
>>> reboot_and_wait(host, Deadline.after(900, "reboot"), down_timeout_s=120,
...                 up_timeout_s=600)                                   # doctest: +SKIP
"""

from __future__ import annotations

import base64
import time
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, Literal

from harness.errors import InfrastructureError
from harness.remote.base import RemoteShell, call_deadline
from harness.remote.deadline import Deadline
from harness.remote.transcript import Redactor, Transcript
from harness.steps import Stepping, step
from harness.windows.ops import OperationCatalog, parse_result
from harness.windows.polling import Backoff, Sleep, WaitTimeout
from harness.windows.results import (
    AutologonState,
    CommandOutput,
    CrashEvidence,
    CrashKey,
    DmaGuardChange,
    DriverInfo,
    FileHash,
    FileWritten,
    FirmwareKdp,
    FirmwareKdpChange,
    HostFacts,
    InstallResult,
    ParseCheck,
    PnpDevice,
    RebootRequest,
    ServiceDmaCompat,
    SessionInfo,
    SignatureInfo,
    StorageProbeResult,
    ToolRun,
    VerifierState,
)
from harness.windows.shape import JsonObject, format_utc

__all__ = ["Backoff", "WaitTimeout", "WindowsHost"]

VerifierMode = Literal["persistent", "volatile", "reset"]
FirmwareVendor = Literal["lenovo-wmi", "dell-wmi"]
#: crash_evidence: the longest the op waits for WER's event 1001 (docs/windows-operations.md).
CRASH_REPORT_WAIT_S = 40.0


class WindowsHost(Stepping):
    """The Windows operations of one DUT over one `RemoteShell`."""

    def __init__(
        self,
        shell: RemoteShell,
        *,
        name: str,
        catalog: OperationCatalog,
        transcript: Transcript | None = None,
        redactor: Redactor | None = None,
        default_timeout_s: float = 60,
        sleep: Sleep = time.sleep,
    ) -> None:
        self.shell = shell
        self.name = name
        self.catalog = catalog
        self.transcript = transcript
        self.default_timeout_s = default_timeout_s
        self.crash_seen_until: datetime | None = None  # newest crash event reported so far
        self._crashes_reported: set[CrashKey] = set()  # stop code and parameters, as reported
        self.sleep = sleep
        shell_transcript = getattr(shell, "transcript", None)
        self._shell_transcript = (
            shell_transcript if isinstance(shell_transcript, Transcript) else None
        )
        # Every redactor that may see this host's text gets the secrets the host learns.
        candidates = [redactor, transcript.redactor if transcript is not None else None]
        if self._shell_transcript is not None:
            candidates.append(self._shell_transcript.redactor)
        self._redactors: list[Redactor] = []
        for r in candidates:
            if r is not None and all(r is not known for known in self._redactors):
                self._redactors.append(r)
        if not self._redactors:
            self._redactors.append(Redactor())
        self.redactor = self._redactors[0]

    def __repr__(self) -> str:
        return f"WindowsHost({self.name!r})"

    # -- plumbing --------------------------------------------------------------------------------
    def add_secret(self, secret: str) -> None:
        """Mask `secret` in every transcript and error this host produces from now on."""
        for r in self._redactors:
            r.add(secret)

    def redact(self, text: str) -> str:
        for r in self._redactors:
            text = r.redact(text)
        return text

    @step("name")
    def call(
        self,
        name: str,
        params: Mapping[str, Any],
        *,
        deadline: Deadline | None = None,
        timeout_s: float | None = None,
    ) -> dict[str, Any]:
        """Run operation `name` with `params`; its raw result object."""
        budget = self.default_timeout_s if timeout_s is None else timeout_s
        dl = call_deadline(budget, deadline, f"operation {name} on {self.name}")
        script = self.catalog.build_invocation(name, params)
        started = time.monotonic()
        try:
            result = self.shell.run_powershell(script, timeout_s=dl.remaining(), deadline=dl)
        except InfrastructureError as exc:
            self._record(script, None, "", "", time.monotonic() - started, str(exc))
            raise InfrastructureError(self.redact(f"{self.name}: operation {name}: {exc}")) from exc
        self._record(script, result.exit_code, result.stdout, result.stderr, result.duration_s)
        try:
            return parse_result(name, result)
        except InfrastructureError as exc:
            raise InfrastructureError(self.redact(f"{self.name}: {exc}")) from exc

    def _record(
        self,
        script: str,
        exit_code: int | None,
        stdout: str,
        stderr: str,
        duration_s: float,
        error: str | None = None,
    ) -> None:
        if self.transcript is None or self.transcript is self._shell_transcript:
            return  # the transport already recorded this call there
        self.transcript.record(
            script,
            exit_code=exit_code,
            stdout=stdout,
            stderr=stderr,
            duration_s=duration_s,
            error=error,
        )

    # -- host and files --------------------------------------------------------------------------
    @step()
    def host_facts(
        self, *, deadline: Deadline | None = None, timeout_s: float | None = None
    ) -> HostFacts:
        return HostFacts.from_json(
            "host_facts", self.call("host_facts", {}, deadline=deadline, timeout_s=timeout_s)
        )

    @step("path")
    def file_write(
        self,
        path: str,
        data: bytes,
        *,
        append: bool = False,
        deadline: Deadline | None = None,
        timeout_s: float | None = None,
    ) -> FileWritten:
        params = {
            "path": path,
            "mode": "append" if append else "create",
            "data_base64": base64.b64encode(data).decode("ascii"),
        }
        d = self.call("file_write", params, deadline=deadline, timeout_s=timeout_s)
        return FileWritten.from_json("file_write", d)

    @step("path")
    def file_hash(
        self, path: str, *, deadline: Deadline | None = None, timeout_s: float | None = None
    ) -> FileHash:
        d = self.call("file_hash", {"path": path}, deadline=deadline, timeout_s=timeout_s)
        return FileHash.from_json("file_hash", d)

    @step()
    def parse_check(
        self,
        scripts: Mapping[str, str],
        *,
        deadline: Deadline | None = None,
        timeout_s: float | None = None,
    ) -> ParseCheck:
        d = self.call(
            "ps_parse", {"scripts": dict(scripts)}, deadline=deadline, timeout_s=timeout_s
        )
        return ParseCheck.from_json("ps_parse", d)

    @step("cmd")
    def run_command(
        self, cmd: str, *, deadline: Deadline | None = None, timeout_s: float | None = None
    ) -> CommandOutput:
        d = self.call("command_run", {"command": cmd}, deadline=deadline, timeout_s=timeout_s)
        return CommandOutput.from_json("command_run", d)

    # -- driver packages -------------------------------------------------------------------------
    @step("paths", "expected_signer")
    def driver_signature(
        self,
        paths: Sequence[str],
        expected_signer: str,
        *,
        deadline: Deadline | None = None,
        timeout_s: float | None = None,
    ) -> tuple[SignatureInfo, ...]:
        params = {"paths": list(paths), "expected_signer": expected_signer}
        d = self.call("driver_signature", params, deadline=deadline, timeout_s=timeout_s)
        return SignatureInfo.list_from_json("driver_signature", d)

    @step("inf_path")
    def install_driver(
        self, inf_path: str, *, deadline: Deadline | None = None, timeout_s: float | None = None
    ) -> InstallResult:
        d = self.call(
            "driver_install", {"inf_path": inf_path}, deadline=deadline, timeout_s=timeout_s
        )
        return InstallResult.from_json("driver_install", d)

    @step("published_name")
    def uninstall_driver(
        self,
        published_name: str,
        *,
        deadline: Deadline | None = None,
        timeout_s: float | None = None,
    ) -> InstallResult:
        params = {"published_name": published_name}
        d = self.call("driver_uninstall", params, deadline=deadline, timeout_s=timeout_s)
        return InstallResult.from_json("driver_uninstall", d)

    @step()
    def list_drivers(
        self, *, deadline: Deadline | None = None, timeout_s: float | None = None
    ) -> tuple[DriverInfo, ...]:
        d = self.call("driver_list", {}, deadline=deadline, timeout_s=timeout_s)
        return DriverInfo.list_from_json("driver_list", d)

    @step("service")
    def service_dma_compat(
        self, service: str, *, deadline: Deadline | None = None, timeout_s: float | None = None
    ) -> ServiceDmaCompat:
        d = self.call(
            "service_dma_compat", {"service": service}, deadline=deadline, timeout_s=timeout_s
        )
        return ServiceDmaCompat.from_json("service_dma_compat", d)

    # -- Driver Verifier, DMAGuard, firmware, test signing ---------------------------------------
    @step()
    def verifier_state(
        self, *, deadline: Deadline | None = None, timeout_s: float | None = None
    ) -> VerifierState:
        d = self.call("verifier_state", {}, deadline=deadline, timeout_s=timeout_s)
        return VerifierState.from_json("verifier_state", d)

    @step("mode", "flags", "drivers")
    def set_verifier(
        self,
        mode: VerifierMode,
        flags: int,
        drivers: Sequence[str],
        *,
        deadline: Deadline | None = None,
        timeout_s: float | None = None,
    ) -> ToolRun:
        params = {"mode": mode, "flags": flags, "drivers": list(drivers)}
        d = self.call("verifier_set", params, deadline=deadline, timeout_s=timeout_s)
        return ToolRun.from_json("verifier_set", d)

    @step()
    def dmaguard_get(
        self, *, deadline: Deadline | None = None, timeout_s: float | None = None
    ) -> int | None:
        d = self.call("dmaguard_get", {}, deadline=deadline, timeout_s=timeout_s)
        return JsonObject("dmaguard_get", d).ointeger("policy")

    @step("policy")
    def dmaguard_set(
        self,
        policy: int | None,
        *,
        deadline: Deadline | None = None,
        timeout_s: float | None = None,
    ) -> DmaGuardChange:
        d = self.call("dmaguard_set", {"policy": policy}, deadline=deadline, timeout_s=timeout_s)
        return DmaGuardChange.from_json("dmaguard_set", d)

    @step("vendor")
    def kdp_firmware_get(
        self,
        vendor: FirmwareVendor,
        *,
        deadline: Deadline | None = None,
        timeout_s: float | None = None,
    ) -> FirmwareKdp:
        d = self.call(
            "kdp_firmware_get", {"vendor": vendor}, deadline=deadline, timeout_s=timeout_s
        )
        return FirmwareKdp.from_json("kdp_firmware_get", d)

    @step("vendor", "enabled")
    def kdp_firmware_set(
        self,
        vendor: FirmwareVendor,
        enabled: bool,
        *,
        deadline: Deadline | None = None,
        timeout_s: float | None = None,
    ) -> FirmwareKdpChange:
        params = {"vendor": vendor, "enabled": enabled}
        d = self.call("kdp_firmware_set", params, deadline=deadline, timeout_s=timeout_s)
        return FirmwareKdpChange.from_json("kdp_firmware_set", d)

    @step("enabled")
    def set_test_signing(
        self, enabled: bool, *, deadline: Deadline | None = None, timeout_s: float | None = None
    ) -> ToolRun:
        d = self.call(
            "test_signing_set", {"enabled": enabled}, deadline=deadline, timeout_s=timeout_s
        )
        return ToolRun.from_json("test_signing_set", d)

    # -- session ---------------------------------------------------------------------------------
    @step()
    def session_state(
        self, *, deadline: Deadline | None = None, timeout_s: float | None = None
    ) -> SessionInfo:
        d = self.call("session_state", {}, deadline=deadline, timeout_s=timeout_s)
        return SessionInfo.from_json("session_state", d)

    @step()
    def lock(self, *, deadline: Deadline | None = None, timeout_s: float | None = None) -> bool:
        """Request a console lock; True if the request was made (poll `session_state`)."""
        d = self.call("session_lock", {}, deadline=deadline, timeout_s=timeout_s)
        return JsonObject("session_lock", d).flag("requested")

    @step()
    def sign_out(self, *, deadline: Deadline | None = None, timeout_s: float | None = None) -> bool:
        """Request a sign-out of the console user; True if the request was made."""
        d = self.call("session_signout", {}, deadline=deadline, timeout_s=timeout_s)
        return JsonObject("session_signout", d).flag("requested")

    @step("enabled", "user")
    def set_autologon(
        self,
        enabled: bool,
        *,
        user: str | None = None,
        domain: str | None = None,
        password: str | None = None,
        deadline: Deadline | None = None,
        timeout_s: float | None = None,
    ) -> bool:
        """Configure Winlogon autologon; the password is masked everywhere before it travels."""
        if password:
            self.add_secret(password)
        params = {"enabled": enabled, "user": user, "domain": domain, "password": password}
        d = self.call("autologon_set", params, deadline=deadline, timeout_s=timeout_s)
        return JsonObject("autologon_set", d).flag("enabled")

    @step()
    def autologon_state(
        self, *, deadline: Deadline | None = None, timeout_s: float | None = None
    ) -> AutologonState:
        """Winlogon autologon as the registry has it (read-only; no password travels)."""
        d = self.call("autologon_state", {}, deadline=deadline, timeout_s=timeout_s)
        return AutologonState.from_json("autologon_state", d)

    # -- PnP -------------------------------------------------------------------------------------
    @step("hardware_id", "present_only")
    def pnp_devices(
        self,
        hardware_id: str,
        present_only: bool = True,
        *,
        deadline: Deadline | None = None,
        timeout_s: float | None = None,
    ) -> tuple[PnpDevice, ...]:
        params = {"hardware_id": hardware_id, "present_only": present_only}
        d = self.call("pnp_devices", params, deadline=deadline, timeout_s=timeout_s)
        return PnpDevice.list_from_json("pnp_devices", d)

    @step()
    def pnp_rescan(
        self, *, deadline: Deadline | None = None, timeout_s: float | None = None
    ) -> int:
        d = self.call("pnp_rescan", {}, deadline=deadline, timeout_s=timeout_s)
        return JsonObject("pnp_rescan", d).integer("exit_code")

    # -- reboot, crash evidence, probes ----------------------------------------------------------
    @step("reason")
    def reboot_request(
        self, reason: str, *, deadline: Deadline | None = None, timeout_s: float | None = None
    ) -> RebootRequest:
        """Ask for ONE restart (use `reboot_and_wait`, which also waits and checks for crashes)."""
        d = self.call("reboot_request", {"reason": reason}, deadline=deadline, timeout_s=timeout_s)
        return RebootRequest.from_json("reboot_request", d)

    @step("since_utc")
    def crash_evidence(
        self,
        since_utc: datetime,
        *,
        deadline: Deadline | None = None,
        timeout_s: float | None = None,
    ) -> CrashEvidence:
        # The op waits (polling) for WER's event 1001 when Kernel-Power 41 or a new dump shows a
        # crash without it: at most half of this call's budget, so the answer comes in time.
        budget = self.default_timeout_s if timeout_s is None else timeout_s
        if deadline is not None:
            budget = min(budget, deadline.remaining())
        wait_s = round(max(0.0, min(CRASH_REPORT_WAIT_S, budget / 2)), 1)
        params = {"since_utc": format_utc(since_utc), "report_wait_s": wait_s}
        d = self.call("crash_evidence", params, deadline=deadline, timeout_s=timeout_s)
        evidence = CrashEvidence.from_json("crash_evidence", d)
        times = [b.time_utc for b in evidence.bugchecks] + list(evidence.unexpected_shutdowns)
        if times and (self.crash_seen_until is None or max(times) > self.crash_seen_until):
            self.crash_seen_until = max(times)
        evidence = evidence.without_late_reports(self._crashes_reported)
        self._crashes_reported.update(b.key for b in evidence.bugchecks)
        self._crashes_reported.update(b.key for b in evidence.shutdown_bugchecks)
        return evidence

    def unseen_since(self, since_utc: datetime) -> datetime:
        """`since_utc`, moved past every crash event already reported by `crash_evidence`.

        Windows logs event 1001 after the boot that follows a bugcheck, so "since the previous
        boot" alone would report one crash again at the next reboot.
        """
        seen = self.crash_seen_until
        if seen is None or seen < since_utc:
            return since_utc
        return seen + timedelta(milliseconds=1)

    @step("instance_id", "volume_label", "size_mib")
    def storage_probe(
        self,
        instance_id: str,
        volume_label: str,
        size_mib: int,
        *,
        deadline: Deadline | None = None,
        timeout_s: float | None = None,
    ) -> StorageProbeResult:
        params = {"instance_id": instance_id, "volume_label": volume_label, "size_mib": size_mib}
        d = self.call("storage_probe", params, deadline=deadline, timeout_s=timeout_s)
        return StorageProbeResult.from_json("storage_probe", d)
