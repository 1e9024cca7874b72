"""The in-effect facts of `host_facts` and how the state model uses them.

`test_signing_in_effect` (code integrity's TESTSIGN option) and `dmaguard_policy_written` (the
policy key's last-write time against the boot) make test signing and DMAGuard `OBSERVED` at first
contact, so a DUT already in the required state is not rebooted; a value written since the boot
still needs one. Also: the virtual lab's registry keeps last-write times the way Windows does.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from harness.config.lab_models import Dut
from harness.domain.conditions import DmaGuardPolicy, OnOff
from harness.errors import InfrastructureError
from harness.lab.boot_state import BootState
from harness.lab.state import DutState, Knowledge, Setting, combine, observe
from harness.lab.strategy import ChangeKind, DutStrategy, plan_changes, reboot_reasons
from harness.remote.deadline import Deadline
from harness.virtual_lab.windows.registry import Registry
from harness.windows.results import CrashEvidence, HostFacts, KeyWritten, VerifierSettings

BOOT = datetime(2026, 3, 1, 8, 0, tzinfo=timezone.utc)
BEFORE, AFTER = BOOT - timedelta(days=2), BOOT + timedelta(minutes=5)
GUARD_KEY = r"HKLM\SOFTWARE\Policies\Microsoft\Windows\Kernel DMA Protection"
NO_VERIFIER = VerifierSettings(None, ())
VSET = Setting(NO_VERIFIER, NO_VERIFIER)
ON, OFF = OnOff.ON, OnOff.OFF
BASE = BootState(ON, DmaGuardPolicy.ABSENT, OFF)

FACTS: dict[str, Any] = {
    "computer_name": "DUT-01",
    "build": 22631,
    "ubr": 4460,
    "edition": "Enterprise",
    "product_name": "Windows 11 Enterprise",
    "last_boot_utc": "2026-03-01T08:00:00.000Z",
    "kdp": {"enabled": True, "source": "ntquery"},
    "virtualization_firmware": True,
    "iommu_dma_protection_available": True,
    "secure_boot": False,
    "test_signing": False,
    "bitlocker_disable_external_dma_under_lock": None,
    "dmaguard_policy": None,
    "code_integrity_options": 0x01,
    "test_signing_in_effect": False,
    "dmaguard_policy_written": {
        "key": r"HKLM\SOFTWARE\Policies\Microsoft\Windows",
        "last_write_utc": "2026-02-27T08:00:00.000Z",
        "before_boot": True,
    },
}


def _dut() -> Dut:
    return Dut.model_validate(
        {
            "address": "10.0.0.5",
            "transport": {"kind": "winrm", "scheme": "https"},
            "os_build": 22631,
            "edition": "Enterprise",
            "kdp": {"declared": "on", "firmware_control": "none"},
            "ports": {"tb4": {"kind": "external", "switch": "sw", "channel": 1, "device": "d"}},
            "session_control": {"unlock": "none"},
        }
    )


def _facts(**change: Any) -> HostFacts:
    return HostFacts.from_json("host_facts", {**FACTS, **change})


def _written(when: datetime, key: str = GUARD_KEY) -> dict[str, Any]:
    stamp = when.strftime("%Y-%m-%dT%H:%M:%S.000Z")
    return {"key": key, "last_write_utc": stamp, "before_boot": when < BOOT}


def _state(facts: HostFacts, previous: DutState | None = None) -> DutState:
    return combine("tb-01", _dut(), facts, VSET, None, previous)


# -- parsing -------------------------------------------------------------------------------------
def test_the_new_fields_are_parsed() -> None:
    f = _facts(test_signing_in_effect=True, code_integrity_options=0x03)
    assert f.test_signing_in_effect is True and f.code_integrity_options == 3
    assert f.dmaguard_policy_written == KeyWritten(
        r"HKLM\SOFTWARE\Policies\Microsoft\Windows",
        datetime(2026, 2, 27, 8, tzinfo=timezone.utc),
        True,
    )
    assert f.dmaguard_policy_in_effect
    assert not _facts(dmaguard_policy_written=_written(AFTER)).dmaguard_policy_in_effect


def test_a_script_without_the_new_fields_reports_nothing_in_effect() -> None:
    old = {k: v for k, v in FACTS.items() if k not in _NEW}
    f = HostFacts.from_json("host_facts", old)
    assert f.test_signing_in_effect is None and f.code_integrity_options is None
    assert f.dmaguard_policy_written is None and not f.dmaguard_policy_in_effect
    assert not _facts(dmaguard_policy_written=None).dmaguard_policy_in_effect


_NEW = ("code_integrity_options", "test_signing_in_effect", "dmaguard_policy_written")


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"test_signing_in_effect": 1}, r"result.test_signing_in_effect = 1, expected true or"),
        ({"code_integrity_options": True}, r"result.code_integrity_options = True, expected an"),
        ({"dmaguard_policy_written": "yes"}, r"result.dmaguard_policy_written = 'yes', expected"),
        (
            {"dmaguard_policy_written": {**_written(BEFORE), "before_boot": "no"}},
            r"result.dmaguard_policy_written.before_boot = 'no', expected true or false",
        ),
        (
            {"dmaguard_policy_written": {**_written(BEFORE), "last_write_utc": "monday"}},
            r"result.dmaguard_policy_written.last_write_utc = 'monday', expected a UTC",
        ),
        (
            {"dmaguard_policy_written": {"last_write_utc": "2026-01-01T00:00:00Z"}},
            r"result.dmaguard_policy_written without 'key'",
        ),
    ],
)
def test_bad_shapes_of_the_new_fields(change: dict[str, Any], match: str) -> None:
    with pytest.raises(InfrastructureError, match=r"operation host_facts returned " + match):
        _facts(**change)


# -- the state model -----------------------------------------------------------------------------
def test_first_contact_observes_what_is_in_effect() -> None:
    s = _state(_facts())
    assert s.dmaguard == Setting(None, None, Knowledge.OBSERVED)
    assert s.test_signing == Setting(False, False, Knowledge.OBSERVED)
    assert reboot_reasons(s, BASE, _dut()) == [] and plan_changes(s, BASE, _dut()) == []


def test_a_dmaguard_policy_written_since_the_boot_is_not_known_to_be_in_effect() -> None:
    s = _state(_facts(dmaguard_policy=1, dmaguard_policy_written=_written(AFTER)))
    assert s.dmaguard == Setting(1, 1, Knowledge.UNKNOWN)
    wanted = replace(BASE, dmaguard=DmaGuardPolicy.AFTER_LOGIN)
    [reason] = reboot_reasons(s, wanted, _dut())
    assert "DMAGuard policy 1 is pending, not known to be in effect" in reason
    # the baseline (absent) is neither in effect (unknown) nor pending: delete it, and reboot
    [change] = plan_changes(s, BASE, _dut())
    assert change.kind is ChangeKind.DMAGUARD and change.needs_reboot


def test_within_one_boot_a_dmaguard_write_keeps_the_value_observed_before_it() -> None:
    first = _state(_facts())
    later = _state(_facts(dmaguard_policy=0, dmaguard_policy_written=_written(AFTER)), first)
    assert later.dmaguard == Setting(None, 0, Knowledge.OBSERVED)
    # writing the baseline back resets the pending value, no reboot
    [change] = plan_changes(later, BASE, _dut())
    assert change.kind is ChangeKind.DMAGUARD and not change.needs_reboot


def test_a_missing_policy_key_with_a_parent_written_since_the_boot_is_unknown() -> None:
    parent = _written(AFTER, r"HKLM\SOFTWARE\Policies\Microsoft\Windows")
    s = _state(_facts(dmaguard_policy_written=parent))
    assert s.dmaguard.known is Knowledge.UNKNOWN
    assert reboot_reasons(s, BASE, _dut())


@pytest.mark.parametrize(
    ("in_effect", "store", "wanted", "reboot", "change"),
    [
        (True, True, ON, False, False),  # already so: nothing
        (False, True, OFF, False, True),  # on is pending: set the store back, no reboot
        (False, True, ON, True, False),  # on is pending, not in effect: reboot
        (True, False, OFF, True, False),  # off pending, on in effect: reboot
    ],
)
def test_test_signing_in_effect_against_the_bcd_store(
    in_effect: bool, store: bool, wanted: OnOff, reboot: bool, change: bool
) -> None:
    f = _facts(test_signing=store, test_signing_in_effect=in_effect)
    s = _state(f)
    assert s.test_signing == Setting(in_effect, store, Knowledge.OBSERVED)
    required = replace(BASE, test_signing=wanted)
    assert bool(reboot_reasons(s, required, _dut())) is reboot
    assert bool(plan_changes(s, required, _dut())) is change


def test_without_the_in_effect_facts_the_old_rules_apply() -> None:
    f = _facts(test_signing_in_effect=None, dmaguard_policy_written=None)
    s = _state(f)
    assert s.dmaguard.known is Knowledge.UNKNOWN and s.test_signing.known is Knowledge.UNKNOWN
    after = replace(f, last_boot_utc=AFTER)
    carried = _state(after, s)
    assert carried.dmaguard == Setting(None, None, Knowledge.CARRIED)
    assert carried.test_signing == Setting(False, False, Knowledge.CARRIED)


class _Host:
    """Answers host_facts and verifier_state; records calls; reboots only on request."""

    name = "tb-01"

    def __init__(self, facts: HostFacts) -> None:
        self.facts = facts
        self.calls: list[str] = []

    def crash_evidence(self, since_utc: datetime, **_: Any) -> CrashEvidence:
        """A DUT that did not crash before the run (read once at first contact)."""
        return CrashEvidence((), (), (), "")

    def host_facts(self, *, deadline: Deadline) -> HostFacts:
        self.calls.append("host_facts")
        return self.facts

    def verifier_state(self, *, deadline: Deadline) -> Any:
        self.calls.append("verifier_state")
        return type(
            "V", (), {"active": NO_VERIFIER, "pending": NO_VERIFIER, "active_known": True}
        )()

    def reboot_and_wait(self, deadline: Deadline, **kw: Any) -> Any:
        self.calls.append("reboot")
        raise AssertionError("no reboot expected")


def test_observe_and_bring_to_at_first_contact_need_no_reboot() -> None:
    host = _Host(_facts())
    s = observe(host, _dut(), Deadline.after(10, "t"))  # type: ignore[arg-type]
    assert host.calls == ["host_facts", "verifier_state"]
    assert s.dmaguard.known is s.test_signing.known is Knowledge.OBSERVED
    host.calls.clear()
    strategy = DutStrategy(host, "tb-01", _dut(), reboot_s=60, step_s=10)  # type: ignore[arg-type]
    t = strategy.bring_to(BASE, Deadline.after(10, "t"))
    assert not t.rebooted and t.changes == () and "reboot" not in host.calls


# -- the virtual lab's registry times ------------------------------------------------------------
class _Clock:
    def __init__(self) -> None:
        self.now = BEFORE

    def __call__(self) -> datetime:
        return self.now


def test_registry_last_write_times_follow_windows() -> None:
    clock = _Clock()
    reg = Registry(clock=clock, installed=BEFORE - timedelta(days=1))
    parent = r"HKLM\SOFTWARE\Policies\Microsoft\Windows"
    reg.create_key(parent)
    assert reg.last_write(parent) == BEFORE and reg.last_write(GUARD_KEY) is None
    assert reg.nearest_written(GUARD_KEY, stop=r"HKLM\SOFTWARE\Policies") == (parent, BEFORE)
    clock.now = t1 = BOOT + timedelta(seconds=1)
    reg.set(GUARD_KEY, "DeviceEnumerationPolicy", 1)  # creates the key: writes the parent
    assert reg.last_write(GUARD_KEY) == t1 and reg.last_write(parent) == t1
    clock.now = t2 = t1 + timedelta(seconds=1)
    assert not reg.delete(GUARD_KEY, "Missing")  # nothing deleted: nothing written
    assert reg.last_write(GUARD_KEY) == t1
    assert reg.delete(GUARD_KEY, "DeviceEnumerationPolicy")
    assert reg.last_write(GUARD_KEY) == t2 and reg.last_write(parent) == t1
    clock.now = t3 = t2 + timedelta(seconds=1)
    reg.delete_key(GUARD_KEY)  # deleting a subkey writes the parent
    assert reg.last_write(GUARD_KEY) is None and reg.last_write(parent) == t3
    assert reg.last_write(r"HKLM\SOFTWARE\Policies") == BEFORE  # not written by a grandchild
    assert reg.nearest_written(r"HKLM\NOWHERE\A", stop=r"HKLM\NOWHERE") is None
