"""The virtual lab's Windows model against the oracle (windows-dma.md §10), through operations.

Two independent models of the same documents must agree: the simulated kernel
(`harness/virtual_lab/windows/kernel_rules.py`, reading the registry that driver install wrote)
and the oracle (`harness/domain/policy.py`, a function of conditions). Each case drives a fresh
simulated DUT only through the harness's operations (the same invocation text a real host gets),
plugs the device, observes it with `pnp_devices`, unlocks with the console keyboard and observes
again; every expectation the oracle does not mark `unverified` must hold.
"""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path
from typing import Any

import pytest

from harness.config.lab import load_lab
from harness.domain.conditions import (
    Conditions,
    DeviceKey,
    DmaGuardPolicy,
    Evidence,
    InfValue,
    PortKind,
    SessionState,
)
from harness.domain.policy import expect
from harness.virtual_lab.windows.executor import WindowsExecutor
from harness.virtual_lab.windows.machine import Power, WindowsMachine
from harness.windows.ops import OperationCatalog

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ROOT / "lab_config" / "packages"
PASSWORD = "pw-'\"$(x)`;|&"
CATALOG = OperationCatalog()

LAB = """
duts:
  d1:
    address: 127.0.0.1
    transport: {{kind: winrm, scheme: http, port: 5985, auth: ntlm}}
    os_build: {build}
    edition: Enterprise
    kdp: {{declared: on, firmware_control: lenovo-wmi}}
    ports:
      p1: {{kind: {port}, switch: sw, channel: 1, device: nvme}}
    session_control: {{lock: scheduled-task, unlock: hid-keyboard, keyboard: kb}}
    baseline: {{dmaguard: "{guard}"}}
instruments:
  sw: {{kind: scpi-switch, resource: virtual}}
  kb: {{kind: hid-keyboard, resource: virtual}}
devices:
  nvme:
    hardware_id: PCI\\VEN_144D&DEV_A808*
    class: SCSIAdapter
    dma_probe: {{kind: storage, volume_label: DMALAB}}
driver_packages:
  pkg: {{path: {packages}/dmalab_nvme_{package}.inf, expected_signer: DMA Lab Virtual Publisher}}
virtual:
  time_scale: 0.0004
  trusted_roots: [{packages}/dmalab-virtual-release-root.cer]
  duts:
    d1: {{build: {build}, edition: Enterprise, firmware: lenovo-wmi, boot_time_s: 45}}
  instruments:
    sw: {{kind: scpi-switch}}
    kb: {{kind: hid-keyboard}}
"""


class Dut:
    """A simulated DUT driven only through operation invocations, as the harness drives one."""

    def __init__(self, tmp: Path, **lab: Any) -> None:
        path = tmp / "lab.yaml"
        path.write_text(LAB.format(packages=PACKAGES.as_posix(), **lab), encoding="utf-8")
        self.lab = load_lab(path)
        self.machine = WindowsMachine(
            "d1",
            lab=self.lab,
            fs_root=tmp / "fs",
            username="tester",
            password=PASSWORD,
            executor=WindowsExecutor,
        )
        self.machine.start()

    def op(self, name: str, **params: Any) -> dict[str, Any]:
        script = CATALOG.build_invocation(name, params)
        encoded = base64.b64encode(script.encode("utf-16-le")).decode()
        cmd = self.machine.executor.start(
            "powershell.exe",
            ["-NoProfile", "-NonInteractive", "-EncodedCommand", encoded],
            skip_cmd_shell=False,
        )
        cmd.wait(5.0)
        out = cmd.poll()
        assert out.exit_code == 0, f"{name}: {out.stderr}"
        return json.loads(out.stdout.strip().splitlines()[-1])

    def settle(self) -> None:
        assert self.machine.drain(5.0)

    def reboot(self) -> None:
        before = self.op("host_facts")["last_boot_utc"]
        self.op("reboot_request", reason="test")
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            self.settle()
            if self.machine.power is Power.ON and self.op("host_facts")["last_boot_utc"] != before:
                break
        self.settle()

    def install(self, package: str) -> None:
        for f in [
            f"dmalab_nvme_{package}.inf",
            f"dmalab_nvme_{package}.cat",
            "dmalab_nvme.sys",
            "dmalab_flt.sys",
        ]:
            data = base64.b64encode((PACKAGES / f).read_bytes()).decode()
            self.op("file_write", path=f"C:\\pkg\\{f}", mode="create", data_base64=data)
        r = self.op("driver_install", inf_path=f"C:\\pkg\\dmalab_nvme_{package}.inf")
        assert r["outcome"] == "no_device" and r["published_name"].startswith("oem"), r

    def device(self) -> dict[str, Any]:
        devices = self.op("pnp_devices", hardware_id="PCI\\VEN_144D&DEV_A808*", present_only=True)
        assert len(devices["devices"]) == 1, devices
        return devices["devices"][0]


def _conditions(
    lab_pkg: Any, *, build: int, port: str, dv: bool, kdp: bool, guard: str, session: str
) -> Conditions:
    model = lab_pkg.model_for("PCI\\VEN_144D&DEV_A808")
    dm = model.dma_management
    return Conditions(
        build=build,
        inf=tuple(
            InfValue(
                "absent" if s.dma_remapping_compatible is None else str(s.dma_remapping_compatible)
            )
            for s in model.services
        ),
        device_remapping_supported=DeviceKey(
            "absent" if dm.remapping_supported is None else str(dm.remapping_supported)
        ),
        device_remapping_flags=DeviceKey(
            "absent" if dm.remapping_flags is None else str(dm.remapping_flags)
        ),
        port=PortKind(port),
        verifier_dma=dv,
        kdp=kdp,
        dmaguard=DmaGuardPolicy(guard),
        session=SessionState(session),
    )


def _asserted(exp: Any, field: str) -> bool:
    return exp.evidence[field] is not Evidence.UNVERIFIED


PACKAGE_NAMES = ["inf0", "inf1", "inf2", "inf3", "noinf", "dev1f1", "stack"]
CASES = (
    [
        (22631, p, port, False, True, "absent", s)
        for p in PACKAGE_NAMES
        for port in ("external", "exposed", "internal")
        for s in ("no-user", "locked", "unlocked")
    ]
    + [
        (22631, p, "external", False, True, g, s)
        for p in ("inf0", "inf1", "noinf")
        for g in ("0", "1", "2")
        for s in ("locked", "unlocked")
    ]
    + [
        (b, "inf2", port, True, True, "absent", "locked")
        for b in (19045, 22631)
        for port in ("external", "exposed", "internal")
    ]
    + [
        (22631, p, "external", False, False, "absent", s)
        for p in ("inf0", "noinf")
        for s in ("no-user", "locked")
    ]
    + [
        (b, p, port, False, True, "absent", "locked")
        for b in (19045, 26100)
        for p in ("inf3", "dev1f1", "inf2")
        for port in ("external", "internal")
    ]
)


@pytest.mark.parametrize(("build", "package", "port", "dv", "kdp", "guard", "session"), CASES)
def test_model_agrees_with_oracle(
    tmp_path: Path,
    build: int,
    package: str,
    port: str,
    dv: bool,
    kdp: bool,
    guard: str,
    session: str,
) -> None:
    dut = Dut(tmp_path, build=build, port=port, guard=guard, package=package)
    dut.install(package)
    if dv:
        r = dut.op("verifier_set", mode="persistent", flags=0x80, drivers=["dmalab_nvme.sys"])
        assert r["exit_code"] == 2 and r["reboot_required"]
    if not kdp:
        assert dut.op("kdp_firmware_set", vendor="lenovo-wmi", enabled=False)["changed"]
    if dv or not kdp:
        dut.reboot()
        assert dut.op("host_facts")["kdp"]["enabled"] is kdp
    if session == "locked":
        assert dut.op("session_lock")["requested"]
    elif session == "no-user":
        assert dut.op("session_signout")["requested"]
    dut.settle()
    assert dut.op("session_state")["state"] == session
    dut.machine.plug("p1")
    dut.settle()
    seen = dut.device()
    exp = expect(
        _conditions(
            dut.lab.read_package("pkg"),
            build=build,
            port=port,
            dv=dv,
            kdp=kdp,
            guard=guard,
            session=session,
        )
    )
    started = seen["status"] == "OK" and seen["problem_code"] == 0
    where = f"{build} {package} {port} dv={dv} kdp={kdp} guard={guard} {session}: {exp.reasons}"
    if _asserted(exp, "devpkey"):
        assert (seen["dma_policy"] or 0) == exp.devpkey, where
        assert (seen["dma_policy"] is None) == exp.devpkey_absent, where
    if _asserted(exp, "devpkey_key"):
        assert seen["dma_policy_key"] == exp.devpkey_key, where
    if _asserted(exp, "starts_at_plug"):
        assert started == exp.starts_at_plug, where
    if _asserted(exp, "problem_code") and not started:
        assert seen["problem_code"] == exp.problem_code, where
    dut.machine.console_keys(PASSWORD + "\n")
    dut.settle()
    after = dut.device()
    if exp.starts_after_unlock is not None and _asserted(exp, "starts_after_unlock"):
        assert (after["status"] == "OK") == exp.starts_after_unlock, where
    dut.machine.close()
