"""The DUT strategy: bring one DUT to a scenario's conditions with the fewest changes.

Step 1 of "the flow of one scenario" (DESIGN.md): observe the DUT (`harness.lab.state`), plan
(`plan_changes`, pure), apply every change through the `WindowsHost` API, then at most ONE
`reboot_and_wait` (which raises `DutCrashed` on crash evidence), then observe again and check
that the required conditions are in effect (`DutError` naming each one that is not).

Every setting applies only at the next boot, so for each one:

- required value in effect and pending: nothing to do;
- in effect, but a different value pending: reset the pending value (no reboot needed);
- pending but not (known to be) in effect: nothing to set, but a reboot is needed;
- neither: set it, and reboot.

>>> strategy = DutStrategy(host, "tb-01", lab.duts["tb-01"], reboot_s=600, step_s=60)  # doctest: +SKIP
>>> strategy.bring_to(BootState.from_scenario(s, ["dmalab_nvme.sys"]), deadline).rebooted  # doctest: +SKIP
True
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from harness.config.lab_models import Dut
from harness.domain.conditions import OnOff
from harness.errors import ConfigError, DutError
from harness.lab.boot_state import BootState, normalize_driver
from harness.lab.state import DMA_VERIFICATION, DutState, Setting, combine, observe
from harness.remote.deadline import Deadline
from harness.windows import readiness
from harness.windows.actions import RebootReport, reboot_and_wait
from harness.windows.host import CRASH_REPORT_WAIT_S
from harness.windows.results import CrashEvidence, HostFacts, VerifierSettings

if TYPE_CHECKING:
    from harness.windows.host import WindowsHost

log = logging.getLogger(__name__)

__all__ = [
    "Change",
    "ChangeKind",
    "DutStrategy",
    "Target",
    "Transition",
    "check_reachable",
    "needs_reboot",
    "plan_changes",
    "reboot_reasons",
    "unmet",
]

Target = bool | int | VerifierSettings | None


class ChangeKind(str, enum.Enum):
    KDP_FIRMWARE = "kdp_firmware"
    DMAGUARD = "dmaguard"
    VERIFIER = "verifier"
    TEST_SIGNING = "test_signing"


@dataclass(frozen=True)
class Change:
    """One setting to write. `target`: bool (KDP, test signing), int/None (DMAGuard policy,
    None deletes the value), `VerifierSettings` (flags None and no drivers: `verifier /reset`)."""

    kind: ChangeKind
    description: str
    needs_reboot: bool
    target: Target


# -- what satisfies a requirement ----------------------------------------------------------------
def _verifier_ok(v: VerifierSettings, required: BootState) -> bool:
    dma = bool((v.flags or 0) & DMA_VERIFICATION)
    targets = {normalize_driver(d) for d in v.drivers}
    wanted = set(required.verifier_drivers)
    if required.verifier_dma is OnOff.ON:
        return dma and wanted <= targets
    return not (dma and (targets & wanted if wanted else targets))


def _checks(required: BootState) -> dict[ChangeKind, Callable[[Any], bool]]:
    return {
        ChangeKind.KDP_FIRMWARE: lambda v: v is not None and v == bool(required.kdp),
        ChangeKind.DMAGUARD: lambda v: v == required.dmaguard_registry,
        ChangeKind.VERIFIER: lambda v: _verifier_ok(v, required),
        ChangeKind.TEST_SIGNING: lambda v: v is not None and v == bool(required.test_signing),
    }


def _settings(state: DutState) -> dict[ChangeKind, Setting[Any]]:
    return {
        ChangeKind.KDP_FIRMWARE: state.kdp,
        ChangeKind.DMAGUARD: state.dmaguard,
        ChangeKind.VERIFIER: state.verifier,
        ChangeKind.TEST_SIGNING: state.test_signing,
    }


def _target(kind: ChangeKind, required: BootState) -> Target:
    if kind is ChangeKind.KDP_FIRMWARE:
        return bool(required.kdp)
    if kind is ChangeKind.DMAGUARD:
        return required.dmaguard_registry
    if kind is ChangeKind.VERIFIER:
        if required.verifier_dma is OnOff.ON:
            return VerifierSettings(DMA_VERIFICATION, required.verifier_drivers)
        return VerifierSettings(None, ())
    return bool(required.test_signing)


def _show(kind: ChangeKind, target: Target) -> str:
    if kind is ChangeKind.VERIFIER:
        assert isinstance(target, VerifierSettings)
        if target.flags is None:
            return "Verifier reset (no DMA verification)"
        return f"Verifier flags 0x{target.flags:x} on {', '.join(target.drivers)}"
    if kind is ChangeKind.DMAGUARD:
        return "DMAGuard policy " + ("absent" if target is None else str(target))
    word = "on" if target else "off"
    return (
        f"KDP firmware setting {word}"
        if kind is ChangeKind.KDP_FIRMWARE
        else f"test signing {word}"
    )


# -- the plan (pure) -----------------------------------------------------------------------------
def check_reachable(required: BootState, dut: Dut, dut_name: str) -> None:
    """`ConfigError` if `required` asks for a KDP value this DUT cannot reach."""
    if dut.kdp.firmware_control == "none" and required.kdp is not dut.kdp.declared:
        raise ConfigError(
            f"DUT {dut_name} cannot run with Kernel DMA Protection {required.kdp.value}: its "
            f"firmware has no scriptable lever (firmware_control none) and KDP is declared "
            f"{dut.kdp.declared.value}"
        )


def _plan(state: DutState, required: BootState, dut: Dut) -> tuple[list[Change], list[str]]:
    check_reachable(required, dut, state.dut)
    changes: list[Change] = []
    reasons: list[str] = []
    checks = _checks(required)
    for kind, setting in _settings(state).items():
        if kind is ChangeKind.KDP_FIRMWARE and not state.kdp_lever:
            continue  # declared value == required (checked above); a reboot cannot change it
        ok = checks[kind]
        active_ok = setting.active_known and ok(setting.active)
        pending_ok = ok(setting.pending)
        if active_ok and pending_ok:
            continue
        target = _target(kind, required)
        if active_ok:
            desc = f"reset the pending {kind.value} to what is in effect: {_show(kind, target)}"
            changes.append(Change(kind, desc, False, target))
            continue
        if pending_ok:
            why = "not known to be" if not setting.active_known else "not yet"
            reasons.append(f"{_show(kind, target)} is pending, {why} in effect")
            continue
        if (
            kind is ChangeKind.TEST_SIGNING
            and required.test_signing is OnOff.ON
            and state.secure_boot
        ):
            raise ConfigError(
                f"DUT {state.dut} has Secure Boot on: test signing cannot be turned on "
                "(bcdedit's testsigning is protected by Secure Boot policy)"
            )
        changes.append(Change(kind, _show(kind, target), True, target))
        reasons.append(f"{_show(kind, target)} applies at the next boot")
    return changes, reasons


def plan_changes(state: DutState, required: BootState, dut: Dut) -> list[Change]:
    """The smallest set of writes that makes `required` in effect after (at most) one reboot."""
    return _plan(state, required, dut)[0]


def reboot_reasons(state: DutState, required: BootState, dut: Dut) -> list[str]:
    """Why a reboot is needed (empty: none is)."""
    return _plan(state, required, dut)[1]


def needs_reboot(state: DutState, required: BootState, dut: Dut) -> bool:
    return bool(reboot_reasons(state, required, dut))


def unmet(state: DutState, required: BootState) -> list[str]:
    """The required settings not (known to be) in effect in `state`."""
    out = []
    checks = _checks(required)
    for kind, setting in _settings(state).items():
        if not (setting.active_known and checks[kind](setting.active)):
            want = _show(kind, _target(kind, required))
            out.append(f"{kind.value}: wanted {want}, found {setting.describe()}")
    return out


def _with_pending(state: DutState, change: Change) -> DutState:
    """`state` after `change` was written (it is pending until the next boot)."""
    t = change.target
    if change.kind is ChangeKind.VERIFIER:
        assert isinstance(t, VerifierSettings)
        return replace(state, verifier=replace(state.verifier, pending=t))
    assert not isinstance(t, VerifierSettings)
    if change.kind is ChangeKind.DMAGUARD:
        return replace(state, dmaguard=replace(state.dmaguard, pending=t))
    flag = None if t is None else bool(t)
    if change.kind is ChangeKind.KDP_FIRMWARE:
        return replace(state, kdp=replace(state.kdp, pending=flag))
    return replace(state, test_signing=replace(state.test_signing, pending=flag))


# -- applying it ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Transition:
    """What `bring_to` did: the writes, the reboot (if any), and the states around them."""

    required: BootState
    changes: tuple[Change, ...]
    reboot_reasons: tuple[str, ...]
    reboot: RebootReport | None
    before: DutState
    after: DutState

    @property
    def rebooted(self) -> bool:
        return self.reboot is not None


class DutStrategy:
    """Brings one DUT to required conditions; remembers what it saw (one boot at a time).

    The strategy assumes it is the only writer of the four settings on its (leased) DUT: while
    the DUT's boot time is unchanged, a new observation costs one `host_facts`; after a reboot
    (its own, or any other) everything is observed again.
    """

    def __init__(
        self,
        host: WindowsHost,
        dut_name: str,
        dut: Dut,
        *,
        reboot_s: float,
        step_s: float,
        down_s: float | None = None,
        reboot: Callable[..., RebootReport] = reboot_and_wait,
    ) -> None:
        """`reboot` takes one reboot and waits for the host (`actions.reboot_and_wait`)."""
        self.host = host
        self.reboot = reboot
        #: What the DUT's logs held of a crash at first contact (None until then).
        self.crash_before_contact: CrashEvidence | None = None
        self.dut_name = dut_name
        self.dut = dut
        self.reboot_s = reboot_s
        self.step_s = step_s
        self.down_s = reboot_s / 2 if down_s is None else down_s
        self._last: DutState | None = None

    def __repr__(self) -> str:
        return f"DutStrategy({self.dut_name!r})"

    @property
    def last_boot_utc(self) -> datetime | None:
        """The boot time of the last observation (None before one, or after `forget()`)."""
        return self._last.last_boot_utc if self._last is not None else None

    def forget(self) -> None:
        """Drop what was seen (e.g. after someone else changed a setting): observe afresh."""
        self._last = None

    def observe(self, deadline: Deadline, *, facts: HostFacts | None = None) -> DutState:
        dl = deadline.child(self.step_s, f"observing the conditions of {self.dut_name}")
        if facts is None:
            facts = self.host.host_facts(deadline=dl)
        if self.crash_before_contact is None:
            self._first_contact(facts, deadline)
        last = self._last
        if last is not None and last.last_boot_utc == facts.last_boot_utc:
            state = combine(self.dut_name, self.dut, facts, last.verifier, last.kdp.pending, last)
        else:
            state = observe(self.host, self.dut, dl, previous=last, facts=facts)
            state = replace(state, dut=self.dut_name)
        self._last = state
        return state

    def _first_contact(self, facts: HostFacts, deadline: Deadline) -> None:
        """Read, once, the crash evidence logged since the DUT's current boot: a bugcheck from
        before the run has its Kernel-Power 41 logged at this boot and WER's 1001 later, and
        must not be taken for a crash of the first reboot or scenario (the host remembers
        what it reported: `unseen_since`). The op waits, bounded, for a late 1001."""
        budget = self.step_s + 2 * CRASH_REPORT_WAIT_S
        dl = deadline.child(budget, f"crash evidence of {self.dut_name} before the run")
        evidence = self.host.crash_evidence(facts.last_boot_utc, deadline=dl, timeout_s=budget)
        self.crash_before_contact = evidence
        if evidence.crashed:
            log.warning(
                "%s had crashed before the run: %s",
                self.dut_name,
                ", ".join(
                    sorted(
                        {
                            f"0x{b.stop_code:X}"
                            for b in (*evidence.bugchecks, *evidence.shutdown_bugchecks)
                        }
                    )
                ),
            )

    def bring_to(self, required: BootState, deadline: Deadline) -> Transition:
        check_reachable(required, self.dut, self.dut_name)
        before = self.observe(deadline)
        changes, reasons = _plan(before, required, self.dut)
        if changes:  # refused before the first change when the token is not elevated
            readiness.require_elevated(self.host, deadline.child(self.step_s, "token check"))
        state = before
        try:
            for change in changes:
                self._apply(change, deadline)
                state = _with_pending(state, change)
        except BaseException:
            self._last = None  # a write may or may not have happened: trust nothing
            raise
        self._last = state
        report: RebootReport | None = None
        if reasons:
            why = "; ".join(reasons)
            dl = deadline.child(self.reboot_s, f"reboot of {self.dut_name} ({why})")
            report = self.reboot(
                self.host,
                dl,
                down_timeout_s=min(self.down_s, self.reboot_s),
                up_timeout_s=self.reboot_s,
                reason=f"dma-lab-harness: {required.describe()}",
            )
            state = self.observe(deadline, facts=report.facts)
        missing = unmet(state, required)
        if missing:
            self._last = None
            raise DutError(
                f"{self.dut_name} is not in the required conditions ({required.describe()})"
                + (" after its reboot" if report else "")
                + ": "
                + "; ".join(missing)
            )
        return Transition(required, tuple(changes), tuple(reasons), report, before, state)

    def _apply(self, change: Change, deadline: Deadline) -> None:
        host, name, target = self.host, self.dut_name, change.target
        dl = deadline.child(self.step_s, f"{change.description} on {name}")
        if change.kind is ChangeKind.KDP_FIRMWARE:
            vendor = self.dut.kdp.firmware_control
            assert vendor != "none" and isinstance(target, bool)
            fw = host.kdp_firmware_set(vendor, target, deadline=dl)
            if fw.bitlocker_suspended:
                log.info(
                    "%s: BitLocker suspended for one restart before %s", name, change.description
                )
            if fw.return_value is not None and fw.return_value != "Success":
                raise DutError(
                    f"{name}: the firmware refused {change.description} ({vendor}: "
                    f"{fw.return_value}); a BIOS supervisor password may lock it"
                )
        elif change.kind is ChangeKind.DMAGUARD:
            assert target is None or (isinstance(target, int) and not isinstance(target, bool))
            guard = host.dmaguard_set(target, deadline=dl)
            if guard.policy != target:
                raise DutError(f"{name}: {change.description} wrote {guard.policy!r} instead")
        elif change.kind is ChangeKind.VERIFIER:
            assert isinstance(target, VerifierSettings)
            if target.flags is None:
                run = host.set_verifier("reset", 0, [], deadline=dl)
            else:
                run = host.set_verifier("persistent", target.flags, target.drivers, deadline=dl)
            if run.exit_code not in (0, 2):
                raise DutError(
                    f"{name}: verifier.exe failed ({change.description}): exit code "
                    f"{run.exit_code}: {run.output.strip()}"
                )
        else:
            assert isinstance(target, bool)
            run = host.set_test_signing(target, deadline=dl)
            if run.bitlocker_suspended:
                log.info(
                    "%s: BitLocker suspended for one restart before %s", name, change.description
                )
            if run.exit_code != 0:
                raise DutError(
                    f"{name}: bcdedit failed ({change.description}): exit code "
                    f"{run.exit_code}: {run.output.strip()}"
                )
