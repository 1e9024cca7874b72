"""What the SSH transport adds to exec requests for Windows OpenSSH (harness/remote/ssh_exec.py)."""

from __future__ import annotations

import base64

from harness.remote import ps_host, ssh_exec
from harness.remote.powershell import CMD_LINE_BUDGET


def test_pid_line_is_taken_off_the_front_even_when_split() -> None:
    data = b"#<harness-pid:4212>\r\nhello\r\n"
    for cut in range(1, len(data)):
        reader = ssh_exec.PidReader()
        got = reader.feed(data[:cut]) + reader.feed(data[cut:]) + reader.flush()
        assert (reader.pid, got) == (4212, b"hello\r\n"), cut


def test_output_without_a_pid_line_passes_unchanged() -> None:
    reader = ssh_exec.PidReader()
    assert reader.feed(b"#<") == b""  # could still be the line
    assert reader.feed(b" not it\r\nmore") == b"#< not it\r\nmore"
    assert reader.pid is None and reader.feed(b"x") == b"x"
    early = ssh_exec.PidReader()
    assert early.feed(b"#<harness-p") == b"" and early.flush() == b"#<harness-p"


def test_lines_and_the_host_bootstrap() -> None:
    assert ssh_exec.wrap_line("hostname", cmd_default_shell=True) == "cmd.exe /c hostname"
    assert (
        ssh_exec.wrap_line("hostname", cmd_default_shell=False)
        == "cmd.exe /c hostname; exit $LASTEXITCODE"
    )
    assert ssh_exec.kill_line(4212) == "taskkill /PID 4212 /T /F"
    script = ssh_exec.per_call_script("exit 3")
    assert script.splitlines() == [ssh_exec.UTF8_STATEMENT, ssh_exec.PID_STATEMENT, "exit 3"]
    boot = ssh_exec.host_bootstrap().splitlines()
    assert boot[:2] == [ps_host.MARKER, ssh_exec.PID_STATEMENT]
    assert boot[2:] == ps_host.bootstrap_script().splitlines()[1:]
    line = ssh_exec.host_command_line()
    assert len(line) <= CMD_LINE_BUDGET
    encoded = line.rsplit(" ", 1)[1]
    assert base64.b64decode(encoded).decode("utf-16-le") == ssh_exec.host_bootstrap()
    # ASCII only: the line travels through the console code page
    assert ssh_exec.host_bootstrap().isascii() and ssh_exec.per_call_script("").isascii()
