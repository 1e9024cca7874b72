"""The one rule both transports follow to deliver a PowerShell script, and CLIXML clean-up."""

from __future__ import annotations

import base64

from harness.remote.powershell import CMD_LINE_LIMIT, PS_PREFIX, clean_clixml, invocation


def _encoded_len(script: str) -> int:
    return len(f"{PS_PREFIX} -EncodedCommand ") + len(base64.b64encode(script.encode("utf-16-le")))


def test_largest_script_that_fits_goes_on_the_command_line() -> None:
    n = 1
    while _encoded_len("x" * (n + 1)) <= CMD_LINE_LIMIT:
        n += 1
    fits, over = invocation("x" * n), invocation("x" * (n + 1))
    assert fits.stdin is None and len(fits.command_line) <= CMD_LINE_LIMIT
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
