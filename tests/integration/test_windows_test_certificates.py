"""Review finding F3: a test-signed package's certificate must be in LocalMachine Root and
TrustedPublisher, or pnputil waits on the Windows Security dialog in session 0.

The lab is a copy of `lab_config/virtual.yaml` whose tb-01 has Secure Boot off and quirk
`signing_cert_provisioned: false`: the lab's signing root is not preinstalled as a release root,
so its packages are test-signed there (test signing on, and their certificates provisioned). The
harness's own operation scripts run over the virtual lab's real WinRM endpoint.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.config.lab import Lab, load_lab
from harness.errors import DutError
from harness.lab.connect import LabConnector
from harness.lab.packages import PackageInstaller
from harness.remote.deadline import Deadline
from harness.virtual_lab.catalog import verify_catalog
from harness.virtual_lab.runtime import VirtualLabRuntime
from harness.windows import readiness
from harness.windows.actions import reboot_and_wait
from harness.windows.host import WindowsHost
from harness.windows.ops import OperationCatalog
from harness.windows.polling import Backoff

ROOT = Path(__file__).resolve().parents[2]
LAB_FILE = ROOT / "lab_config" / "virtual.yaml"
PACKAGES = ROOT / "lab_config" / "packages"
ROOT_CER = PACKAGES / "dmalab-virtual-release-root.cer"
FAST_POLL = Backoff(start_s=0.02, factor=1.3, cap_s=0.1)

pytestmark = pytest.mark.integration


def _lab_file(path: Path) -> Path:
    text = LAB_FILE.read_text(encoding="utf-8")
    base = (ROOT / "lab_config").as_posix()
    text = text.replace("path: packages/", f"path: {base}/packages/")
    text = text.replace("[packages/", f"[{base}/packages/")
    tb01 = "      firmware: lenovo-wmi\n      secure_boot: true\n      boot_time_s: 45\n      quirks: {}\n"
    assert "  time_scale: 0.045\n" in text and tb01 in text, "lab changed shape"
    text = text.replace("  time_scale: 0.045\n", "  time_scale: 0.02\n")
    text = text.replace(
        tb01,
        "      firmware: lenovo-wmi\n      secure_boot: false\n      boot_time_s: 45\n"
        "      quirks:\n        signing_cert_provisioned: false\n",
    )
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Lab:
    return load_lab(_lab_file(tmp_path_factory.mktemp("certlab") / "lab.yaml"))


@pytest.fixture(scope="module")
def tb01(connector: LabConnector) -> Iterator[WindowsHost]:
    host = WindowsHost(
        connector.shell("tb-01"), name="tb-01", catalog=OperationCatalog(), default_timeout_s=10
    )
    assert host.set_test_signing(True).exit_code == 0
    reboot_and_wait(
        host,
        Deadline.after(15, "reboot of tb-01"),
        down_timeout_s=3,
        up_timeout_s=15,
        poll=FAST_POLL,
    )
    try:
        yield host
    finally:
        host.shell.close()


def _inf(lab: Lab, package: str) -> tuple[Path, str]:
    cfg = lab.driver_packages[package]
    return lab.resolve_path(cfg.path), cfg.expected_signer


def _publisher() -> tuple[bytes, str]:
    """The lab packages' publisher (DER) and thumbprint: the signer of their catalogs, whom the
    Windows Security dialog names (the .sys carry the vendor's embedded signature)."""
    check = verify_catalog(PACKAGES / "dmalab_nvme_inf1.cat", [ROOT_CER.read_bytes()])
    assert check.signer_der is not None and check.signer_thumbprint is not None
    return check.signer_der, check.signer_thumbprint


def _dl(what: str, seconds: float = 20) -> Deadline:
    return Deadline.after(seconds, what)


def test_an_unprovisioned_signer_stalls_pnputil_and_is_named_with_its_stores(
    tb01: WindowsHost, lab: Lab
) -> None:
    # The root is trusted (user mode: the signature reads Valid) but the signer is not a
    # trusted publisher: the install waits on the dialog until the call's deadline.
    state = readiness.provision_certificates(tb01, [ROOT_CER.read_bytes()])
    assert state.imported == 2
    _der, thumb = _publisher()
    assert readiness.certificate_state(tb01, [thumb]).missing == {
        thumb: ("Root", "TrustedPublisher")
    }
    inf, signer = _inf(lab, "nvme-inf1")
    installer = PackageInstaller(tb01, remote_root="C:\\dmalab\\unprovisioned", step_s=3)
    with pytest.raises(DutError) as info:
        installer.install("nvme-inf1", inf, signer, _dl("install"))
    message = str(info.value)
    assert thumb in message and "LocalMachine\\TrustedPublisher" in message
    assert "session 0" in message
    assert installer.installed == {}


def test_test_certificates_are_provisioned_before_the_install(
    tb01: WindowsHost, lab: Lab, runtime: VirtualLabRuntime
) -> None:
    der, thumb = _publisher()
    inf, signer = _inf(lab, "nvme-inf1")
    installer = PackageInstaller(tb01, remote_root="C:\\dmalab\\provisioned", step_s=5)
    pkg = installer.install(
        "nvme-inf1", inf, signer, _dl("install"), test_certificates=[ROOT_CER.read_bytes(), der]
    )
    assert pkg.published_name.startswith("oem")
    assert readiness.certificate_state(tb01, [thumb]).missing == {}
    installer.uninstall_all(_dl("uninstall"))
