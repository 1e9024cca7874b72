"""`powershell.exe -Command -` runs stdin statement by statement (G13), over both transports.

Windows PowerShell 5.1 (about_PowerShell_exe): statements read from stdin run one at a time as if
typed, so a `throw` does not stop the next ones, and the exit code is the last statement's status.
The virtual lab's PowerShell does the same; the harness sends a script too long for
`-EncodedCommand` as one statement that runs it as a whole, so both routes agree.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.remote.ssh_transport import SshSettings, SshShell
from harness.remote.winrm_transport import WinRMSettings, WinRMShell
from harness.virtual_lab.ssh_server import SshEndpoint
from harness.virtual_lab.winrm import BuiltinExecutor, WinRMEndpoint
from harness.virtual_lab.winrm.builtin import read_stdin_script

pytestmark = pytest.mark.integration

USER, PASSWORD = "stdinsem", "Stdin-Passw0rd!"  # NTLM users are per process: own name
PAD = "\n# " + "p" * 9000  # too long for -EncodedCommand: the script goes on stdin
Shell = WinRMShell | SshShell


@pytest.fixture(params=["winrm", "ssh"])
def shell(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Shell]:
    executor = BuiltinExecutor(hostname="DUT-01", user="lab\\tester")
    if request.param == "winrm":
        with (
            WinRMEndpoint(
                executor, USER, PASSWORD, https=False, allow_unencrypted=False, cert_dir=tmp_path
            ) as ep,
            WinRMShell(WinRMSettings(ep.url, USER, PASSWORD), persistent_powershell=False) as sh,
        ):
            yield sh
    else:
        with (
            SshEndpoint(executor, USER, PASSWORD, host_key_dir=tmp_path / "ssh") as sep,
            SshShell(
                SshSettings("127.0.0.1", sep.port, USER, sep.known_hosts_path, password=PASSWORD),
                persistent_powershell=False,
            ) as sh,
        ):
            yield sh


def test_a_throw_stops_a_long_script_as_it_stops_a_short_one(shell: Shell) -> None:
    body = "Write-Output 'before'\nthrow 'boom'\nWrite-Output 'after'"
    short = shell.run_powershell(body, timeout_s=10)
    long = shell.run_powershell(body + PAD, timeout_s=10)
    for r in (short, long):
        assert (r.exit_code, r.stdout) == (1, "before\r\n") and "boom" in r.stderr


def test_exit_codes_of_a_long_script(shell: Shell) -> None:
    r = shell.run_powershell("Write-Error 'early'\nWrite-Output 'late'" + PAD, timeout_s=10)
    assert (r.exit_code, r.stdout) == (1, "late\r\n")  # as -EncodedCommand: an error was written
    assert shell.run_powershell("Write-Output 'x'\nexit 6" + PAD, timeout_s=10).exit_code == 6


def test_lab_runs_plain_stdin_statement_by_statement() -> None:
    ex = BuiltinExecutor()
    cmd = ex.start("powershell.exe -NoProfile -NonInteractive -Command -", [], skip_cmd_shell=False)
    cmd.write_stdin("Write-Output 'a'\r\nthrow 'boom'\r\nWrite-Output 'b'\r\n\r\n", end=True)
    cmd.wait(2)
    out = cmd.poll()
    assert (out.exit_code, out.stdout) == (0, "a\r\nb\r\n") and "boom" in out.stderr
    from harness.remote.powershell import stdin_statement

    script, repl = read_stdin_script(stdin_statement("exit 4") + "\r\n\r\n")
    assert (script, repl) == ("exit 4", False)
    raw = base64.b64encode(b"x").decode()
    assert read_stdin_script(f"Write-Output '{raw}'")[1] is True
