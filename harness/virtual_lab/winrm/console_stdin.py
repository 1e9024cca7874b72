"""A command's stdin in WinRS console mode, as a real Windows host gives it to the process.

A WinRM Command started with `WINRS_CONSOLEMODE_STDIN=TRUE` (pywinrm's default) gets a console
for stdin, not a pipe (MS-WSMV 3.1.4.11: "stdin is console if TRUE and pipe if FALSE"). .NET's
`Console.ReadLine` reads a console through a 256-character buffer, so a program such as
powershell.exe sees at most 254 characters of each line: the rest of a longer line is lost. The
harness's requests are 1.5 to 235 KB long, so a harness that leaves console mode on fails on a
real host; `ConsoleModeStdin` makes the virtual lab fail the same way. Without the option, or
with FALSE, stdin is a pipe and lines arrive whole.

>>> cmd = ConsoleModeStdin(inner)                     # doctest: +SKIP
>>> cmd.write_stdin("x" * 300 + "\\n", end=False)      # the process reads 254 x's and a newline
"""

from __future__ import annotations

from harness.virtual_lab.winrm.executor import CommandOutput, RunningCommand

#: Characters of one line a console-mode ReadLine returns (a 256-character buffer, less CR LF).
CONSOLE_LINE_CHARS = 254


class ConsoleModeStdin:
    """Wraps a running command: each stdin line beyond 254 characters is cut, across Sends."""

    def __init__(self, inner: RunningCommand) -> None:
        self.inner = inner
        self._column = 0  # characters of the current line already passed on

    def poll(self) -> CommandOutput:
        return self.inner.poll()

    def wait(self, timeout_s: float) -> None:
        self.inner.wait(timeout_s)

    def terminate(self) -> None:
        self.inner.terminate()

    @property
    def exited(self) -> bool:
        return bool(getattr(self.inner, "exited", False))

    def write_stdin(self, data: str, *, end: bool) -> None:
        kept: list[str] = []
        for ch in data:
            if ch == "\n":
                kept.append(ch)
                self._column = 0
            elif self._column < CONSOLE_LINE_CHARS:
                kept.append(ch)
                self._column += 1
        self.inner.write_stdin("".join(kept), end=end)


def console_mode(options: dict[str, str]) -> bool:
    """Whether a Command's options ask for console-mode stdin (only an explicit TRUE does)."""
    return options.get("WINRS_CONSOLEMODE_STDIN", "").strip().upper() == "TRUE"
