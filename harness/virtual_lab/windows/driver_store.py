"""The simulated driver store with pnputil's semantics (docs/domain.md §6).

`add(inf_path)` stages a package as `oemNN.inf` after checking it as SetupAPI does, by its
catalog (learn.microsoft.com "Catalog Files and Digital Signatures"): the INF must name one
(`CatalogFile=` / `CatalogFile.NTamd64=` in `[Version]`), the catalog's signature must chain to
a trusted root (the machine's release roots, and LocalMachine Root: the user-mode policy; the
kernel-mode policy applies at load, `pnp_install.kernel_refusal`), and the INF and every file of
its `[SourceDisksFiles]` must be catalog members with their current hash
(`harness.virtual_lab.catalog`, signify). Embedded signatures of the binaries are not consulted
for staging. A package with the same original name and content is not staged twice.
`delete(published)` removes it, and its catalog from the system catalog database
(`catalogs()`). Installing a package on devices, and what that writes to the registry, is the
PnP manager's job (`harness.virtual_lab.windows.machine`).

Exit codes and messages follow pnputil: 0 success, 2 file not found, 259 (`ERROR_NO_MORE_ITEMS`)
no device to install on, and signature failures as their SetupAPI / trust HRESULTs (signed
32-bit; values from setupapi.h and winerror.h, e.g.
https://microsoft.github.io/windows-docs-rs/doc/windows/Win32/Foundation/constant.ERROR_FILE_HASH_NOT_IN_CATALOG.html).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from harness.domain.inf import InfError, InfInfo, parse_inf
from harness.domain.inf_lexer import decode_inf, logical_lines, split_fields, split_sections
from harness.virtual_lab.catalog import catalog_name, is_member, verify_catalog
from harness.virtual_lab.signing import SignatureStatus

ERROR_FILE_NOT_FOUND = 2
ERROR_NO_MORE_ITEMS = 259
ERROR_SUCCESS_REBOOT_REQUIRED = 3010
ERROR_INVALID_INF = -536870397  # 0xE0000203 ERROR_GENERAL_SYNTAX
ERROR_NO_CATALOG_FOR_OEM_INF = -536870353  # 0xE000022F: the INF names no catalog
ERROR_FILE_HASH_NOT_IN_CATALOG = -536870325  # 0xE000024B: a file is not a catalog member
TRUST_E_NOSIGNATURE = -2146762496  # 0x800B0100: the catalog is no signed catalog
TRUST_E_BAD_DIGEST = -2146869232  # 0x80096010: the catalog changed after signing
CERT_E_UNTRUSTEDROOT = -2146762487  # 0x800B0109: the catalog's root is not trusted
ERROR_IN_USE = -536870339  # 0xE000023D, devices still use the package (no /force)

NO_CATALOG_MESSAGE = "The third-party INF does not contain digital signature information."
HASH_NOT_IN_CATALOG_MESSAGE = (
    "The hash for the file is not present in the specified catalog file. The file is likely "
    "corrupt or the victim of tampering."
)
_SIGNATURE_ERRORS = {
    SignatureStatus.NotSigned: (TRUST_E_NOSIGNATURE, "No signature was present in the subject."),
    SignatureStatus.HashMismatch: (
        TRUST_E_BAD_DIGEST,
        "The digital signature of the object did not verify.",
    ),
    SignatureStatus.NotTrusted: (
        CERT_E_UNTRUSTEDROOT,
        "A certificate chain processed, but terminated in a root certificate which is not "
        "trusted by the trust provider.",
    ),
}


@dataclass(frozen=True)
class StagedPackage:
    published_name: str  # oemNN.inf
    original_name: str
    directory: Path  # the package's folder on the DUT's file system
    info: InfInfo
    content_sha256: str
    signer: str | None
    #: the package's signed catalog (DER): in the system catalog database while staged
    catalog: bytes | None = None

    @property
    def provider(self) -> str:
        return self.info.provider or "Unknown"


@dataclass(frozen=True)
class StoreResult:
    exit_code: int
    message: str
    package: StagedPackage | None = None
    already_present: bool = False


def source_disk_files(data: bytes, name: str) -> list[str]:
    """File names listed in `[SourceDisksFiles]` (and its architecture-decorated variants)."""
    sections = split_sections(logical_lines(decode_inf(data, name), name), name)
    files: list[str] = []
    for key, section in sections.items():
        if key.split(".")[0] != "sourcedisksfiles":
            continue
        for line in section.lines:
            left = line.text.split("=", 1)[0]
            file_name = split_fields(left)[0].strip().strip('"')
            if file_name and file_name.lower() not in {f.lower() for f in files}:
                files.append(file_name)
    return files


class DriverStore:
    def __init__(self, first_oem: int = 3) -> None:
        self._packages: dict[str, StagedPackage] = {}
        self._next = first_oem

    def packages(self) -> list[StagedPackage]:
        return sorted(self._packages.values(), key=lambda p: int(p.published_name[3:-4]))

    def get(self, published_name: str) -> StagedPackage | None:
        return self._packages.get(published_name.lower())

    def add(self, inf: Path, *, trusted_roots: Sequence[bytes]) -> StoreResult:
        if not inf.is_file():
            return StoreResult(ERROR_FILE_NOT_FOUND, "The system cannot find the file specified.")
        data = inf.read_bytes()
        try:
            info = parse_inf(data, inf.name)
            files = source_disk_files(data, inf.name)
        except InfError as exc:
            return StoreResult(ERROR_INVALID_INF, f"The INF file is invalid: {exc.message}")
        cat_name = catalog_name(decode_inf(data, inf.name))
        if cat_name is None:
            return StoreResult(ERROR_NO_CATALOG_FOR_OEM_INF, NO_CATALOG_MESSAGE)
        cat_path = _find(inf.parent, cat_name)
        if cat_path is None:
            return StoreResult(
                ERROR_FILE_NOT_FOUND, f"The system cannot find the file specified. ({cat_name})"
            )
        cat = cat_path.read_bytes()
        check = verify_catalog(cat, trusted_roots)
        if check.status is not SignatureStatus.Valid:
            code, message = _SIGNATURE_ERRORS.get(
                check.status, (TRUST_E_NOSIGNATURE, check.message)
            )
            return StoreResult(code, f"{message} ({cat_path.name})")
        digest = hashlib.sha256(data)
        digest.update(cat)
        members = [inf]
        for file_name in files:
            path = _find(inf.parent, file_name)
            if path is None:
                return StoreResult(
                    ERROR_FILE_NOT_FOUND,
                    f"The system cannot find the file specified. ({file_name})",
                )
            members.append(path)
        for path in members:
            if not is_member(path, cat):
                return StoreResult(
                    ERROR_FILE_HASH_NOT_IN_CATALOG, f"{HASH_NOT_IN_CATALOG_MESSAGE} ({path.name})"
                )
            if path is not inf:
                digest.update(path.read_bytes())
        signer = check.signer_cn
        content = digest.hexdigest()
        for staged in self._packages.values():
            if (
                staged.original_name.lower() == inf.name.lower()
                and staged.content_sha256 == content
            ):
                return StoreResult(0, "Driver package is up-to-date.", staged, already_present=True)
        published = f"oem{self._next}.inf"
        self._next += 1
        staged = StagedPackage(published, inf.name, inf.parent, info, content, signer, cat)
        self._packages[published] = staged
        return StoreResult(0, "Driver package added successfully.", staged)

    def catalogs(self) -> list[bytes]:
        """The system catalog database: the catalogs of the staged packages, oldest first."""
        return [p.catalog for p in self.packages() if p.catalog is not None]

    def delete(self, published_name: str) -> StagedPackage | None:
        return self._packages.pop(published_name.lower(), None)

    def best_for(self, hardware_ids: Sequence[str]) -> StagedPackage | None:
        """The newest staged package with a model for one of `hardware_ids` (exact, any case)."""
        wanted = {h.lower() for h in hardware_ids}
        for package in reversed(self.packages()):
            if any(h.lower() in wanted for m in package.info.models for h in m.hardware_ids):
                return package
        return None


def _find(folder: Path, file_name: str) -> Path | None:
    exact = folder / file_name
    if exact.is_file():
        return exact
    for candidate in folder.iterdir() if folder.is_dir() else ():
        if candidate.name.lower() == file_name.lower() and candidate.is_file():
            return candidate
    return None
