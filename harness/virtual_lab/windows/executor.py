"""How a simulated DUT runs what its WinRM and SSH endpoints receive.

- A harness operation (docs/windows-operations.md): a PowerShell script, as `-EncodedCommand`
  or on stdin to `-Command -`, whose text contains `# Operation: NAME` and ends with
  `-ParamsBase64 '...'`. The parameters are decoded as data and recorded exactly as received
  (`machine.operations_log()`); the handler runs under the machine lock, with the script's code
  at hand (`machine.op_script`: it answers from the sources that code reads); the result line is
  written after the operation's real-world duration (plus any wait the handler modelled) times
  `time_scale`.
- The harness's persistent PowerShell host (`powershell.exe -EncodedCommand <loop>`, recognised
  by its marker line; `harness.virtual_lab.winrm.ps_host`): each framed request on its stdin is
  run as a `WindowsScript`, so an operation behaves exactly as in a one-off powershell.exe.
- Every powershell.exe start (one-off or the loop) costs `POWERSHELL_START_S` real-world seconds
  times `time_scale` before the script runs (`powershell_starts` counts them).
- A native tool line (`hostname`, `whoami`, `pnputil ...`, `verifier ...`, `shutdown /r /t 0`,
  `bcdedit ...`), directly or inside a PowerShell script.
- Anything else: the built-in cmd.exe / PowerShell subset of the WinRM test executor.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from typing import Any

from harness.virtual_lab.windows import (  # noqa: F401  (importing them registers their handlers)
    crash_ops,
    driver_ops,
    op_registry,
    operations,
)
from harness.virtual_lab.windows.commands import run_command_line
from harness.virtual_lab.windows.machine import MachineCrashed, WindowsMachine
from harness.virtual_lab.winrm.builtin import (
    BuiltinExecutor,
    PowerShellScript,
    _clixml_error,
    parse_powershell_args,
    read_stdin_script,
    split_statements,
)
from harness.virtual_lab.winrm.executor import FinishedCommand, RunningCommand
from harness.virtual_lab.winrm.ps_host import (
    HOST_BLOCKED,
    POWERSHELL_START_S,
    PsHostLoop,
    is_ps_host,
)

_OPERATION = re.compile(r"^# Operation: ([a-z0-9_]+)\s*$", re.MULTILINE)
_PARAMS = re.compile(r"-ParamsBase64 '([A-Za-z0-9+/=]*)'\s*$")
_PS_NAMES = ("powershell", "powershell.exe", "pwsh", "pwsh.exe")


def script_code(script: str) -> str:
    """An operation script without its comment lines: what it runs, not what it says it runs
    (the simulated DUT answers from the sources the code reads, `sources.py`)."""
    return "\n".join(line for line in script.splitlines() if not line.lstrip().startswith("#"))


def parse_operation(script: str) -> tuple[str, str] | None:
    """(operation name, parameters base64) if `script` is a harness operation invocation."""
    op, params = _OPERATION.search(script), _PARAMS.search(script.rstrip())
    if op is None or params is None:
        return None
    return op.group(1), params.group(1)


class WindowsScript(PowerShellScript):
    """A PowerShell script on the simulated DUT: an operation, or the PowerShell subset."""

    def __init__(
        self,
        machine: WindowsMachine,
        script: str | None,
        *,
        clixml: bool,
        startup_s: float = 0.0,
    ) -> None:
        super().__init__(
            script,
            hostname=machine.hostname,
            user=f"{machine.hostname}\\{machine.username}",
            clixml=clixml,
            startup_s=startup_s,
        )
        self._machine = machine
        self._raw = script
        self._clixml_errors = clixml
        self._op_result: str | None = None
        self._op_decided = False
        self._hung = False

    def native(self, statement: str) -> tuple[int, str] | None:
        with self._machine.lock:
            return run_command_line(self._machine, statement)

    def step(self, now: float) -> float | None:
        if self._hung:
            return None
        if now < self.ready_at:
            return self.ready_at  # powershell.exe is still starting
        if self._op_result is not None:
            self.emit(self._op_result)
            self.finish(0)
            return None
        if not self._op_decided:
            if self._raw is None:
                if not self.stdin_closed:
                    return None
                self._raw, self.repl = read_stdin_script(self.stdin_text())
            self._op_decided = True
            found = parse_operation(self._raw)
            if found is not None:
                return self._run_operation(now, *found)
            if self._statements is None:
                self._statements = split_statements(self._raw)
        return super().step(now)

    def _fail(self, message: str) -> None:
        self.emit(stderr=_clixml_error(message) if self._clixml_errors else message + "\r\n")
        self.finish(1)

    def _run_operation(self, now: float, name: str, params_b64: str) -> float | None:
        m = self._machine
        try:
            params: Any = json.loads(base64.b64decode(params_b64, validate=True).decode("utf-8"))
        except (binascii.Error, UnicodeDecodeError, json.JSONDecodeError) as exc:
            self._fail(f"{name}: the parameters are not base64 JSON: {exc}")
            return None
        with m.lock:
            m.record_operation(name, params_b64, params)
            handler = op_registry.HANDLERS.get(name)
            if handler is None:
                self._fail(f"{name}: no such operation on this host")
                return None
            if not isinstance(params, dict):
                self._fail(f"{name}: the parameters must be a JSON object")
                return None
            m.op_script = script_code(self._raw or "")
            m.op_wait_s = 0.0
            try:
                fault = m.take_operation_fault(name)
                if fault is not None:
                    m.bugcheck(0xE6, (0x26, 0xFFFF_A000_0000_1000, 0x1_0000_0000, 0x2))
                result = handler(m, params)
            except MachineCrashed:
                self._hung = True  # the connection drops with the machine; nothing comes back
                return None
            except op_registry.OperationError as exc:
                self._fail(f"{name}: {exc}")
                return None
            delay = m.scaled(op_registry.duration_s(name, params) + m.op_wait_s)
        self._op_result = json.dumps(result, separators=(",", ":")) + "\r\n"
        return now + delay


class WindowsExecutor:
    """The `Executor` of one simulated DUT (WinRM and SSH)."""

    def __init__(self, machine: WindowsMachine) -> None:
        self._machine = machine
        self._builtin = BuiltinExecutor(
            hostname=machine.hostname, user=f"{machine.hostname}\\{machine.username}"
        )
        self.started_total = 0
        self.powershell_starts = 0  # powershell.exe processes started (one-off or host loop)
        self.host_requests_total = 0  # scripts served by persistent host loops

    def start(self, command: str, args: list[str], *, skip_cmd_shell: bool) -> RunningCommand:
        self.started_total += 1
        line = " ".join([command, *args]).strip()
        name, _, rest = line.partition(" ")
        if name.lower() in _PS_NAMES:
            return self._powershell(line, rest)
        with self._machine.lock:
            native = run_command_line(self._machine, line)
        if native is not None:
            return FinishedCommand(native[1], "", native[0])
        return self._builtin.start(command, args, skip_cmd_shell=skip_cmd_shell)

    def _powershell(self, line: str, rest: str) -> RunningCommand:
        parsed = parse_powershell_args(rest)
        if isinstance(parsed, FinishedCommand):
            return parsed
        script, clixml = parsed
        self.powershell_starts += 1
        startup = self._machine.scaled(POWERSHELL_START_S)
        if is_ps_host(script):
            if self._machine.quirks.get("ps_host_blocked"):  # ends before reading stdin
                return FinishedCommand("", HOST_BLOCKED, 1)
            return PsHostLoop(self._script, startup_s=startup, on_request=self._count_request)
        return WindowsScript(self._machine, script, clixml=clixml, startup_s=startup)

    def _script(self, script: str) -> WindowsScript:
        """One script inside a persistent host: the process is already running."""
        return WindowsScript(self._machine, script, clixml=False)

    def _count_request(self) -> None:
        self.host_requests_total += 1


__all__ = ["WindowsExecutor", "WindowsScript", "parse_operation"]
