"""The simulated DUT refuses driver packages as Windows does, and its tools answer like Windows'.

Signatures are checked for real, by the package's catalog as SetupAPI does (osslsigncode and
harness.virtual_lab.catalog sign with CAs this test creates, signify verifies): the committed
dual-signed package installs, and so does a catalog-only one; a package without catalog, with a
file changed after cataloguing or with a tampered catalog is refused with pnputil's messages and
HRESULTs; a test-signed catalog is staged only once its root is trusted by the machine.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from harness.config.lab import load_lab
from harness.virtual_lab.catalog import sign_package
from harness.virtual_lab.signing import TestPki, build_driver_image
from harness.virtual_lab.windows.commands import run_command_line
from harness.virtual_lab.windows.driver_store import (
    ERROR_FILE_HASH_NOT_IN_CATALOG,
    ERROR_NO_CATALOG_FOR_OEM_INF,
    TRUST_E_BAD_DIGEST,
)
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


def _package(
    machine: WindowsMachine,
    folder: str,
    sys_file: Path | None,
    *,
    catalog: bool = True,
    inf_text: str | None = None,
) -> str:
    """The committed inf1 package in `C:\\<folder>`, with `sys_file` as its binary, with or
    without the committed catalog, and with `inf_text` instead of the INF when given."""
    target = machine.fs_root / "C" / folder
    target.mkdir(parents=True)
    shutil.copy(PACKAGES / "dmalab_nvme_inf1.inf", target)
    if inf_text is not None:
        (target / "dmalab_nvme_inf1.inf").write_text(inf_text, encoding="utf-8")
    if catalog:
        shutil.copy(PACKAGES / "dmalab_nvme_inf1.cat", target)
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
    # pnputil's signer is the catalog's, not the vendor's embedded signature on the .sys
    assert "Signer Name:        Virtual Windows Hardware Compatibility Publisher" in listing
    machine.plug("tb4")
    assert machine.drain(5)
    _, devices = run_command_line(machine, "pnputil /enum-devices /connected") or (1, "")
    assert "Status:                     Started" in devices and "oem3.inf" in devices


def test_a_catalog_only_binary_is_staged_and_loads(machine: WindowsMachine, tmp_path: Path) -> None:
    """A `.sys` without embedded signature whose Authenticode hash is in the signed catalog is
    signed as far as Windows is concerned: staged, and loaded (test signing off)."""
    unsigned = tmp_path / "unsigned.sys"
    build_driver_image(unsigned, name="dmalab_nvme")  # the committed image, before signing
    code, text = _add(machine, _package(machine, "catonly", unsigned))
    assert code == 259 and "oem3.inf" in text
    machine.plug("tb4")
    assert machine.drain(5)
    assert machine.port_device("tb4").problem_code == 0


def test_unsigned_and_tampered_packages_are_refused(
    machine: WindowsMachine, tmp_path: Path
) -> None:
    sys_file = PACKAGES / "dmalab_nvme.sys"
    # a validly vendor-signed binary is not enough: the INF names no catalog (or it is absent)
    inf = (PACKAGES / "dmalab_nvme_inf1.inf").read_text(encoding="utf-8")
    no_catalog = "\n".join(line for line in inf.splitlines() if "CatalogFile" not in line)
    code, text = _add(machine, _package(machine, "nocat", sys_file, inf_text=no_catalog))
    assert code == ERROR_NO_CATALOG_FOR_OEM_INF
    assert "The third-party INF does not contain digital signature information" in text
    code, text = _add(machine, _package(machine, "catmissing", sys_file, catalog=False))
    assert code == 2 and "cannot find the file specified. (dmalab_nvme_inf1.cat)" in text
    # a binary changed after cataloguing: its hash is not in the catalog
    tampered = tmp_path / "tampered.sys"
    data = bytearray(sys_file.read_bytes())
    data[0x250] ^= 0xFF  # inside .text, covered by the Authenticode hash
    tampered.write_bytes(bytes(data))
    code, text = _add(machine, _package(machine, "tampered", tampered))
    assert code == ERROR_FILE_HASH_NOT_IN_CATALOG and "(dmalab_nvme.sys)" in text
    assert "The hash for the file is not present in the specified catalog file" in text
    # so is an INF edited after cataloguing
    edited = inf.replace("1.4.101.0", "1.4.101.1")
    assert edited != inf
    code, text = _add(machine, _package(machine, "infedit", sys_file, inf_text=edited))
    assert code == ERROR_FILE_HASH_NOT_IN_CATALOG and "(dmalab_nvme_inf1.inf)" in text
    # a catalog changed after signing
    folder = _package(machine, "badcat", sys_file)
    cat = machine.fs_root / "C" / "badcat" / "dmalab_nvme_inf1.cat"
    raw = bytearray(cat.read_bytes())
    at = raw.index("dmalab_nvme.sys".encode("utf-16-le"))
    raw[at] ^= 0x01  # a member's File name, inside the signed list
    cat.write_bytes(bytes(raw))
    code, text = _add(machine, folder)
    assert code == TRUST_E_BAD_DIGEST and "did not verify" in text
    code, text = _add(machine, _package(machine, "missing", None))
    assert code == 2 and "cannot find the file" in text
    assert machine.store.packages() == []


def test_a_test_signed_package_is_staged_under_a_trusted_root(
    machine: WindowsMachine, tmp_path: Path
) -> None:
    """pnputil stages a package under the user-mode policy: a catalog signer that chains to a
    certificate in LocalMachine Root is enough to add it, test signing or not (whether the
    kernel loads its driver, Code 52 otherwise, is tests/integration/test_windows_kernel_signing.py);
    without the root in the store it is not trusted."""
    pki = TestPki.create(tmp_path / "pki", root_cn="Lab Test Root", signer_cn="Lab Test Signer")
    folder = tmp_path / "pkg"
    folder.mkdir()
    shutil.copy(PACKAGES / "dmalab_nvme_inf1.inf", folder)
    build_driver_image(folder / "dmalab_nvme.sys", name="dmalab_nvme")
    sign_package(folder / "dmalab_nvme_inf1.inf", pki)  # a catalog-signed (test) package

    def package(name: str) -> str:
        shutil.copytree(folder, machine.fs_root / "C" / name)
        return f"C:\\{name}\\dmalab_nvme_inf1.inf"

    code, text = _add(machine, package("test0"))
    assert code != 0 and "not trusted" in text  # the root is in no store of the machine
    machine.test_roots.append(pki.root_der)  # the test root in the machine's Root store
    code, text = _add(machine, package("test"))
    assert code == 259 and "oem" in text  # staged (no device yet), test signing off
    out = run_command_line(machine, "bcdedit /set testsigning on")
    assert out is not None and out[0] == 0
    _reboot(machine)
    code, text = _add(machine, package("test2"))
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
