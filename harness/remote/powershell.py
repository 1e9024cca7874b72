"""How a PowerShell script reaches a NEW powershell.exe per call (the transports' fallback).

By default the transports run scripts in a persistent host instead (`harness.remote.ps_host`).
Per call, a script travels as `-EncodedCommand` (UTF-16LE, base64) while that command line fits cmd.exe's
8191-character limit, and otherwise on stdin to `-Command -`, so no script fails on its size.
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

#: cmd.exe's maximum command-line length (characters).
CMD_LINE_LIMIT = 8191
PS_PREFIX = "powershell.exe -NoProfile -NonInteractive"


@dataclass(frozen=True)
class PsInvocation:
    """The command line to run, what to feed on stdin (None: nothing), and the transcript text."""

    command_line: str
    stdin: bytes | None
    shown: str


def invocation(script: str) -> PsInvocation:
    encoded = base64.b64encode(script.encode("utf-16-le")).decode("ascii")
    line = f"{PS_PREFIX} -EncodedCommand {encoded}"
    if len(line) <= CMD_LINE_LIMIT:
        return PsInvocation(line, None, line)
    # With `-Command -`, a blank line ends a multi-line block; the trailing blank line ends the last.
    stdin = (script.rstrip("\r\n") + "\r\n\r\n").encode("utf-8")
    return PsInvocation(
        f"{PS_PREFIX} -Command -", stdin, f"{PS_PREFIX} -Command - <script on stdin>\n{script}"
    )


def clean_clixml(stderr: str) -> str:
    """PowerShell's `#< CLIXML` error stream reduced to its <S> texts (as pywinrm run_ps does)."""
    if not stderr.startswith("#< CLIXML"):
        return stderr
    texts = re.findall(r"<S S=\"Error\">(.*?)</S>", stderr, re.S)
    if not texts:
        return stderr
    text = "".join(texts).replace("_x000D__x000A_", "\n")
    for a, b in (("&lt;", "<"), ("&gt;", ">"), ("&quot;", '"'), ("&apos;", "'"), ("&amp;", "&")):
        text = text.replace(a, b)
    return text.strip()
