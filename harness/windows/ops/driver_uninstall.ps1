# Operation: driver_uninstall
# Facility: pnputil /delete-driver <oemNN.inf> /uninstall /force (Windows 10 1607+) and its return values
#   https://learn.microsoft.com/windows-hardware/drivers/devtest/pnputil-command-syntax
#   https://learn.microsoft.com/windows-hardware/drivers/devtest/pnputil-return-values
# Parameters: {"published_name": "oem12.inf"}
# Result: {"exit_code": int, "outcome": "installed"|"no_device"|"reboot_required"|"reboot_initiated"|"failed", "output"}
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
$name = [string]$P.published_name
# Only a published (store) name is meaningful here; anything else would reach pnputil as a switch or a
# wildcard, so it is a harness bug, not an expected failure.
if ($name -notmatch '^oem\d+\.inf$') { throw "driver_uninstall: not a published driver name: '$name'" }
$r = Invoke-Native "$env:SystemRoot\System32\pnputil.exe" @('/delete-driver', $name, '/uninstall', '/force')
$outcome = switch ([int]$r.ExitCode) {
    0 { 'installed' }
    259 { 'no_device' }
    3010 { 'reboot_required' }
    1641 { 'reboot_initiated' }
    default { 'failed' }
}
$result = [ordered]@{
    exit_code = [int]$r.ExitCode
    outcome   = $outcome
    output    = $r.Output
}
Remove-TypeData -TypeName System.Array -ErrorAction SilentlyContinue
$json = ConvertTo-Json -InputObject $result -Compress -Depth 8
[regex]::Replace($json, '[^\x00-\x7F]', { param($m) '\u{0:x4}' -f [int][char]$m.Value })
