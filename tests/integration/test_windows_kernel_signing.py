"""Review finding F6: a signature valid for user mode can fail the kernel-mode signing policy.

The lab is a copy of `lab_config/virtual.yaml` whose tb-01 has quirk
`signing_cert_provisioned: false` (the lab's packages are test-signed there) and test signing
off. Once the lab's certificates are in LocalMachine Root and TrustedPublisher,
`Get-AuthenticodeSignature` says Valid and pnputil installs the package, but the kernel does not
load the driver: the device gets problem code 52 (CM_PROB_UNSIGNED_DRIVER). The harness reports
that as the package's failure (`TestFailure`) with the evidence, not as an infrastructure error.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.config.lab import Lab, load_lab
from harness.errors import TestFailure
from harness.lab.connect import LabConnector
from harness.lab.packages import PackageInstaller
from harness.remote.deadline import Deadline
from harness.virtual_lab.catalog import verify_catalog
from harness.virtual_lab.runtime import VirtualLabRuntime
from harness.windows.host import WindowsHost
from harness.windows.ops import OperationCatalog

ROOT = Path(__file__).resolve().parents[2]
LAB_FILE = ROOT / "lab_config" / "virtual.yaml"
PACKAGES = ROOT / "lab_config" / "packages"
ROOT_CER = PACKAGES / "dmalab-virtual-release-root.cer"

pytestmark = pytest.mark.integration


def _lab_file(path: Path) -> Path:
    text = LAB_FILE.read_text(encoding="utf-8")
    base = (ROOT / "lab_config").as_posix()
    text = text.replace("path: packages/", f"path: {base}/packages/")
    text = text.replace("[packages/", f"[{base}/packages/")
    tb01 = "      boot_time_s: 45\n      quirks: {}\n"
    assert "  time_scale: 0.045\n" in text and text.count(tb01) == 1, "lab changed shape"
    text = text.replace("  time_scale: 0.045\n", "  time_scale: 0.02\n")
    text = text.replace(
        tb01, "      boot_time_s: 45\n      quirks:\n        signing_cert_provisioned: false\n"
    )
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Lab:
    return load_lab(_lab_file(tmp_path_factory.mktemp("kernelsign") / "lab.yaml"))


@pytest.fixture
def tb01(connector: LabConnector) -> Iterator[WindowsHost]:
    host = WindowsHost(
        connector.shell("tb-01"), name="tb-01", catalog=OperationCatalog(), default_timeout_s=10
    )
    try:
        yield host
    finally:
        host.shell.close()


def test_code_52_after_install_is_the_packages_failure_with_evidence(
    tb01: WindowsHost, lab: Lab, runtime: VirtualLabRuntime
) -> None:
    assert tb01.host_facts().test_signing_in_effect is False
    runtime.node("tb-01").machine.plug("tb4")  # the cable, as the lab's switch would connect it
    runtime.settle()
    deadline = Deadline.after(5, "device enumerated")
    while runtime.dut_truth("tb-01")["devices"]["tb4"]["problem_code"] != 28:
        deadline.check()  # added without a driver first (Code 28)
        time.sleep(0.02)
    # the package's publisher: its catalog's signer (the .sys carries the vendor's signature)
    publisher = verify_catalog(PACKAGES / "dmalab_nvme_inf1.cat", [ROOT_CER.read_bytes()])
    assert publisher.signer_der is not None
    cfg = lab.driver_packages["nvme-inf1"]
    installer = PackageInstaller(tb01, remote_root="C:\\dmalab\\kernel", step_s=5)
    with pytest.raises(TestFailure) as info:
        installer.install(
            "nvme-inf1",
            lab.resolve_path(cfg.path),
            cfg.expected_signer,
            Deadline.after(30, "install"),
            test_certificates=[ROOT_CER.read_bytes(), publisher.signer_der],
        )
    message = str(info.value)
    assert "Code 52" in message and "kernel-mode signing policy" in message
    assert "dmalab_nvme.sys: Valid, CN=DMA Lab Virtual Publisher" in message
    device = runtime.dut_truth("tb-01")["devices"]["tb4"]
    assert device["problem_code"] == 52
    # recorded as installed, so teardown removes it
    assert list(installer.installed) == ["nvme-inf1"]
    installer.uninstall_all(Deadline.after(20, "uninstall"))
    assert installer.installed == {}
