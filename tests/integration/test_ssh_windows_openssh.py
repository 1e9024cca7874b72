"""The SSH transport (real paramiko) against a virtual lab that behaves as Windows OpenSSH does.

Each test is a real-Windows behaviour (docs: ../shared/findings/transport-fidelity.md, section 4,
gaps G2, G11, G12, G14, G15, and windows-review.md F16) that the virtual lab's SSH endpoint
models (`harness.virtual_lab.ssh_processes`, `ssh_sftp`) and that the harness must cope with.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from pathlib import Path

import paramiko
import pytest

from harness.errors import ConfigError, InfrastructureError
from harness.remote.deadline import Deadline
from harness.remote.powershell import CMD_LINE_LIMIT, PS_PREFIX
from harness.remote.ssh_transport import SshSettings, SshShell
from harness.virtual_lab import ssh_processes
from harness.virtual_lab.ssh_server import SshEndpoint
from harness.virtual_lab.winrm import BuiltinExecutor

pytestmark = pytest.mark.integration

USER, PASSWORD = "tester", "Ssh-Passw0rd!"
PS_SHELL = r"C:\Windows\System32\WindowsPowerShell\v1.0\powershell.exe"


@pytest.fixture
def executor() -> BuiltinExecutor:
    return BuiltinExecutor(hostname="DUT-01", user="lab\\tester")


def _endpoint(
    executor: BuiltinExecutor, tmp_path: Path, *, shell: str | None = None, **quirks: object
) -> SshEndpoint:
    return SshEndpoint(
        executor,
        USER,
        PASSWORD,
        host_key_dir=tmp_path / "dut",
        default_shell=lambda: shell,
        quirks=dict(quirks),  # type: ignore[arg-type]
    )


@pytest.fixture
def ep(executor: BuiltinExecutor, tmp_path: Path) -> Iterator[SshEndpoint]:
    with _endpoint(executor, tmp_path) as endpoint:
        yield endpoint


def _shell(ep: SshEndpoint, *, persistent: bool = False) -> SshShell:
    settings = SshSettings("127.0.0.1", ep.port, USER, ep.known_hosts_path, password=PASSWORD)
    return SshShell(settings, persistent_powershell=persistent)


def _wait_until(what: str, done: object, budget_s: float = 3.0) -> None:
    dl = Deadline.after(budget_s, what)
    while not done():  # type: ignore[operator]
        dl.check()
        time.sleep(0.02)


# -- G2: a closed channel does not end the process --------------------------------------------
def test_lab_keeps_a_process_running_after_its_channel_closes(ep: SshEndpoint) -> None:
    client = paramiko.SSHClient()
    client.load_host_keys(str(ep.known_hosts_path))
    client.connect("127.0.0.1", ep.port, USER, PASSWORD, look_for_keys=False, allow_agent=False)
    try:
        chan = client.get_transport().open_session()  # type: ignore[union-attr]
        script = base64.b64encode("Start-Sleep -Seconds 30".encode("utf-16-le")).decode()
        chan.exec_command(f"{PS_PREFIX} -EncodedCommand {script}")
        _wait_until("the process to start", lambda: len(ep.processes.alive()) == 1)
        chan.close()
        proc = ep.processes.alive()[0]
        _wait_until("the server to see the close", lambda: proc.detached)
        assert ep.processes.alive() == [proc]  # Win32-OpenSSH#1751: it runs on
        kill = client.get_transport().open_session()  # type: ignore[union-attr]
        kill.exec_command(f"taskkill /PID {proc.pid} /T /F")
        assert kill.recv_exit_status() == 0
        _wait_until("the process to end", lambda: not ep.processes.alive())
    finally:
        client.close()


@pytest.mark.parametrize("persistent", [False, True], ids=["per-call", "host"])
def test_deadline_ends_the_process_tree_by_pid(ep: SshEndpoint, persistent: bool) -> None:
    with _shell(ep, persistent=persistent) as shell:
        shell.run_powershell("Write-Output 'up'", timeout_s=5)
        with pytest.raises(InfrastructureError, match="taskkill /PID") as info:
            shell.run_powershell("Start-Sleep -Seconds 30", timeout_s=1.0)
        assert "were ended" in str(info.value)
        _wait_until("every process to end", lambda: not ep.processes.alive())
        kills = [e for e in shell.transcript.entries if e.command.startswith("taskkill /PID")]
        assert len(kills) == 1 and kills[0].exit_code == 0
        assert shell.run_powershell("Write-Output 'again'", timeout_s=5).stdout == "again\r\n"


# -- G11: the quotes sshd adds count toward cmd.exe's limit -----------------------------------
def test_a_script_near_the_limit_still_runs(ep: SshEndpoint) -> None:
    """A script whose bare -EncodedCommand line is 8190 characters: with sshd's two quotes
    cmd.exe would refuse it ("The command line is too long.")."""
    base = "Write-Output 'near the limit'\n# "
    n = 0
    while (
        len(f"{PS_PREFIX} -EncodedCommand ")
        + len(base64.b64encode((base + "x" * n).encode("utf-16-le")))
        < CMD_LINE_LIMIT - 1
    ):
        n += 1
    script = base + "x" * n
    assert len(f"{PS_PREFIX} -EncodedCommand ") + len(
        base64.b64encode(script.encode("utf-16-le"))
    ) in (CMD_LINE_LIMIT - 1, CMD_LINE_LIMIT)
    with _shell(ep) as shell:
        r = shell.run_powershell(script, timeout_s=5)
    assert (r.exit_code, r.stdout, r.stderr) == (0, "near the limit\r\n", "")


def test_lab_refuses_a_line_over_the_limit_with_cmd_exe_message(ep: SshEndpoint) -> None:
    with _shell(ep) as shell:
        r = shell._execute("echo " + "y" * 8190, None, "echo", Deadline.after(5, "echo"))
    assert (r.exit_code, r.stderr) == (1, "The command line is too long.\r\n")


# -- G12: per-call output is in the OEM code page ---------------------------------------------
@pytest.mark.parametrize(
    ("locale", "text"), [("de-DE", "Gerät für Prüfung"), ("ja-JP", "デバイス装置")]
)
def test_per_call_output_survives_the_oem_code_page(
    executor: BuiltinExecutor, tmp_path: Path, locale: str, text: str
) -> None:
    with _endpoint(executor, tmp_path, locale=locale) as ep, _shell(ep) as shell:
        r = shell.run_powershell(f"Write-Output '{text}'", timeout_s=5)
        assert r.stdout == f"{text}\r\n"
        long = shell.run_powershell(f"Write-Output '{text}'\n# " + "z" * 9000, timeout_s=5)
        assert long.stdout == f"{text}\r\n"  # the -Command - route too


def test_lab_writes_per_call_output_in_the_oem_code_page(
    executor: BuiltinExecutor, tmp_path: Path
) -> None:
    with _endpoint(executor, tmp_path, locale="de-DE") as ep:
        client = paramiko.SSHClient()
        client.load_host_keys(str(ep.known_hosts_path))
        client.connect("127.0.0.1", ep.port, USER, PASSWORD, look_for_keys=False)
        try:
            b64 = base64.b64encode("Write-Output 'Gerät'".encode("utf-16-le")).decode()
            _, out, _ = client.exec_command(f"{PS_PREFIX} -EncodedCommand {b64}", timeout=5)
            assert out.read() == "Gerät\r\n".encode("cp850")
        finally:
            client.close()


# -- G14: exit status without EOF -------------------------------------------------------------
def test_exit_status_without_eof_is_accepted_after_a_grace(
    executor: BuiltinExecutor, tmp_path: Path
) -> None:
    with _endpoint(executor, tmp_path, ssh_eof_withheld=True) as ep, _shell(ep) as shell:
        t0 = time.monotonic()
        r = shell.run("hostname", timeout_s=10)
        assert (r.exit_code, r.stdout) == (0, "DUT-01\r\n")
        r = shell.run_powershell("Write-Output 'done'; exit 3", timeout_s=10)
        assert (r.exit_code, r.stdout) == (3, "done\r\n")
        assert time.monotonic() - t0 < 8.0  # a grace per call, not the deadline


def test_a_host_that_ends_without_eof_is_seen_ending(
    executor: BuiltinExecutor, tmp_path: Path
) -> None:
    """The persistent host cannot start and sshd withholds EOF: the harness still sees it end
    (exit status, then a grace) and falls back to per call instead of waiting for its deadline."""
    with (
        _endpoint(executor, tmp_path, ssh_eof_withheld=True, ps_host_blocked=True) as ep,
        _shell(ep, persistent=True) as shell,
    ):
        t0 = time.monotonic()
        r = shell.run_powershell("Write-Output 'fallback'", timeout_s=20)
        assert (r.exit_code, r.stdout) == (0, "fallback\r\n")
        assert time.monotonic() - t0 < 8.0 and shell.persistent_powershell is False


# -- F16: a PowerShell DefaultShell ------------------------------------------------------------
def test_powershell_default_shell_keeps_cmd_lines_and_exit_codes(
    executor: BuiltinExecutor, tmp_path: Path
) -> None:
    with _endpoint(executor, tmp_path, shell=PS_SHELL) as ep, _shell(ep) as shell:
        assert shell.run("exit", ["/b", "3"], timeout_s=5).exit_code == 3
        assert shell.run("hostname", timeout_s=5).stdout == "DUT-01\r\n"
        r = shell.run_powershell("Write-Output 'hi'; exit 4", timeout_s=5)
        assert (r.exit_code, r.stdout) == (4, "hi\r\n")
        long = shell.run_powershell(
            "Write-Output 'long'\n# " + "z" * 9000 + "\nexit 6", timeout_s=5
        )
        assert (long.exit_code, long.stdout) == (6, "long\r\n")
    with (
        _endpoint(executor, tmp_path / "b", shell=PS_SHELL) as ep,
        _shell(ep, persistent=True) as sh,
    ):
        r = sh.run_powershell("Write-Output 'hosted'; exit 5", timeout_s=5)
        assert (r.exit_code, r.stdout) == (5, "hosted\r\n")


def test_lab_under_a_powershell_default_shell_parses_the_line_as_powershell(
    executor: BuiltinExecutor, tmp_path: Path
) -> None:
    with _endpoint(executor, tmp_path, shell=PS_SHELL) as ep:
        client = paramiko.SSHClient()
        client.load_host_keys(str(ep.known_hosts_path))
        client.connect("127.0.0.1", ep.port, USER, PASSWORD, look_for_keys=False)
        try:
            for line, rc in (
                ("exit /b 3", 1),  # a parser error
                ("cmd.exe /c exit /b 3", 1),  # -Command: $? of the last statement
                ("cmd.exe /c exit /b 3; exit $LASTEXITCODE", 3),
                ("exit 7", 7),
            ):
                _, out, _ = client.exec_command(line, timeout=5)
                assert out.channel.recv_exit_status() == rc, line
        finally:
            client.close()


# -- G15: the SFTP namespace is NTFS's ----------------------------------------------------------
def test_sftp_names_are_case_blind_and_reserved_names_refused(
    ep: SshEndpoint, tmp_path: Path
) -> None:
    local = tmp_path / "x.sys"
    local.write_bytes(b"driver")
    with _shell(ep) as shell:
        shell.upload(local, r"C:\harness\pkg\x.sys", timeout_s=5)
        shell.upload(local, r"C:\HARNESS\Pkg\y.sys", timeout_s=5)  # the same folder
        pkg = ep.sftp_root / "C" / "harness" / "pkg"
        assert sorted(f.name for f in pkg.iterdir()) == ["x.sys", "y.sys"]
        assert sorted(f.name for f in (ep.sftp_root / "C").iterdir()) == ["Users", "harness"]
        for bad in (r"C:\harness\aux.sys", r"C:\harness\x.sys.", r"C:\harness\a:b"):
            with pytest.raises(ConfigError, match="cannot be created on Windows"):
                shell.upload(local, bad, timeout_s=5)


def test_lab_sftp_refuses_names_windows_cannot_create(ep: SshEndpoint, tmp_path: Path) -> None:
    client = paramiko.SSHClient()
    client.load_host_keys(str(ep.known_hosts_path))
    client.connect("127.0.0.1", ep.port, USER, PASSWORD, look_for_keys=False)
    try:
        sftp = client.open_sftp()
        sftp.mkdir("/C:/harness")
        for bad in ("/C:/harness/NUL", "/C:/harness/com1.txt", "/C:/harness/trail ", "/C:/a?b"):
            with pytest.raises(OSError, match="syntax is incorrect"):
                sftp.open(bad, "wb")
        with sftp.open("/C:/HARNESS/Case.txt", "wb") as f:
            f.write(b"1")
        assert sftp.stat("/c:/harness/CASE.TXT").st_size == 1
        assert (ep.sftp_root / "C" / "harness" / "Case.txt").exists()  # case preserved
    finally:
        client.close()


def test_the_lab_and_the_harness_agree_on_the_prologue() -> None:
    from harness.remote import ssh_exec

    assert ssh_exec.UTF8_STATEMENT == ssh_processes.UTF8_STATEMENT
    assert ssh_exec.PID_STATEMENT == ssh_processes.PID_STATEMENT
