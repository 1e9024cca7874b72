"""A small built-in `Executor` for tests: a few cmd.exe commands and a tiny PowerShell.

cmd.exe: `hostname`, `whoami`, `echo ...`, `exit N` (`exit /b N`), `more` (copies stdin to stdout
when stdin ends). PowerShell: `powershell[.exe] ... -EncodedCommand <base64 UTF-16LE>` or
`... -Command -` (script read from stdin until it ends); the harness's persistent host loop
(`ps_host.PsHostLoop`) runs each of its scripts with the same subset. Every powershell.exe start
takes `powershell_start_s` (default 0: a test executor). The PowerShell subset: `Write-Output`,
`Write-Host`, `Write-Error`, `throw`, `exit N`, `hostname`, `whoami`, comments, `;` and newlines,
and `Start-Sleep -Seconds N` / `-Milliseconds N`, which takes *simulated* time: the command stays
Running until its deadline and is only polled. Unknown PowerShell terms are errors (rc 1 at the
end); unknown cmd commands fail like cmd.exe.

`-Command -` reads stdin as Windows PowerShell 5.1 does (about_PowerShell_exe): statement by
statement as if typed, so a `throw` does not stop the statements after it, and the exit code is
that of the last statement (1 if it failed, 0 otherwise) unless `exit N` ran. The harness's
one-statement runner (`& ([scriptblock]::Create(...FromBase64String('<UTF-8 base64>')...))`,
`read_stdin_script`) runs its script as a whole instead, as `-EncodedCommand` would.

>>> ex = BuiltinExecutor(hostname="DUT-01", user="lab\\\\tester")
>>> ex.start("hostname", [], skip_cmd_shell=False).poll().stdout
'DUT-01\\r\\n'
"""

from __future__ import annotations

import base64
import binascii
import re
import shlex
import threading
import time
from dataclasses import dataclass, field

from harness.virtual_lab.winrm.executor import FinishedCommand, RunningCommand, SteppedCommand
from harness.virtual_lab.winrm.ps_host import PsHostLoop, is_ps_host

_PS_NAMES = ("powershell", "powershell.exe", "pwsh", "pwsh.exe")
_STATEMENT_SPLIT = re.compile(r"""((?:[^;'"\n]|'[^']*'|"[^"]*")+)""")
_STDIN_RUNNER = re.compile(
    r"^& \(\[scriptblock\]::Create\(\[Text\.Encoding\]::UTF8\.GetString\("
    r"\[Convert\]::FromBase64String\('([A-Za-z0-9+/=]*)'\)\)\)\)$"
)


def read_stdin_script(text: str) -> tuple[str, bool]:
    """What `powershell.exe -Command -` runs from `text`: (script, statement by statement).

    Stdin holding just the harness's runner statement is its decoded script, run as a whole;
    anything else runs statement by statement (see the module doc)."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    if len(lines) == 1 and (m := _STDIN_RUNNER.match(lines[0])) is not None:
        try:
            return base64.b64decode(m.group(1), validate=True).decode("utf-8"), False
        except (binascii.Error, UnicodeDecodeError):
            return text, True
    return text, True


def _unquote(text: str) -> str:
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    return text


def _clixml_error(message: str) -> str:
    escaped = message.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return (
        '#< CLIXML\r\n<Objs Version="1.1.0.1" xmlns="http://schemas.microsoft.com/powershell/2004/04">'
        f'<S S="Error">{escaped}_x000D__x000A_</S></Objs>'
    )


def split_statements(script: str) -> list[str]:
    """Statements separated by newlines or `;` (quotes respected), comments and blanks dropped."""
    statements: list[str] = []
    for line in script.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        statements.extend(m.strip() for m in _STATEMENT_SPLIT.findall(stripped) if m.strip())
    return statements


class PowerShellScript(SteppedCommand):
    """Runs the PowerShell subset; with `script=None` it first reads the script from stdin."""

    def __init__(
        self,
        script: str | None,
        *,
        hostname: str,
        user: str,
        clixml: bool,
        startup_s: float = 0.0,
    ) -> None:
        super().__init__()
        self.ready_at = time.monotonic() + max(0.0, startup_s)  # powershell.exe start-up
        self._hostname = hostname
        self._user = user
        self._clixml = clixml
        self._statements = split_statements(script) if script is not None else None
        self._pc = 0
        self._had_error = False
        self.repl = False  # `-Command -`: statement by statement (read_stdin_script)
        self._last_failed = False
        self.last_exit_code = 0
        if script is None:
            self._next_step_at = None  # wait for stdin

    def native(self, statement: str) -> tuple[int, str] | None:
        """A native program a subclass simulates: (exit code, stdout), or None if unknown."""
        return None

    def _error(self, message: str) -> None:
        self._had_error = self._last_failed = True
        self.emit(stderr=_clixml_error(message) if self._clixml else message + "\r\n")

    def step(self, now: float) -> float | None:
        if now < self.ready_at:
            return self.ready_at
        if self._statements is None:
            if not self.stdin_closed:
                return None
            text, self.repl = read_stdin_script(self.stdin_text())
            self._statements = split_statements(text)
        while self._pc < len(self._statements):
            stmt = self._statements[self._pc]
            self._pc += 1
            self._last_failed = False
            verb, _, rest = stmt.partition(" ")
            verb_l = verb.lower()
            if verb_l in ("write-output", "echo", "write-host"):
                self.emit(_unquote(rest) + "\r\n")
            elif verb_l == "write-error":
                self._error(_unquote(rest))
            elif verb_l == "throw":
                self._error(_unquote(rest) or "ScriptHalted")
                if not self.repl:  # typed statements: the next one runs anyway
                    self.finish(1)
                    return None
            elif verb_l == "exit":
                self.finish(int(rest.strip() or "0"))
                return None
            elif verb_l == "hostname":
                self.emit(self._hostname + "\r\n")
            elif verb_l == "whoami":
                self.emit(self._user.lower() + "\r\n")
            elif verb_l == "start-sleep":
                return now + _sleep_seconds(rest)
            elif (native := self.native(stmt)) is not None:
                self.emit(native[1])
                self.last_exit_code = native[0]
            else:
                self._error(
                    f"{verb} : The term '{verb}' is not recognized as the name of a cmdlet, "
                    "function, script file, or operable program."
                )
        failed = self._last_failed if self.repl else self._had_error
        self.finish(1 if failed else 0)
        return None


def _sleep_seconds(rest: str) -> float:
    parts = rest.split()
    if len(parts) >= 2 and parts[0].lower() in ("-milliseconds", "-m"):
        return float(parts[1]) / 1000.0
    if len(parts) >= 2 and parts[0].lower() in ("-seconds", "-s"):
        return float(parts[1])
    return float(parts[0]) if parts else 0.0


BAD_ENCODING = (
    "Cannot process the command because the value specified with -EncodedCommand is not "
    "properly encoded.\r\n"
)


def parse_powershell_args(rest: str) -> tuple[str | None, bool] | FinishedCommand:
    """The script of `powershell.exe <rest>`: (text, clixml errors) for `-EncodedCommand`,
    (None, False) for `-Command -` (read stdin), (text, False) for `-Command text`; a
    FinishedCommand with powershell.exe's error otherwise."""
    try:
        tokens = shlex.split(rest, posix=False)
    except ValueError:
        tokens = rest.split()
    for i, tok in enumerate(tokens):
        low = tok.lower()
        if low.startswith("-e") and "-encodedcommand".startswith(low) and i + 1 < len(tokens):
            try:
                return base64.b64decode(tokens[i + 1], validate=True).decode("utf-16-le"), True
            except (binascii.Error, UnicodeDecodeError):
                return FinishedCommand("", BAD_ENCODING, 1)
        if low.startswith("-c") and "-command".startswith(low) and i + 1 < len(tokens):
            arg = " ".join(tokens[i + 1 :])
            return (None if arg == "-" else _unquote(arg)), False
    return FinishedCommand(
        "", "PowerShell without -EncodedCommand or -Command is not simulated.\r\n", 1
    )


class StdinEcho(SteppedCommand):
    """`more`: copies stdin to stdout once stdin is closed."""

    def __init__(self) -> None:
        super().__init__()
        self._next_step_at = None

    def step(self, now: float) -> float | None:
        if self.stdin_closed:
            self.emit(self.stdin_text())
            self.finish(0)
        return None


@dataclass
class BuiltinExecutor:
    """The test executor; `started` keeps every command it started (for assertions)."""

    hostname: str = "DUT-01"
    user: str = "lab\\tester"
    powershell_start_s: float = 0.0  # simulated start-up of every powershell.exe
    powershell_starts: int = 0
    started: list[tuple[str, RunningCommand]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def start(self, command: str, args: list[str], *, skip_cmd_shell: bool) -> RunningCommand:
        line = " ".join([command, *args]).strip()
        cmd = self._dispatch(line)
        with self._lock:
            self.started.append((line, cmd))
        return cmd

    def _dispatch(self, line: str) -> RunningCommand:
        name, _, rest = line.partition(" ")
        low = name.lower()
        if low in _PS_NAMES:
            return self._powershell(rest)
        if low == "hostname":
            return FinishedCommand(self.hostname + "\r\n", "", 0)
        if low == "whoami":
            return FinishedCommand(self.user.lower() + "\r\n", "", 0)
        if low == "echo":
            return FinishedCommand(rest + "\r\n", "", 0)
        if low == "exit":
            code = rest.replace("/b", "").replace("/B", "").strip() or "0"
            return FinishedCommand("", "", int(code))
        if low == "more":
            return StdinEcho()
        return FinishedCommand(
            "",
            f"'{name}' is not recognized as an internal or external command,\r\n"
            "operable program or batch file.\r\n",
            1,
        )

    def _powershell(self, rest: str) -> RunningCommand:
        parsed = parse_powershell_args(rest)
        if isinstance(parsed, FinishedCommand):
            return parsed
        script, clixml = parsed
        with self._lock:
            self.powershell_starts += 1
        if is_ps_host(script):
            return PsHostLoop(self._script, startup_s=self.powershell_start_s)
        return PowerShellScript(
            script,
            hostname=self.hostname,
            user=self.user,
            clixml=clixml,
            startup_s=self.powershell_start_s,
        )

    def _script(self, script: str) -> SteppedCommand:
        """One script inside the persistent host (no powershell.exe start, errors as text)."""
        return PowerShellScript(script, hostname=self.hostname, user=self.user, clixml=False)
