"""A simulated DUT's LocalMachine `Root` and `TrustedPublisher` certificate stores, and the
install prompt they decide.

"Add a Device Driver Package to the Driver Store": when a package is signed by a certificate that
is not in Trusted Publishers, Windows shows the Windows Security dialog and waits for an answer.
Over WinRM or SSH pnputil runs in session 0, where nobody sees that dialog, so
`pnputil /add-driver ... /install` simply does not return (a real host's exact behaviour there is
review risk 2; the lab models the wait). A package whose files are signed under a release root
(`virtual.trusted_roots`, the lab's Microsoft) installs without a prompt, as WHQL packages do.
Quirk `signing_cert_provisioned: false` takes the lab's roots out of the release roots for a DUT:
its packages are then test-signed and install silently only once the root is in `Root` and the
signing certificate in `TrustedPublisher` (`cert_provision`, `Import-Certificate`).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from typing import TYPE_CHECKING, Any

from harness.virtual_lab.signing import SignatureStatus, package_driver_files, verify_file

if TYPE_CHECKING:
    from pathlib import Path

    from harness.virtual_lab.windows.machine import WindowsMachine

STORES = ("Root", "TrustedPublisher")
#: How long the unanswered dialog keeps pnputil waiting (real-world seconds): past any deadline.
PROMPT_WAIT_S = 24 * 3600.0


class BadCertificate(ValueError):
    """The bytes are not a certificate (Import-Certificate would throw)."""


def thumbprint(der: bytes) -> str:
    return hashlib.sha1(der).hexdigest().upper()


def _held(m: WindowsMachine, store: str, thumb: str) -> bool:
    return any(thumbprint(der) == thumb for der in m.cert_stores[store])


def provision(m: WindowsMachine, p: dict[str, Any]) -> dict[str, Any]:
    """`cert_provision`: import each certificate into both stores (or only report with
    `check_only`); thumbprints alone can be checked."""
    check_only = bool(p.get("check_only", False))
    entries: list[tuple[str, bytes | None]] = []
    for text in p.get("certificates_base64") or []:
        try:
            raw = base64.b64decode(str(text), validate=True)
        except (binascii.Error, ValueError):
            raise BadCertificate("Cannot find the requested object.") from None
        if not raw.startswith(b"\x30"):
            raise BadCertificate("Cannot find the requested object.")
        entries.append((thumbprint(raw), raw))
    for thumb in p.get("thumbprints") or []:
        entries.append((str(thumb).upper(), None))
    imported = 0
    out = []
    for thumb, der in entries:
        stores = {}
        for store in STORES:
            present = _held(m, store, thumb)
            if not present and der is not None and not check_only:
                m.cert_stores[store].append(der)
                imported += 1
                present = True
            stores[store] = present
        out.append({"thumbprint": thumb, "stores": stores})
    return {"certificates": out, "imported": imported}


def install_prompt(m: WindowsMachine, inf: Path) -> str | None:
    """Why installing the package at `inf` would show the Windows Security dialog (None: it
    installs without one)."""
    if not inf.is_file():
        return None
    root_certs = list(m.cert_stores["Root"])
    for name in package_driver_files(inf):
        path = next((f for f in inf.parent.iterdir() if f.name.lower() == name.lower()), None)
        if path is None:
            return None  # pnputil refuses the package before any prompt
        if verify_file(path, m.release_roots).status is SignatureStatus.Valid:
            continue
        check = verify_file(path, root_certs)
        if check.status is not SignatureStatus.Valid:
            return f"{name}: publisher cannot be verified (root not in LocalMachine\\Root)"
        if check.signer_thumbprint is None or not _held(
            m, "TrustedPublisher", check.signer_thumbprint
        ):
            return f"{name}: signer {check.signer_thumbprint} not in LocalMachine\\TrustedPublisher"
    return None


__all__ = ["PROMPT_WAIT_S", "STORES", "BadCertificate", "install_prompt", "provision", "thumbprint"]
