"""The DUT strategy's pure parts: `BootState`, the state model (`combine`), `plan_changes`,
`needs_reboot` and `unmet`, plus `DutStrategy.bring_to` over a stand-in host (one reboot, the
cache, a setting that does not apply). The real thing runs against the virtual lab in
tests/integration/test_lab_strategy_virtual.py.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from harness.config.lab_models import Baseline, Dut
from harness.domain.conditions import DmaGuardPolicy, OnOff
from harness.errors import ConfigError, DutError
from harness.lab.boot_state import BootState
from harness.lab.packages import _signature_problems
from harness.lab.state import DutState, Knowledge, Setting, combine
from harness.lab.strategy import (
    Change,
    ChangeKind,
    DutStrategy,
    Target,
    needs_reboot,
    plan_changes,
    reboot_reasons,
    unmet,
)
from harness.remote.deadline import Deadline
from harness.windows.results import (
    CrashEvidence,
    HostFacts,
    KdpSource,
    KdpState,
    SignatureInfo,
    VerifierSettings,
)

BOOT = datetime(2026, 3, 1, 8, 0, tzinfo=timezone.utc)
NVME, FLT = "dmalab_nvme.sys", "dmalab_flt.sys"
ON, OFF = OnOff.ON, OnOff.OFF
NO_VERIFIER = VerifierSettings(None, ())
DV_NVME = VerifierSettings(0x80, (NVME,))


def _dut(firmware: str = "lenovo-wmi", declared: str = "on") -> Dut:
    return Dut.model_validate(
        {
            "address": "10.0.0.5",
            "transport": {"kind": "winrm", "scheme": "https"},
            "os_build": 22631,
            "edition": "Enterprise",
            "kdp": {"declared": declared, "firmware_control": firmware},
            "ports": {"tb4": {"kind": "external", "switch": "sw", "channel": 1, "device": "d"}},
            "session_control": {"unlock": "none"},
        }
    )


def _state(
    *,
    kdp: Setting[bool | None] | None = None,
    lever: bool = True,
    guard: Setting[int | None] | None = None,
    verifier: Setting[VerifierSettings] | None = None,
    signing: Setting[bool | None] | None = None,
    secure_boot: bool = False,
) -> DutState:
    """The baseline in effect and pending unless a setting is given."""
    return DutState(
        "tb-01",
        BOOT,
        kdp or Setting(True, True),
        lever,
        guard or Setting(None, None),
        verifier or Setting(NO_VERIFIER, NO_VERIFIER),
        signing or Setting(False, False),
        secure_boot,
    )


BASE = BootState(ON, DmaGuardPolicy.ABSENT, OFF, (NVME,), OFF)


def _kinds(changes: list[Change]) -> list[ChangeKind]:
    return [c.kind for c in changes]


# -- BootState ------------------------------------------------------------------------------------
def test_required_normalizes_driver_names_and_needs_drivers_for_verifier_on() -> None:
    r = BootState(ON, DmaGuardPolicy.AFTER_LOGIN, ON, ("DMALab_NVMe", "dmalab_nvme.SYS", FLT))
    assert r.verifier_drivers == (NVME, FLT)
    assert r.dmaguard_registry == 1
    with pytest.raises(ConfigError, match="verifier_dma on needs"):
        BootState(ON, DmaGuardPolicy.ABSENT, ON, ())


def test_required_from_baseline() -> None:
    b = Baseline(kdp=OFF, dmaguard=DmaGuardPolicy.BLOCK_ALL, verifier_dma=OFF, test_signing=ON)
    r = BootState.from_baseline(b)
    assert (r.kdp, r.dmaguard_registry, r.verifier_dma, r.test_signing) == (OFF, 0, OFF, ON)
    with pytest.raises(ConfigError):
        BootState.from_baseline(Baseline(verifier_dma=ON))
    assert BootState.from_baseline(Baseline(verifier_dma=ON), [NVME]).verifier_drivers == (NVME,)


# -- plan_changes / needs_reboot -----------------------------------------------------------------
def test_everything_in_effect_needs_nothing() -> None:
    assert plan_changes(_state(), BASE, _dut()) == []
    assert not needs_reboot(_state(), BASE, _dut())
    assert unmet(_state(), BASE) == []


@pytest.mark.parametrize(
    ("required", "kind", "target"),
    [
        (replace(BASE, kdp=OFF), ChangeKind.KDP_FIRMWARE, False),
        (replace(BASE, dmaguard=DmaGuardPolicy.BLOCK_ALL), ChangeKind.DMAGUARD, 0),
        (replace(BASE, dmaguard=DmaGuardPolicy.ALLOW_ALL), ChangeKind.DMAGUARD, 2),
        (replace(BASE, verifier_dma=ON), ChangeKind.VERIFIER, DV_NVME),
        (replace(BASE, test_signing=ON), ChangeKind.TEST_SIGNING, True),
    ],
)
def test_each_setting_alone_is_one_change_and_a_reboot(
    required: BootState, kind: ChangeKind, target: Target
) -> None:
    changes = plan_changes(_state(), required, _dut())
    assert changes == [Change(kind, changes[0].description, True, target)]
    assert needs_reboot(_state(), required, _dut())
    assert len(reboot_reasons(_state(), required, _dut())) == 1


def test_back_to_baseline_from_everything_changed() -> None:
    state = _state(
        kdp=Setting(False, False),
        guard=Setting(1, 1),
        verifier=Setting(DV_NVME, DV_NVME),
        signing=Setting(True, True),
    )
    changes = plan_changes(state, BASE, _dut())
    assert _kinds(changes) == list(ChangeKind)
    assert all(c.needs_reboot for c in changes)
    by_kind = {c.kind: c.target for c in changes}
    assert by_kind[ChangeKind.KDP_FIRMWARE] is True
    assert by_kind[ChangeKind.DMAGUARD] is None  # delete the value
    assert by_kind[ChangeKind.VERIFIER] == NO_VERIFIER  # verifier /reset
    assert by_kind[ChangeKind.TEST_SIGNING] is False
    assert len(unmet(state, BASE)) == 4


@pytest.mark.parametrize(
    "state",
    [
        _state(kdp=Setting(True, False)),
        _state(guard=Setting(None, 1)),
        _state(verifier=Setting(NO_VERIFIER, DV_NVME)),
        _state(signing=Setting(False, True)),
    ],
    ids=["kdp", "dmaguard", "verifier", "test_signing"],
)
def test_already_pending_is_not_set_again_but_still_needs_a_reboot(state: DutState) -> None:
    required = BootState(OFF, DmaGuardPolicy.AFTER_LOGIN, ON, (NVME,), ON)
    changes = plan_changes(state, required, _dut())
    pending_kind = next(k for k, s in _settings_of(state).items() if s.pending != s.active)
    assert pending_kind not in _kinds(changes)
    assert len(changes) == 3
    assert len(reboot_reasons(state, required, _dut())) == 4  # 3 writes + 1 already pending


def _settings_of(state: DutState) -> dict[ChangeKind, Setting[Any]]:
    return {
        ChangeKind.KDP_FIRMWARE: state.kdp,
        ChangeKind.DMAGUARD: state.dmaguard,
        ChangeKind.VERIFIER: state.verifier,
        ChangeKind.TEST_SIGNING: state.test_signing,
    }


@pytest.mark.parametrize(
    ("state", "kind", "target"),
    [
        (_state(kdp=Setting(True, False)), ChangeKind.KDP_FIRMWARE, True),
        (_state(guard=Setting(None, 0)), ChangeKind.DMAGUARD, None),
        (_state(verifier=Setting(NO_VERIFIER, DV_NVME)), ChangeKind.VERIFIER, NO_VERIFIER),
        (_state(signing=Setting(False, True)), ChangeKind.TEST_SIGNING, False),
    ],
)
def test_conflicting_pending_value_is_reset_without_a_reboot(
    state: DutState, kind: ChangeKind, target: Target
) -> None:
    changes = plan_changes(state, BASE, _dut())
    assert [(c.kind, c.target, c.needs_reboot) for c in changes] == [(kind, target, False)]
    assert "reset the pending" in changes[0].description
    assert not needs_reboot(state, BASE, _dut())


def test_unknown_active_value_with_the_right_pending_one_needs_a_reboot_only() -> None:
    state = _state(guard=Setting(1, 1, Knowledge.UNKNOWN))
    required = replace(BASE, dmaguard=DmaGuardPolicy.AFTER_LOGIN)
    assert plan_changes(state, required, _dut()) == []
    assert reboot_reasons(state, required, _dut()) == [
        "DMAGuard policy 1 is pending, not known to be in effect"
    ]
    assert unmet(state, required) == [
        "dmaguard: wanted DMAGuard policy 1, found unknown now, 1 at the next boot"
    ]
    carried = _state(guard=Setting(1, 1, Knowledge.CARRIED))
    assert not needs_reboot(carried, required, _dut())


def test_unknown_active_value_with_a_wrong_pending_one_is_set() -> None:
    state = _state(signing=Setting(False, False, Knowledge.UNKNOWN))
    changes = plan_changes(state, replace(BASE, test_signing=ON), _dut())
    assert [(c.kind, c.target, c.needs_reboot) for c in changes] == [
        (ChangeKind.TEST_SIGNING, True, True)
    ]


# -- Verifier details ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("active", "ok"),
    [
        (VerifierSettings(0x80, (NVME, FLT)), True),
        (VerifierSettings(0x80 | 0x1, ("DMALAB_NVME.SYS", "dmalab_flt.sys")), True),
        (VerifierSettings(0x209BB, (NVME, FLT, "other.sys")), True),  # /standard includes 0x80
        (VerifierSettings(0x80, (NVME,)), False),  # flt missing
        (VerifierSettings(0x1, (NVME, FLT)), False),  # no DMA verification
        (VerifierSettings(None, ()), False),
    ],
)
def test_verifier_on_needs_0x80_on_every_required_driver(
    active: VerifierSettings, ok: bool
) -> None:
    required = replace(BASE, verifier_dma=ON, verifier_drivers=(NVME, FLT))
    state = _state(verifier=Setting(active, active))
    changes = plan_changes(state, required, _dut())
    if ok:
        assert changes == []
    else:
        assert [c.target for c in changes] == [VerifierSettings(0x80, (NVME, FLT))]


@pytest.mark.parametrize(
    ("active", "drivers", "ok"),
    [
        (VerifierSettings(None, ()), (NVME,), True),
        (VerifierSettings(0x80, ("other.sys",)), (NVME,), True),  # not on our driver
        (VerifierSettings(0x1, (NVME,)), (NVME,), True),  # Verifier, but no DMA checks
        (VerifierSettings(0x80, ("DMALAB_NVME.SYS",)), (NVME,), False),
        (VerifierSettings(0x80, ("other.sys",)), (), False),  # no drivers given: none at all
    ],
)
def test_verifier_off_means_no_dma_verification_on_those_drivers(
    active: VerifierSettings, drivers: tuple[str, ...], ok: bool
) -> None:
    required = replace(BASE, verifier_drivers=drivers)
    state = _state(verifier=Setting(active, active))
    changes = plan_changes(state, required, _dut())
    assert changes == (
        [] if ok else [Change(ChangeKind.VERIFIER, changes[0].description, True, NO_VERIFIER)]
    )


# -- KDP without a firmware lever ----------------------------------------------------------------
def test_kdp_off_on_a_dut_without_firmware_control_is_a_config_error() -> None:
    dut = _dut(firmware="none")
    state = _state(lever=False)
    with pytest.raises(ConfigError, match="DUT tb-01 cannot run with Kernel DMA Protection off"):
        plan_changes(state, replace(BASE, kdp=OFF), dut)
    with pytest.raises(ConfigError):
        needs_reboot(state, replace(BASE, kdp=OFF), dut)


def test_kdp_as_declared_on_a_dut_without_firmware_control_needs_nothing() -> None:
    dut = _dut(firmware="none", declared="off")
    state = _state(lever=False, kdp=Setting(False, False))
    required = replace(BASE, kdp=OFF)
    assert plan_changes(state, required, dut) == []
    assert not needs_reboot(state, required, dut)
    # the host reports KDP on although the lab declares it off: no lever, nothing to plan,
    # but the conditions are not met (bring_to raises DutError)
    wrong = _state(lever=False, kdp=Setting(True, True))
    assert plan_changes(wrong, required, dut) == []
    assert unmet(wrong, required) != []


def test_test_signing_under_secure_boot_is_refused_before_any_change() -> None:
    with pytest.raises(ConfigError, match="Secure Boot"):
        plan_changes(_state(secure_boot=True), replace(BASE, test_signing=ON), _dut())
    # turning it off (or leaving it off) under Secure Boot is fine
    assert plan_changes(_state(secure_boot=True), BASE, _dut()) == []


# -- the state model -----------------------------------------------------------------------------
def _facts(boot: datetime, *, kdp: bool | None = True, guard: int | None = None) -> HostFacts:
    return HostFacts(
        "TB-01", 22631, 1, "Enterprise", "Windows 11 Enterprise", boot,
        KdpState(kdp, KdpSource.NTQUERY), True, True, True, False, None, guard,
    )  # fmt: skip


VSET = Setting(NO_VERIFIER, NO_VERIFIER)


def test_first_contact_leaves_unreadable_values_unknown() -> None:
    s = combine("tb-01", _dut(), _facts(BOOT, guard=1), VSET, True)
    assert s.kdp == Setting(True, True, Knowledge.OBSERVED)
    assert s.dmaguard.pending == 1 and s.dmaguard.known is Knowledge.UNKNOWN
    assert s.test_signing.known is Knowledge.UNKNOWN


def test_pending_values_seen_before_a_boot_are_in_effect_after_it() -> None:
    first = combine("tb-01", _dut(), _facts(BOOT, guard=None), VSET, True)
    requested = replace(
        first,
        dmaguard=replace(first.dmaguard, pending=1),
        test_signing=replace(first.test_signing, pending=True),
    )
    # same boot: the request is pending (the registry and the BCD store report it); the active
    # values stay what was known of them (here: nothing, a host without in-effect facts)
    now = replace(_facts(BOOT, guard=1), test_signing=True)
    same = combine("tb-01", _dut(), now, VSET, True, requested)
    assert same.dmaguard == Setting(None, 1, Knowledge.UNKNOWN)
    assert same.test_signing == Setting(False, True, Knowledge.UNKNOWN)
    later = BOOT + timedelta(minutes=3)
    after = replace(_facts(later, guard=1), test_signing=True)
    s = combine("tb-01", _dut(), after, VSET, True, same)
    assert s.dmaguard == Setting(1, 1, Knowledge.CARRIED)
    assert s.test_signing == Setting(True, True, Knowledge.CARRIED)
    # a value that changed across the boot (someone else wrote it) is unknown again
    other = combine("tb-01", _dut(), _facts(later, guard=2), VSET, True, same)
    assert other.dmaguard.known is Knowledge.UNKNOWN


def test_kdp_pending_is_the_firmware_setting_or_the_running_value_without_a_lever() -> None:
    s = combine("tb-01", _dut(), _facts(BOOT, kdp=True), VSET, False)
    assert s.kdp == Setting(True, False) and s.kdp_lever
    n = combine("m2-01", _dut("none"), _facts(BOOT, kdp=True), VSET, None)
    assert n.kdp == Setting(True, True) and not n.kdp_lever
    blind = combine("m2-01", _dut("none", "off"), _facts(BOOT, kdp=None), VSET, None)
    assert blind.kdp == Setting(False, False, Knowledge.DECLARED)


# -- bring_to over a stand-in host ---------------------------------------------------------------
class FakeReport:
    def __init__(self, facts: HostFacts) -> None:
        self.facts = facts


class FakeHost:
    """Settings that apply at `reboot_and_wait`; `apply` decides which ones the reboot applies."""

    name = "tb-01"

    def __init__(self, *, kdp_applies: bool = True) -> None:
        self.calls: list[str] = []
        self.boot = BOOT
        self.kdp = self.kdp_fw = True
        self.guard: int | None = None
        self.v_active = self.v_pending = NO_VERIFIER
        self.kdp_applies = kdp_applies

    def facts(self) -> HostFacts:
        return _facts(self.boot, kdp=self.kdp, guard=self.guard)

    def crash_evidence(self, since_utc: datetime, **_: Any) -> CrashEvidence:
        """A DUT that did not crash before the run (read once at first contact)."""
        return CrashEvidence((), (), (), "")

    def host_facts(self, *, deadline: Deadline) -> HostFacts:
        self.calls.append("host_facts")
        return self.facts()

    def verifier_state(self, *, deadline: Deadline) -> Any:
        self.calls.append("verifier_state")
        return type(
            "V", (), {"active": self.v_active, "pending": self.v_pending, "active_known": True}
        )()

    def kdp_firmware_get(self, vendor: str, *, deadline: Deadline) -> Any:
        self.calls.append("kdp_firmware_get")
        return type("F", (), {"enabled": self.kdp_fw})()

    def kdp_firmware_set(self, vendor: str, enabled: bool, *, deadline: Deadline) -> Any:
        self.calls.append("kdp_firmware_set")
        self.kdp_fw = enabled
        return type("C", (), {"return_value": "Success", "bitlocker_suspended": False})()

    def call(self, name: str, params: Any, *, deadline: Deadline | None = None) -> Any:
        assert name == "token_state", name  # the elevation check before the first change
        self.calls.append(name)
        return {"user": "TB-01\\lab", "elevated": True, "local_account_token_filter_policy": 1}

    def dmaguard_set(self, policy: int | None, *, deadline: Deadline) -> Any:
        self.calls.append("dmaguard_set")
        self.guard = policy
        return type("G", (), {"policy": policy})()

    def set_verifier(self, mode: str, flags: int, drivers: list[str], *, deadline: Deadline) -> Any:
        self.calls.append(f"verifier_set {mode}")
        self.v_pending = VerifierSettings(flags or None, tuple(drivers))
        return type("T", (), {"exit_code": 2, "output": ""})()

    def reboot_and_wait(self, deadline: Deadline, **kw: Any) -> FakeReport:
        self.calls.append("reboot")
        self.boot += timedelta(minutes=2)
        self.v_active = self.v_pending
        if self.kdp_applies:
            self.kdp = self.kdp_fw
        return FakeReport(self.facts())


def _strategy(host: FakeHost) -> DutStrategy:
    return DutStrategy(
        host,  # type: ignore[arg-type]
        "tb-01",
        _dut(),
        reboot_s=60,
        step_s=10,
        reboot=lambda h, dl, **kw: h.reboot_and_wait(dl, **kw),
    )


def test_bring_to_applies_everything_then_reboots_once_and_caches() -> None:
    host = FakeHost()
    strategy = _strategy(host)
    req = BootState(OFF, DmaGuardPolicy.AFTER_LOGIN, ON, (NVME,), OFF)
    t = strategy.bring_to(req, Deadline.after(60, "t"))
    assert host.calls.count("reboot") == 1
    assert host.calls.index("reboot") > max(
        host.calls.index(c) for c in ("kdp_firmware_set", "dmaguard_set", "verifier_set persistent")
    )
    assert t.rebooted and t.after.kdp.active is False and t.after.dmaguard.active == 1
    assert t.after.dmaguard.known is Knowledge.CARRIED
    host.calls.clear()
    again = strategy.bring_to(req, Deadline.after(60, "t"))
    assert host.calls == ["host_facts"]  # same boot: the cache answers the rest
    assert not again.rebooted and again.changes == ()


def test_a_setting_that_does_not_apply_at_the_reboot_is_a_dut_error() -> None:
    host = FakeHost(kdp_applies=False)
    strategy = _strategy(host)
    with pytest.raises(DutError, match="kdp_firmware: wanted KDP firmware setting off"):
        strategy.bring_to(replace(BASE, kdp=OFF), Deadline.after(60, "t"))
    assert host.calls.count("reboot") == 1


def test_kdp_unreachable_is_refused_before_touching_the_host() -> None:
    host = FakeHost()
    strategy = DutStrategy(host, "m2-01", _dut("none"), reboot_s=60, step_s=10)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="m2-01"):
        strategy.bring_to(replace(BASE, kdp=OFF), Deadline.after(60, "t"))
    assert host.calls == []


# -- package signatures --------------------------------------------------------------------------
def _sig(path: str, status: str = "Valid", matches: bool = True) -> SignatureInfo:
    signer = "CN=DMA Lab Virtual Publisher" if status == "Valid" else None
    kind = "Authenticode" if status == "Valid" else "None"
    return SignatureInfo(path, status, 0 if status == "Valid" else 2, kind, signer, matches)


def test_signature_problems() -> None:
    exp = "DMA Lab Virtual Publisher"
    assert _signature_problems((_sig("C:\\p\\a.sys"),), None, exp) == []
    [p] = _signature_problems((_sig("C:\\p\\a.sys", matches=False),), None, exp)
    assert p.startswith("a.sys: signed by CN=DMA Lab Virtual Publisher, not")
    [p] = _signature_problems((_sig("C:\\p\\a.sys", "NotSigned", False),), None, exp)
    assert "signature NotSigned" in p
    # catalog-signed binary: accepted when the catalog is valid and from the expected signer
    cat = "C:\\p\\a.cat"
    unsigned = _sig("C:\\p\\a.sys", "NotSigned", False)
    assert _signature_problems((_sig(cat), unsigned), cat, exp) == []
    # judged by the catalog (F5): its wrong signer is the one problem, the unsigned .sys is not
    [p] = _signature_problems((_sig(cat, matches=False), unsigned), cat, exp)
    assert p.startswith("a.cat: signed by")
    # dual-signed: the vendor's valid embedded signature on the .sys, the expected one on the .cat
    vendor = _sig("C:\\p\\a.sys", matches=False)
    assert _signature_problems((_sig(cat), vendor), cat, exp) == []
    # a broken embedded signature is still a problem, whatever the catalog says
    [p] = _signature_problems((_sig(cat), _sig("C:\\p\\a.sys", "HashMismatch", False)), cat, exp)
    assert "signature HashMismatch" in p
