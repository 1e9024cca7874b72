"""The virtual lab's WinRM faults that Windows answers differently from a happy path (G7, G17,
and the missing-CommandId fault), sent by real pywinrm over 127.0.0.1.

Expected shapes: a Receive without a CommandId is recorded from a real server in
wsman-recordings/test_winrs_fail_poll_process.yml (s:Sender, w:InvalidParameter, FaultDetail
InvalidValue, WSManFault 87 wrapping winrscmd.dll's ProviderFault); compared with the recording
itself when the corpus is given (tests/corpora.py). An invalid OperationTimeout (PT-1S) is
2150858767 a:InvalidMessageInformationHeader, and a Send to a command whose process has exited
is "The pipe has been ended" (transport-fidelity.md, section 3).
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest
import winrm
import xmltodict
import yaml
from winrm.exceptions import WSManFaultError

from harness.errors import InfrastructureError
from harness.remote.winrm_transport import WinRMSettings, WinRMShell
from harness.virtual_lab.winrm import BuiltinExecutor, WinRMEndpoint
from harness.virtual_lab.winrm import ps_host as virtual_ps_host
from tests.corpora import corpus_dir

pytestmark = pytest.mark.integration

USER, PASSWORD = "faultshape", "Fault-Passw0rd!"  # NTLM users are per process: own name
NS = {
    "s": "http://www.w3.org/2003/05/soap-envelope",
    "w": "http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd",
    "f": "http://schemas.microsoft.com/wbem/wsman/1/wsmanfault",
}
NO_COMMAND_ID = ("s:Sender", "w:InvalidParameter", "87", "InvalidValue", True)


@pytest.fixture
def executor() -> BuiltinExecutor:
    return BuiltinExecutor(hostname="DUT-01", user="lab\\tester")


@pytest.fixture
def ep(executor: BuiltinExecutor, tmp_path: Path) -> Iterator[WinRMEndpoint]:
    with WinRMEndpoint(
        executor, USER, PASSWORD, https=False, allow_unencrypted=False, cert_dir=tmp_path
    ) as endpoint:
        yield endpoint


@pytest.fixture
def proto(ep: WinRMEndpoint) -> winrm.protocol.Protocol:
    return winrm.protocol.Protocol(
        ep.url, transport="ntlm", username=USER, password=PASSWORD, ca_trust_path=None
    )


def _shape(envelope: str) -> tuple[str, str, str, str | None, bool]:
    root = ET.fromstring(envelope)
    wsman = root.find(".//f:WSManFault", NS)
    detail = root.findtext(".//w:FaultDetail", None, NS)
    return (
        root.findtext(".//s:Code/s:Value", "", NS),
        root.findtext(".//s:Code/s:Subcode/s:Value", "", NS),
        wsman.get("Code", "") if wsman is not None else "",
        detail.rsplit("/", 1)[-1] if detail else None,
        root.find(".//f:ProviderFault", NS) is not None,
    )


def _receive(
    proto: winrm.protocol.Protocol, shell_id: str, command_id: str | None, timeout: str
) -> str:
    """A Receive (for `command_id`, or with none) whose fault response is returned."""
    header = proto._get_soap_header(
        resource_uri="http://schemas.microsoft.com/wbem/wsman/1/windows/shell/cmd",
        action="http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Receive",
        shell_id=shell_id,
    )
    req = {"env:Envelope": header}
    req["env:Envelope"]["env:Header"]["w:OperationTimeout"] = timeout
    stream: object = "stdout stderr"
    if command_id is not None:
        stream = {"@CommandId": command_id, "#text": "stdout stderr"}
    req["env:Envelope"].setdefault("env:Body", {})["rsp:Receive"] = {"rsp:DesiredStream": stream}
    with pytest.raises(WSManFaultError) as err:
        proto.send_message(xmltodict.unparse(req))
    return err.value.response


def test_receive_without_a_command_id_faults_87_as_recorded(
    proto: winrm.protocol.Protocol,
) -> None:
    shell = proto.open_shell()
    try:
        got = _shape(_receive(proto, shell, None, "PT20S"))
    finally:
        proto.close_shell(shell)
    assert got == NO_COMMAND_ID
    folder = corpus_dir("wsman-recordings")
    if folder is not None:  # the recording itself, when the corpora are given
        data = yaml.safe_load((folder / "test_winrs_fail_poll_process.yml").read_text())
        recorded = next(m["response"] for m in data["messages"] if 'Code="87"' in m["response"])
        assert _shape(recorded) == got


def test_invalid_operation_timeout_faults_2150858767(proto: winrm.protocol.Protocol) -> None:
    shell = proto.open_shell()
    try:
        command = proto.run_command(shell, "hostname")
        response = _receive(proto, shell, command, "PT-1S")
        code, sub, wsman_code, _, _ = _shape(response)
        assert (code, sub, wsman_code) == (
            "s:Sender",
            "a:InvalidMessageInformationHeader",
            "2150858767",
        )
        assert "PT-1S" in response
    finally:
        proto.close_shell(shell)


def test_send_to_an_exited_command_faults_with_a_broken_pipe(
    proto: winrm.protocol.Protocol,
) -> None:
    shell = proto.open_shell()
    try:
        command = proto.run_command(shell, "hostname")
        with pytest.raises(WSManFaultError) as err:
            proto.send_command_input(shell, command, "late input\r\n", end=True)
        assert err.value.wsman_fault_code == 2147942509
        assert "The pipe has been ended" in err.value.response
        stdout, _, rc = proto.get_command_output(shell, command)  # the output is still there
        assert (stdout, rc) == (b"DUT-01\r\n", 0)
    finally:
        proto.close_shell(shell)


def test_the_harness_replaces_a_host_whose_process_exited(
    ep: WinRMEndpoint, executor: BuiltinExecutor
) -> None:
    """The persistent host's process has gone: the next request's Send faults, the call is an
    InfrastructureError naming the fault and written to the transcript, the next call runs."""
    with WinRMShell(WinRMSettings(ep.url, USER, PASSWORD)) as sh:
        assert sh.run_powershell("Write-Output 'one'", timeout_s=10).stdout == "one\r\n"
        loop = next(c for _, c in executor.started if isinstance(c, virtual_ps_host.PsHostLoop))
        loop.terminate()
        with pytest.raises(InfrastructureError, match=r"2147942509|pipe has been ended"):
            sh.run_powershell("Write-Output 'two'", timeout_s=10)
        last = sh.transcript.entries[-1]
        assert last.exit_code is None and last.error and re.search("2147942509|pipe", last.error)
        assert sh.run_powershell("Write-Output 'three'", timeout_s=10).stdout == "three\r\n"
