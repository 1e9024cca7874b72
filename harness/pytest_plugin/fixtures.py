"""Fixtures of the harness's pytest plugin.

- `lab` (session): the lab config, a `LabConnector`, and the virtual lab when the config has a
  `virtual:` section (started here unless `--lab-endpoints` names a running one; stopped at
  the end of the session).
- `dut_pool` (session): one `DutKit` per DUT, opened on first use, under a lease; it keeps the
  run's quarantine (`quarantine.py`): a quarantined DUT's remaining scenarios are skipped as not
  run, with the reason. At the end of the session, also after Ctrl-C or SIGTERM, each DUT goes
  back to the lab's baseline (`harness.lab.baseline`: unplug, unlock, uninstall the run's
  packages, one reboot at most) and is read back; `teardown/<dut>.json` in the run directory
  holds what was done and any drift.
- `dut`: the kit of the DUT the current test runs on (the scenario's, or `dma_conditions(dut=)`).
- `scenario`: the scenario (from the plan, or from the test's `dma_conditions` marker) with its
  driver package installed and its conditions brought about by the DUT strategy.
- `driver_package`: the scenario's package as installed (published name, hashes, signer).
- `switch`: the hot-plug switch of the scenario's port.
- `plugged_device`: the device unplugged, the session put in the scenario's state, the device
  plugged and observed (`PlugObservations`); teardown unplugs and unlocks.

A hand-written test declares what it needs::

    @pytest.mark.dma_conditions(dut="tb-01", port="tb4", driver_package="nvme-inf0",
                                session="locked")
    def test_blocked_while_locked(plugged_device):
        assert plugged_device.at_plug.problem_code == 55
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from harness.config.endpoints import LabEndpoints
from harness.config.lab import Lab
from harness.config.plan import Plan, Timeouts
from harness.config.scenarios import Scenario, expand
from harness.domain.policy import Expectation, expect
from harness.errors import ConfigError, HarnessBug
from harness.lab.baseline import BaselineCheck, restore_baseline
from harness.lab.connect import LabConnector
from harness.lab.flow import Prepared, ScenarioRunner
from harness.lab.kit import ActivePackage, DutKit, open_kit
from harness.lab.lease import DutLease, LeaseRefused
from harness.lab.package_identity import inf_identity
from harness.lab.verdict import PlugObservations
from harness.private_files import private_dir, write_private
from harness.pytest_plugin.deadlines import run_deadline
from harness.pytest_plugin.execute import HANDWRITTEN, STARTED, label
from harness.pytest_plugin.options import read_options
from harness.pytest_plugin.quarantine import Quarantine
from harness.pytest_plugin.reports_disk import is_disk_error, note, say
from harness.pytest_plugin.runinfo import LAB_ENDPOINTS, POOL_KEY, RUN_ID
from harness.pytest_plugin.selection import PlannedScenario, selection
from harness.pytest_plugin.shield import teardown_shield
from harness.pytest_plugin.steps import AllureSteps, AllureStepSink, Progress, utc_now
from harness.remote.deadline import Deadline
from harness.remote.transcript import Redactor
from harness.report.run_dir import RunDir


@dataclass
class LabSession:
    config: Lab
    connector: LabConnector
    run_dir: RunDir | None
    redactor: Redactor = field(default_factory=Redactor)


@pytest.fixture(scope="session")
def lab(pytestconfig: pytest.Config) -> Iterator[LabSession]:
    """The lab of `--dma-lab` (or the default lab): its config, a connector to its DUTs and
    instruments, the run directory; a virtual lab is started here unless the run already has
    one (`--dma-lab-endpoints`, or the one an xdist controller started), and stopped at the
    end of the session."""
    config = selection(pytestconfig).lab
    run_dir = read_options(pytestconfig).run_dir
    endpoints_file = pytestconfig.stash.get(LAB_ENDPOINTS, None)
    running = None
    endpoints: LabEndpoints | None = None
    if endpoints_file:
        endpoints = LabEndpoints.read(Path(endpoints_file))
    elif config.virtual is not None:
        from harness.virtual_lab.launcher import start_virtual_lab

        keep = RunDir(Path(run_dir)).virtual_lab_log if run_dir else None
        running = start_virtual_lab(config.path, keep_log=keep)
        endpoints = running.endpoints
    try:
        yield LabSession(
            config, LabConnector(config, endpoints), RunDir(Path(run_dir)) if run_dir else None
        )
    finally:
        if running is not None:
            running.stop()


def lease_for_run(dut: str, address: str, run_id: str, directory: Path | None = None) -> DutLease:
    """The DUT's lease for this run. Held by another run: LeaseRefused (the DUT is busy).
    Held by another worker of this same run: a HarnessBug, because the DUT scheduler must keep
    a DUT on one worker; it is never reported as an unreachable DUT."""
    try:
        return DutLease.acquire(dut, address, run_id=run_id, directory=directory)
    except LeaseRefused as exc:
        if exc.owner and run_id and exc.owner.get("run_id") == run_id:
            raise HarnessBug(
                f"DUT {dut} was given to two workers of this run ({exc}): the DUT scheduler "
                "must keep a DUT on one worker"
            ) from None
        raise


class DutPool:
    """One kit per DUT for the session; closed (baseline, facts, uninstall) at the end."""

    def __init__(
        self, session: LabSession, quarantine: Quarantine | None = None, run_id: str = ""
    ) -> None:
        self.session = session
        self.run_id = run_id or (session.run_dir.path.name if session.run_dir else "")
        self.kits: dict[str, DutKit] = {}
        self.leases: dict[str, DutLease] = {}
        self.progress: dict[str, Progress] = {}
        self.quarantine = quarantine or Quarantine()
        self.teardown: dict[str, BaselineCheck] = {}

    def get(self, name: str, timeouts: Timeouts) -> DutKit:
        reason = self.quarantine.reason(name)
        if reason is not None:
            pytest.skip(f"DUT {name} is quarantined: {reason}")
        if name not in self.kits:
            s = self.session
            redact = s.redactor.redact
            if name not in self.leases:
                address = s.config.duts[name].address
                endpoints = s.connector.endpoints
                if s.config.is_virtual(name) and endpoints is not None:
                    address = endpoints.duts[name].control_url  # this virtual lab's DUT
                try:
                    self.leases[name] = lease_for_run(name, address, self.run_id)
                except LeaseRefused as exc:
                    pytest.skip(
                        f"DUT {name} is quarantined: {self.quarantine.unreachable(name, str(exc))}"
                    )
            self.kits[name] = open_kit(
                s.config,
                s.connector,
                name,
                timeouts,
                steps=AllureStepSink(redact),
                redactor=s.redactor,
            )
            self.write_facts(name)
        return self.kits[name]

    def progress_for(self, name: str) -> Progress:
        if name not in self.progress:
            rd = self.session.run_dir
            self.progress[name] = Progress(rd.progress if rd else None, name)
        return self.progress[name]

    def write_facts(self, name: str) -> None:
        rd = self.session.run_dir
        if rd is None:
            return
        kit = self.kits[name]
        facts = kit.host.host_facts()
        verifier = kit.host.verifier_state()
        data: dict[str, Any] = {
            "dut": name,
            "build": facts.build,
            "ubr": facts.ubr,
            "edition": facts.edition,
            "product_name": facts.product_name,
            "kdp": facts.kdp.enabled,
            "dmaguard_policy": facts.dmaguard_policy,
            "verifier": {"flags": verifier.active.flags, "drivers": list(verifier.active.drivers)},
            "test_signing": facts.test_signing_in_effect,
            "test_signing_next_boot": facts.test_signing,
            "packages": [
                {
                    "name": p.name,
                    "inf": p.inf_path.name,
                    "published_name": p.published_name,
                    "version": p.version,
                    "signer": p.signer,
                    "signer_thumbprints": list(p.signer_thumbprints),
                    "signature_evidence": p.signature_evidence,
                    "files": dict(p.files),
                    **inf_identity(p.inf_path),
                }
                # what the run installed, recorded while installed: still there after teardown
                for p in kit.packages.installer.ever_installed.values()
            ],
            "installed_now": sorted(kit.packages.installer.installed),
        }
        before = kit.strategy.crash_before_contact  # read at first contact (DutStrategy)
        if before is not None and before.crashed:
            data["crashed_before_run"] = [
                {"stop_code": f"0x{b.stop_code:08X}", "time_utc": b.time_utc, "source": b.source}
                for b in (*before.bugchecks, *before.shutdown_bugchecks)
            ]
        write_private(rd.facts / f"{name}.json", json.dumps(data, indent=2, default=str) + "\n")

    def close(self) -> list[str]:
        """Every opened DUT back to baseline and read back (`harness.lab.baseline`); the
        problems and drift, one line per DUT that is not at its baseline."""
        problems: list[str] = []
        for name, kit in self.kits.items():
            dl = Deadline.after(kit.timeouts.teardown_s, f"{name} back to baseline")
            check = restore_baseline(kit, dl, quarantined=self.quarantine.reason(name))
            self.teardown[name] = check
            try:
                self._write_teardown(check)
            except OSError as exc:  # e.g. the reports disk is full: the record goes to stderr
                if is_disk_error(exc):
                    note(exc, f"teardown record of {name}")
                problems.append(f"{name}: teardown record not written: {exc}")
                say(
                    f"harness: teardown record of {name} not written ({exc}): "
                    + json.dumps(check.to_json())
                )
            if not check.ok:
                problems.append(check.summary())
            try:
                self.write_facts(name)
            except Exception as exc:  # one DUT's trouble must not stop the others' teardown
                problems.append(f"{name}: facts: {exc}")
            try:
                problems += [f"{name}: {p}" for p in kit.close(dl)]
            except Exception as exc:
                problems.append(f"{name}: closing: {exc}")
        self.kits.clear()
        for lease in self.leases.values():
            lease.release()
        self.leases.clear()
        return problems

    def _write_teardown(self, check: BaselineCheck) -> None:
        rd = self.session.run_dir
        if rd is None:
            return
        folder = private_dir(rd.path / "teardown")
        write_private(folder / f"{check.dut}.json", json.dumps(check.to_json(), indent=2) + "\n")


@pytest.fixture(scope="session")
def dut_pool(lab: LabSession, pytestconfig: pytest.Config) -> Iterator[DutPool]:
    """One `DutKit` per DUT for the session, opened on first use under a lease; the run's
    quarantine; at the end every opened DUT goes back to the lab's baseline and is read back
    (`teardown/<dut>.json` in the run directory)."""
    plans = selection(pytestconfig).plans
    limit = min((p.retries.quarantine_after for p in plans), default=2)
    pool = DutPool(lab, Quarantine(limit=limit), pytestconfig.stash.get(RUN_ID, ""))
    pytestconfig.stash[POOL_KEY] = pool  # execute.record() counts outcomes for quarantine
    try:
        yield pool
    finally:
        with teardown_shield():  # a signal now would leave a DUT halfway (pytest_plugin.shield)
            problems = pool.close()
        if problems:
            warnings.warn("harness teardown: " + "; ".join(problems), stacklevel=1)


def _marker_scenario(request: pytest.FixtureRequest, lab: Lab) -> PlannedScenario:
    marker = request.node.get_closest_marker("dma_conditions")
    if marker is None:
        raise pytest.UsageError(
            f"{request.node.nodeid}: needs a plan scenario or @pytest.mark.dma_conditions(...)"
        )
    kw = dict(marker.kwargs)
    try:
        dut = kw.pop("dut")
        port = kw.pop("port")
        package = kw.pop("driver_package")
        config = lab.duts[dut]
        device = config.ports[port].device
        matrix = {k: [str(v)] for k, v in kw.items()}
        matrix["port"] = [config.ports[port].kind.value]
        plan = Plan.model_validate(
            {
                "name": request.node.name,
                "purpose": "manual",
                "duts": {"names": [dut]},
                "devices": [device],
                "driver_packages": [package],
                "matrix": matrix,
            }
        )
        found = [s for s in expand(plan, lab) if s.port_name == port]
    except (KeyError, ValueError, ConfigError) as exc:
        raise pytest.UsageError(f"{request.node.nodeid}: dma_conditions: {exc}") from None
    if len(found) != 1:
        raise pytest.UsageError(
            f"{request.node.nodeid}: dma_conditions give {len(found)} scenarios"
        )
    return PlannedScenario(plan, found[0])


@pytest.fixture
def planned_scenario(request: pytest.FixtureRequest, lab: LabSession) -> PlannedScenario:
    """The scenario this test runs: the plan's (`planned` parameter) or the one its
    `@pytest.mark.dma_conditions(...)` declares. A hand-written test is labelled in Allure and
    journaled like a plan scenario."""
    if "planned" in request.fixturenames:
        found: PlannedScenario = request.getfixturevalue("planned")
        return found
    planned = _marker_scenario(request, lab.config)
    request.node.stash[HANDWRITTEN] = planned
    request.node.stash[STARTED] = utc_now()
    label(planned, title=f"{request.node.name} ({planned.id})")
    return planned


@pytest.fixture
def expected(planned_scenario: PlannedScenario) -> Expectation:
    """The oracle's expectation for this test's scenario (`harness expect` for its
    conditions): DEVPKEY value, blocked while locked, started after unlock, each with its
    evidence level (documented, inferred, unverified)."""
    return expect(planned_scenario.scenario.oracle_conditions())


@pytest.fixture
def dut(planned_scenario: PlannedScenario, dut_pool: DutPool) -> DutKit:
    """The kit of the DUT this test runs on: its Windows host, strategy, packages, switches."""
    return dut_pool.get(planned_scenario.scenario.dut, planned_scenario.plan.timeouts)


@pytest.fixture
def scenario_runner(
    request: pytest.FixtureRequest,
    planned_scenario: PlannedScenario,
    dut: DutKit,
    dut_pool: DutPool,
    lab: LabSession,
) -> ScenarioRunner:
    """The scenario flow on this test's DUT (prepare, plug and observe, teardown), with
    Allure steps, live progress and the run's deadline."""
    progress = dut_pool.progress_for(dut.name)
    progress.start_scenario(planned_scenario.id, planned_scenario.plan.timeouts.scenario_s)
    steps = AllureSteps(progress, lab.redactor.redact)
    run_end = run_deadline(request.config)
    if run_end is not None and run_end.expired:
        pytest.skip(f"the run's deadline (timeouts.run_s) passed before {planned_scenario.id}")
    return ScenarioRunner(dut, planned_scenario.plan, steps, run_deadline=run_end)


@dataclass
class _Prepared:
    scenario: Scenario
    prepared: Prepared
    deadline: Deadline


@pytest.fixture
def _prepared(planned_scenario: PlannedScenario, scenario_runner: ScenarioRunner) -> _Prepared:
    """The scenario's driver package installed and its conditions brought about."""
    s = planned_scenario.scenario
    dl = scenario_runner.deadline(s)
    return _Prepared(s, scenario_runner.prepare(s, dl), dl)


@pytest.fixture
def scenario(_prepared: _Prepared) -> Scenario:
    """The scenario, with its driver package installed and the DUT in its conditions."""
    return _prepared.scenario


@pytest.fixture
def driver_package(_prepared: _Prepared) -> ActivePackage:
    """The scenario's driver package as installed (published name, version, signer, hashes)."""
    return _prepared.prepared.active


@pytest.fixture
def switch(planned_scenario: PlannedScenario, dut: DutKit) -> Any:
    """The hot-plug switch wired to the scenario's port."""
    port = dut.config.ports[planned_scenario.scenario.port_name]
    return dut.switch(port.switch)


@pytest.fixture
def plugged_device(
    _prepared: _Prepared, scenario_runner: ScenarioRunner
) -> Iterator[PlugObservations]:
    """The device unplugged, the session put in the scenario's state, the device plugged and
    observed (at plug, after unlock); teardown unplugs and unlocks."""
    try:
        yield scenario_runner.plug_and_observe(
            _prepared.scenario, _prepared.deadline, _prepared.prepared.boot
        )
    finally:
        scenario_runner.teardown(_prepared.scenario)
