"""The virtual lab of lab_config/virtual.yaml, with the Windows model, through real clients:
pywinrm (NTLM over HTTP, Basic over validated HTTPS), paramiko (RejectPolicy + the lab's
known_hosts), pyvisa-py, the HID keyboard, the control endpoint; and the lab as a process
(`harness lab up`, `start_virtual_lab`)."""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import paramiko
import pytest
import pyvisa
import winrm
from pyvisa.resources import MessageBasedResource
from winrm.exceptions import InvalidCredentialsError

from harness.config.endpoints import LabEndpoints
from harness.config.lab import load_lab
from harness.errors import InfrastructureError
from harness.virtual_lab.control import ControlClient, ControlError
from harness.virtual_lab.launcher import start_virtual_lab
from harness.virtual_lab.runtime import VirtualLabRuntime
from harness.virtual_lab.ssh_server import LOOPBACK

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
LAB = ROOT / "lab_config" / "virtual.yaml"
BOOT_DEADLINE_S = 15.0  # a reboot takes about 2 s in virtual.yaml
HARNESS_CLI = "import sys; from harness.cli.main import main; sys.argv[0] = 'harness'; main()"


@pytest.fixture(scope="module")
def runtime(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VirtualLabRuntime]:
    rt = VirtualLabRuntime(load_lab(LAB), workdir=tmp_path_factory.mktemp("vlab"))
    with rt:
        yield rt


@pytest.fixture
def ep(runtime: VirtualLabRuntime) -> Iterator[LabEndpoints]:
    endpoints = runtime.endpoints()
    yield endpoints
    ControlClient(endpoints.control.url, endpoints.control.token).clear_faults()


@pytest.fixture
def control(ep: LabEndpoints) -> ControlClient:
    return ControlClient(ep.control.url, ep.control.token)


def _ntlm(ep: LabEndpoints, dut: str = "tb-01") -> winrm.Session:
    w = ep.duts[dut].winrm
    return winrm.Session(w.http_url, auth=(w.username, w.password), transport="ntlm")


def _switch(rm: pyvisa.ResourceManager, resource: str, **kw: Any) -> MessageBasedResource:
    return cast(MessageBasedResource, rm.open_resource(resource, **kw))


def _ssh(ep: LabEndpoints, dut: str) -> paramiko.SSHClient:
    s = ep.duts[dut].ssh
    client = paramiko.SSHClient()
    client.load_host_keys(s.known_hosts)
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    client.connect(
        s.host, s.port, s.username, s.password, timeout=5, allow_agent=False, look_for_keys=False
    )
    return client


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            return True
    except ConnectionRefusedError:
        return False


def _port(resource: str) -> int:
    return int(resource.split("::")[2])


def test_winrm_ntlm_http_and_basic_https_with_validation(ep: LabEndpoints) -> None:
    assert _ntlm(ep).run_cmd("hostname").std_out == b"TB-01\r\n"
    w = ep.duts["m2-01"].winrm
    https = winrm.Session(
        w.https_url,
        auth=(w.username, w.password),
        transport="basic",
        server_cert_validation="validate",
        ca_trust_path=w.ca_file,
    )
    assert https.run_cmd("hostname").std_out == b"M2-01\r\n"


def test_ssh_with_reject_policy_and_the_labs_known_hosts(ep: LabEndpoints) -> None:
    with _ssh(ep, "m2-01") as client:
        _, out, _ = client.exec_command("hostname", timeout=10)
        assert out.read() == b"M2-01\r\n"
        assert out.channel.recv_exit_status() == 0


def test_switch_channel_plugs_the_device_into_its_port(
    ep: LabEndpoints, control: ControlClient
) -> None:
    rm = pyvisa.ResourceManager("@py")
    sw = _switch(rm, ep.instruments["switch-1"].resource)
    sw.read_termination = sw.write_termination = "\n"
    sw.timeout = 5000
    try:
        sw.write("ROUT:CLOS (@1)")
        assert sw.query("*OPC?").strip() == "1"
        assert control.dut("tb-01")["devices"]["tb4"]["present"] is True
        assert control.dut("m2-01")["devices"]["m2-slot"]["present"] is False
        assert control.truth()["instruments"]["switch-1"]["closed"] == [1]
        sw.write("ROUT:OPEN (@1)")
        assert sw.query("*OPC?").strip() == "1"
        assert control.dut("tb-01")["devices"]["tb4"]["present"] is False
    finally:
        sw.close()
        rm.close()


def test_keyboard_types_the_password_at_the_console(
    runtime: VirtualLabRuntime, ep: LabEndpoints, control: ControlClient
) -> None:
    machine = runtime.nodes["tb-01"].machine
    with machine.lock:  # type: ignore[attr-defined]
        assert machine.lock_session()  # type: ignore[attr-defined]
    assert machine.drain(5.0)  # type: ignore[attr-defined]
    assert control.dut("tb-01")["session"] == "locked"
    port = _port(ep.instruments["keyboard-1"].resource)
    with socket.create_connection(("127.0.0.1", port), timeout=5) as kbd:
        kbd.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        kbd.sendall(f"TYPE {ep.duts['tb-01'].winrm.password}\nKEY ENTER\n".encode())
        replies = kbd.makefile("rb")
        assert [replies.readline(), replies.readline()] == [b"OK\n", b"OK\n"]
    assert control.dut("tb-01")["session"] == "unlocked"
    assert control.dut("m2-01")["failed_logons"] == 0  # keyboard-1 is tb-01's only


def test_reboot_refuses_connections_then_accepts_on_the_same_ports(
    runtime: VirtualLabRuntime, ep: LabEndpoints, control: ControlClient
) -> None:
    node = runtime.nodes["tb-01"]
    ports = [node.winrm_http.port, node.winrm_https.port, node.ssh.port]
    boots = control.dut("tb-01")["boots"]
    control.reboot("tb-01")
    assert node.wait_listening(False, BOOT_DEADLINE_S)
    assert not any(_accepts(p) for p in ports)
    assert node.wait_listening(True, BOOT_DEADLINE_S)
    assert [node.winrm_http.port, node.winrm_https.port, node.ssh.port] == ports
    assert _ntlm(ep).run_cmd("hostname").std_out == b"TB-01\r\n"
    assert control.dut("tb-01")["boots"] == boots + 1


def test_a_dut_slow_to_stop_does_not_hold_up_another_duts_reboot(
    runtime: VirtualLabRuntime, control: ControlClient
) -> None:
    """Each DUT's power events have their own worker: tb-01's endpoints stuck stopping (a
    request thread that does not end) must not keep m2-01 down after its reboot."""
    tb, m2 = runtime.nodes["tb-01"], runtime.nodes["m2-01"]
    entered, release, stopped = threading.Event(), threading.Event(), threading.Event()
    real_stop = tb.winrm_http.stop

    def stuck_stop(timeout_s: float = 5.0) -> None:
        entered.set()
        release.wait(20)  # bounded: the test releases it
        real_stop(timeout_s)
        stopped.set()

    tb.winrm_http.stop = stuck_stop  # type: ignore[method-assign]
    try:
        control.reboot("tb-01")
        assert entered.wait(BOOT_DEADLINE_S), "tb-01 never began to stop its endpoints"
        control.reboot("m2-01")
        assert m2.wait_listening(False, 5), "m2-01's shutdown waited for tb-01"
        assert m2.wait_listening(True, BOOT_DEADLINE_S), "m2-01's boot waited for tb-01"
        assert not release.is_set() and tb.listening  # tb-01 is still stuck stopping
    finally:
        release.set()
        del tb.winrm_http.stop  # the endpoint's own method again
    # tb-01's stop ends, then its queued boot starts the endpoints again at once (too briefly
    # down to be seen by polling `listening`: that raced)
    assert stopped.wait(BOOT_DEADLINE_S), "tb-01's endpoints never stopped"
    assert tb.wait_listening(True, BOOT_DEADLINE_S)


def test_a_dut_keeps_its_ports_while_it_is_down(
    runtime: VirtualLabRuntime, control: ControlClient
) -> None:
    """While a DUT reboots its ports stay reserved (bound, not listening: connections are
    refused), so no other socket of the machine takes one and the DUT comes back on each.
    Before, a port was free while the DUT was down; under a parallel test run another
    process's socket took one, the DUT's endpoints failed to start at boot and it never came
    back (a fault-campaign bystander, m2-01, "did not come back": connection refused)."""
    m2 = runtime.nodes["m2-01"]
    ports = [m2.winrm_http.port, m2.winrm_https.port, m2.ssh.port]
    taken: list[socket.socket] = []
    try:
        control.reboot("m2-01")
        assert m2.wait_listening(False, BOOT_DEADLINE_S)
        for port in ports:
            other = socket.socket()
            try:
                other.bind((LOOPBACK, port))  # what a client socket's bind would do
            except OSError:
                other.close()
            else:
                taken.append(other)
        assert not taken, "a port of the DUT was free while it was down"
        assert m2.wait_listening(True, BOOT_DEADLINE_S), "m2-01 did not come back"
    finally:
        for sock in taken:
            sock.close()
    assert [m2.winrm_http.port, m2.winrm_https.port, m2.ssh.port] == ports
    with socket.create_connection((LOOPBACK, m2.ssh.port), timeout=5) as conn:
        assert conn.recv(64).startswith(b"SSH-2.0-")


def test_settle_waits_for_each_duts_power_events(runtime: VirtualLabRuntime) -> None:
    """`settle()` returns only once the power events queued so far have been applied on every
    DUT's own worker too: clearing a hang boots the machine at once, and its endpoints start on
    tb-01's worker (before, settle waited on the fault worker only, and a test that reconnected
    right after it found the endpoint not yet listening)."""
    gate, entered = threading.Event(), threading.Event()

    def busy() -> None:
        entered.set()
        gate.wait(20)  # bounded: the test releases it

    runtime._dut_workers["tb-01"].submit(busy)
    assert entered.wait(5)
    settled = threading.Thread(target=runtime.settle, daemon=True)
    settled.start()
    try:
        settled.join(0.5)
        assert settled.is_alive(), "settle returned while tb-01's power events were still queued"
    finally:
        gate.set()
    settled.join(10)
    assert not settled.is_alive()


def test_faults_through_the_control_endpoint(ep: LabEndpoints, control: ControlClient) -> None:
    control.add_fault({"kind": "refuse-connections", "dut": "m2-01"})
    assert not _accepts(ep.duts["m2-01"].ssh.port)
    control.clear_faults()
    assert _accepts(ep.duts["m2-01"].ssh.port)

    control.add_fault({"kind": "auth-failure", "dut": "tb-01"})
    with pytest.raises(InvalidCredentialsError):
        _ntlm(ep).run_cmd("hostname")
    with pytest.raises(paramiko.AuthenticationException):
        _ssh(ep, "tb-01")
    control.clear_faults()
    assert _ntlm(ep).run_cmd("hostname").status_code == 0

    control.add_fault({"kind": "switch-error"})
    rm = pyvisa.ResourceManager("@py")
    sw = _switch(rm, ep.instruments["switch-1"].resource)
    sw.read_termination = sw.write_termination = "\n"
    sw.timeout = 5000
    try:
        sw.write("ROUT:CLOS (@1)")
        assert sw.query("SYST:ERR?").startswith("-240")
        assert control.dut("tb-01")["devices"]["tb4"]["present"] is False
    finally:
        sw.close()
        rm.close()


def test_control_endpoint_needs_the_token(ep: LabEndpoints) -> None:
    with pytest.raises(ControlError) as err:
        ControlClient(ep.control.url, "").truth()
    assert err.value.status == 401
    with pytest.raises(ControlError) as err:
        ControlClient(ep.control.url, ep.control.token).add_fault({"kind": "reboot-hang", "x": 1})
    assert err.value.status == 400


def _child_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "NTLM_USER_FILE"}  # ours, not the lab's
    return {**env, "PYTHONPATH": str(ROOT), **extra}


def _gone(pid: int) -> bool:
    try:
        os.killpg(pid, 0)
    except ProcessLookupError:
        return True
    return False


def _read_until(proc: subprocess.Popen[bytes], marker: bytes, timeout_s: float) -> bytes:
    assert proc.stdout is not None
    deadline, seen = time.monotonic() + timeout_s, b""
    while marker not in seen:
        left = deadline - time.monotonic()
        ready, _, _ = select.select([proc.stdout], [], [], max(0.0, left))
        chunk = os.read(proc.stdout.fileno(), 4096) if ready else b""
        if not chunk:
            raise AssertionError(f"no {marker!r} within {timeout_s} s; output: {seen!r}")
        seen += chunk
    return seen


def test_lab_up_writes_a_private_endpoints_file_and_stops_on_sigterm(tmp_path: Path) -> None:
    path = tmp_path / "endpoints.json"
    env = _child_env(HARNESS_VIRTUAL_PASSWORD="Up-Passw0rd!")
    cmd = [sys.executable, "-c", HARNESS_CLI, "lab", "up", str(LAB), "--endpoints-file", str(path)]
    proc = subprocess.Popen(
        cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip
    try:
        out = _read_until(proc, b"virtual lab ready", 30)
        assert b"Up-Passw0rd!" not in out
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        data = json.loads(path.read_text())
        assert set(data) == {"duts", "instruments", "control"}
        assert set(data["duts"]["tb-01"]) == {"winrm", "ssh", "control_url"}
        assert set(data["duts"]["tb-01"]["winrm"]) == {
            "http_url", "https_url", "ca_file", "username", "password",
        }  # fmt: skip
        assert set(data["duts"]["tb-01"]["ssh"]) == {
            "host", "port", "username", "password", "known_hosts",
        }  # fmt: skip
        assert data["duts"]["m2-01"]["ssh"]["password"] == "Up-Passw0rd!"
        assert data["instruments"]["switch-1"]["resource"].endswith("::SOCKET")
        assert LabEndpoints.from_json(data).control.token
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(5)
        assert proc.stdout is not None
        proc.stdout.close()
    assert not path.exists()
    assert _gone(proc.pid)


def test_lab_up_refuses_a_lab_without_a_virtual_section(tmp_path: Path) -> None:
    example = ROOT / "lab_config" / "example_lab.yaml"  # a real lab: its files must exist
    lab = tmp_path / "example_lab.yaml"
    lab.write_text(example.read_text())
    for name in ("certs/lab-ca.pem", "ssh/known_hosts", "ssh/dma-runner_ed25519"):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_text("x\n")
    (tmp_path / "packages").symlink_to(ROOT / "lab_config" / "packages")
    env = _child_env()
    r = subprocess.run(
        [sys.executable, "-c", HARNESS_CLI, "lab", "up", str(lab)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert r.returncode == 2, r.stdout + r.stderr
    assert r.stderr.startswith("error: ") and "virtual" in r.stderr


def test_start_virtual_lab_and_stop_leave_nothing_behind(tmp_path: Path) -> None:
    """... but the lab's log, where the caller asked for it (a run directory's
    virtual-lab.log: what the lab did, its errors included, outlives its temp directory)."""
    kept = tmp_path / "run" / "virtual-lab.log"
    kept.parent.mkdir()
    with start_virtual_lab(LAB, timeout_s=30, password="Launch-Passw0rd!", keep_log=kept) as lab:
        w = lab.endpoints.duts["tb-01"].winrm
        s = winrm.Session(w.http_url, auth=(w.username, "Launch-Passw0rd!"), transport="ntlm")
        assert s.run_cmd("hostname").std_out == b"TB-01\r\n"
        tempdir, pid = lab.tempdir, lab.pid
    assert lab.process.returncode == 0
    assert _gone(pid)
    assert not tempdir.exists()
    text = kept.read_text()
    assert text.startswith(f"=== virtual lab pid {pid} ===\n")
    assert "tb-01: endpoints listening" in text and "virtual lab ready" in text
    assert "Launch-Passw0rd!" not in text
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600
    lab.stop()  # again: nothing appended twice
    assert kept.read_text() == text


def test_start_virtual_lab_reports_a_child_that_dies(tmp_path: Path) -> None:
    bad = tmp_path / "broken.yaml"
    bad.write_text("duts: [\n")
    with pytest.raises(InfrastructureError) as err:
        start_virtual_lab(bad, timeout_s=30)
    assert "exit code 2" in str(err.value) and "broken.yaml" in str(err.value)
