"""The virtual lab runtime's wiring, power handling, faults and control endpoint, with real
sockets and real clients, around a scripted stand-in for the Windows model (the model itself is
exercised in test_virtual_lab_runtime.py)."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, cast

import paramiko
import pytest
import pyvisa
import requests
import winrm
from pyvisa.resources import MessageBasedResource
from winrm.exceptions import InvalidCredentialsError

from harness.config.endpoints import LabEndpoints
from harness.config.lab import load_lab
from harness.config.lab_models import VirtualFault
from harness.virtual_lab.control import ControlClient, ControlError
from harness.virtual_lab.runtime import VirtualLabRuntime
from harness.virtual_lab.winrm import BuiltinExecutor

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


class FakeMachine:
    """Just enough of WindowsMachine: records what the runtime does to it."""

    def __init__(self, name: str, *, lab: Any, fs_root: Path, username: str, password: str):
        self.name = name
        self.hostname = name.upper()
        self.executor = BuiltinExecutor(hostname=self.hostname, user=f"{name}\\{username}")
        self.plugged: set[str] = set()
        self.keys: list[str] = []
        self.faults: list[VirtualFault] = []
        self.listeners: list[Callable[[Any], None]] = []
        self.reboots = 0
        self.closed = False

    def start(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True

    def plug(self, port: str) -> None:
        self.plugged.add(port)

    def unplug(self, port: str) -> None:
        self.plugged.discard(port)

    def console_keys(self, keys: str) -> None:
        self.keys.append(keys)

    def add_power_listener(self, cb: Callable[[Any], None]) -> None:
        self.listeners.append(cb)

    def emit(self, state: str) -> None:
        for cb in self.listeners:
            cb(state)

    def request_reboot(self) -> None:
        self.reboots += 1
        self.emit("down")  # the test powers it up again with emit("up")

    def apply_fault(self, fault: VirtualFault) -> None:
        self.faults.append(fault)

    def clear_faults(self) -> None:
        self.faults.clear()

    def truth(self) -> dict[str, Any]:
        return {"hostname": self.hostname, "plugged": sorted(self.plugged), "reboots": self.reboots}

    def operations_log(self) -> list[dict[str, Any]]:
        return [{"name": "noop"}]


@pytest.fixture(scope="module")
def runtime(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VirtualLabRuntime]:
    lab = load_lab(ROOT / "lab_config" / "virtual.yaml")
    rt = VirtualLabRuntime(
        lab,
        workdir=tmp_path_factory.mktemp("vlab"),
        machine_factory=FakeMachine,
    )
    with rt:
        yield rt
    assert all(n.machine.closed for n in rt.nodes.values())  # type: ignore[attr-defined]


@pytest.fixture
def ep(runtime: VirtualLabRuntime) -> Iterator[LabEndpoints]:
    yield runtime.endpoints()
    ControlClient(runtime.control_url, runtime.endpoints().control.token).clear_faults()


@pytest.fixture
def control(ep: LabEndpoints) -> ControlClient:
    return ControlClient(ep.control.url, ep.control.token, timeout_s=10)


def _session(ep: LabEndpoints, dut: str = "tb-01") -> winrm.Session:
    w = ep.duts[dut].winrm
    return winrm.Session(w.http_url, auth=(w.username, w.password), transport="ntlm")


def _connect(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            return True
    except ConnectionRefusedError:
        return False


def _switch(rm: pyvisa.ResourceManager, resource: str, **kw: Any) -> MessageBasedResource:
    return cast(MessageBasedResource, rm.open_resource(resource, **kw))


def _ssh(ep: LabEndpoints, dut: str = "m2-01") -> paramiko.SSHClient:
    s = ep.duts[dut].ssh
    client = paramiko.SSHClient()
    client.load_host_keys(s.known_hosts)
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    client.connect(
        s.host, s.port, s.username, s.password, timeout=5, allow_agent=False, look_for_keys=False
    )
    return client


def test_every_dut_answers_on_winrm_http_https_and_ssh(ep: LabEndpoints) -> None:
    assert _session(ep).run_cmd("hostname").std_out == b"TB-01\r\n"
    w = ep.duts["m2-01"].winrm
    https = winrm.Session(
        w.https_url,
        auth=(w.username, w.password),
        transport="basic",
        server_cert_validation="validate",
        ca_trust_path=w.ca_file,
    )
    assert https.run_cmd("hostname").std_out == b"M2-01\r\n"
    with _ssh(ep) as client:
        _, out, _ = client.exec_command("hostname", timeout=5)
        assert out.read() == b"M2-01\r\n"
    assert ep.duts["tb-01"].control_url == f"{ep.control.url}/duts/tb-01"
    assert ep.instruments["switch-1"].resource.startswith("TCPIP0::127.0.0.1::")


def test_switch_channels_plug_the_wired_ports_and_keyboards_type(
    runtime: VirtualLabRuntime, ep: LabEndpoints, control: ControlClient
) -> None:
    rm = pyvisa.ResourceManager("@py")
    sw = _switch(rm, ep.instruments["switch-1"].resource, read_termination="\n")
    sw.write_termination = "\n"
    sw.timeout = 5000
    try:
        sw.write("ROUT:CLOS (@1:3)")
        assert sw.query("*OPC?").strip() == "1"
        assert control.dut("tb-01")["plugged"] == ["tb4"]
        assert control.dut("m2-01")["plugged"] == ["m2-slot"]
        sw.write("ROUT:OPEN (@1)")
        assert sw.query("*OPC?").strip() == "1"
        assert control.dut("tb-01")["plugged"] == []
        assert control.truth()["instruments"]["switch-1"]["closed"] == [2, 3]
        sw.write("*RST")
        sw.query("*OPC?")
    finally:
        sw.close()
        rm.close()
    port = int(ep.instruments["keyboard-2"].resource.split("::")[2])
    with socket.create_connection(("127.0.0.1", port), timeout=5) as kbd:
        kbd.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        kbd.sendall(b"TYPE s3cret\nKEY ENTER\n")
        replies = kbd.makefile("rb")
        assert [replies.readline(), replies.readline()] == [b"OK\n", b"OK\n"]
    assert runtime.nodes["m2-01"].machine.keys == ["s3cret", "\n"]  # type: ignore[attr-defined]
    assert runtime.nodes["tb-01"].machine.keys == []  # type: ignore[attr-defined]


def test_power_down_refuses_and_up_listens_on_the_same_ports(
    runtime: VirtualLabRuntime, ep: LabEndpoints, control: ControlClient
) -> None:
    node = runtime.nodes["tb-01"]
    machine: FakeMachine = node.machine  # type: ignore[assignment]
    ports = [node.winrm_http.port, node.winrm_https.port, node.ssh.port]
    with _ssh(ep, "tb-01") as client:
        control.reboot("tb-01")
        assert node.wait_listening(False, 10)
        assert not any(_connect(p) for p in ports)
        with pytest.raises((paramiko.SSHException, EOFError, OSError)):
            client.exec_command("hostname", timeout=5)[1].read()
    assert control.truth()["endpoints"]["tb-01"] == {"listening": False, "powered": False}
    threading.Thread(target=machine.emit, args=("up",)).start()  # from "a machine thread"
    assert node.wait_listening(True, 10)
    assert [node.winrm_http.port, node.winrm_https.port, node.ssh.port] == ports
    assert _session(ep).run_cmd("hostname").std_out == b"TB-01\r\n"
    with _ssh(ep, "tb-01") as client:  # same host key, same known_hosts
        assert client.exec_command("hostname", timeout=5)[1].read() == b"TB-01\r\n"


def test_refuse_connections_fault_until_cleared(
    runtime: VirtualLabRuntime, ep: LabEndpoints, control: ControlClient
) -> None:
    control.add_fault({"kind": "refuse-connections", "dut": "m2-01"})
    assert not _connect(ep.duts["m2-01"].ssh.port)
    assert _connect(ep.duts["tb-01"].ssh.port)
    assert control.faults() == [{"kind": "refuse-connections", "dut": "m2-01", "factor": 4.0}]
    control.clear_faults()
    assert _connect(ep.duts["m2-01"].ssh.port)
    assert control.faults() == []


def test_auth_failure_fault_rejects_the_credentials(
    ep: LabEndpoints, control: ControlClient
) -> None:
    control.add_fault(VirtualFault.model_validate({"kind": "auth-failure", "dut": "tb-01"}))
    with pytest.raises(InvalidCredentialsError):
        _session(ep).run_cmd("hostname")
    with pytest.raises(paramiko.AuthenticationException):
        _ssh(ep, "tb-01")
    assert _session(ep, "m2-01").run_cmd("hostname").status_code == 0
    control.clear_faults()
    assert _session(ep).run_cmd("hostname").status_code == 0


def test_drop_connection_fault_drops_the_next_command(
    ep: LabEndpoints, control: ControlClient
) -> None:
    control.add_fault({"kind": "drop-connection", "dut": "tb-01"})  # WinRM and SSH, one-shot
    with pytest.raises(requests.exceptions.ConnectionError):
        _session(ep).run_cmd("hostname")
    assert _session(ep).run_cmd("hostname").std_out == b"TB-01\r\n"
    with _ssh(ep, "tb-01") as client:
        _, out, _ = client.exec_command("hostname", timeout=5)
        assert out.read() == b""
        assert out.channel.recv_exit_status() == -1  # closed without an exit status
    with _ssh(ep, "tb-01") as client:
        assert client.exec_command("hostname", timeout=5)[1].read() == b"TB-01\r\n"


def test_switch_error_and_machine_faults(
    runtime: VirtualLabRuntime, ep: LabEndpoints, control: ControlClient
) -> None:
    control.add_fault({"kind": "switch-error", "instrument": "switch-1"})
    assert control.truth()["instruments"]["switch-1"]["fault"] == "error"
    assert control.truth()["instruments"]["keyboard-1"]["fault"] == "none"
    control.add_fault({"kind": "bugcheck", "dut": "tb-01", "operation": "dma_probe"})
    machine: FakeMachine = runtime.nodes["tb-01"].machine  # type: ignore[assignment]
    assert [f.kind for f in machine.faults] == ["bugcheck"]
    control.clear_faults()
    assert machine.faults == []
    assert control.truth()["instruments"]["switch-1"]["fault"] == "none"


def test_control_endpoint_checks_token_and_input(ep: LabEndpoints, control: ControlClient) -> None:
    with pytest.raises(ControlError) as err:
        ControlClient(ep.control.url, "wrong").truth()
    assert err.value.status == 401
    with pytest.raises(ControlError) as err:
        control.add_fault({"kind": "meteor-strike"})
    assert err.value.status == 400 and "kind" in err.value.message
    with pytest.raises(ControlError) as err:
        control.add_fault({"kind": "bugcheck", "dut": "nope"})
    assert err.value.status == 400 and "nope" in err.value.message
    with pytest.raises(ControlError) as err:
        control.dut("nope")
    assert err.value.status == 404
    assert control.operations("tb-01") == [{"name": "noop"}]
