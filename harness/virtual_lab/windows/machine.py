"""One simulated Windows DUT: power, boot-applied settings, sessions, PnP, faults, truth.

The machine holds the state a real Windows host keeps (registry, driver store, event logs, the
file system under `fs_root`) and changes it the way Windows does: Driver Verifier's persistent
settings, the DMAGuard policy, test signing and the firmware's Kernel DMA Protection apply at the
next boot (the registry keeps each key's last-write time, so `host_facts` can tell whether the
DMAGuard value predates the boot; test signing in effect is kept apart from the BCD store's);
devices are (re-)added at plug, boot and driver install, when the kernel computes
`DEVPKEY_Device_DmaRemappingPolicy` and DMAGuard decides started vs Code 55
(`kernel_rules.py`); a blocked device starts at unlock or sign-in and keeps running after a later
lock. Durations are real-world seconds times the lab's `time_scale`.

The WinRM and SSH endpoints run commands through `executor`; the runtime listens for power
events to refuse connections while the machine is down.

>>> m = WindowsMachine("tb-01", lab=lab, fs_root=tmp, username="lab", password="pw")  # doctest: +SKIP
>>> m.start(); m.plug("tb4"); m.truth()["devices"]["tb4"]["present"]            # doctest: +SKIP
"""

from __future__ import annotations

import enum
import logging
import threading
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from harness.config.lab import Lab
from harness.config.lab_models import VirtualFault
from harness.virtual_lab.windows import kernel_rules as rules
from harness.virtual_lab.windows.bitlocker import BitLocker
from harness.virtual_lab.windows.boot_security import autologon_password
from harness.virtual_lab.windows.devices import Device, hardware_ids, instance_id
from harness.virtual_lab.windows.driver_store import DriverStore
from harness.virtual_lab.windows.firmware import Firmware
from harness.virtual_lab.windows.pnp_install import (
    CM_PROB_UNSIGNED_DRIVER,
    bind_package,
    kernel_refusal,
    verified_services,
)
from harness.virtual_lab.windows.registry import (
    CURRENT_VERSION,
    DMAGUARD,
    MEMORY_MANAGEMENT,
    POLICIES_WINDOWS,
    SERVICES,
    WINLOGON,
    Registry,
)
from harness.virtual_lab.windows.scheduler import Scheduler
from harness.virtual_lab.winrm.executor import Executor

log = logging.getLogger(__name__)

#: Real-world durations (seconds) before scaling.
SHUTDOWN_S = 3.0
ENUMERATION_S = 2.0
LOGON_S = 6.0
LOCK_S = 0.5
#: WER writes event 1001 after it has processed the dump, some time after the boot.
WER_REPORT_DELAY_S = 20.0


class PowerEvent(enum.Enum):
    DOWN = "down"
    UP = "up"


class Power(enum.Enum):
    ON = "on"
    SHUTTING_DOWN = "shutting-down"
    DOWN = "down"
    HUNG = "hung"


class Session(enum.Enum):
    NO_USER = "no-user"
    LOCKED = "locked"
    UNLOCKED = "unlocked"


class MachineCrashed(Exception):
    """Raised inside an operation that bugchecked the machine: the command never completes."""


def _now() -> datetime:
    return datetime.now(timezone.utc)


class WindowsMachine:
    def __init__(
        self,
        name: str,
        *,
        lab: Lab,
        fs_root: Path,
        username: str,
        password: str,
        executor: Callable[[WindowsMachine], Executor],
    ) -> None:
        """`executor` builds what runs the commands the endpoints receive on this machine
        (`harness.virtual_lab.windows.executor.WindowsExecutor`; passed in, because it and the
        operations it runs depend on this module)."""
        if lab.virtual is None or name not in lab.virtual.duts:
            raise ValueError(f"{name} is not a virtual DUT of {lab.path}")
        self.name = name
        self.lab = lab
        self.spec = lab.virtual.duts[name]
        self.dut = lab.duts[name]
        self.time_scale = lab.virtual.time_scale
        self.fs_root = Path(fs_root)
        self.username = username
        self.password = password
        self.hostname = (self.spec.hostname or name).upper()
        self.build = self.spec.build
        self.quirks = dict(self.spec.quirks)
        self.lock = threading.RLock()
        installed = _now() - timedelta(days=30)  # the image's keys predate every boot
        self.registry = Registry(clock=lambda: installed, installed=installed)
        self.store = DriverStore()
        self.firmware = Firmware(
            self.spec.firmware,
            enabled=self.spec.kdp_capable,
            dell_kdp_name=str(self.quirks.get("dell_dma_attribute", "KernelDmaProtection")),
        )
        self.release_roots = [lab.resolve_path(p).read_bytes() for p in lab.virtual.trusted_roots]
        self.test_roots: list[bytes] = []
        #: LocalMachine Root and TrustedPublisher (DER); Root's certificates are the roots test
        #: signing trusts (`test_roots`). Quirk `signing_cert_provisioned: false`: the lab's roots
        #: are not release roots here, so its packages are test-signed (`cert_stores.py`).
        self.cert_stores: dict[str, list[bytes]] = {"Root": self.test_roots, "TrustedPublisher": []}
        if self.quirks.get("signing_cert_provisioned") is False:
            self.release_roots = []
        self.events: list[dict[str, Any]] = []
        self._pending_events: list[dict[str, Any]] = []
        self.power = Power.DOWN
        self.session = Session.NO_USER
        self.booted_at = _now()
        self.boots = 0
        self.kdp_active = False
        self.dmaguard_at_boot: int | None = None
        self.verifier_active: tuple[int, frozenset[str]] = (0, frozenset())
        self.volatile_only: frozenset[str] = frozenset()  # excluded at add (quirk)
        self.test_signing_pending = False
        self.test_signing_active = False
        #: LSA secrets; Winlogon's `DefaultPassword` secret wins over the registry value (quirk
        #: `stale_lsa_autologon`: one with an old password, left by an earlier autologon tool).
        self.lsa_secrets: dict[str, str] = {}
        if self.quirks.get("stale_lsa_autologon"):
            self.lsa_secrets["DefaultPassword"] = "an-old-password-" + self.name
        #: The OS volume's BitLocker (quirk `bitlocker`; `bitlocker.py`).
        self.bitlocker = BitLocker(
            enabled=bool(self.quirks.get("bitlocker", False)), measured=self.boot_measurements()
        )
        self.console_buffer = ""
        #: The code (comment lines removed) of the operation script running now, and extra
        #: real-world seconds its handler spends waiting (`operations`, `sources`).
        self.op_script = ""
        self.op_wait_s = 0.0
        #: Session states the console reports before the real one (quirk `session_unknown_polls`).
        self.session_unknown_left = 0
        #: Events logged some time after a boot: (wall-clock time due, event).
        self.due_events: list[tuple[datetime, dict[str, Any]]] = []
        self.failed_logons = 0
        self.faults: list[VirtualFault] = []
        #: Faults waiting for their operation (`VirtualFault.operation`), with what fires them.
        self._armed: list[tuple[VirtualFault, Callable[[VirtualFault], None]]] = []
        self._ops_log: list[dict[str, Any]] = []
        self._listeners: list[Callable[[PowerEvent], None]] = []
        self._scheduler = Scheduler(name)
        self.devices: dict[str, Device] = {}
        for port_name, port in self.dut.ports.items():
            device = lab.devices[port.device]
            probe = device.dma_probe
            self.devices[port_name] = Device(
                name=port.device,
                port=port_name,
                port_kind=port.kind.value,
                instance_id=instance_id(device.hardware_id, name, port_name),
                hardware_ids=hardware_ids(device.hardware_id),
                description=device.description or port.device,
                device_class=device.device_class,
                volume_label=getattr(probe, "volume_label", None),
                drive_letter=chr(ord("E") + len(self.devices)),
            )
        self._initial_registry()
        self.registry.clock = _now  # from here on, writes happen in (simulated) time
        self.executor: Executor = executor(self)

    # -- lifecycle ------------------------------------------------------------------------------
    def start(self) -> None:
        """Power on (instantly: the lab starts with its machines already booted)."""
        with self.lock:
            if self.power is Power.DOWN:
                self._boot(initial=True)

    def close(self) -> None:
        self._scheduler.close()

    def add_power_listener(self, cb: Callable[[PowerEvent], None]) -> None:
        self._listeners.append(cb)

    def scaled(self, real_seconds: float) -> float:
        return real_seconds * self.time_scale

    def after(self, real_seconds: float, fn: Callable[[], None]) -> None:
        """Run `fn` under the machine lock after a scaled delay."""

        def run() -> None:
            with self.lock:
                fn()

        self._scheduler.after(self.scaled(real_seconds), run)

    def drain(self, timeout_s: float) -> bool:
        """Wait for pending timed events (tests)."""
        return self._scheduler.drain(timeout_s)

    # -- power ----------------------------------------------------------------------------------
    def request_reboot(self) -> None:
        with self.lock:
            if self.power is not Power.ON:
                return
            self.power = Power.SHUTTING_DOWN
            self.after(SHUTDOWN_S, self._go_down_and_boot)

    def _go_down_and_boot(self) -> None:
        self._go_down()
        boot_s = self.spec.boot_time_s
        slow = self._take_fault("slow-reboot")
        if slow is not None:
            boot_s *= slow.factor
        if self._take_fault("reboot-hang") is not None:
            self.power = Power.HUNG
            self._history("reboot hangs: the machine does not come back")
            return
        self.after(boot_s, self._boot)

    def _go_down(self) -> None:
        self._scheduler.cancel_all()
        self.power = Power.DOWN
        self.session = Session.NO_USER
        for device in self.devices.values():
            device.started = False
            device.problem_code = 0
        self._notify(PowerEvent.DOWN)

    def boot_measurements(self) -> tuple[object, ...]:
        """What the TPM measures of the boot path: BCD testsigning and the saved firmware."""
        return (self.test_signing_pending, tuple(sorted(self.firmware.settings.items())))

    def enter_recovery_key(self) -> bool:
        """The recovery key typed at the BitLocker recovery screen: the boot goes on."""
        with self.lock:
            if not self.bitlocker.enter_recovery_key(self.boot_measurements()):
                return False
            self._boot()
            return True

    def _boot(self, initial: bool = False) -> None:
        if not initial and not self.bitlocker.boot(self.boot_measurements()):
            self.power = Power.HUNG
            self._history("BitLocker recovery screen: the boot measurements changed")
            return
        mm = MEMORY_MANAGEMENT
        level = self.registry.get(mm, "VerifyDriverLevel") or 0
        drivers = str(self.registry.get(mm, "VerifyDrivers") or "")
        self.verifier_active = (level, _driver_set(drivers))
        self.volatile_only = frozenset()
        self.dmaguard_at_boot = self.registry.get(DMAGUARD, "DeviceEnumerationPolicy")
        self.test_signing_active = self.test_signing_pending
        self.kdp_active = self.spec.kdp_capable and self.firmware.apply_at_boot()
        self.booted_at = _now()
        self.boots += 1
        self.power = Power.ON
        self.session = Session.NO_USER
        self.due_events = []
        for event in self._pending_events:  # logged by this boot, stamped with its time
            delay = float(event.pop("delay_s", 0.0))
            if delay <= 0:
                self.events.append({**event, "time": self.booted_at})
                continue
            due = self.booted_at + timedelta(seconds=self.scaled(delay))
            self.due_events.append((due, event))
            self.after(delay, self._logger(event, due))
        self._pending_events.clear()
        if not initial:
            self._notify(PowerEvent.UP)
        for device in self.devices.values():
            if device.present:
                self._add_device(device)  # devices attached at boot are added before sign-in
        if self._autologon_ok():
            if initial:
                self._sign_in()
            else:
                self.after(LOGON_S, self._sign_in)

    def _logger(self, event: dict[str, Any], due: datetime) -> Callable[[], None]:
        return lambda: self._log_due(event, due)

    def _log_due(self, event: dict[str, Any], due: datetime) -> None:
        """A delayed event (WER's 1001) reaches the System log."""
        if (due, event) in self.due_events:
            self.due_events.remove((due, event))
            self.events.append({**event, "time": due})

    def log_due_now(self, until: datetime) -> None:
        """Log every delayed event due by `until` (an operation that waited for it)."""
        for due, event in list(self.due_events):
            if due <= until:
                self._log_due(event, due)

    def _notify(self, event: PowerEvent) -> None:
        for cb in list(self._listeners):
            try:
                cb(event)
            except Exception:
                log.exception("power listener failed")

    def bugcheck(self, code: int, params: tuple[int, int, int, int]) -> None:
        """Crash now: MEMORY.DMP, automatic restart; at the next boot Kernel-Power 41 with the
        stop code at once, WER's 1001 `wer_report_delay_s` (quirk, default 20 s) later."""
        when = _now()
        dump = self.fs_root / "C" / "Windows" / "MEMORY.DMP"
        dump.parent.mkdir(parents=True, exist_ok=True)
        dump.write_bytes(b"PAGEDU64" + code.to_bytes(4, "little") + bytes(4088))
        text = f"0x{code:08x} (" + ", ".join(f"0x{p:016x}" for p in params) + ")"
        self._pending_events += [
            _event(
                41,
                "Microsoft-Windows-Kernel-Power",
                when,
                "The system has rebooted without cleanly shutting down first.",
                {
                    "BugcheckCode": code,
                    **{f"BugcheckParameter{i + 1}": p for i, p in enumerate(params)},
                },
            ),
            _event(
                1001,
                "BugCheck",
                when,
                f"The computer has rebooted from a bugcheck.  The bugcheck was: {text}. "
                r"A dump was saved in: C:\Windows\MEMORY.DMP.",
                {"param1": f"0x{code:08x}", "param2": list(params)},
            )
            | {"delay_s": float(self.quirks.get("wer_report_delay_s", WER_REPORT_DELAY_S))},
        ]
        self._history(f"bugcheck {text}")
        self.power = Power.SHUTTING_DOWN
        self._go_down_and_boot()
        raise MachineCrashed(text)

    # -- sessions -------------------------------------------------------------------------------
    def _autologon_ok(self) -> bool:
        reg = self.registry
        return (
            str(reg.get(WINLOGON, "AutoAdminLogon") or "0") == "1"
            and str(reg.get(WINLOGON, "DefaultUserName") or "").lower() == self.username.lower()
            and autologon_password(self) == self.password
        )

    def _sign_in(self) -> None:
        if self.power is not Power.ON:
            return
        self.session = Session.UNLOCKED
        self._session_changed()
        self._history("user signed in / unlocked")
        for device in self.devices.values():
            if (
                device.present
                and device.problem_code == rules.CM_PROB_CONSOLE_LOCKED
                and device.decision == rules.StartDecision.BLOCK_UNTIL_LOGON.value
            ):
                self._start_device(device)

    def _session_changed(self) -> None:
        """Quirk `session_unknown_polls`: right after a lock or sign-in, the console session's
        SessionFlags reads WTS_SESSIONSTATE_UNKNOWN (-1) that many times (seen on 21H2)."""
        self.session_unknown_left = int(self.quirks.get("session_unknown_polls", 0))

    def console_keys(self, keys: str) -> None:
        """Keystrokes from the HID keyboard: a password and Enter unlocks / signs in."""
        with self.lock:
            if self.power is not Power.ON:
                return
            for ch in keys:
                if ch == "\n":
                    typed, self.console_buffer = self.console_buffer, ""
                    if self.session is Session.UNLOCKED:
                        continue
                    if typed == self.password:
                        self._sign_in()
                    else:
                        self.failed_logons += 1
                elif ch == "\b":
                    self.console_buffer = self.console_buffer[:-1]
                elif ch == "\x1b":
                    self.console_buffer = ""
                elif ch.isprintable():
                    self.console_buffer += ch

    def lock_session(self) -> bool:
        if self.session is not Session.UNLOCKED:
            return False

        def apply() -> None:
            if self.session is Session.UNLOCKED:
                self.session = Session.LOCKED
                self._session_changed()
                self._history("session locked")

        self.after(LOCK_S, apply)
        return True

    def sign_out(self) -> bool:
        if self.session is Session.NO_USER:
            return False

        def apply() -> None:
            self.session = Session.NO_USER
            self._history("user signed out")

        self.after(LOCK_S, apply)
        return True

    # -- PnP ------------------------------------------------------------------------------------
    def port_device(self, port: str) -> Device:
        if port not in self.devices:
            raise KeyError(f"{self.name} has no port {port!r}")
        return self.devices[port]

    def plug(self, port: str) -> None:
        with self.lock:
            device = self.port_device(port)
            if device.present:
                return
            device.present = True  # the link is up; the OS sees it after enumeration
            device.history.append("plugged")
            if self.power is Power.ON:
                self.after(ENUMERATION_S, lambda: self._add_device(device))

    def unplug(self, port: str) -> None:
        with self.lock:
            device = self.port_device(port)
            if not device.present:
                return
            device.present = device.started = False
            device.problem_code = 0
            device.last_removal = _now()
            device.history.append("unplugged")

    def _add_device(self, device: Device) -> None:
        if not device.present or self.power is not Power.ON:
            return
        fault = self._take_fault("enumeration-failure", port=device.port)
        if fault is not None:
            device.history.append("enumeration failed (fault)")
            device.present = False
            return
        device.last_arrival = _now()
        device.started = False
        package = self.store.get(device.package) if device.package else None
        package = package or self.store.best_for(device.hardware_ids)
        self.events.append(
            _event(
                400,
                "Microsoft-Windows-Kernel-PnP",
                device.last_arrival,
                f"Device {device.instance_id} was configured.",
                {},
            )
        )
        if package is None:
            device.package, device.stack = None, ()
            device.problem_code, device.dma_policy = rules.CM_PROB_FAILED_INSTALL, 0
            device.decision, device.policy_trace = None, ("no driver installed",)
            device.history.append("added without a driver (Code 28)")
            return
        bind_package(self, device, package)
        refusal = kernel_refusal(self, package)
        if refusal is not None:  # loaded only now: the kernel-mode signing policy says no
            device.problem_code, device.decision = CM_PROB_UNSIGNED_DRIVER, None
            device.history.append(f"driver not loaded (Code 52): {refusal}")
            return
        ctx = rules.AddContext(
            build=self.build,
            instance_id=device.instance_id,
            stack=device.stack,
            port_kind=device.port_kind,
            verified_drivers=verified_services(self, device.stack),
            quirks=self.quirks,
        )
        result = rules.remapping_policy(self.registry, ctx)
        device.dma_policy, device.policy_trace = result.value, result.trace
        decision = rules.start_decision(
            build=self.build,
            kdp_active=self.kdp_active,
            port_kind=device.port_kind,
            policy_at_boot=self.dmaguard_at_boot,
            remapping_policy=result.value,
        )
        device.decision = decision.value
        if decision is rules.StartDecision.START or (
            decision is rules.StartDecision.BLOCK_UNTIL_LOGON and self.session is Session.UNLOCKED
        ):
            self._start_device(device)
        elif decision is rules.StartDecision.BLOCK:
            device.problem_code = int(rules.quirk(self.quirks, "dmaguard_policy0_problem"))
            device.history.append(f"blocked by DMAGuard policy 0 (Code {device.problem_code})")
        else:
            device.problem_code = rules.CM_PROB_CONSOLE_LOCKED
            device.history.append(f"blocked while {self.session.value} (Code 55)")

    def _start_device(self, device: Device) -> None:
        device.started, device.problem_code = True, 0
        device.history.append(f"started (policy {device.dma_policy or 'absent'})")
        self.events.append(
            _event(
                410,
                "Microsoft-Windows-Kernel-PnP",
                _now(),
                f"Device {device.instance_id} was started.",
                {"Problem": 0},
            )
        )

    def readd(self, device: Device) -> None:
        """Remove and add again (driver install, restart-device, rescan)."""
        if device.present and self.power is Power.ON:
            self._add_device(device)

    # -- faults, log, truth ---------------------------------------------------------------------
    def apply_fault(self, fault: VirtualFault) -> None:
        with self.lock:
            self.faults.append(fault)

    def arm_fault(self, fault: VirtualFault, fire: Callable[[VirtualFault], None]) -> None:
        """`fire(fault)` when operation `fault.operation` next starts: a fault at a point of
        the harness's flow (e.g. a dropped connection during `driver_install`)."""
        with self.lock:
            self._armed.append((fault, fire))

    def clear_faults(self) -> None:
        with self.lock:
            self.faults.clear()
            self._armed.clear()
            if self.power is Power.HUNG:  # a lab technician power-cycles it
                self._boot()

    def _take_fault(self, kind: str, **match: Any) -> VirtualFault | None:
        for fault in self.faults:
            if fault.kind != kind:
                continue
            if any(getattr(fault, k) not in (None, v) for k, v in match.items()):
                continue
            if fault.count is not None:
                remaining = fault.count - 1
                self.faults.remove(fault)
                if remaining > 0:
                    self.faults.append(fault.model_copy(update={"count": remaining}))
            return fault
        return None

    def take_operation_fault(self, operation: str) -> VirtualFault | None:
        return self._take_fault("bugcheck", operation=operation)

    def record_operation(self, name: str, params_base64: str, params: Any) -> None:
        self._ops_log.append(
            {
                "seq": len(self._ops_log) + 1,
                "time_utc": iso(_now()),
                "operation": name,
                "params_base64": params_base64,
                "params": params,
            }
        )
        with self.lock:
            fired = [(f, fire) for f, fire in self._armed if f.operation == name]
            for entry in fired:
                self._armed.remove(entry)
        for fault, fire in fired:
            self._history(f"fault {fault.kind} fired at operation {name}")
            fire(fault)

    def operations_log(self) -> list[dict[str, Any]]:
        with self.lock:
            return list(self._ops_log)

    def _history(self, text: str) -> None:
        log.info("%s: %s", self.name, text)

    def truth(self) -> dict[str, Any]:
        with self.lock:
            level, drivers = self.verifier_active
            return {
                "name": self.name,
                "hostname": self.hostname,
                "build": self.build,
                "power": self.power.value,
                "boots": self.boots,
                "last_boot_utc": iso(self.booted_at),
                "session": self.session.value,
                "kdp_active": self.kdp_active,
                "firmware": self.firmware.truth(),
                "bitlocker": self.bitlocker.truth(),
                "dmaguard": {
                    "pending": self.registry.get(DMAGUARD, "DeviceEnumerationPolicy"),
                    "at_boot": self.dmaguard_at_boot,
                },
                "verifier": {
                    "active": {"flags": level, "drivers": sorted(drivers)},
                    "pending": {
                        "flags": self.registry.get(MEMORY_MANAGEMENT, "VerifyDriverLevel"),
                        "drivers": self.registry.get(MEMORY_MANAGEMENT, "VerifyDrivers"),
                    },
                },
                "test_signing": {
                    "pending": self.test_signing_pending,
                    "active": self.test_signing_active,
                },
                "devices": {port: d.truth() for port, d in self.devices.items()},
                "driver_store": [
                    {"published_name": p.published_name, "original_name": p.original_name}
                    for p in self.store.packages()
                ],
                "faults": [f.model_dump(exclude_none=True) for f in self.faults],
                "failed_logons": self.failed_logons,
                "events": len(self.events),
                "registry": _masked(self.registry.dump()),
                "lsa_secrets": sorted(self.lsa_secrets),  # names only, never a value
            }

    def _initial_registry(self) -> None:
        reg = self.registry
        reg.set(CURRENT_VERSION, "CurrentBuildNumber", str(self.build))
        reg.set(CURRENT_VERSION, "UBR", 4460)
        reg.set(CURRENT_VERSION, "EditionID", self.spec.edition)
        reg.set(WINLOGON, "AutoAdminLogon", "1")
        reg.set(WINLOGON, "DefaultUserName", self.username)
        reg.set(WINLOGON, "DefaultDomainName", self.hostname)
        reg.set(WINLOGON, "DefaultPassword", self.password)
        reg.create_key(POLICIES_WINDOWS)
        baseline = self.dut.baseline
        if baseline.dmaguard.value != "absent":
            reg.set(DMAGUARD, "DeviceEnumerationPolicy", int(baseline.dmaguard.value))
        reg.set(SERVICES + r"\stornvme\Parameters", "DmaRemappingCompatible", 1)
        if self.quirks.get("openssh_default_shell"):  # quirk: OpenSSH's DefaultShell (F16)
            reg.set(OPENSSH_KEY, "DefaultShell", str(self.quirks["openssh_default_shell"]))

    def openssh_default_shell(self) -> str | None:
        """OpenSSH's DefaultShell as sshd reads it at each session (None: cmd.exe)."""
        value = self.registry.get(OPENSSH_KEY, "DefaultShell")
        return str(value) if value else None


OPENSSH_KEY = r"HKLM\SOFTWARE\OpenSSH"


def _masked(dump: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The registry for the control endpoint, with Winlogon's DefaultPassword masked."""
    for values in dump.values():
        for name in values:
            if name.lower() == "defaultpassword":
                values[name] = "********"
    return dump


def _driver_set(text: str) -> frozenset[str]:
    names = (n.strip().lower() for n in text.replace(",", " ").split())
    return frozenset(n[:-4] if n.endswith(".sys") else n for n in names if n)


def _event(
    event_id: int, provider: str, when: datetime, message: str, data: dict[str, Any]
) -> dict[str, Any]:
    return {"id": event_id, "provider": provider, "time": when, "message": message, "data": data}


def iso(when: datetime) -> str:
    return when.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
