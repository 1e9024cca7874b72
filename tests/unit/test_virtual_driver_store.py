"""The simulated DUT refuses driver packages as Windows does, and its tools answer like Windows'.

Signatures are checked for real (osslsigncode signs with a CA this test creates, signify
verifies): the release-signed package installs; unsigned and tampered packages are refused with
pnputil's messages; a test-signed package installs only while test signing is on (applied at
boot) and its root is trusted by the machine.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from harness.config.lab import load_lab
from harness.virtual_lab.signing import TestPki, build_driver_image, sign_file
from harness.virtual_lab.windows.commands import run_command_line
from harness.virtual_lab.windows.executor import WindowsExecutor
from harness.virtual_lab.windows.machine import WindowsMachine

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ROOT / "lab_config" / "packages"


@pytest.fixture
def machine(tmp_path: Path) -> WindowsMachine:
    text = (ROOT / "lab_config" / "virtual.yaml").read_text(encoding="utf-8")
    text = text.replace("path: packages/", f"path: {PACKAGES.as_posix()}/")
    text = text.replace("[packages/", f"[{PACKAGES.as_posix()}/")
    text = text.replace("time_scale: 0.045", "time_scale: 0.0004")
    text = text.replace(
        "      secure_boot: true\n      boot_time_s: 45\n      quirks: {}",
        "      secure_boot: false\n      boot_time_s: 45\n      quirks: {}",
    )
    lab_file = tmp_path / "lab.yaml"
    lab_file.write_text(text, encoding="utf-8")
    m = WindowsMachine(
        "tb-01",
        lab=load_lab(lab_file),
        fs_root=tmp_path / "fs",
        username="tester",
        password="pw",
        executor=WindowsExecutor,
    )
    m.start()
    yield m
    m.close()


def _package(machine: WindowsMachine, folder: str, sys_file: Path | None) -> str:
    target = machine.fs_root / "C" / folder
    target.mkdir(parents=True)
    shutil.copy(PACKAGES / "dmalab_nvme_inf1.inf", target)
    if sys_file is not None:
        shutil.copy(sys_file, target / "dmalab_nvme.sys")
    return f"C:\\{folder}\\dmalab_nvme_inf1.inf"


def _add(machine: WindowsMachine, inf: str) -> tuple[int, str]:
    out = run_command_line(machine, f'pnputil /add-driver "{inf}" /install')
    assert out is not None
    return out


def _reboot(machine: WindowsMachine) -> None:
    boots = machine.boots
    machine.request_reboot()
    assert machine.drain(5) and machine.boots == boots + 1


def test_release_signed_package_installs_and_is_listed(machine: WindowsMachine) -> None:
    code, text = _add(machine, _package(machine, "rel", PACKAGES / "dmalab_nvme.sys"))
    assert code == 259 and "Published Name:         oem3.inf" in text  # no device plugged
    code, listing = run_command_line(machine, "pnputil /enum-drivers") or (1, "")
    assert "Original Name:      dmalab_nvme_inf1.inf" in listing
    assert "Signer Name:        DMA Lab Virtual Publisher" in listing
    machine.plug("tb4")
    assert machine.drain(5)
    _, devices = run_command_line(machine, "pnputil /enum-devices /connected") or (1, "")
    assert "Status:                     Started" in devices and "oem3.inf" in devices


def test_unsigned_and_tampered_packages_are_refused(
    machine: WindowsMachine, tmp_path: Path
) -> None:
    unsigned = tmp_path / "unsigned.sys"
    build_driver_image(unsigned, name="dmalab_nvme")
    code, text = _add(machine, _package(machine, "unsigned", unsigned))
    assert code != 0 and "does not contain digital signature information" in text
    tampered = tmp_path / "tampered.sys"
    data = bytearray((PACKAGES / "dmalab_nvme.sys").read_bytes())
    data[0x250] ^= 0xFF  # inside .text, covered by the signed digest
    tampered.write_bytes(bytes(data))
    code, text = _add(machine, _package(machine, "tampered", tampered))
    assert code != 0 and "tampering" in text
    code, text = _add(machine, _package(machine, "missing", None))
    assert code == 2 and "cannot find the file" in text
    assert machine.store.packages() == []


def test_a_test_signed_package_is_staged_under_a_trusted_root(
    machine: WindowsMachine, tmp_path: Path
) -> None:
    """pnputil stages a package under the user-mode policy: a signer that chains to a
    certificate in LocalMachine Root is enough to add it, test signing or not (whether the
    kernel loads its driver, Code 52 otherwise, is tests/integration/test_windows_kernel_signing.py);
    without the root in the store it is not trusted."""
    pki = TestPki.create(tmp_path / "pki", root_cn="Lab Test Root", signer_cn="Lab Test Signer")
    unsigned = tmp_path / "drv.sys"
    build_driver_image(unsigned, name="dmalab_nvme")
    signed = tmp_path / "signed.sys"
    sign_file(unsigned, signed, pki)
    code, text = _add(machine, _package(machine, "test0", signed))
    assert code != 0 and "not trusted" in text  # the root is in no store of the machine
    machine.test_roots.append(pki.root_der)  # the test root in the machine's Root store
    code, text = _add(machine, _package(machine, "test", signed))
    assert code == 259 and "oem" in text  # staged (no device yet), test signing off
    out = run_command_line(machine, "bcdedit /set testsigning on")
    assert out is not None and out[0] == 0
    _reboot(machine)
    code, text = _add(machine, _package(machine, "test2", signed))
    assert code == 259 and "oem" in text


def test_verifier_and_shutdown_tools(machine: WindowsMachine) -> None:
    code, text = run_command_line(machine, "verifier /flags 0x80 /driver dmalab_nvme.sys") or (
        0,
        "",
    )
    assert code == 2 and "reboot" in text
    _, settings = run_command_line(machine, "verifier /querysettings") or (0, "")
    assert "Verifier Flags: 0x00000080" in settings and "dmalab_nvme.sys" in settings
    _, active = run_command_line(machine, "verifier /query") or (0, "")
    assert active.startswith("No drivers are currently verified.")
    _, facts = run_command_line(machine, "whoami") or (0, "")
    assert facts.strip() == "tb-01\\tester"
    assert run_command_line(machine, "shutdown /r /t 0") == (0, "")
    assert machine.drain(5)
    _, active = run_command_line(machine, "verifier /query") or (0, "")
    assert "Name: dmalab_nvme.sys" in active and "Level: 00000080" in active
