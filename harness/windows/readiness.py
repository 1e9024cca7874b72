"""Checks a DUT must pass before the harness changes anything on it (and `lab doctor --deep`).

- `token_state` / `require_elevated`: bcdedit, verifier, pnputil, the BIOS WMI methods and
  `Suspend-BitLocker` need a full administrator token. Over WinRM a local administrator other
  than the built-in one gets a filtered (UAC) token unless `LocalAccountTokenFilterPolicy` is 1
  ("User Account Control and remote restrictions",
  https://learn.microsoft.com/troubleshoot/windows-server/windows-security/user-account-control-and-remote-restriction).
  Without it the tools fail one by one with "access denied" or read as unknown; the harness
  refuses the DUT once, with the reason, before its first change.
- `certificate_state` / `provision_certificates`: a test-signed package installs without a
  prompt only when its signing certificate is in LocalMachine `TrustedPublisher` and chains to
  one in `Root` ("Add a Device Driver Package to the Driver Store": otherwise the Windows
  Security dialog appears; over WinRM/SSH it waits in session 0, where nobody can answer it).
  Both run the `cert_provision` operation; `certificate_state` only reads.

>>> require_elevated(host, deadline)                     # doctest: +SKIP
>>> certificate_state(host, ["3FA1..."]).missing           # doctest: +SKIP
{'3FA1...': ('TrustedPublisher',)}
"""

from __future__ import annotations

import base64
import weakref
from collections.abc import Sequence
from typing import TYPE_CHECKING

from harness.errors import DutError
from harness.remote.deadline import Deadline
from harness.windows.results import BitLockerState, CertificateState, TokenState

if TYPE_CHECKING:
    from harness.windows.host import WindowsHost

_elevated_hosts: weakref.WeakSet[WindowsHost] = weakref.WeakSet()


def token_state(host: WindowsHost, *, deadline: Deadline | None = None) -> TokenState:
    """The `token_state` operation (read-only)."""
    d = host.call("token_state", {}, deadline=deadline)
    return TokenState.from_json("token_state", d)


def require_elevated(host: WindowsHost, deadline: Deadline | None = None) -> TokenState | None:
    """Refuse (DutError) a DUT whose operations run without a full administrator token; checked
    once per host object (None when it was already checked)."""
    if host in _elevated_hosts:
        return None
    state = token_state(host, deadline=deadline)
    if not state.elevated:
        policy = state.local_account_token_filter_policy
        raise DutError(
            f"{host.name}: the harness's account {state.user} has no elevated (full "
            "administrator) token, so bcdedit, verifier, pnputil and the BIOS WMI methods "
            "would fail; nothing was changed. Use the built-in Administrator, or set "
            r"HKLM\SOFTWARE\Microsoft\Windows\CurrentVersion\Policies\System "
            f"LocalAccountTokenFilterPolicy=1 (now: {policy if policy is not None else 'absent'})"
        )
    _elevated_hosts.add(host)
    return state


def bitlocker_state(host: WindowsHost, *, deadline: Deadline | None = None) -> BitLockerState:
    """The `bitlocker_state` operation (read-only): whether the OS volume is protected, so a
    test-signing or firmware change will suspend it first (review F2)."""
    d = host.call("bitlocker_state", {}, deadline=deadline)
    return BitLockerState.from_json("bitlocker_state", d)


def certificate_state(
    host: WindowsHost, thumbprints: Sequence[str], *, deadline: Deadline | None = None
) -> CertificateState:
    """Which LocalMachine stores (Root, TrustedPublisher) hold each of `thumbprints` (read-only)."""
    params = {"thumbprints": [t.upper() for t in thumbprints], "check_only": True}
    d = host.call("cert_provision", params, deadline=deadline)
    return CertificateState.from_json("cert_provision", d)


def provision_certificates(
    host: WindowsHost, certificates_der: Sequence[bytes], *, deadline: Deadline | None = None
) -> CertificateState:
    """Import each certificate (DER) into LocalMachine Root and TrustedPublisher (idempotent)."""
    params = {
        "certificates_base64": [base64.b64encode(c).decode("ascii") for c in certificates_der],
        "check_only": False,
    }
    d = host.call("cert_provision", params, deadline=deadline)
    return CertificateState.from_json("cert_provision", d)


def missing_message(host_name: str, state: CertificateState, what: str) -> str | None:
    """The refusal text naming each certificate and the stores it is missing from, or None."""
    if not state.missing:
        return None
    parts = [
        f"{thumb} not in " + " and ".join(f"LocalMachine\\{s}" for s in stores)
        for thumb, stores in sorted(state.missing.items())
    ]
    return (
        f"{host_name}: {what}: " + "; ".join(parts) + ". pnputil would wait for the Windows "
        "Security dialog in session 0 until its deadline; provision the certificate into "
        "LocalMachine Root and TrustedPublisher (driver package test_certificates)"
    )


__all__ = [
    "bitlocker_state",
    "certificate_state",
    "missing_message",
    "provision_certificates",
    "require_elevated",
    "token_state",
]
