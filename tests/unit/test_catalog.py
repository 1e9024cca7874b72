"""Driver package catalogs (harness.virtual_lab.catalog): built with asn1crypto, signed RSA-SHA256,
and checked with signify, the same parser that reads real Windows catalogs."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import pytest

from harness.virtual_lab.catalog import (
    authenticode_signature,
    catalog_check,
    catalog_name,
    file_hash,
    is_member,
    sign_package,
    verify_catalog,
)
from harness.virtual_lab.signing import (
    SignatureStatus,
    SignatureType,
    TestPki,
    build_driver_image,
    issue_signer,
    package_driver_files,
    sign_file,
)

from signify.authenticode.signed_file.ctl import CtlFile  # isort: skip (after harness: oscrypto)
from signify.authenticode.signed_file.flat import FlatFile  # isort: skip
from signify.authenticode.signed_file.pe import SignedPEFile  # isort: skip
from signify.authenticode.trust_list import CertificateTrustList  # isort: skip
from signify.exceptions import SignifyError  # isort: skip
from signify.x509 import Certificate, CertificateStore  # isort: skip

ROOT = Path(__file__).resolve().parents[2]
INF = ROOT / "lab_config" / "packages" / "dmalab_nvme_inf1.inf"
VENDOR = "Vendor Test Publisher"
PUBLISHER = "Virtual Windows Hardware Compatibility Publisher"
PACKAGES = ROOT / "lab_config" / "packages"


class _Roots(CertificateStore):
    """Trusted roots that stay truthy when empty (signify trusts its bundled roots otherwise)."""

    def __bool__(self) -> bool:
        return True


def signify_verifies_member(file: Path, catalog: bytes, roots: list[bytes]) -> bool:
    """signify's own catalog check of `file`: `add_catalog` + `verify(signature_types=
    "catalog")`, a cross-check of catalog_check independent of it."""
    data = file.read_bytes()
    stream = io.BytesIO(data)
    signed = SignedPEFile(stream) if file_hash(data)[1] else FlatFile(stream)
    signed.add_catalog(CertificateTrustList.from_envelope(catalog))
    store = _Roots([Certificate.from_der(der) for der in roots], trusted=True)
    try:
        signed.verify(
            signature_types="catalog",
            trusted_certificate_store=store,
            extended_key_usages=["code_signing"],
            countersignature_mode="permit",
        )
    except SignifyError:
        return False
    return True


@pytest.fixture(scope="module")
def pkis(tmp_path_factory: pytest.TempPathFactory) -> tuple[TestPki, TestPki]:
    """The vendor's PKI, and the catalog publisher issued under the same root."""
    base = tmp_path_factory.mktemp("catpki")
    vendor = TestPki.create(base / "vendor", root_cn="Catalog Test Root", signer_cn=VENDOR)
    return vendor, issue_signer(vendor, base / "publisher", signer_cn=PUBLISHER)


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory, pkis: tuple[TestPki, TestPki]) -> Path:
    """A dual-signed copy of the inf1 package: vendor-signed .sys, catalog by the publisher."""
    vendor, publisher = pkis
    folder = tmp_path_factory.mktemp("catpkg")
    shutil.copy(INF, folder)
    build_driver_image(folder / "unsigned.sys", name="dmalab_nvme")
    sign_file(folder / "unsigned.sys", folder / "dmalab_nvme.sys", vendor)
    (folder / "unsigned.sys").unlink()
    cat = sign_package(folder / INF.name, publisher)
    assert cat == folder / "dmalab_nvme_inf1.cat"
    return folder


def test_the_catalog_is_a_signed_catalog_list_with_one_member_per_file(package: Path) -> None:
    ctl = CtlFile.from_envelope((package / "dmalab_nvme_inf1.cat").read_bytes()).ctl
    assert ctl.is_catalog and ctl.subject_usage == ["microsoft_catalog_list"]
    assert ctl.content_type == "microsoft_ctl"
    members = {s.catalog_namevalue["value"]: s for s in ctl.subjects}  # type: ignore[index]
    assert sorted(members) == ["dmalab_nvme.sys", "dmalab_nvme_inf1.inf"]
    sys_member, inf_member = members["dmalab_nvme.sys"], members["dmalab_nvme_inf1.inf"]
    assert sys_member.indirect_data is not None and inf_member.indirect_data is not None
    assert sys_member.indirect_data.content_type == "microsoft_spc_pe_image_data"
    assert inf_member.indirect_data.content_type == "microsoft_spc_siginfo"
    assert sys_member.catalog_memberinfo == {
        "subguid": "{C689AAB8-8E78-11D0-8C47-00C04FC295EE}",
        "certversion": 512,
    }
    # SHA-256: the Authenticode hash of the image (its signature excluded), the INF's bytes
    sys_hash, is_pe = file_hash((package / "dmalab_nvme.sys").read_bytes())
    assert is_pe and sys_member.indirect_data.digest == sys_hash
    assert sys_member.identifier_str == sys_hash.hex().upper()
    inf_bytes = (package / INF.name).read_bytes()
    assert inf_member.indirect_data.digest == file_hash(inf_bytes)[0]


def test_signify_verifies_the_members_and_the_signature(
    package: Path, pkis: tuple[TestPki, TestPki]
) -> None:
    cat = package / "dmalab_nvme_inf1.cat"
    root = [pkis[0].root_der]
    check = verify_catalog(cat, root)
    assert check.status is SignatureStatus.Valid, check.message
    assert check.signature_type is SignatureType.Authenticode and check.signer_cn == PUBLISHER
    for name in ("dmalab_nvme.sys", INF.name):
        assert signify_verifies_member(package / name, cat.read_bytes(), root), name
        member = catalog_check(package / name, cat, root)
        assert member.status is SignatureStatus.Valid and member.signer_cn == PUBLISHER
        assert member.signature_type is SignatureType.Catalog
        assert member.signer_thumbprint == check.signer_thumbprint


def test_a_file_not_in_the_catalog_or_changed_is_not_a_member(
    package: Path, pkis: tuple[TestPki, TestPki], tmp_path: Path
) -> None:
    cat = (package / "dmalab_nvme_inf1.cat").read_bytes()
    root = [pkis[0].root_der]
    other = tmp_path / "dmalab_flt.sys"
    build_driver_image(other, name="dmalab_flt")
    changed = tmp_path / "dmalab_nvme.sys"
    data = bytearray((package / "dmalab_nvme.sys").read_bytes())
    data[0x250] ^= 0xFF  # inside .text
    changed.write_bytes(bytes(data))
    edited = tmp_path / INF.name
    edited.write_bytes((package / INF.name).read_bytes() + b"; edited\r\n")
    for path in (other, changed, edited):
        assert not is_member(path, cat), path.name
        assert not signify_verifies_member(path, cat, root), path.name
        check = catalog_check(path, cat, root)
        assert check.status is SignatureStatus.NotSigned and check.signer_cn is None
    # the same image without its embedded signature has the same Authenticode hash: a member
    unsigned = tmp_path / "unsigned.sys"
    build_driver_image(unsigned, name="dmalab_nvme")
    assert catalog_check(unsigned, cat, root).status is SignatureStatus.Valid


def test_another_root_is_not_trusted_and_a_changed_catalog_does_not_verify(
    package: Path, pkis: tuple[TestPki, TestPki], tmp_path: Path
) -> None:
    cat = package / "dmalab_nvme_inf1.cat"
    stranger = TestPki.create(tmp_path / "other", root_cn="Other Root", signer_cn="Other")
    assert verify_catalog(cat, [stranger.root_der]).status is SignatureStatus.NotTrusted
    assert verify_catalog(cat, []).status is SignatureStatus.NotTrusted
    by_catalog = catalog_check(package / "dmalab_nvme.sys", cat, [stranger.root_der])
    assert by_catalog.status is SignatureStatus.NotTrusted
    assert not signify_verifies_member(package / "dmalab_nvme.sys", cat.read_bytes(), [])
    raw = bytearray(cat.read_bytes())
    at = raw.index("dmalab_nvme.sys".encode("utf-16-le"))
    raw[at] ^= 0x01  # inside the signed list
    check = verify_catalog(bytes(raw), [pkis[0].root_der])
    assert check.status is SignatureStatus.HashMismatch and check.signer_cn == PUBLISHER
    assert verify_catalog(b"not a catalog", []).status is SignatureStatus.NotSigned


def test_get_authenticode_signature_asks_installed_catalogs_first(
    package: Path, pkis: tuple[TestPki, TestPki], tmp_path: Path
) -> None:
    """PowerShell 5.1: the catalog database first, the file's own signature when no catalog
    answers Valid; a .cat reads its own signer."""
    root = [pkis[0].root_der]
    cat = (package / "dmalab_nvme_inf1.cat").read_bytes()
    sys_file = package / "dmalab_nvme.sys"
    before = authenticode_signature(sys_file, [], root)
    assert before.status is SignatureStatus.Valid and before.signer_cn == VENDOR
    assert before.signature_type is SignatureType.Authenticode
    after = authenticode_signature(sys_file, [cat], root)
    assert after.status is SignatureStatus.Valid and after.signer_cn == PUBLISHER
    assert after.signature_type is SignatureType.Catalog
    unsigned = tmp_path / "dmalab_nvme.sys"
    build_driver_image(unsigned, name="dmalab_nvme")
    assert authenticode_signature(unsigned, [], root).status is SignatureStatus.NotSigned
    assert authenticode_signature(unsigned, [cat], root).signature_type is SignatureType.Catalog
    own = authenticode_signature(package / "dmalab_nvme_inf1.cat", [cat], root)
    assert own.status is SignatureStatus.Valid and own.signer_cn == PUBLISHER
    assert own.signature_type is SignatureType.Authenticode


def test_catalog_name_and_a_package_without_one(
    pkis: tuple[TestPki, TestPki], tmp_path: Path
) -> None:
    text = "[Version]\nSignature=$WINDOWS NT$\nCatalogFile=a.cat\nCatalogFile.NTamd64 = b.cat\n"
    assert catalog_name(text) == "b.cat"
    assert catalog_name(text, arch="arm64") == "a.cat"
    assert catalog_name("[Version]\nSignature=$WINDOWS NT$\n[Strings]\nCatalogFile=x.cat\n") is None
    inf = tmp_path / "plain.inf"
    inf.write_text("[Version]\r\nSignature=$WINDOWS NT$\r\n", encoding="utf-8")
    cat = sign_package(inf, pkis[1])
    assert cat.name == "plain.cat" and catalog_name(inf.read_text(encoding="utf-8")) == cat.name
    assert is_member(inf, cat.read_bytes())  # edited first, then hashed


def test_the_committed_packages_are_catalogued_by_the_labs_publisher() -> None:
    """Each committed INF names its catalog; the committed root verifies it, its signer is the
    `expected_signer` of lab_config/virtual.yaml, and the INF and its files are members."""
    root = [(PACKAGES / "dmalab-virtual-release-root.cer").read_bytes()]
    infs = sorted(PACKAGES.glob("*.inf"))
    assert len(infs) == 7
    lab = (ROOT / "lab_config" / "virtual.yaml").read_text(encoding="utf-8")
    assert lab.count(f"expected_signer: {PUBLISHER}") == len(infs)
    for inf in infs:
        name = catalog_name(inf.read_text(encoding="utf-8"))
        assert name == f"{inf.stem}.cat", inf.name
        cat = PACKAGES / name
        check = verify_catalog(cat, root)
        assert check.status is SignatureStatus.Valid and check.signer_cn == PUBLISHER, inf.name
        files = [inf.name, *package_driver_files(inf)]
        for file_name in files:
            assert signify_verifies_member(PACKAGES / file_name, cat.read_bytes(), root)
            assert catalog_check(PACKAGES / file_name, cat, root).signer_cn == PUBLISHER
