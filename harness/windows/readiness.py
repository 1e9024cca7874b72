"""Checks a DUT must pass before the harness changes anything on it (and `lab doctor --deep`).

- `token_state` / `require_elevated`: bcdedit, verifier, pnputil, the BIOS WMI methods and
  `Suspend-BitLocker` need a full administrator token. Over WinRM a local administrator other
  than the built-in one gets a filtered (UAC) token unless `LocalAccountTokenFilterPolicy` is 1
  ("User Account Control and remote restrictions",
  https://learn.microsoft.com/troubleshoot/windows-server/windows-security/user-account-control-and-remote-restriction).
  Without it the tools fail one by one with "access denied" or read as unknown; the harness
  refuses the DUT once, with the reason, before its first change.

>>> require_elevated(host, deadline)                     # doctest: +SKIP
"""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING

from harness.errors import DutError
from harness.remote.deadline import Deadline
from harness.windows.results import TokenState

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


__all__ = [
    "require_elevated",
    "token_state",
]
