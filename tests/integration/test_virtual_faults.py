"""The virtual lab's machine and endpoint faults, seen through the harness's real stack.

Each test injects one fault into the running virtual lab (`VirtualLabRuntime.add_fault`) and
drives the DUT through `LabConnector` → WinRM (tb-01) or SSH (m2-01) → `WindowsHost`, checking
that the harness sees what a real lab would show: a reboot that never comes back, a slow one, a
bugcheck in the middle of an operation (and its crash evidence after the automatic restart), the
0xE6 of a driver doing DMA that Driver Verifier's DMA checks catch, a device that never
enumerates, and an endpoint that refuses the credentials.

The lab is a copy of `lab_config/virtual.yaml` with a smaller time scale (a reboot takes about
1 s) and `faulty_driver: dmalab_nvme` on tb-01 (harmless unless Verifier 0x80 targets it).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.config.lab import Lab, load_lab
from harness.config.lab_models import VirtualFault
from harness.errors import DutError, InfrastructureError
from harness.lab.connect import LabConnector
from harness.remote.deadline import Deadline
from harness.virtual_lab.runtime import VirtualLabRuntime
from harness.windows.actions import reboot_and_wait, upload_package, wait_for_device
from harness.windows.host import WindowsHost
from harness.windows.ops import OperationCatalog
from harness.windows.polling import Backoff, WaitTimeout
from tests.integration.reboots import wait_back

ROOT = Path(__file__).resolve().parents[2]
LAB_FILE = ROOT / "lab_config" / "virtual.yaml"
TIME_SCALE = 0.02  # a 45 s reboot in 0.9 s
HWID_TB = "PCI\\VEN_144D&DEV_A808*"
FAST_POLL = Backoff(start_s=0.02, factor=1.3, cap_s=0.1)

pytestmark = pytest.mark.integration


def _fault_lab(path: Path) -> Path:
    """The shipped virtual lab, faster, with tb-01's dmalab_nvme faulty; paths kept absolute."""
    text = LAB_FILE.read_text(encoding="utf-8")
    base = (ROOT / "lab_config").as_posix()
    text = text.replace("path: packages/", f"path: {base}/packages/")
    text = text.replace("[packages/", f"[{base}/packages/")
    old_scale = "  time_scale: 0.045\n"
    tb01 = "    tb-01:\n      build: 22631\n"
    assert old_scale in text and tb01 in text, "lab_config/virtual.yaml changed shape"
    text = text.replace(old_scale, f"  time_scale: {TIME_SCALE}\n")
    text = text.replace(tb01, tb01 + "      faulty_driver: dmalab_nvme\n")
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Lab:
    lab = load_lab(_fault_lab(tmp_path_factory.mktemp("faultlab") / "lab.yaml"))
    assert lab.virtual is not None and lab.virtual.duts["tb-01"].faulty_driver == "dmalab_nvme"
    return lab


@pytest.fixture(autouse=True)
def _no_faults_left(runtime: VirtualLabRuntime) -> Iterator[None]:
    yield
    runtime.clear_faults()
    runtime.settle()


def _host(connector: LabConnector, dut: str) -> WindowsHost:
    return WindowsHost(
        connector.shell(dut), name=dut, catalog=OperationCatalog(), default_timeout_s=10
    )


@pytest.fixture
def tb01(connector: LabConnector) -> Iterator[WindowsHost]:
    host = _host(connector, "tb-01")
    try:
        yield host
    finally:
        host.shell.close()


def _reboot(host: WindowsHost, budget_s: float = 10):
    return reboot_and_wait(
        host,
        Deadline.after(budget_s, f"reboot of {host.name}"),
        down_timeout_s=3,
        up_timeout_s=budget_s,
        poll=FAST_POLL,
    )


def test_reboot_hang_is_a_dut_error_until_power_cycled(
    tb01: WindowsHost, runtime: VirtualLabRuntime
) -> None:
    old = tb01.host_facts().last_boot_utc
    runtime.add_fault(VirtualFault(kind="reboot-hang", dut="tb-01"))
    with pytest.raises(DutError, match="did not come back"):
        reboot_and_wait(
            tb01, Deadline.after(10, "reboot"), down_timeout_s=2, up_timeout_s=1.5, poll=FAST_POLL
        )
    assert runtime.dut_truth("tb-01")["power"] == "hung"
    runtime.clear_faults()  # the technician power-cycles it
    runtime.settle()
    assert runtime.dut_truth("tb-01")["power"] == "on"
    tb01.shell.reconnect(timeout_s=5)  # type: ignore[call-arg]
    facts = tb01.host_facts()
    assert facts.computer_name == "TB-01" and facts.last_boot_utc > old


@pytest.mark.parametrize("dut", ["tb-01", "m2-01"], ids=["winrm", "ssh"])
def test_slow_reboot_takes_longer_than_a_normal_one(
    dut: str, connector: LabConnector, runtime: VirtualLabRuntime
) -> None:
    host = _host(connector, dut)
    try:
        normal = _reboot(host)
        runtime.add_fault(VirtualFault(kind="slow-reboot", dut=dut, factor=3, count=1))
        slow = _reboot(host)
    finally:
        host.shell.close()
    assert not normal.evidence.crashed and not slow.evidence.crashed
    assert slow.facts.last_boot_utc > normal.facts.last_boot_utc
    # boot time x3 (shutdown and polling unchanged): well above 1.5x the normal reboot
    assert slow.up_after_s > 1.5 * normal.up_after_s, (normal.up_after_s, slow.up_after_s)


def test_bugcheck_during_an_operation(tb01: WindowsHost, runtime: VirtualLabRuntime) -> None:
    old = tb01.host_facts().last_boot_utc
    runtime.add_fault(VirtualFault(kind="bugcheck", dut="tb-01", operation="pnp_devices", count=1))
    with pytest.raises(InfrastructureError, match="pnp_devices"):
        tb01.pnp_devices(HWID_TB, timeout_s=5)
    facts = wait_back(tb01, old, Deadline.after(8, "tb-01 back after the bugcheck"))
    assert facts.last_boot_utc > old
    evidence = tb01.crash_evidence(old)
    assert evidence.crashed
    first = evidence.bugchecks[0]
    assert first.stop_code == 0xE6 and first.parameters[0] == 0x26
    assert first.dump_path is not None and first.dump_path.upper().endswith("MEMORY.DMP")
    assert any(d.path.upper().endswith("MEMORY.DMP") for d in evidence.dumps)
    assert evidence.unexpected_shutdowns
    assert tb01.pnp_devices(HWID_TB) == ()  # the fault fired once; operations work again
    report = _reboot(tb01)  # the crash was reported above: a later reboot does not repeat it
    assert not report.evidence.bugchecks


def test_faulty_driver_under_verifier_dma_bugchecks_0xe6(lab: Lab, tmp_path: Path) -> None:
    # A lab of its own: the earlier crash's event 1001 must not show up in this test's reboot.
    runtime = VirtualLabRuntime(lab, workdir=tmp_path).start()
    try:
        connector = LabConnector(lab, runtime.endpoints())
        tb01 = _host(connector, "tb-01")
        try:
            _faulty_driver_scenario(tb01, lab, connector, runtime)
        finally:
            tb01.shell.close()
    finally:
        runtime.stop()


def _faulty_driver_scenario(
    tb01: WindowsHost, lab: Lab, connector: LabConnector, runtime: VirtualLabRuntime
) -> None:
    run = tb01.set_verifier("persistent", 0x80, ["dmalab_nvme.sys"])
    assert run.reboot_required
    _reboot(tb01)
    assert runtime.dut_truth("tb-01")["verifier"]["active"]["drivers"] == ["dmalab_nvme"]
    inf = lab.resolve_path(lab.driver_packages["nvme-inf1"].path)
    installed = tb01.install_driver(upload_package(tb01, inf, "C:\\harness\\pkg-faulty"))
    assert installed.published_name
    switch = connector.switch("switch-1")
    try:
        switch.connect(1)
        devices = wait_for_device(
            tb01, HWID_TB, lambda ds: any(d.started for d in ds), Deadline.after(5, "tb4 device")
        )
        assert devices[0].dma_policy == 2
        old = tb01.host_facts().last_boot_utc
        with pytest.raises(InfrastructureError, match="storage_probe"):
            tb01.storage_probe(devices[0].instance_id, "DMALAB-TB", 4, timeout_s=5)
        wait_back(tb01, old, Deadline.after(8, "tb-01 back after the 0xE6"))
        evidence = tb01.crash_evidence(old)
    finally:
        switch.disconnect(1)
        switch.close()
        tb01.set_verifier("reset", 0, [])
    assert evidence.crashed
    first = evidence.bugchecks[0]
    assert first.stop_code == 0xE6
    assert first.parameters[0] == 0x26  # policy 2 with Kernel DMA Protection on
    assert first.dump_path is not None and first.dump_path.upper().endswith("MEMORY.DMP")


def test_enumeration_failure_never_shows_the_device(
    tb01: WindowsHost, connector: LabConnector, runtime: VirtualLabRuntime
) -> None:
    runtime.add_fault(VirtualFault(kind="enumeration-failure", dut="tb-01", port="tb4"))
    switch = connector.switch("switch-1")
    try:
        switch.connect(1)
        with pytest.raises(WaitTimeout) as info:
            wait_for_device(tb01, HWID_TB, bool, Deadline.after(1, "tb4 device"))
        truth = runtime.dut_truth("tb-01")["devices"]["tb4"]
    finally:
        switch.disconnect(1)
        switch.close()
    assert info.value.last == () and info.value.observations >= 1
    assert truth["present"] is False


@pytest.mark.parametrize("dut", ["tb-01", "m2-01"], ids=["winrm", "ssh"])
def test_auth_failure_until_cleared(
    dut: str, connector: LabConnector, runtime: VirtualLabRuntime
) -> None:
    runtime.add_fault(VirtualFault(kind="auth-failure", dut=dut))
    runtime.settle()
    shell = connector.shell(dut)
    try:
        with pytest.raises(InfrastructureError):
            shell.run("hostname", timeout_s=5)
    finally:
        shell.close()
    runtime.clear_faults()
    runtime.settle()
    host = _host(connector, dut)
    try:
        assert host.host_facts().computer_name == dut.upper()
    finally:
        host.shell.close()
