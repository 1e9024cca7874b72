# Operation: lab_readiness
# Facility: what `harness lab doctor --deep` needs to know about a host before its first run; reads only.
#   PowerShell version and language mode (Add-Type and the persistent host need FullLanguage):
#   $PSVersionTable, $ExecutionContext.SessionState.LanguageMode
#   https://learn.microsoft.com/powershell/module/microsoft.powershell.core/about/about_language_modes
#   Display language and formats: Get-UICulture, Get-Culture
#   https://learn.microsoft.com/powershell/module/microsoft.powershell.utility/get-uiculture
#   OpenSSH's shell for exec requests: HKLM\SOFTWARE\OpenSSH, REG_SZ DefaultShell (absent: cmd.exe)
#   https://learn.microsoft.com/windows-server/administration/openssh/openssh-server-configuration
#   WinRM limits, through the WSMan: drive: MaxEnvelopeSizekb (500), Service\MaxConcurrentOperationsPerUser
#   (1500), Shell\IdleTimeout (7200000 ms); defaults in parentheses
#   https://learn.microsoft.com/windows/win32/winrm/installation-and-configuration-for-windows-remote-management
#   echo: a long parameter given back by length and SHA-256, proving the request line arrived whole
#   (a WinRM command whose stdin is in console mode cuts lines at 254 characters).
# Parameters: {"echo": string}
# Result: {"ps_version", "language_mode", "ui_culture", "culture", "openssh_default_shell"?, "wsman": {"max_envelope_kb": int?, "max_operations_per_user": int?, "idle_timeout_ms": int?}, "echo_length": int, "echo_sha256"}
param([Parameter(Mandatory = $true)][string]$ParamsBase64)
$ErrorActionPreference = 'Stop'
$ProgressPreference = 'SilentlyContinue'
$P = [Text.Encoding]::UTF8.GetString([Convert]::FromBase64String($ParamsBase64)) | ConvertFrom-Json
$echo = [string]$P.echo
$sha = [Security.Cryptography.SHA256]::Create()
try {
    $digest = $sha.ComputeHash([Text.Encoding]::UTF8.GetBytes($echo))
} finally {
    $sha.Dispose()
}
$hex = -join ($digest | ForEach-Object { $_.ToString('x2') })
$shell = $null
$key = Get-ItemProperty -LiteralPath 'HKLM:\SOFTWARE\OpenSSH' -Name 'DefaultShell' -ErrorAction SilentlyContinue
if ($null -ne $key) { $shell = [string]$key.DefaultShell }
function Get-WsManValue([string]$Path) {
    try {
        $item = Get-Item -LiteralPath $Path -ErrorAction Stop
        return [long]$item.Value
    } catch {
        return $null
    }
}
$wsman = [ordered]@{
    max_envelope_kb         = Get-WsManValue 'WSMan:\localhost\MaxEnvelopeSizekb'
    max_operations_per_user = Get-WsManValue 'WSMan:\localhost\Service\MaxConcurrentOperationsPerUser'
    idle_timeout_ms         = Get-WsManValue 'WSMan:\localhost\Shell\IdleTimeout'
}
$result = [ordered]@{
    ps_version            = $PSVersionTable.PSVersion.ToString()
    language_mode         = [string]$ExecutionContext.SessionState.LanguageMode
    ui_culture            = (Get-UICulture).Name
    culture               = (Get-Culture).Name
    openssh_default_shell = $shell
    wsman                 = $wsman
    echo_length           = $echo.Length
    echo_sha256           = $hex
}
Remove-TypeData -TypeName System.Array -ErrorAction SilentlyContinue
$json = ConvertTo-Json -InputObject $result -Compress -Depth 8
[regex]::Replace($json, '[^\x00-\x7F]', { param($m) '\u{0:x4}' -f [int][char]$m.Value })
