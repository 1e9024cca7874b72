"""What a command run through the WinRM endpoint does: the pluggable `Executor` role.

The WS-Management layer only moves bytes; an `Executor` decides what a command line means. It
returns a `RunningCommand` which the layer polls (`poll`), waits on with a deadline (`wait`),
feeds stdin (`write_stdin`) and terminates (`terminate`). Output is text; the shell encodes it in
its codepage (437 or 65001).

`SteppedCommand` is a convenient base: subclasses implement `step(now)` which emits output and
may ask to be stepped again at a later time (simulated time: a command that "sleeps" stays
Running until its deadline and is merely polled, never a blocking sleep in a server thread).

>>> cmd = FinishedCommand("hello\\r\\n", "", 0)
>>> cmd.poll()
CommandOutput(stdout='hello\\r\\n', stderr='', exit_code=0)
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class CommandOutput:
    """Output produced since the last poll; `exit_code` is set once the command is done."""

    stdout: str = ""
    stderr: str = ""
    exit_code: int | None = None


class RunningCommand(Protocol):
    """One process started by the shell."""

    def poll(self) -> CommandOutput:
        """Drain the output produced so far; exit_code is not None once it has ended."""
        ...

    def wait(self, timeout_s: float) -> None:
        """Return when output or the exit may be available, or after `timeout_s`."""
        ...

    def write_stdin(self, data: str, *, end: bool) -> None: ...

    def terminate(self) -> None: ...


class Executor(Protocol):
    """Starts commands for a shell (`skip_cmd_shell`: no cmd.exe in between)."""

    def start(self, command: str, args: list[str], *, skip_cmd_shell: bool) -> RunningCommand: ...


TERMINATED_EXIT_CODE = -1073741510  # STATUS_CONTROL_C_EXIT, as for a terminated console process


class SteppedCommand:
    """Thread-safe base for simulated commands driven by `step()` in simulated time."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._out: list[str] = []
        self._err: list[str] = []
        self._exit: int | None = None
        self._reported_exit = False
        self._stdin: list[str] = []
        self.stdin_closed = False
        self.terminated = False
        self._next_step_at: float | None = time.monotonic()

    # -- for subclasses -------------------------------------------------------------------------
    def step(self, now: float) -> float | None:
        """Do work due at `now`; return when to be stepped again, or None to wait for stdin."""
        raise NotImplementedError

    def emit(self, stdout: str = "", stderr: str = "") -> None:
        if stdout:
            self._out.append(stdout)
        if stderr:
            self._err.append(stderr)

    def finish(self, exit_code: int) -> None:
        if self._exit is None:
            self._exit = exit_code

    def stdin_text(self) -> str:
        return "".join(self._stdin)

    @property
    def next_step_at(self) -> float | None:
        """When `step` is due next (monotonic time); None while waiting for stdin or forever."""
        return self._next_step_at

    # -- RunningCommand -------------------------------------------------------------------------
    def _advance(self) -> None:
        now = time.monotonic()
        while self._exit is None and self._next_step_at is not None and self._next_step_at <= now:
            self._next_step_at = self.step(now)

    def _has_news(self) -> bool:
        return bool(self._out or self._err) or (self._exit is not None and not self._reported_exit)

    def poll(self) -> CommandOutput:
        with self._cond:
            self._advance()
            out, err = "".join(self._out), "".join(self._err)
            self._out.clear()
            self._err.clear()
            if self._exit is not None:
                self._reported_exit = True
            return CommandOutput(out, err, self._exit)

    def wait(self, timeout_s: float) -> None:
        deadline = time.monotonic() + max(0.0, timeout_s)
        with self._cond:
            while True:
                self._advance()
                now = time.monotonic()
                if self._has_news() or now >= deadline:
                    return
                wake = deadline if self._next_step_at is None else min(deadline, self._next_step_at)
                self._cond.wait(max(0.0, wake - now))

    @property
    def exited(self) -> bool:
        """The process has ended (its output may not all have been polled yet)."""
        with self._cond:
            self._advance()
            return self._exit is not None

    def write_stdin(self, data: str, *, end: bool) -> None:
        with self._cond:
            if self.stdin_closed:
                return
            self._stdin.append(data)
            self.stdin_closed = end
            if self._next_step_at is None:
                self._next_step_at = time.monotonic()
            self._cond.notify_all()

    def terminate(self) -> None:
        with self._cond:
            if self._exit is None:
                self.terminated = True
                self._exit = TERMINATED_EXIT_CODE
            self._cond.notify_all()


class FinishedCommand(SteppedCommand):
    """A command whose whole output is known up front."""

    def __init__(self, stdout: str, stderr: str, exit_code: int) -> None:
        super().__init__()
        self.emit(stdout, stderr)
        self.finish(exit_code)
