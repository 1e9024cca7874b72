# Operation: verifier_set
# Facility: verifier /flags 0x<hex> /driver a.sys b.sys (next boot); volatile (now, lost at reboot) as the two
#   documented commands verifier /volatile /flags 0x<hex>, then verifier /volatile /adddriver a.sys, each exit
#   code checked; on Windows 11 (build 22000+) when /volatile is refused, verifier /dif <classes> /now /driver
#   a.sys; verifier /reset. Exit code 2 = EXIT_CODE_REBOOT_NEEDED.
#   https://learn.microsoft.com/windows-hardware/drivers/devtest/verifier-command-line
#   https://learn.microsoft.com/windows-hardware/drivers/devtest/using-volatile-settings
# Parameters: {"mode": "persistent"|"volatile"|"reset", "flags": 128, "drivers": ["mydrv.sys"]}
# Result: {"exit_code": int, "reboot_required": bool, "output", "method": "persistent"|"reset"|"volatile"|"dif-now"}
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
$verifier = "$env:SystemRoot\System32\verifier.exe"
$method = [string]$P.mode
$outputs = New-Object System.Collections.Generic.List[string]
switch ([string]$P.mode) {
    'persistent' { $r = Invoke-Native $verifier (@('/flags', $flags, '/driver') + $drivers); $outputs.Add($r.Output) }
    'reset' { $r = Invoke-Native $verifier @('/reset'); $outputs.Add($r.Output) }
    'volatile' {
        if ($drivers.Count -eq 0) { throw 'verifier_set: volatile mode needs at least one driver' }
        # Two documented commands, each checked: the flags (they replace the running flags), then the drivers.
        $r = Invoke-Native $verifier @('/volatile', '/flags', $flags)
        $outputs.Add($r.Output)
        $build = [int](Get-CimInstance -ClassName Win32_OperatingSystem).BuildNumber
        if ($r.ExitCode -ne 0 -and $build -ge 22000) {
            # /volatile refused (it is being retired): Windows 11's /dif <rule classes> /now, where rule class n
            # is flag bit n-1 (8 = DMA checking, 0x80).
            $classes = @(0..31 | Where-Object { ([int64]$P.flags -shr $_) -band 1 } | ForEach-Object { [string]($_ + 1) })
            $r = Invoke-Native $verifier (@('/dif') + $classes + @('/now', '/driver') + $drivers)
            $outputs.Add($r.Output)
            $method = 'dif-now'
        } elseif ($r.ExitCode -eq 0) {
            $r = Invoke-Native $verifier (@('/volatile', '/adddriver') + $drivers)
            $outputs.Add($r.Output)
        }
    }
    default { throw "verifier_set: unknown mode '$($P.mode)'" }
}
$result = [ordered]@{
    exit_code       = [int]$r.ExitCode
    reboot_required = ([string]$P.mode -ne 'volatile' -and [int]$r.ExitCode -eq 2)
    output          = ($outputs -join "`n")
    method          = $method
}
Remove-TypeData -TypeName System.Array -ErrorAction SilentlyContinue
$json = ConvertTo-Json -InputObject $result -Compress -Depth 8
[regex]::Replace($json, '[^\x00-\x7F]', { param($m) '\u{0:x4}' -f [int][char]$m.Value })
