"""The lab inventory schema: DUTs, instruments, devices, driver packages, the virtual lab.

Pure pydantic models (unknown keys rejected); loading and cross-checks are in `lab.py`.

>>> t = WinRmTransport(kind="winrm", scheme="https")
>>> t.port, t.auth
(5986, 'ntlm')
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, WithJsonSchema, model_validator

from harness.config.model import (
    MAX_DURATION_S,
    MAX_INSTRUMENT_TIMEOUT_S,
    ConfigModel,
    IntAsStr,
    Name,
)
from harness.config.secrets import SecretRef
from harness.domain.builds import check_build, is_windows11
from harness.domain.conditions import DmaGuardPolicy, OnOff, PortKind

Build = Annotated[int, AfterValidator(check_build)]
#: DMAGuard policy; YAML ints 0/1/2 are accepted as "0"/"1"/"2".
DmaGuard = Annotated[
    DmaGuardPolicy,
    IntAsStr,
    WithJsonSchema({"enum": ["absent", "0", "1", "2", 0, 1, 2]}),
]
FirmwareControl = Literal["lenovo-wmi", "dell-wmi", "none"]
SWITCH_KINDS = ("scpi-switch", "mcci-usb4-switch")
#: Channels a switch kind has at most (None: as many as `channels:` says); all count from 1.
SWITCH_CHANNELS: dict[str, int | None] = {"scpi-switch": None, "mcci-usb4-switch": 2}
PER_DEVICE_KEY_BUILD = 26100

_VISA_RE = re.compile(
    r"^(?:(?:TCPIP|USB|GPIB|VXI|PXI|VICP)\d*::\S+|ASRL\S*::INSTR)$", re.IGNORECASE
)


def _check_resource(value: str) -> str:
    if value != "virtual" and not _VISA_RE.match(value):
        raise ValueError(
            f"{value!r} is not a VISA resource string such as 'TCPIP0::10.0.0.5::5025::SOCKET' "
            "or 'ASRL/dev/ttyACM0::INSTR' (or 'virtual' for the virtual lab)"
        )
    return value


class WinRmTransport(ConfigModel):
    kind: Literal["winrm"]
    scheme: Literal["http", "https"] = "https"
    port: int | None = Field(None, ge=1, le=65535, description="default 5985 (http) / 5986 (https)")
    auth: Literal["ntlm", "kerberos", "credssp", "basic"] = "ntlm"
    ca_file: Path | None = None
    allow_unencrypted: bool = False
    server_cert_validation: Literal["validate", "ignore"] = "validate"
    persistent_powershell: bool = Field(
        True,
        description="run scripts in one persistent PowerShell host per connection (false: a new "
        "powershell.exe per script); over SSH a host that cannot start falls back to per call",
    )

    @model_validator(mode="after")
    def _defaults(self) -> WinRmTransport:
        if self.port is None:
            self.port = 5986 if self.scheme == "https" else 5985
        if self.auth == "basic" and self.scheme == "http" and not self.allow_unencrypted:
            raise ValueError(
                "basic auth over http sends the password in clear: "
                "use https, or set allow_unencrypted: true"
            )
        return self


class SshTransport(ConfigModel):
    kind: Literal["ssh"]
    port: int = Field(22, ge=1, le=65535)
    known_hosts: Path | None = Field(
        None, description="required for real DUTs; the virtual lab writes its own"
    )
    key_file: Path | None = None
    shell: Literal["powershell", "cmd"] = "powershell"
    persistent_powershell: bool = Field(
        True,
        description="run scripts in one persistent PowerShell host per connection (false: a new "
        "powershell.exe per script); over SSH a host that cannot start falls back to per call",
    )


Transport = Annotated[WinRmTransport | SshTransport, Field(discriminator="kind")]


class Credentials(ConfigModel):
    username: str = Field(min_length=1)
    password: SecretRef


class Kdp(ConfigModel):
    declared: OnOff
    firmware_control: FirmwareControl = "none"


class Port(ConfigModel):
    kind: PortKind
    switch: Name
    channel: int = Field(ge=1, description="the switch channel, counted from 1")
    device: Name


def is_typable(text: str) -> bool:
    """True if the HID keyboard emulator can type `text` (its protocol's limit, which the lab
    file's validation applies to passwords it must type): printable ASCII, no line breaks."""
    return all(" " <= c <= "~" for c in text)


class SessionControl(ConfigModel):
    lock: Literal["scheduled-task", "none"] = "scheduled-task"
    unlock: Literal["hid-keyboard", "autologon-reboot", "none"]
    keyboard: Name | None = None
    autologon_user: str | None = None

    @model_validator(mode="after")
    def _keyboard(self) -> SessionControl:
        if self.unlock == "hid-keyboard" and self.keyboard is None:
            raise ValueError("unlock: hid-keyboard needs 'keyboard: <instrument name>'")
        return self


class Baseline(ConfigModel):
    """The conditions teardown restores."""

    kdp: OnOff = OnOff.ON
    dmaguard: DmaGuard = DmaGuardPolicy.ABSENT
    verifier_dma: OnOff = OnOff.OFF
    test_signing: OnOff = OnOff.OFF


class Dut(ConfigModel):
    address: str = Field(min_length=1)
    transport: Transport
    credentials: Credentials | None = None
    os_build: Build
    edition: str
    kdp: Kdp
    ports: dict[Name, Port] = Field(min_length=1)
    session_control: SessionControl
    baseline: Baseline = Field(default_factory=Baseline)
    capabilities: list[str] = Field(default_factory=list)
    pool: Name | None = Field(
        None,
        description="DUTs with the same pool name are interchangeable: a plan's scenarios for "
        "the pool run once, spread over its DUTs (they must have the same build, ports, KDP "
        "control, session control and baseline)",
    )

    def capabilities_set(self) -> frozenset[str]:
        """Derived capabilities plus the explicit list."""
        caps = {f"{p.kind.value}-port" for p in self.ports.values()}
        if self.kdp.declared is OnOff.ON:
            caps.add("kdp")
        if self.kdp.firmware_control != "none":
            caps.add("kdp-control")
        caps.add("windows11" if is_windows11(self.os_build) else "windows10")
        if self.os_build >= PER_DEVICE_KEY_BUILD:
            caps.add("per-device-key")
        if self.session_control.unlock == "hid-keyboard":
            caps.add("hid-unlock")
        caps.update(self.capabilities)
        return frozenset(caps)


class Instrument(ConfigModel):
    kind: Literal["scpi-switch", "mcci-usb4-switch", "hid-keyboard"]
    resource: Annotated[str, AfterValidator(_check_resource)]
    timeout_s: float = Field(5.0, gt=0, le=MAX_INSTRUMENT_TIMEOUT_S)
    channels: int | None = Field(None, ge=1)


class StorageProbe(ConfigModel):
    kind: Literal["storage"]
    volume_label: str = Field(min_length=1)


class NetworkProbe(ConfigModel):
    kind: Literal["network"]
    target: str = Field(min_length=1)


class CommandProbe(ConfigModel):
    kind: Literal["command"]
    command: str = Field(min_length=1)


DmaProbe = Annotated[StorageProbe | NetworkProbe | CommandProbe, Field(discriminator="kind")]


class Device(ConfigModel):
    hardware_id: str = Field(min_length=1, pattern=r"^\S+$", description="fnmatch-style pattern")
    device_class: str = Field(alias="class")
    description: str = ""
    dma_probe: DmaProbe | None = None


class DriverPackage(ConfigModel):
    path: Path = Field(description="the .inf, relative to the lab file's directory")
    expected_signer: str
    description: str = ""
    test_certificates: list[Path] = Field(
        default_factory=list,
        description="a test-signed package's certificates (.cer, DER): imported into each "
        "DUT's LocalMachine Root and TrustedPublisher before the install",
    )


class VirtualDut(ConfigModel):
    """A simulated Windows machine; durations are real-world seconds (scaled by time_scale)."""

    build: Build
    edition: str
    kdp_capable: bool = True
    firmware: FirmwareControl = "none"
    secure_boot: bool = True
    boot_time_s: float = Field(
        45.0, gt=0, le=MAX_DURATION_S, description="real-world reboot duration"
    )
    hostname: str | None = Field(None, description="default: the DUT name in upper case")
    faulty_driver: str | None = Field(
        None, description="service whose DMA under Verifier 0x80 bugchecks 0xE6"
    )
    quirks: dict[str, str | int | bool] = Field(default_factory=dict)


class VirtualInstrument(ConfigModel):
    kind: Literal["scpi-switch", "mcci-usb4-switch", "hid-keyboard"]


FaultName = Literal[
    "drop-connection",
    "refuse-connections",
    "reboot-hang",
    "slow-reboot",
    "bugcheck",
    "enumeration-failure",
    "switch-silent",
    "switch-error",
    "switch-stream",
    "switch-garbage",
    "auth-failure",
]


class VirtualFault(ConfigModel):
    """A fault active for the whole run (the control endpoint injects the same kinds)."""

    kind: FaultName
    dut: Name | None = None
    instrument: Name | None = None
    operation: str | None = Field(None, description="operation name the fault is tied to")
    port: Name | None = None
    factor: float = Field(4.0, gt=0, le=1000, description="slow-reboot: boot time multiplier")
    count: int | None = Field(None, ge=1, description="how many times; default: every time")


class VirtualLab(ConfigModel):
    time_scale: float = Field(
        1.0, gt=0, le=10, description="every simulated duration is its real-world figure x this"
    )
    trusted_roots: list[Path] = Field(
        default_factory=list,
        description="DER certificates the virtual DUTs trust as release (production) roots, "
        "relative to the lab file",
    )
    duts: dict[Name, VirtualDut] = Field(min_length=1)
    instruments: dict[Name, VirtualInstrument] = Field(default_factory=dict)
    faults: list[VirtualFault] = Field(default_factory=list)


class CostModel(ConfigModel):
    """Real-world durations (seconds) that `plan show` and the scheduler estimate lab time
    with. The defaults are estimates for a typical Thunderbolt laptop in a lab; a lab measures
    its own and overrides them under `cost_model:`."""

    reboot_s: float = Field(
        180.0, ge=0, le=MAX_DURATION_S, description="restart until WinRM/SSH answers again"
    )
    firmware_setting_s: float = Field(
        15.0, ge=0, le=MAX_DURATION_S, description="one KDP change through WMI"
    )
    os_setting_s: float = Field(
        3.0, ge=0, le=MAX_DURATION_S, description="one DMAGuard/Verifier/bcdedit change"
    )
    driver_install_s: float = Field(
        30.0, ge=0, le=MAX_DURATION_S, description="upload, signature check, pnputil"
    )
    driver_uninstall_s: float = Field(10.0, ge=0, le=MAX_DURATION_S)
    plug_s: float = Field(
        12.0, ge=0, le=MAX_DURATION_S, description="plug until the device is started or blocked"
    )
    unplug_s: float = Field(4.0, ge=0, le=MAX_DURATION_S)
    dma_probe_s: float = Field(15.0, ge=0, le=MAX_DURATION_S)
    lock_s: float = Field(5.0, ge=0, le=MAX_DURATION_S)
    unlock_s: float = Field(
        10.0, ge=0, le=MAX_DURATION_S, description="unlock plus the re-enumeration it causes"
    )
    sign_in_s: float = Field(25.0, ge=0, le=MAX_DURATION_S)
    sign_out_s: float = Field(15.0, ge=0, le=MAX_DURATION_S)
    round_trip_s: float = Field(
        0.1, ge=0, le=MAX_DURATION_S, description="one remote operation on a warm link"
    )
    operations_per_scenario: int = Field(14, ge=0)


SslMode = Literal["disable", "allow", "prefer", "require", "verify-ca", "verify-full"]
Purpose = Literal["qualification", "manual", "nightly"]
DEFAULT_PRIORITIES: tuple[Purpose, ...] = ("qualification", "manual", "nightly")


def _check_coordinator_url(value: str) -> str:
    """A postgresql:// URL without a password in it (the password is `password:`, a reference)."""
    from urllib.parse import parse_qs, urlsplit

    parts = urlsplit(value)
    if parts.scheme not in ("postgresql", "postgres"):
        raise ValueError("expected a URL such as 'postgresql://db.lab.example/harness'")
    if parts.password is not None or "password" in parse_qs(parts.query):
        raise ValueError("the URL holds a password: write 'password:' as a reference instead")
    return value


class Coordinator(ConfigModel):
    """The lab's PostgreSQL coordinator (docs/coordinator.md): lab-wide leases, their queue and
    the run history. Without it, leases are local files (harness/lab/lease.py)."""

    url: Annotated[str, AfterValidator(_check_coordinator_url)] = Field(
        description="postgresql://HOST[:PORT]/DATABASE (a Unix socket: postgresql:///DB?host=/DIR)"
    )
    user: str | None = Field(None, min_length=1)
    password: SecretRef | None = None
    sslmode: SslMode = Field("prefer", description="libpq sslmode; verify-full for a real lab")
    sslrootcert: Path | None = Field(None, description="CA of the server (verify-ca/verify-full)")
    connect_timeout_s: int = Field(10, ge=1, le=300)
    keepalives_idle_s: int = Field(10, ge=1, le=3600)
    keepalives_interval_s: int = Field(5, ge=1, le=600)
    keepalives_count: int = Field(3, ge=1, le=100)
    heartbeat_s: float = Field(5.0, gt=0, le=600, description="lease row heartbeat period")
    priorities: list[Purpose] = Field(
        default_factory=lambda: list(DEFAULT_PRIORITIES),
        min_length=3,
        max_length=3,
        description="waiting runs are served in this order of plan purpose, FIFO within one",
    )

    @model_validator(mode="after")
    def _distinct(self) -> Coordinator:
        if len(set(self.priorities)) != len(self.priorities):
            raise ValueError("priorities: each purpose once")
        return self


class LabModel(ConfigModel):
    """The lab file's top level."""

    duts: dict[Name, Dut] = Field(min_length=1)
    instruments: dict[Name, Instrument] = Field(default_factory=dict)
    devices: dict[Name, Device] = Field(default_factory=dict)
    driver_packages: dict[Name, DriverPackage] = Field(default_factory=dict)
    virtual: VirtualLab | None = None
    cost_model: CostModel = Field(default_factory=lambda: CostModel.model_validate({}))
    coordinator: Coordinator | None = None
