# Operation: reboot_request
# Facility: shutdown.exe /r /f /t 0 /d p:4:1 /c <reason> (planned, "Application: Maintenance"). /f closes
#   running applications without warning; it is implied only when /t is greater than 0, so with /t 0 an
#   application of the signed-in user could veto the restart and leave the machine up
#   https://learn.microsoft.com/windows-server/administration/windows-commands/shutdown
# Facility: Win32_OperatingSystem.LastBootUpTime, read before the request so the harness can tell the
#   next boot from this one
#   https://learn.microsoft.com/windows/win32/cimwin32prov/win32-operatingsystem
# Parameters: {"reason": "harness: apply DMAGuard policy"}
# Result: {"requested": bool, "last_boot_utc"}
param([Parameter(Mandatory = $true)][string]$ParamsBase64)
$ErrorActionPreference = 'Stop'
$ProgressPreference = 'SilentlyContinue'
$P = [Text.Encoding]::UTF8.GetString([Convert]::FromBase64String($ParamsBase64)) | ConvertFrom-Json
function Invoke-Native([string]$FilePath, [string[]]$ArgumentList) {
    # Under 'Stop', PS 5.1 turns the first stderr line of a native tool into a terminating error.
    $ErrorActionPreference = 'Continue'
    $lines = & $FilePath @ArgumentList 2>&1 | ForEach-Object { [string]$_ }
    [pscustomobject]@{ ExitCode = $LASTEXITCODE; Output = ($lines -join "`n") }
}
$lastBoot = (Get-CimInstance -ClassName Win32_OperatingSystem).LastBootUpTime.ToUniversalTime()
# shutdown /c takes at most 512 characters. PS 5.1 does not escape embedded double quotes in native
# arguments, so they are replaced rather than allowed to split the comment.
$reason = ([string]$P.reason).Replace('"', "'")
if (-not $reason) { $reason = 'harness reboot' }
if ($reason.Length -gt 512) { $reason = $reason.Substring(0, 512) }
$r = Invoke-Native "$env:SystemRoot\System32\shutdown.exe" @('/r', '/f', '/t', '0', '/d', 'p:4:1', '/c', $reason)
if ($r.ExitCode -ne 0) { Write-Verbose "shutdown.exe exited $($r.ExitCode): $($r.Output)" }
$result = [ordered]@{
    requested     = ($r.ExitCode -eq 0)
    last_boot_utc = $lastBoot.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", [Globalization.CultureInfo]::InvariantCulture)
}
Remove-TypeData -TypeName System.Array -ErrorAction SilentlyContinue
$json = ConvertTo-Json -InputObject $result -Compress -Depth 8
[regex]::Replace($json, '[^\x00-\x7F]', { param($m) '\u{0:x4}' -f [int][char]$m.Value })
