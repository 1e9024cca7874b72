"""Operations that touch what BitLocker measures, the restart and the caller's token, as a real
Windows host answers them (`operations.py` registers these handlers).

Each answers from what the operation's code does (`sources.reads`), like the other handlers:

- `test_signing_set` / `kdp_firmware_set` on a DUT with BitLocker on (quirk `bitlocker`): the
  change stops the next boot at the recovery screen (`bitlocker.py`) unless the script suspended
  protection first (`Suspend-BitLocker ... -RebootCount`).
- `kdp_firmware_set` on Dell: the DMA protection attribute has the name the BIOS gives it (quirk
  `dell_dma_attribute`); a script that hard-codes another name finds none. On Lenovo,
  `SaveBiosSettings` called with an empty `parameter` when no BIOS password is set answers
  `Invalid Parameter` (the lab's model of Lenovo's documented no-argument call).
- `reboot_request` with quirk `restart_veto`: an application of the signed-in user vetoes a restart
  that is not forced (`shutdown /r /t 0` without `/f`; `/f` is implied only for `/t` > 0), so the
  machine stays up.
- `token_state`: quirk `elevated: false` is a filtered (UAC) token, as a non-built-in local
  administrator gets over WinRM without LocalAccountTokenFilterPolicy=1.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from harness.virtual_lab.windows import commands, sources
from harness.virtual_lab.windows.registry import WINLOGON

if TYPE_CHECKING:
    from harness.virtual_lab.windows.machine import WindowsMachine

#: HKLM\...\Policies\System, where LocalAccountTokenFilterPolicy lives.
POLICIES_SYSTEM = r"HKLM\SOFTWARE\Microsoft\Windows\CurrentVersion\Policies\System"


class ScriptFailed(Exception):
    """What the real script would throw (the handler turns it into the op's failure)."""


def suspend_bitlocker(m: WindowsMachine) -> bool:
    """The script's `Suspend-BitLocker -RebootCount 1` when protection is on: True if done."""
    if not m.bitlocker.protection_on or not sources.reads(m, "Suspend-BitLocker"):
        return False
    if not sources.reads(m, "-RebootCount"):
        return False
    m.bitlocker.suspend(1)
    return True


def test_signing_set(m: WindowsMachine, enabled: bool) -> dict[str, Any]:
    suspended = m.test_signing_pending != enabled and suspend_bitlocker(m)
    code, text = commands.bcdedit(m, ["/set", "testsigning", "on" if enabled else "off"])
    if code != 0 and suspended:
        m.bitlocker.suspended_reboots = 0  # Resume-BitLocker
        suspended = False
    return {
        "exit_code": code,
        "reboot_required": code == 0,
        "output": text,
        "bitlocker_suspended": suspended,
    }


def kdp_firmware_set(m: WindowsMachine, vendor: str, enabled: bool) -> dict[str, Any]:
    fw = m.firmware
    name = fw.kdp_name
    reads_name = sources.reads_pattern(m, r"AttributeName\]?\s*-match\s*'dma'")
    if vendor == "dell-wmi" and not reads_name and name != "KernelDmaProtection":
        raise ScriptFailed("kdp_firmware_set: this Dell BIOS has no KernelDmaProtection attribute")
    before = fw.kdp_setting()
    values = fw.table[name]
    want = values[1 if enabled else 0]
    if fw.settings[name] == want:
        return _kdp_result(vendor, False, None, name, False)
    suspended = suspend_bitlocker(m)
    saved = dict(fw.settings)
    answer = fw.set(name, want)
    if (
        answer == "Success"
        and vendor == "lenovo-wmi"
        and sources.reads_pattern(m, r"SaveBiosSettings\s+-Arguments\s+@\{\s*parameter\s*=\s*''")
    ):
        fw.settings = saved  # SaveBiosSettings refused: nothing committed
        answer = "Invalid Parameter"
    changed = answer == "Success" and fw.kdp_setting() != before
    if suspended and not changed:
        m.bitlocker.suspended_reboots = 0  # Resume-BitLocker
        suspended = False
    return _kdp_result(vendor, changed, answer, name, suspended)


def _kdp_result(
    vendor: str, changed: bool, answer: str | None, name: str, suspended: bool
) -> dict[str, Any]:
    return {
        "vendor": vendor,
        "changed": changed,
        "reboot_required": changed,
        "return_value": answer,
        "attribute": name,
        "bitlocker_suspended": suspended,
    }


def restart_vetoed(m: WindowsMachine) -> bool:
    """Quirk `restart_veto`: an app of the signed-in user blocks an unforced restart."""
    if not m.quirks.get("restart_veto") or m.session.value == "no-user":
        return False
    return not sources.reads_pattern(m, r"'/f'")


def token_state(m: WindowsMachine) -> dict[str, Any]:
    elevated = bool(m.quirks.get("elevated", True))
    return {
        "user": f"{m.hostname}\\{m.username}",
        "elevated": elevated,
        "admin_member": True,
        "local_account_token_filter_policy": m.registry.get(
            POLICIES_SYSTEM, "LocalAccountTokenFilterPolicy"
        ),
    }


def bitlocker_state(m: WindowsMachine) -> dict[str, Any]:
    """`Get-BitLockerVolume` of the OS volume (protection reads Off while suspended)."""
    b = m.bitlocker
    return {
        "available": True,
        "mount_point": "C:",
        "protection_status": "On" if b.protection_on else "Off",
        "volume_status": "FullyEncrypted" if b.enabled else "FullyDecrypted",
        "key_protectors": ["Tpm", "RecoveryPassword"] if b.enabled else [],
    }


def autologon_set(m: WindowsMachine, p: dict[str, Any]) -> dict[str, Any]:
    """Winlogon's values; the LSA secret `DefaultPassword` (kept in `m.lsa_secrets`) wins over
    the registry value at logon, so the script clears (or stores) it when it writes one."""
    enabled = bool(p.get("enabled"))
    secrets: dict[str, str] = m.lsa_secrets
    handles_secret = sources.reads(m, "LsaStorePrivateData")
    had_secret = "DefaultPassword" in secrets
    m.registry.set(WINLOGON, "AutoAdminLogon", "1" if enabled else "0")
    if enabled:
        for key, name in (("user", "DefaultUserName"), ("domain", "DefaultDomainName")):
            if p.get(key) is not None:
                m.registry.set(WINLOGON, name, str(p[key]))
        if p.get("password") is not None:
            if handles_secret:
                secrets["DefaultPassword"] = str(p["password"])
                m.registry.delete(WINLOGON, "DefaultPassword")
            else:
                m.registry.set(WINLOGON, "DefaultPassword", str(p["password"]))
    else:
        m.registry.delete(WINLOGON, "DefaultPassword")
        if handles_secret:
            secrets.pop("DefaultPassword", None)
    result: dict[str, Any] = {"enabled": enabled}
    if handles_secret:
        result["lsa_secret_replaced"] = had_secret
    return result


def autologon_password(m: WindowsMachine) -> str | None:
    """The password Winlogon uses at boot: the LSA secret when there is one, else the value."""
    secret = m.lsa_secrets.get("DefaultPassword")
    if secret is not None:
        return secret
    value = m.registry.get(WINLOGON, "DefaultPassword")
    return None if value is None else str(value)


__all__ = [
    "POLICIES_SYSTEM",
    "ScriptFailed",
    "autologon_password",
    "autologon_set",
    "bitlocker_state",
    "kdp_firmware_set",
    "restart_vetoed",
    "suspend_bitlocker",
    "test_signing_set",
    "token_state",
]
