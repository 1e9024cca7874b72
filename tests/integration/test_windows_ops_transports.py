"""Every Windows operation through the virtual lab's real endpoints, over WinRM and over SSH.

The harness side is the real stack: `LabConnector` → `WinRMShell` (pywinrm, NTLM with message
encryption) or `SshShell` (paramiko, RejectPolicy, the lab's known_hosts) → `WindowsHost` with
the shipped operation scripts. The lab side is the virtual lab runtime on 127.0.0.1. Parameters
carrying quotes, `$(...)`, backticks, `;`, `&`, `|` and newlines must reach the DUT as data: the
virtual lab records each operation's parameters exactly as received.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta, timezone

import pytest

from harness.config.lab import Lab
from harness.doctor import Status, broken, run_doctor
from harness.lab.connect import LabConnector
from harness.remote.deadline import Deadline
from harness.virtual_lab.runtime import VirtualLabRuntime
from harness.windows.actions import upload_package, wait_for_device
from harness.windows.host import WindowsHost
from harness.windows.ops import OperationCatalog

NASTY = 'it\'s "quoted" $(whoami) `n ; & | ‘smart’ é\nsecond line'
HWID = {"tb-01": "PCI\\VEN_144D&DEV_A808*", "m2-01": "PCI\\VEN_144D&DEV_A80A*"}
PORT = {"tb-01": ("tb4", 1), "m2-01": ("m2-slot", 2)}

pytestmark = pytest.mark.integration


@pytest.fixture(params=["tb-01", "m2-01"], ids=["winrm", "ssh"])
def dut(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def host(connector: LabConnector, dut: str) -> Iterator[WindowsHost]:
    shell = connector.shell(dut)
    try:
        yield WindowsHost(shell, name=dut, catalog=OperationCatalog(), default_timeout_s=20)
    finally:
        shell.close()


def _last_params(runtime: VirtualLabRuntime, dut: str, operation: str) -> dict:
    ops = [o for o in runtime.operations(dut) if o["operation"] == operation]
    assert ops, f"{operation} never reached {dut}"
    return ops[-1]["params"]


def test_host_facts_match_the_lab(host: WindowsHost, dut: str, lab: Lab) -> None:
    facts = host.host_facts()
    assert facts.build == lab.duts[dut].os_build
    assert facts.computer_name == dut.upper()
    assert facts.kdp.enabled is True
    assert facts.last_boot_utc <= datetime.now(timezone.utc)


def test_hostile_parameters_arrive_as_data(
    host: WindowsHost, dut: str, runtime: VirtualLabRuntime
) -> None:
    path = "C:\\harness\\" + NASTY.replace("\n", " ") + ".bin"
    host.file_write(path, b"payload")
    assert _last_params(runtime, dut, "file_write")["path"] == path
    h = host.file_hash(path)
    assert h.exists and h.size == 7
    host.service_dma_compat(NASTY)
    assert _last_params(runtime, dut, "service_dma_compat") == {"service": NASTY}
    assert host.pnp_devices(NASTY) == ()
    assert _last_params(runtime, dut, "pnp_devices")["hardware_id"] == NASTY
    assert host.set_autologon(True, user="tester", domain=dut.upper(), password=NASTY)
    assert _last_params(runtime, dut, "autologon_set")["password"] == NASTY
    assert NASTY not in host.shell.transcript.render()  # the password is redacted
    assert host.set_autologon(False, user="tester", domain=dut.upper(), password=None) is False
    out = host.run_command("echo " + NASTY.replace("\n", " "))
    assert _last_params(runtime, dut, "command_run")["command"].startswith("echo it's")
    assert out.exit_code in (0, 1)


def test_package_lifecycle_and_device(
    host: WindowsHost, dut: str, lab: Lab, connector: LabConnector, runtime: VirtualLabRuntime
) -> None:
    inf = lab.resolve_path(lab.driver_packages["nvme-inf1"].path)
    hashes_before = sum(o["operation"] == "file_hash" for o in runtime.operations(dut))
    remote_inf = upload_package(host, inf, f"C:\\harness\\pkg-{dut}")
    hashes = sum(o["operation"] == "file_hash" for o in runtime.operations(dut)) - hashes_before
    # WinRM checks each file (INF, catalog, .sys) with the file_hash operation; SFTP's
    # read-back already did
    assert hashes == (3 if dut == "tb-01" else 0)
    sys_path = remote_inf.rsplit("\\", 1)[0] + "\\dmalab_nvme.sys"
    sig = host.driver_signature([sys_path], "DMA Lab Virtual Publisher")
    assert sig[0].status == "Valid" and sig[0].signer_matches
    installed = host.install_driver(remote_inf)
    assert installed.outcome.value in ("installed", "no_device")
    assert installed.published_name and installed.published_name.startswith("oem")
    assert any(d.published_name == installed.published_name for d in host.list_drivers())
    assert not host.service_dma_compat("dmalab_nvme").exists  # created at device install
    port, channel = PORT[dut]
    switch = connector.switch("switch-1")
    try:
        switch.connect(channel)
        devices = wait_for_device(
            host, HWID[dut], lambda ds: any(d.started for d in ds), Deadline.after(10, "device")
        )
        probe = host.storage_probe(devices[0].instance_id, _label(lab, dut), 4)
        compat = host.service_dma_compat("dmalab_nvme")
    finally:
        switch.disconnect(channel)
        switch.close()
    assert devices[0].dma_policy == 2 and devices[0].driver_stack == ("dmalab_nvme",)
    assert devices[0].inf_name == installed.published_name
    assert probe.ok and probe.verified and probe.bytes == 4 * 1024 * 1024
    assert compat.dma_remapping_compatible == 1
    removed = host.uninstall_driver(installed.published_name)
    assert removed.exit_code == 0
    assert runtime.dut_truth(dut)["devices"][port]["present"] is False


def _label(lab: Lab, dut: str) -> str:
    port = lab.duts[dut].ports[PORT[dut][0]]
    probe = lab.devices[port.device].dma_probe
    assert probe is not None and probe.kind == "storage"
    return probe.volume_label


def test_settings_operations(host: WindowsHost, dut: str) -> None:
    state = host.verifier_state()
    assert not state.reboot_pending
    run = host.set_verifier("persistent", 0x80, ["dmalab_nvme.sys"])
    assert run.exit_code == 2 and run.reboot_required
    assert host.verifier_state().reboot_pending
    assert host.set_verifier("reset", 0, []).exit_code == 2
    change = host.dmaguard_set(0)
    assert change.reboot_required and host.dmaguard_get() == 0
    host.dmaguard_set(None)
    assert host.dmaguard_get() is None
    signing = host.set_test_signing(True)
    assert signing.exit_code != 0 and "Secure Boot" in signing.output  # secure_boot: true
    assert host.session_state().state == "unlocked"
    assert host.crash_evidence(datetime.now(timezone.utc) - timedelta(hours=1)).bugchecks == ()


def test_doctor_passes_on_the_default_lab(lab: Lab, connector: LabConnector) -> None:
    checks = run_doctor(lab, connector, timeout_s=15)
    assert not broken(checks), [c for c in checks if c.status is Status.FAIL]
    names = {(c.target, c.name) for c in checks}
    assert ("tb-01", "port tb4: nvme-tb seen") in names
    assert ("m2-01", "operations parse on host") in names
    assert ("switch-1", "identifies") in names
