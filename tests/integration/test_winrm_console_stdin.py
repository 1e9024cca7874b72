"""WINRS_CONSOLEMODE_STDIN against the virtual lab, as real Windows treats it: with console-mode
stdin (pywinrm's default) each line the process reads stops at 254 characters; in pipe mode it
arrives whole. Driven by pywinrm's own Protocol over a socket."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import winrm

from harness.virtual_lab.winrm import BuiltinExecutor, WinRMEndpoint
from harness.virtual_lab.winrm.console_stdin import CONSOLE_LINE_CHARS

pytestmark = pytest.mark.integration

USER, PASSWORD = "tester", "Lab-Passw0rd!"


@pytest.fixture
def ep(tmp_path: Path) -> Iterator[WinRMEndpoint]:
    with WinRMEndpoint(
        BuiltinExecutor(hostname="DUT-01", user="lab\\tester"),
        USER,
        PASSWORD,
        https=False,
        allow_unencrypted=False,
        cert_dir=tmp_path,
    ) as endpoint:
        yield endpoint


def _echo(ep: WinRMEndpoint, line: str, *, console: bool) -> str:
    """`more` (echoes stdin) fed `line` in two Sends, stdin in console or pipe mode."""
    proto = winrm.protocol.Protocol(
        ep.url, transport="ntlm", username=USER, password=PASSWORD, ca_trust_path=None
    )
    shell = proto.open_shell()
    try:
        command = proto.run_command(shell, "more", console_mode_stdin=console)
        half = len(line) // 2
        proto.send_command_input(shell, command, line[:half])
        proto.send_command_input(shell, command, line[half:] + "\n" + "short\n", end=True)
        out, _, code = proto.get_command_output(shell, command)
        proto.cleanup_command(shell, command)
        assert code == 0
        return out.decode()
    finally:
        proto.close_shell(shell)


def test_console_mode_stdin_cuts_each_line_at_254_characters(ep: WinRMEndpoint) -> None:
    line = "x" * 1000
    lines = _echo(ep, line, console=True).splitlines()
    assert lines == ["x" * CONSOLE_LINE_CHARS, "short"]  # cut across the two Sends


def test_pipe_mode_stdin_keeps_every_line_whole(ep: WinRMEndpoint) -> None:
    line = "x" * 100_000
    assert _echo(ep, line, console=False).splitlines() == [line, "short"]
