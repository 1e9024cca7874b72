"""The virtual lab's WinRM endpoint against the REAL, unmodified clients (pywinrm, pypsrp)."""

from __future__ import annotations

import base64
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import winrm
import xmltodict
from winrm.exceptions import (
    InvalidCredentialsError,
    WinRMOperationTimeoutError,
    WinRMTransportError,
)

from harness.virtual_lab.winrm import BuiltinExecutor, WinRMEndpoint
from harness.virtual_lab.winrm.executor import SteppedCommand

pytestmark = pytest.mark.integration

USER, PASSWORD = "tester", "Lab-Passw0rd!"


@pytest.fixture(scope="module")
def cert_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("winrm-pki")


@pytest.fixture
def executor() -> BuiltinExecutor:
    return BuiltinExecutor(hostname="DUT-01", user="lab\\tester")


@pytest.fixture
def http_ep(executor: BuiltinExecutor, cert_dir: Path) -> Iterator[WinRMEndpoint]:
    with WinRMEndpoint(
        executor, USER, PASSWORD, https=False, allow_unencrypted=False, cert_dir=cert_dir
    ) as ep:
        yield ep


@pytest.fixture
def https_ep(executor: BuiltinExecutor, cert_dir: Path) -> Iterator[WinRMEndpoint]:
    with WinRMEndpoint(
        executor, USER, PASSWORD, https=True, allow_unencrypted=False, cert_dir=cert_dir
    ) as ep:
        yield ep


def _ntlm(ep: WinRMEndpoint, **kw: object) -> winrm.Session:
    kw.setdefault("ca_trust_path", None)  # HTTP: no CA; avoids pywinrm's env-bundle warning
    return winrm.Session(ep.url, (USER, PASSWORD), transport="ntlm", **kw)


def _proto(ep: WinRMEndpoint, **kw: object) -> winrm.protocol.Protocol:
    kw.setdefault("ca_trust_path", None)
    return winrm.protocol.Protocol(ep.url, transport="ntlm", username=USER, password=PASSWORD, **kw)


def _ps_line(script: str) -> str:
    return "powershell -encodedcommand " + base64.b64encode(script.encode("utf-16-le")).decode()


def test_run_cmd_ntlm_over_http_with_message_encryption(http_ep: WinRMEndpoint) -> None:
    r = _ntlm(http_ep).run_cmd("hostname")
    assert (r.status_code, r.std_out, r.std_err) == (0, b"DUT-01\r\n", b"")
    assert http_ep.action_counts == {
        "Create": 1,
        "Command": 1,
        "Receive": 1,
        "Signal": 1,
        "Delete": 1,
    }
    # 5 SOAP requests + 3 for the NTLM handshake (anonymous 401, type 1/2, type 3 on an empty POST)
    assert (http_ep.requests_total, http_ep.connections_total) == (8, 1)


def test_unencrypted_ntlm_over_http_is_refused(http_ep: WinRMEndpoint) -> None:
    with pytest.raises(WinRMTransportError) as err:
        _ntlm(http_ep, message_encryption="never").run_cmd("hostname")
    assert err.value.code == 400


def test_run_ps_output_exit_code_and_clixml_errors(http_ep: WinRMEndpoint) -> None:
    s = _ntlm(http_ep)
    r = s.run_ps("Write-Output 'hello'; exit 3")
    assert (r.status_code, r.std_out) == (3, b"hello\r\n")
    r = s.run_ps("Write-Error 'boom'")
    assert (r.status_code, r.std_err) == (1, b"boom")


def test_protocol_shell_reuse_one_connection(http_ep: WinRMEndpoint) -> None:
    p = _proto(http_ep)
    shell = p.open_shell()
    for i in range(5):
        cid = p.run_command(shell, "echo", [f"n{i}"])
        assert p.get_command_output(shell, cid) == (f"n{i}\r\n".encode(), b"", 0)
        p.cleanup_command(shell, cid)
    p.close_shell(shell)
    assert http_ep.soap_requests_total == 2 + 3 * 5
    assert http_ep.requests_total == 2 + 3 * 5 + 3
    assert http_ep.connections_total == 1


def test_stdin_send_and_signal_terminate(http_ep: WinRMEndpoint, executor: BuiltinExecutor) -> None:
    p = _proto(http_ep)
    shell = p.open_shell()
    cid = p.run_command(shell, "more")
    p.send_command_input(shell, cid, b"line one\r\n")
    p.send_command_input(shell, cid, b"line two\r\n", end=True)
    assert p.get_command_output(shell, cid) == (b"line one\r\nline two\r\n", b"", 0)
    p.cleanup_command(shell, cid)
    cid = p.run_command(shell, _ps_line("Start-Sleep -Seconds 60"))
    p.cleanup_command(shell, cid)  # Signal terminate while running
    running = executor.started[-1][1]
    assert isinstance(running, SteppedCommand) and running.terminated
    p.close_shell(shell)


def test_basic_over_https_validates_against_the_lab_ca(https_ep: WinRMEndpoint) -> None:
    s = winrm.Session(
        https_ep.url,
        (USER, PASSWORD),
        transport="ssl",
        server_cert_validation="validate",
        ca_trust_path=str(https_ep.ca_file),
    )
    assert s.run_cmd("whoami").std_out == b"lab\\tester\r\n"
    ntlm = _ntlm(https_ep, server_cert_validation="validate", ca_trust_path=str(https_ep.ca_file))
    assert ntlm.run_cmd("hostname").std_out == b"DUT-01\r\n"


def test_https_without_the_ca_fails_validation(https_ep: WinRMEndpoint) -> None:
    s = winrm.Session(
        https_ep.url,
        (USER, PASSWORD),
        transport="ssl",
        server_cert_validation="validate",
        ca_trust_path=None,
    )
    with pytest.raises(requests.exceptions.SSLError):
        s.run_cmd("hostname")


def test_basic_over_http_refused_unless_allowed(
    http_ep: WinRMEndpoint, executor: BuiltinExecutor, cert_dir: Path
) -> None:
    with pytest.raises(InvalidCredentialsError):
        winrm.Session(http_ep.url, (USER, PASSWORD), transport="basic", ca_trust_path=None).run_cmd(
            "hostname"
        )
    r = requests.post(http_ep.url, data=b"", auth=(USER, PASSWORD), timeout=5)
    assert r.status_code == 401 and r.headers["WWW-Authenticate"] == "Negotiate"
    with WinRMEndpoint(
        executor, USER, PASSWORD, https=False, allow_unencrypted=True, cert_dir=cert_dir
    ) as open_ep:
        r2 = winrm.Session(
            open_ep.url, (USER, PASSWORD), transport="basic", ca_trust_path=None
        ).run_cmd("hostname")
        assert r2.std_out == b"DUT-01\r\n"


def test_wrong_password_is_refused(http_ep: WinRMEndpoint, https_ep: WinRMEndpoint) -> None:
    with pytest.raises(InvalidCredentialsError):
        winrm.Session(http_ep.url, (USER, "wrong"), transport="ntlm", ca_trust_path=None).run_cmd(
            "hostname"
        )
    with pytest.raises(InvalidCredentialsError):
        winrm.Session(
            https_ep.url, (USER, "wrong"), transport="ssl", ca_trust_path=str(https_ep.ca_file)
        ).run_cmd("hostname")


def test_relates_to_equals_message_id_on_replies_and_faults(
    executor: BuiltinExecutor, cert_dir: Path
) -> None:
    p = winrm.protocol.Protocol("http://x/wsman", username=USER, password=PASSWORD)
    with WinRMEndpoint(
        executor, USER, PASSWORD, https=False, allow_unencrypted=True, cert_dir=cert_dir
    ) as ep:
        for action, shell_id in (
            ("http://schemas.xmlsoap.org/ws/2004/09/transfer/Create", None),
            ("http://schemas.xmlsoap.org/ws/2004/09/transfer/Delete", "NO-SUCH-SHELL"),
        ):
            mid = uuid.uuid4()
            env = p.build_wsman_header(
                action,
                "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/cmd",
                shell_id,
                mid,
            )
            env["env:Body"] = (
                {"rsp:Shell": {"rsp:InputStreams": "stdin"}} if shell_id is None else {}
            )
            body = xmltodict.unparse({"env:Envelope": env}).encode()
            r = requests.post(
                ep.url,
                data=body,
                auth=(USER, PASSWORD),
                headers={"Content-Type": "application/soap+xml;charset=UTF-8"},
                timeout=5,
            )
            assert f"<a:RelatesTo>uuid:{mid}</a:RelatesTo>" in r.text
            assert r.status_code == (200 if shell_id is None else 500)
        assert 'Code="2150858843"' in r.text


def test_operation_timeout_fault_is_retried_and_long_command_completes(
    http_ep: WinRMEndpoint,
) -> None:
    p = _proto(http_ep, operation_timeout_sec=1, read_timeout_sec=3)
    shell = p.open_shell()
    cid = p.run_command(shell, _ps_line("Start-Sleep -Milliseconds 2300; Write-Output 'done'"))
    t0 = time.monotonic()
    with pytest.raises(WinRMOperationTimeoutError):  # the raw 2150858793 fault
        p.get_command_output_raw(shell, cid)
    assert 0.9 <= time.monotonic() - t0 < 2.0
    assert p.get_command_output(shell, cid) == (b"done\r\n", b"", 0)  # pywinrm retries
    assert http_ep.action_counts["Receive"] >= 3
    p.close_shell(shell)


def test_cmd_line_limit_and_skip_cmd_shell(http_ep: WinRMEndpoint) -> None:
    s = _ntlm(http_ep)
    ok = s.run_ps("Write-Output 'x'" + " " * 3000)
    assert ok.status_code == 0
    long_script = "Write-Output 'x'" + " " * 3100
    r = s.run_ps(long_script)
    assert (r.status_code, r.std_err) == (1, b"The command line is too long.\r\n")
    p = _proto(http_ep)
    shell = p.open_shell()
    cid = p.run_command(shell, _ps_line(long_script), skip_cmd_shell=True)
    assert p.get_command_output(shell, cid) == (b"x\r\n", b"", 0)
    p.close_shell(shell)


def test_pypsrp_execute_cmd_and_client_chosen_shell_id(http_ep: WinRMEndpoint) -> None:
    from pypsrp.client import Client
    from pypsrp.shell import Process, WinRS
    from pypsrp.wsman import WSMan

    client = Client(
        "127.0.0.1", port=http_ep.port, ssl=False, auth="ntlm", username=USER, password=PASSWORD
    )
    assert client.execute_cmd("whoami") == ("lab\\tester\r\n", "", 0)
    shell_id = str(uuid.uuid4()).upper()
    wsman = WSMan(
        "127.0.0.1",
        port=http_ep.port,
        ssl=False,
        auth="negotiate",
        username=USER,
        password=PASSWORD,
    )
    with wsman, WinRS(wsman, id=shell_id) as shell:
        assert shell.id == shell_id
        proc = Process(shell, "echo", ["pypsrp"])
        proc.invoke()
        assert (proc.stdout, proc.rc) == (b"pypsrp\r\n", 0)


def test_ntlm_channel_binding_can_be_enforced(executor: BuiltinExecutor, cert_dir: Path) -> None:
    with WinRMEndpoint(
        executor,
        USER,
        PASSWORD,
        https=True,
        allow_unencrypted=False,
        cert_dir=cert_dir,
        cbt_strict=True,
    ) as ep:
        ca = str(ep.ca_file)
        assert _ntlm(ep, ca_trust_path=ca).run_cmd("hostname").status_code == 0
        with pytest.raises(InvalidCredentialsError):
            _ntlm(ep, ca_trust_path=ca, send_cbt=False).run_cmd("hostname")


def test_stop_is_idempotent_and_prompt_with_idle_keepalive(
    executor: BuiltinExecutor, cert_dir: Path
) -> None:
    ep = WinRMEndpoint(
        executor, USER, PASSWORD, https=False, allow_unencrypted=False, cert_dir=cert_dir
    )
    ep.start()
    p = _proto(ep)
    p.open_shell()  # leaves an authenticated keep-alive connection open
    t0 = time.monotonic()
    ep.stop()
    ep.stop()
    assert time.monotonic() - t0 < 2.0
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.post(ep.url, data=b"", timeout=2)
