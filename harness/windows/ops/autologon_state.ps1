# Operation: autologon_state
# Facility: HKLM\SOFTWARE\Microsoft\Windows NT\CurrentVersion\Winlogon values AutoAdminLogon (REG_SZ, "1": on),
#   DefaultUserName and DefaultPassword (REG_SZ, the password in plain text when a tool wrote it there)
#   Microsoft Learn "Configure Windows to automate logon"
#   https://learn.microsoft.com/troubleshoot/windows-server/user-profiles-and-logon/turn-on-automatic-logon
# Facility: RegistryKey.GetValueNames: whether DefaultPassword exists, without reading its data
#   https://learn.microsoft.com/dotnet/api/microsoft.win32.registrykey.getvaluenames
# Read-only. The LSA secret DefaultPassword (autologon_set) is not read here.
# Parameters: {}
# Result: {"enabled": bool, "user": str?, "password_in_registry": bool}
param([Parameter(Mandatory = $true)][string]$ParamsBase64)
$ErrorActionPreference = 'Stop'
$ProgressPreference = 'SilentlyContinue'
$P = [Text.Encoding]::UTF8.GetString([Convert]::FromBase64String($ParamsBase64)) | ConvertFrom-Json
$key = 'HKLM:\SOFTWARE\Microsoft\Windows NT\CurrentVersion\Winlogon'
$item = Get-Item -LiteralPath $key
$names = @($item.GetValueNames())
$enabled = $false
if ($names -contains 'AutoAdminLogon') { $enabled = ([string]$item.GetValue('AutoAdminLogon') -eq '1') }
$user = $null
if ($names -contains 'DefaultUserName') {
    $value = [string]$item.GetValue('DefaultUserName')
    if ($value) { $user = $value }
}
$result = [ordered]@{
    enabled              = [bool]$enabled
    user                 = $user
    password_in_registry = [bool]($names -contains 'DefaultPassword')
}
Remove-TypeData -TypeName System.Array -ErrorAction SilentlyContinue
$json = ConvertTo-Json -InputObject $result -Compress -Depth 8
[regex]::Replace($json, '[^\x00-\x7F]', { param($m) '\u{0:x4}' -f [int][char]$m.Value })
