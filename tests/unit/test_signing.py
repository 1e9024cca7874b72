"""Authenticode signing of the virtual lab's driver packages, for real: osslsigncode signs,
signify verifies. Nothing is mocked; without osslsigncode these tests fail with the install hint."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from harness.virtual_lab.pe_image import driver_image_bytes, pe_checksum
from harness.virtual_lab.signing import (
    OSSLSIGNCODE_MISSING,
    SignatureStatus,
    SignatureType,
    SigningError,
    TestPki,
    build_driver_image,
    package_driver_files,
    sign_file,
    verify_file,
)

REPO = Path(__file__).resolve().parents[2]
PACKAGES = REPO / "lab_config" / "packages"
COMMITTED_ROOT = PACKAGES / "dmalab-virtual-release-root.cer"
COMMITTED_SIGNER = "DMA Lab Virtual Publisher"
TEXT_RAW_OFFSET = 0x200  # .text raw data: the first section after the 0x200 bytes of headers
RDATA_RAW_OFFSET = 0x400


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> TestPki:
    return TestPki.create(
        tmp_path_factory.mktemp("pki"), root_cn="Unit Test Root", signer_cn="Unit Test Publisher"
    )


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory, pki: TestPki) -> tuple[Path, Path]:
    """(unsigned image, the same image signed by `pki`)."""
    directory = tmp_path_factory.mktemp("images")
    unsigned = directory / "unit_drv.sys"
    build_driver_image(unsigned, name="unit_drv")
    signed = directory / "unit_drv.signed.sys"
    sign_file(unsigned, signed, pki)
    return unsigned, signed


def test_status_and_type_enums_match_powershell() -> None:
    assert {s.name_ps: s.value for s in SignatureStatus} == {
        "Valid": 0,
        "UnknownError": 1,
        "NotSigned": 2,
        "HashMismatch": 3,
        "NotTrusted": 4,
        "NotSupportedFileFormat": 5,
        "Incompatible": 6,
    }
    assert {t.name_ps: t.value for t in SignatureType} == {
        "None": 0,
        "Authenticode": 1,
        "Catalog": 2,
    }


def test_pki_files_and_key_mode(pki: TestPki) -> None:
    assert pki.root_cert_path.read_bytes().startswith(b"-----BEGIN CERTIFICATE-----")
    assert pki.signer_cert_path.read_bytes().startswith(b"-----BEGIN CERTIFICATE-----")
    assert pki.signer_key_path.stat().st_mode & 0o777 == 0o600
    assert pki.root_der[:1] == b"\x30"  # a DER SEQUENCE


def test_signed_image_is_valid_with_its_root_trusted(
    images: tuple[Path, Path], pki: TestPki
) -> None:
    check = verify_file(images[1], [pki.root_der])
    assert check.status is SignatureStatus.Valid, check.message
    assert check.signature_type is SignatureType.Authenticode
    assert check.signer_cn == "Unit Test Publisher"
    assert check.signer_subject is not None
    assert check.signer_subject.startswith("CN=Unit Test Publisher")


def test_signed_image_is_not_trusted_without_its_root(images: tuple[Path, Path]) -> None:
    committed_root = COMMITTED_ROOT.read_bytes()
    for roots in ([], [committed_root]):
        check = verify_file(images[1], roots)
        assert check.status is SignatureStatus.NotTrusted, check.message
        assert check.signature_type is SignatureType.Authenticode
        assert check.signer_cn == "Unit Test Publisher"


def test_unsigned_image_is_not_signed(images: tuple[Path, Path], pki: TestPki) -> None:
    check = verify_file(images[0], [pki.root_der])
    assert check.status is SignatureStatus.NotSigned
    assert check.signature_type is SignatureType.None_
    assert check.signer_cn is None


@pytest.mark.parametrize("offset", [TEXT_RAW_OFFSET, RDATA_RAW_OFFSET + 2])
def test_tampered_image_is_a_hash_mismatch(
    images: tuple[Path, Path], pki: TestPki, offset: int
) -> None:
    data = bytearray(images[1].read_bytes())
    data[offset] ^= 0xFF
    check = verify_file(bytes(data), [pki.root_der])
    assert check.status is SignatureStatus.HashMismatch, check.message
    assert check.signature_type is SignatureType.Authenticode


def test_text_file_is_not_a_supported_format(tmp_path: Path, pki: TestPki) -> None:
    text = tmp_path / "readme.txt"
    text.write_text("not a driver\n", encoding="utf-8")
    check = verify_file(text, [pki.root_der])
    assert check.status is SignatureStatus.NotSupportedFileFormat
    assert check.signature_type is SignatureType.None_


def test_driver_image_is_deterministic_and_differs_by_name(tmp_path: Path) -> None:
    build_driver_image(tmp_path / "a1.sys", name="dmalab_a")
    build_driver_image(tmp_path / "a2.sys", name="dmalab_a")
    build_driver_image(tmp_path / "b.sys", name="dmalab_b")
    a1, a2, b = ((tmp_path / n).read_bytes() for n in ("a1.sys", "a2.sys", "b.sys"))
    assert a1 == a2
    assert a1 != b
    assert b"dmalab_a" in a1


def test_driver_image_headers() -> None:
    image = driver_image_bytes("dmalab_hdr")
    pe = struct.unpack_from("<I", image, 0x3C)[0]
    assert image[:2] == b"MZ" and image[pe : pe + 4] == b"PE\0\0"
    machine, sections, _, _, _, opt_size, characteristics = struct.unpack_from(
        "<HHIIIHH", image, pe + 4
    )
    assert (machine, sections, opt_size) == (0x8664, 2, 240)
    assert characteristics & 0x0002 and not characteristics & 0x2000  # EXE, not a DLL
    opt = pe + 24
    assert struct.unpack_from("<H", image, opt)[0] == 0x20B  # PE32+
    section_alignment, file_alignment = struct.unpack_from("<II", image, opt + 32)
    assert (section_alignment, file_alignment) == (0x1000, 0x200)
    size_of_image, size_of_headers, checksum, subsystem = struct.unpack_from(
        "<IIIH", image, opt + 56
    )
    assert (size_of_image, size_of_headers, subsystem) == (0x3000, 0x200, 1)
    assert checksum == pe_checksum(image) != 0
    assert struct.unpack_from("<I", image, opt + 108)[0] == 16  # NumberOfRvaAndSizes
    assert len(image) == 0x600


def test_sign_file_reports_osslsigncode_errors(tmp_path: Path, pki: TestPki) -> None:
    bogus = tmp_path / "bogus.sys"
    bogus.write_bytes(b"MZ but not a PE image")
    with pytest.raises(SigningError, match="osslsigncode failed"):
        sign_file(bogus, tmp_path / "out.sys", pki)
    assert not (tmp_path / "out.sys").exists()


def test_sign_file_without_osslsigncode_says_how_to_install(
    tmp_path: Path, pki: TestPki, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    build_driver_image(tmp_path / "x.sys", name="x")
    with pytest.raises(SigningError) as info:
        sign_file(tmp_path / "x.sys", tmp_path / "y.sys", pki)
    assert str(info.value) == OSSLSIGNCODE_MISSING
    assert "apt-get install osslsigncode" in OSSLSIGNCODE_MISSING


def _inf_driver_files() -> list[tuple[str, str]]:
    return [
        (inf.name, name)
        for inf in sorted(PACKAGES.glob("*.inf"))
        for name in package_driver_files(inf)
    ]


def test_every_inf_lists_driver_files_that_exist() -> None:
    listed = _inf_driver_files()
    assert listed, "no INF lists any [SourceDisksFiles]"
    missing = [f"{inf}: {name}" for inf, name in listed if not (PACKAGES / name).is_file()]
    assert not missing, f"run tools/build_virtual_packages.py: missing {missing}"


@pytest.mark.parametrize("name", sorted({name for _, name in _inf_driver_files()}))
def test_committed_driver_files_verify_against_the_committed_root(name: str) -> None:
    check = verify_file(PACKAGES / name, [COMMITTED_ROOT.read_bytes()])
    assert check.status is SignatureStatus.Valid, check.message
    assert check.signer_cn == COMMITTED_SIGNER
