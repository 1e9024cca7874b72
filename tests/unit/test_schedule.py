"""The reboot-minimal schedule (harness/lab/schedule.py): pure code over the shipped plans/labs."""

from __future__ import annotations

import itertools
import random
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.config.lab import Lab, load_lab
from harness.config.plan import load_plan
from harness.config.scenarios import Scenario, expand, select
from harness.domain.conditions import DmaGuardPolicy, OnOff, SessionState
from harness.errors import ConfigError
from harness.lab.boot_state import BootState
from harness.lab.schedule import (
    count_reboots,
    package_drivers,
    reboot_lower_bound,
    schedule,
)

ROOT = Path(__file__).resolve().parents[2]
VIRTUAL = ROOT / "lab_config" / "virtual.yaml"
POOL = ROOT / "lab_config" / "virtual_pool.yaml"
PLANS = sorted((ROOT / "testplans").glob("*.yaml"))

A = BootState(OnOff.ON, DmaGuardPolicy.ABSENT, OnOff.OFF)
B = BootState(OnOff.ON, DmaGuardPolicy.AFTER_LOGIN, OnOff.OFF)
C = BootState(OnOff.OFF, DmaGuardPolicy.ABSENT, OnOff.ON, ("x.sys",))


@pytest.fixture(scope="module")
def virtual() -> Lab:
    return load_lab(VIRTUAL)


@pytest.fixture(scope="module")
def pool() -> Lab:
    return load_lab(POOL)


def _expand(plan: Path, lab: Lab) -> list[Scenario]:
    return expand(load_plan(plan), lab)


def test_counting_reboots() -> None:
    assert count_reboots([], A, A) == 0
    assert count_reboots([A, A], A, A) == 0
    assert count_reboots([B, B, A], A, A) == 2  # into B, back to A: A's run needs no reboot
    assert count_reboots([B, A, B], A, A) == 4
    assert count_reboots([A], B, B) == 2
    assert reboot_lower_bound([A, B, C, B], A, A) == 3
    assert reboot_lower_bound([A], A, A) == 0
    assert reboot_lower_bound([A], B, A) == 1  # end at the baseline A: A's group last
    assert reboot_lower_bound([B], B, A) == 1


@pytest.mark.parametrize(
    ("plan", "lab_file"),
    [(p, VIRTUAL) for p in PLANS]
    + [(p, POOL) for p in PLANS if p.stem != "smoke"],  # smoke names m2-01
    ids=lambda p: p.stem,
)
def test_shipped_plans_reboot_at_the_lower_bound(plan: Path, lab_file: Path) -> None:
    lab = load_lab(lab_file)
    scenarios = _expand(plan, lab)
    sched = schedule(scenarios, lab, package_drivers(lab, scenarios))
    assert sorted(s.id for s in sched.ordered()) == sorted(s.id for s in scenarios)
    for d in sched.duts:
        assert d.reboots == d.reboot_lower_bound
        assert d.reboots <= d.plan_order_reboots
        assert all(s.dut == d.dut for s in d.scenarios)


def test_nightly_plan_order_reboots_far_more(virtual: Lab) -> None:
    scenarios = _expand(ROOT / "testplans" / "nightly.yaml", virtual)
    sched = schedule(scenarios, virtual, package_drivers(virtual, scenarios))
    tb = sched.of("tb-01")
    assert tb is not None
    # 18 boot states on tb-01: 17 entered once plus the return to the baseline.
    assert (tb.reboots, tb.reboot_lower_bound) == (18, 18)
    assert tb.plan_order_reboots > 3 * tb.reboots


def test_order_inside_a_dut(virtual: Lab) -> None:
    scenarios = _expand(ROOT / "testplans" / "nightly.yaml", virtual)
    drivers = package_drivers(virtual, scenarios)
    sched = schedule(scenarios, virtual, drivers)
    for d in sched.duts:
        states = [BootState.planned(s, drivers) for s in d.scenarios]
        runs = [st for i, st in enumerate(states) if i == 0 or st != states[i - 1]]
        assert len(runs) == len(set(runs)), "a boot state's scenarios are not contiguous"
        base = BootState.planned_baseline(virtual.duts[d.dut].baseline)
        assert runs[0] == base  # the DUT starts at its baseline: no reboot for the first group
        # Inside a boot state: each package once, in one stretch.
        for _, part in itertools.groupby(d.scenarios, key=lambda s: BootState.planned(s, drivers)):
            packages = [s.driver_package for s in part]
            stretches = [p for i, p in enumerate(packages) if i == 0 or p != packages[i - 1]]
            assert len(stretches) == len(set(stretches))


def test_next_group_starts_with_the_installed_package(virtual: Lab) -> None:
    scenarios = _expand(ROOT / "testplans" / "nightly.yaml", virtual)
    drivers = package_drivers(virtual, scenarios)
    d = schedule(scenarios, virtual, drivers).duts[0]
    for prev, nxt in zip(d.scenarios, d.scenarios[1:], strict=False):
        if BootState.planned(prev, drivers) != BootState.planned(nxt, drivers):
            group = [
                s
                for s in d.scenarios
                if BootState.planned(s, drivers) == BootState.planned(nxt, drivers)
            ]
            if prev.driver_package in {s.driver_package for s in group}:
                assert nxt.driver_package == prev.driver_package


def test_session_order_follows_the_dut(virtual: Lab) -> None:
    """After a reboot the DUT is signed out: a package's first session state there is no-user."""
    scenarios = _expand(ROOT / "testplans" / "nightly.yaml", virtual)
    drivers = package_drivers(virtual, scenarios)
    d = schedule(scenarios, virtual, drivers).duts[0]
    first = d.scenarios[0]
    assert first.session is SessionState.NO_USER
    # Inside one package's stretch, each session state comes once (at most 2 changes).
    stretches = itertools.groupby(
        d.scenarios, key=lambda s: (BootState.planned(s, drivers), s.driver_package)
    )
    for _, part in stretches:
        sessions = [s.session for s in part]
        assert sum(a != b for a, b in itertools.pairwise(sessions)) <= 2


def test_pool_spreads_and_balances(pool: Lab) -> None:
    scenarios = _expand(ROOT / "testplans" / "nightly.yaml", pool)
    drivers = package_drivers(pool, scenarios)
    assert all(s.pool == ("tb-01", "tb-02", "tb-03", "tb-04") for s in scenarios)
    assert all(s.id.startswith("tb-pool.") for s in scenarios)
    four = schedule(scenarios, pool, drivers)
    assert [d.dut for d in four.duts] == ["tb-01", "tb-02", "tb-03", "tb-04"]
    assert Counter(s.id for s in four.ordered()) == Counter(s.id for s in scenarios)
    loads = [d.estimated_lab_s for d in four.duts]
    assert max(loads) <= 1.1 * (sum(loads) / len(loads))
    one = schedule(select(scenarios, duts=["tb-02"]), pool, drivers)
    assert [d.dut for d in one.duts] == ["tb-02"]
    assert one.totals()["estimated_wall_s"] / four.totals()["estimated_wall_s"] >= 3.6


def test_select_restricts_a_pool(pool: Lab) -> None:
    scenarios = _expand(ROOT / "testplans" / "nightly.yaml", pool)
    two = select(scenarios, duts=["tb-03", "tb-01"])
    assert len(two) == len(scenarios)
    assert {s.pool for s in two} == {("tb-01", "tb-03")}
    sched = schedule(two, pool, package_drivers(pool, two))
    assert {d.dut for d in sched.duts} == {"tb-01", "tb-03"}


def test_deterministic(pool: Lab) -> None:
    scenarios = _expand(ROOT / "testplans" / "nightly.yaml", pool)
    drivers = package_drivers(pool, scenarios)
    first = [(s.id, s.dut) for s in schedule(scenarios, pool, drivers).ordered()]
    again = [(s.id, s.dut) for s in schedule(list(scenarios), pool, drivers).ordered()]
    assert first == again


@settings(max_examples=40, deadline=None, derandomize=True)
@given(seed=st.integers(0, 2**32 - 1), keep=st.floats(0.02, 1.0))
def test_any_subset_in_any_order_reboots_at_the_lower_bound(seed: int, keep: float) -> None:
    lab = load_lab(VIRTUAL)
    scenarios = _expand(ROOT / "testplans" / "nightly.yaml", lab)
    rng = random.Random(seed)
    subset = [s for s in scenarios if rng.random() < keep] or scenarios[:1]
    rng.shuffle(subset)
    sched = schedule(subset, lab, package_drivers(lab, subset))
    assert Counter(s.id for s in sched.ordered()) == Counter(s.id for s in subset)
    for d in sched.duts:
        assert d.reboots == d.reboot_lower_bound


def test_cost_model_from_the_lab_file(tmp_path: Path) -> None:
    text = VIRTUAL.read_text(encoding="utf-8")
    (tmp_path / "packages").symlink_to(ROOT / "lab_config" / "packages")
    slow = tmp_path / "slow.yaml"
    slow.write_text(text + "\ncost_model:\n  reboot_s: 900\n", encoding="utf-8")
    fast_lab, slow_lab = load_lab(VIRTUAL), load_lab(slow)
    assert slow_lab.cost_model.reboot_s == 900
    plan = ROOT / "testplans" / "nightly.yaml"
    a = schedule(s := _expand(plan, fast_lab), fast_lab, package_drivers(fast_lab, s)).duts[0]
    b = schedule(s := _expand(plan, slow_lab), slow_lab, package_drivers(slow_lab, s)).duts[0]
    assert b.estimated_lab_s - a.estimated_lab_s == pytest.approx(a.reboots * (900 - 180))
    bad = tmp_path / "bad.yaml"
    bad.write_text(text + "\ncost_model:\n  reboot_s: -1\n", encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_lab(bad)
    assert err.value.line is not None and "reboot_s" in str(err.value)


def test_pool_members_must_match(tmp_path: Path) -> None:
    text = POOL.read_text(encoding="utf-8")
    (tmp_path / "packages").symlink_to(ROOT / "lab_config" / "packages")
    broken = tmp_path / "lab.yaml"
    # tb-03 on Windows 10: no longer interchangeable with tb-01.
    head, tail = text.split("  tb-03:", 1)
    tail = tail.replace("os_build: 22631", "os_build: 19045", 1)
    broken.write_text(head + "  tb-03:" + tail, encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_lab(broken)
    assert "tb-03" in str(err.value) and "tb-pool" in str(err.value)
    assert err.value.line is not None


def test_the_scheduler_and_the_strategy_share_one_boot_state(virtual: Lab) -> None:
    """A scenario's boot state for planning is the one the strategy brings the DUT to: the
    reboot estimate of `plan show` counts the differences the strategy acts on."""
    scenarios = expand(load_plan(ROOT / "testplans" / "nightly.yaml"), virtual)
    drivers = package_drivers(virtual, scenarios)
    for s in scenarios:
        planned = BootState.planned(s, drivers)
        required = BootState.from_scenario(s, drivers[s.driver_package])
        assert planned == required and hash(planned) == hash(required)
        assert planned.differences(required) == ()
    # Verifier DMA off: the package's drivers (which must not be targeted) make no other state.
    off = [s for s in scenarios if s.verifier_dma is OnOff.OFF]
    by_state = {BootState.from_scenario(s, drivers[s.driver_package]) for s in off}
    assert len(by_state) == len({(s.kdp, s.dmaguard, s.test_signing) for s in off})
