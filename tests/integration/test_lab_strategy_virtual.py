"""The DUT strategy and the package installer against the virtual lab's real endpoints.

tb-01 (WinRM, Lenovo firmware lever) is brought to Verifier DMA on + KDP off + DMAGuard 1 and
back to its baseline, each with exactly one reboot (and a first contact at the baseline with none;
tests/integration/test_lab_first_contact_virtual.py has the cases that do need one), as counted in the simulated DUT's own
operation log; the simulated machine's truth (what its kernel applied at boot) is the independent
check. m2-01 (SSH, no firmware lever) refuses KDP off before anything is changed.
"""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.config.lab import Lab
from harness.domain.conditions import DmaGuardPolicy, OnOff
from harness.errors import ConfigError, TestFailure
from harness.lab.boot_state import BootState
from harness.lab.connect import LabConnector
from harness.lab.packages import PackageInstaller, drivers_of
from harness.lab.state import Knowledge
from harness.lab.strategy import ChangeKind, DutStrategy
from harness.remote.deadline import Deadline
from harness.virtual_lab.runtime import VirtualLabRuntime
from harness.windows.host import WindowsHost
from harness.windows.ops import OperationCatalog

pytestmark = pytest.mark.integration

REBOOT_S, STEP_S = 30.0, 20.0


def _host(connector: LabConnector, dut: str) -> Iterator[WindowsHost]:
    shell = connector.shell(dut)
    try:
        yield WindowsHost(shell, name=dut, catalog=OperationCatalog(), default_timeout_s=20)
    finally:
        shell.close()


@pytest.fixture
def tb01(connector: LabConnector) -> Iterator[WindowsHost]:
    yield from _host(connector, "tb-01")


@pytest.fixture
def m201(connector: LabConnector) -> Iterator[WindowsHost]:
    yield from _host(connector, "m2-01")


def _ops(runtime: VirtualLabRuntime, dut: str, name: str | None = None) -> list[str]:
    return [
        o["operation"] for o in runtime.operations(dut) if name is None or o["operation"] == name
    ]


def _inf(lab: Lab, package: str) -> tuple[Path, str]:
    spec = lab.driver_packages[package]
    return lab.resolve_path(spec.path), spec.expected_signer


def _dl(what: str, seconds: float = 120) -> Deadline:
    return Deadline.after(seconds, what)


def test_install_is_idempotent_and_uninstall_all_removes_it(
    tb01: WindowsHost, lab: Lab, runtime: VirtualLabRuntime
) -> None:
    inf, signer = _inf(lab, "nvme-inf2")
    installer = PackageInstaller(tb01)
    pkg = installer.install("nvme-inf2", inf, signer, _dl("install"))
    assert pkg.published_name.lower().startswith("oem")
    assert pkg.version == "03/14/2025 1.4.102.0"
    assert pkg.signer  # as the driver store reports it
    assert pkg.drivers == ("dmalab_nvme.sys",)
    assert pkg.files == {
        name: hashlib.sha256((inf.parent / name).read_bytes()).hexdigest()
        for name in (inf.name, "dmalab_nvme_inf2.cat", "dmalab_nvme.sys")
    }
    store = {d.published_name for d in tb01.list_drivers()}
    assert pkg.published_name in store
    installs = len(_ops(runtime, "tb-01", "driver_install"))

    again = installer.install("nvme-inf2", inf, signer, _dl("install again"))
    assert again == pkg
    assert len(_ops(runtime, "tb-01", "driver_install")) == installs  # not installed twice

    removed = installer.uninstall_all(_dl("uninstall"))
    assert [p.published_name for p in removed] == [pkg.published_name]
    assert pkg.published_name not in {d.published_name for d in tb01.list_drivers()}
    assert installer.installed == {}
    assert installer.uninstall_all(_dl("nothing left")) == []


def test_a_package_for_the_same_device_replaces_the_previous_one(
    tb01: WindowsHost, lab: Lab
) -> None:
    installer = PackageInstaller(tb01)
    first = installer.install("nvme-inf2", *_inf(lab, "nvme-inf2"), _dl("install inf2"))
    second = installer.install("nvme-inf1", *_inf(lab, "nvme-inf1"), _dl("install inf1"))
    store = {d.published_name for d in tb01.list_drivers()}
    assert second.published_name in store and first.published_name not in store
    assert list(installer.installed) == ["nvme-inf1"]
    installer.uninstall_all(_dl("uninstall"))
    assert second.published_name not in {d.published_name for d in tb01.list_drivers()}


def test_a_package_already_gone_from_the_store_counts_as_uninstalled(
    tb01: WindowsHost, lab: Lab
) -> None:
    # An earlier delete whose answer was lost (the DUT went down while answering) left the
    # installer's record behind: pnputil now says "not an installed OEM INF".
    installer = PackageInstaller(tb01)
    pkg = installer.install("nvme-inf0", *_inf(lab, "nvme-inf0"), _dl("install inf0"))
    assert tb01.uninstall_driver(pkg.published_name).outcome.value != "failed"
    assert installer.uninstall_all(_dl("uninstall")) == [pkg]
    assert installer.installed == {}


def test_a_tampered_binary_is_a_test_failure_before_install(
    tb01: WindowsHost, lab: Lab, runtime: VirtualLabRuntime, tmp_path: Path
) -> None:
    inf, signer = _inf(lab, "nvme-inf2")
    shutil.copy(inf, tmp_path / inf.name)
    data = bytearray((inf.parent / "dmalab_nvme.sys").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (tmp_path / "dmalab_nvme.sys").write_bytes(bytes(data))
    installs = len(_ops(runtime, "tb-01", "driver_install"))
    installer = PackageInstaller(tb01, remote_root="C:\\dmalab\\tampered")
    with pytest.raises(
        TestFailure, match=r"not properly signed on tb-01: dmalab_nvme\.sys: signature \w+"
    ):
        installer.install("nvme-inf2", tmp_path / inf.name, signer, _dl("install"))
    assert len(_ops(runtime, "tb-01", "driver_install")) == installs
    assert installer.installed == {}


def test_bring_to_conditions_and_back_with_one_reboot_each(
    tb01: WindowsHost, lab: Lab, runtime: VirtualLabRuntime
) -> None:
    dut = lab.duts["tb-01"]
    drivers = drivers_of(_inf(lab, "nvme-inf2")[0])
    strategy = DutStrategy(tb01, "tb-01", dut, reboot_s=REBOOT_S, step_s=STEP_S)
    wanted = BootState(OnOff.OFF, DmaGuardPolicy.AFTER_LOGIN, OnOff.ON, drivers, OnOff.OFF)
    baseline = BootState.from_baseline(dut.baseline, drivers)

    reboots = len(_ops(runtime, "tb-01", "reboot_request"))
    t = strategy.bring_to(wanted, _dl("conditions"))
    assert len(_ops(runtime, "tb-01", "reboot_request")) == reboots + 1
    assert t.rebooted and t.after.last_boot_utc > t.before.last_boot_utc
    assert {c.kind for c in t.changes} == {
        ChangeKind.KDP_FIRMWARE,
        ChangeKind.DMAGUARD,
        ChangeKind.VERIFIER,
    }
    truth = runtime.dut_truth("tb-01")  # what the simulated kernel applied at boot
    assert truth["kdp_active"] is False
    assert truth["dmaguard"]["at_boot"] == 1
    assert truth["verifier"]["active"] == {"flags": 0x80, "drivers": ["dmalab_nvme"]}
    assert t.after.kdp.active is False and t.after.dmaguard.active == 1
    assert t.after.dmaguard.known is Knowledge.OBSERVED  # its key predates the boot

    t = strategy.bring_to(baseline, _dl("baseline"))
    assert len(_ops(runtime, "tb-01", "reboot_request")) == reboots + 2
    assert {c.kind for c in t.changes} == {
        ChangeKind.KDP_FIRMWARE,
        ChangeKind.DMAGUARD,
        ChangeKind.VERIFIER,
    }
    truth = runtime.dut_truth("tb-01")
    assert truth["kdp_active"] is True
    assert truth["dmaguard"]["at_boot"] is None
    assert truth["verifier"]["active"] == {"flags": 0, "drivers": []}

    seen = len(runtime.operations("tb-01"))
    t = strategy.bring_to(baseline, _dl("nothing to do"))
    assert not t.rebooted and t.changes == () and t.reboot_reasons == ()
    assert _ops(runtime, "tb-01")[seen:] == ["host_facts"]  # the cache answers the rest


def test_first_contact_with_a_dut_at_its_baseline_does_not_reboot(
    tb01: WindowsHost, lab: Lab, runtime: VirtualLabRuntime
) -> None:
    """DMAGuard and test signing in effect are read from the host (the policy key's last-write
    time against the boot, code integrity's test-signing option): a strategy that has not seen
    a boot apply them still knows them, and leaves a DUT already at its baseline alone."""
    dut = lab.duts["tb-01"]
    baseline = BootState.from_baseline(dut.baseline)
    strategy = DutStrategy(tb01, "tb-01", dut, reboot_s=REBOOT_S, step_s=STEP_S)
    reboots = len(_ops(runtime, "tb-01", "reboot_request"))
    t = strategy.bring_to(baseline, _dl("first contact"))
    assert t.changes == () and not t.rebooted and t.reboot_reasons == ()
    assert t.before.dmaguard.known is Knowledge.OBSERVED
    assert t.before.test_signing.known is Knowledge.OBSERVED
    t = strategy.bring_to(baseline, _dl("second"))
    assert not t.rebooted
    assert len(_ops(runtime, "tb-01", "reboot_request")) == reboots


def test_kdp_off_on_a_dut_without_firmware_lever_is_refused_before_any_change(
    m201: WindowsHost, lab: Lab, runtime: VirtualLabRuntime
) -> None:
    strategy = DutStrategy(m201, "m2-01", lab.duts["m2-01"], reboot_s=REBOOT_S, step_s=STEP_S)
    seen = len(runtime.operations("m2-01"))
    wanted = BootState(OnOff.OFF, DmaGuardPolicy.ABSENT, OnOff.OFF)
    with pytest.raises(ConfigError, match="m2-01 cannot run with Kernel DMA Protection off"):
        strategy.bring_to(wanted, _dl("kdp off"))
    assert runtime.operations("m2-01")[seen:] == []
