"""`harness lab restore LAB`: every DUT of a lab back to its baseline, with the drift found.

After a run that could not finish its teardown (SIGKILL, the OOM killer, a power cut of the
controller), its DUTs are where it left them: a test driver installed, DMAGuard 1, Verifier on,
the session locked. This puts each DUT back to the lab file's `baseline:` with the end-of-run
teardown's own steps (`harness.lab.baseline.restore_baseline`: unplug every port, unlock,
uninstall, restore the boot settings with one reboot at most, read back), and also removes the
lab's driver packages found in the driver store, which no process of this run installed.

Per DUT, first under the DUT's lease (a DUT a run holds now is left alone and reported busy):

1. the survey: what is not at the baseline (settings in effect or at the next boot, the lab's
   driver packages in the store, a session that is not unlocked, Winlogon autologon left on
   for a DUT unlocked by `autologon-reboot`): the drift reported;
2. the teardown's steps, then the post-check: restored, or not with the reason.

>>> results = restore_lab(lab, LabConnector(lab, endpoints), Timeouts())  # doctest: +SKIP
>>> [(r.dut, r.found, r.restored) for r in results]                         # doctest: +SKIP
[('tb-01', ('dmaguard: 1 at the next boot, baseline None', ...), True)]
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from harness.config.lab import Lab
from harness.config.plan import Timeouts
from harness.domain.conditions import SessionState
from harness.errors import HarnessError
from harness.lab.baseline import BaselineCheck, drift, lab_packages_installed, restore_baseline
from harness.lab.boot_state import BootState
from harness.lab.connect import LabConnector
from harness.lab.kit import DutKit, open_kit
from harness.lab.lease import DutLease, LeaseRefused
from harness.remote.deadline import Deadline

__all__ = ["DutRestore", "restore_lab"]


@dataclass(frozen=True)
class DutRestore:
    """One DUT: the drift found before, and the teardown's check after (or why none ran)."""

    dut: str
    found: tuple[str, ...] = ()
    check: BaselineCheck | None = None
    error: str | None = None  # busy (leased), unreachable: nothing was restored

    @property
    def restored(self) -> bool:
        return self.error is None and self.check is not None and self.check.ok

    def lines(self) -> list[str]:
        head = f"{self.dut}: " + (
            "restored" if self.restored else "NOT restored" if self.found else "not checked"
        )
        if self.restored and not self.found:
            head = f"{self.dut}: at baseline (nothing to restore)"
        out = [head]
        out += [f"  found: {f}" for f in self.found]
        if self.error is not None:
            out.append(f"  error: {self.error}")
        elif self.check is not None:
            out += [f"  done: uninstalled {n}" for n in self.check.uninstalled]
            if self.check.rebooted:
                out.append("  done: rebooted once")
            out += [f"  note: {n}" for n in self.check.notes]
            if not self.check.ok:
                out.append(f"  after: {self.check.summary()}")
        return out


def _survey(kit: DutKit, stray: dict[str, str], deadline: Deadline) -> list[str]:
    """What is not at the baseline now (read only)."""
    drivers = [d for p in stray.values() for d in _package_drivers(kit, p)]
    required = BootState.from_baseline(kit.config.baseline, drivers)
    found = [f"driver package {p} installed as {n}" for n, p in stray.items()]
    state = kit.strategy.observe(deadline)
    found += drift(state, required)
    session = kit.session.state(deadline.child(kit.strategy.step_s, "session state"))
    if session is not SessionState.UNLOCKED:
        found.append(f"session {session.value}, baseline unlocked")
    if kit.config.session_control.unlock == "autologon-reboot":
        # a run killed after an unlock by autologon leaves the DUT signing itself in at each boot
        logon = kit.host.autologon_state(deadline=deadline.child(kit.strategy.step_s, "autologon"))
        if logon.enabled:
            line = f"autologon on for {logon.user or 'no user named'} (baseline off)"
            if logon.password_in_registry:
                line += " and its password in the registry in plain text"
            found.append(line)
    return found


def _package_drivers(kit: DutKit, package: str) -> tuple[str, ...]:
    try:
        info = kit.lab.read_package(package)
    except HarnessError:
        return ()
    return tuple(sorted({s.binary or s.name for m in info.models for s in m.services}))


def restore_dut(
    lab: Lab,
    connector: LabConnector,
    name: str,
    timeouts: Timeouts,
    *,
    open_dut: Callable[..., DutKit] = open_kit,
) -> DutRestore:
    """Survey and restore DUT `name` under its lease; never raises a HarnessError."""
    address = lab.duts[name].address
    endpoints = connector.endpoints
    if lab.is_virtual(name) and endpoints is not None:
        address = endpoints.duts[name].control_url  # the lease key a run of this lab uses
    try:
        lease = DutLease.acquire(name, address, run_id=f"lab-restore-{os.getpid()}")
    except LeaseRefused as exc:
        return DutRestore(name, error=f"busy, left alone: {exc}")
    except HarnessError as exc:
        return DutRestore(name, error=f"lease: {exc}")
    try:
        try:
            kit = open_dut(lab, connector, name, timeouts)
        except HarnessError as exc:
            return DutRestore(name, error=f"cannot connect: {exc}")
        deadline = Deadline.after(timeouts.teardown_s + 2 * timeouts.step_s, f"{name} restore")
        try:
            stray = lab_packages_installed(kit, deadline)
            found = tuple(_survey(kit, stray, deadline))
        except HarnessError as exc:
            kit.close(deadline)
            return DutRestore(name, error=f"cannot read its state: {exc}")
        check = restore_baseline(kit, deadline, stray=tuple(stray))
        kit.close(deadline)
        return DutRestore(name, found=found, check=check)
    finally:
        lease.release()


def restore_lab(
    lab: Lab,
    connector: LabConnector,
    timeouts: Timeouts,
    duts: Sequence[str] | None = None,
) -> list[DutRestore]:
    """Every DUT of `lab` (or of `duts`) at once, each under its lease; in the lab's order."""
    names = list(duts or lab.duts)
    with ThreadPoolExecutor(max_workers=max(1, min(8, len(names)))) as pool:
        return list(pool.map(lambda n: restore_dut(lab, connector, n, timeouts), names))
