"""Typed results of the Windows operations (docs/windows-operations.md), validated on the way in.

Each `from_json(op, d)` checks every field's type (a bool is not an int, an int is not a bool,
timestamps are UTC ISO 8601) and raises `InfrastructureError("operation X returned ...")` naming
the field on a wrong shape: a script that answers nonsense is broken infrastructure, never a
product observation.

>>> dev = PnpDevice.from_json("pnp_devices", {"instance_id": "PCI\\\\VEN_1", "present": True,
...     "status": "Error", "problem_code": 55, "dma_policy": None, "dma_policy_key": "k",
...     "lower_filters": [], "upper_filters": [], "driver_stack": []})
>>> dev.blocked, dev.started
(True, False)
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from harness.domain.conditions import SessionState

# host_facts' result types live in harness.windows.facts; re-exported (`X as X`) for old imports.
from harness.windows.facts import HostFacts as HostFacts
from harness.windows.facts import KdpSource as KdpSource
from harness.windows.facts import KdpState as KdpState
from harness.windows.facts import KeyWritten as KeyWritten
from harness.windows.shape import JsonObject


@dataclass(frozen=True)
class FileWritten:
    path: str
    size: int

    @classmethod
    def from_json(cls, op: str, d: Any) -> FileWritten:
        o = JsonObject(op, d)
        return cls(o.text("path"), o.integer("size"))


@dataclass(frozen=True)
class FileHash:
    path: str
    exists: bool
    size: int | None
    sha256: str | None  # lower-case hex

    @classmethod
    def from_json(cls, op: str, d: Any) -> FileHash:
        o = JsonObject(op, d)
        sha = o.otext("sha256")
        if sha is not None and not re.fullmatch(r"[0-9a-fA-F]{64}", sha):
            o.fail("result.sha256", sha, "64 hexadecimal digits")
        return cls(
            o.text("path"), o.flag("exists"), o.ointeger("size"), sha.lower() if sha else None
        )


@dataclass(frozen=True)
class ParseIssue:
    line: int
    column: int
    message: str


@dataclass(frozen=True)
class ParseCheck:
    """`ps_parse`: the parser's errors per script name (an empty tuple: it parses)."""

    results: dict[str, tuple[ParseIssue, ...]]

    @property
    def ok(self) -> bool:
        return not any(self.results.values())

    @classmethod
    def from_json(cls, op: str, d: Any) -> ParseCheck:
        o = JsonObject(op, d).obj("results")
        out: dict[str, tuple[ParseIssue, ...]] = {}
        for name in o.d:
            out[name] = tuple(
                ParseIssue(i.integer("line"), i.integer("column"), i.text("message"))
                for i in o.objs(name)
            )
        return cls(out)


@dataclass(frozen=True)
class CommandOutput:
    exit_code: int
    output: str

    @classmethod
    def from_json(cls, op: str, d: Any) -> CommandOutput:
        o = JsonObject(op, d)
        return cls(o.integer("exit_code"), o.text("output"))


# -- driver packages -----------------------------------------------------------------------------
@dataclass(frozen=True)
class SignatureInfo:
    path: str
    status: str  # SignatureStatus name: Valid, NotSigned, HashMismatch, ...
    status_code: int
    signature_type: str  # None / Authenticode / Catalog
    signer_subject: str | None
    signer_matches: bool
    #: the signer certificate's SHA-1 thumbprint (upper-case hex), None when unsigned
    signer_thumbprint: str | None = None

    @property
    def valid(self) -> bool:
        return self.status == "Valid"

    @classmethod
    def from_json(cls, op: str, d: Any) -> tuple[SignatureInfo, ...]:
        return tuple(
            cls(
                f.text("path"),
                f.text("status"),
                f.integer("status_code"),
                f.text("signature_type"),
                f.otext("signer_subject"),
                f.flag("signer_matches"),
                f.otext("signer_thumbprint"),
            )
            for f in JsonObject(op, d).objs("files")
        )


class InstallOutcome(str, enum.Enum):
    """pnputil's exit code as the contract names it (0, 259, 3010, 1641, anything else)."""

    INSTALLED = "installed"
    NO_DEVICE = "no_device"
    REBOOT_REQUIRED = "reboot_required"
    REBOOT_INITIATED = "reboot_initiated"
    FAILED = "failed"


@dataclass(frozen=True)
class InstallResult:
    exit_code: int
    outcome: InstallOutcome
    published_name: str | None  # oemNN.inf (driver_install only)
    output: str

    @classmethod
    def from_json(cls, op: str, d: Any) -> InstallResult:
        o = JsonObject(op, d)
        outcome = o.choice("outcome", InstallOutcome)
        return cls(o.integer("exit_code"), outcome, o.otext("published_name"), o.text("output"))


@dataclass(frozen=True)
class DriverInfo:
    published_name: str
    original_name: str
    provider: str
    class_name: str
    version: str
    signer: str  # "" when the catalog's signer could not be read

    @classmethod
    def from_json(cls, op: str, d: Any) -> tuple[DriverInfo, ...]:
        return tuple(
            cls(
                x.text("published_name"),
                x.text("original_name"),
                x.text("provider"),
                x.text("class_name"),
                x.text("version"),
                x.otext("signer") or "",
            )
            for x in JsonObject(op, d).objs("drivers")
        )


@dataclass(frozen=True)
class ServiceDmaCompat:
    service: str
    exists: bool
    dma_remapping_compatible: int | None
    dma_remapping_on_hiber_path: int | None

    @classmethod
    def from_json(cls, op: str, d: Any) -> ServiceDmaCompat:
        o = JsonObject(op, d)
        return cls(
            o.text("service"),
            o.flag("exists"),
            o.ointeger("dma_remapping_compatible"),
            o.ointeger("dma_remapping_on_hiber_path"),
        )


@dataclass(frozen=True)
class ToolRun:
    """`verifier_set` and `test_signing_set`: a tool's exit code, whether a reboot is due."""

    exit_code: int
    reboot_required: bool
    output: str
    #: test_signing_set: BitLocker protection of the OS volume was suspended for one restart
    #: before the change (absent from verifier_set: False)
    bitlocker_suspended: bool = False

    @classmethod
    def from_json(cls, op: str, d: Any) -> ToolRun:
        o = JsonObject(op, d)
        suspended = bool(o.oflag("bitlocker_suspended"))
        return cls(o.integer("exit_code"), o.flag("reboot_required"), o.text("output"), suspended)


# -- Driver Verifier, DMAGuard, firmware -----------------------------------------------------------
@dataclass(frozen=True)
class VerifierSettings:
    flags: int | None
    drivers: tuple[str, ...]


@dataclass(frozen=True)
class VerifierState:
    pending: VerifierSettings  # what applies at the next boot
    active: VerifierSettings  # what runs now (meaningless unless `active_known`)
    reboot_pending: bool | None  # None when the active settings are unknown
    #: False when `verifier /query` printed something the op could not read (another display
    #: language saying nothing is verified, an error): unknown, never "off".
    active_known: bool = True

    @classmethod
    def from_json(cls, op: str, d: Any) -> VerifierState:
        o = JsonObject(op, d)
        p, a = o.obj("pending"), o.obj("active")
        known = o.oflag("active_known")
        return cls(
            VerifierSettings(p.ointeger("flags"), p.texts("drivers")),
            VerifierSettings(a.ointeger("flags"), a.texts("drivers")),
            o.oflag("reboot_pending"),
            True if known is None else known,
        )


@dataclass(frozen=True)
class DmaGuardChange:
    previous: int | None
    policy: int | None
    reboot_required: bool

    @classmethod
    def from_json(cls, op: str, d: Any) -> DmaGuardChange:
        o = JsonObject(op, d)
        return cls(o.ointeger("previous"), o.ointeger("policy"), o.flag("reboot_required"))


@dataclass(frozen=True)
class FirmwareKdp:
    vendor: str
    settings: dict[str, str]
    enabled: bool | None

    @classmethod
    def from_json(cls, op: str, d: Any) -> FirmwareKdp:
        o = JsonObject(op, d)
        s = o.obj("settings")
        return cls(o.text("vendor"), {k: s.text(k) for k in s.d}, o.oflag("enabled"))


@dataclass(frozen=True)
class FirmwareKdpChange:
    vendor: str
    changed: bool
    reboot_required: bool
    return_value: str | None
    #: the BIOS setting's name as found on the machine (Dell's is read at runtime)
    attribute: str | None = None
    #: BitLocker protection of the OS volume was suspended for one restart before the change
    bitlocker_suspended: bool = False

    @classmethod
    def from_json(cls, op: str, d: Any) -> FirmwareKdpChange:
        o = JsonObject(op, d)
        return cls(
            o.text("vendor"),
            o.flag("changed"),
            o.flag("reboot_required"),
            o.otext("return_value"),
            o.otext("attribute"),
            bool(o.oflag("bitlocker_suspended")),
        )


# -- session -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SessionInfo:
    state: SessionState | None  # None: "unknown" (WTS_SESSIONSTATE_UNKNOWN): poll again
    user: str | None
    session_id: int | None

    @classmethod
    def from_json(cls, op: str, d: Any) -> SessionInfo:
        o = JsonObject(op, d)
        state = None if o.d.get("state") == "unknown" else o.choice("state", SessionState)
        return cls(state, o.otext("user"), o.ointeger("session_id"))


# -- PnP -----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PnpDevice:
    instance_id: str
    friendly_name: str | None
    class_name: str | None  # "class" in the JSON
    present: bool
    status: str  # OK, Error, Degraded, Unknown
    problem_code: int  # 0 = none; 55 = blocked by Kernel DMA Protection
    dma_policy: int | None
    dma_policy_key: str
    service: str | None
    lower_filters: tuple[str, ...]
    upper_filters: tuple[str, ...]
    driver_stack: tuple[str, ...]
    inf_name: str | None
    last_arrival_utc: datetime | None
    last_removal_utc: datetime | None
    #: `Enum\<instance>\Device Parameters\DMA Management`: RemappingSupported and RemappingFlags
    #: (on 24H2+ they override the driver's DmaRemappingCompatible); None when absent.
    remapping_supported: int | None = None
    remapping_flags: int | None = None

    @property
    def started(self) -> bool:
        return self.present and self.problem_code == 0 and self.status == "OK"

    @property
    def blocked(self) -> bool:
        return self.problem_code == 55

    @classmethod
    def from_json(cls, op: str, d: Any, where: str = "result") -> PnpDevice:
        o = JsonObject(op, d, where)
        dma = o.oobj("dma_management")
        return cls(
            o.text("instance_id"),
            o.otext("friendly_name"),
            o.otext("class"),
            o.flag("present"),
            o.text("status"),
            o.integer("problem_code"),
            o.ointeger("dma_policy"),
            o.text("dma_policy_key"),
            o.otext("service"),
            o.texts("lower_filters"),
            o.texts("upper_filters"),
            o.texts("driver_stack"),
            o.otext("inf_name"),
            o.otime("last_arrival_utc"),
            o.otime("last_removal_utc"),
            dma.ointeger("remapping_supported") if dma else None,
            dma.ointeger("remapping_flags") if dma else None,
        )

    @classmethod
    def list_from_json(cls, op: str, d: Any) -> tuple[PnpDevice, ...]:
        return tuple(cls.from_json(op, x.d, x.where) for x in JsonObject(op, d).objs("devices"))


# -- reboot and crash evidence -------------------------------------------------------------------
@dataclass(frozen=True)
class RebootRequest:
    requested: bool
    last_boot_utc: datetime

    @classmethod
    def from_json(cls, op: str, d: Any) -> RebootRequest:
        o = JsonObject(op, d)
        return cls(o.flag("requested"), o.time("last_boot_utc"))


@dataclass(frozen=True)
class BugCheck:
    time_utc: datetime
    stop_code: int
    parameters: tuple[int, int, int, int]
    dump_path: str | None
    #: "wer-1001" (WER's report) or "kernel-power-41" (the stop code Kernel-Power 41 carries at
    #: boot, used when WER has not written 1001 within the op's wait)
    source: str = "wer-1001"

    def describe(self) -> str:
        """`bugcheck 0x000000E6 (0x26, 0x0, 0xFFFFC30A1B2C3D40, 0x0)`"""
        params = ", ".join(f"0x{p:X}" for p in self.parameters)
        return f"bugcheck 0x{self.stop_code:08X} ({params})"


@dataclass(frozen=True)
class DumpFile:
    path: str
    size: int
    modified_utc: datetime


def _four_ints(b: JsonObject, key: str) -> tuple[int, int, int, int]:
    params = b._typed(key, (list,), "a list of 4 integers", False)
    if len(params) != 4 or not all(isinstance(p, int) and not isinstance(p, bool) for p in params):
        b.fail(f"{b.where}.{key}", params, "a list of 4 integers")
    p0, p1, p2, p3 = params
    return (p0, p1, p2, p3)


@dataclass(frozen=True)
class CrashEvidence:
    bugchecks: tuple[BugCheck, ...]
    unexpected_shutdowns: tuple[datetime, ...]  # Kernel-Power 41
    dumps: tuple[DumpFile, ...]
    setupapi_tail: str
    #: Kernel-Power 41 events whose BugcheckCode is not 0: the stop code as the kernel logged it
    #: at boot (event 1001 may come later, or never).
    shutdown_bugchecks: tuple[BugCheck, ...] = ()

    @property
    def crashed(self) -> bool:
        return bool(self.bugchecks or self.shutdown_bugchecks)

    @classmethod
    def from_json(cls, op: str, d: Any) -> CrashEvidence:
        o = JsonObject(op, d)
        bugchecks = []
        for b in o.objs("bugchecks"):
            bugchecks.append(
                BugCheck(
                    b.time("time_utc"),
                    b.integer("stop_code"),
                    _four_ints(b, "parameters"),
                    b.otext("dump_path"),
                    b.otext("source") or "wer-1001",
                )
            )
        shutdowns, coded = [], []
        for u in o.objs("unexpected_shutdowns"):
            shutdowns.append(u.time("time_utc"))
            code = u.ointeger("bugcheck_code")
            if code:
                params = _four_ints(u, "parameters")
                coded.append(BugCheck(shutdowns[-1], code, params, None, "kernel-power-41"))
        return cls(
            tuple(bugchecks),
            tuple(shutdowns),
            tuple(
                DumpFile(f.text("path"), f.integer("size"), f.time("modified_utc"))
                for f in o.objs("dumps")
            ),
            o.text("setupapi_tail"),
            tuple(coded),
        )


# -- DMA probes ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class StorageProbeResult:
    ok: bool
    reason: str | None
    drive_letter: str | None
    disk_number: int | None
    bytes: int
    write_mb_s: float | None
    read_mb_s: float | None
    verified: bool

    @classmethod
    def from_json(cls, op: str, d: Any) -> StorageProbeResult:
        o = JsonObject(op, d)
        return cls(
            o.flag("ok"),
            o.otext("reason"),
            o.otext("drive_letter"),
            o.ointeger("disk_number"),
            o.integer("bytes"),
            o.ofloat("write_mb_s"),
            o.ofloat("read_mb_s"),
            o.flag("verified"),
        )


# -- readiness: the caller's token, the lab's signing certificate ---------------------------------
@dataclass(frozen=True)
class TokenState:
    """`token_state`: whether the operations run with a full administrator token."""

    user: str
    elevated: bool
    local_account_token_filter_policy: int | None

    @classmethod
    def from_json(cls, op: str, d: Any) -> TokenState:
        o = JsonObject(op, d)
        return cls(
            o.text("user"), o.flag("elevated"), o.ointeger("local_account_token_filter_policy")
        )


@dataclass(frozen=True)
class CertificateState:
    """`cert_provision`: per certificate (SHA-1 thumbprint), which LocalMachine stores hold it."""

    stores: dict[str, dict[str, bool]]  # thumbprint -> {"Root": bool, "TrustedPublisher": bool}
    imported: int

    @property
    def missing(self) -> dict[str, tuple[str, ...]]:
        """Thumbprint -> the stores it is missing from (only certificates missing somewhere)."""
        out = {t: tuple(s for s, held in st.items() if not held) for t, st in self.stores.items()}
        return {t: s for t, s in out.items() if s}

    @classmethod
    def from_json(cls, op: str, d: Any) -> CertificateState:
        o = JsonObject(op, d)
        stores: dict[str, dict[str, bool]] = {}
        for c in o.objs("certificates"):
            held = JsonObject(op, c.d.get("stores"), f"{c.where}.stores")
            stores[c.text("thumbprint").upper()] = {
                name: held.flag(name) for name in ("Root", "TrustedPublisher")
            }
        return cls(stores, o.integer("imported"))


@dataclass(frozen=True)
class BitLockerState:
    """`bitlocker_state`: the OS volume's BitLocker as `Get-BitLockerVolume` reports it."""

    available: bool  # False: no BitLocker module (e.g. Home edition) or no volume object
    mount_point: str
    protection_status: str | None  # "On", "Off" (also while suspended), "Unknown"
    volume_status: str | None  # "FullyEncrypted", "FullyDecrypted", ...
    key_protectors: tuple[str, ...]

    @property
    def protected(self) -> bool:
        return self.protection_status == "On"

    @classmethod
    def from_json(cls, op: str, d: Any) -> BitLockerState:
        o = JsonObject(op, d)
        return cls(
            o.flag("available"),
            o.text("mount_point"),
            o.otext("protection_status"),
            o.otext("volume_status"),
            tuple(o.texts("key_protectors")),
        )
