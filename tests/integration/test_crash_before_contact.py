"""A DUT that bugchecked before the run: Windows logs Kernel-Power 41 at the boot that followed
and WER's event 1001 some seconds later, both after the boot the harness first sees. The harness
reads that evidence once at first contact and does not take it for a crash of its own first
reboot (which would quarantine a healthy DUT as crashed)."""

from __future__ import annotations

import pytest

from harness.config.lab import Lab
from harness.config.lab_models import VirtualFault
from harness.domain.conditions import DmaGuardPolicy
from harness.errors import InfrastructureError
from harness.lab.boot_state import BootState
from harness.lab.connect import LabConnector
from harness.lab.strategy import DutStrategy
from harness.remote.deadline import Deadline
from harness.virtual_lab.runtime import VirtualLabRuntime
from harness.windows.host import WindowsHost
from harness.windows.ops import OperationCatalog
from tests.integration.reboots import wait_back

pytestmark = pytest.mark.integration


def test_a_bugcheck_from_before_the_run_is_not_blamed_on_the_first_reboot(
    connector: LabConnector, lab: Lab, runtime: VirtualLabRuntime
) -> None:
    # Before the run: tb-01 bugchecks (its own business) and restarts.
    shell = connector.shell("tb-01")
    try:
        before = WindowsHost(shell, name="tb-01", catalog=OperationCatalog(), default_timeout_s=20)
        old = before.host_facts().last_boot_utc
        runtime.add_fault(
            VirtualFault(kind="bugcheck", dut="tb-01", operation="pnp_devices", count=1)
        )
        with pytest.raises(InfrastructureError):
            before.pnp_devices("PCI\\VEN_8086*", timeout_s=5)
        wait_back(before, old, Deadline.after(20, "tb-01 back after its crash"))
    finally:
        shell.close()

    # The run: a fresh host and strategy; the scenario needs DMAGuard 1, hence one reboot.
    with connector.shell("tb-01") as run_shell:
        host = WindowsHost(
            run_shell, name="tb-01", catalog=OperationCatalog(), default_timeout_s=20
        )
        dut = lab.duts["tb-01"]
        strategy = DutStrategy(host, "tb-01", dut, reboot_s=30, step_s=20)
        base = BootState.from_baseline(dut.baseline)
        wanted = BootState(base.kdp, DmaGuardPolicy.AFTER_LOGIN, base.verifier_dma)
        t = strategy.bring_to(wanted, Deadline.after(180, "DMAGuard 1"))
        assert t.rebooted
        evidence = strategy.crash_before_contact
        assert evidence is not None and evidence.crashed  # seen, and kept as the DUT's history
        assert evidence.bugchecks and evidence.bugchecks[0].stop_code == 0xE6
        back = strategy.bring_to(base, Deadline.after(180, "baseline"))
        assert back.rebooted
    assert runtime.truth()["duts"]["tb-01"]["dmaguard"]["at_boot"] is None  # back at baseline
