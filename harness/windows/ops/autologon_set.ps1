# Operation: autologon_set
# Facility: HKLM\SOFTWARE\Microsoft\Windows NT\CurrentVersion\Winlogon values AutoAdminLogon, DefaultUserName,
#   DefaultDomainName (REG_SZ). Acts at the next boot or sign-out; it never unlocks a locked session.
#   https://learn.microsoft.com/troubleshoot/windows-server/user-profiles-and-logon/turn-on-automatic-logon
# Facility: the password is stored as the LSA secret "DefaultPassword" (LsaOpenPolicy + LsaStorePrivateData),
#   not as the plaintext registry value, which is deleted. Winlogon uses that secret in preference to the
#   registry value, so a secret left by an earlier tool (e.g. Sysinternals Autologon) would log on with a stale
#   password; it is replaced, and deleted (LsaStorePrivateData with NULL data) when autologon is turned off.
#   https://learn.microsoft.com/windows/win32/secauthn/protecting-the-automatic-logon-password
#   https://learn.microsoft.com/windows/win32/api/ntsecapi/nf-ntsecapi-lsastoreprivatedata
# Parameters: {"enabled": true, "user": "labuser", "domain": "DUT01", "password": "<secret, redacted>"}
# Result: {"enabled": bool, "lsa_secret_replaced": bool? (a DefaultPassword secret was there before; null: unreadable)}
param([Parameter(Mandatory = $true)][string]$ParamsBase64)
$ErrorActionPreference = 'Stop'
$ProgressPreference = 'SilentlyContinue'
$P = [Text.Encoding]::UTF8.GetString([Convert]::FromBase64String($ParamsBase64)) | ConvertFrom-Json
if (-not ('HarnessLsaSecret' -as [type])) {
    Add-Type -TypeDefinition @'
using System;
using System.ComponentModel;
using System.Runtime.InteropServices;
public static class HarnessLsaSecret {
    [StructLayout(LayoutKind.Sequential)]
    struct LSA_UNICODE_STRING { public ushort Length; public ushort MaximumLength; public IntPtr Buffer; }
    [StructLayout(LayoutKind.Sequential)]
    struct LSA_OBJECT_ATTRIBUTES {
        public int Length; public IntPtr RootDirectory; public IntPtr ObjectName; public int Attributes;
        public IntPtr SecurityDescriptor; public IntPtr SecurityQualityOfService;
    }
    [DllImport("advapi32.dll")]
    static extern uint LsaOpenPolicy(IntPtr systemName, ref LSA_OBJECT_ATTRIBUTES attributes, int access, out IntPtr handle);
    [DllImport("advapi32.dll")]
    static extern uint LsaStorePrivateData(IntPtr policy, ref LSA_UNICODE_STRING key, IntPtr data);
    [DllImport("advapi32.dll")]
    static extern uint LsaRetrievePrivateData(IntPtr policy, ref LSA_UNICODE_STRING key, out IntPtr data);
    [DllImport("advapi32.dll")]
    static extern uint LsaFreeMemory(IntPtr buffer);
    [DllImport("advapi32.dll")]
    static extern uint LsaClose(IntPtr handle);
    [DllImport("advapi32.dll")]
    static extern int LsaNtStatusToWinError(uint status);
    const int POLICY_GET_PRIVATE_INFORMATION = 0x4;
    const int POLICY_CREATE_SECRET = 0x20;
    const uint STATUS_OBJECT_NAME_NOT_FOUND = 0xC0000034;
    static LSA_UNICODE_STRING Unicode(string s) {
        LSA_UNICODE_STRING u = new LSA_UNICODE_STRING();
        u.Buffer = Marshal.StringToHGlobalUni(s);
        u.Length = (ushort)(s.Length * 2);
        u.MaximumLength = (ushort)(s.Length * 2 + 2);
        return u;
    }
    static void Wipe(LSA_UNICODE_STRING u) {
        for (int i = 0; i < u.MaximumLength; i++) { Marshal.WriteByte(u.Buffer, i, 0); }
        Marshal.FreeHGlobal(u.Buffer);
    }
    static IntPtr Open() {
        LSA_OBJECT_ATTRIBUTES attributes = new LSA_OBJECT_ATTRIBUTES();
        attributes.Length = Marshal.SizeOf(typeof(LSA_OBJECT_ATTRIBUTES));
        IntPtr policy;
        uint status = LsaOpenPolicy(IntPtr.Zero, ref attributes, POLICY_GET_PRIVATE_INFORMATION | POLICY_CREATE_SECRET, out policy);
        if (status != 0) { throw new Win32Exception(LsaNtStatusToWinError(status)); }
        return policy;
    }
    // 1: the secret exists (its value is freed unread), 0: it does not, -1: unknown (e.g. denied).
    public static int State(string name) {
        IntPtr policy = Open();
        LSA_UNICODE_STRING key = Unicode(name);
        try {
            IntPtr data;
            uint status = LsaRetrievePrivateData(policy, ref key, out data);
            if (status == STATUS_OBJECT_NAME_NOT_FOUND) { return 0; }
            if (status != 0) { return -1; }
            if (data != IntPtr.Zero) { LsaFreeMemory(data); }
            return 1;
        } finally { Wipe(key); LsaClose(policy); }
    }
    public static void Store(string name, string value) { Write(name, value); }
    // PowerShell passes $null to a string parameter as "", so deleting has its own method.
    public static void Delete(string name) { Write(name, null); }
    // Stores `value` as the secret; null deletes it (a missing secret is not an error).
    static void Write(string name, string value) {
        IntPtr policy = Open();
        LSA_UNICODE_STRING key = Unicode(name);
        IntPtr data = IntPtr.Zero;
        LSA_UNICODE_STRING secret = new LSA_UNICODE_STRING();
        try {
            if (value != null) {
                secret = Unicode(value);
                data = Marshal.AllocHGlobal(Marshal.SizeOf(typeof(LSA_UNICODE_STRING)));
                Marshal.StructureToPtr(secret, data, false);
            }
            uint status = LsaStorePrivateData(policy, ref key, data);
            if (status != 0 && !(value == null && status == STATUS_OBJECT_NAME_NOT_FOUND)) {
                throw new Win32Exception(LsaNtStatusToWinError(status));
            }
        } finally {
            if (secret.Buffer != IntPtr.Zero) { Wipe(secret); }
            if (data != IntPtr.Zero) { Marshal.FreeHGlobal(data); }
            Wipe(key);
            LsaClose(policy);
        }
    }
}
'@
}
$key = 'HKLM:\SOFTWARE\Microsoft\Windows NT\CurrentVersion\Winlogon'
function Set-WinlogonString([string]$Name, [string]$Value) {
    [void](New-ItemProperty -LiteralPath $key -Name $Name -PropertyType String -Value $Value -Force)
}
$secretState = [HarnessLsaSecret]::State('DefaultPassword')
if ([bool]$P.enabled) {
    if (-not $P.user) { throw 'autologon_set: user is required to enable autologon' }
    $domain = [string]$P.domain
    if (-not $domain) { $domain = $env:COMPUTERNAME }
    Set-WinlogonString 'DefaultUserName' ([string]$P.user)
    Set-WinlogonString 'DefaultDomainName' $domain
    [HarnessLsaSecret]::Store('DefaultPassword', [string]$P.password)
    # The plaintext value is not kept beside the secret.
    Remove-ItemProperty -LiteralPath $key -Name 'DefaultPassword' -ErrorAction SilentlyContinue
    # AutoLogonCount, when present, switches AutoAdminLogon back to 0 after that many logons.
    Remove-ItemProperty -LiteralPath $key -Name 'AutoLogonCount' -ErrorAction SilentlyContinue
    Set-WinlogonString 'AutoAdminLogon' '1'
} else {
    Set-WinlogonString 'AutoAdminLogon' '0'
    # No password stays on the DUT once autologon is off, in either form.
    Remove-ItemProperty -LiteralPath $key -Name 'DefaultPassword' -ErrorAction SilentlyContinue
    [HarnessLsaSecret]::Delete('DefaultPassword')
}
$replaced = $null
if ($secretState -ge 0) { $replaced = ($secretState -eq 1) }
$result = [ordered]@{
    enabled             = ((Get-ItemProperty -LiteralPath $key -Name 'AutoAdminLogon').AutoAdminLogon -eq '1')
    lsa_secret_replaced = $replaced
}
Remove-TypeData -TypeName System.Array -ErrorAction SilentlyContinue
$json = ConvertTo-Json -InputObject $result -Compress -Depth 8
[regex]::Replace($json, '[^\x00-\x7F]', { param($m) '\u{0:x4}' -f [int][char]$m.Value })
