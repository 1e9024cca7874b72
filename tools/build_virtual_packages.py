#!/usr/bin/env python3
"""Build and sign the virtual lab's driver packages: `.sys` files and catalogs (`.cat`).

For every `lab_config/packages/*.inf`, each `.sys` its `[SourceDisksFiles]` lists is built as a
minimal PE32+ kernel-driver image (harness.virtual_lab.pe_image) and Authenticode-signed with
osslsigncode; then each INF gets its catalog (the name its `CatalogFile=` gives, added to
`[Version]` when missing) listing the INF and its files (harness.virtual_lab.catalog). The
packages are dual-signed as production packages are, by a throwaway test PKI:

- root CA "DMA Lab Virtual Release Root", written as
  `lab_config/packages/dmalab-virtual-release-root.cer` (DER): the virtual DUTs trust it;
- the vendor "DMA Lab Virtual Publisher": the embedded signature of the `.sys` files;
- "Virtual Windows Hardware Compatibility Publisher" (the lab's Microsoft): the catalogs, and
  so the `expected_signer` of lab_config/virtual.yaml (packages are judged by their catalog).

The private keys live in a temporary directory that is deleted at the end: nobody can sign
another file with this root, and rerunning the script makes a new root (commit the `.cer`, the
`.sys`, `.cat` and `.inf` files together). Every signed file is verified against the new root
before the script reports success.

Usage: python3 tools/build_virtual_packages.py [--packages DIR]
Needs osslsigncode (Debian/Ubuntu: apt-get install osslsigncode).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # runnable from a checkout without `pip install -e .`
    sys.path.insert(0, str(ROOT))

from harness.virtual_lab.catalog import catalog_check, sign_package, verify_catalog  # noqa: E402
from harness.virtual_lab.signing import (  # noqa: E402
    SignatureStatus,
    SigningError,
    TestPki,
    build_driver_image,
    issue_signer,
    package_driver_files,
    sign_file,
    verify_file,
)

ROOT_CN = "DMA Lab Virtual Release Root"
SIGNER_CN = "DMA Lab Virtual Publisher"
CATALOG_SIGNER_CN = "Virtual Windows Hardware Compatibility Publisher"
ROOT_CER_NAME = "dmalab-virtual-release-root.cer"
DEFAULT_PACKAGES = ROOT / "lab_config" / "packages"


def driver_files(packages: Path) -> list[str]:
    """The `.sys` names listed by the INFs of `packages`, each once, in a stable order."""
    seen: dict[str, str] = {}
    for inf in sorted(packages.glob("*.inf")):
        for name in package_driver_files(inf):
            if name.lower().endswith(".sys"):
                seen.setdefault(name.lower(), name)
    return [seen[key] for key in sorted(seen)]


def build(packages: Path) -> list[Path]:
    """Build, sign and verify every driver file and catalog; write the root `.cer`. Returns
    the files written."""
    names = driver_files(packages)
    if not names:
        raise SystemExit(f"{packages}: no .sys files listed in any INF's [SourceDisksFiles]")
    written: list[Path] = []
    with tempfile.TemporaryDirectory(prefix="dmalab-pki-") as tmp:
        work = Path(tmp)
        pki = TestPki.create(work / "pki", root_cn=ROOT_CN, signer_cn=SIGNER_CN)
        for name in names:
            unsigned = work / name
            build_driver_image(unsigned, name=Path(name).stem)
            target = packages / name
            sign_file(unsigned, target, pki)
            check = verify_file(target, [pki.root_der])
            if check.status is not SignatureStatus.Valid or check.signer_cn != SIGNER_CN:
                raise SystemExit(f"{target}: signed but does not verify: {check}")
            written.append(target)
        publisher = issue_signer(pki, work / "catalog-pki", signer_cn=CATALOG_SIGNER_CN)
        for inf in sorted(packages.glob("*.inf")):
            cat = sign_package(inf, publisher)
            check = verify_catalog(cat, [pki.root_der])
            if check.status is not SignatureStatus.Valid or check.signer_cn != CATALOG_SIGNER_CN:
                raise SystemExit(f"{cat}: signed but does not verify: {check}")
            for name in [inf.name, *package_driver_files(inf)]:
                member = catalog_check(packages / name, cat, [pki.root_der])
                if member.status is not SignatureStatus.Valid:
                    raise SystemExit(f"{cat}: {name} is not a valid member: {member}")
            written += [inf, cat]
        cer = packages / ROOT_CER_NAME
        cer.write_bytes(pki.root_der)
        written.append(cer)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--packages", type=Path, default=DEFAULT_PACKAGES, help="driver package directory"
    )
    args = parser.parse_args(argv)
    try:
        written = build(args.packages)
    except SigningError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for path in written:
        print(f"wrote {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
