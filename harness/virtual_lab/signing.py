"""Authenticode signing and verification for the virtual lab's driver packages.

The virtual DUTs' driver store refuses an unsigned, tampered or untrusted driver as Windows does,
so their test packages carry real Authenticode signatures:

- :class:`TestPki` (from :mod:`harness.virtual_lab.signing_pki`) makes a throwaway test CA and
  a code-signing leaf issued by it, as PEM files;
- :func:`sign_file` signs a PE image with `osslsigncode` (SHA-256, no timestamp, no network);
- :func:`verify_file` checks an image with `signify` against the given trusted roots only (no
  system or Microsoft roots) and answers as PowerShell's `Get-AuthenticodeSignature` does, with
  its `SignatureStatus` and `SignatureType` names and numbers.

The PE images themselves come from :mod:`harness.virtual_lab.pe_image`.

>>> pki = TestPki.create(tmp, root_cn="Test Root", signer_cn="Test Publisher")  # doctest: +SKIP
>>> build_driver_image(tmp / "a.sys", name="a")                               # doctest: +SKIP
>>> sign_file(tmp / "a.sys", tmp / "signed.sys", pki)                          # doctest: +SKIP
>>> verify_file(tmp / "signed.sys", [pki.root_der]).status                     # doctest: +SKIP
<SignatureStatus.Valid: 0>
"""

from __future__ import annotations

import datetime
import enum
import hashlib
import io
import os
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from harness.domain.inf_lexer import (
    decode_inf,
    logical_lines,
    split_fields,
    split_key,
    split_sections,
    unquote,
)
from harness.virtual_lab.oscrypto_fix import ensure_oscrypto
from harness.virtual_lab.pe_image import build_driver_image
from harness.virtual_lab.signing_pki import ROOT_KEY_NAME, TestPki

ensure_oscrypto()

from signify.authenticode.signed_file.pe import SignedPEFile  # noqa: E402
from signify.exceptions import (  # noqa: E402
    AuthenticodeInvalidAdditionalHashError,
    AuthenticodeNotSignedError,
    CertificateVerificationError,
    InvalidDigestError,
    SignifyError,
)
from signify.pkcs7 import SignedData  # noqa: E402
from signify.x509 import Certificate, CertificateStore  # noqa: E402

__all__ = [
    "SignatureCheck",
    "SignatureStatus",
    "SignatureType",
    "SigningError",
    "TestPki",
    "build_driver_image",
    "issue_signer",
    "package_driver_files",
    "sign_file",
    "signature_check",
    "signer_certificate",
    "trust_store",
    "verify_file",
]

OSSLSIGNCODE_MISSING = (
    "osslsigncode not found: install it (Debian/Ubuntu: apt-get install osslsigncode)"
)


class SigningError(RuntimeError):
    """osslsigncode is missing, failed or timed out."""


class SignatureStatus(enum.IntEnum):
    """System.Management.Automation.SignatureStatus: same names, same numbers."""

    Valid = 0
    UnknownError = 1
    NotSigned = 2
    HashMismatch = 3
    NotTrusted = 4
    NotSupportedFileFormat = 5
    Incompatible = 6

    @property
    def name_ps(self) -> str:
        """The name PowerShell prints."""
        return self.name


class SignatureType(enum.IntEnum):
    """System.Management.Automation.SignatureType (`None_` is PowerShell's `None`)."""

    None_ = 0
    Authenticode = 1
    Catalog = 2

    @property
    def name_ps(self) -> str:
        """The name PowerShell prints: "None", "Authenticode" or "Catalog"."""
        return self.name.rstrip("_")


@dataclass(frozen=True)
class SignatureCheck:
    """The outcome of :func:`verify_file`, shaped like PowerShell's `Signature` object."""

    status: SignatureStatus
    signature_type: SignatureType
    signer_subject: str | None
    signer_cn: str | None
    message: str
    #: the signer certificate (DER) and its SHA-1 thumbprint in upper-case hex, as
    #: `X509Certificate2.Thumbprint` prints it (None when there is no signer)
    signer_der: bytes | None = None
    signer_thumbprint: str | None = None


# -- signing ----------------------------------------------------------------------------------------


def sign_file(src: Path, dst: Path, pki: TestPki, *, timeout_s: float = 30) -> None:
    """Authenticode-sign the PE image `src` into `dst` with osslsigncode (SHA-256, no
    timestamp). Raises :class:`SigningError` with osslsigncode's output on failure."""
    exe = shutil.which("osslsigncode")
    if exe is None:
        raise SigningError(OSSLSIGNCODE_MISSING)
    dst = Path(dst)
    tmp = dst.with_name(dst.name + ".signing.tmp")
    tmp.unlink(missing_ok=True)  # a leftover of an interrupted run
    argv = [
        exe,
        "sign",
        "-certs",
        str(pki.signer_cert_path),
        "-key",
        str(pki.signer_key_path),
        "-h",
        "sha256",
        "-in",
        str(src),
        "-out",
        str(tmp),
    ]
    try:
        result = subprocess.run(
            argv, capture_output=True, text=True, timeout=timeout_s, stdin=subprocess.DEVNULL
        )
    except subprocess.TimeoutExpired:
        tmp.unlink(missing_ok=True)
        raise SigningError(f"osslsigncode timed out after {timeout_s:g}s signing {src}") from None
    if result.returncode != 0 or not tmp.exists():
        tmp.unlink(missing_ok=True)
        output = (result.stderr.strip() or result.stdout.strip()) or "(no output)"
        raise SigningError(
            f"osslsigncode failed (exit {result.returncode}) signing {src}: {output}"
        )
    os.replace(tmp, dst)


def issue_signer(pki: TestPki, directory: Path, *, signer_cn: str, days: int = 3650) -> TestPki:
    """A second code-signing leaf under `pki`'s root (e.g. the catalog publisher beside the
    vendor's), as a :class:`TestPki` in `directory` sharing the root certificate."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    root = x509.load_pem_x509_certificate(pki.root_cert_path.read_bytes())
    root_key = serialization.load_pem_private_key(
        (pki.directory / ROOT_KEY_NAME).read_bytes(), password=None
    )
    if not isinstance(root_key, rsa.RSAPrivateKey):
        raise SigningError(f"{pki.directory / ROOT_KEY_NAME}: not an RSA key")
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = datetime.datetime.now(datetime.timezone.utc)
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, signer_cn),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "DMA Lab"),
        ]
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(root.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]), False)
        .sign(root_key, hashes.SHA256())
    )
    issued = TestPki(directory)
    pem = serialization.Encoding.PEM
    shutil.copyfile(pki.root_cert_path, issued.root_cert_path)
    issued.signer_cert_path.write_bytes(cert.public_bytes(pem))
    fd = os.open(issued.signer_key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(
            key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        )
    return issued


def package_driver_files(inf_path: Path, arch: str = "amd64") -> list[str]:
    """The file names a driver package's INF copies from its media: the keys of
    `[SourceDisksFiles]` and `[SourceDisksFiles.<arch>]`, in file order, without duplicates."""
    name = str(inf_path)
    sections = split_sections(
        logical_lines(decode_inf(Path(inf_path).read_bytes(), name), name), name, arch
    )
    files: list[str] = []
    for section in ("sourcedisksfiles", f"sourcedisksfiles.{arch.lower()}"):
        raw = sections.get(section)
        for line in raw.lines if raw else ():
            key, value = split_key(line.text)
            file_name = unquote(key if key is not None else split_fields(value)[0])
            if file_name and file_name.lower() not in {f.lower() for f in files}:
                files.append(file_name)
    return files


# -- verification -------------------------------------------------------------------------------


class _TrustStore(CertificateStore):
    """A trusted store that stays truthy when empty: signify falls back to its bundled
    Microsoft roots when handed a falsy store, and we trust `trusted_roots` only."""

    def __bool__(self) -> bool:
        return True


def trust_store(roots: Sequence[bytes]) -> CertificateStore:
    """A store trusting exactly `roots` (DER), never signify's bundled Microsoft roots."""
    return _TrustStore([Certificate.from_der(der) for der in roots], trusted=True)


_MESSAGES = {
    SignatureStatus.Valid: "Signature verified.",
    SignatureStatus.NotSigned: "The file {name} is not digitally signed.",
    SignatureStatus.HashMismatch: (
        "The contents of file {name} might have been changed by an unauthorized user or"
        " process, because the hash of the file does not match the hash stored in the digital"
        " signature."
    ),
    SignatureStatus.NotTrusted: (
        "A certificate chain processed, but terminated in a root certificate which is not"
        " trusted by the trust provider."
    ),
    SignatureStatus.NotSupportedFileFormat: (
        "The file {name} is not a PE image; its format is not supported for signing."
    ),
}


def _read(data_or_path: bytes | str | os.PathLike[str]) -> tuple[bytes, str]:
    if isinstance(data_or_path, (bytes, bytearray, memoryview)):
        return bytes(data_or_path), "<data>"
    path = Path(data_or_path)
    return path.read_bytes(), path.name


def signer_certificate(signature: SignedData) -> Certificate | None:
    """The certificate that signed `signature` (a PE's Authenticode signature or a catalog)."""
    info = signature.signer_info
    try:
        return signature.certificates.find_certificate(
            issuer=info.issuer, serial_number=info.serial_number
        )
    except (KeyError, SignifyError):
        return None


def signature_check(
    status: SignatureStatus,
    name: str,
    signer: Certificate | None = None,
    detail: str | None = None,
) -> SignatureCheck:
    message = _MESSAGES.get(status, "{detail}").format(name=name, detail=detail or "")
    if detail and status is not SignatureStatus.UnknownError:
        message = f"{message} ({detail})"
    signed = status not in (SignatureStatus.NotSigned, SignatureStatus.NotSupportedFileFormat)
    subject = cn = thumbprint = None
    der = None
    if signer is not None:
        der = signer.to_der
        thumbprint = hashlib.sha1(der).hexdigest().upper()
        # Windows order (X500DistinguishedName): most specific first, "CN=..., O=..."
        subject = ", ".join(
            f"{kind}={value}" for kind, value in reversed(list(signer.subject.rdns))
        )
        cns = list(signer.subject.get_components("CN"))
        cn = cns[0] if cns else None
    return SignatureCheck(
        status=status,
        signature_type=SignatureType.Authenticode if signed else SignatureType.None_,
        signer_subject=subject,
        signer_cn=cn,
        message=message,
        signer_der=der,
        signer_thumbprint=thumbprint,
    )


def verify_file(
    data_or_path: bytes | str | os.PathLike[str], trusted_roots: Sequence[bytes]
) -> SignatureCheck:
    """Check the embedded Authenticode signature of a PE image (bytes or a path) against
    `trusted_roots` (DER certificates) only.

    Not a PE image: NotSupportedFileFormat; no certificate table or no signature: NotSigned;
    the image (or the signed attributes) do not match the signed digest: HashMismatch; any
    failure of the signer's chain (no path to a trusted root, expired, wrong EKU): NotTrusted;
    anything else: UnknownError. A missing timestamp is not an error: the chain is checked at
    the current time.
    """
    data, name = _read(data_or_path)
    pe = SignedPEFile(io.BytesIO(data))
    if not data.startswith(b"MZ") or pe.get_authenticode_omit_sections() is None:
        return signature_check(SignatureStatus.NotSupportedFileFormat, name)
    if "certtable" not in (pe.get_authenticode_omit_sections() or {}):
        return signature_check(SignatureStatus.NotSigned, name)
    try:
        signatures = list(pe.iter_embedded_signatures(ignore_parse_errors=False))
    except Exception as exc:  # a malformed certificate table or PKCS#7 blob
        return signature_check(SignatureStatus.UnknownError, name, detail=f"bad signature: {exc}")
    if not signatures:
        return signature_check(SignatureStatus.NotSigned, name)
    signer = signer_certificate(signatures[0])

    store = trust_store(trusted_roots)
    try:
        results = pe.verify(
            signature_types="embedded",
            multi_verify_mode="first",  # as Windows: the primary signature decides
            trusted_certificate_store=store,
            strict_validation=False,  # as Windows: EKU checked when present, KU not enforced
            countersignature_mode="permit",  # no or bad timestamp: check the chain at "now"
        )
    except AuthenticodeNotSignedError as exc:
        return signature_check(SignatureStatus.NotSigned, name, detail=str(exc))
    except (InvalidDigestError, AuthenticodeInvalidAdditionalHashError) as exc:
        return signature_check(SignatureStatus.HashMismatch, name, signer, str(exc))
    except CertificateVerificationError as exc:
        return signature_check(SignatureStatus.NotTrusted, name, signer, str(exc))
    except Exception as exc:  # anything else signify trips on: never a crash, as Windows
        return signature_check(
            SignatureStatus.UnknownError, name, signer, f"verification failed: {exc}"
        )
    if not results:
        return signature_check(
            SignatureStatus.UnknownError, name, signer, "no signature was verified"
        )
    return signature_check(SignatureStatus.Valid, name, signer)
