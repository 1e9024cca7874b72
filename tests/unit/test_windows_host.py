"""WindowsHost and its procedures above the transport, against a scripted RemoteShell stand-in.

The stand-in decodes each operation wrapper (name from `# Operation:`, params from
`-ParamsBase64`) and answers from a script of handlers; time is a fake clock that only moves
when the code under test sleeps (or a call costs time), so the polling logic is tested exactly.
The same procedures run through the virtual lab's real endpoints in the integration tests.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from harness.errors import ConfigError, DutError, InfrastructureError
from harness.remote.base import CommandResult
from harness.remote.deadline import Deadline
from harness.remote.transcript import MASK, Redactor, Transcript
from harness.windows.actions import (
    DutCrashed,
    reboot_and_wait,
    upload_file,
    upload_package,
    wait_for_device,
)
from harness.windows.host import Backoff, WaitTimeout, WindowsHost
from harness.windows.ops import OperationCatalog
from harness.windows.results import PnpDevice
from harness.windows.shape import format_utc

OLD_BOOT = datetime(2026, 11, 21, 8, 0, tzinfo=timezone.utc)
NEW_BOOT = OLD_BOOT + timedelta(hours=4)
OPS = [
    "host_facts",
    "reboot_request",
    "crash_evidence",
    "pnp_devices",
    "file_hash",
    "file_write",
    "autologon_set",
    "driver_install",
]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds >= 0
        self.sleeps.append(round(seconds, 6))
        self.now += seconds


Handler = Callable[[dict[str, Any]], dict[str, Any]]


class ScriptedShell:
    """A RemoteShell whose host is a dict of operation handlers plus an `up` switch, with a file
    channel of its own that does not check what it wrote (a `FileTransfer`)."""

    verifies_uploads = False

    def __init__(self, clock: Clock, handlers: dict[str, Handler]) -> None:
        self.clock, self.handlers = clock, handlers
        self.up = True
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.uploads: dict[str, bytes] = {}
        self.reconnects = 0
        self.transcript = Transcript(Redactor())
        self.call_cost_s = 0.01

    def _check_up(self, deadline: Deadline | None) -> None:
        self.clock.now += self.call_cost_s
        if not self.up:
            raise InfrastructureError("cannot connect while running a command: refused")

    def run(
        self,
        command: str,
        args: Sequence[str] = (),
        *,
        timeout_s: float,
        deadline: Deadline | None = None,
    ) -> CommandResult:
        self.calls.append((command, {}))
        self._check_up(deadline)
        return CommandResult(command, 0, "DUT-01\r\n", "", self.call_cost_s)

    def run_powershell(
        self, script: str, *, timeout_s: float, deadline: Deadline | None = None
    ) -> CommandResult:
        name = re.search(r"^# Operation: (\w+)", script, re.M).group(1)  # type: ignore[union-attr]
        b64 = re.search(r"\n\} -ParamsBase64 '([^']*)'$", script).group(1)  # type: ignore[union-attr]
        params = json.loads(base64.b64decode(b64))
        self.calls.append((name, params))
        self._check_up(deadline)
        shown = self.transcript.redact_command(script)
        try:
            out = self.handlers[name](params)
        except RuntimeError as exc:
            return CommandResult(shown, 1, "", str(exc), self.call_cost_s)
        return CommandResult(shown, 0, json.dumps(out) + "\r\n", "", self.call_cost_s)

    def upload(
        self, local: Path, remote: str, *, timeout_s: float, deadline: Deadline | None = None
    ) -> None:
        self._check_up(deadline)
        self.uploads[remote] = local.read_bytes()

    def reconnect(self, *, timeout_s: float = 30.0) -> None:
        self.reconnects += 1
        self._check_up(None)

    def close(self) -> None:
        pass

    def names(self) -> list[str]:
        return [c[0] for c in self.calls]


def facts(boot: datetime) -> dict[str, Any]:
    return {
        "computer_name": "DUT-01",
        "build": 22631,
        "ubr": None,
        "edition": "Enterprise",
        "product_name": "Windows 11 Enterprise",
        "last_boot_utc": format_utc(boot),
        "kdp": {"enabled": True, "source": "ntquery"},
        "virtualization_firmware": None,
        "iommu_dma_protection_available": None,
        "secure_boot": None,
        "test_signing": None,
        "bitlocker_disable_external_dma_under_lock": None,
        "dmaguard_policy": None,
    }


NO_CRASH = {"bugchecks": [], "unexpected_shutdowns": [], "dumps": [], "setupapi_tail": ""}


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def catalog(tmp_path: Path) -> OperationCatalog:
    folder = tmp_path / "ops"
    folder.mkdir()
    for name in OPS:
        (folder / f"{name}.ps1").write_text(f"# Operation: {name}\nparam($ParamsBase64)\n")
    return OperationCatalog(folder)


class RebootingHost:
    """Boot time OLD until the reboot request; then answers `answer_for` more calls, is down
    for `down_s` seconds of fake time (None: forever), and comes back with NEW_BOOT."""

    def __init__(self, clock: Clock, *, answer_for: int = 2, down_s: float | None = 40.0) -> None:
        self.clock, self.answer_for, self.down_s = clock, answer_for, down_s
        self.requested_at: float | None = None
        self.bugchecks: list[dict[str, Any]] = []
        self.shell: ScriptedShell | None = None
        self.went_down = False
        self.quick = False  # rebooted between two probes: never seen down

    def boot(self) -> datetime:
        if self.requested_at is not None and (self.quick or self.went_down):
            return NEW_BOOT
        return OLD_BOOT

    def tick(self) -> None:
        """Before every call: switch the host's state as time and calls go by."""
        shell = self.shell
        assert shell is not None
        if self.requested_at is None:
            return
        if self.answer_for > 0:
            self.answer_for -= 1
            return
        back = self.down_s is not None and self.clock.now >= self.requested_at + self.down_s
        shell.up = back
        self.went_down = True

    def handlers(self) -> dict[str, Handler]:
        def reboot(p: dict[str, Any]) -> dict[str, Any]:
            self.requested_at = self.clock.now
            return {"requested": True, "last_boot_utc": format_utc(OLD_BOOT)}

        return {
            "host_facts": lambda p: facts(self.boot()),
            "reboot_request": reboot,
            "crash_evidence": lambda p: {**NO_CRASH, "bugchecks": self.bugchecks},
        }


def _rebooting(
    clock: Clock, catalog: OperationCatalog, **kw: Any
) -> tuple[WindowsHost, ScriptedShell, RebootingHost]:
    model = RebootingHost(clock, **kw)
    shell = ScriptedShell(clock, model.handlers())
    model.shell = shell
    original = shell._check_up

    def check_up(deadline: Deadline | None) -> None:
        model.tick()
        original(deadline)

    shell._check_up = check_up  # type: ignore[method-assign]
    host = WindowsHost(shell, name="tb-01", catalog=catalog, sleep=clock.sleep)
    return host, shell, model


# -- reboot_and_wait ------------------------------------------------------------------------------
def test_reboot_and_wait_sees_the_host_go_down_and_come_back(
    clock: Clock, catalog: OperationCatalog
) -> None:
    host, shell, _ = _rebooting(clock, catalog)
    report = reboot_and_wait(
        host, Deadline.after(900, "reboot", clock=clock), down_timeout_s=60, up_timeout_s=300
    )
    assert shell.names().count("reboot_request") == 1
    assert report.previous_boot_utc == OLD_BOOT and report.facts.last_boot_utc == NEW_BOOT
    assert report.down_after_s is not None and report.down_after_s < 5
    assert 40 <= report.up_after_s < 50
    assert shell.reconnects >= 2  # attempts while down, then the one that worked
    # The op may wait for WER's 1001 for half of the call's 60 s budget.
    wanted = {"since_utc": format_utc(OLD_BOOT), "report_wait_s": 30.0}
    assert shell.calls[-1] == ("crash_evidence", wanted)
    assert all(s <= 5.0 for s in clock.sleeps)  # the backoff's cap


def test_a_bugcheck_after_the_reboot_is_a_dut_error_with_its_stop_code(
    clock: Clock, catalog: OperationCatalog
) -> None:
    host, shell, model = _rebooting(clock, catalog)
    model.bugchecks = [
        {
            "time_utc": format_utc(OLD_BOOT + timedelta(hours=3)),
            "stop_code": 0xE6,
            "parameters": [0x26, 0, 0xFFFFC30A1B2C3D40, 0],
            "dump_path": "C:\\Windows\\MEMORY.DMP",
        }
    ]
    with pytest.raises(DutCrashed) as info:
        reboot_and_wait(
            host, Deadline.after(900, "reboot", clock=clock), down_timeout_s=60, up_timeout_s=300
        )
    assert isinstance(info.value, DutError)
    assert "tb-01: bugcheck 0x000000E6 (0x26, 0x0, 0xFFFFC30A1B2C3D40, 0x0)" in str(info.value)
    assert info.value.bugcheck.stop_code == 0xE6
    assert shell.names().count("reboot_request") == 1


def test_a_host_that_never_goes_down_did_not_reboot(
    clock: Clock, catalog: OperationCatalog
) -> None:
    host, shell, _ = _rebooting(clock, catalog, answer_for=10**9)
    with pytest.raises(DutError, match="tb-01 did not reboot: still answering"):
        reboot_and_wait(
            host, Deadline.after(900, "reboot", clock=clock), down_timeout_s=60, up_timeout_s=300
        )
    assert shell.names().count("reboot_request") == 1
    assert 60 <= clock.now - 1000 < 70


def test_a_host_that_does_not_come_back_is_a_dut_error_after_the_up_timeout(
    clock: Clock, catalog: OperationCatalog
) -> None:
    host, shell, _ = _rebooting(clock, catalog, down_s=None)
    with pytest.raises(DutError, match="tb-01 did not come back within 300 s") as info:
        reboot_and_wait(
            host, Deadline.after(900, "reboot", clock=clock), down_timeout_s=60, up_timeout_s=300
        )
    assert "refused" in str(info.value)  # the last transport error
    assert shell.names().count("reboot_request") == 1
    assert 300 <= clock.now - 1000 < 310


def test_a_request_lost_with_the_connection_is_never_repeated(
    clock: Clock, catalog: OperationCatalog
) -> None:
    host, shell, model = _rebooting(clock, catalog, answer_for=0)
    handlers = model.handlers()

    def reboot_then_drop(p: dict[str, Any]) -> dict[str, Any]:
        handlers["reboot_request"](p)
        raise_down = InfrastructureError("connection reset while receiving output")
        shell.up = False
        raise raise_down

    shell.handlers["reboot_request"] = reboot_then_drop
    report = reboot_and_wait(
        host, Deadline.after(900, "reboot", clock=clock), down_timeout_s=60, up_timeout_s=300
    )
    assert report.facts.last_boot_utc == NEW_BOOT
    assert shell.names().count("reboot_request") == 1


def test_a_reboot_quicker_than_the_probes_is_accepted(
    clock: Clock, catalog: OperationCatalog
) -> None:
    host, _, model = _rebooting(clock, catalog, answer_for=10**9)
    model.quick = True  # never seen down, but back with a new boot time
    report = reboot_and_wait(
        host, Deadline.after(900, "reboot", clock=clock), down_timeout_s=30, up_timeout_s=300
    )
    assert report.down_after_s is None and report.facts.last_boot_utc == NEW_BOOT


# -- wait_for_device ------------------------------------------------------------------------------
def device(problem: int = 0, status: str = "OK") -> dict[str, Any]:
    return {
        "instance_id": "PCI\\VEN_144D&DEV_A808\\1",
        "present": True,
        "status": status,
        "problem_code": problem,
        "dma_policy": None,
        "dma_policy_key": "DEVPKEY_Device_DmaRemappingPolicy",
        "lower_filters": [],
        "upper_filters": [],
        "driver_stack": [],
    }


def started_or_blocked(devs: tuple[PnpDevice, ...]) -> bool:
    return any(d.started or d.blocked for d in devs)


def test_wait_for_device_polls_with_exponential_backoff(
    clock: Clock, catalog: OperationCatalog
) -> None:
    answers = [[], [], [device(28, "Error")], [device(55, "Error")]]
    shell = ScriptedShell(clock, {"pnp_devices": lambda p: {"devices": answers.pop(0)}})
    shell.call_cost_s = 0.0
    host = WindowsHost(shell, name="tb-01", catalog=catalog, sleep=clock.sleep)
    devs = wait_for_device(
        host, "PCI\\VEN_144D*", started_or_blocked, Deadline.after(30, "device", clock=clock)
    )
    assert devs[0].blocked
    assert clock.sleeps == [0.05, 0.08, 0.128]
    assert shell.calls[0] == (
        "pnp_devices",
        {"hardware_id": "PCI\\VEN_144D*", "present_only": True},
    )


def test_wait_for_device_times_out_with_the_last_observation(
    clock: Clock, catalog: OperationCatalog
) -> None:
    shell = ScriptedShell(clock, {"pnp_devices": lambda p: {"devices": [device(28, "Error")]}})
    host = WindowsHost(shell, name="tb-01", catalog=catalog, sleep=clock.sleep)
    with pytest.raises(
        WaitTimeout, match=r"tb-01: device to start: not reached within 10\.0 s"
    ) as info:
        wait_for_device(
            host,
            "PCI\\VEN_144D*",
            started_or_blocked,
            Deadline.after(10, "device to start", clock=clock),
            poll=Backoff(start_s=0.05, factor=1.6, cap_s=2.0),
        )
    assert not isinstance(info.value, InfrastructureError)
    assert info.value.last[0].problem_code == 28 and info.value.observations > 5
    assert max(clock.sleeps) == 2.0 and clock.now - 1000 == pytest.approx(10, abs=0.1)


def test_wait_for_device_without_any_observation_is_infrastructure(
    clock: Clock, catalog: OperationCatalog
) -> None:
    shell = ScriptedShell(clock, {})
    shell.up = False
    host = WindowsHost(shell, name="tb-01", catalog=catalog, sleep=clock.sleep)
    with pytest.raises(InfrastructureError, match="tb-01: operation pnp_devices: cannot connect"):
        wait_for_device(host, "X*", started_or_blocked, Deadline.after(5, "device", clock=clock))


# -- uploads, secrets, errors --------------------------------------------------------------------
def _hashing_shell(clock: Clock, corrupt: bool = False) -> ScriptedShell:
    import hashlib

    shell: ScriptedShell

    def file_hash(p: dict[str, Any]) -> dict[str, Any]:
        data = shell.uploads.get(p["path"])
        if data is None:
            return {"path": p["path"], "exists": False, "size": None, "sha256": None}
        digest = hashlib.sha256(data + (b"!" if corrupt else b"")).hexdigest()
        return {"path": p["path"], "exists": True, "size": len(data), "sha256": digest}

    shell = ScriptedShell(clock, {"file_hash": file_hash})
    return shell


def test_upload_file_checks_the_hash(
    clock: Clock, catalog: OperationCatalog, tmp_path: Path
) -> None:
    local = tmp_path / "a.bin"
    local.write_bytes(b"payload")
    upload_file(
        WindowsHost(_hashing_shell(clock), name="tb-01", catalog=catalog), local, "C:\\h\\a.bin"
    )
    bad = WindowsHost(_hashing_shell(clock, corrupt=True), name="tb-01", catalog=catalog)
    with pytest.raises(InfrastructureError, match="did not arrive intact"):
        upload_file(bad, local, "C:\\h\\a.bin")


INF = """[Version]
Signature = "$Windows NT$"
Class = SCSIAdapter
CatalogFile = dmalab.cat
[SourceDisksNames]
1 = %Disk%,,,\\bin
[SourceDisksFiles]
dmalab.sys = 1
[SourceDisksFiles.amd64]
helper.dll = 1, x64
[Strings]
Disk = "Disk 1"
"""


def test_upload_package_sends_the_inf_its_files_and_catalog(
    clock: Clock, catalog: OperationCatalog, tmp_path: Path
) -> None:
    pkg = tmp_path / "pkg"
    (pkg / "bin" / "x64").mkdir(parents=True)
    (pkg / "dmalab.inf").write_text(INF)
    (pkg / "bin" / "dmalab.sys").write_bytes(b"MZ sys")
    (pkg / "bin" / "x64" / "helper.dll").write_bytes(b"MZ dll")
    (pkg / "dmalab.cat").write_bytes(b"cat")
    shell = _hashing_shell(clock)
    host = WindowsHost(shell, name="tb-01", catalog=catalog)
    remote = upload_package(host, pkg / "dmalab.inf", "C:\\harness\\pkg\\")
    assert remote == "C:\\harness\\pkg\\dmalab.inf"
    assert sorted(shell.uploads) == [
        "C:\\harness\\pkg\\bin\\dmalab.sys",
        "C:\\harness\\pkg\\bin\\x64\\helper.dll",
        "C:\\harness\\pkg\\dmalab.cat",
        "C:\\harness\\pkg\\dmalab.inf",
    ]
    (pkg / "bin" / "dmalab.sys").unlink()
    with pytest.raises(ConfigError, match=r"lists .bin/dmalab\.sys., which is not in"):
        upload_package(host, pkg / "dmalab.inf", "C:\\harness\\pkg")


def test_autologon_password_never_reaches_a_transcript(
    clock: Clock, catalog: OperationCatalog
) -> None:
    password = "S3cr3t-'‘pw’\"$(x)"

    def autologon(p: dict[str, Any]) -> dict[str, Any]:
        assert p["password"] == password  # the host gets the real value
        raise RuntimeError(f"denied for {p['password']}")

    shell = ScriptedShell(clock, {"autologon_set": autologon})
    step = Transcript()
    host = WindowsHost(shell, name="tb-01", catalog=catalog, transcript=step)
    with pytest.raises(InfrastructureError) as info:
        host.set_autologon(True, user="tester", domain="LAB", password=password)
    assert password not in str(info.value) and "tb-01: operation autologon_set failed" in str(
        info.value
    )
    (entry,) = step.entries
    assert entry.command.startswith("op autologon_set {") and password not in step.render()
    assert json.loads(entry.command.removeprefix("op autologon_set "))["password"] == MASK
    assert password not in shell.transcript.redact_command("x " + password)  # shell's redactor too


def test_install_driver_result_is_typed(clock: Clock, catalog: OperationCatalog) -> None:
    out = {"exit_code": 259, "outcome": "no_device", "published_name": None, "output": ""}
    shell = ScriptedShell(clock, {"driver_install": lambda p: out})
    host = WindowsHost(shell, name="tb-01", catalog=catalog)
    assert host.install_driver("C:\\p\\x.inf").outcome.value == "no_device"
    assert shell.calls == [("driver_install", {"inf_path": "C:\\p\\x.inf"})]
