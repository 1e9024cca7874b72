"""The persistent PowerShell host: one powershell.exe per connection, fed one script per line.

Starting powershell.exe costs hundreds of milliseconds on a real Windows host (more when a script
then compiles an `Add-Type` class), and per call WinRM needs Command + Receive + Signal. So each
transport connection starts ONE long-running `powershell.exe -NoProfile -NonInteractive
-EncodedCommand <ps_host_loop.ps1>` and keeps it: an operation is one framed line on its stdin
and one answer on its stdout, i.e. WinRM Send + Receive (2 requests) or one SSH channel exchange.

Wire format (see the header of `ps_host_loop.ps1`, which cites the PowerShell APIs it relies on):

- request: `<nonce> <base64 of the UTF-8 script>\\n` (any size: no command-line limit applies);
- answer: the script's output, then `#<harness-end:<nonce>:<exit code>:<base64 UTF-8 errors>>\\r\\n`.
  The nonce is 128 random bits per request, so no script output can fake the end of an answer.

Each script runs in its own PowerShell instance on one reused runspace whose host ignores
`exit`; `exit N` comes back as exit code N, a throw as 1 with the error text, and neither ends
the loop. Should the process end anyway (`[Environment]::Exit`, powershell.exe crashing), the
call fails with `InfrastructureError` naming the process's exit code (whether the script ran is
unknown) and the next call starts a new host.

>>> req = new_request("Write-Output 'hi'")
>>> reader = AnswerReader(req.nonce)
>>> reader.feed(b"hi\\r\\n#<harness-end:" + req.nonce.encode() + b":3:b29wcw==>\\r\\n")
>>> reader.answer()
Answer(stdout='hi\\r\\n', exit_code=3, errors='oops')
"""

from __future__ import annotations

import base64
import binascii
import functools
import re
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

from harness.remote.base import CommandResult
from harness.remote.powershell import CMD_LINE_LIMIT, PS_PREFIX, clean_clixml
from harness.remote.transcript import Transcript

#: The first line of the bootstrap; the virtual lab recognises the loop by it.
MARKER = "# harness-ps-host: v1"
LOOP_SCRIPT = Path(__file__).resolve().parent / "ps_host_loop.ps1"
END_PREFIX = b"#<harness-end:"
SHOWN_PREFIX = "powershell.exe (persistent host) <script>\n"


@functools.lru_cache(maxsize=1)
def bootstrap_script() -> str:
    """The loop script as sent: the marker line, then the code without comment lines."""
    lines = LOOP_SCRIPT.read_text(encoding="utf-8-sig").splitlines()
    if not lines or lines[0].strip() != MARKER:
        raise RuntimeError(f"{LOOP_SCRIPT} must start with {MARKER!r}")
    body = [ln for ln in lines[1:] if ln.strip() and not ln.lstrip().startswith("#")]
    return "\r\n".join([MARKER, *body]) + "\r\n"


@functools.lru_cache(maxsize=1)
def launch_command_line() -> str:
    """`powershell.exe -NoProfile -NonInteractive -EncodedCommand <loop>`, within cmd.exe's limit."""
    encoded = base64.b64encode(bootstrap_script().encode("utf-16-le")).decode("ascii")
    line = f"{PS_PREFIX} -EncodedCommand {encoded}"
    if len(line) > CMD_LINE_LIMIT:
        raise RuntimeError(f"the persistent host's command line is {len(line)} characters")
    return line


@dataclass(frozen=True)
class Request:
    nonce: str
    line: bytes  # what goes to the loop's stdin


def new_request(script: str) -> Request:
    nonce = secrets.token_hex(16)
    payload = base64.b64encode(script.encode("utf-8")).decode("ascii")
    return Request(nonce, f"{nonce} {payload}\n".encode("ascii"))


def shown(script: str) -> str:
    """What the transcript records for one request (redacted by the transcript)."""
    return SHOWN_PREFIX + script


@dataclass(frozen=True)
class Answer:
    stdout: str
    exit_code: int
    errors: str


class AnswerReader:
    """Collects the loop's stdout for one request until its end frame has arrived."""

    def __init__(self, nonce: str) -> None:
        self._frame = re.compile(
            re.escape(END_PREFIX + nonce.encode("ascii") + b":")
            + rb"(-?\d+):([A-Za-z0-9+/=]*)>\r?\n"
        )
        self._buf = bytearray()
        self._answer: Answer | None = None

    @property
    def done(self) -> bool:
        return self._answer is not None

    @property
    def partial_stdout(self) -> str:
        """What arrived so far (for transcripts of a call that failed)."""
        return bytes(self._buf).decode("utf-8", "replace")

    def feed(self, data: bytes) -> None:
        if self._answer is not None or not data:
            return
        self._buf += data
        m = self._frame.search(self._buf)
        if m is None:
            return
        try:
            errors = base64.b64decode(m.group(2), validate=True).decode("utf-8", "replace")
        except binascii.Error:
            errors = "(the persistent host sent undecodable error text)"
        before = bytes(self._buf[: m.start()])
        stale = before.rfind(END_PREFIX)  # an answer to an abandoned earlier request: skip it
        if stale >= 0:
            eol = before.find(b"\n", stale)
            before = before[eol + 1 :] if eol >= 0 else b""
        stdout = before.decode("utf-8", "replace")
        self._answer = Answer(stdout, int(m.group(1)), errors.strip())

    def answer(self) -> Answer:
        if self._answer is None:
            raise ValueError("the end frame has not arrived")
        return self._answer


def combine_errors(frame_errors: str, raw_stderr: bytes) -> str:
    """The error text of one answer plus whatever the process wrote to stderr meanwhile."""
    extra = clean_clixml(raw_stderr.decode("utf-8", "replace")).strip()
    return "\n".join(t for t in (frame_errors, extra) if t)


def record_failure(
    transcript: Transcript, script: str, stdout: str, err: list[bytes], started: float, error: str
) -> None:
    """Transcript entry of a hosted script whose answer never came (both transports)."""
    transcript.record(
        shown(script),
        exit_code=None,
        stdout=stdout,
        stderr=b"".join(err).decode("utf-8", "replace"),
        duration_s=time.monotonic() - started,
        error=error,
    )


def record_answer(
    transcript: Transcript, script: str, answer: Answer, err: list[bytes], started: float
) -> CommandResult:
    """Transcript entry and result of a hosted script's answer (both transports)."""
    stderr = combine_errors(answer.errors, b"".join(err))
    entry = transcript.record(
        shown(script),
        exit_code=answer.exit_code,
        stdout=answer.stdout,
        stderr=stderr,
        duration_s=time.monotonic() - started,
    )
    return CommandResult(entry.command, answer.exit_code, answer.stdout, stderr, entry.duration_s)
