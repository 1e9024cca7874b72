"""The simulated driver store with pnputil's semantics (docs/domain.md §6).

`add(inf_path)` stages a package as `oemNN.inf` after checking the Authenticode signature of
every file in its `[SourceDisksFiles]` for real (signify, through `harness.virtual_lab.signing`):
trusted are the machine's release roots, and test roots only while test signing is on. A package
with the same original name and content is not staged twice. `delete(published)` removes it.
Installing a package on devices, and what that writes to the registry, is the PnP manager's job
(`harness.virtual_lab.windows.machine`).

Exit codes and messages follow pnputil: 0 success, 2 file not found, 259 (`ERROR_NO_MORE_ITEMS`)
no device to install on, and signature failures as their HRESULTs (signed 32-bit).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from harness.domain.inf import InfError, InfInfo, parse_inf
from harness.domain.inf_lexer import decode_inf, logical_lines, split_fields, split_sections
from harness.virtual_lab.signing import SignatureStatus, verify_file

ERROR_FILE_NOT_FOUND = 2
ERROR_NO_MORE_ITEMS = 259
ERROR_SUCCESS_REBOOT_REQUIRED = 3010
ERROR_INVALID_INF = -536870397  # 0xE0000203 ERROR_GENERAL_SYNTAX
ERROR_NO_CATALOG_FOR_OEM_INF = -536870353  # 0xE000022F
TRUST_E_BAD_DIGEST = -2146869232  # 0x80096010
CERT_E_UNTRUSTEDROOT = -2146762487  # 0x800B0109
ERROR_IN_USE = -536870339  # 0xE000023D, devices still use the package (no /force)

_SIGNATURE_ERRORS = {
    SignatureStatus.NotSigned: (
        ERROR_NO_CATALOG_FOR_OEM_INF,
        "The third-party INF does not contain digital signature information.",
    ),
    SignatureStatus.HashMismatch: (
        TRUST_E_BAD_DIGEST,
        "The hash for the file is not present in the specified catalog file. The file is likely "
        "corrupt or the victim of tampering.",
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
        digest = hashlib.sha256(data)
        signer: str | None = None
        if not files:
            return StoreResult(*_SIGNATURE_ERRORS[SignatureStatus.NotSigned])
        for file_name in files:
            path = _find(inf.parent, file_name)
            if path is None:
                return StoreResult(
                    ERROR_FILE_NOT_FOUND,
                    f"The system cannot find the file specified. ({file_name})",
                )
            check = verify_file(path, trusted_roots)
            if check.status is not SignatureStatus.Valid:
                code, message = _SIGNATURE_ERRORS.get(
                    check.status, (ERROR_NO_CATALOG_FOR_OEM_INF, check.message)
                )
                return StoreResult(code, f"{message} ({file_name})")
            signer = signer or check.signer_cn
            digest.update(path.read_bytes())
        content = digest.hexdigest()
        for staged in self._packages.values():
            if (
                staged.original_name.lower() == inf.name.lower()
                and staged.content_sha256 == content
            ):
                return StoreResult(0, "Driver package is up-to-date.", staged, already_present=True)
        published = f"oem{self._next}.inf"
        self._next += 1
        staged = StagedPackage(published, inf.name, inf.parent, info, content, signer)
        self._packages[published] = staged
        return StoreResult(0, "Driver package added successfully.", staged)

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
