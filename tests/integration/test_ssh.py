"""The SSH transport (real paramiko) against the virtual lab's SSH endpoint (real asyncssh)."""

from __future__ import annotations

import base64
import hashlib
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.errors import InfrastructureError
from harness.remote.deadline import Deadline
from harness.remote.ssh_transport import SshSettings, SshShell, windows_sftp_path
from harness.virtual_lab.ssh_keys import HostKey, UserKey
from harness.virtual_lab.ssh_server import SshEndpoint, windows_to_local
from harness.virtual_lab.winrm import BuiltinExecutor

pytestmark = pytest.mark.integration

USER, PASSWORD = "tester", "Ssh-Passw0rd!"


@pytest.fixture(scope="module")
def user_key(tmp_path_factory: pytest.TempPathFactory) -> UserKey:
    return UserKey.generate(tmp_path_factory.mktemp("client") / "id_ed25519")


@pytest.fixture
def executor() -> BuiltinExecutor:
    return BuiltinExecutor(hostname="DUT-01", user="lab\\tester")


@pytest.fixture
def ep(executor: BuiltinExecutor, user_key: UserKey, tmp_path: Path) -> Iterator[SshEndpoint]:
    with SshEndpoint(
        executor,
        USER,
        PASSWORD,
        authorized_keys=[user_key.authorized_key],
        host_key_dir=tmp_path / "dut",
    ) as endpoint:
        yield endpoint


def _settings(ep: SshEndpoint, **kw: object) -> SshSettings:
    base: dict[str, object] = {
        "host": "127.0.0.1",
        "port": ep.port,
        "username": USER,
        "known_hosts": ep.known_hosts_path,
        "password": PASSWORD,
    }
    base.update(kw)
    return SshSettings(**base)  # type: ignore[arg-type]


@pytest.fixture
def shell(ep: SshEndpoint) -> Iterator[SshShell]:
    with SshShell(_settings(ep)) as sh:
        yield sh


def test_password_auth_exec_exit_codes_and_output(shell: SshShell) -> None:
    r = shell.run("hostname", timeout_s=5)
    assert (r.exit_code, r.stdout, r.stderr) == (0, "DUT-01\r\n", "")
    assert shell.run("exit", ["/b", "3"], timeout_s=5).exit_code == 3
    bad = shell.run("nosuchtool", timeout_s=5)
    assert bad.exit_code == 1 and "is not recognized" in bad.stderr
    assert shell.run("echo", ["héllo"], timeout_s=5).stdout == "héllo\r\n"


def test_public_key_auth(ep: SshEndpoint, user_key: UserKey) -> None:
    with SshShell(_settings(ep, password=None, key_filename=user_key.path)) as sh:
        assert sh.run("whoami", timeout_s=5).stdout == "lab\\tester\r\n"


def test_wrong_password_refused(ep: SshEndpoint) -> None:
    with (
        SshShell(_settings(ep, password="wrong")) as sh,
        pytest.raises(InfrastructureError, match="authentication as 'tester'"),
    ):
        sh.run("hostname", timeout_s=5)


def test_unknown_host_key_refused_with_how_to_trust(ep: SshEndpoint, tmp_path: Path) -> None:
    empty = tmp_path / "empty_known_hosts"
    empty.write_text("")
    with (
        SshShell(_settings(ep, known_hosts=empty)) as sh,
        pytest.raises(InfrastructureError) as info,
    ):
        sh.run("hostname", timeout_s=5)
    msg = str(info.value)
    assert "not in" in msg and ep.host_key.fingerprint in msg
    assert f"ssh-keyscan -t ed25519 -p {ep.port} 127.0.0.1 >> {empty}" in msg


def test_changed_host_key_refused(ep: SshEndpoint, tmp_path: Path) -> None:
    other = HostKey.ensure(tmp_path / "other")  # e.g. a reinstalled DUT or a man in the middle
    kh = tmp_path / "stale_known_hosts"
    kh.write_text(other.known_hosts_line("127.0.0.1", ep.port) + "\n")
    with (
        SshShell(_settings(ep, known_hosts=kh)) as sh,
        pytest.raises(InfrastructureError, match="CHANGED") as info,
    ):
        sh.run("hostname", timeout_s=5)
    assert other.fingerprint in str(info.value) and ep.host_key.fingerprint in str(info.value)


def test_encoded_command_powershell(shell: SshShell, executor: BuiltinExecutor) -> None:
    r = shell.run_powershell("Write-Output 'hi'; hostname; exit 4", timeout_s=5)
    assert (r.exit_code, r.stdout) == (4, "hi\r\nDUT-01\r\n")
    assert "-EncodedCommand" in executor.started[-1][0]
    assert "Write-Output 'hi'" in r.command  # recorded decoded


def test_long_script_goes_through_stdin(ep: SshEndpoint, executor: BuiltinExecutor) -> None:
    shell = SshShell(_settings(ep), persistent_powershell=False)  # the per-call fallback
    body = "\n".join(f"Write-Output 'line {i:04d} of a long operation script'" for i in range(300))
    tail = "\nexit 7"
    script = body + "\n# " + "x" * (20_000 - len(body) - len(tail) - 3) + tail
    assert len(script) == 20_000
    r = shell.run_powershell(script, timeout_s=5)
    assert r.exit_code == 7
    assert r.stdout.splitlines() == [f"line {i:04d} of a long operation script" for i in range(300)]
    assert executor.started[-1][0].endswith("-Command -")
    shell.close()


def test_command_past_deadline_is_closed(shell: SshShell, executor: BuiltinExecutor) -> None:
    started = time.monotonic()
    with pytest.raises(InfrastructureError, match=r"deadline of 0\.5s"):
        shell.run_powershell("Start-Sleep -Seconds 30", timeout_s=0.5)
    assert time.monotonic() - started < 0.5 + 0.5
    running = executor.started[-1][1]
    probe = Deadline.after(2.0, "server to terminate the command")
    while not getattr(running, "terminated", False):
        probe.check()
        running.wait(0.05)
    assert shell.run("hostname", timeout_s=5).ok  # the connection is still usable


def test_nested_deadline_wins(shell: SshShell) -> None:
    outer = Deadline.after(0.3, "step")
    with pytest.raises(InfrastructureError):
        shell.run_powershell("Start-Sleep -Seconds 30", timeout_s=60, deadline=outer)
    assert outer.expired


def test_stdin_forwarded(ep: SshEndpoint, shell: SshShell) -> None:
    r = shell._execute("more", b"line one\r\n", "more", Deadline.after(5, "more"))
    assert r.stdout == "line one\r\n"


def test_sftp_upload_with_hash_check(ep: SshEndpoint, shell: SshShell, tmp_path: Path) -> None:
    payload = bytes(range(256)) * 4096 + b"tail"
    local = tmp_path / "drv.sys"
    local.write_bytes(payload)
    shell.upload(local, r"C:\harness\pkg\drv.sys", timeout_s=5)
    on_dut = ep.sftp_root / "C" / "harness" / "pkg" / "drv.sys"
    assert hashlib.sha256(on_dut.read_bytes()).digest() == hashlib.sha256(payload).digest()
    assert "verified" in shell.transcript.entries[-1].stdout
    shell.upload(local, "C:/harness/pkg/again.sys", timeout_s=5)  # existing folders are fine
    assert (ep.sftp_root / "C" / "harness" / "pkg" / "again.sys").exists()


def test_path_mapping(tmp_path: Path) -> None:
    assert windows_sftp_path(r"C:\harness\x.inf") == "/C:/harness/x.inf"
    assert windows_to_local(tmp_path, "/c:/a/../../b") == tmp_path / "C" / "b"
    assert windows_to_local(tmp_path, r"D:\x") == tmp_path / "D" / "x"
    assert windows_to_local(tmp_path, "x", "lab\\tester") == tmp_path / "C/Users/tester/x"


def test_reconnect_after_restart_on_new_port(
    executor: BuiltinExecutor, tmp_path: Path, ep: SshEndpoint, shell: SshShell
) -> None:
    assert shell.run("hostname", timeout_s=5).ok
    old_port, key_dir = ep.port, ep.host_key_dir
    ep.stop()
    with pytest.raises(InfrastructureError):
        shell.run("hostname", timeout_s=2)
    with SshEndpoint(executor, USER, PASSWORD, host_key_dir=key_dir) as again:
        assert again.port != old_port and again.host_key.fingerprint == ep.host_key.fingerprint
        shell.reconnect(port=again.port, timeout_s=5)
        assert shell.run("hostname", timeout_s=5).stdout == "DUT-01\r\n"


def test_refuse_and_drop_faults(ep: SshEndpoint, shell: SshShell) -> None:
    assert shell.run("hostname", timeout_s=5).ok
    ep.drop_next()
    with pytest.raises(InfrastructureError, match="lost before the command ended"):
        shell.run_powershell("Start-Sleep -Seconds 30", timeout_s=5)
    ep.refuse()
    with pytest.raises(InfrastructureError, match=r"Connection refused|SSH error"):
        shell.reconnect(timeout_s=2)
    ep.accept()
    shell.reconnect(timeout_s=5)
    assert shell.run("hostname", timeout_s=5).ok


def test_client_socket_has_nodelay(shell: SshShell) -> None:
    shell.run("hostname", timeout_s=5)
    assert shell.socket is not None
    assert shell.socket.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0


def test_connection_reused(ep: SshEndpoint, shell: SshShell) -> None:
    # Latency (Nagle/delayed-ACK stalls) is a benchmark matter; NODELAY itself is checked above.
    shell.run("hostname", timeout_s=5)
    sock, execs = shell.socket, ep.execs_total
    for _ in range(10):
        shell.run("hostname", timeout_s=5)
    assert shell.socket is sock and ep.connections_open == 1
    assert ep.execs_total == execs + 10


def test_secrets_redacted_from_transcript(ep: SshEndpoint) -> None:
    token = "T0ken-Secret-42"
    with SshShell(_settings(ep), secrets=[token]) as sh:
        sh.run("echo", [PASSWORD, token], timeout_s=5)
        sh.run_powershell(f"Write-Output '{token}'", timeout_s=5)
        text = sh.transcript.render()
    assert PASSWORD not in text and token not in text
    encoded = base64.b64encode(f"Write-Output '{token}'".encode("utf-16-le")).decode()
    assert encoded not in text and "Write-Output '***'" in text
