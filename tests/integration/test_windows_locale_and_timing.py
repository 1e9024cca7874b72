"""Real-Windows behaviours the operations must survive, through the virtual lab's real endpoints.

The lab is a copy of `lab_config/virtual.yaml` whose tb-01 (WinRM, Windows 11) has the German
display language, Secure Boot off (so test signing can be changed), WER writing event 1001 long
after the boot (Kernel-Power 41 carries the stop code at once), and a console session that reads
WTS_SESSIONSTATE_UNKNOWN twice after every lock or sign-in; m2-01 (SSH, Windows 10) is Japanese.
Each test drives the harness's own operation scripts (`WindowsHost`) and checks what a real host
with those settings would show:

- review findings F4, F7, F10: pnputil, bcdedit and verifier print in the display language;
- F8: a 0xE6 is reported from Kernel-Power 41 when WER's 1001 is late, and 1001 is awaited;
- F9: volatile Verifier settings take the two documented commands (`/dif ... /now` when refused);
- F13: an unknown session state is polled again, not thrown;
- F14: the per-device DMA Management key is read; F25: drive-relative paths are refused.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from harness.config.lab import Lab, load_lab
from harness.config.lab_models import VirtualFault
from harness.domain.conditions import SessionState
from harness.errors import InfrastructureError
from harness.lab.boot_state import BootState
from harness.lab.connect import LabConnector
from harness.lab.session_control import LabSessionControl
from harness.lab.state import Knowledge
from harness.lab.strategy import DutStrategy
from harness.remote.deadline import Deadline
from harness.virtual_lab.runtime import VirtualLabRuntime
from harness.windows.actions import reboot_and_wait, upload_package, wait_for_device
from harness.windows.host import WindowsHost
from harness.windows.ops import OperationCatalog
from harness.windows.polling import Backoff, poll_until
from harness.windows.results import HostFacts
from tests.integration.reboots import wait_back

ROOT = Path(__file__).resolve().parents[2]
LAB_FILE = ROOT / "lab_config" / "virtual.yaml"
TIME_SCALE = 0.02
HWID_TB = "PCI\\VEN_144D&DEV_A808*"
FAST_POLL = Backoff(start_s=0.02, factor=1.3, cap_s=0.1)
TB01_QUIRKS = (
    "      quirks:\n"
    "        locale: de-DE\n"
    "        wer_report_delay_s: 3000\n"
    "        session_unknown_polls: 2\n"
)

pytestmark = pytest.mark.integration


def _lab_file(path: Path) -> Path:
    text = LAB_FILE.read_text(encoding="utf-8")
    base = (ROOT / "lab_config").as_posix()
    text = text.replace("path: packages/", f"path: {base}/packages/")
    text = text.replace("[packages/", f"[{base}/packages/")
    tb01 = (
        "    tb-01:\n      build: 22631\n      edition: Enterprise\n      kdp_capable: true\n"
        "      firmware: lenovo-wmi\n      secure_boot: true\n      boot_time_s: 45\n"
        "      quirks: {}\n"
    )
    m201 = "      quirks:\n        inf3_on_win10: like-2"
    assert "  time_scale: 0.045\n" in text and tb01 in text and m201 in text, "lab changed shape"
    text = text.replace("  time_scale: 0.045\n", f"  time_scale: {TIME_SCALE}\n")
    new_tb01 = tb01.replace("secure_boot: true", "secure_boot: false")
    text = text.replace(tb01, new_tb01.replace("      quirks: {}\n", TB01_QUIRKS))
    text = text.replace(m201, "      quirks:\n        locale: ja-JP\n        inf3_on_win10: like-2")
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Lab:
    lab = load_lab(_lab_file(tmp_path_factory.mktemp("localelab") / "lab.yaml"))
    assert lab.virtual is not None
    assert lab.virtual.duts["tb-01"].quirks["locale"] == "de-DE"
    return lab


def _host(connector: LabConnector, dut: str) -> WindowsHost:
    return WindowsHost(
        connector.shell(dut), name=dut, catalog=OperationCatalog(), default_timeout_s=10
    )


@pytest.fixture
def tb01(connector: LabConnector, runtime: VirtualLabRuntime) -> Iterator[WindowsHost]:
    host = _host(connector, "tb-01")
    try:
        yield host
    finally:
        host.shell.close()
        runtime.clear_faults()
        runtime.settle()


@pytest.fixture
def m201(connector: LabConnector) -> Iterator[WindowsHost]:
    host = _host(connector, "m2-01")
    try:
        yield host
    finally:
        host.shell.close()


def _reboot(host: WindowsHost, budget_s: float = 15) -> HostFacts:
    report = reboot_and_wait(
        host,
        Deadline.after(budget_s, f"reboot of {host.name}"),
        down_timeout_s=3,
        up_timeout_s=budget_s,
        poll=FAST_POLL,
    )
    return report.facts


# -- F4: the driver store, whatever the display language -----------------------------------------
def test_german_pnputil_output_is_localized_and_the_driver_list_still_reads(
    tb01: WindowsHost, lab: Lab
) -> None:
    raw = tb01.run_command("pnputil /enum-drivers")
    inf = lab.resolve_path(lab.driver_packages["nvme-inf1"].path)
    installed = tb01.install_driver(upload_package(tb01, inf, "C:\\harness\\pkg-locale"))
    try:
        assert installed.published_name
        raw = tb01.run_command("pnputil /enum-drivers")
        assert "Veröffentlichter Name" in raw.output and "Published Name" not in raw.output
        drivers = tb01.list_drivers()
        entry = next(d for d in drivers if d.published_name == installed.published_name)
        assert entry.original_name == "dmalab_nvme_inf1.inf"
        assert entry.signer == "Virtual Windows Hardware Compatibility Publisher"  # the catalog's
    finally:
        tb01.uninstall_driver(installed.published_name)


def test_japanese_driver_list_over_ssh(m201: WindowsHost, lab: Lab) -> None:
    inf = lab.resolve_path(lab.driver_packages["nvme-inf0"].path)
    installed = m201.install_driver(upload_package(m201, inf, "C:\\harness\\pkg-ja"))
    try:
        names = [d.published_name for d in m201.list_drivers()]
        assert installed.published_name in names
    finally:
        m201.uninstall_driver(installed.published_name)


# -- F7: test signing in the BCD store ------------------------------------------------------------
def test_german_bcdedit_says_ja_and_host_facts_reads_test_signing_on(tb01: WindowsHost) -> None:
    run = tb01.set_test_signing(True)
    try:
        assert run.exit_code == 0
        assert "testsigning             Ja" in tb01.run_command("bcdedit /enum {current}").output
        facts = tb01.host_facts()
        assert facts.test_signing is True  # the next boot's value, from the BCD WMI provider
        assert facts.test_signing_in_effect is False  # not before the reboot
    finally:
        tb01.set_test_signing(False)
    assert tb01.host_facts().test_signing is False


# -- F10, F9: Driver Verifier --------------------------------------------------------------------
def test_german_verifier_query_is_read_by_shape_or_reported_unknown(
    tb01: WindowsHost, runtime: VirtualLabRuntime
) -> None:
    assert tb01.set_verifier("persistent", 0x80, ["dmalab_nvme.sys"]).reboot_required
    _reboot(tb01)
    try:
        assert "Stufe: 00000080" in tb01.run_command("verifier /query").output
        state = tb01.verifier_state()
        assert state.active_known
        assert state.active.flags == 0x80 and state.active.drivers == ("dmalab_nvme.sys",)
        assert state.reboot_pending is False
    finally:
        tb01.set_verifier("reset", 0, [])
        _reboot(tb01)
    # Nothing verified: the German sentence is not recognised; unknown, never "off".
    assert "Zurzeit werden keine Treiber" in tb01.run_command("verifier /query").output
    state = tb01.verifier_state()
    assert not state.active_known and state.reboot_pending is None
    assert state.pending.drivers == ()
    assert runtime.dut_truth("tb-01")["verifier"]["active"]["drivers"] == []


def test_volatile_verifier_takes_two_documented_commands(
    tb01: WindowsHost, runtime: VirtualLabRuntime
) -> None:
    run = tb01.set_verifier("volatile", 0x80, ["dmalab_nvme.sys"])
    try:
        assert run.exit_code == 0 and not run.reboot_required
        active = runtime.dut_truth("tb-01")["verifier"]["active"]
        assert active == {"flags": 0x80, "drivers": ["dmalab_nvme"]}
        commands = [op["operation"] for op in runtime.operations("tb-01")]
        assert commands[-1] == "verifier_set"
    finally:
        _reboot(tb01)  # volatile settings end with the boot
    assert runtime.dut_truth("tb-01")["verifier"]["active"]["drivers"] == []


def test_volatile_refused_on_windows_11_falls_back_to_dif_now(
    tb01: WindowsHost, runtime: VirtualLabRuntime
) -> None:
    machine = runtime.node("tb-01").machine
    with machine.lock:
        machine.quirks["verifier_volatile_refused"] = True
    try:
        run = tb01.set_verifier("volatile", 0x80, ["dmalab_nvme.sys"])
        assert run.exit_code == 0, run.output
        assert "/volatile option is not supported" in run.output
        active = runtime.dut_truth("tb-01")["verifier"]["active"]
        assert active["flags"] & 0x80 and active["drivers"] == ["dmalab_nvme"]
    finally:
        with machine.lock:
            del machine.quirks["verifier_volatile_refused"]
        _reboot(tb01)


# -- F8: crash evidence when WER's 1001 is late --------------------------------------------------
def test_late_event_1001_does_not_hide_a_0xe6(
    tb01: WindowsHost, runtime: VirtualLabRuntime
) -> None:
    old = tb01.host_facts().last_boot_utc
    runtime.add_fault(VirtualFault(kind="bugcheck", dut="tb-01", operation="pnp_devices", count=1))
    with pytest.raises(InfrastructureError, match="pnp_devices"):
        tb01.pnp_devices(HWID_TB, timeout_s=5)
    wait_back(tb01, old, Deadline.after(8, "tb-01 back after the bugcheck"))
    evidence = tb01.crash_evidence(old)
    assert evidence.crashed
    first = evidence.bugchecks[0]
    assert first.stop_code == 0xE6 and first.parameters[0] == 0x26
    assert first.source == "kernel-power-41"  # WER has not written 1001 yet
    assert first.dump_path is not None and first.dump_path.upper().endswith("MEMORY.DMP")
    assert evidence.shutdown_bugchecks[0].stop_code == 0xE6


def test_crash_evidence_waits_for_a_1001_that_comes_within_its_bound(
    tb01: WindowsHost, runtime: VirtualLabRuntime
) -> None:
    machine = runtime.node("tb-01").machine
    with machine.lock:
        # Inside the op's wait: half of this host's 10 s call budget.
        machine.quirks["wer_report_delay_s"] = 3
    try:
        old = tb01.host_facts().last_boot_utc
        fault = VirtualFault(kind="bugcheck", dut="tb-01", operation="pnp_devices", count=1)
        runtime.add_fault(fault)
        with pytest.raises(InfrastructureError, match="pnp_devices"):
            tb01.pnp_devices(HWID_TB, timeout_s=5)
        wait_back(tb01, old, Deadline.after(8, "tb-01 back after the bugcheck"))
        evidence = tb01.crash_evidence(old)
    finally:
        with machine.lock:
            machine.quirks["wer_report_delay_s"] = 3000
    assert [b.source for b in evidence.bugchecks] == ["wer-1001"]
    asked = [o for o in runtime.operations("tb-01") if o["operation"] == "crash_evidence"]
    assert asked[-1]["params"]["report_wait_s"] == 5.0  # bounded by the call's own deadline
    assert evidence.bugchecks[0].stop_code == 0xE6


def test_a_1001_logged_after_its_crash_was_reported_is_not_a_second_crash(
    tb01: WindowsHost, runtime: VirtualLabRuntime
) -> None:
    """The crash is reported from Kernel-Power 41 (WER is late); WER's 1001 for the same stop
    then reaches the log, with its own later time. The next reboot must not report it again."""
    machine = runtime.node("tb-01").machine
    with machine.lock:
        machine.quirks["wer_report_delay_s"] = 150  # 3 s real at this lab's time scale
    try:
        old = tb01.host_facts().last_boot_utc
        tb01.crash_evidence(old)  # as at first contact: what earlier tests left counts as seen
        fault = VirtualFault(kind="bugcheck", dut="tb-01", operation="pnp_devices", count=1)
        runtime.add_fault(fault)
        with pytest.raises(InfrastructureError, match="pnp_devices"):
            tb01.pnp_devices(HWID_TB, timeout_s=5)
        back = wait_back(tb01, old, Deadline.after(8, "tb-01 back after the bugcheck"))
        evidence = tb01.crash_evidence(tb01.unseen_since(old), timeout_s=2)  # waits 1 s at most
        assert [b.source for b in evidence.bugchecks] == ["kernel-power-41"]
        poll_until(
            lambda: [
                e
                for e in list(machine.events)
                if e["id"] == 1001 and e["time"] > back.last_boot_utc
            ],
            bool,
            deadline=Deadline.after(10, "WER's late 1001 in the lab's System log"),
            sleep=time.sleep,
            backoff=FAST_POLL,
        )
    finally:
        with machine.lock:
            machine.quirks["wer_report_delay_s"] = 3000
    _reboot(tb01)  # raised DutCrashed for the crash reported above
    assert not tb01.crash_evidence(tb01.unseen_since(old)).crashed


# -- F13: unknown session state ------------------------------------------------------------------
def test_unknown_session_state_is_polled_again(tb01: WindowsHost) -> None:
    control = LabSessionControl(
        tb01, method="none", keyboard=None, username="lab", password="", poll=FAST_POLL
    )
    assert control.state(Deadline.after(5, "state")) is SessionState.UNLOCKED
    control.lock(Deadline.after(5, "lock"))  # two WTS_SESSIONSTATE_UNKNOWN readings on the way
    assert tb01.session_state().state in (SessionState.LOCKED, None)
    assert control.state(Deadline.after(5, "state")) is SessionState.LOCKED


# -- F14: the per-device DMA Management key ------------------------------------------------------
def test_pnp_devices_reads_the_per_device_dma_management_key(
    tb01: WindowsHost, lab: Lab, connector: LabConnector
) -> None:
    inf = lab.resolve_path(lab.driver_packages["nvme-dev1f1"].path)
    installed = tb01.install_driver(upload_package(tb01, inf, "C:\\harness\\pkg-dev1f1"))
    switch = connector.switch("switch-1")
    try:
        switch.connect(1)
        devices = wait_for_device(
            tb01, HWID_TB, lambda ds: bool(ds), Deadline.after(5, "tb4 device")
        )
        assert devices[0].remapping_supported == 1 and devices[0].remapping_flags == 1
    finally:
        switch.disconnect(1)
        switch.close()
        tb01.uninstall_driver(installed.published_name)


# -- F25: drive-relative paths -------------------------------------------------------------------
def test_file_write_refuses_a_drive_relative_path(tb01: WindowsHost) -> None:
    with pytest.raises(InfrastructureError, match="must be absolute"):
        tb01.call("file_write", {"path": "\\harness\\x.txt", "mode": "create", "data_base64": ""})
    written = tb01.call(
        "file_write", {"path": "C:\\harness\\x.txt", "mode": "create", "data_base64": "eA=="}
    )
    assert written["size"] == 1


# -- F10 in the strategy: an unreadable /query is unknown, made known by one reboot ---------------
def test_strategy_treats_unreadable_verifier_output_as_unknown(
    tb01: WindowsHost, lab: Lab, runtime: VirtualLabRuntime
) -> None:
    # the bugchecks the crash-evidence tests above caused (this module's lab is shared) are
    # read once here, so the strategy's reboot check looks only past them
    tb01.crash_evidence(datetime.now(timezone.utc) - timedelta(days=1))
    strategy = DutStrategy(tb01, "tb-01", lab.duts["tb-01"], reboot_s=15, step_s=10)
    required = BootState.from_baseline(lab.duts["tb-01"].baseline)
    first = strategy.observe(Deadline.after(20, "first contact"))
    assert first.verifier.known is Knowledge.UNKNOWN  # German "nothing verified": not "off"
    boots = runtime.dut_truth("tb-01")["boots"]
    transition = strategy.bring_to(required, Deadline.after(30, "baseline"))
    assert transition.rebooted and runtime.dut_truth("tb-01")["boots"] == boots + 1
    assert transition.after.verifier.known is Knowledge.CARRIED
    again = strategy.bring_to(required, Deadline.after(30, "baseline again"))
    assert not again.rebooted
