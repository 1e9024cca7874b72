"""Test plans: schema, defaults, exclusions, file/line errors."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.config.plan import DEFAULT_CHECKS, load_plan
from harness.domain.conditions import DmaGuardPolicy, OnOff, PortKind, SessionState
from harness.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = sorted((ROOT / "testplans").glob("*.yaml"))

PLAN = """\
name: p
purpose: manual
duts:
  names: [tb-01]
devices: [nvme-tb]
driver_packages: [nvme-inf2]
matrix:
  dmaguard: [absent, 1]
  session: [locked, unlocked]
exclude:
  - dmaguard: 1
    session: locked
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "plan.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def plan_error(tmp_path: Path, text: str) -> str:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_plan(path)
    return str(info.value).replace(str(path), "plan.yaml")


@pytest.mark.parametrize("path", SHIPPED, ids=[p.name for p in SHIPPED])
def test_shipped_plans_load(path: Path) -> None:
    plan = load_plan(path)
    assert plan.name == path.stem


def test_shipped_plan_set() -> None:
    assert {p.stem for p in SHIPPED} >= {"smoke", "nightly", "tb_release_qualification"}
    purposes = {p.stem: load_plan(p).purpose for p in SHIPPED}
    assert purposes["smoke"] == "manual"
    assert purposes["nightly"] == "nightly"
    assert purposes["tb_release_qualification"] == "qualification"


def test_defaults(tmp_path: Path) -> None:
    plan = load_plan(write(tmp_path, PLAN))
    m = plan.matrix
    assert m.kdp == [OnOff.ON]
    assert m.dmaguard == [DmaGuardPolicy.ABSENT, DmaGuardPolicy.AFTER_LOGIN]
    assert m.verifier_dma == [OnOff.OFF]
    assert m.test_signing == [OnOff.OFF]
    assert m.session == [SessionState.LOCKED, SessionState.UNLOCKED]
    assert m.port == [PortKind.EXTERNAL]
    assert tuple(plan.checks) == DEFAULT_CHECKS
    assert "driver_signature" not in plan.checks
    assert plan.timeouts.scenario_s == 1800 and plan.timeouts.remote_call_s == 120
    assert plan.retries.infrastructure == 2
    assert plan.exclusions() == [{"dmaguard": {"1"}, "session": {"locked"}}]


def test_unknown_key(tmp_path: Path) -> None:
    text = PLAN.replace(
        "  session: [locked, unlocked]\n", "  session: [locked, unlocked]\n  sesion: [x]\n"
    )
    assert plan_error(tmp_path, text) == "plan.yaml:10: matrix: unknown key 'sesion'"


def test_wrong_enum_in_list(tmp_path: Path) -> None:
    msg = plan_error(tmp_path, PLAN.replace("[locked, unlocked]", "[locked, asleep]"))
    assert msg.startswith("plan.yaml:9: matrix.session[1]: ")
    assert "'asleep'" in msg


def test_on_off_are_strings_not_bools(tmp_path: Path) -> None:
    # `off` is the string "off", not False; it is not in the default kdp list ([on])
    assert plan_error(tmp_path, PLAN + "  - kdp: off\n") == (
        "plan.yaml:13: exclude[1].kdp: value 'off' is not in the plan's kdp list (on)"
    )
    text = PLAN.replace("matrix:\n", "matrix:\n  kdp: [on, off]\n") + "  - kdp: off\n"
    plan = load_plan(write(tmp_path, text))
    assert plan.matrix.kdp == [OnOff.ON, OnOff.OFF]
    assert plan.exclusions()[1] == {"kdp": {"off"}}


def test_duplicates_and_empty_lists(tmp_path: Path) -> None:
    msg = plan_error(tmp_path, PLAN.replace("[locked, unlocked]", "[locked, locked]"))
    assert msg.startswith("plan.yaml:9: matrix.session: duplicate value 'locked'")
    msg = plan_error(tmp_path, PLAN.replace("[locked, unlocked]", "[]"))
    assert msg.startswith("plan.yaml:9: matrix.session: List should have at least 1 item")


def test_exclusion_key_and_value_must_be_in_matrix(tmp_path: Path) -> None:
    assert plan_error(tmp_path, PLAN + "  - verifier: on\n") == (
        "plan.yaml:13: exclude[1].verifier: unknown exclusion key 'verifier' (one of: kdp, "
        "dmaguard, verifier_dma, test_signing, session, port, dut, device, driver_package)"
    )
    assert plan_error(tmp_path, PLAN + "  - dmaguard: 2\n") == (
        "plan.yaml:13: exclude[1].dmaguard: value '2' is not in the plan's dmaguard list (1, absent)"
    )
    assert plan_error(tmp_path, PLAN + "  - device: other\n").startswith(
        "plan.yaml:13: exclude[1].device: value 'other' is not in the plan's device list"
    )


def test_dut_selection_needs_something(tmp_path: Path) -> None:
    msg = plan_error(tmp_path, PLAN.replace("  names: [tb-01]\n", "  {}\n"))
    assert msg.startswith("plan.yaml:3: duts: give 'names', 'capabilities', or both")


def test_timeouts_must_nest(tmp_path: Path) -> None:
    msg = plan_error(tmp_path, PLAN + "timeouts:\n  step_s: 5000\n")
    assert msg == "plan.yaml:13: timeouts: step_s must not exceed scenario_s"
    msg = plan_error(tmp_path, PLAN + "timeouts:\n  plug_s: -1\n")
    assert msg.startswith("plan.yaml:14: timeouts.plug_s: Input should be greater than 0")


def test_retries_bounds_and_checks(tmp_path: Path) -> None:
    assert plan_error(tmp_path, PLAN + "retries:\n  infrastructure: 9\n").startswith(
        "plan.yaml:14: retries.infrastructure: Input should be less than or equal to 5"
    )
    assert plan_error(tmp_path, PLAN + "checks: [devpkey, telepathy]\n").startswith(
        "plan.yaml:13: checks[1]: Input should be"
    )


def test_bad_purpose_and_literal_secret(tmp_path: Path) -> None:
    assert plan_error(tmp_path, PLAN.replace("purpose: manual", "purpose: weekly")).startswith(
        "plan.yaml:2: purpose: Input should be 'nightly', 'qualification' or 'manual', got 'weekly'"
    )
    msg = plan_error(tmp_path, PLAN + "token: abc-123\n")
    assert msg.startswith("plan.yaml:13: token: a literal secret is not allowed")
    assert "abc-123" not in msg


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.one_of(
        st.text(max_size=200),
        st.lists(
            st.sampled_from(
                [*PLAN.splitlines(), "  - 3", "matrix: 7", "exclude: {a: 1}", "x: [", "&a [*a]"]
            ),
            max_size=14,
        ).map("\n".join),
    )
)
def test_fuzz_plan_only_config_errors(tmp_path: Path, text: str) -> None:
    path = tmp_path / "fuzz.yaml"
    path.write_text(text, encoding="utf-8")
    with contextlib.suppress(ConfigError):
        load_plan(path)
