"""Real-Windows behaviours around BitLocker, the restart, the BIOS WMI, the token and autologon,
through the virtual lab's real WinRM endpoint and the harness's own operation scripts.

The lab is a copy of `lab_config/virtual.yaml` whose tb-01 (Lenovo BIOS WMI) has Secure Boot off,
BitLocker on (TPM protector) and a stale LSA `DefaultPassword` secret left by an earlier
autologon tool; m2-01 is a Dell whose DMA protection attribute is not named
`KernelDmaProtection`, reached with a filtered (non-elevated) token, with an application of the
signed-in user that vetoes an unforced restart.

- review finding F2 / F12a: a BCD or firmware change without suspended BitLocker stops the next
  boot at the recovery screen until the recovery key is typed (control endpoint);
- F11: `shutdown /r /t 0` without `/f` is vetoed by an application of the signed-in user;
- F12b/c: Dell's attribute name is read at runtime; Lenovo `SaveBiosSettings` takes no argument;
- F15: a DUT whose operations run without an elevated token is refused before any change;
- F24: the autologon password is stored as the LSA secret, which Winlogon prefers.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.config.lab import Lab, load_lab
from harness.domain.conditions import DmaGuardPolicy, OnOff
from harness.errors import DutError, InfrastructureError
from harness.lab.boot_state import BootState
from harness.lab.connect import LabConnector
from harness.lab.strategy import DutStrategy
from harness.remote.deadline import Deadline
from harness.virtual_lab.control import ControlClient
from harness.virtual_lab.runtime import VirtualLabRuntime
from harness.windows import readiness
from harness.windows.actions import reboot_and_wait
from harness.windows.host import WindowsHost
from harness.windows.ops import OperationCatalog
from harness.windows.polling import Backoff, pause
from harness.windows.results import HostFacts

ROOT = Path(__file__).resolve().parents[2]
LAB_FILE = ROOT / "lab_config" / "virtual.yaml"
TIME_SCALE = 0.02
FAST_POLL = Backoff(start_s=0.02, factor=1.3, cap_s=0.1)

pytestmark = pytest.mark.integration


def _lab_file(path: Path) -> Path:
    text = LAB_FILE.read_text(encoding="utf-8")
    base = (ROOT / "lab_config").as_posix()
    text = text.replace("path: packages/", f"path: {base}/packages/")
    text = text.replace("[packages/", f"[{base}/packages/")
    tb01 = "      firmware: lenovo-wmi\n      secure_boot: true\n      boot_time_s: 45\n      quirks: {}\n"
    m201 = "      firmware: none\n      secure_boot: true\n      boot_time_s: 45\n      quirks:\n"
    assert "  time_scale: 0.045\n" in text and tb01 in text and m201 in text, "lab changed shape"
    m201_kdp = "      firmware_control: none\n"
    assert text.count(m201_kdp) == 1, "lab changed shape"
    text = text.replace(m201_kdp, "      firmware_control: dell-wmi\n")
    text = text.replace("  time_scale: 0.045\n", f"  time_scale: {TIME_SCALE}\n")
    text = text.replace(
        tb01,
        "      firmware: lenovo-wmi\n      secure_boot: false\n      boot_time_s: 45\n"
        "      quirks:\n        bitlocker: true\n"
        "        stale_lsa_autologon: true\n",
    )
    text = text.replace(
        m201,
        "      firmware: dell-wmi\n      secure_boot: true\n      boot_time_s: 45\n"
        "      quirks:\n        dell_dma_attribute: DmaProtection\n        elevated: false\n"
        "        restart_veto: true\n",
    )
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Lab:
    lab = load_lab(_lab_file(tmp_path_factory.mktemp("bootsec") / "lab.yaml"))
    assert lab.virtual is not None and lab.virtual.duts["tb-01"].quirks["bitlocker"] is True
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
        runtime.settle()


@pytest.fixture
def m201(connector: LabConnector) -> Iterator[WindowsHost]:
    host = _host(connector, "m2-01")
    try:
        yield host
    finally:
        host.shell.close()


def _control(runtime: VirtualLabRuntime) -> ControlClient:
    ep = runtime.endpoints()
    return ControlClient(ep.control.url, ep.control.token)


def _reboot(host: WindowsHost, budget_s: float = 15) -> HostFacts:
    report = reboot_and_wait(
        host,
        Deadline.after(budget_s, f"reboot of {host.name}"),
        down_timeout_s=3,
        up_timeout_s=budget_s,
        poll=FAST_POLL,
    )
    return report.facts


def _wait_power(runtime: VirtualLabRuntime, dut: str, want: str, budget_s: float = 10) -> None:
    deadline = Deadline.after(budget_s, f"{dut} power {want}")
    delays = FAST_POLL.delays()
    while runtime.dut_truth(dut)["power"] != want:
        deadline.check()
        pause(deadline, next(delays), time.sleep)


def _reachable_again(host: WindowsHost, budget_s: float = 10) -> HostFacts:
    """Poll until the host answers again (its endpoints come up after the boot)."""
    deadline = Deadline.after(budget_s, f"{host.name} reachable")
    delays = FAST_POLL.delays()
    while True:
        try:
            host.shell.reconnect(timeout_s=max(0.1, deadline.remaining()))  # type: ignore[call-arg]
            return host.host_facts(deadline=deadline)
        except InfrastructureError:
            if deadline.expired:
                raise
        pause(deadline, next(delays), time.sleep)


# -- F2: BitLocker and test signing ---------------------------------------------------------------
def test_test_signing_change_suspends_bitlocker_for_one_reboot(
    tb01: WindowsHost, runtime: VirtualLabRuntime
) -> None:
    state = readiness.bitlocker_state(tb01)
    assert state.available and state.protected and "Tpm" in state.key_protectors
    run = tb01.set_test_signing(True)
    assert run.exit_code == 0 and run.bitlocker_suspended
    assert readiness.bitlocker_state(tb01).protection_status == "Off"  # suspended
    assert runtime.dut_truth("tb-01")["bitlocker"]["suspended_reboots"] == 1
    facts = _reboot(tb01)  # no recovery screen: the boot reseals and protection resumes
    assert facts.test_signing_in_effect is True
    truth = runtime.dut_truth("tb-01")["bitlocker"]
    assert truth["protection_on"] and truth["recoveries"] == 0
    assert readiness.bitlocker_state(tb01).protected  # resumed by the restart
    back = tb01.set_test_signing(False)
    assert back.bitlocker_suspended
    facts = _reboot(tb01)
    assert facts.test_signing_in_effect is False
    assert runtime.dut_truth("tb-01")["bitlocker"]["recoveries"] == 0


def test_unsuspended_bcd_change_stops_at_recovery_until_the_key_is_typed(
    tb01: WindowsHost, runtime: VirtualLabRuntime
) -> None:
    # What the harness did before: bcdedit alone (no Suspend-BitLocker).
    changed = tb01.run_command("bcdedit /set testsigning on")
    assert changed.exit_code == 0
    tb01.reboot_request("recovery test")
    _wait_power(runtime, "tb-01", "hung")
    assert runtime.dut_truth("tb-01")["bitlocker"]["in_recovery"]
    with pytest.raises(Exception):  # noqa: B017 - unreachable: any transport failure
        tb01.host_facts(timeout_s=1)
    _control(runtime).enter_recovery_key("tb-01")
    _wait_power(runtime, "tb-01", "on")
    assert _reachable_again(tb01).test_signing_in_effect is True
    assert tb01.set_test_signing(False).bitlocker_suspended
    _reboot(tb01)


# -- F12a/c: the Lenovo firmware change ------------------------------------------------------------
def test_lenovo_firmware_change_suspends_bitlocker_and_saves_without_argument(
    tb01: WindowsHost, runtime: VirtualLabRuntime
) -> None:
    recoveries = runtime.dut_truth("tb-01")["bitlocker"]["recoveries"]
    change = tb01.kdp_firmware_set("lenovo-wmi", False)
    assert change.return_value == "Success" and change.changed
    assert change.attribute == "KernelDMAProtection" and change.bitlocker_suspended
    facts = _reboot(tb01)
    assert facts.kdp.enabled is False
    assert runtime.dut_truth("tb-01")["bitlocker"]["recoveries"] == recoveries
    assert tb01.kdp_firmware_set("lenovo-wmi", True).changed
    _reboot(tb01)
    assert runtime.dut_truth("tb-01")["bitlocker"]["recoveries"] == recoveries


# -- F11: a vetoing application --------------------------------------------------------------------
def test_restart_is_forced_past_an_application_that_vetoes_it(
    m201: WindowsHost, runtime: VirtualLabRuntime
) -> None:
    assert runtime.dut_truth("m2-01")["session"] == "unlocked"
    before = runtime.dut_truth("m2-01")["boots"]
    _reboot(m201)
    assert runtime.dut_truth("m2-01")["boots"] == before + 1


# -- F24: autologon and the LSA secret -------------------------------------------------------------
def test_autologon_replaces_a_stale_lsa_secret(
    tb01: WindowsHost, runtime: VirtualLabRuntime, connector: LabConnector
) -> None:
    user, password = connector.credentials("tb-01")
    assert tb01.set_autologon(True, user=user, password=password)
    registry = runtime.dut_truth("tb-01")["registry"]
    winlogon = registry["HKLM\\SOFTWARE\\Microsoft\\Windows NT\\CurrentVersion\\Winlogon"]
    assert "DefaultPassword" not in winlogon  # no plaintext copy beside the secret
    tb01.sign_out()
    _wait_session(runtime, "tb-01", "no-user")
    _reboot(tb01)
    _wait_session(runtime, "tb-01", "unlocked")  # signed in with the new password


def _wait_session(runtime: VirtualLabRuntime, dut: str, want: str, budget_s: float = 10) -> None:
    deadline = Deadline.after(budget_s, f"{dut} session {want}")
    delays = FAST_POLL.delays()
    while runtime.dut_truth(dut)["session"] != want:
        deadline.check()
        pause(deadline, next(delays), time.sleep)


# -- F12b: Dell's attribute name ------------------------------------------------------------------
def test_dell_attribute_name_is_read_at_runtime(m201: WindowsHost) -> None:
    got = m201.kdp_firmware_get("dell-wmi")
    assert got.enabled is True and "DmaProtection" in got.settings
    change = m201.kdp_firmware_set("dell-wmi", False)
    assert change.return_value == "Success" and change.attribute == "DmaProtection"
    assert m201.kdp_firmware_get("dell-wmi").enabled is False
    assert m201.kdp_firmware_set("dell-wmi", True).changed


# -- F15: elevation --------------------------------------------------------------------------------
def test_non_elevated_dut_is_refused_before_any_change(
    m201: WindowsHost, lab: Lab, runtime: VirtualLabRuntime
) -> None:
    state = readiness.token_state(m201)
    assert state.elevated is False and state.local_account_token_filter_policy is None
    strategy = DutStrategy(m201, "m2-01", lab.duts["m2-01"], reboot_s=15, step_s=10)
    wanted = BootState(OnOff.ON, DmaGuardPolicy.BLOCK_ALL, OnOff.OFF)
    before = runtime.dut_truth("m2-01")["dmaguard"]["pending"]
    with pytest.raises(DutError, match="LocalAccountTokenFilterPolicy"):
        strategy.bring_to(wanted, Deadline.after(20, "bring m2-01"))
    assert runtime.dut_truth("m2-01")["dmaguard"]["pending"] == before
