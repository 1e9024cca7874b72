"""Driver packages on one DUT: upload, signature check, `pnputil` install, and cleanup.

`PackageInstaller.install` uploads a package (the INF, its `[SourceDisksFiles]` and catalog)
with verified uploads, checks the signatures on the DUT (`Get-AuthenticodeSignature` on the
catalog and the `.sys` files), installs it (`pnputil /add-driver /install`) and records the
published `oemNN.inf` with the version and signer the driver store reports. A package whose
signature is missing, untrusted or from another signer is a product failure (`TestFailure`),
not a lab problem.

Installing is idempotent: the same package with the same bytes is installed once per installer.
A new version of a package (other bytes), or another package for the same hardware IDs,
replaces the one installed before, so a device has one candidate driver from this installer.
`uninstall_all` removes everything this installer installed, and reports every failure at once.

>>> installer = PackageInstaller(host)                                            # doctest: +SKIP
>>> pkg = installer.install("nvme-inf2", inf, "DMA Lab Virtual Publisher", deadline)  # doctest: +SKIP
>>> pkg.published_name, drivers_of(inf)                                          # doctest: +SKIP
('oem3.inf', ('dmalab_nvme.sys',))
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PureWindowsPath
from typing import TYPE_CHECKING

from harness.domain.inf import InfError, read_inf
from harness.errors import ConfigError, DutError, InfrastructureError, TestFailure
from harness.remote.deadline import Deadline
from harness.windows import readiness
from harness.windows.actions import package_files, upload_package
from harness.windows.results import InstallOutcome, SignatureInfo

if TYPE_CHECKING:
    from harness.windows.host import WindowsHost

__all__ = ["DEFAULT_REMOTE_ROOT", "InstalledPackage", "PackageInstaller", "drivers_of"]

DEFAULT_REMOTE_ROOT = "C:\\dmalab\\packages"
#: Device problem code: the kernel-mode code-signing policy refused the driver.
CM_PROB_UNSIGNED_DRIVER = 52
#: Budget of the certificate check after an install that overran its deadline.
STALL_CHECK_S = 30.0


def drivers_of(inf_path: Path) -> tuple[str, ...]:
    """The driver binaries (`dmalab_nvme.sys`) of a package: its services' `ServiceBinary`
    names, else the `.sys` files it ships; in INF order, without duplicates."""
    try:
        info = read_inf(inf_path)
    except (OSError, InfError) as exc:
        raise ConfigError(f"cannot read the driver package: {exc}", path=str(inf_path)) from exc
    names: list[str] = []
    for model in info.models:
        for service in model.services:
            if service.binary:
                names.append(PureWindowsPath(service.binary).name)
    if not names:
        names = [p.name for p in package_files(inf_path) if p.suffix.lower() == ".sys"]
    return tuple(dict.fromkeys(names))


@dataclass(frozen=True)
class InstalledPackage:
    name: str  # the lab's package name (driver_packages key)
    inf_path: Path  # local
    published_name: str  # oemNN.inf
    files: Mapping[str, str]  # package-relative name -> SHA-256 (local bytes)
    signer: str  # as the driver store reports it
    version: str  # "03/14/2025 1.4.102.0"
    remote_dir: str
    drivers: tuple[str, ...] = ()  # driver binaries (`drivers_of`)
    outcome: InstallOutcome = InstallOutcome.INSTALLED
    hardware_ids: frozenset[str] = field(default_factory=frozenset)  # lower case
    #: SHA-1 thumbprints of the certificate pnputil judges the package by: the catalog's
    #: signer (the binaries' when there is no catalog); empty when nothing was checked.
    signer_thumbprints: tuple[str, ...] = ()
    #: Each checked file's signature status and signer, as `driver_signature` reported it.
    signature_evidence: str = ""

    @property
    def reboot_required(self) -> bool:
        return self.outcome in (InstallOutcome.REBOOT_REQUIRED, InstallOutcome.REBOOT_INITIATED)


def _hashes(inf_path: Path) -> tuple[list[Path], dict[str, str]]:
    files = package_files(inf_path)
    hashes = {
        p.relative_to(inf_path.parent).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in files
    }
    return files, hashes


def _hardware_ids(inf_path: Path) -> frozenset[str]:
    info = read_inf(inf_path)  # readable: package_files has parsed it already
    return frozenset(h.lower() for m in info.models for h in m.hardware_ids)


def _signature_problems(
    checked: tuple[SignatureInfo, ...], catalog: str | None, expected_signer: str
) -> list[str]:
    """What is wrong with a package's signatures (empty: nothing).

    A package is judged by its catalog (review F5): the `.cat` must be validly signed by the
    expected signer. Production packages are normally dual-signed: the vendor's embedded
    Authenticode signature on the `.sys`, Microsoft's on the catalog; so any `Valid` embedded
    signature on a binary is fine, and a binary without one is catalog-signed (pnputil checks
    its hash against the catalog). A binary whose embedded signature is broken (HashMismatch,
    untrusted, ...) is still a problem. Without a catalog, each binary's embedded signature must
    be valid and by the expected signer.
    """
    by_path = {c.path.lower(): c for c in checked}
    cat = by_path.get(catalog.lower()) if catalog else None
    problems = []
    for c in checked:
        if cat is not None and c is not cat:
            if c.valid or c.status == "NotSigned":
                continue
        elif c.valid and c.signer_matches:
            continue
        signer = c.signer_subject or "no signer"
        why = (
            f"signed by {signer}, not {expected_signer!r}"
            if c.valid
            else f"signature {c.status} (status {c.status_code}, {c.signature_type}, {signer})"
        )
        problems.append(f"{PureWindowsPath(c.path).name}: {why}")
    return problems


class PackageInstaller:
    """Installs driver packages on one DUT and remembers what it installed."""

    def __init__(
        self,
        host: WindowsHost,
        *,
        remote_root: str = DEFAULT_REMOTE_ROOT,
        step_s: float = 120.0,
    ) -> None:
        self.host = host
        self.remote_root = remote_root.rstrip("\\/")
        self.step_s = step_s
        self._installed: dict[str, InstalledPackage] = {}
        #: every package installed during this installer's life, as recorded while installed
        #: (the qualification bundle's identity of what was tested, kept after teardown)
        self._ever: dict[str, InstalledPackage] = {}

    def __repr__(self) -> str:
        return f"PackageInstaller({self.host.name!r}, {sorted(self._installed)})"

    @property
    def installed(self) -> Mapping[str, InstalledPackage]:
        return dict(self._installed)

    @property
    def ever_installed(self) -> Mapping[str, InstalledPackage]:
        """Every package installed during this installer's life (the newest of each name)."""
        return dict(self._ever)

    def install(
        self,
        package_name: str,
        inf_path: Path,
        expected_signer: str,
        deadline: Deadline,
        *,
        test_certificates: Sequence[bytes] = (),
    ) -> InstalledPackage:
        """Install `package_name` (idempotent for the same bytes); what was installed.

        `test_certificates` (DER) of a test-signed package are imported into LocalMachine Root
        and TrustedPublisher first (F3); an install that overruns its deadline while a signer
        is missing from those stores is reported as that (the unanswered session-0 dialog).
        """
        name = self.host.name
        files, hashes = _hashes(inf_path)
        known = self._installed.get(package_name)
        if known is not None and dict(known.files) == hashes:
            return known
        # Refused before any change on a DUT whose operations have no elevated token (F15).
        readiness.require_elevated(self.host, deadline.child(self.step_s, f"token of {name}"))
        if test_certificates:
            state = readiness.provision_certificates(
                self.host,
                test_certificates,
                deadline=deadline.child(self.step_s, f"test certificates of {package_name}"),
            )
            refusal = readiness.missing_message(
                name, state, f"the test certificates of {package_name} could not be provisioned"
            )
            if refusal is not None:
                raise DutError(refusal)
        hardware_ids = _hardware_ids(inf_path)
        for other in list(self._installed.values()):
            if other.name == package_name or other.hardware_ids & hardware_ids:
                self._uninstall(other, deadline)
                del self._installed[other.name]

        remote_dir = f"{self.remote_root}\\{package_name}"
        remote_inf = upload_package(
            self.host,
            inf_path,
            remote_dir,
            deadline.child(self.step_s, f"upload of {package_name}"),
        )
        remote = {
            p: f"{remote_dir}\\" + p.relative_to(inf_path.parent).as_posix().replace("/", "\\")
            for p in files
        }
        to_check = [remote[p] for p in files if p.suffix.lower() in (".sys", ".cat")]
        catalog = next((remote[p] for p in files if p.suffix.lower() == ".cat"), None)
        signers: list[str] = []
        evidence = "no signature checked"
        if to_check:
            checked = self.host.driver_signature(
                to_check,
                expected_signer,
                deadline=deadline.child(self.step_s, f"signatures of {package_name}"),
            )
            problems = _signature_problems(checked, catalog, expected_signer)
            if problems:
                raise TestFailure(
                    f"driver package {package_name} ({inf_path.name}) is not properly signed "
                    f"on {name}: " + "; ".join(problems)
                )
            # Who pnputil asks about: the catalog's signer, else the binaries'.
            judged = [c for c in checked if catalog and c.path.lower() == catalog.lower()]
            signers = sorted(
                {c.signer_thumbprint for c in judged or checked if c.signer_thumbprint}
            )
            evidence = "; ".join(
                f"{PureWindowsPath(c.path).name}: {c.status}, {c.signer_subject or 'no signer'}"
                + (f" ({c.signer_thumbprint})" if c.signer_thumbprint else "")
                for c in checked
            )

        try:
            result = self.host.install_driver(
                remote_inf, deadline=deadline.child(self.step_s, f"install of {package_name}")
            )
        except InfrastructureError as exc:
            self._why_install_stalled(package_name, signers, exc)
            raise
        if result.outcome is InstallOutcome.FAILED:
            raise TestFailure(
                f"pnputil could not install driver package {package_name} ({inf_path.name}) on "
                f"{name}: exit code {result.exit_code}: {result.output.strip()}"
            )
        if not result.published_name:
            raise InfrastructureError(
                f"{name}: pnputil installed {package_name} but printed no published name: "
                f"{result.output.strip()}"
            )
        store = self.host.list_drivers(
            deadline=deadline.child(self.step_s, f"driver store of {name}")
        )
        entry = next(
            (d for d in store if d.published_name.lower() == result.published_name.lower()), None
        )
        if entry is None:
            raise InfrastructureError(
                f"{name}: {result.published_name} ({package_name}) is not in the driver store "
                "right after pnputil published it"
            )
        package = InstalledPackage(
            name=package_name,
            inf_path=inf_path,
            published_name=entry.published_name,
            files=hashes,
            signer=entry.signer,
            version=entry.version,
            remote_dir=remote_dir,
            drivers=drivers_of(inf_path),
            outcome=result.outcome,
            hardware_ids=hardware_ids,
            signer_thumbprints=tuple(signers),
            signature_evidence=evidence,
        )
        self._installed[package_name] = package
        self._ever[package_name] = package
        if result.outcome is not InstallOutcome.NO_DEVICE:  # a device took the driver
            self._check_loaded(package, evidence, deadline)
        return package

    def _check_loaded(self, package: InstalledPackage, evidence: str, deadline: Deadline) -> None:
        """F6: a signature valid for user mode can fail the kernel-mode signing policy, which
        shows only when the driver loads: a device of the package with problem code 52
        (CM_PROB_UNSIGNED_DRIVER) is the package's failure, with its evidence. The package stays
        recorded as installed, so teardown removes it."""
        refused = [
            d
            for hwid in sorted(package.hardware_ids)
            for d in self.host.pnp_devices(
                hwid, deadline=deadline.child(self.step_s, f"devices of {package.name}")
            )
            if d.problem_code == CM_PROB_UNSIGNED_DRIVER
        ]
        if refused:
            devices = ", ".join(sorted({f"{d.instance_id} ({d.inf_name})" for d in refused}))
            raise TestFailure(
                f"driver package {package.name} ({package.published_name}) installed on "
                f"{self.host.name} but the kernel refused to load its driver: Code 52 "
                f"(CM_PROB_UNSIGNED_DRIVER, kernel-mode signing policy) on {devices}; "
                f"signatures: {evidence}. A test-signed driver loads only with test signing in "
                "effect; a release driver needs a signature the kernel accepts"
            )

    def _why_install_stalled(
        self, package_name: str, signers: Sequence[str], exc: InfrastructureError
    ) -> None:
        """After an install that failed in transport (its deadline): DutError naming the signer
        certificates missing from LocalMachine Root / TrustedPublisher, if any."""
        if not signers:
            return
        check = Deadline.after(
            min(self.step_s, STALL_CHECK_S), f"certificate check on {self.host.name}"
        )
        try:
            state = readiness.certificate_state(self.host, signers, deadline=check)
        except InfrastructureError:
            return  # the original error stands
        refusal = readiness.missing_message(
            self.host.name, state, f"pnputil did not finish installing {package_name} ({exc})"
        )
        if refusal is not None:
            raise DutError(refusal) from exc

    def _uninstall(self, package: InstalledPackage, deadline: Deadline) -> None:
        dl = deadline.child(self.step_s, f"uninstall of {package.name}")
        result = self.host.uninstall_driver(package.published_name, deadline=dl)
        if result.outcome is InstallOutcome.FAILED:
            # Already gone (an earlier attempt whose answer was lost, e.g. the DUT went down
            # while answering): that is the state we wanted, not an error.
            store = self.host.list_drivers(deadline=dl)
            if all(d.published_name.lower() != package.published_name.lower() for d in store):
                return
            raise InfrastructureError(
                f"{self.host.name}: pnputil could not delete {package.published_name} "
                f"({package.name}): exit code {result.exit_code}: {result.output.strip()}"
            )

    def uninstall_all(self, deadline: Deadline) -> list[InstalledPackage]:
        """Remove every package this installer installed (newest first); those removed.

        Every package is attempted; the failures are raised together as one
        `InfrastructureError` (the packages that failed stay recorded).
        """
        errors: list[str] = []
        removed: list[InstalledPackage] = []
        for package in reversed(list(self._installed.values())):
            try:
                self._uninstall(package, deadline)
            except InfrastructureError as exc:
                errors.append(str(exc))
                continue
            del self._installed[package.name]
            removed.append(package)
        if removed:
            try:
                store = self.host.list_drivers(
                    deadline=deadline.child(self.step_s, f"driver store of {self.host.name}")
                )
            except InfrastructureError as exc:
                errors.append(f"could not check the driver store after uninstalling: {exc}")
            else:
                left = {d.published_name.lower() for d in store}
                for package in removed:
                    if package.published_name.lower() in left:
                        errors.append(
                            f"{package.published_name} ({package.name}) is still in the "
                            "driver store after pnputil deleted it"
                        )
        if errors:
            raise InfrastructureError(
                f"{self.host.name}: {len(errors)} problem(s) removing driver packages: "
                + "; ".join(errors)
            )
        return removed
