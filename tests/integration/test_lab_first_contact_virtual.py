"""First contact with a DUT through the virtual lab's real WinRM endpoint: no reboot when the DUT
already is in the required state, one when a value was written since its boot.

`host_facts` reports test signing in effect (code integrity) and when the DMAGuard policy key was
last written against the boot time, so the strategy observes both instead of rebooting "to make
them known". A fresh `DutStrategy` per test is a first contact. tb-01 runs here with Secure Boot
off so that test signing can be turned on.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.config.lab import Lab, load_lab
from harness.domain.conditions import OnOff
from harness.lab.boot_state import BootState
from harness.lab.connect import LabConnector
from harness.lab.state import Knowledge
from harness.lab.strategy import ChangeKind, DutStrategy, Transition
from harness.remote.deadline import Deadline
from harness.virtual_lab.runtime import VirtualLabRuntime
from harness.windows.host import WindowsHost
from harness.windows.ops import OperationCatalog

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
REBOOT_S, STEP_S = 30.0, 20.0


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Lab:
    """The default virtual lab, tb-01 with Secure Boot off (test signing can be turned on)."""
    text = (ROOT / "lab_config" / "virtual.yaml").read_text()
    text = text.replace("packages/", f"{ROOT / 'lab_config' / 'packages'}/")
    old = "      firmware: lenovo-wmi\n      secure_boot: true\n"
    assert text.count(old) == 1
    text = text.replace(old, "      firmware: lenovo-wmi\n      secure_boot: false\n")
    path = tmp_path_factory.mktemp("lab") / "lab.yaml"
    path.write_text(text)
    return load_lab(path)


@pytest.fixture
def tb01(connector: LabConnector) -> Iterator[WindowsHost]:
    shell = connector.shell("tb-01")
    try:
        yield WindowsHost(shell, name="tb-01", catalog=OperationCatalog(), default_timeout_s=20)
    finally:
        shell.close()


def _reboots(runtime: VirtualLabRuntime) -> int:
    return sum(1 for o in runtime.operations("tb-01") if o["operation"] == "reboot_request")


def _bring(host: WindowsHost, lab: Lab, required: BootState, what: str) -> Transition:
    """A first contact: a new strategy (nothing seen before) brings tb-01 to `required`."""
    strategy = DutStrategy(host, "tb-01", lab.duts["tb-01"], reboot_s=REBOOT_S, step_s=STEP_S)
    return strategy.bring_to(required, Deadline.after(120, what))


def test_a_fresh_dut_at_its_baseline_is_not_rebooted(
    tb01: WindowsHost, lab: Lab, runtime: VirtualLabRuntime
) -> None:
    facts = tb01.host_facts()
    assert facts.test_signing_in_effect is False and facts.code_integrity_options == 0x01
    written = facts.dmaguard_policy_written
    assert written is not None and written.before_boot
    assert written.key.endswith(r"\Policies\Microsoft\Windows")  # the policy key is absent
    reboots = _reboots(runtime)
    t = _bring(tb01, lab, BootState.from_baseline(lab.duts["tb-01"].baseline), "baseline")
    assert not t.rebooted and t.changes == () and t.reboot_reasons == ()
    assert t.before.dmaguard.known is Knowledge.OBSERVED
    assert t.before.test_signing.known is Knowledge.OBSERVED
    assert _reboots(runtime) == reboots


def test_a_dmaguard_policy_written_since_the_boot_costs_one_reboot(
    tb01: WindowsHost, lab: Lab, runtime: VirtualLabRuntime
) -> None:
    baseline = BootState.from_baseline(lab.duts["tb-01"].baseline)
    tb01.dmaguard_set(1)  # someone wrote the policy and took it back: same value, new key time
    tb01.dmaguard_set(None)
    written = tb01.host_facts().dmaguard_policy_written
    assert written is not None and not written.before_boot
    assert written.key.endswith("Kernel DMA Protection")
    reboots = _reboots(runtime)
    t = _bring(tb01, lab, baseline, "baseline after a DMAGuard write")
    assert t.rebooted and t.changes == () and _reboots(runtime) == reboots + 1
    assert any("DMAGuard policy absent is pending, not known" in r for r in t.reboot_reasons)
    assert t.after.dmaguard.known is Knowledge.OBSERVED and t.after.dmaguard.active is None
    assert runtime.dut_truth("tb-01")["dmaguard"]["at_boot"] is None
    again = _bring(tb01, lab, baseline, "baseline, next first contact")
    assert not again.rebooted and _reboots(runtime) == reboots + 1


def test_test_signing_pending_but_not_in_effect(
    tb01: WindowsHost, lab: Lab, runtime: VirtualLabRuntime
) -> None:
    baseline = BootState.from_baseline(lab.duts["tb-01"].baseline)
    signing = BootState(baseline.kdp, baseline.dmaguard, baseline.verifier_dma, (), OnOff.ON)
    assert tb01.set_test_signing(True).exit_code == 0  # in the BCD store, not yet in effect
    facts = tb01.host_facts()
    assert facts.test_signing is True and facts.test_signing_in_effect is False
    reboots = _reboots(runtime)

    # off is in effect: a first contact for the baseline resets the store, no reboot
    t = _bring(tb01, lab, baseline, "baseline with test signing pending")
    assert not t.rebooted and [c.kind for c in t.changes] == [ChangeKind.TEST_SIGNING]
    assert not t.changes[0].needs_reboot and tb01.host_facts().test_signing is False

    # on is wanted and pending, not in effect: one reboot, nothing to write
    assert tb01.set_test_signing(True).exit_code == 0
    t = _bring(tb01, lab, signing, "test signing on")
    assert t.rebooted and t.changes == () and _reboots(runtime) == reboots + 1
    assert any("test signing on is pending, not yet in effect" in r for r in t.reboot_reasons)
    assert t.after.test_signing.known is Knowledge.OBSERVED and t.after.test_signing.active
    assert runtime.dut_truth("tb-01")["test_signing"] == {"pending": True, "active": True}
    assert tb01.host_facts().code_integrity_options == 0x03

    # back to the baseline: write off, one reboot; a new first contact then needs nothing
    t = _bring(tb01, lab, baseline, "baseline again")
    assert t.rebooted and [c.kind for c in t.changes] == [ChangeKind.TEST_SIGNING]
    assert _reboots(runtime) == reboots + 2
    assert not _bring(tb01, lab, baseline, "at baseline").rebooted
    assert _reboots(runtime) == reboots + 2
