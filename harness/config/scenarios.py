"""Plan expansion: `expand(plan, lab) -> list[Scenario]`, a pure function of its inputs.

Each DUT selected by the plan contributes, for each of its ports whose kind is in the plan's
port list and whose wired device is in the plan's devices, one scenario per driver package and
per combination of the matrix values that apply to it, minus the exclusions. Not applicable:
a KDP value other than the declared one on a DUT without firmware control; `locked` on a DUT
that cannot lock or unlock; `no-user` on a DUT that cannot sign in unattended.

Scenario ids are deterministic and unique by construction (a port wires one device, so the
device is implied by DUT and port; a package name is prefixed to the INF tag only when two of
the plan's packages declare the same directives)::

    {dut}.{build tag}.{inf tag}.{port}.dv-{on|off}.kdp-{on|off}.guard{0|1|2|x}.{session}[.ts-on]
    tb-01.w11-22631.inf2.external.dv-off.kdp-on.guard1.locked

>>> from harness.config.lab import load_lab  # doctest: +SKIP
>>> from harness.config.plan import load_plan  # doctest: +SKIP
>>> scenarios = expand(load_plan("testplans/smoke.yaml"), load_lab("lab_config/virtual.yaml"))  # doctest: +SKIP
"""

from __future__ import annotations

import fnmatch
import itertools
import json
from collections import Counter
from dataclasses import dataclass, replace
from typing import Any

from harness.config.lab import Lab
from harness.config.plan import Plan
from harness.domain.builds import short_tag
from harness.domain.conditions import (
    Conditions,
    DeviceKey,
    DmaGuardPolicy,
    InfValue,
    OnOff,
    PortKind,
    SessionState,
)
from harness.domain.inf import InfInfo
from harness.errors import HarnessBug

_INF_VALUES = {0: InfValue.V0, 1: InfValue.V1, 2: InfValue.V2, 3: InfValue.V3}
_DEVICE_KEYS = {0: DeviceKey.V0, 1: DeviceKey.V1}


@dataclass(frozen=True)
class Scenario:
    """One plug event to run: where, with what, under which conditions."""

    id: str
    dut: str
    build: int
    device: str
    driver_package: str
    port_name: str
    port: PortKind
    kdp: OnOff
    dmaguard: DmaGuardPolicy
    verifier_dma: OnOff
    test_signing: OnOff
    session: SessionState
    #: From the package's INF: one value per driver of the device's stack (function first).
    inf: tuple[InfValue, ...]
    device_remapping_supported: DeviceKey
    device_remapping_flags: DeviceKey
    graphics: bool
    checks: tuple[str, ...]
    #: The DUTs that may run it: its pool's selected DUTs (just `dut` outside a pool). `dut`
    #: is the pool's first DUT until the scheduler assigns one (`harness.lab.schedule`).
    pool: tuple[str, ...] = ()

    @property
    def eligible(self) -> tuple[str, ...]:
        return self.pool or (self.dut,)

    def oracle_conditions(self) -> Conditions:
        return Conditions(
            build=self.build,
            inf=self.inf,
            device_remapping_supported=self.device_remapping_supported,
            device_remapping_flags=self.device_remapping_flags,
            graphics=self.graphics,
            port=self.port,
            verifier_dma=bool(self.verifier_dma),
            kdp=bool(self.kdp),
            dmaguard=self.dmaguard,
            session=self.session,
        )

    @property
    def report_feature(self) -> str:
        """The report's grouping of the scenario (Allure `feature`): its boot-time conditions."""
        return (
            f"kdp-{self.kdp.value} dmaguard-{self.dmaguard.value} "
            f"verifier-{self.verifier_dma.value} testsigning-{self.test_signing.value}"
        )

    def report_parameters(self) -> list[tuple[str, str]]:
        """The report's parameters of the scenario: each condition (a string as it is, any
        other value as JSON), then the build. The pytest plugin records them and a result
        rebuilt from the journal (report/journal_allure.py) repeats them: one definition."""
        params = [
            (key, value if isinstance(value, str) else json.dumps(value))
            for key, value in self.conditions_json().items()
        ]
        return [*params, ("build", str(self.build))]

    def conditions_json(self) -> dict[str, Any]:
        return {
            "kdp": self.kdp.value,
            "dmaguard": self.dmaguard.value,
            "verifier_dma": self.verifier_dma.value,
            "test_signing": self.test_signing.value,
            "session": self.session.value,
            "port": self.port.value,
            "driver_package": self.driver_package,
            "device": self.device,
            "inf": [v.value for v in self.inf],
            "device_remapping_supported": self.device_remapping_supported.value,
            "device_remapping_flags": self.device_remapping_flags.value,
            "graphics": self.graphics,
        }


@dataclass(frozen=True)
class _Stack:
    """What a driver package declares for one device."""

    inf: tuple[InfValue, ...]
    supported: DeviceKey
    flags: DeviceKey
    graphics: bool

    @property
    def tag(self) -> str:
        tag = "inf" + "-".join("n" if v is InfValue.ABSENT else v.value for v in self.inf)
        if self.supported is not DeviceKey.ABSENT or self.flags is not DeviceKey.ABSENT:
            tag += "-dev" + ("n" if self.supported is DeviceKey.ABSENT else self.supported.value)
            if self.flags is not DeviceKey.ABSENT:
                tag += "f" + self.flags.value
        return tag


class _Stacks:
    """Reads each package's INF once per expansion and derives per-device stacks."""

    def __init__(self, lab: Lab) -> None:
        self.lab = lab
        self.infs: dict[str, InfInfo] = {}
        self.stacks: dict[tuple[str, str], _Stack] = {}

    def get(self, package: str, device: str) -> _Stack:
        key = (package, device)
        if key not in self.stacks:
            self.stacks[key] = self._derive(package, device)
        return self.stacks[key]

    def _derive(self, package: str, device: str) -> _Stack:
        lab = self.lab
        if package not in self.infs:
            self.infs[package] = lab.read_package(package)
        info = self.infs[package]
        pattern = lab.devices[device].hardware_id
        pkg_key = ("driver_packages", package, "path")
        model = info.model_for(pattern)
        if model is None:
            raise lab.error(
                f"driver package '{package}' has no model matching device '{device}' "
                f"(hardware_id {pattern})",
                ("devices", device, "hardware_id"),
            )
        if not model.services:
            raise lab.error(
                f"driver package '{package}': the model for device '{device}' installs no service",
                pkg_key,
            )
        values = []
        for service in model.services:
            raw = service.dma_remapping_compatible
            if raw is not None and raw not in _INF_VALUES:
                raise lab.error(
                    f"driver package '{package}': service {service.name} has "
                    f"DmaRemappingCompatible {raw}, not 0-3",
                    pkg_key,
                )
            values.append(InfValue.ABSENT if raw is None else _INF_VALUES[raw])
        keys = []
        for what, raw in (
            ("RemappingSupported", model.dma_management.remapping_supported),
            ("RemappingFlags", model.dma_management.remapping_flags),
        ):
            if raw is not None and raw not in _DEVICE_KEYS:
                raise lab.error(f"driver package '{package}': {what} {raw} is not 0 or 1", pkg_key)
            keys.append(DeviceKey.ABSENT if raw is None else _DEVICE_KEYS[raw])
        return _Stack(tuple(values), keys[0], keys[1], info.graphics)


def _check_references(plan: Plan, lab: Lab) -> None:
    for i, device in enumerate(plan.devices):
        if device not in lab.devices:
            raise plan.error(f"unknown device '{device}' (not in {lab.path})", ("devices", i))
        if "dma_probe" in plan.checks and lab.devices[device].dma_probe is None:
            raise plan.error(
                f"device '{device}' has no dma_probe in {lab.path}, but checks include dma_probe",
                ("devices", i),
            )
    for i, package in enumerate(plan.driver_packages):
        if package not in lab.driver_packages:
            raise plan.error(
                f"unknown driver package '{package}' (not in {lab.path})", ("driver_packages", i)
            )
    for i, entry in enumerate(plan.exclusions()):
        pools = {lab.pool_of(d) for d in lab.duts}
        for name in sorted(entry.get("dut", ())):
            if name not in lab.duts and name not in pools:
                raise plan.error(f"unknown DUT '{name}' (not in {lab.path})", ("exclude", i, "dut"))


def _select_duts(plan: Plan, lab: Lab) -> list[str]:
    sel = plan.duts
    wanted = frozenset(sel.capabilities or ())
    if sel.names is not None:
        for i, name in enumerate(sel.names):
            if name not in lab.duts:
                raise plan.error(f"unknown DUT '{name}' (not in {lab.path})", ("duts", "names", i))
            missing = wanted - lab.capabilities(name)
            if missing:
                raise plan.error(
                    f"DUT '{name}' lacks the required capabilities {', '.join(sorted(missing))}",
                    ("duts", "names", i),
                )
        return list(sel.names)
    chosen = [name for name in lab.duts if wanted <= lab.capabilities(name)]
    if not chosen:
        raise plan.error(
            f"no DUT in {lab.path} has all of the capabilities {', '.join(sorted(wanted))}",
            ("duts", "capabilities"),
        )
    return chosen


def _sessions(plan: Plan, lab: Lab, dut: str) -> list[SessionState]:
    control = lab.duts[dut].session_control
    out = []
    for session in plan.matrix.session:
        if session is SessionState.LOCKED and (control.lock == "none" or control.unlock == "none"):
            continue
        if session is SessionState.NO_USER and control.unlock == "none":
            continue
        out.append(session)
    return out


def _pools(lab: Lab, duts: list[str]) -> dict[str, list[str]]:
    """Selected DUTs by pool name, in lab order; a DUT outside any pool is its own pool."""
    pools: dict[str, list[str]] = {}
    for name in duts:
        pools.setdefault(lab.pool_of(name), []).append(name)
    return pools


#: The most scenarios a plan may expand to (before `exclude`): at a few minutes each, more is
#: months of lab time, and building them all would exhaust the controller's memory.
MAX_SCENARIOS = 50_000


def _check_size(plan: Plan, lab: Lab) -> None:
    """Refuse a plan whose matrix is larger than MAX_SCENARIOS, counted from its dimensions
    (pools x wired ports x packages x matrix values) before any scenario is built."""
    m = plan.matrix
    per_combo = len(m.dmaguard) * len(m.verifier_dma) * len(m.test_signing) * len(m.session)
    total = 0
    for members in _pools(lab, _select_duts(plan, lab)).values():
        dut = lab.duts[members[0]]
        ports = sum(1 for p in dut.ports.values() if p.kind in m.port and p.device in plan.devices)
        total += ports * len(plan.driver_packages) * len(m.kdp) * per_combo
    if total > MAX_SCENARIOS:
        raise plan.error(
            f"the plan expands to up to {total} scenarios on {lab.path}, more than the limit of "
            f"{MAX_SCENARIOS}: split it into smaller plans or narrow the matrix"
        )


def expand(plan: Plan, lab: Lab) -> list[Scenario]:
    """All scenarios of `plan` on `lab`, in a deterministic order (pool, port, package, matrix).

    DUTs of one pool (`pool:` in the lab) share one set of scenarios, named by the pool and
    listing its selected DUTs in `Scenario.pool`; the scheduler picks the DUT of each.
    """
    _check_references(plan, lab)
    _check_size(plan, lab)
    stacks = _Stacks(lab)
    exclusions = plan.exclusions()
    by_name = plan.duts.names is not None
    m = plan.matrix
    out: list[Scenario] = []
    for pool_name, members in _pools(lab, _select_duts(plan, lab)).items():
        dut_name = members[0]
        pooled = tuple(members) if lab.duts[dut_name].pool is not None else ()
        dut = lab.duts[dut_name]
        build_tag = short_tag(dut.os_build)
        ports = [
            (name, p)
            for name, p in dut.ports.items()
            if p.kind in m.port and p.device in plan.devices
        ]
        per_kind = Counter(p.kind for _, p in ports)
        kdps = [v for v in m.kdp if dut.kdp.firmware_control != "none" or v is dut.kdp.declared]
        combos = list(
            itertools.product(
                kdps, m.dmaguard, m.verifier_dma, m.test_signing, _sessions(plan, lab, dut_name)
            )
        )
        before = len(out)
        for port_name, port in ports:
            port_seg = port.kind.value
            if per_kind[port.kind] > 1:
                port_seg += f"-{port_name}"
            # The port wires exactly one device, so (DUT, port) names the device; the package
            # name joins the id only where two packages declare the same directives.
            tags = {pkg: stacks.get(pkg, port.device).tag for pkg in plan.driver_packages}
            shared = {t for t, n in Counter(tags.values()).items() if n > 1}
            for package in plan.driver_packages:
                stack = stacks.get(package, port.device)
                inf_tag = f"{package}-{stack.tag}" if stack.tag in shared else stack.tag
                fixed = {
                    "dut": pool_name,
                    "device": port.device,
                    "driver_package": package,
                    "port": port.kind.value,
                }
                for kdp, guard, dv, ts, session in combos:
                    values = {
                        **fixed,
                        "kdp": kdp.value,
                        "dmaguard": guard.value,
                        "verifier_dma": dv.value,
                        "test_signing": ts.value,
                        "session": session.value,
                    }
                    if any(all(values[k] in vs for k, vs in e.items()) for e in exclusions):
                        continue
                    guard_tag = "x" if guard is DmaGuardPolicy.ABSENT else guard.value
                    sid = (
                        f"{pool_name}.{build_tag}.{inf_tag}.{port_seg}.dv-{dv.value}"
                        f".kdp-{kdp.value}.guard{guard_tag}.{session.value}"
                    )
                    if ts is OnOff.ON:
                        sid += ".ts-on"
                    out.append(
                        Scenario(
                            id=sid,
                            dut=dut_name,
                            build=dut.os_build,
                            device=port.device,
                            driver_package=package,
                            port_name=port_name,
                            port=port.kind,
                            kdp=kdp,
                            dmaguard=guard,
                            verifier_dma=dv,
                            test_signing=ts,
                            session=session,
                            inf=stack.inf,
                            device_remapping_supported=stack.supported,
                            device_remapping_flags=stack.flags,
                            graphics=stack.graphics,
                            checks=tuple(plan.checks),
                            pool=pooled,
                        )
                    )
        if by_name and len(out) == before:
            i = plan.duts.names.index(dut_name) if plan.duts.names else 0
            raise plan.error(
                f"DUT '{dut_name}' gets no scenario: no port of kind "
                f"{'/'.join(p.value for p in m.port)} wired to the plan's devices, an "
                "inapplicable kdp value (no firmware control), or everything excluded",
                ("duts", "names", i),
            )
    if not out:
        raise plan.error(f"the plan expands to no scenario on {lab.path}")
    _assert_unique(out)
    return out


def select(
    scenarios: list[Scenario], *, duts: list[str] | None = None, pattern: str | None = None
) -> list[Scenario]:
    """The scenarios on `duts` (all when None) whose id matches the glob `pattern`.

    A pooled scenario stays when one of its pool's DUTs is in `duts`, restricted to those.
    The glob is fnmatch-style and case-sensitive, e.g. `tb-01.*.locked`. Order is kept.
    """
    chosen = []
    for s in scenarios:
        if duts is None:
            chosen.append(s)
            continue
        members = tuple(d for d in s.eligible if d in duts)
        if members:
            chosen.append(replace(s, dut=members[0], pool=members if s.pool else ()))
    if pattern is not None:
        chosen = [s for s in chosen if fnmatch.fnmatchcase(s.id, pattern)]
    return chosen


def _assert_unique(scenarios: list[Scenario]) -> None:
    counts = Counter(s.id for s in scenarios)
    dupes = [sid for sid, n in counts.items() if n > 1]
    if dupes:
        raise HarnessBug(f"scenario ids collide: {', '.join(dupes[:5])}")


__all__ = ["Scenario", "expand", "select"]
