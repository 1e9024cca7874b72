"""The harness's WinRM transport (`WinRMShell`) against the virtual lab's WinRM endpoint."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import winrm

from harness.errors import ConfigError, InfrastructureError
from harness.remote.deadline import Deadline
from harness.remote.winrm_transport import WinRMAuth, WinRMSettings, WinRMShell
from harness.virtual_lab.winrm import BuiltinExecutor, WinRMEndpoint
from harness.virtual_lab.winrm.builtin import read_stdin_script
from harness.virtual_lab.winrm.executor import RunningCommand, SteppedCommand
from harness.windows.actions import upload_file
from harness.windows.host import WindowsHost
from harness.windows.ops import OperationCatalog

pytestmark = pytest.mark.integration

USER, PASSWORD = "tester", "Lab-Passw0rd!"


@pytest.fixture(scope="module")
def cert_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("winrm-pki")


@pytest.fixture
def executor() -> BuiltinExecutor:
    return BuiltinExecutor(hostname="DUT-01", user="lab\\tester")


def _endpoint(executor: BuiltinExecutor, cert_dir: Path, **kw: object) -> WinRMEndpoint:
    opts: dict[str, object] = {"https": False, "allow_unencrypted": False, "cert_dir": cert_dir}
    opts.update(kw)
    return WinRMEndpoint(executor, USER, PASSWORD, **opts)  # type: ignore[arg-type]


@pytest.fixture
def ep(executor: BuiltinExecutor, cert_dir: Path) -> Iterator[WinRMEndpoint]:
    with _endpoint(executor, cert_dir) as endpoint:
        yield endpoint


@pytest.fixture
def shell(ep: WinRMEndpoint) -> Iterator[WinRMShell]:
    with WinRMShell(WinRMSettings(ep.url, USER, PASSWORD)) as sh:
        yield sh


@pytest.fixture
def per_call_shell(ep: WinRMEndpoint) -> Iterator[WinRMShell]:
    """The fallback: one powershell.exe per run_powershell (persistent host off)."""
    with WinRMShell(WinRMSettings(ep.url, USER, PASSWORD), persistent_powershell=False) as sh:
        yield sh


def test_one_connection_one_shell_reused(ep: WinRMEndpoint, per_call_shell: WinRMShell) -> None:
    shell = per_call_shell
    n = 5
    for i in range(n):
        r = shell.run("echo", [f"call{i}"], timeout_s=10)
        assert (r.exit_code, r.stdout) == (0, f"call{i}\r\n")
    r = shell.run_powershell("Write-Output 'ps'; exit 4", timeout_s=10)
    assert (r.exit_code, r.stdout) == (4, "ps\r\n")
    shell.close()
    calls = n + 1
    assert ep.action_counts == {
        "Create": 1,
        "Command": calls,
        "Receive": calls,
        "Signal": calls,
        "Delete": 1,
    }
    assert ep.soap_requests_total == 2 + 3 * calls
    assert ep.requests_total == ep.soap_requests_total + 3  # one NTLM handshake
    assert ep.connections_total == 1


def test_deadline_terminates_the_remote_command(
    ep: WinRMEndpoint, shell: WinRMShell, executor: BuiltinExecutor
) -> None:
    t0 = time.monotonic()
    with pytest.raises(InfrastructureError, match="expired while waiting for PowerShell script"):
        shell.run_powershell("Start-Sleep -Seconds 30", timeout_s=1.5)
    elapsed = time.monotonic() - t0
    assert 1.5 <= elapsed < 1.5 + 1.2
    running = executor.started[-1][1]
    assert isinstance(running, SteppedCommand) and running.terminated
    assert shell.run("hostname", timeout_s=5).stdout == "DUT-01\r\n"  # shell still usable


def test_enclosing_deadline_bounds_the_call(shell: WinRMShell) -> None:
    outer = Deadline.after(1.0, "scenario step")
    t0 = time.monotonic()
    with pytest.raises(InfrastructureError):
        shell.run_powershell("Start-Sleep -Seconds 30", timeout_s=60, deadline=outer)
    assert time.monotonic() - t0 < 1.0 + 1.2


def test_twenty_thousand_character_script(ep: WinRMEndpoint, shell: WinRMShell) -> None:
    lines = [f"Write-Output 'line {i:05d} {'x' * 24}'" for i in range(500)]
    script = "\n".join(["# a long operation script", *lines, "exit 7"])
    assert len(script) > 20_000
    r = shell.run_powershell(script, timeout_s=10)
    assert r.exit_code == 7
    out = r.stdout.splitlines()
    assert len(out) == 500 and out[0].startswith("line 00000") and out[-1].startswith("line 00499")
    assert ep.action_counts["Send"] >= 1  # went through stdin, not the command line
    assert len(shell.transcript.entries[-1].command) > 20_000  # the script itself, decoded


def test_reconnect_after_the_host_restarts_on_the_same_port(
    executor: BuiltinExecutor, cert_dir: Path
) -> None:
    first = _endpoint(executor, cert_dir).start()
    port = first.port
    try:
        sh = WinRMShell(WinRMSettings(first.url, USER, PASSWORD))
        assert sh.run("hostname", timeout_s=5).exit_code == 0
    finally:
        first.stop()
    with _endpoint(executor, cert_dir, port=port) as second:
        with pytest.raises(InfrastructureError):
            sh.run("hostname", timeout_s=5)  # old connection and shell are gone
        sh.reconnect()
        assert sh.run("hostname", timeout_s=5).stdout == "DUT-01\r\n"
        sh.close()
        assert second.action_counts["Create"] == 1


def test_transcript_redacts_secrets_and_decodes_scripts(per_call_shell: WinRMShell) -> None:
    shell = per_call_shell
    r = shell.run_powershell(f"Write-Output 'token {PASSWORD} here'", timeout_s=5)
    assert PASSWORD in r.stdout  # the caller gets real data
    entry = shell.transcript.entries[-1]
    assert PASSWORD not in entry.command and PASSWORD not in entry.stdout
    assert "Write-Output 'token *** here'" in entry.command
    assert "EncodedCommand <decoded script>" in entry.command
    assert r.command == entry.command
    assert "token *** here" in shell.transcript.render()


def test_basic_over_https_with_the_lab_ca(executor: BuiltinExecutor, cert_dir: Path) -> None:
    with _endpoint(executor, cert_dir, https=True) as ep:
        settings = WinRMSettings(ep.url, USER, PASSWORD, auth=WinRMAuth.BASIC, ca_file=ep.ca_file)
        with WinRMShell(settings) as sh:
            assert sh.run("whoami", timeout_s=5).stdout == "lab\\tester\r\n"
            assert sh.warnings == []
        with pytest.raises(InfrastructureError, match="TLS certificate validation failed"):
            WinRMShell(WinRMSettings(ep.url, USER, PASSWORD, auth=WinRMAuth.BASIC)).run(
                "hostname", timeout_s=5
            )


def test_basic_over_http_refused_by_the_client_unless_allowed(
    executor: BuiltinExecutor, cert_dir: Path
) -> None:
    with pytest.raises(ConfigError, match="clear text"):
        WinRMShell(WinRMSettings("http://127.0.0.1:1/wsman", USER, PASSWORD, auth=WinRMAuth.BASIC))
    with _endpoint(executor, cert_dir, allow_unencrypted=True) as ep:
        settings = WinRMSettings(
            ep.url, USER, PASSWORD, auth=WinRMAuth.BASIC, allow_unencrypted=True
        )
        with WinRMShell(settings) as sh:
            assert sh.run("hostname", timeout_s=5).exit_code == 0
            assert any("clear text" in w for w in sh.warnings)


def test_missing_kerberos_libraries_are_a_config_error() -> None:
    import winrm.transport

    if winrm.transport.HAVE_KERBEROS:
        pytest.skip("pywinrm[kerberos] is installed here")
    with pytest.raises(ConfigError, match="kerberos"):
        WinRMShell(
            WinRMSettings("http://127.0.0.1:1/wsman", USER, PASSWORD, auth=WinRMAuth.KERBEROS)
        )


def test_transport_errors_are_infrastructure_errors(ep: WinRMEndpoint) -> None:
    with pytest.raises(InfrastructureError, match="rejected"):
        WinRMShell(WinRMSettings(ep.url, USER, "wrong")).run("hostname", timeout_s=5)
    with socket.socket() as s:  # a port nobody listens on any more
        s.bind(("127.0.0.1", 0))
        free_port = s.getsockname()[1]
    with pytest.raises(InfrastructureError, match="cannot connect"):
        WinRMShell(WinRMSettings(f"http://127.0.0.1:{free_port}/wsman", USER, PASSWORD)).run(
            "hostname", timeout_s=5
        )


def test_reused_shell_needs_fewer_requests_than_run_ps(ep: WinRMEndpoint) -> None:
    # Latency figures: bench/remote_calls.py. Here, the request counts the design rests on.
    n = 5
    session = winrm.Session(ep.url, (USER, PASSWORD), transport="ntlm", ca_trust_path=None)
    r0 = ep.requests_total
    for _ in range(n):
        session.run_ps("Write-Output 'x'")
    per_session = (ep.requests_total - r0) / n
    with WinRMShell(WinRMSettings(ep.url, USER, PASSWORD), persistent_powershell=False) as sh:
        sh.run("hostname", timeout_s=5)  # connect + shell
        r1 = ep.requests_total
        for _ in range(n):
            sh.run_powershell("Write-Output 'x'", timeout_s=5)
        per_reuse = (ep.requests_total - r1) / n
    assert per_session == 8 and per_reuse == 3


class _UploadSink(SteppedCommand):
    """Understands the `file_write` and `file_hash` operation wrappers (from -EncodedCommand or
    from stdin); `corrupt` flips the first byte of what it stores."""

    PARAMS = re.compile(r"\n\} -ParamsBase64 '([A-Za-z0-9+/=]*)'\s*$")

    def __init__(self, files: dict[str, bytes], script: str | None, corrupt: bool = False) -> None:
        super().__init__()
        self._files, self._script, self._corrupt = files, script, corrupt
        if script is None:
            self._next_step_at = None  # wait for stdin

    def _stdin_script(self) -> str:
        """The script of `-Command -` (the harness sends it as one runner statement)."""
        return read_stdin_script(self.stdin_text())[0]

    def step(self, now: float) -> float | None:
        script = self._script if self._script is not None else self._stdin_script()
        if self._script is None and not self.stdin_closed:
            return None
        m = self.PARAMS.search(script)
        if m is None or not re.search(r"# Operation: file_(write|hash)\b", script):
            self.emit(stderr="not a file operation\r\n")
            self.finish(1)
            return None
        params = json.loads(base64.b64decode(m.group(1)).decode("utf-8"))
        path = params["path"]
        if "# Operation: file_hash" in script:
            data = self._files.get(path)
            digest = hashlib.sha256(data).hexdigest().upper() if data is not None else None
            out = {"path": path, "exists": data is not None, "sha256": digest}
            out["size"] = None if data is None else len(data)
            self.emit(stdout=json.dumps(out) + "\r\n")
            self.finish(0)
            return None
        data = base64.b64decode(params["data_base64"])
        if self._corrupt and data:
            data = bytes([data[0] ^ 0xFF]) + data[1:]
        mode = params["mode"]
        self._files[path] = (b"" if mode == "create" else self._files.get(path, b"")) + data
        self.emit(stdout=json.dumps({"path": path, "size": len(self._files[path])}) + "\r\n")
        self.finish(0)
        return None


class _UploadExecutor:
    def __init__(self, *, corrupt: bool = False) -> None:
        self.files: dict[str, bytes] = {}
        self.scripts: list[str] = []
        self.corrupt = corrupt

    def start(self, command: str, args: list[str], *, skip_cmd_shell: bool) -> RunningCommand:
        line = " ".join([command, *args])
        if line.endswith("-Command -"):
            return _UploadSink(self.files, None, self.corrupt)
        encoded = line.rsplit(" ", 1)[-1]
        return _UploadSink(self.files, base64.b64decode(encoded).decode("utf-16-le"), self.corrupt)


def _host(sh: WinRMShell) -> WindowsHost:
    return WindowsHost(sh, name="tb-01", catalog=OperationCatalog(), transcript=sh.transcript)


def test_upload_in_chunks_through_file_write(cert_dir: Path, tmp_path: Path) -> None:
    """WinRM has no file channel: the Windows layer sends the file through `file_write`."""
    sink = _UploadExecutor()
    local = tmp_path / "payload.bin"
    local.write_bytes(bytes(range(256)) * 1000)  # 256,000 bytes: 3 chunks
    hostile = "C:\\Windows\\Temp\\it's \u2018smart\u2019 $(calc) `n; & | \u00e9.json"
    with (
        WinRMEndpoint(
            sink, USER, PASSWORD, https=False, allow_unencrypted=False, cert_dir=cert_dir
        ) as ep,
        WinRMShell(WinRMSettings(ep.url, USER, PASSWORD), persistent_powershell=False) as sh,
    ):
        host = _host(sh)
        upload_file(host, local, r"C:\Windows\Temp\payload.bin", timeout_s=10)
        small = tmp_path / "small.json"
        small.write_text('{"a": 1}')
        upload_file(host, small, hostile, timeout_s=10)
        entries = sh.transcript.entries
    assert sink.files[r"C:\Windows\Temp\payload.bin"] == local.read_bytes()
    assert sink.files[hostile] == b'{"a": 1}'  # the path travelled as data
    # The transcript shows the operations and their parameters, not a base64 blob.
    ops = [e.command.split(" ", 2)[1] for e in entries if e.command.startswith("op ")]
    assert ops == ["file_write"] * 3 + ["file_hash", "file_write", "file_hash"]
    assert not any("file_write" in e.command and "JFBhcmFt" in e.command for e in entries)


def test_upload_failure_names_the_chunk(cert_dir: Path, tmp_path: Path) -> None:
    class _Refuse(_UploadExecutor):
        def start(self, command: str, args: list[str], *, skip_cmd_shell: bool) -> RunningCommand:
            return _UploadSink(self.files, "Write-Error 'denied'")

    local = tmp_path / "x.bin"
    local.write_bytes(b"x")
    with (
        WinRMEndpoint(
            _Refuse(), USER, PASSWORD, https=False, allow_unencrypted=False, cert_dir=cert_dir
        ) as ep,
        WinRMShell(WinRMSettings(ep.url, USER, PASSWORD), persistent_powershell=False) as sh,
        pytest.raises(
            InfrastructureError, match=r"chunk 1/1: .*operation file_write failed: exit 1"
        ),
    ):
        upload_file(_host(sh), local, r"C:\x.bin", timeout_s=10)


def test_an_upload_the_host_stores_differently_is_refused(cert_dir: Path, tmp_path: Path) -> None:
    """The host's SHA-256 of the uploaded file must match the local one."""
    sink = _UploadExecutor(corrupt=True)
    local = tmp_path / "x.bin"
    local.write_bytes(b"driver bytes")
    with (
        WinRMEndpoint(
            sink, USER, PASSWORD, https=False, allow_unencrypted=False, cert_dir=cert_dir
        ) as ep,
        WinRMShell(WinRMSettings(ep.url, USER, PASSWORD), persistent_powershell=False) as sh,
        pytest.raises(InfrastructureError, match=r"did not arrive intact"),
    ):
        upload_file(_host(sh), local, r"C:\x.bin", timeout_s=10)


@pytest.mark.parametrize("persistent", [True, False], ids=["host", "per-call"])
def test_a_send_the_server_times_out_is_an_infrastructure_error_and_the_next_call_works(
    ep: WinRMEndpoint, persistent: bool
) -> None:
    """A busy Windows host can answer a Send with the w:TimedOut fault (2150858793), which
    pywinrm raises as WinRMOperationTimeoutError, not a WinRMError. The call fails as an
    infrastructure error, the host that may hold a half-written line is forgotten, and the
    next call works on a fresh one."""
    lines = [f"Write-Output 'line {i:05d} {'x' * 24}'" for i in range(300)]
    big = "\n".join(["# too long for -EncodedCommand: per-call goes through stdin", *lines])
    with WinRMShell(WinRMSettings(ep.url, USER, PASSWORD), persistent_powershell=persistent) as sh:
        assert sh.run_powershell("Write-Output 'warm'", timeout_s=20).stdout.strip() == "warm"
        ep.time_out_next_sends(1)
        with pytest.raises(InfrastructureError, match="2150858793"):
            sh.run_powershell(big, timeout_s=20)
        failed = sh.transcript.entries[-1]
        assert failed.error and "2150858793" in failed.error  # the failed call is on record
        again = sh.run_powershell(big, timeout_s=20)
        assert again.exit_code == 0 and len(again.stdout.splitlines()) == 300


def test_the_hosts_progress_clixml_never_reaches_an_answer(shell: WinRMShell) -> None:
    """The virtual host writes a first-use progress record as unterminated CLIXML on stderr, as
    Windows PowerShell 5.1 does; answers carry no XML."""
    first = shell.run_powershell("Write-Output 'one'", timeout_s=20)
    second = shell.run_powershell("Write-Error 'two'", timeout_s=20)
    assert first.stdout.strip() == "one" and "<Obj" not in first.stderr + second.stderr
    assert "CLIXML" not in first.stderr + second.stderr


def test_the_operations_quota_of_a_reused_shell_is_never_reached(ep: WinRMEndpoint) -> None:
    """Windows counts every Command against MaxConcurrentOperationsPerUser for the life of a
    shell (Signal terminate gives none back) and faults 2150859174 past it: the transport
    recycles its shell before, and re-creates it once on the fault."""
    ep.set_operations_quota(5)
    with WinRMShell(WinRMSettings(ep.url, USER, PASSWORD), recycle_after=4) as sh:
        for i in range(12):
            assert sh.run(f"echo {i}", timeout_s=10).stdout.strip() == str(i)
    ep.set_operations_quota(3)
    with WinRMShell(WinRMSettings(ep.url, USER, PASSWORD), recycle_after=1000) as sh:
        for i in range(7):  # the 4th and 7th Commands meet the fault: a new shell, once
            assert sh.run(f"echo {i}", timeout_s=10).stdout.strip() == str(i)
    assert ep.action_counts["Create"] >= 3 + 3


def test_a_shell_deleted_while_idle_is_reopened_once(ep: WinRMEndpoint, shell: WinRMShell) -> None:
    """A shell idle longer than its IdleTimeOut is deleted by Windows; the next Command faults
    2150858843 before anything ran, so the transport opens a new shell and runs it there."""
    assert shell.run("hostname", timeout_s=10).exit_code == 0
    assert shell.run_powershell("Write-Output 'a'", timeout_s=10).stdout.strip() == "a"
    ep.expire_idle_shells()
    assert shell.run("echo back", timeout_s=10).stdout.strip() == "back"
    ep.expire_idle_shells()
    assert shell.run_powershell("Write-Output 'b'", timeout_s=10).stdout.strip() == "b"


def test_an_envelope_over_maxenvelopesizekb_is_refused_and_the_hosts_largest_send_fits(
    ep: WinRMEndpoint, shell: WinRMShell
) -> None:
    """Windows refuses a SOAP envelope over MaxEnvelopeSizekb (500 KiB) with HTTP 413; the
    virtual lab does too, and a 750 KB script through the persistent host still arrives (each Send
    carries at most 192 KiB, about 256 KiB base64)."""
    proto = winrm.protocol.Protocol(
        ep.url, transport="ntlm", username=USER, password=PASSWORD, ca_trust_path=None
    )
    shell_id = proto.open_shell()
    command = proto.run_command(shell_id, "more", console_mode_stdin=False)
    with pytest.raises(winrm.exceptions.WinRMTransportError) as err:
        proto.send_command_input(shell_id, command, "x" * (600 * 1024), end=True)
    assert err.value.code == 413
    proto.close_shell(shell_id)
    lines = [f"Write-Output 'line {i:05d} {'x' * 80}'" for i in range(7000)]  # about 750 KB
    script = "\n".join(lines)
    assert len(script) > 600 * 1024
    out = shell.run_powershell(script, timeout_s=60).stdout.splitlines()
    assert len(out) == 7000 and out[-1].startswith("line 06999")


def test_output_larger_than_maxenvelopesize_arrives_over_several_receives(
    ep: WinRMEndpoint, per_call_shell: WinRMShell
) -> None:
    """Windows cuts a command's output to the client's MaxEnvelopeSize (pywinrm: 153600 bytes)
    and sends it in many rsp:Stream elements over several Receives; the harness joins them."""
    lines = [f"Write-Output 'line {i:05d} {'x' * 90}'" for i in range(6000)]  # about 610 KB out
    before = ep.action_counts.get("Receive", 0)
    r = per_call_shell.run_powershell("\n".join(lines), timeout_s=60)
    out = r.stdout.splitlines()
    assert r.exit_code == 0 and len(out) == 6000 and out[-1].startswith("line 05999")
    assert ep.action_counts["Receive"] - before >= 4  # 610 KB in envelopes under 150 KB
