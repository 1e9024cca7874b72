"""Typed results of the Windows operations (docs/windows-operations.md), validated on the way in.

Each result type is a frozen pydantic dataclass read strictly (`harness.windows.shape`): a bool
is not an int, an int is not a bool, timestamps are UTC ISO 8601, unknown fields are ignored and
an absent nullable field is null. `X.from_json(op, d)` raises `InfrastructureError("operation X
returned ...")` naming the field on a wrong shape: a script that answers nonsense is broken
infrastructure, never a product observation.

>>> dev = PnpDevice.from_json("pnp_devices", {"instance_id": "PCI\\\\VEN_1", "present": True,
...     "status": "Error", "problem_code": 55, "dma_policy": None, "dma_policy_key": "k",
...     "lower_filters": [], "upper_filters": [], "driver_stack": []})
>>> dev.blocked, dev.started
(True, False)
"""

from __future__ import annotations

import enum
from collections.abc import Collection
from dataclasses import replace
from datetime import datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, Field, StringConstraints
from pydantic.dataclasses import dataclass

from harness.domain.conditions import SessionState
from harness.errors import InfrastructureError

# host_facts' result types live in harness.windows.facts; re-exported (`X as X`) for old imports.
from harness.windows.facts import HostFacts as HostFacts
from harness.windows.facts import KdpSource as KdpSource
from harness.windows.facts import KdpState as KdpState
from harness.windows.facts import KeyWritten as KeyWritten
from harness.windows.shape import STRICT, Expect, Result, UtcTime, null_as, read

Sha256 = Annotated[
    str,
    StringConstraints(pattern=r"^[0-9a-fA-F]{64}$"),
    AfterValidator(str.lower),
    Expect("64 hexadecimal digits"),
]
FourInts = Annotated[tuple[int, int, int, int], Expect("a list of 4 integers")]
#: one crash as the logs tell it: stop code and its four parameters
CrashKey = tuple[int, tuple[int, ...]]


@dataclass(frozen=True, config=STRICT)
class FileWritten(Result):
    path: str
    size: int


@dataclass(frozen=True, config=STRICT)
class FileHash(Result):
    path: str
    exists: bool
    size: int | None
    sha256: Sha256 | None  # lower-case hex


@dataclass(frozen=True, config=STRICT)
class ParseIssue:
    line: int
    column: int
    message: str


@dataclass(frozen=True, config=STRICT)
class ParseCheck(Result):
    """`ps_parse`: the parser's errors per script name (an empty tuple: it parses)."""

    results: dict[str, tuple[ParseIssue, ...]]

    @property
    def ok(self) -> bool:
        return not any(self.results.values())


@dataclass(frozen=True, config=STRICT)
class CommandOutput(Result):
    exit_code: int
    output: str


# -- driver packages -----------------------------------------------------------------------------
@dataclass(frozen=True, config=STRICT)
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
    def list_from_json(cls, op: str, d: Any) -> tuple[SignatureInfo, ...]:
        return read(op, _Signatures, d).files


@dataclass(frozen=True, config=STRICT)
class _Signatures:
    files: tuple[SignatureInfo, ...]


class InstallOutcome(str, enum.Enum):
    """pnputil's exit code as the contract names it (0, 259, 3010, 1641, anything else)."""

    INSTALLED = "installed"
    NO_DEVICE = "no_device"
    REBOOT_REQUIRED = "reboot_required"
    REBOOT_INITIATED = "reboot_initiated"
    FAILED = "failed"


@dataclass(frozen=True, config=STRICT)
class InstallResult(Result):
    exit_code: int
    outcome: InstallOutcome
    published_name: str | None  # oemNN.inf (driver_install only)
    output: str


@dataclass(frozen=True, config=STRICT)
class DriverInfo:
    published_name: str
    original_name: str
    provider: str
    class_name: str
    version: str
    signer: Annotated[str, null_as("")] = ""  # "" when the catalog's signer could not be read

    @classmethod
    def list_from_json(cls, op: str, d: Any) -> tuple[DriverInfo, ...]:
        return read(op, _Drivers, d).drivers


@dataclass(frozen=True, config=STRICT)
class _Drivers:
    drivers: tuple[DriverInfo, ...]


@dataclass(frozen=True, config=STRICT)
class ServiceDmaCompat(Result):
    service: str
    exists: bool
    dma_remapping_compatible: int | None
    dma_remapping_on_hiber_path: int | None


@dataclass(frozen=True, config=STRICT)
class ToolRun(Result):
    """`verifier_set` and `test_signing_set`: a tool's exit code, whether a reboot is due."""

    exit_code: int
    reboot_required: bool
    output: str
    #: test_signing_set: BitLocker protection of the OS volume was suspended for one restart
    #: before the change (absent from verifier_set: False)
    bitlocker_suspended: Annotated[bool, null_as(False)] = False


# -- Driver Verifier, DMAGuard, firmware -----------------------------------------------------------
@dataclass(frozen=True, config=STRICT)
class VerifierSettings:
    flags: int | None
    drivers: tuple[str, ...]


@dataclass(frozen=True, config=STRICT)
class VerifierState(Result):
    pending: VerifierSettings  # what applies at the next boot
    active: VerifierSettings  # what runs now (meaningless unless `active_known`)
    reboot_pending: bool | None  # None when the active settings are unknown
    #: False when `verifier /query` printed something the op could not read (another display
    #: language saying nothing is verified, an error): unknown, never "off".
    active_known: Annotated[bool, null_as(True)] = True


@dataclass(frozen=True, config=STRICT)
class DmaGuardChange(Result):
    previous: int | None
    policy: int | None
    reboot_required: bool


@dataclass(frozen=True, config=STRICT)
class FirmwareKdp(Result):
    vendor: str
    settings: dict[str, str]
    enabled: bool | None


@dataclass(frozen=True, config=STRICT)
class FirmwareKdpChange(Result):
    vendor: str
    changed: bool
    reboot_required: bool
    return_value: str | None
    #: the BIOS setting's name as found on the machine (Dell's is read at runtime)
    attribute: str | None = None
    #: BitLocker protection of the OS volume was suspended for one restart before the change
    bitlocker_suspended: Annotated[bool, null_as(False)] = False


# -- session -------------------------------------------------------------------------------------
def _unknown_state(value: Any) -> Any:
    if value is None:
        raise ValueError("null")
    return None if value == "unknown" else value


@dataclass(frozen=True, config=STRICT)
class SessionInfo(Result):
    #: None: "unknown" (WTS_SESSIONSTATE_UNKNOWN): poll again
    state: Annotated[
        SessionState | None,
        BeforeValidator(_unknown_state),
        Expect("one of " + ", ".join(repr(s.value) for s in SessionState) + ", 'unknown'"),
    ]
    user: str | None
    session_id: int | None


# -- PnP -----------------------------------------------------------------------------------------
@dataclass(frozen=True, config=STRICT)
class DmaManagement:
    """`Enum\\<instance>\\Device Parameters\\DMA Management` (on 24H2+ it overrides the driver's
    DmaRemappingCompatible)."""

    remapping_supported: int | None
    remapping_flags: int | None


@dataclass(frozen=True, config=STRICT)
class PnpDevice(Result):
    instance_id: str
    friendly_name: str | None
    class_name: Annotated[str | None, Field(alias="class")]
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
    last_arrival_utc: UtcTime | None
    last_removal_utc: UtcTime | None
    dma_management: DmaManagement | None = None  # None when the key is absent

    @property
    def remapping_supported(self) -> int | None:
        return self.dma_management.remapping_supported if self.dma_management else None

    @property
    def remapping_flags(self) -> int | None:
        return self.dma_management.remapping_flags if self.dma_management else None

    @property
    def started(self) -> bool:
        return self.present and self.problem_code == 0 and self.status == "OK"

    @property
    def blocked(self) -> bool:
        return self.problem_code == 55

    @classmethod
    def list_from_json(cls, op: str, d: Any) -> tuple[PnpDevice, ...]:
        return read(op, _Devices, d).devices


@dataclass(frozen=True, config=STRICT)
class _Devices:
    devices: tuple[PnpDevice, ...]


# -- reboot and crash evidence -------------------------------------------------------------------
@dataclass(frozen=True, config=STRICT)
class RebootRequest(Result):
    requested: bool
    last_boot_utc: UtcTime


@dataclass(frozen=True, config=STRICT)
class BugCheck:
    time_utc: UtcTime
    stop_code: int
    parameters: FourInts
    dump_path: str | None
    #: "wer-1001" (WER's report) or "kernel-power-41" (the stop code Kernel-Power 41 carries at
    #: boot, used when WER has not written 1001 within the op's wait)
    source: Annotated[str, null_as("wer-1001")] = "wer-1001"

    @property
    def key(self) -> CrashKey:
        """What tells one crash from another in the logs: stop code and parameters."""
        return self.stop_code, tuple(self.parameters)

    def describe(self) -> str:
        """`bugcheck 0x000000E6 (0x26, 0x0, 0xFFFFC30A1B2C3D40, 0x0)`"""
        params = ", ".join(f"0x{p:X}" for p in self.parameters)
        return f"bugcheck 0x{self.stop_code:08X} ({params})"


@dataclass(frozen=True, config=STRICT)
class DumpFile:
    path: str
    size: int
    modified_utc: UtcTime


@dataclass(frozen=True, config=STRICT)
class _Shutdown:
    """A Kernel-Power 41 event; `bugcheck_code` is 0 (or absent) when it logged no stop code."""

    time_utc: UtcTime
    bugcheck_code: int | None = None
    parameters: FourInts | None = None


@dataclass(frozen=True, config=STRICT)
class _Evidence:
    bugchecks: tuple[BugCheck, ...]
    unexpected_shutdowns: tuple[_Shutdown, ...]
    dumps: tuple[DumpFile, ...]
    setupapi_tail: str


@dataclass(frozen=True, config=STRICT)
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

    def without_late_reports(self, reported: Collection[CrashKey]) -> CrashEvidence:
        """This evidence without WER's late 1001 for a crash already reported.

        Kernel-Power 41 carries the stop code at the boot after a crash; WER logs its 1001 for
        the same crash later, stamped with its own later time, so a caller that reported the
        crash from 41 would see it again as new. A 1001 is that late report when its stop code
        and parameters are a reported crash's and no Kernel-Power 41 here could be its own (every
        41 here carries a stop code, and none is that crash's): a crash that happens again logs
        a 41 of its own first.
        """
        own = {b.key for b in self.shutdown_bugchecks}
        if len(self.shutdown_bugchecks) < len(self.unexpected_shutdowns):
            return self  # a 41 without a stop code could be any crash's
        kept = tuple(
            b
            for b in self.bugchecks
            if b.source != "wer-1001" or b.key not in reported or b.key in own
        )
        return self if kept == self.bugchecks else replace(self, bugchecks=kept)

    @classmethod
    def from_json(cls, op: str, d: Any) -> CrashEvidence:
        e: _Evidence = read(op, _Evidence, d)
        coded = []
        for i, s in enumerate(e.unexpected_shutdowns):
            if not s.bugcheck_code:
                continue
            if s.parameters is None:
                where = f"result.unexpected_shutdowns[{i}]"
                raise InfrastructureError(f"operation {op} returned {where} without 'parameters'")
            coded.append(
                BugCheck(s.time_utc, s.bugcheck_code, s.parameters, None, "kernel-power-41")
            )
        shutdowns = tuple(s.time_utc for s in e.unexpected_shutdowns)
        return cls(e.bugchecks, shutdowns, e.dumps, e.setupapi_tail, tuple(coded))


# -- DMA probes ----------------------------------------------------------------------------------
@dataclass(frozen=True, config=STRICT)
class StorageProbeResult(Result):
    ok: bool
    reason: str | None
    drive_letter: str | None
    disk_number: int | None
    bytes: int
    write_mb_s: float | None
    read_mb_s: float | None
    verified: bool


# -- readiness: the caller's token, the lab's signing certificate ---------------------------------
@dataclass(frozen=True, config=STRICT)
class TokenState(Result):
    """`token_state`: whether the operations run with a full administrator token."""

    user: str
    elevated: bool
    local_account_token_filter_policy: int | None


@dataclass(frozen=True, config=STRICT)
class AutologonState(Result):
    """`autologon_state`: Winlogon autologon as the registry has it (read-only)."""

    enabled: bool
    user: str | None
    password_in_registry: bool  # a plain-text DefaultPassword value exists


@dataclass(frozen=True, config=STRICT)
class _Stores:
    Root: bool
    TrustedPublisher: bool


@dataclass(frozen=True, config=STRICT)
class _Certificate:
    thumbprint: str
    stores: _Stores


@dataclass(frozen=True, config=STRICT)
class _Certificates:
    certificates: tuple[_Certificate, ...]
    imported: int


@dataclass(frozen=True, config=STRICT)
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
        c: _Certificates = read(op, _Certificates, d)
        stores = {
            x.thumbprint.upper(): {
                "Root": x.stores.Root,
                "TrustedPublisher": x.stores.TrustedPublisher,
            }
            for x in c.certificates
        }
        return cls(stores, c.imported)


@dataclass(frozen=True, config=STRICT)
class BitLockerState(Result):
    """`bitlocker_state`: the OS volume's BitLocker as `Get-BitLockerVolume` reports it."""

    available: bool  # False: no BitLocker module (e.g. Home edition) or no volume object
    mount_point: str
    protection_status: str | None  # "On", "Off" (also while suspended), "Unknown"
    volume_status: str | None  # "FullyEncrypted", "FullyDecrypted", ...
    key_protectors: tuple[str, ...]

    @property
    def protected(self) -> bool:
        return self.protection_status == "On"
