"""Procedures over a `WindowsHost`: verified uploads, waiting for a device, one reboot.

Every wait is a poll with backoff inside a `Deadline`. `reboot_and_wait` asks for exactly one
reboot, never returns before the host is back with a later boot time, and checks the crash
evidence of the boot it left:

>>> report = reboot_and_wait(host, Deadline.after(900, "reboot of tb-01"),
...                               down_timeout_s=120, up_timeout_s=600)   # doctest: +SKIP
>>> report.facts.last_boot_utc > report.previous_boot_utc                # doctest: +SKIP
True

A bugcheck found after the reboot raises `DutCrashed` (a `DutError`) with the stop code and its
parameters; a host that does not go down, or does not come back, raises `DutError`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from harness.domain.inf import InfError, package_paths
from harness.errors import ConfigError, DutError, InfrastructureError
from harness.remote.base import FileTransfer, call_deadline
from harness.remote.deadline import Deadline
from harness.steps import step
from harness.windows.polling import DEFAULT_BACKOFF, Backoff, WaitTimeout, poll_until
from harness.windows.results import BugCheck, CrashEvidence, HostFacts, PnpDevice

if TYPE_CHECKING:
    from harness.windows.host import WindowsHost

#: Probing a host that is going down or coming back: a little slower than device polling.
REBOOT_BACKOFF = Backoff(start_s=0.5, factor=1.6, cap_s=5.0)
#: Budget of one "are you still there?" probe while the host goes down.
PROBE_TIMEOUT_S = 10.0


class DutCrashed(DutError):
    """The DUT bugchecked: `bugcheck` is the first one found (all are in `evidence`)."""

    def __init__(self, message: str, *, bugcheck: BugCheck, evidence: CrashEvidence) -> None:
        super().__init__(message)
        self.bugcheck = bugcheck
        self.evidence = evidence


@dataclass(frozen=True)
class RebootReport:
    previous_boot_utc: datetime
    facts: HostFacts  # after the reboot
    evidence: CrashEvidence  # since `previous_boot_utc` (no bugcheck, else DutCrashed)
    down_after_s: float | None  # None: the host was never seen down (it was back already)
    up_after_s: float


# -- uploads -------------------------------------------------------------------------------------
#: Raw bytes per `file_write` call when the shell has no file channel of its own (WinRM): one
#: PowerShell invocation of about 130 KB, fed through stdin, well under MaxEnvelopeSizekb per Send.
UPLOAD_CHUNK = 96 * 1024


@step("local", "remote")
def upload_file(
    host: WindowsHost,
    local: Path,
    remote: str,
    deadline: Deadline | None = None,
    *,
    timeout_s: float | None = None,
) -> None:
    """Upload `local` to `remote`, then make sure the bytes arrived.

    A shell with a file channel of its own (`FileTransfer`: SFTP over SSH) puts the file and
    verifies it itself. Otherwise (WinRM) the file travels in chunks through the `file_write`
    operation, path and data as its parameters (data, never code), and the host's SHA-256 of
    the result is compared with the local file's."""
    budget = host.default_timeout_s if timeout_s is None else timeout_s
    dl = call_deadline(budget, deadline, f"upload of {local.name} to {remote} on {host.name}")
    if isinstance(host.shell, FileTransfer):
        host.shell.upload(local, remote, timeout_s=dl.remaining(), deadline=dl)
        if host.shell.verifies_uploads:
            return
    else:
        _upload_in_chunks(host, local, remote, dl)
    want = hashlib.sha256(local.read_bytes()).hexdigest()
    got = host.file_hash(remote, deadline=dl)
    if not got.exists or got.sha256 != want:
        seen = f"SHA-256 {got.sha256}" if got.exists else "no file"
        raise InfrastructureError(
            f"{host.name}: upload of {local} to {remote} did not arrive intact: "
            f"{seen} on the host, {want} locally"
        )


def _upload_in_chunks(host: WindowsHost, local: Path, remote: str, dl: Deadline) -> None:
    data = local.read_bytes()
    chunks = [data[i : i + UPLOAD_CHUNK] for i in range(0, len(data), UPLOAD_CHUNK)] or [b""]
    size: int | None = None
    for i, chunk in enumerate(chunks):
        try:
            size = host.file_write(remote, chunk, append=i > 0, deadline=dl).size
        except InfrastructureError as exc:
            raise InfrastructureError(
                f"{host.name}: upload of {local} to {remote} failed at chunk "
                f"{i + 1}/{len(chunks)}: {exc}"
            ) from exc
    if size != len(data):
        raise InfrastructureError(
            f"{host.name}: upload of {local} to {remote}: the host reports {size!r} bytes "
            f"written, {len(data)} sent"
        )


def package_files(inf: Path) -> list[Path]:
    """The INF, every `[SourceDisksFiles]` file and the catalog (if present) of a package, each
    inside the package folder (harness.domain.inf.package_paths)."""
    try:
        return package_paths(inf)
    except (OSError, InfError) as exc:
        raise ConfigError(f"cannot read the driver package: {exc}", path=str(inf)) from exc


@step("inf", "remote_dir")
def upload_package(
    host: WindowsHost, inf: Path, remote_dir: str, deadline: Deadline | None = None
) -> str:
    """Upload a driver package (same layout under `remote_dir`); the remote INF path."""
    base = remote_dir.rstrip("\\/")
    remote_inf = ""
    for path in package_files(inf):
        rel = path.relative_to(inf.parent).as_posix().replace("/", "\\")
        target = f"{base}\\{rel}"
        upload_file(host, path, target, deadline)
        if path == inf:
            remote_inf = target
    return remote_inf


# -- waiting for a device ------------------------------------------------------------------------
@step("hardware_id")
def wait_for_device(
    host: WindowsHost,
    hardware_id: str,
    predicate: Callable[[tuple[PnpDevice, ...]], bool],
    deadline: Deadline,
    *,
    poll: Backoff = DEFAULT_BACKOFF,
    present_only: bool = True,
) -> tuple[PnpDevice, ...]:
    """Poll `pnp_devices(hardware_id)` until `predicate(devices)`; those devices.

    Out of time: `WaitTimeout` with the last observation (an `InfrastructureError` if there
    was no observation at all, e.g. the host never answered).
    """

    def devices() -> tuple[PnpDevice, ...]:
        return host.pnp_devices(hardware_id, present_only, deadline=deadline)

    try:
        return poll_until(devices, predicate, deadline=deadline, sleep=host.sleep, backoff=poll)
    except WaitTimeout as timeout:
        if timeout.error is not None and timeout.observations == 0:
            raise timeout.error from timeout.error.__cause__  # it never answered
        shown = ", ".join(_describe(d) for d in timeout.last) or "no device"
        raise WaitTimeout(
            f"{host.name}: {deadline.what}: not reached within {timeout.waited_s:.1f} s "
            f"({timeout.observations} observations of {hardware_id}; last: {shown})",
            last=timeout.last,
            observations=timeout.observations,
            waited_s=timeout.waited_s,
        ) from None


def _describe(d: PnpDevice) -> str:
    state = "started" if d.started else f"{d.status}/problem {d.problem_code}"
    return f"{d.instance_id} {'present' if d.present else 'absent'} {state}"


# -- one reboot ----------------------------------------------------------------------------------
@step("reason")
def reboot_and_wait(
    host: WindowsHost,
    deadline: Deadline,
    *,
    down_timeout_s: float,
    up_timeout_s: float,
    reason: str = "dma-lab-harness: conditions need a reboot",
    poll: Backoff = REBOOT_BACKOFF,
) -> RebootReport:
    """Request exactly one reboot, see the host go down and come back with a later boot time,
    then check the crash evidence since the previous boot."""
    old = host.host_facts(deadline=deadline).last_boot_utc
    t0 = deadline.clock()
    try:
        answer = host.reboot_request(reason, deadline=deadline)
    except InfrastructureError:
        answer = None  # the host may have gone down before answering: never ask again
    if answer is not None and not answer.requested:
        raise DutError(f"{host.name}: the reboot request was refused (shutdown.exe failed)")

    down_dl = deadline.child(down_timeout_s, f"{host.name} to go down for its reboot")
    down_after: float | None = None
    facts: HostFacts | None = None
    if _wait_down(host, down_dl, poll):
        down_after = deadline.clock() - t0
    else:  # still answering: unless it rebooted between two probes, it did not reboot
        try:
            facts = host.host_facts(deadline=deadline)
        except InfrastructureError:
            facts = None  # going down just now
        if facts is not None and facts.last_boot_utc <= old:
            raise DutError(
                f"{host.name} did not reboot: still answering with the boot time "
                f"{old:%Y-%m-%d %H:%M:%S}Z {down_timeout_s:.0f} s after the reboot request"
            )
    if facts is None:
        up_dl = deadline.child(up_timeout_s, f"{host.name} to come back from its reboot")
        facts = _wait_up(host, up_dl, poll, old)
    up_after = deadline.clock() - t0

    evidence = host.crash_evidence(host.unseen_since(old), deadline=deadline)
    if evidence.bugchecks:
        first = evidence.bugchecks[0]
        dump = f", dump {first.dump_path}" if first.dump_path else ""
        more = f" (+{len(evidence.bugchecks) - 1} more)" if len(evidence.bugchecks) > 1 else ""
        raise DutCrashed(
            f"{host.name}: {first.describe()} at {first.time_utc:%Y-%m-%d %H:%M:%S}Z{dump}{more}",
            bugcheck=first,
            evidence=evidence,
        )
    return RebootReport(old, facts, evidence, down_after, up_after)


def _wait_down(host: WindowsHost, dl: Deadline, poll: Backoff) -> bool:
    """Probe until the host stops answering (True), or `dl` expires first (False)."""

    def gone() -> bool:
        try:
            host.shell.run("hostname", timeout_s=PROBE_TIMEOUT_S, deadline=dl)
        except InfrastructureError:
            return not dl.expired
        return False

    try:
        return poll_until(gone, bool, deadline=dl, sleep=host.sleep, backoff=poll)
    except WaitTimeout:
        return False


def _wait_up(host: WindowsHost, dl: Deadline, poll: Backoff, old: datetime) -> HostFacts:
    """Reconnect with backoff until `host_facts` shows a boot later than `old`."""

    def facts() -> HostFacts:
        reconnect(host, dl)
        return host.host_facts(deadline=dl)

    def rebooted(f: HostFacts) -> bool:
        return f.last_boot_utc > old

    try:
        return poll_until(
            facts, rebooted, deadline=dl, sleep=host.sleep, backoff=poll, retry_errors=True
        )
    except WaitTimeout as timeout:
        if timeout.last is not None and timeout.error is None:
            raise DutError(
                f"{host.name} did not reboot: it went away but came back with the old boot "
                f"time {old:%Y-%m-%d %H:%M:%S}Z"
            ) from None
        error = timeout.error
        raise DutError(
            f"{host.name} did not come back within {dl.budget_s:.0f} s"
            + (f" (last error: {error})" if error else "")
        ) from None


def reconnect(host: WindowsHost, dl: Deadline) -> None:
    """`shell.reconnect()`, bounded by `dl`."""
    host.shell.reconnect(timeout_s=max(0.1, dl.remaining()))
