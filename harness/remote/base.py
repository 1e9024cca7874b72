"""The transport role every remote shell (WinRM, SSH) plays, and the result of one call.

Every call is bounded: `timeout_s` is the call's own budget and `deadline` (optional) the
enclosing one; the call ends by the earlier of the two. Transport trouble raises
`harness.errors.InfrastructureError`, never a test failure; a non-zero exit code is data.

>>> shell: RemoteShell = WinRMShell(settings)                          # doctest: +SKIP
>>> r = shell.run("hostname", timeout_s=30)                            # doctest: +SKIP
>>> r.exit_code, r.stdout                                              # doctest: +SKIP
(0, 'DUT-01\\r\\n')
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

from harness.remote.deadline import Deadline


@dataclass(frozen=True)
class CommandResult:
    """One finished remote command. `command` is redacted (secrets masked, scripts decoded)."""

    command: str
    exit_code: int
    stdout: str
    stderr: str
    duration_s: float

    @property
    def ok(self) -> bool:
        return self.exit_code == 0


class RemoteShell(Protocol):
    """Run commands and PowerShell on one host, survive its reboots."""

    def run(
        self,
        command: str,
        args: Sequence[str] = (),
        *,
        timeout_s: float,
        deadline: Deadline | None = None,
    ) -> CommandResult: ...

    def run_powershell(
        self, script: str, *, timeout_s: float, deadline: Deadline | None = None
    ) -> CommandResult: ...

    def reconnect(self, *, timeout_s: float = 30.0) -> None:
        """Drop the connection and open a new one (after the host rebooted), within
        `timeout_s`."""
        ...

    def close(self) -> None: ...


@runtime_checkable
class FileTransfer(Protocol):
    """A shell with a file channel of its own (SFTP). A shell without one (WinRM) gets files
    through the `file_write` Windows operation (`harness.windows.actions.upload_file`)."""

    #: True when `upload` itself reads the file back and compares it (no separate hash needed).
    verifies_uploads: bool

    def upload(
        self, local: Path, remote: str, *, timeout_s: float, deadline: Deadline | None = None
    ) -> None: ...


def call_deadline(timeout_s: float, deadline: Deadline | None, what: str) -> Deadline:
    """The deadline of one call: its own budget, nested in the enclosing deadline if any."""
    if deadline is None:
        return Deadline.after(timeout_s, what)
    return deadline.child(timeout_s, what)
