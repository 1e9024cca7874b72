"""A simulated DUT's LocalMachine `Root` and `TrustedPublisher` certificate stores, and the
install prompt they decide.

"Add a Device Driver Package to the Driver Store": when a package is signed by a certificate that
is not in Trusted Publishers, Windows shows the Windows Security dialog and waits for an answer.
Over WinRM or SSH pnputil runs in session 0, where nobody sees that dialog, so
`pnputil /add-driver ... /install` simply does not return (a real host's exact behaviour there is
review risk 2; the lab models the wait). A package whose files are signed under a release root
(`virtual.trusted_roots`, the lab's Microsoft) installs without a prompt, as WHQL packages do.
The dialog names the package's publisher: the signer of its catalog (`CatalogFile=`), not of
the binaries' embedded signatures.
Quirk `signing_cert_provisioned: false` takes the lab's roots out of the release roots for a DUT:
its packages are then test-signed and install silently only once the root is in `Root` and the
signing certificate in `TrustedPublisher` (`cert_provision`, `Import-Certificate`).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from typing import TYPE_CHECKING, Any

from harness.domain.inf import InfError
from harness.domain.inf_lexer import decode_inf
from harness.virtual_lab.catalog import catalog_name, verify_catalog
from harness.virtual_lab.signing import SignatureStatus

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
    try:
        name = catalog_name(decode_inf(inf.read_bytes(), inf.name))
    except InfError:
        return None  # pnputil refuses the INF before any prompt
    cat = next((f for f in inf.parent.iterdir() if name and f.name.lower() == name.lower()), None)
    if cat is None:
        return None  # pnputil refuses the package before any prompt
    if verify_catalog(cat, m.release_roots).status is SignatureStatus.Valid:
        return None
    check = verify_catalog(cat, list(m.cert_stores["Root"]))
    if check.status is SignatureStatus.NotTrusted:
        return f"{cat.name}: publisher cannot be verified (root not in LocalMachine\\Root)"
    if check.status is not SignatureStatus.Valid:
        return None  # refused for its signature (driver_store), no prompt
    if check.signer_thumbprint is None or not _held(m, "TrustedPublisher", check.signer_thumbprint):
        return f"{cat.name}: signer {check.signer_thumbprint} not in LocalMachine\\TrustedPublisher"
    return None


__all__ = ["PROMPT_WAIT_S", "STORES", "BadCertificate", "install_prompt", "provision", "thumbprint"]
