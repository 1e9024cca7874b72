"""How a PowerShell script reaches a NEW powershell.exe per call (the transports' fallback).

By default the transports run scripts in a persistent host instead (`harness.remote.ps_host`).
Per call, a script travels as `-EncodedCommand` (UTF-16LE, base64) while that command line fits
`CMD_LINE_BUDGET` (8000 characters), and otherwise on stdin to `-Command -`, so no script fails on
its size. The budget keeps a margin below cmd.exe's 8191-character limit because cmd.exe counts
what it parses, and the servers add to the line: Windows OpenSSH runs `cmd.exe /c "<line>"` (two
quotes; w32-doexec.c), the SSH transport prefixes `cmd.exe /c ` itself, and WinRS may add quotes.

`-Command -` does not run stdin as one script: "the input statements are executed one statement
at a time as though they were typed at the PowerShell command prompt", and "the process exit code
is determined by status of the last (executed) command" (about_PowerShell_exe, Windows PowerShell
5.1), so a `throw` or `$ErrorActionPreference = 'Stop'` would not stop the statements after it.
The script therefore goes on stdin as ONE statement, `STDIN_RUNNER` with the script's UTF-8 in
base64, which runs it as a whole as `-EncodedCommand` would: the same exit code, and a throw
stops it. `prologue` statements (each complete on one line) may precede it.
Both WinRM (cmd.exe shell) and Windows OpenSSH (cmd.exe default shell) run it the same way, and
both return PowerShell's redirected error stream as `#< CLIXML`, which `clean_clixml` reduces to
its text.

>>> inv = invocation("Write-Output 'hi'")
>>> inv.stdin is None, inv.command_line.startswith(PS_PREFIX + " -EncodedCommand ")
(True, True)
>>> invocation("x" * 9000).command_line
'powershell.exe -NoProfile -NonInteractive -Command -'
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass

#: cmd.exe's maximum command-line length (characters), counted on what cmd.exe parses.
CMD_LINE_LIMIT = 8191
#: The longest command line the harness sends: a margin for what servers add (see above).
CMD_LINE_BUDGET = 8000
PS_PREFIX = "powershell.exe -NoProfile -NonInteractive"


@dataclass(frozen=True)
class PsInvocation:
    """The command line to run, what to feed on stdin (None: nothing), and the transcript text."""

    command_line: str
    stdin: bytes | None
    shown: str


#: `-Command -` runs this one statement: the script (base64 of UTF-8) as a whole.
STDIN_RUNNER = (
    "& ([scriptblock]::Create([Text.Encoding]::UTF8.GetString("
    "[Convert]::FromBase64String('{b64}'))))"
)


def stdin_statement(script: str) -> str:
    """The one `-Command -` statement that runs `script` as a whole (see the module doc)."""
    return STDIN_RUNNER.format(b64=base64.b64encode(script.encode("utf-8")).decode("ascii"))


def invocation(script: str, prologue: str = "") -> PsInvocation:
    """How `script` reaches a new powershell.exe; `prologue`: statements run first, one per line."""
    head = prologue.rstrip("\r\n")
    whole = f"{head}\r\n{script}" if head else script
    encoded = base64.b64encode(whole.encode("utf-16-le")).decode("ascii")
    line = f"{PS_PREFIX} -EncodedCommand {encoded}"
    if len(line) <= CMD_LINE_BUDGET:
        return PsInvocation(line, None, line)
    # ASCII lines; the trailing blank line completes any pending input, as at a prompt.
    lines = [*(head.splitlines() if head else []), stdin_statement(script)]
    stdin = ("\r\n".join(lines) + "\r\n\r\n").encode("ascii")
    return PsInvocation(
        f"{PS_PREFIX} -Command -", stdin, f"{PS_PREFIX} -Command - <script on stdin>\n{script}"
    )


_OBJS = re.compile(r"<Objs\b.*?(?:</Objs>|\Z)", re.S)
_ERROR_TEXT = re.compile(r"<S S=\"Error\">(.*?)</S>", re.S)


def clean_clixml(stderr: str) -> str:
    """PowerShell's CLIXML error stream reduced to the texts of its `<S S="Error">` records.

    With `-EncodedCommand` and stderr redirected, powershell.exe writes its error stream as
    CLIXML: a `#< CLIXML` header once per process, then `<Objs>` fragments. Progress records
    (`<Obj S="progress">`, e.g. "Preparing modules for first use.") carry no error and are
    dropped; a fragment without its closing `</Objs>` (the persistent host still runs) is read to
    the end; a fragment without the header (a later call of the same process) is cleaned too.
    Text outside CLIXML is kept as it is.
    """
    if "<Objs" not in stderr and not stderr.startswith("#< CLIXML"):
        return stderr
    texts: list[str] = []
    for block in _OBJS.findall(stderr):
        texts += _ERROR_TEXT.findall(block)
    rest = _OBJS.sub("", stderr).replace("#< CLIXML", "").strip()
    text = "".join(texts).replace("_x000D__x000A_", "\n")
    for a, b in (("&lt;", "<"), ("&gt;", ">"), ("&quot;", '"'), ("&apos;", "'"), ("&amp;", "&")):
        text = text.replace(a, b)
    return "\n".join(part for part in (rest, text.strip()) if part)
