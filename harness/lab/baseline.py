"""Teardown to the lab's declared baseline, and the post-check that reads it back.

At the end of a run, also after Ctrl-C, SIGTERM or a failed scenario, every DUT the run opened
goes back to its `baseline:` (lab file):

1. every port of the DUT unplugged and the session unlocked (a scenario may have died midway);
   with `unlock: autologon-reboot`, Winlogon autologon turned off again and its LSA secret
   DefaultPassword deleted (`autologon_set` with enabled false);
2. the packages the run installed removed (`pnputil /delete-driver /uninstall`);
3. KDP, DMAGuard, Verifier and test signing restored by the DUT strategy: all changes written,
   then one reboot at most;
4. the post-check: the DUT is observed afresh (nothing carried over from the run) and every
   setting whose in-effect or next-boot value is not the baseline's is reported as drift.

Each step is bounded by the deadline given and runs even when an earlier one failed; after an
infrastructure error it is retried once, once the DUT answers again (a bounded wait), and the
DUT's boot time is compared with the last one known: a reboot on its own puts the crash evidence
in `BaselineCheck.crash`. A DUT that does not answer is unreachable (its remaining steps are
skipped). The result (`BaselineCheck`) says what was done, what failed and what drifted, per
DUT; a DUT not at its baseline (or that crashed) is marked quarantined with the reason, so that
every DUT ends at its baseline or quarantined, never neither (docs/reliability.md).

>>> check = restore_baseline(kit, Deadline.after(900, "tb-01 baseline"))  # doctest: +SKIP
>>> check.ok, check.drift                                                # doctest: +SKIP
(True, ())
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

from harness.errors import DutError, HarnessError, InfrastructureError
from harness.lab.boot_state import BootState
from harness.lab.flow import crash_report, crashed, wait_for_answer
from harness.lab.state import DutState, Setting
from harness.lab.strategy import unmet
from harness.remote.deadline import Deadline
from harness.windows.actions import DutCrashed, reconnect
from harness.windows.results import CrashEvidence

if TYPE_CHECKING:
    from harness.lab.kit import DutKit

__all__ = ["BaselineCheck", "drift", "lab_packages_installed", "restore_baseline"]
_T = TypeVar("_T")


@dataclass(frozen=True)
class BaselineCheck:
    """One DUT after teardown: the problems met on the way and the drift found after."""

    dut: str
    baseline: str
    rebooted: bool = False
    problems: tuple[str, ...] = ()
    drift: tuple[str, ...] = ()
    checked: bool = False  # the post-check could read the DUT
    quarantined: str | None = None
    uninstalled: tuple[str, ...] = field(default=())
    crash: str | None = None  # crash evidence of a reboot on its own during teardown
    notes: tuple[str, ...] = ()  # retries and clean reboots met on the way

    @property
    def ok(self) -> bool:
        return self.checked and not self.problems and not self.drift

    def to_json(self) -> dict[str, Any]:
        return {
            "dut": self.dut,
            "ok": self.ok,
            "baseline": self.baseline,
            "checked": self.checked,
            "rebooted": self.rebooted,
            "drift": list(self.drift),
            "problems": list(self.problems),
            "quarantined": self.quarantined,
            "uninstalled": list(self.uninstalled),
            "crash": self.crash,
            "notes": list(self.notes),
        }

    def summary(self) -> str:
        q = f"; quarantined: {self.quarantined}" if self.quarantined else ""
        if self.ok:
            crash = " after a crash during teardown" if self.crash else ""
            return f"{self.dut}: at baseline ({self.baseline}){crash}{q}"
        parts = [*(f"drift: {d}" for d in self.drift), *self.problems]
        if not self.checked:
            parts.append("not read back")
        return f"{self.dut}: NOT at baseline: " + "; ".join(parts) + q


def _pending_drift(state: DutState, required: BootState) -> list[str]:
    """Settings whose next-boot value differs from the baseline's (they would come back)."""
    out = []
    for name, want in (("kdp", bool(required.kdp)), ("test_signing", bool(required.test_signing))):
        setting: Setting[Any] = getattr(state, name)
        if setting.pending is not None and setting.pending != want:  # None: not readable
            out.append(f"{name}: {setting.pending!r} at the next boot, baseline {want!r}")
    if state.dmaguard.pending != required.dmaguard_registry:  # None: the value is absent
        out.append(
            f"dmaguard: {state.dmaguard.pending!r} at the next boot, "
            f"baseline {required.dmaguard_registry!r}"
        )
    v = state.verifier.pending
    if not required.verifier_dma and (v.flags or v.drivers):
        out.append(f"verifier: flags {v.flags!r} on {', '.join(v.drivers) or '-'} at the next boot")
    return out


def drift(state: DutState, required: BootState) -> list[str]:
    """What in `state` is not the baseline `required`: in effect now, or at the next boot."""
    return [*unmet(state, required), *_pending_drift(state, required)]


class _Teardown:
    """The steps of `restore_baseline` on one DUT: each step bounded and retried once after an
    infrastructure error, once the DUT answers again (a bounded wait); the boot time is then
    compared with the last one known, and the crash evidence of a reboot on its own kept. A DUT
    that does not answer is unreachable: its remaining steps are skipped."""

    def __init__(self, kit: DutKit, deadline: Deadline) -> None:
        self.kit = kit
        self.deadline = deadline
        self.problems: list[str] = []
        self.notes: list[str] = []
        self.crash: str | None = None
        self.unreachable: str | None = None
        self.boot: datetime | None = kit.strategy.last_boot_utc
        self._dut_error = False

    def attempt(self, what: str, action: Callable[[], _T], *, dut: bool = True) -> _T | None:
        """`action()`; after an InfrastructureError, one retry once the DUT answers again. A
        step on the DUT is skipped once the DUT is known unreachable."""
        if dut and self.unreachable is not None:
            self.problems.append(f"{what}: skipped, {self.kit.name} is unreachable")
            return None
        try:
            return action()
        except InfrastructureError as exc:
            first = exc
        except DutCrashed as exc:  # in the teardown's own reboot
            self._crashed(exc.evidence, f"{what}: {exc}")
            self.problems.append(f"{what}: {exc}")
            return None
        except HarnessError as exc:
            self.problems.append(f"{what}: {exc}")
            self._dut_error = self._dut_error or isinstance(exc, DutError)
            return None
        except Exception as exc:  # a bug below us must not cost the other steps and DUTs
            self.problems.append(f"{what}: harness bug: {type(exc).__name__}: {exc}")
            return None
        if dut and not self._wait_back(what, first):
            self.problems.append(f"{what}: {first}")
            return None
        self.notes.append(f"{what}: retried once after: {first}")
        try:
            return action()
        except DutCrashed as exc:
            self._crashed(exc.evidence, f"{what}: {exc}")
            self.problems.append(f"{what} (retry): {exc}")
        except Exception as exc:
            self.problems.append(f"{what}: {first}; retry: {type(exc).__name__}: {exc}")
        return None

    def _wait_back(self, what: str, lost: InfrastructureError) -> bool:
        """Wait (bounded, once per teardown) until the DUT answers; compare its boot time with
        the last known one and keep the crash evidence if it rebooted on its own. False if it
        does not answer (it is then unreachable for the rest of the teardown)."""
        kit, host = self.kit, self.kit.host
        # after a DutError (e.g. no return from the restore reboot) the DUT had its reboot wait
        # already: one bounded reconnect, not a second reboot deadline
        budget = kit.strategy.step_s if self._dut_error else kit.strategy.reboot_s
        budget = min(budget, max(0.1, self.deadline.remaining()))
        wait = self.deadline.child(budget, f"{kit.name} to answer again during teardown")
        try:
            if self._dut_error:
                reconnect(host, wait)
                facts = host.host_facts(deadline=wait)
            else:
                facts = wait_for_answer(host, wait, lost)
        except Exception as exc:  # DutError: it did not come back; anything else: no answer
            self.unreachable = f"{what}: {exc}"
            return False
        if self.boot is not None and facts.last_boot_utc > self.boot:
            try:
                evidence = host.crash_evidence(host.unseen_since(self.boot), deadline=wait)
            except HarnessError as exc:
                self.problems.append(f"{what}: rebooted on its own; crash evidence unread: {exc}")
            else:
                if crashed(evidence):
                    self._crashed(evidence, f"rebooted on its own during teardown ({what})")
                else:
                    self.notes.append(f"{what}: rebooted (clean shutdown) during teardown")
        self.boot = facts.last_boot_utc
        kit.strategy.forget()  # whatever it saw may be gone with the reboot
        return True

    def _crashed(self, evidence: CrashEvidence, what: str) -> None:
        first = evidence.bugchecks[0].describe() if evidence.bugchecks else "no bugcheck recorded"
        text = f"{what}: {first}\n{crash_report(evidence)}"
        self.crash = text if self.crash is None else f"{self.crash}\n\n{text}"


def restore_baseline(
    kit: DutKit,
    deadline: Deadline,
    *,
    quarantined: str | None = None,
    stray: tuple[str, ...] = (),
) -> BaselineCheck:
    """Steps 1-4 of the module doc on one DUT, within `deadline`; never raises a HarnessError.

    `stray`: published names (oemN.inf) of the lab's driver packages found in the DUT's
    driver store that this process did not install (`harness lab restore` after a killed
    run): uninstalled too, and the post-check reads the driver store for them.

    A DUT that is not at its baseline afterwards (it crashed, could not be reached, did not
    come back, or drifted) is marked quarantined with the reason: never neither."""
    td = _Teardown(kit, deadline)
    # a DUT quarantined during the run (e.g. it did not come back) had its full wait already:
    # one bounded reconnect here, not a second reboot deadline
    td._dut_error = quarantined is not None
    step = kit.strategy.step_s
    for port_name, port in kit.config.ports.items():

        def unplug(port: Any = port) -> None:
            kit.switch(port.switch).disconnect(port.channel)

        td.attempt(f"unplug {port_name}", unplug, dut=False)
    if td.boot is None:  # the strategy knows nothing: the boot time to compare with, now
        td.boot = td.attempt(
            "boot time",
            lambda: kit.host.host_facts(deadline=deadline.child(step, "boot time")).last_boot_utc,
        )
    td.attempt("unlock", lambda: kit.session.unlock(deadline.child(step, "unlock")))
    if kit.config.session_control.unlock == "autologon-reboot":
        # the sign-in by autologon left AutoAdminLogon on and the password as the LSA secret
        # DefaultPassword: every later boot would sign in by itself, the password kept on the DUT

        def autologon_off() -> None:
            if kit.host.set_autologon(False, deadline=deadline.child(step, "autologon off")):
                raise InfrastructureError(f"{kit.name}: autologon_set did not turn autologon off")

        td.attempt("autologon off", autologon_off)
    installed = [p.published_name for p in kit.packages.installer.installed.values()]
    td.attempt("uninstall", lambda: kit.packages.remove_all(deadline.child(step, "uninstall")))
    uninstalled = tuple(
        n
        for n in installed
        if n not in {p.published_name for p in kit.packages.installer.installed.values()}
    )
    for name in stray:

        def remove(name: str = name) -> None:
            kit.host.uninstall_driver(name, deadline=deadline.child(step, f"uninstall {name}"))

        td.attempt(f"uninstall {name}", remove)
    required = BootState.from_baseline(kit.config.baseline, kit.packages.drivers())
    transition = td.attempt("restore", lambda: kit.strategy.bring_to(required, deadline))
    kit.strategy.forget()  # the post-check believes nothing from the run
    state = td.attempt("post-check", lambda: kit.strategy.observe(deadline))
    if state is not None and td.boot is not None and state.last_boot_utc > td.boot:
        ours = transition.after.last_boot_utc if transition and transition.rebooted else None
        if ours is None or state.last_boot_utc > ours:
            td.attempt("crash check", lambda: _check_crash(td, kit, deadline))
    found = tuple(drift(state, required)) if state is not None else ()
    if stray:
        store = td.attempt(
            "driver store", lambda: kit.host.list_drivers(deadline=deadline.child(step, "store"))
        )
        if store is not None:
            left = {d.published_name.lower() for d in store}
            found += tuple(f"driver store: {n} still installed" for n in stray if n.lower() in left)
            uninstalled += tuple(n for n in stray if n.lower() not in left)
    check = BaselineCheck(
        dut=kit.name,
        baseline=required.describe(),
        rebooted=bool(transition is not None and transition.rebooted),
        problems=tuple(td.problems),
        drift=found,
        checked=state is not None,
        quarantined=quarantined,
        uninstalled=uninstalled,
        crash=td.crash,
        notes=tuple(td.notes),
    )
    if quarantined is None and (not check.ok or td.crash is not None):
        check = replace(check, quarantined=_reason(check, td))
    return check


def _check_crash(td: _Teardown, kit: DutKit, deadline: Deadline) -> None:
    """The post-check saw a boot later than any the teardown knew: look for crash evidence."""
    assert td.boot is not None
    host = kit.host
    evidence = host.crash_evidence(host.unseen_since(td.boot), deadline=deadline)
    if crashed(evidence):
        td._crashed(evidence, "rebooted on its own during teardown")


def _reason(check: BaselineCheck, td: _Teardown) -> str:
    if td.crash is not None:
        return "teardown: crashed: " + td.crash.splitlines()[0]
    if td.unreachable is not None:
        return f"teardown: unreachable: {td.unreachable}"
    parts = [*(f"drift: {d}" for d in check.drift), *check.problems]
    if not check.checked:
        parts.append("not read back")
    return "teardown: not at baseline: " + "; ".join(parts)


def lab_packages_installed(kit: DutKit, deadline: Deadline) -> dict[str, str]:
    """The lab's driver packages in the DUT's driver store, whoever installed them: published
    name (oemN.inf) -> the lab's package name, matched by the INF's original file name."""
    by_inf = {
        kit.lab.resolve_path(pkg.path).name.lower(): name
        for name, pkg in kit.lab.driver_packages.items()
    }
    store = kit.host.list_drivers(deadline=deadline.child(kit.strategy.step_s, "driver store"))
    return {
        d.published_name: by_inf[d.original_name.lower()]
        for d in store
        if d.original_name.lower() in by_inf
    }
