"""The virtual side of the harness's persistent PowerShell host (harness/remote/ps_host_loop.ps1).

A `powershell.exe ... -EncodedCommand` whose decoded script starts with the marker line
`# harness-ps-host: v1` is the harness's loop. `PsHostLoop` plays it: it reads one request per
stdin line (`<nonce> <base64 of the UTF-8 script>`), runs the script with the same per-script
command the executor uses for a one-off powershell.exe (so operations, their durations, faults
and crashes behave alike), and answers with the script's stdout followed by
`#<harness-end:<nonce>:<exit code>:<base64 UTF-8 error text>>\\r\\n`, all at once. `exit N` and
`throw` end the script, not the loop. A script that never ends (the machine crashed under it)
leaves the loop silent until it is terminated or its connection drops.

The wire format is the harness's (`harness.remote.ps_host`); the virtual lab keeps its own copy
so that it imports nothing from the harness (tests check that both agree).

Start-up cost: every new powershell.exe (a one-off script or this loop) is ready only after
`POWERSHELL_START_S` real-world seconds times the lab's time_scale. 0.5 s is an ESTIMATE of a
warm start of Windows PowerShell 5.1 with -NoProfile on lab-class hardware (loading
System.Management.Automation and the default runspace's modules); a cold start after boot, or
on a slow disk, takes longer. A lab that measured its DUTs can change the constant.
"""

from __future__ import annotations

import base64
import binascii
import time
from collections.abc import Callable

from harness.virtual_lab.winrm.executor import CommandOutput, SteppedCommand

MARKER = "# harness-ps-host: v1"
END_PREFIX = "#<harness-end:"
POWERSHELL_START_S = 0.5  # real-world seconds per powershell.exe start (estimate, see above)

ScriptRunner = Callable[[str], SteppedCommand]


#: The progress record Windows PowerShell 5.1 writes on first module use, as CLIXML on a
#: redirected stderr (no closing </Objs>: the process goes on).
FIRST_USE_PROGRESS = (
    '#< CLIXML\r\n<Objs Version="1.1.0.1" xmlns="http://schemas.microsoft.com/powershell/2004/04">'
    '<Obj S="progress" RefId="0"><TN RefId="0"><T>System.Management.Automation.PSCustomObject</T>'
    '<T>System.Object</T></TN><MS><I64 N="SourceId">1</I64><PR N="Record"><AV>Preparing modules '
    "for first use.</AV><AI>0</AI><Nil /><PI>-1</PI><PC>-1</PC><T>Completed</T><SR>-1</SR>"
    "<SD> </SD></PR></MS></Obj>"
)


#: What powershell.exe prints when the loop cannot run (quirk `ps_host_blocked`: Constrained
#: Language refusing its first method call, as under an application control policy), as CLIXML.
HOST_BLOCKED = (
    '#< CLIXML\r\n<Objs Version="1.1.0.1" xmlns="http://schemas.microsoft.com/powershell/2004/04">'
    '<S S="Error">Cannot invoke method. Method invocation is supported only on core types in '
    "this language mode._x000D__x000A_</S></Objs>"
)


def is_ps_host(script: str | None) -> bool:
    """True if `script` (a decoded -EncodedCommand) is the harness's persistent host loop."""
    if script is None:
        return False
    first = script.lstrip("\ufeff").lstrip().split("\n", 1)[0]
    return first.strip() == MARKER


def end_frame(nonce: str, exit_code: int, errors: str) -> str:
    b64 = base64.b64encode(errors.encode("utf-8")).decode("ascii")
    return f"{END_PREFIX}{nonce}:{exit_code}:{b64}>\r\n"


class PsHostLoop(SteppedCommand):
    """The persistent host loop: one script per stdin line, one framed answer per script."""

    def __init__(
        self,
        run_script: ScriptRunner,
        *,
        startup_s: float = 0.0,
        on_request: Callable[[], None] | None = None,
    ) -> None:
        super().__init__()
        self._run_script = run_script
        self._on_request = on_request
        self._ready_at = time.monotonic() + max(0.0, startup_s)
        self._consumed = 0  # characters of stdin already taken as requests
        self._current: tuple[str, SteppedCommand, list[str], list[str]] | None = None
        self.requests_total = 0
        self._greeted = False
        self._next_step_at = None  # wait for the first request

    def _peek_line(self) -> tuple[str, int] | None:
        text = self.stdin_text()
        end = text.find("\n", self._consumed)
        if end < 0:
            return None
        return text[self._consumed : end].strip(), end + 1

    def _start(self, line: str) -> None:
        self.requests_total += 1
        if self._on_request is not None:
            self._on_request()
        nonce, _, payload = line.partition(" ")
        try:
            script = base64.b64decode(payload, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError) as exc:
            self.emit(end_frame(nonce, 1, f"the request is not base64 UTF-8: {exc}\r\n"))
            return
        self._current = (nonce, self._run_script(script), [], [])

    def step(self, now: float) -> float | None:
        while True:
            if self._current is None:
                found = self._peek_line()
                if found is None:
                    if self.stdin_closed:
                        self.finish(0)  # stdin ended: the loop ends like the real one
                    return None
                if now < self._ready_at:
                    return self._ready_at  # powershell.exe is still starting
                line, self._consumed = found
                if not self._greeted:
                    # powershell.exe with stderr redirected: a first-use progress record as
                    # unterminated CLIXML (the process lives on), as Windows PowerShell 5.1 writes
                    self._greeted = True
                    self.emit(stderr=FIRST_USE_PROGRESS)
                if line:
                    self._start(line)
                continue
            nonce, cmd, out, err = self._current
            got: CommandOutput = cmd.poll()
            out.append(got.stdout)
            err.append(got.stderr)
            if got.exit_code is None:
                return cmd.next_step_at  # None: the script hangs (e.g. the machine crashed)
            self.emit("".join(out) + end_frame(nonce, got.exit_code, "".join(err)))
            self._current = None

    def terminate(self) -> None:
        current = self._current
        if current is not None:
            current[1].terminate()
        super().terminate()
