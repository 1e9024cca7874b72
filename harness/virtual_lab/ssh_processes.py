"""What Windows OpenSSH's sshd makes of an exec request, and the processes it leaves behind.

The virtual lab's SSH endpoint (`ssh_server`) hands every exec line to `ExecSpawner.spawn`,
which models what real Windows OpenSSH does (w32-doexec.c in PowerShell/openssh-portable):

- **DefaultShell** (`HKLM\\SOFTWARE\\OpenSSH\\DefaultShell`, cmd.exe when unset). cmd.exe gets
  `"C:\\Windows\\System32\\cmd.exe" /c "<line>"`: the two quotes count toward cmd.exe's
  8191-character limit, and a longer line fails with cmd.exe's "The command line is too long."
  A PowerShell DefaultShell gets `powershell.exe -c <line>`: the line is PowerShell, so cmd.exe
  syntax (`exit /b 3`) is a parser error, while `cmd.exe /c <line>` runs the line in cmd.exe;
  and, as about_PowerShell_exe documents for `-Command`, the process's exit code is 0 or 1 from
  `$?` of the last statement (a native program's code 3 becomes 1) unless the line ends with
  `; exit $LASTEXITCODE` or is an `exit N` statement.
- **Processes outlive their channel** (Win32-OpenSSH#1751: the job handle is duplicated into the
  child, so KILL_ON_JOB_CLOSE fires only when the child exits). The endpoint keeps driving a
  process whose channel closed; `taskkill /PID n [/T] /F` (cmd.exe or PowerShell) ends it.
- **Output encoding.** A per-call powershell.exe writes stdout in the OEM code page (437 for
  en-US; ConsoleHost uses `[Console]::OutputEncoding`) unless its script first sets
  `[Console]::OutputEncoding` to UTF-8; the harness's persistent host writes UTF-8 bytes itself.
  Native tools' output is passed as UTF-8 (their code page over SSH is not modelled).
- **A persistent host that cannot start** (quirk `ps_host_blocked`: e.g. an application control
  policy puts powershell.exe in Constrained Language, which refuses the loop's first method
  call): the loop's powershell.exe writes the error as CLIXML and exits 1 before printing its PID;
  one-off scripts run as usual.
- **$PID.** The PowerShell subset of this lab has no `$PID`, so the two prologue statements the
  harness puts first in a script (`UTF8_STATEMENT`, `PID_STATEMENT`; the lab keeps its own copy
  and a test checks it matches the harness's) are carried out here, where the process table is.
"""

from __future__ import annotations

import base64
import binascii
import itertools
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from harness.virtual_lab.winrm.executor import (
    CommandOutput,
    Executor,
    FinishedCommand,
    RunningCommand,
)
from harness.virtual_lab.winrm.ps_host import HOST_BLOCKED

CMD_LINE_LIMIT = 8191  # cmd.exe, counted on what it parses (including OpenSSH's two quotes)
CREATE_PROCESS_LIMIT = 32767  # CreateProcess's lpCommandLine, for a PowerShell DefaultShell
TOO_LONG = "The command line is too long.\r\n"
KEEP_EXIT_CODE = "; exit $LASTEXITCODE"
HOST_MARKER = "# harness-ps-host: v1"
UTF8_STATEMENT = "[Console]::OutputEncoding = New-Object System.Text.UTF8Encoding $false"
PID_STATEMENT = "[Console]::Out.Write('#<harness-pid:' + $PID + '>' + [char]13 + [char]10)"
_CMD_C = re.compile(r"^\s*(?:\S*\\)?cmd(?:\.exe)?\s+/c\s+(.*)$", re.IGNORECASE | re.DOTALL)
_ENCODED = re.compile(r"(?<!\S)(-\w+)\s+(?=(\S+))")
_PS_NAMES = ("powershell", "powershell.exe", "pwsh", "pwsh.exe")
_LOCALE_OEM = {
    "en-us": "cp437",
    "en-gb": "cp850",
    "de-de": "cp850",
    "fr-fr": "cp850",
    "ja-jp": "cp932",
}


def oem_codepage(quirks: dict[str, str | int | bool]) -> str:
    """The DUT's OEM code page: quirk `oem_codepage` (e.g. cp850), else from quirk `locale`."""
    explicit = quirks.get("oem_codepage")
    if explicit:
        return str(explicit)
    return _LOCALE_OEM.get(str(quirks.get("locale", "en-US")).lower(), "cp437")


def is_powershell_shell(default_shell: str | None) -> bool:
    low = (default_shell or "").lower()
    return "powershell" in low or "pwsh" in low


@dataclass
class LabProcess:
    """One process started for an exec request (the powershell.exe or native tool it runs)."""

    pid: int
    parent_pid: int
    command: RunningCommand
    encoding: str = "utf-8"
    report_pid: bool = False  # the script's PID statement: print "#<harness-pid:N>" first
    stdin_prologue: bool = False  # `-Command -`: prologue statements may come first on stdin
    oem: str = "cp437"
    detached: bool = False  # its channel closed; it runs on (Win32-OpenSSH#1751)

    def pid_line(self) -> str:
        return f"#<harness-pid:{self.pid}>\r\n"


@dataclass
class ProcessTable:
    """The endpoint's live processes by PID (Windows PIDs are multiples of 4)."""

    _procs: dict[int, LabProcess] = field(default_factory=dict)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(4200, 8))
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, command: RunningCommand, **kw: object) -> LabProcess:
        with self._lock:
            pid = next(self._ids)
            proc = LabProcess(pid + 4, pid, command, **kw)  # type: ignore[arg-type]
            self._procs[proc.pid] = proc
            return proc

    def remove(self, proc: LabProcess) -> None:
        with self._lock:
            self._procs.pop(proc.pid, None)

    def alive(self) -> list[LabProcess]:
        with self._lock:
            return list(self._procs.values())

    def get(self, pid: int) -> LabProcess | None:
        with self._lock:
            return self._procs.get(pid)

    def taskkill(self, args: list[str]) -> FinishedCommand:
        """`taskkill /PID n [/T] /F` as taskkill.exe answers it."""
        low = [a.lower() for a in args]
        if "/pid" not in low or low.index("/pid") + 1 >= len(low):
            return FinishedCommand(
                "", "ERROR: Invalid syntax. Neither /FI nor /PID nor /IM were specified.\r\n", 1
            )
        raw = args[low.index("/pid") + 1]
        proc = self.get(int(raw)) if raw.isdigit() else None  # an exited process has left
        if proc is None:
            return FinishedCommand("", f'ERROR: The process "{raw}" not found.\r\n', 128)
        if "/f" not in low:
            return FinishedCommand(
                "",
                f"ERROR: The process with PID {raw} could not be terminated.\r\n"
                "Reason: This process can only be terminated forcefully (with /F option).\r\n",
                1,
            )
        proc.command.terminate()
        what = f"(child process of PID {proc.parent_pid}) " if "/t" in low else ""
        return FinishedCommand(
            f"SUCCESS: The process with PID {raw} {what}has been terminated.\r\n", "", 0
        )

    def terminate_all(self) -> None:
        for proc in self.alive():
            proc.command.terminate()


def _decode(b64: str) -> str | None:
    try:
        return base64.b64decode(b64, validate=True).decode("utf-16-le")
    except (binascii.Error, UnicodeDecodeError):
        return None


def take_prologue(lines: list[str]) -> tuple[bool, bool, int]:
    """(utf8 set, PID reported, lines consumed) for the prologue statements at `lines`' start."""
    utf8 = report = False
    n = 0
    for ln in lines:
        text = ln.strip()
        if text == UTF8_STATEMENT and not utf8:
            utf8 = True
        elif text == PID_STATEMENT and not report:
            report = True
        else:
            break
        n += 1
    return utf8, report, n


class ExecSpawner:
    """Starts the process an exec line makes on a Windows OpenSSH server (see module doc)."""

    def __init__(
        self,
        executor: Executor,
        table: ProcessTable,
        default_shell: Callable[[], str | None],
        oem: Callable[[], str],
        host_blocked: Callable[[], bool] = lambda: False,
    ) -> None:
        self._executor = executor
        self._table = table
        self._default_shell = default_shell
        self._oem = oem
        self._host_blocked = host_blocked

    def spawn(self, line: str) -> LabProcess:
        oem = self._oem()
        if is_powershell_shell(self._default_shell()):
            return self._powershell_shell(line, oem)
        if len(line) + 2 > CMD_LINE_LIMIT:  # "<line>" as cmd.exe /c receives it
            return self._table.add(FinishedCommand("", TOO_LONG, 1), oem=oem)
        return self._cmd(line, oem)

    def _powershell_shell(self, line: str, oem: str) -> LabProcess:
        if len(line) > CREATE_PROCESS_LIMIT:
            return self._table.add(
                FinishedCommand("", "The filename or extension is too long.\r\n", 1)
            )
        keep = line.rstrip().endswith(KEEP_EXIT_CODE)
        if keep:
            line = line.rstrip()[: -len(KEEP_EXIT_CODE)]
        m = _CMD_C.match(line)
        if m is not None:
            proc = self._cmd(m.group(1), oem)
            if not keep:
                proc.command = ZeroOrOne(proc.command)
            return proc
        words = line.split()
        if (
            words
            and words[0].lower() == "exit"
            and not all(w.lstrip("-").isdigit() for w in words[1:])
        ):
            message = (
                f"At line:1 char:6\r\n+ {line}\r\n+      ~\r\nYou must provide a value expression "
                "following the '/' operator.\r\n    + CategoryInfo          : ParserError: (:) [], "
                "ParentContainsErrorRecordException\r\n    + FullyQualifiedErrorId : "
                "ExpectedValueExpression\r\n"
            )
            return self._table.add(FinishedCommand("", message, 1), oem=oem)
        proc = self._native(line, oem)
        if not keep and (not words or words[0].lower() != "exit"):
            proc.command = ZeroOrOne(proc.command)
        return proc

    def _cmd(self, line: str, oem: str) -> LabProcess:
        m = _CMD_C.match(line)
        if m is not None:  # cmd.exe /c <inner>: a nested cmd.exe parses <inner>
            inner = m.group(1)
            if len(inner) > CMD_LINE_LIMIT:
                return self._table.add(FinishedCommand("", TOO_LONG, 1), oem=oem)
            return self._cmd(inner, oem)
        return self._native(line, oem)

    def _native(self, line: str, oem: str) -> LabProcess:
        words = line.split()
        name = words[0].lower() if words else ""
        if name.removesuffix(".exe") == "taskkill":
            return self._table.add(self._table.taskkill(words[1:]), oem=oem)
        if name.split("\\")[-1] not in _PS_NAMES:
            return self._table.add(self._executor.start(line, [], skip_cmd_shell=False), oem=oem)
        m = next(
            (
                f
                for f in _ENCODED.finditer(line)
                if f.group(1).lower() == "-ec" or "-encodedcommand".startswith(f.group(1).lower())
            ),
            None,
        )
        script = _decode(m.group(2)) if m is not None else None
        if m is None or script is None:  # `-Command -` (or a bad encoding the executor reports)
            command = self._executor.start(line, [], skip_cmd_shell=False)
            return self._table.add(command, encoding=oem, stdin_prologue=True, oem=oem)
        lines = script.split("\n")
        host = lines[0].strip().lstrip("\ufeff") == HOST_MARKER
        if host and self._host_blocked():
            return self._table.add(FinishedCommand("", HOST_BLOCKED, 1), oem=oem)
        skip = 1 if host else 0
        utf8, report, n = take_prologue(lines[skip:])
        if n:
            kept = "\n".join(lines[:skip] + lines[skip + n :])
            b64 = base64.b64encode(kept.encode("utf-16-le")).decode("ascii")
            line = line[: m.start(2)] + b64 + line[m.end(2) :]
        command = self._executor.start(line, [], skip_cmd_shell=False)
        encoding = "utf-8" if host or utf8 else oem  # the host writes UTF-8 bytes itself
        return self._table.add(command, encoding=encoding, report_pid=report, oem=oem)


class StdinPrologue:
    """For `-Command -`: takes the prologue statements off the start of stdin, line by line."""

    def __init__(self, proc: LabProcess) -> None:
        self._proc = proc
        self._buf = ""
        self.active = proc.stdin_prologue

    def feed(self, text: str, *, final: bool) -> tuple[str, bool, bool]:
        """(text to pass on, switch stdout to UTF-8, report the PID now)."""
        if not self.active:
            return text, False, False
        self._buf += text
        utf8 = report = False
        while True:
            eol = self._buf.find("\n")
            if eol < 0:
                if final:
                    break
                return "", utf8, report
            u, r, n = take_prologue([self._buf[:eol]])
            if n == 0:
                break
            utf8, report = utf8 or u, report or r
            self._buf = self._buf[eol + 1 :]
        self.active = False
        rest, self._buf = self._buf, ""
        return rest, utf8, report


class ZeroOrOne:
    """A native program under `powershell.exe -c`: the process's exit code is 0 or 1."""

    def __init__(self, inner: RunningCommand) -> None:
        self.inner = inner

    def poll(self) -> CommandOutput:
        out = self.inner.poll()
        if out.exit_code in (None, 0):
            return out
        return CommandOutput(out.stdout, out.stderr, 1)

    def wait(self, timeout_s: float) -> None:
        self.inner.wait(timeout_s)

    def write_stdin(self, data: str, *, end: bool) -> None:
        self.inner.write_stdin(data, end=end)

    def terminate(self) -> None:
        self.inner.terminate()
