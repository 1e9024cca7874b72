# Operation: driver_install
# Facility: pnputil /add-driver <inf> /install (Windows 10 1607+) and its return values
#   https://learn.microsoft.com/windows-hardware/drivers/devtest/pnputil-command-syntax
#   https://learn.microsoft.com/windows-hardware/drivers/devtest/pnputil-return-values
# Parameters: {"inf_path": "C:\\harness\\pkg\\mydrv.inf"}
# Result: {"exit_code": int, "outcome": "installed"|"no_device"|"reboot_required"|"reboot_initiated"|"failed",
#   "published_name"?, "output"}
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
# One INF per call: Microsoft recommends it so the return code is actionable.
$r = Invoke-Native "$env:SystemRoot\System32\pnputil.exe" @('/add-driver', [string]$P.inf_path, '/install')
# 259 = ERROR_NO_MORE_ITEMS: package staged, but no device matched or a better-ranked driver is installed.
$outcome = switch ([int]$r.ExitCode) {
    0 { 'installed' }
    259 { 'no_device' }
    3010 { 'reboot_required' }
    1641 { 'reboot_initiated' }
    default { 'failed' }
}
# "Published Name: oem12.inf" in the "Driver package added successfully" block; labels are localized, so
# any oemNN.inf token is the fallback.
$published = $null
if ($r.Output -match '(?im)^\s*Published Name\s*:\s*(oem\d+\.inf)\s*$') { $published = $Matches[1].ToLowerInvariant() }
elseif ($r.Output -match '(?i)\b(oem\d+\.inf)\b') { $published = $Matches[1].ToLowerInvariant() }
$result = [ordered]@{
    exit_code      = [int]$r.ExitCode
    outcome        = $outcome
    published_name = $published
    output         = $r.Output
}
Remove-TypeData -TypeName System.Array -ErrorAction SilentlyContinue
$json = ConvertTo-Json -InputObject $result -Compress -Depth 8
[regex]::Replace($json, '[^\x00-\x7F]', { param($m) '\u{0:x4}' -f [int][char]$m.Value })
