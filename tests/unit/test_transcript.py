"""Transcript and Redactor: secrets never reach a transcript, not even inside base64 command lines."""

from __future__ import annotations

import base64

from harness.remote.transcript import MASK, Redactor, Transcript, decode_encoded_commands

SECRET = "Hunter2-Pa55!"


def _encoded(script: str) -> str:
    return base64.b64encode(script.encode("utf-16-le")).decode()


def test_redactor_masks_every_occurrence_longest_first() -> None:
    r = Redactor({"abc", "abcdef", ""})
    assert r.redact("x abcdef y abc z") == f"x {MASK} y {MASK} z"
    assert r.redact("nothing here") == "nothing here"
    r.add("here")
    assert r.redact("nothing here") == f"nothing {MASK}"


def test_secret_inside_encoded_command_is_decoded_then_redacted() -> None:
    t = Transcript(Redactor([SECRET]))
    line = f"powershell.exe -NoProfile -EncodedCommand {_encoded(f'net use /user:x {SECRET}')}"
    entry = t.record(line, exit_code=0, stdout="", stderr="", duration_s=0.01)
    assert SECRET not in entry.command
    assert _encoded(f"net use /user:x {SECRET}") not in entry.command
    assert f"net use /user:x {MASK}" in entry.command
    assert "-EncodedCommand <decoded script>" in entry.command


def test_short_flag_and_undecodable_base64() -> None:
    assert "Write-Output 1" in decode_encoded_commands(
        f"powershell -enc {_encoded('Write-Output 1')}"
    )
    assert "withheld" in decode_encoded_commands("powershell -e QUJD")  # not UTF-16LE text
    assert decode_encoded_commands("echo -e hello") == "echo -e hello"


def test_outputs_and_errors_are_redacted_and_rendered() -> None:
    t = Transcript(Redactor([SECRET]))
    t.record("whoami", exit_code=0, stdout=f"pw={SECRET}\r\n", stderr=SECRET, duration_s=0.2)
    t.record("x", exit_code=None, stdout="", stderr="", duration_s=1.0, error=f"auth {SECRET} bad")
    text = t.render()
    assert SECRET not in text
    assert "$ whoami" in text and "[exit 0, 0.200s]" in text and "ERROR auth *** bad" in text
    assert [e.exit_code for e in t.entries] == [0, None]
