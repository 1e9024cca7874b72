"""Review finding F5 (lab side): a driver package is judged by its catalog, as on Windows.

Production packages are dual-signed: the vendor's embedded Authenticode signature on the `.sys`,
Microsoft's signature on the `.cat` its INF names (`CatalogFile=`). Here the lab trusts one more
release root, "Virtual Microsoft Root" (made by this module), whose "Virtual Windows Hardware
Compatibility Publisher" signs the catalogs; the vendor's `.sys` is signed by the vendor's own
test PKI, whose root is in LocalMachine Root (user mode, as a public CA's is) but is no release
root, and tb-01 runs with test signing off: the kernel loads the driver only through the
catalog. Everything goes through the harness's real stack (PackageInstaller, WindowsHost, the
operation scripts) over WinRM to the virtual lab.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.config.lab import Lab, load_lab
from harness.errors import TestFailure
from harness.lab.connect import LabConnector
from harness.lab.packages import PackageInstaller
from harness.remote.deadline import Deadline
from harness.virtual_lab.catalog import sign_package, verify_catalog
from harness.virtual_lab.runtime import VirtualLabRuntime
from harness.virtual_lab.signing import TestPki, build_driver_image, issue_signer, sign_file
from harness.windows.actions import upload_package
from harness.windows.host import WindowsHost
from harness.windows.ops import OperationCatalog
from tests.integration.labs import ROOT, virtual_lab_text

pytestmark = pytest.mark.integration

INF = ROOT / "lab_config" / "packages" / "dmalab_nvme_inf1.inf"
PUBLISHER = "Virtual Windows Hardware Compatibility Publisher"
VENDOR = "Contoso Vendor Publisher"
NO_CATALOG = -536870353  # 0xE000022F ERROR_NO_CATALOG_FOR_OEM_INF
HASH_NOT_IN_CATALOG = -536870325  # 0xE000024B ERROR_FILE_HASH_NOT_IN_CATALOG


class Signers:
    def __init__(self, base: Path) -> None:
        self.vendor = TestPki.create(base / "vendor", root_cn="Contoso Root", signer_cn=VENDOR)
        microsoft = TestPki.create(
            base / "ms", root_cn="Virtual Microsoft Root", signer_cn="Virtual Microsoft CA"
        )
        self.microsoft_root = base / "virtual-microsoft-root.cer"
        self.microsoft_root.write_bytes(microsoft.root_der)
        self.publisher = issue_signer(microsoft, base / "whcp", signer_cn=PUBLISHER)


@pytest.fixture(scope="module")
def signers(tmp_path_factory: pytest.TempPathFactory) -> Signers:
    return Signers(tmp_path_factory.mktemp("catalog-pki"))


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory, signers: Signers) -> Lab:
    text = virtual_lab_text()
    line = next(x for x in text.splitlines() if x.startswith("  trusted_roots: ["))
    text = text.replace(line, line[:-1] + f", {signers.microsoft_root.as_posix()}]")
    text = text.replace("  time_scale: 0.045\n", "  time_scale: 0.02\n")
    path = tmp_path_factory.mktemp("cataloglab") / "lab.yaml"
    path.write_text(text, encoding="utf-8")
    return load_lab(path)


@pytest.fixture(scope="module")
def tb01(connector: LabConnector, runtime: VirtualLabRuntime) -> Iterator[WindowsHost]:
    host = WindowsHost(
        connector.shell("tb-01"), name="tb-01", catalog=OperationCatalog(), default_timeout_s=10
    )
    assert host.host_facts().test_signing_in_effect is False
    runtime.node("tb-01").machine.plug("tb4")
    runtime.settle()
    deadline = Deadline.after(5, "device enumerated")
    while runtime.dut_truth("tb-01")["devices"]["tb4"]["problem_code"] != 28:
        deadline.check()  # present, no driver yet (Code 28)
        time.sleep(0.02)
    try:
        yield host
    finally:
        host.shell.close()


def _package(base: Path, signers: Signers, *, vendor_signed: bool, catalog: bool = True) -> Path:
    """The inf1 package in `base`: its .sys vendor-signed or catalog-only, catalogued by the
    lab's Microsoft publisher unless `catalog` is false (then the INF names none)."""
    base.mkdir()
    inf = base / INF.name
    shutil.copy(INF, inf)
    if vendor_signed:
        build_driver_image(base / "unsigned.tmp", name="dmalab_nvme")
        sign_file(base / "unsigned.tmp", base / "dmalab_nvme.sys", signers.vendor)
        (base / "unsigned.tmp").unlink()
    else:
        build_driver_image(base / "dmalab_nvme.sys", name="dmalab_nvme")
    if catalog:
        sign_package(inf, signers.publisher)
    else:
        text = inf.read_text(encoding="utf-8")
        inf.write_text(
            "\n".join(x for x in text.splitlines() if "CatalogFile" not in x), encoding="utf-8"
        )
    return inf


def _dl(what: str, seconds: float = 30) -> Deadline:
    return Deadline.after(seconds, what)


def test_a_dual_signed_package_installs_and_is_judged_by_its_catalog(
    tb01: WindowsHost, signers: Signers, runtime: VirtualLabRuntime, tmp_path: Path
) -> None:
    inf = _package(tmp_path / "dual", signers, vendor_signed=True)
    catalog = verify_catalog(
        inf.parent / "dmalab_nvme_inf1.cat", [signers.microsoft_root.read_bytes()]
    )
    assert catalog.signer_thumbprint is not None
    installer = PackageInstaller(tb01, remote_root="C:\\dmalab\\catalogs", step_s=10)
    pkg = installer.install(
        "dual",
        inf,
        PUBLISHER,  # expected_signer: the catalog's signer, not the vendor's
        _dl("install"),
        test_certificates=[signers.vendor.root_der],  # the vendor's CA, trusted in user mode
    )
    assert pkg.signer == PUBLISHER  # pnputil's Signer Name
    assert pkg.signer_thumbprints == (catalog.signer_thumbprint,)
    assert f"dmalab_nvme.sys: Valid, CN={VENDOR}" in pkg.signature_evidence  # before install
    assert f"dmalab_nvme_inf1.cat: Valid, CN={PUBLISHER}" in pkg.signature_evidence
    # test signing off, vendor root no release root: the kernel loaded it through the catalog
    device = runtime.dut_truth("tb-01")["devices"]["tb4"]
    assert device["problem_code"] == 0 and device["package"] == pkg.published_name
    # Get-AuthenticodeSignature once the catalog is installed: Catalog, Microsoft's signer
    sys_path = f"{pkg.remote_dir}\\dmalab_nvme.sys"
    cat_path = f"{pkg.remote_dir}\\dmalab_nvme_inf1.cat"
    sys_sig, cat_sig = tb01.driver_signature([sys_path, cat_path], PUBLISHER)
    assert (sys_sig.status, sys_sig.signature_type) == ("Valid", "Catalog")
    assert sys_sig.signer_matches and sys_sig.signer_thumbprint == catalog.signer_thumbprint
    assert (cat_sig.status, cat_sig.signature_type) == ("Valid", "Authenticode")
    assert cat_sig.signer_subject is not None and cat_sig.signer_subject.startswith(
        f"CN={PUBLISHER}"
    )
    installer.uninstall_all(_dl("uninstall"))
    # the catalog left the catalog database with its package: the vendor's signature again
    (after,) = tb01.driver_signature([sys_path], PUBLISHER)
    assert after.signature_type == "Authenticode" and not after.signer_matches


def test_a_catalog_only_binary_reads_not_signed_until_its_catalog_is_installed(
    tb01: WindowsHost, signers: Signers, tmp_path: Path
) -> None:
    inf = _package(tmp_path / "catonly", signers, vendor_signed=False)
    remote_inf = upload_package(tb01, inf, "C:\\dmalab\\catonly", _dl("upload"))
    sys_path = remote_inf.rsplit("\\", 1)[0] + "\\dmalab_nvme.sys"
    (before,) = tb01.driver_signature([sys_path], PUBLISHER)
    assert (before.status, before.signature_type, before.signer_subject) == (
        "NotSigned",
        "None",
        None,
    )
    installed = tb01.install_driver(remote_inf, timeout_s=20)
    assert installed.published_name, installed.output
    try:
        (after,) = tb01.driver_signature([sys_path], PUBLISHER)
        assert (after.status, after.signature_type, after.signer_matches) == (
            "Valid",
            "Catalog",
            True,
        )
    finally:
        tb01.uninstall_driver(installed.published_name, timeout_s=20)


def test_a_package_without_catalog_is_refused_by_pnputil(
    tb01: WindowsHost, signers: Signers, tmp_path: Path
) -> None:
    """The vendor-signed .sys passes the harness's own check (expected signer: the vendor), but
    pnputil refuses an INF that names no catalog."""
    inf = _package(tmp_path / "nocat", signers, vendor_signed=True, catalog=False)
    installer = PackageInstaller(tb01, remote_root="C:\\dmalab\\nocat", step_s=10)
    with pytest.raises(TestFailure) as info:
        installer.install(
            "nocat", inf, VENDOR, _dl("install"), test_certificates=[signers.vendor.root_der]
        )
    message = str(info.value)
    assert f"exit code {NO_CATALOG}" in message
    assert "The third-party INF does not contain digital signature information" in message
    assert installer.installed == {}


def test_a_binary_changed_after_cataloguing_is_refused_by_pnputil(
    tb01: WindowsHost, signers: Signers, tmp_path: Path
) -> None:
    """A catalog-only .sys rebuilt after the catalog was made: the harness's check passes (the
    catalog is valid, the binary carries no signature of its own), pnputil does not."""
    inf = _package(tmp_path / "changed", signers, vendor_signed=False)
    sys_file = inf.parent / "dmalab_nvme.sys"
    data = bytearray(sys_file.read_bytes())
    data[0x250] ^= 0xFF  # inside .text: another Authenticode hash
    sys_file.write_bytes(bytes(data))
    installer = PackageInstaller(tb01, remote_root="C:\\dmalab\\changed", step_s=10)
    with pytest.raises(TestFailure) as info:
        installer.install("changed", inf, PUBLISHER, _dl("install"))
    message = str(info.value)
    assert f"exit code {HASH_NOT_IN_CATALOG}" in message
    assert "The hash for the file is not present in the specified catalog file" in message
    assert "(dmalab_nvme.sys)" in message
    assert installer.installed == {}
