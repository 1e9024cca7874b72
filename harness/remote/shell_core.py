"""What the WinRM and SSH shells share: the `RemoteShell` calls, their deadlines, the choice
between the persistent PowerShell host and per-call PowerShell (with the fallback when the host
cannot start), and the transcript record of every command, finished or failed.

A transport subclasses `TransportShell` and supplies how one native command line runs
(`_run_native`), how one per-call PowerShell script runs (`_run_per_call`), the persistent host
(`_run_hosted`, from its `*HostedPowerShell` mixin), where it is (`_where`) and `close`.

>>> class Echo(TransportShell):                                              # doctest: +SKIP
...     _where = "echo"
...     def _run_native(self, command, args, shown, dl):
...         return self._recorded(shown, lambda out, err: out.append(shown.encode()) or 0)
"""

from __future__ import annotations

import abc
import dataclasses
import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from harness.errors import InfrastructureError
from harness.remote.base import CommandResult, call_deadline
from harness.remote.deadline import Deadline
from harness.remote.powershell import clean_clixml
from harness.remote.transcript import Redactor, Transcript

log = logging.getLogger(__name__)

#: Fills `out` and `err` with the command's raw output and returns its exit code.
Body = Callable[[list[bytes], list[bytes]], int]


class HostUnavailable(InfrastructureError):
    """The persistent host ended before its first statement ran: it cannot start on this host."""


def _joined(chunks: list[bytes]) -> bytes:
    return b"".join(chunks)


class TransportShell(abc.ABC):
    """The common part of `WinRMShell` and `SshShell` (a `RemoteShell` each)."""

    transcript: Transcript
    persistent_powershell: bool
    powershell_starts: int

    def _init_shell(
        self,
        *,
        transcript: Transcript | None,
        secrets: Sequence[str],
        persistent_powershell: bool,
    ) -> None:
        self.persistent_powershell = persistent_powershell
        self.powershell_starts = 0  # powershell.exe processes this shell has started
        self.transcript = transcript or Transcript(Redactor())
        for s in secrets:
            if s:
                self.transcript.redactor.add(s)
        self._lock = threading.Lock()

    # -- what a transport supplies ---------------------------------------------------------------
    @property
    @abc.abstractmethod
    def _where(self) -> str:
        """The host as the errors name it (URL, `[host]:port`)."""

    @abc.abstractmethod
    def _run_native(self, command: str, args: list[str], shown: str, dl: Deadline) -> CommandResult:
        """One native command line."""

    @abc.abstractmethod
    def _run_per_call(self, script: str, dl: Deadline) -> CommandResult:
        """One script in a powershell.exe of its own."""

    @abc.abstractmethod
    def _run_hosted(self, script: str, dl: Deadline) -> CommandResult:
        """One script in the persistent host (`HostUnavailable` when it cannot start)."""

    @abc.abstractmethod
    def close(self) -> None: ...

    # -- RemoteShell -----------------------------------------------------------------------------
    def run(
        self,
        command: str,
        args: Sequence[str] = (),
        *,
        timeout_s: float,
        deadline: Deadline | None = None,
    ) -> CommandResult:
        shown = " ".join([command, *args])
        dl = call_deadline(
            timeout_s, deadline, f"remote command {self.transcript.redact_command(shown)!r}"
        )
        return self._run_native(command, list(args), shown, dl)

    def run_powershell(
        self, script: str, *, timeout_s: float, deadline: Deadline | None = None
    ) -> CommandResult:
        what = f"PowerShell script ({len(script)} characters) on {self._where}"
        dl = call_deadline(timeout_s, deadline, what)
        if self.persistent_powershell:
            try:
                return self._run_hosted(script, dl)
            except HostUnavailable as exc:  # nothing ran: per-call from now on (transcript)
                self._fall_back(str(exc))
        self.powershell_starts += 1
        result = self._run_per_call(script, dl)
        return dataclasses.replace(result, stderr=clean_clixml(result.stderr))

    def __enter__(self) -> Any:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- shared steps ----------------------------------------------------------------------------
    def _fall_back(self, why: str) -> None:
        """The persistent host cannot start on this DUT: use per-call PowerShell from now on."""
        self.persistent_powershell = False
        note = f"{why}; falling back to per-call PowerShell on {self._where}"
        log.warning("%s", note)
        self.transcript.record(
            "persistent PowerShell host",
            exit_code=None,
            stdout="",
            stderr="",
            duration_s=0.0,
            error=note,
        )

    def _recorded(
        self, shown: str, body: Body, *, stdout_of: Callable[[list[bytes]], bytes] = _joined
    ) -> CommandResult:
        """Run `body` under the shell's lock and record it in the transcript, finished or not
        (with what it printed until it failed); its result as the transcript shows it."""
        started = time.monotonic()
        out: list[bytes] = []
        err: list[bytes] = []
        try:
            with self._lock:
                rc = body(out, err)
        except InfrastructureError as exc:
            self.transcript.record(
                shown,
                exit_code=None,
                stdout=stdout_of(out).decode("utf-8", "replace"),
                stderr=b"".join(err).decode("utf-8", "replace"),
                duration_s=time.monotonic() - started,
                error=str(exc),
            )
            raise
        stdout = stdout_of(out).decode("utf-8", "replace")
        stderr = b"".join(err).decode("utf-8", "replace")
        entry = self.transcript.record(
            shown, exit_code=rc, stdout=stdout, stderr=stderr, duration_s=time.monotonic() - started
        )
        return CommandResult(entry.command, rc, stdout, stderr, entry.duration_s)
