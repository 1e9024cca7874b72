"""The simulated kernel's DMA rules, written as the mechanism Windows implements.

This is deliberately a second, independent model of docs/domain.md (the harness's oracle in
`harness/domain/policy.py` is the first): it reads the *registry* the way the kernel does at
device add (`PiDmaGuardProcessPreAddDevice` and friends, §1–§2), and DMAGuard decides started vs
Code 55 from the policy applied at boot, the port and the session (§3–§4). Neither module imports
the other; tests make them agree.

Per-device key (24H2+, §1.2) first; otherwise each driver of the stack is classified from its
service's `Parameters\\DmaRemappingCompatible` and the stack is aggregated: any opt-out → 1; else
any conditional → 2 if the device is external (or exposed, quirk `inf2_exposed_port`) else 0;
else any opt-in → 2; else 0 (property absent).

Quirks (docs/domain.md §10.3, undocumented behaviour; defaults noted):
- `inf3_on_win10`: `like-2` (default; the documented fallback) or `none` (decompiled kernels
  treat 3 as no directive) or `opt-in`.
- `inf2_exposed_port`: `opt-in` (default; newer kernels test external-or-exposed) or
  `not-external` (the docs' wording: only external devices).
- `volatile_verifier_promotes`: true (default) — a `/volatile` 0x80 target counts at device add.
- `dmaguard_policy0_problem`: 55 (default; the docs only say "never starts").
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass

from harness.virtual_lab.windows.registry import ENUM, SERVICES, Registry

WINDOWS11_BUILD = 22000
PER_DEVICE_BUILD = 26100
EXPOSED_PORT_BUILD = 18362
CSP_BUILD = 17763
VERIFIER_DMA_FLAG = 0x80
CM_PROB_CONSOLE_LOCKED = 55
CM_PROB_FAILED_INSTALL = 28

QUIRK_DEFAULTS: dict[str, str | int | bool] = {
    "inf3_on_win10": "like-2",
    "inf2_exposed_port": "opt-in",
    "volatile_verifier_promotes": True,
    "dmaguard_policy0_problem": CM_PROB_CONSOLE_LOCKED,
}


class DriverClass(enum.Enum):
    NONE = "none"
    OPT_OUT = "opt-out"
    OPT_IN = "opt-in"
    CONDITIONAL = "conditional"


class StartDecision(enum.Enum):
    START = "start"
    BLOCK_UNTIL_LOGON = "block-until-logon"
    BLOCK = "block"


@dataclass(frozen=True)
class AddContext:
    """What the kernel knows when a device is added."""

    build: int
    instance_id: str
    stack: tuple[str, ...]  # service names: function driver, then filters
    port_kind: str  # "external" | "exposed" | "internal"
    verified_drivers: frozenset[str]  # lower-case service names with 0x80 active
    quirks: dict[str, str | int | bool]


@dataclass(frozen=True)
class PolicyResult:
    value: int  # 0 means the property is absent
    trace: tuple[str, ...]


def quirk(quirks: dict[str, str | int | bool], name: str) -> str | int | bool:
    return quirks.get(name, QUIRK_DEFAULTS[name])


def device_key(instance_id: str) -> str:
    return f"{ENUM}\\{instance_id}\\Device Parameters\\DMA Management"


def _external(ctx: AddContext) -> bool:
    if ctx.port_kind == "external":
        return True
    return ctx.port_kind == "exposed" and quirk(ctx.quirks, "inf2_exposed_port") == "opt-in"


def classify_driver(value: object, service: str, ctx: AddContext) -> tuple[DriverClass, str]:
    """One driver's directive, as read from its service key."""
    promoted = service.lower() in ctx.verified_drivers
    if value == 0:
        return DriverClass.OPT_OUT, f"{service}: DmaRemappingCompatible 0 (opt-out)"
    if value == 1:
        return DriverClass.OPT_IN, f"{service}: DmaRemappingCompatible 1 (opt-in)"
    if value == 3:
        if ctx.build >= WINDOWS11_BUILD:
            return DriverClass.OPT_IN, f"{service}: DmaRemappingCompatible 3 (opt-in on Windows 11)"
        mode = quirk(ctx.quirks, "inf3_on_win10")
        if mode == "opt-in":
            return DriverClass.OPT_IN, f"{service}: 3 on Windows 10, quirk opt-in"
        if mode == "none":
            return DriverClass.NONE, f"{service}: 3 on Windows 10, quirk none (no directive)"
        value = 2  # the documented fallback
    if value == 2:
        if promoted:
            return DriverClass.OPT_IN, f"{service}: 2 promoted by Driver Verifier 0x80 at add"
        return DriverClass.CONDITIONAL, f"{service}: DmaRemappingCompatible 2 (conditional)"
    if value is None:
        return DriverClass.NONE, f"{service}: no DmaRemappingCompatible"
    return DriverClass.NONE, f"{service}: DmaRemappingCompatible {value!r} not understood"


def remapping_policy(reg: Registry, ctx: AddContext) -> PolicyResult:
    """DEVPKEY_Device_DmaRemappingPolicy as computed when the device is added."""
    trace: list[str] = []
    if ctx.build >= PER_DEVICE_BUILD:
        key = device_key(ctx.instance_id)
        supported = reg.get(key, "RemappingSupported")
        if supported is not None:
            flags = reg.get(key, "RemappingFlags") or 0
            trace.append(f"per-device RemappingSupported {supported}, RemappingFlags {flags}")
            if supported == 0:
                return PolicyResult(1, tuple(trace))
            if supported == 1 and flags & 1:
                ok = _external(ctx) or bool(ctx.verified_drivers & {s.lower() for s in ctx.stack})
                trace.append("conditional: " + ("external or verified" if ok else "internal"))
                return PolicyResult(2 if ok else 0, tuple(trace))
            if supported == 1:
                return PolicyResult(2, tuple(trace))
            trace.append("RemappingSupported not understood: falling back to the drivers")
    classes: list[DriverClass] = []
    for service in ctx.stack:
        value = reg.get(f"{SERVICES}\\{service}\\Parameters", "DmaRemappingCompatible")
        cls, why = classify_driver(value, service, ctx)
        classes.append(cls)
        trace.append(why)
    return PolicyResult(_aggregate(classes, ctx, trace), tuple(trace))


def _aggregate(classes: Iterable[DriverClass], ctx: AddContext, trace: list[str]) -> int:
    seen = set(classes)
    if DriverClass.OPT_OUT in seen:
        trace.append("a driver opted out: 1")
        return 1
    if DriverClass.CONDITIONAL in seen:
        value = 2 if _external(ctx) else 0
        trace.append(f"conditional on a {ctx.port_kind} port: {value}")
        return value
    if DriverClass.OPT_IN in seen:
        trace.append("every directive opts in: 2")
        return 2
    trace.append("no directive: property absent")
    return 0


def start_decision(
    *,
    build: int,
    kdp_active: bool,
    port_kind: str,
    policy_at_boot: int | None,
    remapping_policy: int,
) -> StartDecision:
    """DMAGuard: may a just-added device start now? (The session is applied by the caller.)"""
    if not kdp_active:
        return StartDecision.START
    in_scope = port_kind == "external" or (port_kind == "exposed" and build >= EXPOSED_PORT_BUILD)
    if not in_scope or remapping_policy == 2:
        return StartDecision.START
    policy = policy_at_boot if build >= CSP_BUILD and policy_at_boot in (0, 1, 2) else 1
    if policy == 2:
        return StartDecision.START
    if policy == 0:
        return StartDecision.BLOCK
    return StartDecision.BLOCK_UNTIL_LOGON
