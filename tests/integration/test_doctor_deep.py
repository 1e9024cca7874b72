"""`lab doctor --deep` and its support bundle against the virtual lab, and doctor's parallelism
against listeners that accept connections and never answer (a lab whose DUTs are hung)."""

from __future__ import annotations

import socket
import threading
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.config.lab import Lab, load_lab
from harness.doctor import Status, broken, run_doctor
from harness.doctor_bundle import write_bundle
from harness.lab.connect import LabConnector
from harness.remote.transcript import Transcript
from harness.virtual_lab.runtime import VirtualLabRuntime

ROOT = Path(__file__).resolve().parents[2]
DEEP = {
    "long request lines arrive whole",
    "Windows PowerShell 5.1, FullLanguage",
    "display language",
    "read-only operations",
    "PowerShell host",
}


def test_deep_checks_pass_on_the_default_lab_and_cover_both_transports(
    lab: Lab, connector: LabConnector
) -> None:
    checks = run_doctor(lab, connector, timeout_s=20, deep=True)
    assert not broken(checks), [c for c in checks if c.status is Status.FAIL]
    by_dut = {d: {c.name: c for c in checks if c.target == d} for d in lab.duts}
    for dut, rows in by_dut.items():
        assert set(rows) >= DEEP, (dut, sorted(rows))
        assert "12000 characters intact" in rows["long request lines arrive whole"].detail
        assert "host_facts" in rows["read-only operations"].detail
    assert "WinRM limits" in by_dut["tb-01"] and "OpenSSH DefaultShell" not in by_dut["tb-01"]
    assert "OpenSSH DefaultShell" in by_dut["m2-01"] and "WinRM limits" not in by_dut["m2-01"]
    assert "MaxEnvelopeSizekb 500" in by_dut["tb-01"]["WinRM limits"].detail
    # the basic doctor has none of these rows
    basic = {c.name for c in run_doctor(lab, connector, timeout_s=20)}
    assert not DEEP & basic


def test_the_bundle_holds_the_table_and_each_transcript_with_no_secret(
    lab: Lab, connector: LabConnector, runtime: VirtualLabRuntime, tmp_path: Path
) -> None:
    transcripts: dict[str, Transcript] = {}
    checks = run_doctor(lab, connector, timeout_s=20, deep=True, transcripts=transcripts)
    lab_path = ROOT / "lab_config" / "virtual.yaml"
    out = write_bundle(tmp_path / "b.zip", lab, lab_path, checks, transcripts, connector, deep=True)
    with zipfile.ZipFile(out) as zf:
        names = set(zf.namelist())
        texts = {n: zf.read(n).decode("utf-8") for n in names}
    assert {"README.txt", "doctor.txt", "doctor.json", "lab.yaml", "environment.json"} <= names
    assert {"transcripts/tb-01.txt", "transcripts/m2-01.txt"} <= names
    assert "op lab_readiness" in texts["transcripts/tb-01.txt"]
    assert "op host_facts" in texts["transcripts/m2-01.txt"]
    assert "long request lines arrive whole" in texts["doctor.txt"]
    endpoints = runtime.endpoints()
    secrets = {endpoints.control.token}
    for dut in endpoints.duts.values():
        secrets |= {dut.winrm.password, dut.ssh.password}
    for name, text in texts.items():
        for secret in secrets:
            assert secret not in text, f"a secret in {name}"


def test_the_bundle_masks_a_secret_that_reached_a_transcript(
    lab: Lab, connector: LabConnector, tmp_path: Path
) -> None:
    """A secret the lab references is masked even where the transcript did not know it."""
    password = connector.credentials("tb-01")[1]
    leaky = Transcript()  # knows no secret
    leaky.record(f"echo {password}", exit_code=0, stdout=password, stderr="", duration_s=0.0)
    out = write_bundle(
        tmp_path / "b.zip",
        lab,
        ROOT / "lab_config" / "virtual.yaml",
        [],
        {"tb-01": leaky},
        connector,
        deep=False,
    )
    with zipfile.ZipFile(out) as zf:
        text = zf.read("transcripts/tb-01.txt").decode("utf-8")
    assert password not in text and "echo ***" in text


@pytest.fixture
def hung_listeners() -> Iterator[tuple[list[int], list[float]]]:
    """Three TCP listeners that accept connections, record when, and never send a byte."""
    socks, accepted, held = [], [], []
    stop = threading.Event()
    for _ in range(3):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        s.listen(16)
        s.settimeout(0.1)
        socks.append(s)

    def serve(s: socket.socket) -> None:
        while not stop.is_set():
            try:
                conn, _ = s.accept()
            except (TimeoutError, OSError):
                continue
            accepted.append(time.monotonic())
            held.append(conn)

    threads = [threading.Thread(target=serve, args=(s,), daemon=True) for s in socks]
    for t in threads:
        t.start()
    yield [s.getsockname()[1] for s in socks], accepted
    stop.set()
    for t in threads:
        t.join(timeout=5)
    for c in held + socks:
        c.close()


def test_doctor_checks_every_dut_at_once(
    hung_listeners: tuple[list[int], list[float]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ports, accepted = hung_listeners
    duts = "".join(
        f"""
  dut-{i}:
    address: 127.0.0.1
    transport: {{kind: winrm, scheme: http, port: {port}, auth: basic, allow_unencrypted: true}}
    credentials: {{username: lab, password: "env:DOCTOR_TEST_PW"}}
    os_build: 22631
    edition: Enterprise
    kdp: {{declared: on}}
    ports: {{p: {{kind: external, switch: sw, channel: {i + 1}, device: dev}}}}
    session_control: {{lock: scheduled-task, unlock: none}}
    baseline: {{kdp: on, dmaguard: absent, verifier_dma: off, test_signing: off}}
"""
        for i, port in enumerate(ports)
    )
    path = tmp_path / "lab.yaml"
    rest = (
        "devices:\n  dev: {hardware_id: 'PCI\\VEN_1234*', class: SCSIAdapter}\n"
        "instruments:\n  sw:\n    kind: scpi-switch\n"
        f"    resource: TCPIP0::127.0.0.1::{ports[0]}::SOCKET\n    timeout_s: 3\n"
    )
    path.write_text("duts:" + duts + rest, encoding="utf-8")
    monkeypatch.setenv("DOCTOR_TEST_PW", "x")
    lab = load_lab(path)
    started = time.monotonic()
    checks = run_doctor(lab, LabConnector(lab), timeout_s=3)
    took = time.monotonic() - started
    assert broken(checks)
    targets = list(dict.fromkeys(c.target for c in checks))
    assert targets == ["sw", "dut-0", "dut-1", "dut-2"]  # the lab file's order
    # each DUT's first connection came in before any DUT's first check could have timed out
    assert len(accepted) >= 3
    first_three = sorted(accepted)[:3]
    assert first_three[-1] - started < 3, (first_three, started)
    assert took < 3 * 3, took  # sequential checks would have cost one timeout per DUT
