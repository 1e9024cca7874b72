"""The run order: which DUT runs each scenario, and in what order, so DUTs reboot least.

A pure function of the scenarios, the lab (baselines, cost model) and each driver package's
binaries. For each DUT:

- scenarios are grouped by boot state (`harness.lab.boot_state.BootState`: KDP, DMAGuard, Verifier
  DMA with its drivers, test signing); every group costs one reboot to enter, so the groups run
  one after the other. The DUT is assumed to start at its lab baseline (teardown leaves it
  there and checks it), so the baseline's group runs first and costs no reboot; the others
  follow nearest-first (fewest and cheapest setting changes from the previous group); the
  teardown reboots back to the baseline after the last one.
- inside a group, scenarios run by driver package (the one installed last first, then plan
  order), then by session state in the order that needs the fewest sign-ins, sign-outs and
  locks from where the DUT is, then port.

The reboot count of such an order is the lower bound for the DUT's scenarios: every boot state
other than the one the DUT starts in must be entered once, and the DUT must come back to its
baseline at the end (`reboot_lower_bound`).

Pools: a scenario whose `pool` lists several DUTs (`pool:` in the lab) runs on one of them.
Whole boot-state groups are dealt to the DUTs longest-first onto the least-loaded DUT by
estimated lab time; while the most loaded DUT could hand part of a group to the least loaded
one and finish earlier (counting the extra reboot and install that costs), the group is split.

>>> sched = schedule(scenarios, lab, drivers)                  # doctest: +SKIP
>>> [(d.dut, d.reboots, d.reboot_lower_bound) for d in sched.duts]  # doctest: +SKIP
[('tb-01', 18, 18), ('m2-01', 12, 12)]
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace

from harness.config.lab import Lab
from harness.config.lab_models import CostModel
from harness.config.scenarios import Scenario
from harness.domain.conditions import SessionState
from harness.lab.costs import (
    BootState,
    scenario_cost,
    scenario_end_session,
    session_cost,
    setting_cost,
)

__all__ = [
    "DutSchedule",
    "Schedule",
    "count_reboots",
    "package_drivers",
    "reboot_lower_bound",
    "schedule",
]

Drivers = Mapping[str, tuple[str, ...]]


@dataclass(frozen=True)
class DutSchedule:
    """One DUT's scenarios in run order, with its reboot counts and estimated lab time."""

    dut: str
    scenarios: tuple[Scenario, ...]
    reboots: int
    plan_order_reboots: int
    reboot_lower_bound: int
    estimated_lab_s: float

    def to_json(self) -> dict[str, object]:
        return {
            "schedule": [s.id for s in self.scenarios],
            "count": len(self.scenarios),
            "reboots": self.reboots,
            "plan_order_reboots": self.plan_order_reboots,
            "reboot_lower_bound": self.reboot_lower_bound,
            "estimated_lab_s": round(self.estimated_lab_s, 1),
        }


@dataclass(frozen=True)
class Schedule:
    duts: tuple[DutSchedule, ...]

    def ordered(self) -> list[Scenario]:
        """Every scenario, DUT by DUT, in run order (`Scenario.dut` is the assigned DUT)."""
        return [s for d in self.duts for s in d.scenarios]

    def of(self, dut: str) -> DutSchedule | None:
        return next((d for d in self.duts if d.dut == dut), None)

    def totals(self) -> dict[str, float]:
        return {
            "count": sum(len(d.scenarios) for d in self.duts),
            "reboots": sum(d.reboots for d in self.duts),
            "plan_order_reboots": sum(d.plan_order_reboots for d in self.duts),
            "reboot_lower_bound": sum(d.reboot_lower_bound for d in self.duts),
            "estimated_lab_s": round(sum(d.estimated_lab_s for d in self.duts), 1),
            # The DUTs run in parallel: the plan takes as long as its busiest DUT.
            "estimated_wall_s": round(max((d.estimated_lab_s for d in self.duts), default=0), 1),
        }


def package_drivers(lab: Lab, scenarios: Iterable[Scenario]) -> dict[str, tuple[str, ...]]:
    """The driver binaries of each package the scenarios use (reads each INF once)."""
    from harness.lab.packages import drivers_of

    names = dict.fromkeys(s.driver_package for s in scenarios)
    return {n: drivers_of(lab.resolve_path(lab.driver_packages[n].path)) for n in names}


# -- counting -------------------------------------------------------------------------------------
def count_reboots(states: Iterable[BootState], start: BootState, end: BootState) -> int:
    """Reboots to run scenarios with these boot states in this order, from `start`, ending at
    `end` (one per change of boot state, including the return to `end`)."""
    n, current = 0, start
    for state in [*states, end]:
        if state != current:
            n, current = n + 1, state
    return n


def reboot_lower_bound(states: Iterable[BootState], start: BootState, end: BootState) -> int:
    """The fewest reboots any order of these boot states needs from `start` back to `end`."""
    others = set(states) - {start}
    if not others:
        return 0 if start == end else 1
    return len(others) + (0 if end in others else 1)


# -- one DUT --------------------------------------------------------------------------------------
_SESSIONS = (SessionState.NO_USER, SessionState.LOCKED, SessionState.UNLOCKED)


def _session_order(
    present: set[SessionState], current: SessionState, costs: CostModel, ends_unlocked: bool
) -> tuple[SessionState, ...]:
    """The order of the present session states that costs least from `current`."""

    def cost(order: tuple[SessionState, ...]) -> tuple[float, tuple[int, ...]]:
        total, at = 0.0, current
        for s in order:
            total += session_cost(at, s, costs)
            at = SessionState.UNLOCKED if s is SessionState.LOCKED and ends_unlocked else s
        return total, tuple(_SESSIONS.index(s) for s in order)

    chosen = [s for s in _SESSIONS if s in present]
    return min(itertools.permutations(chosen), key=cost)


def _order_group(
    group: Sequence[Scenario],
    package: str | None,
    session: SessionState,
    plan_index: Mapping[str, int],
    costs: CostModel,
) -> tuple[list[Scenario], str | None, SessionState]:
    """Order one boot-state group: package (the installed one first), then session, then port."""
    by_package: dict[str, list[Scenario]] = {}
    for s in group:
        by_package.setdefault(s.driver_package, []).append(s)
    packages = sorted(by_package, key=lambda p: (p != package, plan_index[p], p))
    out: list[Scenario] = []
    for pkg in packages:
        scenarios = by_package[pkg]
        unlocks = any("after_unlock" in s.checks for s in scenarios)
        order = _session_order({s.session for s in scenarios}, session, costs, unlocks)
        rank = {state: i for i, state in enumerate(order)}
        scenarios.sort(key=lambda s: (rank[s.session], s.port_name, s.id))
        out += scenarios
        session = scenario_end_session(scenarios[-1])
        package = pkg
    return out, package, session


def _order_groups(
    groups: Mapping[BootState, Sequence[Scenario]],
    start: BootState,
    end: BootState,
    costs: CostModel,
) -> list[BootState]:
    """Start's group first, end's group last (if present and not the start), nearest-first."""
    left = set(groups)
    order: list[BootState] = []
    if start in left:
        order.append(start)
        left.discard(start)
    last = end if end in left else None
    left.discard(end)
    at = start
    while left:
        nxt = min(left, key=lambda b: (setting_cost(at, b, costs), len(at.differences(b)), b))
        order.append(nxt)
        left.discard(nxt)
        at = nxt
    if last is not None:
        order.append(last)
    return order


def _estimate(
    ordered: Sequence[Scenario],
    states: Sequence[BootState],
    start: BootState,
    end: BootState,
    costs: CostModel,
) -> float:
    """Lab seconds to run `ordered` from a DUT at `start` (no package, signed out) to teardown."""
    total, at, package, session = 0.0, start, None, SessionState.NO_USER
    for s, state in zip(ordered, states, strict=True):
        if state != at:
            total += setting_cost(at, state, costs) + costs.reboot_s
            at, session = state, SessionState.NO_USER
        if s.driver_package != package:
            total += costs.driver_install_s + (costs.driver_uninstall_s if package else 0.0)
            package = s.driver_package
        total += session_cost(session, s.session, costs) + scenario_cost(s, costs)
        session = scenario_end_session(s)
    if package is not None:
        total += costs.driver_uninstall_s
    if at != end:
        total += setting_cost(at, end, costs) + costs.reboot_s
    return total


def order_dut(
    dut: str,
    scenarios: Sequence[Scenario],
    lab: Lab,
    drivers: Drivers,
    plan_index: Mapping[str, int],
) -> DutSchedule:
    """One DUT's scenarios (already assigned to it, in plan order) in reboot-minimal order."""
    costs = lab.cost_model
    base = BootState.planned_baseline(lab.duts[dut].baseline)
    states = {s.id: BootState.planned(s, drivers) for s in scenarios}
    groups: dict[BootState, list[Scenario]] = {}
    for s in scenarios:
        groups.setdefault(states[s.id], []).append(s)
    ordered: list[Scenario] = []
    package: str | None = None
    session = SessionState.NO_USER
    for state in _order_groups(groups, base, base, costs):
        part, package, session = _order_group(groups[state], package, session, plan_index, costs)
        ordered += part
    in_order = [states[s.id] for s in ordered]
    return DutSchedule(
        dut=dut,
        scenarios=tuple(s if s.dut == dut else replace(s, dut=dut) for s in ordered),
        reboots=count_reboots(in_order, base, base),
        plan_order_reboots=count_reboots((states[s.id] for s in scenarios), base, base),
        reboot_lower_bound=reboot_lower_bound(in_order, base, base),
        estimated_lab_s=_estimate(ordered, in_order, base, base, costs),
    )


# -- pools ----------------------------------------------------------------------------------------
def _load(
    assigned: Sequence[tuple[BootState, Scenario]], base: BootState, costs: CostModel
) -> float:
    """Estimated lab time of a DUT's share: scenarios, one install per (boot state, package),
    one reboot per boot state other than the baseline."""
    total = sum(scenario_cost(s, costs) for _, s in assigned)
    installs = {(state, s.driver_package) for state, s in assigned}
    total += len(installs) * (costs.driver_install_s + costs.driver_uninstall_s)
    total += len({state for state, _ in assigned} - {base}) * costs.reboot_s
    return total


def _deal(
    scenarios: Sequence[Scenario], members: tuple[str, ...], lab: Lab, drivers: Drivers
) -> dict[str, list[Scenario]]:
    """Spread a pool's scenarios over its DUTs by estimated lab time (see the module doc)."""
    costs = lab.cost_model
    base = BootState.planned_baseline(lab.duts[members[0]].baseline)
    by_state: dict[BootState, list[Scenario]] = {}
    for s in scenarios:
        by_state.setdefault(BootState.planned(s, drivers), []).append(s)
    dealt: dict[str, list[tuple[BootState, Scenario]]] = {m: [] for m in members}

    def loads() -> dict[str, float]:
        return {m: _load(dealt[m], base, costs) for m in members}

    def order(load: dict[str, float]) -> list[str]:
        return sorted(members, key=lambda m: (load[m], members.index(m)))

    groups = sorted(
        by_state.items(), key=lambda kv: (-_load([(kv[0], s) for s in kv[1]], base, costs), kv[0])
    )
    for state, group in groups:
        dealt[order(loads())[0]] += [(state, s) for s in group]
    for _ in range(8 * len(members)):
        load = loads()
        idle, busy = order(load)[0], order(load)[-1]
        before = load[busy]
        states: dict[BootState, list[Scenario]] = {}
        for state, s in dealt[busy]:
            states.setdefault(state, []).append(s)
        splittable = [(st, g) for st, g in states.items() if len(g) > 1]
        if busy == idle or not splittable:
            break
        state, group = max(
            splittable, key=lambda kv: (_load([(kv[0], s) for s in kv[1]], base, costs), kv[0])
        )
        overhead = costs.driver_install_s + costs.driver_uninstall_s
        if state != base and all(st != state for st, _ in dealt[idle]):
            overhead += costs.reboot_s
        moved = _tail(group, (load[busy] - load[idle] - overhead) / 2, costs)
        if not moved:
            break
        ids = {s.id for s in moved}
        saved = dict(dealt)
        dealt[busy] = [(st, s) for st, s in dealt[busy] if s.id not in ids]
        dealt[idle] = dealt[idle] + [(state, s) for s in moved]
        after = loads()
        if max(after[busy], after[idle]) >= before:
            dealt.update(saved)
            break
    return {m: [s for _, s in dealt[m]] for m in members}


def _tail(group: Sequence[Scenario], want: float, costs: CostModel) -> list[Scenario]:
    """The last scenarios of a group (by package, then id) worth about `want` seconds."""
    if want <= 0:
        return []
    ordered = sorted(group, key=lambda s: (s.driver_package, s.session.value, s.id))
    moved: list[Scenario] = []
    total = 0.0
    for s in reversed(ordered[1:]):
        c = scenario_cost(s, costs)
        if total + c > want and moved:
            break
        moved.append(s)
        total += c
    moved.reverse()
    return moved


def schedule(scenarios: Sequence[Scenario], lab: Lab, drivers: Drivers) -> Schedule:
    """Assign pooled scenarios to DUTs and order every DUT's scenarios (see the module doc).

    `drivers`: each driver package's binaries, for Verifier's targets. The DUTs come out in
    the order they first appear in `scenarios`' pools."""
    plan_index: dict[str, int] = {}
    for s in scenarios:
        plan_index.setdefault(s.driver_package, len(plan_index))
    per_dut: dict[str, list[Scenario]] = {}
    by_pool: dict[tuple[str, ...], list[Scenario]] = {}
    for s in scenarios:
        by_pool.setdefault(s.eligible, []).append(s)
        for m in s.eligible:
            per_dut.setdefault(m, [])
    for members, pooled in by_pool.items():
        if len(members) == 1:
            per_dut[members[0]] += pooled
            continue
        for m, dealt in _deal(pooled, members, lab, drivers).items():
            per_dut[m] += dealt
    position = {s.id: i for i, s in enumerate(scenarios)}
    return Schedule(
        tuple(
            order_dut(dut, sorted(assigned, key=lambda s: position[s.id]), lab, drivers, plan_index)
            for dut, assigned in per_dut.items()
            if assigned
        )
    )
