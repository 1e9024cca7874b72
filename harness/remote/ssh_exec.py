"""What the SSH transport adds to each exec request for Windows OpenSSH, and what it reads back.

Windows OpenSSH differs from a POSIX sshd in three ways the transport must handle itself:

- **Processes outlive their channel** (Win32-OpenSSH#1751: the job handle is duplicated into the
  child, so closing the channel does not end the process). Every powershell.exe the transport
  starts therefore prints its process id first (`PID_STATEMENT`, read back by `PidReader`), and
  at a deadline the transport ends the process tree over a fresh channel with `kill_line(pid)`
  (`taskkill /PID n /T /F`, documented at
  https://learn.microsoft.com/windows-server/administration/windows-commands/taskkill).
- **Per-call output is in the OEM code page** (ConsoleHost writes with `[Console]::OutputEncoding`,
  which is the OEM code page over SSH, e.g. 437 or 932): each per-call script first sets it to
  UTF-8 without a BOM (`UTF8_STATEMENT`; https://learn.microsoft.com/dotnet/api/system.console.outputencoding).
- **DefaultShell** (`HKLM\\SOFTWARE\\OpenSSH\\DefaultShell`) decides what parses the exec line:
  cmd.exe when unset (`"cmd.exe" /c "<line>"`), else e.g. powershell.exe (`powershell.exe -c
  <line>`), which would parse cmd.exe syntax as PowerShell and turn every non-zero exit code of
  a native program into 1 (about_PowerShell_exe: "-Command ... exit code is 0 when $? is $true
  or 1 when $? is $false"). The transport runs every line through `cmd.exe /c` explicitly and,
  when a probe (`SHELL_PROBE`, `exit /b 0`: rc 0 only in cmd.exe; PowerShell's parser refuses
  `/b`) says the shell is not cmd.exe, appends `; exit $LASTEXITCODE` so the code survives
  (`wrap_line`).

The persistent host's bootstrap gets the PID statement right after its marker line
(`host_bootstrap`); the virtual lab recognises both statements by their exact text.
"""

from __future__ import annotations

import base64
import functools
import re

from harness.remote import ps_host
from harness.remote.powershell import CMD_LINE_BUDGET, PS_PREFIX

UTF8_STATEMENT = "[Console]::OutputEncoding = New-Object System.Text.UTF8Encoding $false"
PID_STATEMENT = "[Console]::Out.Write('#<harness-pid:' + $PID + '>' + [char]13 + [char]10)"
SHELL_PROBE = "exit /b 0"
_PID_LINE = re.compile(rb"^#<harness-pid:(\d+)>\r?\n")
_PID_PREFIX = b"#<harness-pid:"


#: What a per-call powershell.exe runs before its script: UTF-8 output, then its PID.
PER_CALL_PROLOGUE = f"{UTF8_STATEMENT}\r\n{PID_STATEMENT}"


def per_call_script(script: str) -> str:
    """`script` with the per-call prologue before it (as `-EncodedCommand` carries it)."""
    return f"{PER_CALL_PROLOGUE}\r\n{script}"


def wrap_line(line: str, *, cmd_default_shell: bool) -> str:
    """The exec line for `line` (a cmd.exe command line) under the DUT's DefaultShell."""
    if cmd_default_shell:
        return f"cmd.exe /c {line}"
    return f"cmd.exe /c {line}; exit $LASTEXITCODE"


def kill_line(pid: int) -> str:
    """End process `pid` and every process it started (forcefully)."""
    return f"taskkill /PID {int(pid)} /T /F"


@functools.lru_cache(maxsize=1)
def host_bootstrap() -> str:
    """The persistent host's script for SSH: marker, PID statement, then the loop."""
    marker, _, rest = ps_host.bootstrap_script().partition("\r\n")
    return f"{marker}\r\n{PID_STATEMENT}\r\n{rest}"


@functools.lru_cache(maxsize=1)
def host_command_line() -> str:
    """`powershell.exe ... -EncodedCommand <host_bootstrap>`, within the command-line budget."""
    encoded = base64.b64encode(host_bootstrap().encode("utf-16-le")).decode("ascii")
    line = f"{PS_PREFIX} -EncodedCommand {encoded}"
    if len(line) > CMD_LINE_BUDGET:
        raise RuntimeError(f"the persistent host's command line is {len(line)} characters")
    return line


class PidReader:
    """Takes the `#<harness-pid:N>` line off the front of a process's stdout.

    `feed` returns the bytes that follow it (the script's own output); until the whole first
    line has arrived it holds the bytes back. Output that does not start with the line (an
    error before the statement ran) is passed on as it is, with `pid` None.
    """

    def __init__(self) -> None:
        self.pid: int | None = None
        self._head = bytearray()
        self._done = False

    def feed(self, data: bytes) -> bytes:
        if self._done:
            return data
        self._head += data
        head = bytes(self._head)
        m = _PID_LINE.match(head)
        if m is not None:
            self.pid, self._done = int(m.group(1)), True
            self._head.clear()
            return head[m.end() :]
        if _PID_PREFIX.startswith(head[: len(_PID_PREFIX)]) and (
            len(head) < len(_PID_PREFIX) or (b"\n" not in head and len(head) < 64)
        ):
            return b""  # the line may still be on its way
        self._done = True
        self._head.clear()
        return head

    def flush(self) -> bytes:
        """Whatever is held back (the process ended before its first line was complete)."""
        self._done = True
        rest = bytes(self._head)
        self._head.clear()
        return rest
