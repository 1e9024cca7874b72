# Operation: autologon_set
# Facility: HKLM\SOFTWARE\Microsoft\Windows NT\CurrentVersion\Winlogon values AutoAdminLogon, DefaultUserName,
#   DefaultDomainName, DefaultPassword (REG_SZ; plaintext legacy form). Acts at the next boot or sign-out;
#   it never unlocks a locked session.
#   https://learn.microsoft.com/troubleshoot/windows-server/user-profiles-and-logon/turn-on-automatic-logon
#   https://learn.microsoft.com/windows/win32/secauthn/protecting-the-automatic-logon-password
# Parameters: {"enabled": true, "user": "labuser", "domain": "DUT01", "password": "<secret, redacted>"}
# Result: {"enabled": bool}
param([Parameter(Mandatory = $true)][string]$ParamsBase64)
$ErrorActionPreference = 'Stop'
$ProgressPreference = 'SilentlyContinue'
$P = [Text.Encoding]::UTF8.GetString([Convert]::FromBase64String($ParamsBase64)) | ConvertFrom-Json
$key = 'HKLM:\SOFTWARE\Microsoft\Windows NT\CurrentVersion\Winlogon'
function Set-WinlogonString([string]$Name, [string]$Value) {
    [void](New-ItemProperty -LiteralPath $key -Name $Name -PropertyType String -Value $Value -Force)
}
if ([bool]$P.enabled) {
    if (-not $P.user) { throw 'autologon_set: user is required to enable autologon' }
    $domain = [string]$P.domain
    if (-not $domain) { $domain = $env:COMPUTERNAME }
    Set-WinlogonString 'DefaultUserName' ([string]$P.user)
    Set-WinlogonString 'DefaultDomainName' $domain
    Set-WinlogonString 'DefaultPassword' ([string]$P.password)
    # AutoLogonCount, when present, switches AutoAdminLogon back to 0 after that many logons.
    Remove-ItemProperty -LiteralPath $key -Name 'AutoLogonCount' -ErrorAction SilentlyContinue
    Set-WinlogonString 'AutoAdminLogon' '1'
} else {
    Set-WinlogonString 'AutoAdminLogon' '0'
    # The plaintext password does not stay on the DUT once autologon is off.
    Remove-ItemProperty -LiteralPath $key -Name 'DefaultPassword' -ErrorAction SilentlyContinue
}
$result = [ordered]@{ enabled = ((Get-ItemProperty -LiteralPath $key -Name 'AutoAdminLogon').AutoAdminLogon -eq '1') }
Remove-TypeData -TypeName System.Array -ErrorAction SilentlyContinue
$json = ConvertTo-Json -InputObject $result -Compress -Depth 8
[regex]::Replace($json, '[^\x00-\x7F]', { param($m) '\u{0:x4}' -f [int][char]$m.Value })
