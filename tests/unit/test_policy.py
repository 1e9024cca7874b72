"""The oracle against the truth table of windows-dma.md §10.2, row by row, and its version rules."""

from __future__ import annotations

import itertools

import pytest

from harness.domain.builds import BuildError
from harness.domain.conditions import (
    Conditions,
    DeviceKey,
    DmaGuardPolicy,
    Evidence,
    InfValue,
    PortKind,
    SessionState,
)
from harness.domain.policy import DEVPKEY_FRIENDLY, DEVPKEY_GUID_FORM, FIELDS, expect

W10 = 19045  # 22H2
W11 = 22631  # 23H2
W11_24H2 = 26100
D, I, U = Evidence.DOCUMENTED, Evidence.INFERRED, Evidence.UNVERIFIED
EXT, EXP, INT = PortKind.EXTERNAL, PortKind.EXPOSED, PortKind.INTERNAL
LOCKED, NO_USER, UNLOCKED = SessionState.LOCKED, SessionState.NO_USER, SessionState.UNLOCKED


def c(build: int = W11, *inf: str, **kw: object) -> Conditions:
    values = tuple(InfValue(v) for v in (inf or ("absent",)))
    return Conditions(build=build, inf=values, **kw)  # type: ignore[arg-type]


def blocked_until_unlock(e) -> bool:  # type: ignore[no-untyped-def]
    return (
        not e.starts_at_plug
        and e.problem_code == 55
        and e.dma_while_locked is False
        and e.starts_after_unlock is True
    )


def started(e) -> bool:  # type: ignore[no-untyped-def]
    return e.starts_at_plug and e.problem_code is None and e.starts_after_unlock is None


# ---- rows 1–3: the property from the per-driver directive


@pytest.mark.parametrize("port", list(PortKind))
@pytest.mark.parametrize("build", [17763, W10, W11])
def test_row1_no_directive_is_zero_or_absent(build: int, port: PortKind) -> None:
    e = expect(c(build, "absent", port=port))
    assert (e.devpkey, e.devpkey_absent) == (0, True)
    assert e.evidence["devpkey"] is D
    assert e.evidence["devpkey_absent"] is U  # "0 or property absent": either reading is fine


def test_row2_opt_out_is_one_and_blocked_when_locked() -> None:
    e = expect(c(W11, "0", port=EXT, session=LOCKED))
    assert e.devpkey == 1 and not e.devpkey_absent
    assert blocked_until_unlock(e)
    assert all(e.evidence[f] is D for f in FIELDS if f != "devpkey_absent")


@pytest.mark.parametrize("session", list(SessionState))
@pytest.mark.parametrize("guard", list(DmaGuardPolicy))
def test_row3_opt_in_always_starts(session: SessionState, guard: DmaGuardPolicy) -> None:
    e = expect(c(W10, "1", port=EXT, session=session, dmaguard=guard))
    assert e.devpkey == 2
    assert started(e) and e.dma_while_locked
    assert e.evidence["starts_at_plug"] is D


# ---- rows 4–7: INF 2, conditional opt-in


def test_row4_inf2_external_opts_in() -> None:
    e = expect(c(W11, "2", port=EXT, session=LOCKED))
    assert e.devpkey == 2 and started(e)
    assert e.evidence["devpkey"] is D


def test_row5_inf2_exposed_is_unverified() -> None:
    e = expect(c(W11, "2", port=EXP, session=LOCKED))
    assert e.devpkey == 2
    assert e.evidence["devpkey"] is U
    # whether it starts while locked hangs on the unverified property value
    assert e.evidence["starts_at_plug"] is U
    assert any("row 5" in r for r in e.reasons)


def test_row5_exposed_before_1903_is_not_protected() -> None:
    e = expect(c(17763, "2", port=EXP, session=LOCKED))
    assert e.devpkey == 0
    assert started(e)  # DmaProperty ports are not in DMAGuard's scope before 1903
    assert e.evidence["starts_at_plug"] is I


def test_row6_inf2_internal_is_zero_and_runs() -> None:
    e = expect(c(W11, "2", port=INT, session=LOCKED))
    assert (e.devpkey, e.devpkey_absent) == (0, True)
    assert e.evidence["devpkey"] is I
    assert started(e) and e.dma_while_locked


@pytest.mark.parametrize("port", [EXP, INT])
def test_row7_verifier_promotes_inf2(port: PortKind) -> None:
    e = expect(c(W11, "2", port=port, verifier_dma=True, session=LOCKED))
    assert e.devpkey == 2
    assert e.evidence["devpkey"] is D


def test_row7_verifier_off_on_internal_does_not_promote() -> None:
    assert expect(c(W11, "2", port=INT, verifier_dma=False)).devpkey == 0


# ---- rows 8–9: value 3


def test_row8_inf3_on_windows11_opt_in_unverified() -> None:
    e = expect(c(22000, "3", port=INT))
    assert e.devpkey == 2 and e.evidence["devpkey"] is U


def test_row9_inf3_on_windows10_behaves_like_2_unverified() -> None:
    ext = expect(c(W10, "3", port=EXT))
    internal = expect(c(W10, "3", port=INT))
    assert (ext.devpkey, internal.devpkey) == (2, 0)
    assert ext.evidence["devpkey"] is U and internal.evidence["devpkey"] is U


# ---- rows 10–11: the 24H2 per-device key


def test_row10_per_device_opt_in_overrides_opt_out_driver() -> None:
    e = expect(c(W11_24H2, "0", port=EXT, session=LOCKED, device_remapping_supported=DeviceKey.V1))
    assert e.devpkey == 2 and started(e)
    assert e.evidence["devpkey"] is D


@pytest.mark.parametrize(("port", "value"), [(EXT, 2), (INT, 0)])
def test_row11_per_device_flags1_is_conditional(port: PortKind, value: int) -> None:
    e = expect(
        c(
            W11_24H2,
            "1",
            port=port,
            device_remapping_supported=DeviceKey.V1,
            device_remapping_flags=DeviceKey.V1,
        )
    )
    assert e.devpkey == value


def test_per_device_opt_out() -> None:
    e = expect(c(W11_24H2, "1", port=EXT, session=LOCKED, device_remapping_supported=DeviceKey.V0))
    assert e.devpkey == 1 and blocked_until_unlock(e)
    assert e.evidence["devpkey"] is I


@pytest.mark.parametrize("build", [W10, W11])
def test_per_device_key_ignored_before_24h2(build: int) -> None:
    e = expect(c(build, "0", port=EXT, device_remapping_supported=DeviceKey.V1))
    assert e.devpkey == 1  # the per-driver opt-out decides
    assert any("24H2" in r for r in e.reasons)
    assert e.evidence["devpkey"] is I


def test_flags_without_supported_do_nothing() -> None:
    e = expect(c(W11_24H2, "1", port=INT, device_remapping_flags=DeviceKey.V1))
    assert e.devpkey == 2


# ---- rows 12–18: enumeration of incompatible devices


@pytest.mark.parametrize("session", list(SessionState))
@pytest.mark.parametrize("guard", list(DmaGuardPolicy))
def test_row12_kdp_off_enumerates_everything(session: SessionState, guard: DmaGuardPolicy) -> None:
    e = expect(c(W11, "0", port=EXT, kdp=False, session=session, dmaguard=guard))
    assert started(e) and e.dma_while_locked
    assert e.evidence["starts_at_plug"] is I


def test_row13_internal_port_never_blocked() -> None:
    e = expect(c(W11, "absent", port=INT, session=NO_USER, dmaguard=DmaGuardPolicy.BLOCK_ALL))
    assert started(e)


@pytest.mark.parametrize("guard", [DmaGuardPolicy.ABSENT, DmaGuardPolicy.AFTER_LOGIN])
def test_row14_before_sign_in_blocked(guard: DmaGuardPolicy) -> None:
    e = expect(c(W10, "absent", port=EXT, session=NO_USER, dmaguard=guard))
    assert blocked_until_unlock(e)
    assert e.evidence["problem_code"] is D and e.evidence["starts_after_unlock"] is D


def test_row15_locked_blocked_on_exposed_port_from_1903() -> None:
    e = expect(c(18362, "0", port=EXP, session=LOCKED))
    assert blocked_until_unlock(e)


def test_row16_unlocked_starts_and_keeps_dma_through_lock() -> None:
    e = expect(c(W11, "0", port=EXT, session=UNLOCKED))
    assert started(e) and e.dma_while_locked
    assert e.evidence["dma_while_locked"] is D


@pytest.mark.parametrize("session", list(SessionState))
def test_row17_block_all_never_starts(session: SessionState) -> None:
    e = expect(c(W11, "0", port=EXT, session=session, dmaguard=DmaGuardPolicy.BLOCK_ALL))
    assert not e.starts_at_plug and e.starts_after_unlock is False and not e.dma_while_locked
    assert e.problem_code == 55 and e.evidence["problem_code"] is I  # Code 55 is inferred
    assert e.evidence["starts_after_unlock"] is D


def test_row17_block_all_still_starts_compatible_devices() -> None:
    e = expect(c(W11, "1", port=EXT, session=LOCKED, dmaguard=DmaGuardPolicy.BLOCK_ALL))
    assert started(e)


@pytest.mark.parametrize("session", list(SessionState))
def test_row18_allow_all_runs_unremapped(session: SessionState) -> None:
    e = expect(c(W11, "0", port=EXT, session=session, dmaguard=DmaGuardPolicy.ALLOW_ALL))
    assert started(e) and e.dma_while_locked
    assert e.evidence["starts_at_plug"] is D and e.evidence["dma_while_locked"] is I


def test_dmaguard_before_1809_is_unverified_and_treated_as_default() -> None:
    e = expect(c(17134, "0", port=EXT, session=LOCKED, dmaguard=DmaGuardPolicy.ALLOW_ALL))
    assert blocked_until_unlock(e)
    assert e.evidence["starts_at_plug"] is U


# ---- rows 19–22: graphics, mixed stacks


def test_row19_windows10_graphics_is_incompatible_even_with_inf1() -> None:
    e = expect(c(W10, "1", port=EXT, graphics=True, session=LOCKED))
    assert e.devpkey != 2 and e.evidence["devpkey"] is U
    assert blocked_until_unlock(e)
    assert e.evidence["starts_at_plug"] is I


def test_row20_windows11_graphics_is_unverified() -> None:
    e = expect(c(W11, "1", port=EXT, graphics=True, session=LOCKED))
    assert e.evidence["devpkey"] is U
    assert e.evidence["starts_at_plug"] is U


def test_row20_windows11_graphics_unlocked_starts_either_way() -> None:
    # started whether or not DMAGuard calls the GPU compatible, so no doubt is inherited
    e = expect(c(W11, "1", port=EXT, graphics=True, session=UNLOCKED))
    assert started(e) and e.evidence["starts_at_plug"] is D


def test_row21_mixed_stack_opt_out_filter_wins() -> None:
    e = expect(c(W11, "1", "0", port=EXT, session=LOCKED))
    assert e.devpkey == 1 and blocked_until_unlock(e)


def test_mixed_opt_in_and_unmet_conditional_is_inferred_zero() -> None:
    e = expect(c(W11, "1", "2", port=INT))
    assert e.devpkey == 0 and e.evidence["devpkey"] is I


def test_row22_started_compatible_device_does_dma_while_locked() -> None:
    e = expect(c(W11, "1", port=EXT, session=UNLOCKED))
    assert e.dma_while_locked and e.evidence["dma_while_locked"] is D


# ---- version rules and shape


@pytest.mark.parametrize(
    ("build", "key"),
    [
        (17134, DEVPKEY_GUID_FORM),
        (17763, DEVPKEY_GUID_FORM),
        (18362, DEVPKEY_FRIENDLY),
        (W11, DEVPKEY_FRIENDLY),
    ],
)
def test_key_name_by_build(build: int, key: str) -> None:
    assert expect(c(build)).devpkey_key == key


@pytest.mark.parametrize("build", [0, 10240, 16299, 17133])
def test_builds_before_1803_refused(build: int) -> None:
    with pytest.raises(BuildError):
        expect(c(build))


def test_empty_stack_refused() -> None:
    with pytest.raises(ValueError):
        expect(Conditions(build=W11, inf=()))


def test_json_shape() -> None:
    j = expect(c(W11, "2", port=EXT)).to_json()
    assert list(j) == [
        "devpkey",
        "devpkey_absent",
        "devpkey_key",
        "starts_at_plug",
        "problem_code",
        "dma_while_locked",
        "starts_after_unlock",
        "evidence",
        "reasons",
    ]
    assert set(j["evidence"]) == set(FIELDS)
    assert all(v in {"documented", "inferred", "unverified"} for v in j["evidence"].values())
    assert all(isinstance(r, str) and r for r in j["reasons"])


ALL = list(
    itertools.product(
        [17134, 17763, 18362, W10, 22000, W11, W11_24H2],
        [("absent",), ("0",), ("1",), ("2",), ("3",), ("1", "0"), ("2", "1")],
        list(DeviceKey),
        list(DeviceKey),
        [False, True],
        list(PortKind),
        [False, True],
        [False, True],
        list(DmaGuardPolicy),
        list(SessionState),
    )
)


def test_invariants_over_the_whole_condition_space() -> None:
    """Consistency laws that hold for every combination (~280k of them)."""
    for build, inf, sup, flags, gfx, port, dv, kdp, guard, session in ALL:
        cond = Conditions(
            build=build,
            inf=tuple(InfValue(v) for v in inf),
            device_remapping_supported=sup,
            device_remapping_flags=flags,
            graphics=gfx,
            port=port,
            verifier_dma=dv,
            kdp=kdp,
            dmaguard=guard,
            session=session,
        )
        e = expect(cond)
        assert e.devpkey in (0, 1, 2)
        assert e.devpkey_absent == (e.devpkey == 0)
        # a field that does not apply is None, and only then
        assert (e.problem_code is None) == e.starts_at_plug
        assert (e.starts_after_unlock is None) == e.starts_at_plug
        if e.starts_at_plug:
            assert e.dma_while_locked
        if not kdp or port is INT:
            assert e.starts_at_plug
        if session is UNLOCKED and guard is not DmaGuardPolicy.BLOCK_ALL:
            assert e.starts_at_plug
        # a verdict is never more certain than the property it rests on when that matters
        if not e.starts_at_plug and e.evidence["devpkey"] is U and not gfx:
            assert e.evidence["starts_at_plug"] is U


def test_every_expectation_names_its_sources() -> None:
    e = expect(c(W11, "2", port=EXT, session=LOCKED))
    last = e.reasons[-1]
    assert last.startswith("sources: docs/domain.md §")
    assert "https://learn.microsoft.com/windows-hardware/drivers/pci/enabling-dma-remapping" in last
