# Operation: verifier_set
# Facility: verifier /flags 0x<hex> /driver a.sys b.sys (next boot); verifier /volatile /flags 0x<hex>
#   /adddriver a.sys (now, lost at reboot); verifier /reset. Exit code 2 = EXIT_CODE_REBOOT_NEEDED.
#   https://learn.microsoft.com/windows-hardware/drivers/devtest/verifier-command-line
#   https://learn.microsoft.com/windows-hardware/drivers/devtest/using-volatile-settings
# Parameters: {"mode": "persistent"|"volatile"|"reset", "flags": 128, "drivers": ["mydrv.sys"]}
# Result: {"exit_code": int, "reboot_required": bool, "output"}
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
$drivers = @(@($P.drivers) | Where-Object { $_ } | ForEach-Object { [string]$_ })
foreach ($d in $drivers) {
    # Each name is one argument; a leading '/' would be read as another verifier switch.
    if ($d.StartsWith('/') -or $d.StartsWith('-')) { throw "verifier_set: bad driver name '$d'" }
}
$flags = '0x{0:X}' -f [int64]$P.flags
$arguments = switch ([string]$P.mode) {
    'persistent' { @('/flags', $flags, '/driver') + $drivers }
    'volatile' { @('/volatile', '/flags', $flags, '/adddriver') + $drivers }
    'reset' { @('/reset') }
    default { throw "verifier_set: unknown mode '$($P.mode)'" }
}
$r = Invoke-Native "$env:SystemRoot\System32\verifier.exe" $arguments
$result = [ordered]@{
    exit_code       = [int]$r.ExitCode
    reboot_required = ([int]$r.ExitCode -eq 2)
    output          = $r.Output
}
Remove-TypeData -TypeName System.Array -ErrorAction SilentlyContinue
$json = ConvertTo-Json -InputObject $result -Compress -Depth 8
[regex]::Replace($json, '[^\x00-\x7F]', { param($m) '\u{0:x4}' -f [int][char]$m.Value })
