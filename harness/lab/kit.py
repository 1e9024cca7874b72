"""`DutKit`: everything the scenarios of one DUT need, opened once per DUT and closed at the end.

The kit holds the DUT's `WindowsHost`, its session control, its DUT strategy, the driver
packages installed on it, and the hot-plug switches of its ports. `open_kit` builds it from the
lab config and a `LabConnector`; given a `StepSink` (the pytest plugin's Allure steps), the host,
the switches, the keyboard and the session control report their `@step` calls to it.

>>> kit = open_kit(lab, connector, "tb-01", plan.timeouts)          # doctest: +SKIP
>>> kit.packages.ensure("nvme-inf2", deadline).published_name         # doctest: +SKIP
'oem3.inf'
>>> kit.close(deadline)                                              # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from harness.config.lab import Lab
from harness.config.lab_models import Dut
from harness.config.plan import Timeouts
from harness.errors import ConfigError, HarnessError, InfrastructureError
from harness.instruments.base import HotPlugSwitch, Keyboard
from harness.lab.connect import LabConnector
from harness.lab.packages import InstalledPackage, PackageInstaller
from harness.lab.session_control import LabSessionControl, SessionControl
from harness.lab.strategy import DutStrategy
from harness.remote.deadline import Deadline
from harness.remote.transcript import Redactor, Transcript
from harness.steps import Stepping, StepSink
from harness.windows.host import WindowsHost
from harness.windows.ops import OperationCatalog


def _report_steps(obj: object, sink: StepSink | None, label: str) -> None:
    """Give `obj` the step sink if it reports steps (test doubles may not)."""
    if sink is not None and isinstance(obj, Stepping):
        obj.report_steps(sink, label)


@dataclass(frozen=True)
class ActivePackage:
    """The package a scenario runs with, and the driver binaries Verifier must target."""

    installed: InstalledPackage
    drivers: tuple[str, ...]


class DriverPackages:
    """The lab's driver packages on one DUT, installed once each by the `PackageInstaller`
    (which removes a package for the same device first: two side by side would mix their
    service values)."""

    def __init__(self, lab: Lab, installer: PackageInstaller) -> None:
        self.lab = lab
        self.installer = installer

    def ensure(self, name: str, deadline: Deadline) -> ActivePackage:
        cfg = self.lab.driver_packages[name]
        inf = self.lab.resolve_path(cfg.path)
        certs = [self.lab.resolve_path(c).read_bytes() for c in cfg.test_certificates]
        installed = self.installer.install(
            name, inf, cfg.expected_signer, deadline, test_certificates=certs
        )
        return ActivePackage(installed, installed.drivers)

    def drivers(self) -> tuple[str, ...]:
        """The driver binaries of every package installed now."""
        return tuple(d for p in self.installer.installed.values() for d in p.drivers)

    def remove_all(self, deadline: Deadline) -> None:
        self.installer.uninstall_all(deadline)


@dataclass
class DutKit:
    name: str
    lab: Lab
    config: Dut
    host: WindowsHost
    session: SessionControl
    strategy: DutStrategy
    packages: DriverPackages
    transcript: Transcript
    timeouts: Timeouts
    time_scale: float = 1.0
    _switches: dict[str, HotPlugSwitch] = field(default_factory=dict)
    _opened: list[Any] = field(default_factory=list)
    _open_switch: Callable[[str], HotPlugSwitch] | None = None

    def switch(self, name: str) -> HotPlugSwitch:
        if name not in self._switches:
            if self._open_switch is None:
                raise ConfigError(f"{self.name}: no way to open switch {name}")
            self._switches[name] = self._open_switch(name)
        return self._switches[name]

    def close(self, deadline: Deadline | None = None) -> list[str]:
        """Uninstall the run's packages and close the instruments; the problems, if any."""
        problems: list[str] = []
        dl = deadline or Deadline.after(300, f"closing {self.name}")
        try:
            self.packages.remove_all(dl)
        except HarnessError as exc:
            problems.append(f"uninstalling packages: {exc}")
        for inst in [*self._switches.values(), *self._opened]:
            try:
                inst.close()
            except (HarnessError, OSError) as exc:
                problems.append(f"closing {inst!r}: {exc}")
        try:
            self.host.shell.close()
        except (HarnessError, OSError) as exc:
            problems.append(f"closing the shell: {exc}")
        return problems


def open_kit(
    lab: Lab,
    connector: LabConnector,
    name: str,
    timeouts: Timeouts,
    *,
    steps: StepSink | None = None,
    redactor: Redactor | None = None,
) -> DutKit:
    """Connect to DUT `name` and assemble its kit (no change is made on the DUT)."""
    config = lab.duts[name]
    transcript = Transcript(redactor or Redactor())
    shell = connector.shell(name, transcript=transcript)
    host = WindowsHost(
        shell,
        name=name,
        catalog=OperationCatalog(),
        default_timeout_s=timeouts.remote_call_s,
    )
    _report_steps(host, steps, name)
    opened: list[Any] = []
    sc = config.session_control
    keyboard: Keyboard | None = None
    if sc.unlock == "hid-keyboard" and sc.keyboard:
        keyboard = connector.keyboard(sc.keyboard)
        opened.append(keyboard)
    user, password = connector.credentials(name)
    host.add_secret(password)
    _report_steps(keyboard, steps, f"{name} keyboard")
    session = LabSessionControl(
        host,
        method=sc.unlock,
        keyboard=keyboard,
        username=sc.autologon_user or user,
        password=password,
    )
    _report_steps(session, steps, f"{name} session")
    strategy = DutStrategy(host, name, config, reboot_s=timeouts.reboot_s, step_s=timeouts.step_s)
    installer = PackageInstaller(host, step_s=timeouts.step_s)
    virtual = lab.virtual
    scale = virtual.time_scale if virtual is not None and lab.is_virtual(name) else 1.0

    def open_switch(switch_name: str) -> HotPlugSwitch:
        try:
            switch = connector.switch(switch_name)
        except OSError as exc:
            raise InfrastructureError(f"switch {switch_name}: {exc}") from exc
        _report_steps(switch, steps, switch_name)
        return switch

    return DutKit(
        name=name,
        lab=lab,
        config=config,
        host=host,
        session=session,
        strategy=strategy,
        timeouts=timeouts,
        packages=DriverPackages(lab, installer),
        transcript=transcript,
        time_scale=scale,
        _opened=opened,
        _open_switch=open_switch,
    )
