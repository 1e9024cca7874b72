"""Quarantine rules and the baseline post-check's drift (pure parts of issue 7)."""

from __future__ import annotations

from harness.domain.conditions import DmaGuardPolicy, OnOff
from harness.lab.baseline import BaselineCheck, drift
from harness.lab.boot_state import BootState
from harness.lab.state import Knowledge, Setting
from harness.outcomes import Outcome
from harness.pytest_plugin.quarantine import Quarantine
from tests.unit.test_lab_strategy import DV_NVME, NO_VERIFIER, NVME, _state

BASE = BootState(OnOff.ON, DmaGuardPolicy.ABSENT, OnOff.OFF, (NVME,), OnOff.OFF)


def test_a_dut_error_quarantines_at_once() -> None:
    q = Quarantine(limit=3)
    reason = q.note("tb-01", Outcome.DUT_ERROR, "no return within 600 s", "s1")
    assert reason is not None and "s1" in reason and "no return" in reason
    assert q.reason("tb-01") == reason and q.reason("m2-01") is None
    assert q.note("tb-01", Outcome.DUT_ERROR, "again", "s2") is None  # reason kept


def test_infrastructure_errors_quarantine_only_in_a_row() -> None:
    q = Quarantine(limit=2)
    assert q.note("tb-01", Outcome.INFRASTRUCTURE_ERROR, "x", "s1") is None
    assert q.note("tb-01", Outcome.PASSED, "", "s2") is None  # resets the count
    assert q.note("tb-01", Outcome.INFRASTRUCTURE_ERROR, "x", "s3") is None
    assert q.note("tb-01", Outcome.NOT_RUN, "", "s4") is None  # neither counts nor resets
    assert q.note("tb-01", Outcome.INFRASTRUCTURE_ERROR, "switch", "s5") is not None
    assert q.note("m2-01", Outcome.FAILED, "product defect", "s6") is None  # a failure is data
    assert q.quarantined().keys() == {"tb-01"}


def test_an_unreachable_dut_is_quarantined_with_the_reason() -> None:
    q = Quarantine()
    assert "leased by" in q.unreachable("tb-01", "DUT tb-01 is leased by pid 7")


def test_no_drift_at_the_baseline() -> None:
    assert drift(_state(), BASE) == []


def test_drift_in_effect_and_at_the_next_boot() -> None:
    pending_guard = _state(guard=Setting(None, 1))  # absent now, 1 after the next boot
    assert drift(pending_guard, BASE) == ["dmaguard: 1 at the next boot, baseline None"]
    verifier_on = _state(verifier=Setting(DV_NVME, DV_NVME))
    found = drift(verifier_on, BASE)
    assert any(d.startswith("verifier:") and "wanted" in d for d in found)  # in effect
    assert any("at the next boot" in d for d in found)  # and still set for the next boot
    unknown = _state(signing=Setting(False, False, Knowledge.UNKNOWN))
    assert [d.split(":")[0] for d in drift(unknown, BASE)] == ["test_signing"]
    assert drift(_state(verifier=Setting(NO_VERIFIER, NO_VERIFIER)), BASE) == []


def test_a_teardown_record_is_ok_only_when_read_back_without_drift() -> None:
    ok = BaselineCheck("tb-01", BASE.describe(), checked=True)
    assert ok.ok and ok.summary().startswith("tb-01: at baseline")
    unread = BaselineCheck("tb-01", BASE.describe(), checked=False)
    assert not unread.ok and "not read back" in unread.summary()
    drifted = BaselineCheck("tb-01", BASE.describe(), checked=True, drift=("dmaguard: 1",))
    assert not drifted.ok and drifted.to_json()["drift"] == ["dmaguard: 1"]
