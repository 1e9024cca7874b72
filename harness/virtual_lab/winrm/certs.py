"""A tiny private PKI for the virtual lab's HTTPS listeners.

`LabPki.create(directory)` writes `ca.pem` (a self-signed CA, `CA:TRUE`), `server.pem` and
`server.key` (a leaf for `IP:127.0.0.1` and `DNS:localhost`, `serverAuth`, with SKI/AKI, which
Python >= 3.13's strict verification requires). Clients trust `ca.pem`, as a real lab trusts its
enterprise CA, so certificate validation stays on. An existing, still valid set is reused.

>>> pki = LabPki.create(Path(tmp))                                    # doctest: +SKIP
>>> ssl_ctx = pki.server_context()                                   # doctest: +SKIP
>>> requests.get(url, verify=str(pki.ca_file))                        # doctest: +SKIP
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import ssl
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

_VALIDITY = dt.timedelta(days=30)


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "DMA Lab Harness virtual lab"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)


@dataclass(frozen=True)
class LabPki:
    """File locations of the lab CA and the server certificate signed by it."""

    ca_file: Path
    cert_file: Path
    key_file: Path

    @classmethod
    def at(cls, directory: Path) -> LabPki:
        return cls(directory / "ca.pem", directory / "server.pem", directory / "server.key")

    @classmethod
    def create(cls, directory: Path) -> LabPki:
        """Reuse the PKI in `directory` if still valid for a day, else generate a new one."""
        pki = cls.at(directory)
        if pki._still_valid():
            return pki
        directory.mkdir(parents=True, exist_ok=True)
        now = dt.datetime.now(dt.timezone.utc)
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_name = _name("DMA Lab Harness virtual lab CA")
        ca_ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
        ca_cert = (
            x509.CertificateBuilder()
            .subject_name(ca_name)
            .issuer_name(ca_name)
            .public_key(ca_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + _VALIDITY)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(ca_ski, critical=False)
            .sign(ca_key, hashes.SHA256())
        )
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (
            x509.CertificateBuilder()
            .subject_name(_name("127.0.0.1"))
            .issuer_name(ca_name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + _VALIDITY)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.SubjectAlternativeName(
                    [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
                ),
                critical=False,
            )
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False
            )
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski),
                critical=False,
            )
            .sign(ca_key, hashes.SHA256())
        )
        _write_private(
            pki.key_file,
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            ),
        )
        pki.cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        pki.ca_file.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
        return pki

    def _still_valid(self) -> bool:
        if not (self.ca_file.is_file() and self.cert_file.is_file() and self.key_file.is_file()):
            return False
        try:
            cert = x509.load_pem_x509_certificate(self.cert_file.read_bytes())
        except ValueError:
            return False
        left = cert.not_valid_after_utc - dt.datetime.now(dt.timezone.utc)
        return left > dt.timedelta(days=1)

    def server_context(self) -> ssl.SSLContext:
        """A TLS 1.2+ server context presenting the leaf certificate."""
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(str(self.cert_file), str(self.key_file))
        return ctx

    def server_cert_der(self) -> bytes:
        """The leaf certificate in DER form (for channel binding tokens)."""
        cert = x509.load_pem_x509_certificate(self.cert_file.read_bytes())
        return cert.public_bytes(serialization.Encoding.DER)
