# Operation: token_state
# Facility: WindowsPrincipal.IsInRole(WindowsBuiltInRole.Administrator) on the caller's token: true only
#   for a full (elevated) administrator token; the filtered UAC token of an administrator says false
#   https://learn.microsoft.com/dotnet/api/system.security.principal.windowsprincipal.isinrole
# Facility: HKLM\SOFTWARE\Microsoft\Windows\CurrentVersion\Policies\System LocalAccountTokenFilterPolicy
#   (DWORD): 1 gives a local administrator other than the built-in one a full token remotely (WinRM);
#   absent or 0, that account gets a filtered token ("User Account Control and remote restrictions")
#   https://learn.microsoft.com/troubleshoot/windows-server/windows-security/user-account-control-and-remote-restriction
# Parameters: {}
# Result: {"user", "elevated": bool, "local_account_token_filter_policy": int?}
param([Parameter(Mandatory = $true)][string]$ParamsBase64)
$ErrorActionPreference = 'Stop'
$ProgressPreference = 'SilentlyContinue'
$P = [Text.Encoding]::UTF8.GetString([Convert]::FromBase64String($ParamsBase64)) | ConvertFrom-Json
$identity = [Security.Principal.WindowsIdentity]::GetCurrent()
$principal = New-Object Security.Principal.WindowsPrincipal($identity)
$elevated = $principal.IsInRole([Security.Principal.WindowsBuiltInRole]::Administrator)
$filter = $null
$key = 'HKLM:\SOFTWARE\Microsoft\Windows\CurrentVersion\Policies\System'
$item = Get-ItemProperty -LiteralPath $key -Name LocalAccountTokenFilterPolicy -ErrorAction SilentlyContinue
if ($null -ne $item) { $filter = [int]$item.LocalAccountTokenFilterPolicy }
$result = [ordered]@{
    user                              = [string]$identity.Name
    elevated                          = [bool]$elevated
    local_account_token_filter_policy = $filter
}
Remove-TypeData -TypeName System.Array -ErrorAction SilentlyContinue
$json = ConvertTo-Json -InputObject $result -Compress -Depth 8
[regex]::Replace($json, '[^\x00-\x7F]', { param($m) '\u{0:x4}' -f [int][char]$m.Value })
