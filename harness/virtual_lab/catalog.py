"""Driver package catalogs (`.cat`) for the virtual lab: build, sign and check them.

On Windows a third-party driver package is judged by its catalog, the file its INF names with
`CatalogFile=` in `[Version]` (learn.microsoft.com "Catalog Files and Digital Signatures"). A
catalog is a PKCS#7 SignedData whose content is a certificate trust list (szOID_CTL,
1.3.6.1.4.1.311.10.1) with subject usage szOID_CATALOG_LIST (1.3.6.1.4.1.311.12.1.1); each
member carries an SPC_INDIRECT_DATA (1.3.6.1.4.1.311.2.1.4) with the SHA-256 hash of one
package file (the PE Authenticode hash, SpcPeImageData, for images; the hash of the whole file,
SpcSigInfo of the flat-file SIP, for others such as the INF), its `File` name (CAT_NAMEVALUE)
and CAT_MEMBERINFO. Production packages are dual-signed: the vendor's embedded signature on the
`.sys`, Microsoft's on the `.cat`.

- :func:`build_catalog` makes the DER bytes, signed RSA-SHA256 by a :class:`TestPki` leaf;
- :func:`sign_package` catalogs a package folder: the INF and every `[SourceDisksFiles]` file,
  written under the name the INF's `CatalogFile=` gives (added to `[Version]` when missing);
- :func:`verify_catalog` checks the catalog's own signature (as `Get-AuthenticodeSignature` on
  the `.cat`); :func:`catalog_check` checks a file's membership and the catalog's signature
  (as the catalog API answers for a `.sys`: SignatureType Catalog).

Parsing and verification are signify's (`signify.authenticode.trust_list`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import os
import re
import uuid
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from asn1crypto import algos, cms, x509
from cryptography import x509 as cx509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from harness.domain.inf_lexer import decode_inf
from harness.virtual_lab.oscrypto_fix import ensure_oscrypto
from harness.virtual_lab.signing import (
    SignatureCheck,
    SignatureStatus,
    SignatureType,
    TestPki,
    package_driver_files,
    signature_check,
    signer_certificate,
    trust_store,
    verify_file,
)

ensure_oscrypto()  # before signify (a no-op once signing.py has run it)

from signify.asn1 import ctl as ctl_asn1  # noqa: E402
from signify.asn1 import spc  # noqa: E402
from signify.authenticode.signed_file.pe import SignedPEFile  # noqa: E402
from signify.authenticode.trust_list import CertificateTrustList  # noqa: E402
from signify.exceptions import (  # noqa: E402
    CertificateVerificationError,
    InvalidDigestError,
    SignifyError,
)

__all__ = [
    "authenticode_signature",
    "build_catalog",
    "catalog_check",
    "catalog_name",
    "file_hash",
    "is_member",
    "sign_package",
    "verify_catalog",
]

SZOID_CTL = "1.3.6.1.4.1.311.10.1"
SZOID_CATALOG_LIST = "1.3.6.1.4.1.311.12.1.1"
SZOID_CATALOG_LIST_MEMBER2 = "1.3.6.1.4.1.311.12.1.3"  # SHA-256 member tags
#: Subject interface packages (SIP) of the member kinds: PE images and flat files.
PE_SIP_GUID = "{C689AAB8-8E78-11D0-8C47-00C04FC295EE}"
FLAT_SIP_GUID = "{DE351A42-8E59-11D0-8C47-00C04FC295EE}"
#: CRYPTCAT_ATTR_AUTHENTICATED | CRYPTCAT_ATTR_DATAASCII | CRYPTCAT_ATTR_NAMEASCII (mscat.h)
_NAMEVALUE_FLAGS = 0x10010001
_MEMBER_CERT_VERSION = 512
_OBSOLETE = "<<<Obsolete>>>"


# -- hashing and building -----------------------------------------------------------------------


def file_hash(data: bytes) -> tuple[bytes, bool]:
    """The SHA-256 a catalog records for `data` and whether it is a PE image: the Authenticode
    hash of a PE image (signature and checksum excluded), else the hash of all bytes."""
    if data.startswith(b"MZ"):
        pe = SignedPEFile(io.BytesIO(data))
        if pe.get_authenticode_omit_sections() is not None:
            return pe.get_fingerprint(hashlib.sha256), True
    return hashlib.sha256(data).digest(), False


def _indirect_data(digest: bytes, is_pe: bool) -> spc.SpcIndirectDataContent:
    if is_pe:
        data = spc.SpcAttributeTypeAndOptionalValue(
            {
                "type": "microsoft_spc_pe_image_data",
                "value": spc.SpcPeImageData(
                    {"flags": set(), "file": spc.SpcLink({"file": {"unicode": _OBSOLETE}})}
                ),
            }
        )
    else:
        # a GUID struct's bytes (little-endian fields), as Windows serialises it
        guid = uuid.UUID(bytes=uuid.UUID(FLAT_SIP_GUID).bytes_le)
        data = spc.SpcAttributeTypeAndOptionalValue(
            {
                "type": "microsoft_spc_siginfo",
                "value": spc.SpcSigInfo(
                    {
                        "sip_version": 1,
                        "sip_guid": guid,
                        "reserved1": 0,
                        "reserved2": 0,
                        "reserved3": 0,
                        "reserved4": 0,
                        "reserved5": 0,
                    }
                ),
            }
        )
    return spc.SpcIndirectDataContent(
        {
            "data": data,
            "message_digest": {"digest_algorithm": {"algorithm": "sha256"}, "digest": digest},
        }
    )


def _member(name: str, data: bytes) -> ctl_asn1.TrustedSubject:
    digest, is_pe = file_hash(data)
    tag = digest.hex().upper().encode("utf-16-le") + b"\0\0"
    attributes = [
        {"type": "microsoft_spc_indirect_data_content", "values": [_indirect_data(digest, is_pe)]},
        {
            "type": "microsoft_cat_namevalue",
            "values": [
                {
                    "refname": "File",
                    "typeaction": _NAMEVALUE_FLAGS,
                    "value": name + "\0",  # UTF-16LE, NUL-terminated
                }
            ],
        },
        {
            "type": "microsoft_cat_memberinfo",
            "values": [
                {
                    "subguid": PE_SIP_GUID if is_pe else FLAT_SIP_GUID,
                    "certversion": _MEMBER_CERT_VERSION,
                }
            ],
        },
    ]
    return ctl_asn1.TrustedSubject({"subject_identifier": tag, "subject_attributes": attributes})


def build_catalog(files: Sequence[Path], pki: TestPki) -> bytes:
    """A catalog (DER) with one member per file of `files` (named by its file name), signed
    RSA-SHA256 by `pki`'s leaf; the leaf is the only certificate included (the root is the
    verifier's to trust)."""
    now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    members = [_member(Path(f).name, Path(f).read_bytes()) for f in files]
    ctl = ctl_asn1.CertificateTrustList(
        {
            "subject_usage": [SZOID_CATALOG_LIST],
            "list_identifier": uuid.uuid4().bytes,
            "ctl_this_update": x509.Time({"utc_time": now}),
            "subject_algorithm": {"algorithm": SZOID_CATALOG_LIST_MEMBER2},
            "trusted_subjects": members,
        }
    )
    # RFC 2315 9.3: the digest covers the content's value, without its tag and length.
    content_digest = hashlib.sha256(ctl.contents).digest()
    signed_attrs = cms.CMSAttributes(
        [
            {"type": "content_type", "values": [SZOID_CTL]},
            {"type": "signing_time", "values": [cms.Time({"utc_time": now})]},
            {"type": "message_digest", "values": [content_digest]},
        ]
    )
    cert = cx509.load_pem_x509_certificate(pki.signer_cert_path.read_bytes())
    key = serialization.load_pem_private_key(pki.signer_key_path.read_bytes(), password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError(f"{pki.signer_key_path}: not an RSA key")
    signature = key.sign(signed_attrs.dump(), padding.PKCS1v15(), hashes.SHA256())
    cert_der = cert.public_bytes(serialization.Encoding.DER)
    leaf = x509.Certificate.load(cert_der)
    signer_info = cms.SignerInfo(
        {
            "version": "v1",
            "sid": cms.SignerIdentifier(
                {
                    "issuer_and_serial_number": {
                        "issuer": leaf.issuer,
                        "serial_number": leaf.serial_number,
                    }
                }
            ),
            "digest_algorithm": algos.DigestAlgorithm({"algorithm": "sha256"}),
            "signed_attrs": signed_attrs,
            "signature_algorithm": algos.SignedDigestAlgorithm({"algorithm": "rsassa_pkcs1v15"}),
            "signature": signature,
        }
    )
    signed = cms.SignedData(
        {
            "version": "v1",
            "digest_algorithms": [algos.DigestAlgorithm({"algorithm": "sha256"})],
            "encap_content_info": {"content_type": SZOID_CTL, "content": ctl},
            "certificates": [leaf],
            "signer_infos": [signer_info],
        }
    )
    return bytes(cms.ContentInfo({"content_type": "signed_data", "content": signed}).dump())


# -- packages -------------------------------------------------------------------------------------

_CATALOG_KEY = re.compile(r"^\s*catalogfile(\.[a-z0-9_]+)?\s*=\s*(.*?)\s*$", re.IGNORECASE)


def catalog_name(inf_text: str, arch: str = "amd64") -> str | None:
    """The catalog an INF names in `[Version]`: `CatalogFile.NT<arch>=` wins over
    `CatalogFile.NT=` and `CatalogFile=`; None when there is none."""
    found: dict[str, str] = {}
    in_version = False
    for raw in inf_text.splitlines():
        line = raw.split(";", 1)[0].strip()
        if line.startswith("["):
            in_version = line.lower().startswith("[version]")
            continue
        match = _CATALOG_KEY.match(line) if in_version else None
        if match and match.group(2):
            found[(match.group(1) or "").lower()] = match.group(2).strip('"')
    for decoration in (f".nt{arch.lower()}", ".nt", ""):
        if decoration in found:
            return found[decoration]
    return None


def sign_package(inf: Path, pki: TestPki, *, catalog: str | None = None) -> Path:
    """Catalog the package of `inf`: the INF and every `[SourceDisksFiles]` file, signed by
    `pki`; written beside the INF under the INF's `CatalogFile=` name. An INF without one gets
    `CatalogFile=<catalog or stem.cat>` in `[Version]` first (the INF is a member, so it is
    edited, as UTF-8, before it is hashed). Returns the catalog's path."""
    inf = Path(inf)
    text = decode_inf(inf.read_bytes(), inf.name)
    name = catalog_name(text)
    if name is None:
        name = catalog or f"{inf.stem}.cat"
        lines = text.splitlines(keepends=True)
        at = next(
            (i for i, line in enumerate(lines) if line.strip().lower().startswith("[version]")),
            None,
        )
        if at is None:
            raise ValueError(f"{inf}: no [Version] section to name the catalog in")
        newline = "\r\n" if "\r\n" in text else "\n"
        lines.insert(at + 1, f"CatalogFile={name}{newline}")
        inf.write_bytes("".join(lines).encode("utf-8"))
    members = [inf]
    for file_name in package_driver_files(inf):
        path = next((p for p in inf.parent.iterdir() if p.name.lower() == file_name.lower()), None)
        if path is None:
            raise FileNotFoundError(f"{inf}: [SourceDisksFiles] names {file_name}, not found")
        members.append(path)
    target = inf.parent / name
    tmp = target.with_name(target.name + ".tmp")
    tmp.write_bytes(build_catalog(members, pki))
    os.replace(tmp, target)
    return target


# -- verification ---------------------------------------------------------------------------------


def _parse(data: bytes) -> CertificateTrustList | None:
    try:
        ctl = CertificateTrustList.from_envelope(data)
    except Exception:  # not a PKCS#7 CTL at all
        return None
    return ctl if ctl.is_catalog else None


def _verify_signed(ctl: CertificateTrustList, name: str, roots: Sequence[bytes]) -> SignatureCheck:
    signer = signer_certificate(ctl)
    store = trust_store(roots)
    try:
        ctl.verify(
            trusted_certificate_store=store,
            extended_key_usages=["code_signing"],
            countersignature_mode="permit",
        )
    except InvalidDigestError as exc:
        return signature_check(SignatureStatus.HashMismatch, name, signer, str(exc))
    except CertificateVerificationError as exc:
        return signature_check(SignatureStatus.NotTrusted, name, signer, str(exc))
    except (SignifyError, ValueError) as exc:
        return signature_check(SignatureStatus.UnknownError, name, signer, str(exc))
    return signature_check(SignatureStatus.Valid, name, signer)


def _read(data_or_path: bytes | str | os.PathLike[str]) -> tuple[bytes, str]:
    if isinstance(data_or_path, (bytes, bytearray, memoryview)):
        return bytes(data_or_path), "<data>"
    return Path(data_or_path).read_bytes(), Path(data_or_path).name


def verify_catalog(
    data_or_path: bytes | str | os.PathLike[str], trusted_roots: Sequence[bytes]
) -> SignatureCheck:
    """The catalog's own signature, as `Get-AuthenticodeSignature` reads a `.cat`: Valid,
    HashMismatch (the list changed after signing), NotTrusted (no path to `trusted_roots`),
    NotSigned (not a signed catalog); SignatureType Authenticode when signed."""
    data, name = _read(data_or_path)
    ctl = _parse(data)
    if ctl is None:
        return signature_check(SignatureStatus.NotSigned, name)
    return _verify_signed(ctl, name, trusted_roots)


def catalog_check(
    file: bytes | str | os.PathLike[str],
    catalog: bytes | str | os.PathLike[str],
    trusted_roots: Sequence[bytes],
) -> SignatureCheck:
    """How the catalog signs `file`, as the catalog API answers: NotSigned when the file's
    hash is not a member (a changed file is not a member either), else the catalog's signature
    status and signer, with SignatureType Catalog."""
    data, name = _read(file)
    cat_data, _cat_name = _read(catalog)
    ctl = _parse(cat_data)
    if ctl is None:
        return signature_check(SignatureStatus.NotSigned, name)
    digest, _is_pe = file_hash(data)
    if ctl.find_subject(digest) is None:
        return signature_check(
            SignatureStatus.NotSigned, name, detail="its hash is not in the catalog"
        )
    return replace(_verify_signed(ctl, name, trusted_roots), signature_type=SignatureType.Catalog)


def is_member(file: bytes | str | os.PathLike[str], catalog: bytes) -> bool:
    """Whether the catalog lists `file` with its current hash (signature not checked)."""
    data, _name = _read(file)
    ctl = _parse(catalog)
    return ctl is not None and ctl.find_subject(file_hash(data)[0]) is not None


def authenticode_signature(
    path: str | os.PathLike[str], installed_catalogs: Sequence[bytes], roots: Sequence[bytes]
) -> SignatureCheck:
    """`Get-AuthenticodeSignature` on Windows PowerShell 5.1: the catalog API first (the
    system catalog database, `installed_catalogs`), and the file's own signature when no
    catalog answers Valid (SignatureHelper: GetSignatureFromCatalog, then WinVerifyTrust). A
    catalog file reads its own signature (SignatureType Authenticode); other files their
    embedded Authenticode signature (`signing.verify_file`)."""
    data = Path(path).read_bytes()
    for catalog in installed_catalogs:
        check = catalog_check(data, catalog, roots)
        if check.status is SignatureStatus.Valid:
            return check
    if _parse(data) is not None:
        return verify_catalog(path, roots)
    return verify_file(path, roots)
