"""Teardown to the lab's declared baseline, and the post-check that reads it back.

At the end of a run, also after Ctrl-C, SIGTERM or a failed scenario, every DUT the run opened
goes back to its `baseline:` (lab file):

1. every port of the DUT unplugged and the session unlocked (a scenario may have died midway);
2. the packages the run installed removed (`pnputil /delete-driver /uninstall`);
3. KDP, DMAGuard, Verifier and test signing restored by the DUT strategy: all changes written,
   then one reboot at most;
4. the post-check: the DUT is observed afresh (nothing carried over from the run) and every
   setting whose in-effect or next-boot value is not the baseline's is reported as drift.

Each step is bounded by the deadline given and runs even when an earlier one failed; the
result (`BaselineCheck`) says what was done, what failed and what drifted, per DUT.

>>> check = restore_baseline(kit, Deadline.after(900, "tb-01 baseline"))  # doctest: +SKIP
>>> check.ok, check.drift                                                # doctest: +SKIP
(True, ())
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from harness.errors import HarnessError
from harness.lab.state import DutState, Required, Setting
from harness.lab.strategy import unmet
from harness.remote.deadline import Deadline

if TYPE_CHECKING:
    from harness.lab.kit import DutKit

__all__ = ["BaselineCheck", "drift", "restore_baseline"]


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
        }

    def summary(self) -> str:
        if self.ok:
            return f"{self.dut}: at baseline ({self.baseline})"
        parts = [*(f"drift: {d}" for d in self.drift), *self.problems]
        if not self.checked:
            parts.append("not read back")
        return f"{self.dut}: NOT at baseline: " + "; ".join(parts)


def _pending_drift(state: DutState, required: Required) -> list[str]:
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


def drift(state: DutState, required: Required) -> list[str]:
    """What in `state` is not the baseline `required`: in effect now, or at the next boot."""
    return [*unmet(state, required), *_pending_drift(state, required)]


def _attempt(problems: list[str], what: str, action: Any) -> Any:
    try:
        return action()
    except HarnessError as exc:
        problems.append(f"{what}: {exc}")
    return None


def restore_baseline(
    kit: DutKit, deadline: Deadline, *, quarantined: str | None = None
) -> BaselineCheck:
    """Steps 1-4 of the module doc on one DUT, within `deadline`; never raises a HarnessError."""
    problems: list[str] = []
    step = kit.strategy.step_s
    for port_name, port in kit.config.ports.items():
        _attempt(
            problems,
            f"unplug {port_name}",
            lambda port=port: kit.switch(port.switch).disconnect(port.channel),
        )
    _attempt(problems, "unlock", lambda: kit.session.unlock(deadline.child(step, "unlock")))
    installed = [p.published_name for p in kit.packages.installer.installed.values()]
    _attempt(
        problems, "uninstall", lambda: kit.packages.remove_all(deadline.child(step, "uninstall"))
    )
    uninstalled = tuple(
        n
        for n in installed
        if n not in {p.published_name for p in kit.packages.installer.installed.values()}
    )
    required = Required.from_baseline(kit.config.baseline, kit.packages.drivers())
    transition = _attempt(problems, "restore", lambda: kit.strategy.bring_to(required, deadline))
    kit.strategy.forget()  # the post-check believes nothing from the run
    state = _attempt(problems, "post-check", lambda: kit.strategy.observe(deadline))
    found = tuple(drift(state, required)) if state is not None else ()
    return BaselineCheck(
        dut=kit.name,
        baseline=required.describe(),
        rebooted=bool(transition is not None and transition.rebooted),
        problems=tuple(problems),
        drift=found,
        checked=state is not None,
        quarantined=quarantined,
        uninstalled=uninstalled,
    )
