"""The oracle: from the conditions of one plug event to what Windows is expected to do.

A pure function, `expect(conditions) -> Expectation`, implementing the rules and the truth table of
docs/domain.md §10 (with §1, §2 and §4). Every field of the expectation carries
an evidence level and the reasons name the sections they rest on:

- `documented`: Microsoft says so; asserted.
- `inferred`: follows from documented facts by reasoning (or reverse engineering); asserted, and a
  failure is labelled "expectation may be wrong".
- `unverified`: the docs contradict each other or are silent; observed and recorded, never failed.

Two ideas keep the rules honest:
1. The DEVPKEY value is computed first (§10.1 R-prop); whether the device counts as *compatible*
   (property 2, and not a Windows 10 graphics device) has its own evidence level.
2. Behaviour is computed for the compatible and the incompatible case. A field whose value is the
   same either way does not inherit the uncertainty of the compatibility verdict.

>>> from harness.domain.conditions import Conditions, InfValue, PortKind, SessionState
>>> e = expect(Conditions(build=22631, inf=(InfValue.V0,), port=PortKind.EXTERNAL,
...                       session=SessionState.LOCKED))
>>> e.devpkey, e.starts_at_plug, e.problem_code, e.starts_after_unlock
(1, False, 55, True)
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from harness.domain.builds import (
    DMAGUARD_CSP_BUILD,
    EXPOSED_PORTS_BUILD,
    FRIENDLY_DEVPKEY_BUILD,
    PER_DEVICE_KEY_BUILD,
    check_build,
    is_windows11,
    release_name,
)
from harness.domain.conditions import (
    Conditions,
    DeviceKey,
    DmaGuardPolicy,
    Evidence,
    InfValue,
    PortKind,
    SessionState,
)
from harness.domain.sources import sources_line

DEVPKEY_FRIENDLY = "DEVPKEY_Device_DmaRemappingPolicy"
#: `'{GUID} PID'` form that Get-PnpDeviceProperty accepts on every build [§2, P1].
DEVPKEY_GUID_FORM = "{83DA6326-97A6-4088-9453-A1923F573B29} 18"
PROBLEM_CONSOLE_LOCKED = 55  # CM_PROB_CONSOLE_LOCKED [§4.4, D4]

FIELDS = (
    "devpkey",
    "devpkey_absent",
    "devpkey_key",
    "starts_at_plug",
    "problem_code",
    "dma_while_locked",
    "starts_after_unlock",
)

D, I, U = Evidence.DOCUMENTED, Evidence.INFERRED, Evidence.UNVERIFIED
#: Every check a plan can ask for that bears on an expectation (config/plan.py `Check`).
ALL_CHECKS = ("devpkey", "problem_code", "starts_at_plug", "dma_probe", "after_unlock")


class DriverStance(str, Enum):
    """How one driver's INF directive counts in the kernel's aggregation [§2, RE]."""

    NONE = "none"
    OPT_OUT = "opt-out"
    OPT_IN = "opt-in"
    CONDITIONAL = "conditional"  # opt in only if external, or Verifier DMA targets the driver


@dataclass(frozen=True)
class Expectation:
    """What Windows is expected to do; `None` marks a field that does not apply."""

    devpkey: int
    devpkey_absent: bool
    devpkey_key: str
    starts_at_plug: bool
    problem_code: int | None
    dma_while_locked: bool
    starts_after_unlock: bool | None
    evidence: dict[str, Evidence]
    reasons: tuple[str, ...]
    conditions: Conditions = field(repr=False, compare=False)

    def headline_fields(self, checks: Iterable[str] = ALL_CHECKS) -> tuple[str, ...]:
        """The expectations a scenario with these plan `checks` asserts about the device.

        `devpkey_absent` and `devpkey_key` (how the property is represented) are checked too
        but only ever recorded, so they do not make the scenario's evidence level."""
        c = set(checks)
        locked = self.conditions.session is not SessionState.UNLOCKED
        out = []
        if "devpkey" in c:
            out.append("devpkey")
        if "starts_at_plug" in c:
            out.append("starts_at_plug")
        if "problem_code" in c and not self.starts_at_plug:
            out.append("problem_code")
        if "dma_probe" in c and locked:
            out.append("dma_while_locked")
        if "after_unlock" in c and locked and self.starts_after_unlock is not None:
            out.append("starts_after_unlock")
        return tuple(out)

    def evidence_level(self, checks: Iterable[str] = ALL_CHECKS) -> Evidence:
        """The scenario's evidence level: the weakest of its headline expectations. The one
        definition `plan show`, the journal, matrix.html and the qualification bundle share."""
        fields = self.headline_fields(checks)
        if not fields:
            return Evidence.DOCUMENTED
        return Evidence.weakest(*(self.evidence[f] for f in fields))

    def to_json(self) -> dict[str, Any]:
        return {
            "devpkey": self.devpkey,
            "devpkey_absent": self.devpkey_absent,
            "devpkey_key": self.devpkey_key,
            "starts_at_plug": self.starts_at_plug,
            "problem_code": self.problem_code,
            "dma_while_locked": self.dma_while_locked,
            "starts_after_unlock": self.starts_after_unlock,
            "evidence": {name: self.evidence[name].value for name in FIELDS},
            "reasons": list(self.reasons),
        }


# --------------------------------------------------------------------------- property value


@dataclass
class _Verdict:
    """A value with its evidence, accumulating reasons as rules apply."""

    value: int
    evidence: Evidence
    reasons: list[str]


def _stance(value: InfValue, build: int, reasons: list[str]) -> tuple[DriverStance, Evidence]:
    if value is InfValue.ABSENT:
        return DriverStance.NONE, D
    if value is InfValue.V0:
        return DriverStance.OPT_OUT, D
    if value is InfValue.V1:
        return DriverStance.OPT_IN, D
    if value is InfValue.V2:
        return DriverStance.CONDITIONAL, D
    # Value 3 is under-specified (§0.1): no doc says how it differs from 1, and decompiled
    # kernels treat it as "no directive".
    if is_windows11(build):
        reasons.append(
            "INF value 3 on Windows 11 is listed as 'Opt-in' with no conditions, but no document "
            "says how it differs from 1 and decompiled kernels ignore it (§0.1, §10.2 row 8): unverified"
        )
        return DriverStance.OPT_IN, U
    reasons.append(
        "INF value 3 on Windows 10 falls back to 2 per the docs, but decompiled kernels treat it as "
        "no directive (§0.1, §1.1, §10.2 row 9): unverified"
    )
    return DriverStance.CONDITIONAL, U


def _conditional(c: Conditions, base: Evidence, what: str, reasons: list[str]) -> _Verdict:
    """Value of a conditional opt-in (INF 2, or RemappingFlags=1) for these conditions."""
    if c.port is PortKind.EXTERNAL:
        reasons.append(f"{what} opts in because the port is external (§1.1, §1.2, §10.2 row 4)")
        return _Verdict(2, base, reasons)
    if c.verifier_dma:
        reasons.append(
            f"{what} is promoted to opt-in because Driver Verifier DMA verification (0x80) targets "
            "the driver (§1.1, §5, §10.2 row 7)"
        )
        return _Verdict(2, base, reasons)
    if c.port is PortKind.EXPOSED and c.build >= EXPOSED_PORTS_BUILD:
        reasons.append(
            f"{what} behind a DmaProperty (exposed) port: the docs name only external devices; "
            "decompiled newer kernels also accept exposed ones (§10.2 row 5): unverified"
        )
        return _Verdict(2, Evidence.weakest(base, U), reasons)
    reasons.append(
        f"{what} does not opt in on an internal port without Verifier DMA verification; "
        "the property is then 0 or absent (§10.1 R-prop, §10.2 row 6)"
    )
    return _Verdict(0, Evidence.weakest(base, I), reasons)


def _per_device(c: Conditions, reasons: list[str]) -> _Verdict | None:
    """The 24H2 per-device `DMA Management` directive, or None when it does not decide [§1.2]."""
    supported, flags = c.device_remapping_supported, c.device_remapping_flags
    if supported is DeviceKey.ABSENT:
        if flags is not DeviceKey.ABSENT:
            reasons.append(
                "RemappingFlags without RemappingSupported has no documented effect; the per-driver "
                "directives decide (§1.2)"
            )
        return None
    if c.build < PER_DEVICE_KEY_BUILD:
        reasons.append(
            f"the per-device 'DMA Management' key is read only from 24H2 ({PER_DEVICE_KEY_BUILD}); "
            f"build {c.build} uses the per-driver directives (§1.2, §0.2)"
        )
        return None
    reasons.append("per-device RemappingSupported overrides DmaRemappingCompatible (§1.2)")
    if supported is DeviceKey.V0:
        reasons.append(
            "RemappingSupported=0 opts the device out; that this shows as property 1 ('opted out') "
            "is inferred from §2"
        )
        return _Verdict(1, I, reasons)
    if flags is DeviceKey.V1:
        return _conditional(c, D, "RemappingFlags=1", reasons)
    reasons.append(
        "RemappingSupported=1 with RemappingFlags 0/absent opts in unconditionally (§10.2 row 10)"
    )
    return _Verdict(2, D, reasons)


def _per_driver(c: Conditions, reasons: list[str]) -> _Verdict:
    """Aggregate the stack's per-driver directives as the kernel does [§2, §10.1 R-prop]."""
    stances = [_stance(v, c.build, reasons) for v in c.inf]
    stance_ev = Evidence.weakest(D, *(ev for _, ev in stances))
    kinds = [s for s, _ in stances]
    multi = len(kinds) > 1
    if DriverStance.OPT_OUT in kinds:
        reasons.append(
            "a driver of the stack opts out (INF 0): property 1, 'at least one driver opted out' (§2)"
        )
        return _Verdict(1, stance_ev, reasons)
    if DriverStance.CONDITIONAL in kinds:
        verdict = _conditional(c, stance_ev, "DmaRemappingCompatible=2", reasons)
        if multi and DriverStance.OPT_IN in kinds and verdict.value == 0:
            reasons.append(
                "a stack mixing an unconditional opt-in with an unmet conditional one aggregates "
                "to 0 in decompiled kernels (§2 'how the kernel combines'): inferred"
            )
            verdict.evidence = Evidence.weakest(verdict.evidence, I)
        return verdict
    if DriverStance.OPT_IN in kinds:
        reasons.append("every driver with a directive opts in: property 2 (§1.1, §2, §10.2 row 3)")
        return _Verdict(2, stance_ev, reasons)
    reasons.append(
        "no driver of the stack has a DMA remapping directive: property 0 or absent (§2)"
    )
    return _Verdict(0, stance_ev, reasons)


def _property(c: Conditions, reasons: list[str]) -> _Verdict:
    verdict = _per_device(c, reasons) or _per_driver(c, reasons)
    if c.device_remapping_supported is not DeviceKey.ABSENT and c.build < PER_DEVICE_KEY_BUILD:
        # Older builds surely don't read a key introduced later, but nobody has written that down.
        verdict.evidence = Evidence.weakest(verdict.evidence, I)
    return verdict


# --------------------------------------------------------------------------- compatibility


def _compatibility(c: Conditions, prop: _Verdict, reasons: list[str]) -> tuple[bool, Evidence]:
    """Whether DMAGuard treats the device as remapping-compatible, with the evidence for that."""
    if c.graphics and not is_windows11(c.build):
        reasons.append(
            "graphics drivers are not supported for DMA remapping on Windows 10: treated as "
            "incompatible (§0.5, §1.1, §10.2 row 19): inferred"
        )
        if prop.value == 2:
            reasons.append(
                "the property of a Windows 10 graphics device is expected not to be 2; whether it "
                "reads 0 or 1 is unmeasured (§10.1 R-gfx): unverified"
            )
            prop.value, prop.evidence = 0, U
        return False, I
    if c.graphics:
        reasons.append(
            "Windows 11 WDDM 3.0 graphics support DMA remapping, but how DMAGuard classifies a GPU "
            "is undocumented (§0.5, §10.2 row 20): unverified"
        )
        prop.evidence = U
        return prop.value == 2, U
    return prop.value == 2, prop.evidence


# --------------------------------------------------------------------------- behaviour


@dataclass(frozen=True)
class _Behaviour:
    starts_at_plug: bool
    problem_code: int | None
    dma_while_locked: bool
    starts_after_unlock: bool | None
    evidence: dict[str, Evidence]
    reason: str


def _uniform(
    starts: bool,
    problem: int | None,
    dma_locked: bool,
    after: bool | None,
    ev: Evidence,
    reason: str,
    **overrides: Evidence,
) -> _Behaviour:
    evidence = {
        k: ev for k in ("starts_at_plug", "problem_code", "dma_while_locked", "starts_after_unlock")
    }
    evidence.update(overrides)
    return _Behaviour(starts, problem, dma_locked, after, evidence, reason)


def _effective_policy(c: Conditions, reasons: list[str]) -> tuple[DmaGuardPolicy, Evidence]:
    if c.dmaguard is DmaGuardPolicy.ABSENT:
        return DmaGuardPolicy.AFTER_LOGIN, D
    if c.build < DMAGUARD_CSP_BUILD and c.dmaguard is not DmaGuardPolicy.AFTER_LOGIN:
        reasons.append(
            f"DeviceEnumerationPolicy={c.dmaguard.value} on build {c.build}: the DMAGuard CSP "
            "exists from 1809, the ADMX claims all of Windows 10; expected to behave as the "
            "default policy 1 (§4.1, §10.2 notes): unverified"
        )
        return DmaGuardPolicy.AFTER_LOGIN, U
    return c.dmaguard, D


def _behaviour(c: Conditions, compatible: bool, reasons: list[str]) -> _Behaviour:
    """Enumeration and DMA for one compatibility verdict [§4, §10.1, §10.2 rows 12–18]."""
    if not c.kdp:
        return _uniform(
            True,
            None,
            True,
            None,
            I,
            "Kernel DMA Protection is off: the DMAGuard policy only takes effect when it is on, so "
            "the device enumerates at any lock state (§3.4, §10.1 R-kdmap-off, §10.2 row 12)",
        )
    if c.port is PortKind.INTERNAL:
        return _uniform(
            True,
            None,
            True,
            None,
            I,
            "an internal, non-exposed port is outside DMAGuard's scope: the device is never blocked "
            "(§4.2, §10.1 R-scope, §10.2 row 13)",
        )
    if c.port is PortKind.EXPOSED and c.build < EXPOSED_PORTS_BUILD:
        return _uniform(
            True,
            None,
            True,
            None,
            I,
            f"DmaProperty (exposed) ports are protected only from 1903 ({EXPOSED_PORTS_BUILD}); on "
            f"build {c.build} the port is outside DMAGuard's scope (§3.2, §10.2 notes)",
        )
    if compatible:
        return _uniform(
            True,
            None,
            True,
            None,
            D,
            "a remapping-compatible device (property 2) starts and may DMA at any lock state "
            "(§4.3, §10.1 R-compat, §10.2 row 3)",
        )
    policy, policy_ev = _effective_policy(c, reasons)
    if policy is DmaGuardPolicy.ALLOW_ALL:
        return _uniform(
            True,
            None,
            True,
            None,
            policy_ev,
            "policy 2 (allow all) enumerates every external device at any time; an incompatible one "
            "runs unremapped (§4.2, §10.1 R-policy2, §10.2 row 18)",
            dma_while_locked=Evidence.weakest(policy_ev, I),
        )
    if policy is DmaGuardPolicy.BLOCK_ALL:
        return _uniform(
            False,
            PROBLEM_CONSOLE_LOCKED,
            False,
            False,
            policy_ev,
            "policy 0 (block all): an incompatible device never starts; that it shows Code 55 is "
            "inferred (§4.2, §4.4, §10.1 R-policy0, §10.2 row 17)",
            problem_code=Evidence.weakest(policy_ev, I),
        )
    if c.session is SessionState.UNLOCKED:
        return _uniform(
            True,
            None,
            True,
            None,
            policy_ev,
            "policy 1 with the session unlocked: an incompatible device starts at plug and keeps "
            "running through a later lock (§4.3, §10.2 row 16)",
        )
    when = "before sign-in" if c.session is SessionState.NO_USER else "while the session is locked"
    return _uniform(
        False,
        PROBLEM_CONSOLE_LOCKED,
        False,
        True,
        policy_ev,
        f"policy 1: an incompatible device plugged {when} is blocked with Code 55 "
        "(CM_PROB_CONSOLE_LOCKED) and starts at sign-in/unlock (§4.3, §4.4, §10.2 rows 14–15)",
    )


_BEHAVIOUR_FIELDS = ("starts_at_plug", "problem_code", "dma_while_locked", "starts_after_unlock")


def _combine(
    c: Conditions, compatible: bool, compat_ev: Evidence, reasons: list[str]
) -> tuple[_Behaviour, dict[str, Evidence]]:
    """Behaviour for the verdict; a field inherits the verdict's doubt only if the other verdict differs."""
    chosen = _behaviour(c, compatible, reasons)
    evidence = dict(chosen.evidence)
    if compat_ev is not D:
        other = _behaviour(c, not compatible, [])
        for name in _BEHAVIOUR_FIELDS:
            if getattr(other, name) != getattr(chosen, name):
                evidence[name] = Evidence.weakest(evidence[name], compat_ev)
            else:
                evidence[name] = Evidence.weakest(evidence[name], other.evidence[name])
    return chosen, evidence


# --------------------------------------------------------------------------- entry point


def expect(c: Conditions) -> Expectation:
    """The expectation for one plug event under conditions `c`.

    Raises `harness.domain.builds.BuildError` (a ValueError) for a build before 17134, and
    ValueError for an empty driver stack.
    """
    check_build(c.build)
    if not c.inf:
        raise ValueError("the driver stack needs at least one INF value (use 'absent')")
    reasons: list[str] = [f"{release_name(c.build)}, build {c.build}"]
    prop = _property(c, reasons)
    compatible, compat_ev = _compatibility(c, prop, reasons)
    behaviour, evidence = _combine(c, compatible, compat_ev, reasons)
    reasons.append(behaviour.reason)

    friendly = c.build >= FRIENDLY_DEVPKEY_BUILD
    if not friendly:
        reasons.append(
            "before 1903 the property has no friendly name: read it by its '{GUID} 18' key (§2)"
        )
    reasons.append(sources_line(reasons))
    evidence.update(
        devpkey=prop.evidence,
        # "0 or property absent" is the documented wording; decompiled kernels delete it at 0 (§2).
        devpkey_absent=U,
        devpkey_key=D,
    )
    return Expectation(
        devpkey=prop.value,
        devpkey_absent=prop.value == 0,
        devpkey_key=DEVPKEY_FRIENDLY if friendly else DEVPKEY_GUID_FORM,
        starts_at_plug=behaviour.starts_at_plug,
        problem_code=behaviour.problem_code,
        dma_while_locked=behaviour.dma_while_locked,
        starts_after_unlock=behaviour.starts_after_unlock,
        evidence={name: evidence[name] for name in FIELDS},
        reasons=tuple(reasons),
        conditions=c,
    )
