"""A throwaway code-signing PKI for the virtual lab: a test root CA and a publisher issued by it.

:class:`TestPki` makes, with `cryptography`, a self-signed RSA-2048 root CA (basicConstraints CA,
keyCertSign) and a code-signing leaf (EKU codeSigning, KU digitalSignature) issued by it, and
writes them as PEM files that osslsigncode reads: `root.pem`, `signer.pem` and the unencrypted
PKCS#8 key `signer.key` (mode 0600). The root's DER bytes are what a virtual DUT trusts (the
`.cer` file committed next to the driver packages). See :mod:`harness.virtual_lab.signing`.

>>> pki = TestPki.create(tmp, root_cn="Test Root", signer_cn="Test Publisher")  # doctest: +SKIP
>>> pki.signer_key_path.stat().st_mode & 0o777                                 # doctest: +SKIP
384
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

ROOT_CERT_NAME = "root.pem"
SIGNER_CERT_NAME = "signer.pem"
SIGNER_KEY_NAME = "signer.key"
ROOT_KEY_NAME = "root.key"  # kept so more leaves can be issued (signing.issue_signer)


def _name(cn: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "DMA Lab"),
        ]
    )


def _write(path: Path, data: bytes, mode: int = 0o644) -> None:
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.chmod(tmp, mode)  # the umask may have narrowed it; never widen the key beyond `mode`
    os.replace(tmp, path)


@dataclass(frozen=True)
class TestPki:
    """A test CA and its code-signing leaf, as PEM files in `directory`."""

    __test__ = False  # not a pytest test class despite the name

    directory: Path

    @classmethod
    def create(cls, directory: Path, *, root_cn: str, signer_cn: str, days: int = 3650) -> TestPki:
        """Make a self-signed root CA and a leaf (EKU codeSigning, KU digitalSignature) issued
        by it; valid from a day ago (clock skew) for `days` days. The key file is mode 0600."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        now = dt.datetime.now(dt.timezone.utc)
        not_before, not_after = now - dt.timedelta(days=1), now + dt.timedelta(days=days)

        root_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        root_ski = x509.SubjectKeyIdentifier.from_public_key(root_key.public_key())
        root = (
            x509.CertificateBuilder()
            .subject_name(_name(root_cn))
            .issuer_name(_name(root_cn))
            .public_key(root_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before)
            .not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(_key_usage(cert_sign=True), critical=True)
            .add_extension(root_ski, critical=False)
            .sign(root_key, hashes.SHA256())
        )

        signer_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        signer = (
            x509.CertificateBuilder()
            .subject_name(_name(signer_cn))
            .issuer_name(root.subject)
            .public_key(signer_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before)
            .not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_key_usage(cert_sign=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]), False)
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(signer_key.public_key()), False
            )
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(root_ski), False
            )
            .sign(root_key, hashes.SHA256())
        )

        pki = cls(directory)
        pem = serialization.Encoding.PEM
        _write(pki.root_cert_path, root.public_bytes(pem))
        _write(pki.signer_cert_path, signer.public_bytes(pem))
        key_pem = signer_key.private_bytes(
            pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        _write(pki.signer_key_path, key_pem, mode=0o600)
        root_key_pem = root_key.private_bytes(
            pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        _write(directory / ROOT_KEY_NAME, root_key_pem, mode=0o600)
        return pki

    @property
    def root_cert_path(self) -> Path:
        return self.directory / ROOT_CERT_NAME

    @property
    def signer_cert_path(self) -> Path:
        return self.directory / SIGNER_CERT_NAME

    @property
    def signer_key_path(self) -> Path:
        return self.directory / SIGNER_KEY_NAME

    @property
    def root_der(self) -> bytes:
        """The root certificate, DER-encoded (the bytes of a `.cer` file)."""
        cert = x509.load_pem_x509_certificate(self.root_cert_path.read_bytes())
        return cert.public_bytes(serialization.Encoding.DER)


def _key_usage(*, cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=not cert_sign,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )
