"""The one rule both transports follow to deliver a PowerShell script, and CLIXML clean-up."""

from __future__ import annotations

import base64
from pathlib import Path

from harness.remote.powershell import (
    CMD_LINE_BUDGET,
    CMD_LINE_LIMIT,
    PS_PREFIX,
    clean_clixml,
    invocation,
)


def _encoded_len(script: str) -> int:
    return len(f"{PS_PREFIX} -EncodedCommand ") + len(base64.b64encode(script.encode("utf-16-le")))


def test_largest_script_that_fits_goes_on_the_command_line() -> None:
    """The budget keeps a margin below cmd.exe's limit for what servers add (G11, F18)."""
    assert CMD_LINE_LIMIT - CMD_LINE_BUDGET >= 100
    n = 1
    while _encoded_len("x" * (n + 1)) <= CMD_LINE_BUDGET:
        n += 1
    fits, over = invocation("x" * n), invocation("x" * (n + 1))
    assert fits.stdin is None and len(fits.command_line) <= CMD_LINE_BUDGET
    assert over.command_line == f"{PS_PREFIX} -Command -" and over.stdin is not None
    assert over.stdin.endswith(b"\r\n\r\n")  # a blank line closes the last block
    assert "x" * (n + 1) in over.shown  # the transcript shows the script, not base64


def test_clixml_error_stream_reduced_to_text() -> None:
    raw = (
        '#< CLIXML\r\n<Objs Version="1.1.0.1"><S S="Error">boom &amp; &lt;bang&gt;_x000D__x000A_</S>'
        '<S S="Error">second line</S></Objs>'
    )
    assert clean_clixml(raw) == "boom & <bang>\nsecond line"
    assert clean_clixml("plain error") == "plain error"


#: Progress-only CLIXML as Windows PowerShell 5.1 writes it on first module use (shape of the
#: real records in pywinrm's tests), with no closing </Objs>: the process lives on.
PROGRESS = (
    '#< CLIXML\r\n<Objs Version="1.1.0.1" xmlns="http://schemas.microsoft.com/powershell/2004/04">'
    '<Obj S="progress" RefId="0"><TN RefId="0"><T>System.Management.Automation.PSCustomObject</T>'
    '<T>System.Object</T></TN><MS><I64 N="SourceId">1</I64><PR N="Record"><AV>Preparing '
    "modules for first use.</AV><AI>0</AI><Nil /><PI>-1</PI><PC>-1</PC><T>Completed</T><SR>-1</SR>"
    "<SD> </SD></PR></MS></Obj>"
)


def test_progress_records_are_dropped_even_without_the_closing_tag() -> None:
    assert clean_clixml(PROGRESS) == ""
    error = '<Objs Version="1.1.0.1"><S S="Error">oops_x000D__x000A_</S></Objs>'
    # a later call of the same process: no header, an error fragment after the progress one
    assert clean_clixml(PROGRESS + "</Objs>" + error) == "oops"
    assert clean_clixml(error) == "oops"


def test_the_host_loop_never_reads_input_through_dollar_input_and_shows_no_progress() -> None:
    """powershell.exe reads stdin itself when its initial command mentions $input
    (ConsoleHost), which would steal the host's requests; progress records would reach the
    caller as CLIXML on stderr."""
    from harness.remote import ps_host

    text = (Path(ps_host.__file__).parent / "ps_host_loop.ps1").read_text(encoding="utf-8")
    code = "\n".join(x for x in text.splitlines() if not x.lstrip().startswith("#"))
    assert "$input" not in code.lower()
    assert "$ProgressPreference = 'SilentlyContinue'" in code
