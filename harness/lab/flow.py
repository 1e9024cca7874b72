"""The flow of one scenario (DESIGN.md "The flow of one scenario", steps 1-8) on one DUT.

`ScenarioRunner.run(scenario)` installs the scenario's driver package (once per DUT and
package), brings the DUT to the scenario's conditions through the DUT strategy (one reboot at
most), unplugs the device and sees it gone, puts the session in the required state, plugs the
device and waits until it is present and either started or blocked, observes it (DEVPKEY,
status, problem code, stack) and probes its DMA, unlocks and observes again, and judges the
observations against the oracle. Teardown always runs: unplug, unlock, and a crash check.

A DUT that drops off the network in the middle of the flow is waited for: if it comes back with
a later boot time it crashed, and its crash evidence decides the outcome: a 0xE6 (DRIVER_VERIFIER
_DMA_VIOLATION) in a Verifier scenario is a product defect (`ScenarioCrashed`, a `TestFailure`);
any other crash is a `DutError`. The same holds for a connection lost while installing the
package or bringing about the conditions (outside the strategy's own reboot, which checks its
own boot): the boot time is compared with the last one the harness knew, and a later boot counts
as a crash when a bugcheck or an unexpected shutdown is on record.

Every step goes through `steps.step(name)` (an Allure step and a progress update in the
pytest plugin); evidence goes through `steps.attach(...)`.

>>> runner = ScenarioRunner(kit, plan, steps)                    # doctest: +SKIP
>>> result = runner.run(scenario)                                # doctest: +SKIP
>>> result.verdict.outcome                                       # doctest: +SKIP
<Outcome.PASSED: 'passed'>
"""

from __future__ import annotations

import contextlib
import json
import re
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from harness.config.plan import Plan
from harness.config.scenarios import Scenario
from harness.domain.conditions import SessionState
from harness.domain.policy import Expectation, expect
from harness.errors import ConfigError, DutError, InfrastructureError, TestFailure
from harness.lab.boot_state import BootState
from harness.lab.kit import ActivePackage, DutKit
from harness.lab.strategy import Transition
from harness.lab.verdict import Observed, PlugObservations, Verdict, judge
from harness.remote.deadline import Deadline
from harness.windows.actions import REBOOT_BACKOFF, DutCrashed, reconnect, wait_for_device
from harness.windows.polling import WaitTimeout, poll_until
from harness.windows.results import BugCheck, CrashEvidence, HostFacts, PnpDevice

if TYPE_CHECKING:
    from harness.windows.host import WindowsHost

#: Real-world seconds a blocked device is given to start after unlock before it is judged.
UNLOCK_SETTLE_S = 10.0
#: Size of the storage DMA probe (write, read back, compare).
PROBE_MIB = 16
#: DRIVER_VERIFIER_DMA_VIOLATION.
VERIFIER_DMA_VIOLATION = 0xE6
_HOST_RE = re.compile(r"^[A-Za-z0-9._:-]+$")


class Steps(Protocol):
    """Where the flow reports its steps and evidence (Allure + live progress in the plugin)."""

    def step(self, name: str) -> contextlib.AbstractContextManager[None]: ...
    def attach(self, name: str, body: str, *, kind: str = "text") -> None: ...


class NoSteps:
    """`Steps` that records nothing (library use, unit tests)."""

    def step(self, name: str) -> contextlib.AbstractContextManager[None]:
        return contextlib.nullcontext()

    def attach(self, name: str, body: str, *, kind: str = "text") -> None:
        return None


class ScenarioCrashed(TestFailure):
    """The DUT bugchecked with DRIVER_VERIFIER_DMA_VIOLATION under Verifier: the driver's bug."""

    def __init__(self, message: str, *, bugcheck: BugCheck, evidence: CrashEvidence) -> None:
        super().__init__(message)
        self.bugcheck = bugcheck
        self.evidence = evidence


@dataclass(frozen=True)
class Prepared:
    active: ActivePackage
    transition: Transition
    boot: datetime  # the DUT's boot time once in the scenario's conditions


@dataclass(frozen=True)
class ScenarioResult:
    scenario: Scenario
    expectation: Expectation
    observations: PlugObservations
    verdict: Verdict
    rebooted: bool


def crash_report(evidence: CrashEvidence) -> str:
    """Human-readable crash evidence: bugchecks, dumps, unexpected shutdowns, setupapi tail."""
    lines = [f"{b.describe()} at {b.time_utc:%Y-%m-%d %H:%M:%S}Z" for b in evidence.bugchecks]
    lines += [f"dump {d.path} ({d.size} bytes)" for d in evidence.dumps]
    lines += [
        f"unexpected shutdown (Kernel-Power 41) at {t:%H:%M:%S}Z"
        for t in evidence.unexpected_shutdowns
    ]
    if evidence.setupapi_tail:
        lines += ["", "setupapi.dev.log (tail):", evidence.setupapi_tail]
    return "\n".join(lines)


def crashed(evidence: CrashEvidence) -> bool:
    """A bugcheck (event 1001) or an unexpected shutdown (Kernel-Power 41) is on record."""
    return bool(evidence.bugchecks or evidence.unexpected_shutdowns)


def wait_for_answer(host: WindowsHost, wait: Deadline, lost: Exception) -> HostFacts:
    """Reconnect with backoff until `host_facts` answers, within `wait`; `DutError` if the
    host does not answer in time (it did not come back)."""

    def facts() -> HostFacts:
        reconnect(host, wait)
        return host.host_facts(deadline=wait)

    try:
        return poll_until(
            facts,
            lambda _: True,
            deadline=wait,
            sleep=host.sleep,
            backoff=REBOOT_BACKOFF,
            retry_errors=True,
        )
    except WaitTimeout as timeout:
        raise DutError(
            f"{host.name} did not come back within {wait.budget_s:.0f} s after "
            f"the connection was lost ({lost}); last error: {timeout.error}"
        ) from lost


class ScenarioRunner:
    """Runs scenarios on one DUT (`DutKit`) for one plan."""

    def __init__(
        self,
        kit: DutKit,
        plan: Plan,
        steps: Steps | None = None,
        *,
        run_deadline: Deadline | None = None,
    ) -> None:
        self.kit = kit
        self.plan = plan
        self.steps: Steps = steps or NoSteps()
        self.t = plan.timeouts
        self.run_deadline = run_deadline

    # -- the flow --------------------------------------------------------------------------------
    def run(self, scenario: Scenario) -> ScenarioResult:
        """Steps 1-8 for `scenario`; teardown always runs."""
        dl = self.deadline(scenario)
        exp = expect(scenario.oracle_conditions())
        self.steps.attach("expectation", _json(exp.to_json()), kind="json")
        known = self._known_boot(dl)
        try:
            try:
                prepared = self.prepare(scenario, dl)
            except InfrastructureError as lost:  # install or conditions, outside a reboot's wait
                facts = self._wait_back(lost, dl)
                self._raise_if_crashed(
                    scenario, known, dl, cause=lost, facts=facts, clean_reboot_ok=True
                )
                raise
            seen = self.plug_and_observe(scenario, dl, prepared.boot)
            if "no_bugcheck" in self.plan.checks:
                with self.steps.step("no bugcheck"):
                    self._raise_if_crashed(scenario, self._own(prepared.boot), dl, cause=None)
        finally:
            self.teardown(scenario)
        self.steps.attach("observations", _json(seen.to_json()), kind="json")
        verdict = judge(exp, seen, checks=self.plan.checks)
        return ScenarioResult(scenario, exp, seen, verdict, prepared.transition.rebooted)

    def deadline(self, scenario: Scenario) -> Deadline:
        """The scenario's deadline, nested in the run's (run > scenario > step > remote call)."""
        if self.run_deadline is not None:
            return self.run_deadline.child(self.t.scenario_s, f"scenario {scenario.id}")
        return Deadline.after(self.t.scenario_s, f"scenario {scenario.id}")

    def prepare(self, scenario: Scenario, dl: Deadline) -> Prepared:
        """Steps 0-1: the driver package, then the conditions (at most one reboot)."""
        kit = self.kit
        if scenario.dut != kit.name:
            raise ConfigError(f"scenario {scenario.id} is for {scenario.dut}, not {kit.name}")
        with self.steps.step(f"driver package {scenario.driver_package}"):
            active = kit.packages.ensure(scenario.driver_package, self._dl(dl, "install"))
        with self.steps.step("conditions (DUT strategy)"):
            required = BootState.from_scenario(scenario, active.drivers)
            try:
                transition = kit.strategy.bring_to(required, dl)
            except DutCrashed as crash:  # at the reboot into the scenario's conditions
                self.steps.attach("crash evidence", crash_report(crash.evidence))
                raise
            for change in transition.changes:
                self.steps.attach("change", change.description)
        # the strategy observed the DUT once in these conditions: its boot time is current
        return Prepared(active, transition, transition.after.last_boot_utc)

    def plug_and_observe(self, s: Scenario, dl: Deadline, boot: datetime) -> PlugObservations:
        """Steps 2-6: unplug, session state, plug, observe and probe, unlock and observe."""
        kit = self.kit
        port = kit.config.ports[s.port_name]
        device = kit.lab.devices[port.device]
        switch, channel, hwid = kit.switch(port.switch), port.channel, device.hardware_id
        try:
            with self.steps.step("unplug"):
                switch.disconnect(channel)
                wait_for_device(
                    kit.host,
                    hwid,
                    lambda ds: not any(d.present for d in ds),
                    self._dl(dl, "unplug", plug=True),
                )
            with self.steps.step(f"session {s.session.value}"):
                self._session(s.session, self._dl(dl, "session"))
            with self.steps.step("plug"):
                switch.connect(channel)
                found = wait_for_device(kit.host, hwid, _settled, self._dl(dl, "plug", plug=True))
            at_plug = _observed(found)
            with self.steps.step("observe at plug"):
                self.steps.attach("device at plug", _json(at_plug.to_json()), kind="json")
            locked = s.session is not SessionState.UNLOCKED
            probing = "dma_probe" in self.plan.checks and device.dma_probe is not None
            probe_locked: bool | None = None
            probe_ok: bool | None = None
            after: Observed | None = None
            if at_plug.started and probing:
                with self.steps.step("DMA probe" + (f" while {s.session.value}" if locked else "")):
                    ok = self._probe(device.dma_probe, at_plug.instance_id, dl)
                if locked:
                    probe_locked = ok
                else:
                    probe_ok = ok
            if locked:
                with self.steps.step("unlock"):
                    kit.session.unlock(self._dl(dl, "unlock"))
                with self.steps.step("observe after unlock"):
                    after = self._after_unlock(hwid, dl)
                    self.steps.attach("device after unlock", _json(after.to_json()), kind="json")
                if after.started and probing:
                    with self.steps.step("DMA probe after unlock"):
                        probe_ok = self._probe(device.dma_probe, after.instance_id, dl)
            return PlugObservations(at_plug, after, probe_locked, probe_ok)
        except InfrastructureError as lost:
            facts = self._wait_back(lost, dl)
            self._raise_if_crashed(s, self._own(boot), dl, cause=lost, facts=facts)
            raise

    def _session(self, want: SessionState, dl: Deadline) -> None:
        control = self.kit.session
        if want is SessionState.UNLOCKED:
            control.unlock(dl)
        elif want is SessionState.LOCKED:
            if control.state(dl) is SessionState.NO_USER:
                control.unlock(dl)  # sign in first: a lock needs a signed-in user
            control.lock(dl)
        else:
            control.sign_out(dl)

    def _after_unlock(self, hwid: str, dl: Deadline) -> Observed:
        settle = UNLOCK_SETTLE_S * self.kit.time_scale
        try:
            found = wait_for_device(
                self.kit.host,
                hwid,
                lambda ds: any(d.started for d in ds),
                dl.child(settle, "start after unlock"),
            )
        except WaitTimeout as timeout:
            found = timeout.last or ()
        return _observed(found)

    def _probe(self, probe: Any, instance_id: str, dl: Deadline) -> bool:
        host = self.kit.host
        step_dl = self._dl(dl, "probe")
        if probe.kind == "storage":
            r = host.storage_probe(instance_id, probe.volume_label, PROBE_MIB, deadline=step_dl)
            self.steps.attach("storage probe", _json(r.__dict__), kind="json")
            return r.ok and r.verified
        if probe.kind == "network":
            if not _HOST_RE.match(probe.target):
                raise ConfigError(f"dma_probe target {probe.target!r} is not a host name or IP")
            out = host.run_command(f"ping -n 2 -w 1000 {probe.target}", deadline=step_dl)
        else:
            out = host.run_command(probe.command, deadline=step_dl)
        self.steps.attach("probe output", out.output)
        return out.exit_code == 0

    # -- crashes ---------------------------------------------------------------------------------
    def _known_boot(self, dl: Deadline) -> datetime:
        """The DUT's boot time as the harness last knew it: the strategy's last observation, or
        (first scenario, or after a retry made the strategy forget) one `host_facts` now."""
        known = self.kit.strategy.last_boot_utc
        if known is not None:
            return self._own(known)
        return self.kit.host.host_facts(deadline=self._dl(dl, "boot time")).last_boot_utc

    def _own(self, boot: datetime) -> datetime:
        """`boot`, or the later boot of the harness's own sign-in reboot (unlock by autologon):
        a reboot the harness asked for is not an unexpected one."""
        own = self.kit.session.own_boot_utc
        return own if own is not None and own > boot else boot

    def _wait_back(self, lost: InfrastructureError, dl: Deadline) -> HostFacts:
        """After a lost connection, reconnect with backoff until the DUT answers again."""
        host = self.kit.host
        with self.steps.step("DUT lost: wait for it to answer again"):
            self.steps.attach("connection lost", str(lost))
            wait = dl.child(self.t.reboot_s, f"{host.name} to come back after a lost connection")
            return wait_for_answer(host, wait, lost)

    def _raise_if_crashed(
        self,
        s: Scenario,
        boot: datetime,
        dl: Deadline,
        *,
        cause: Exception | None,
        facts: HostFacts | None = None,
        clean_reboot_ok: bool = False,
    ) -> None:
        """If the DUT booted since `boot` (it rebooted on its own), raise what its crash says:
        `ScenarioCrashed` for a 0xE6 under Verifier, `DutError` for anything else.

        `clean_reboot_ok`: the harness itself may have rebooted the DUT since `boot` (the
        strategy's reboot in `prepare`): a later boot is a crash only with crash evidence (a
        bugcheck or an unexpected shutdown); a clean one is noted and not raised."""
        host = self.kit.host
        if facts is None:
            facts = host.host_facts(deadline=dl)
        if facts.last_boot_utc <= boot:
            return
        evidence = host.crash_evidence(host.unseen_since(boot), deadline=dl)
        if clean_reboot_ok and not crashed(evidence):
            self.steps.attach(
                "boot times",
                f"{host.name} booted at {facts.last_boot_utc:%H:%M:%S}Z (known: "
                f"{boot:%H:%M:%S}Z) after a clean shutdown: not a crash",
            )
            return
        report = crash_report(evidence) or "no bugcheck recorded (event 1001 absent)"
        self.steps.attach("crash evidence", report)
        first = evidence.bugchecks[0] if evidence.bugchecks else None
        if first and first.stop_code == VERIFIER_DMA_VIOLATION and s.verifier_dma:
            dump = f", dump {first.dump_path}" if first.dump_path else ""
            raise ScenarioCrashed(
                f"{host.name}: {first.describe()} (DRIVER_VERIFIER_DMA_VIOLATION) under Driver "
                f"Verifier DMA verification{dump}",
                bugcheck=first,
                evidence=evidence,
            ) from cause
        what = first.describe() if first else "an unexpected reboot with no bugcheck recorded"
        raise DutError(f"{host.name} crashed during scenario {s.id}: {what}") from cause

    # -- teardown --------------------------------------------------------------------------------
    def teardown(self, s: Scenario) -> None:
        """Unplug and unlock, always; failures here are reported but never hide the scenario's."""
        td = Deadline.after(self.t.step_s, f"teardown of {s.id}")
        with self.steps.step("teardown"):
            problems: list[str] = []
            for what, action in (
                ("unplug", lambda: self._unplug_quietly(s)),
                ("unlock", lambda: self.kit.session.unlock(td)),
            ):
                try:
                    action()
                except (InfrastructureError, DutError) as exc:
                    problems.append(f"{what}: {exc}")
            if problems:
                self.steps.attach("teardown problems", "\n".join(problems))

    def _unplug_quietly(self, s: Scenario) -> None:
        port = self.kit.config.ports[s.port_name]
        self.kit.switch(port.switch).disconnect(port.channel)

    def _dl(self, dl: Deadline, what: str, *, plug: bool = False) -> Deadline:
        return dl.child(self.t.plug_s if plug else self.t.step_s, what)


def _settled(devices: tuple[PnpDevice, ...]) -> bool:
    """Present and either started or stopped with a problem code (e.g. 55, blocked)."""
    return any(d.present and (d.started or d.problem_code != 0) for d in devices)


def _observed(devices: tuple[PnpDevice, ...]) -> Observed:
    present = [d for d in devices if d.present]
    if not present:
        return Observed(False, False, 0, None, "", status="absent")
    d = present[0]
    return Observed(
        present=True,
        started=d.started,
        problem_code=d.problem_code,
        dma_policy=d.dma_policy,
        dma_policy_key=d.dma_policy_key,
        status=d.status,
        instance_id=d.instance_id,
        driver_stack=d.driver_stack,
    )


def _json(data: Any) -> str:
    return json.dumps(data, indent=2, default=str)
