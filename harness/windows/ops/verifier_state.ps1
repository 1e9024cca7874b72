# Operation: verifier_state
# Facility: verifier /querysettings (settings for the next boot) and verifier /query (what runs now,
#   volatile changes included); exit codes 0 success, 1 error, 2 reboot needed. /query is printed in the
#   display language and its layout is undocumented: read by shape, unknown when unreadable
#   https://learn.microsoft.com/windows-hardware/drivers/devtest/verifier-command-line
# Facility: HKLM\SYSTEM\CurrentControlSet\Control\Session Manager\Memory Management values
#   VerifyDriverLevel (REG_DWORD flags) and VerifyDrivers (REG_SZ, space-separated) (docs/domain.md section 5)
#   https://learn.microsoft.com/windows-hardware/drivers/devtest/dma-verification
# Parameters: {}
# Result: {"pending": {"flags": int?, "drivers": [...]}, "active": {"flags": int?, "drivers": [...]},
#   "active_known": bool, "reboot_pending": bool?}
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
function Get-DriverList([string]$Text) {
    $names = New-Object System.Collections.Generic.List[string]
    foreach ($n in ($Text -split '[\s,;]+')) {
        if ($n -and -not $names.Contains($n.ToLowerInvariant())) { $names.Add($n.ToLowerInvariant()) }
    }
    return ,$names
}
$verifier = "$env:SystemRoot\System32\verifier.exe"
# --- pending (next boot): the registry, cross-checked with /querysettings when the registry is silent ---
$mm = Get-ItemProperty -LiteralPath 'HKLM:\SYSTEM\CurrentControlSet\Control\Session Manager\Memory Management'
$pendingFlags = $null
if ($null -ne $mm.VerifyDriverLevel) {
    # REG_DWORD arrives as Int32; flags above 0x7FFFFFFF must not turn negative.
    $pendingFlags = [int64][BitConverter]::ToUInt32([BitConverter]::GetBytes([int32]$mm.VerifyDriverLevel), 0)
}
$pendingDrivers = Get-DriverList ([string]$mm.VerifyDrivers)
$qs = Invoke-Native $verifier @('/querysettings')
if ($null -eq $pendingFlags -and $qs.Output -match '(?im)^\s*Verifier Flags\s*:\s*0x([0-9a-f]+)') {
    $pendingFlags = [int64][Convert]::ToUInt32($Matches[1], 16)
}
if ($pendingDrivers.Count -eq 0 -and $qs.Output -match '(?is)Verified drivers\s*:\s*(.*)$') {
    # After "Verified drivers:" /querysettings lists one driver name per line ("None" when empty).
    foreach ($line in ($Matches[1] -split "`n")) {
        if ($line -match '^\s*([\w.\-]+\.sys)\s*$') { $pendingDrivers.Add($Matches[1].ToLowerInvariant()) }
    }
}
# A level with no driver list (or the reverse) does not verify anything at boot.
if ($pendingDrivers.Count -eq 0) { $pendingFlags = $null }
# --- active (now): verifier /query. Its labels and its "nothing verified" sentence are in the display
# language; driver file names and the 8-digit hexadecimal level are not. So the English sentence means none,
# and otherwise the output is read by its shape ("<label>: x.sys, ..." lines and one "<label>: 000000xx"
# line). Output that shows neither is unknown (active_known false), never "off".
$q = Invoke-Native $verifier @('/query')
$activeFlags = $null
$activeDrivers = New-Object System.Collections.Generic.List[string]
$activeKnown = $false
if ($q.ExitCode -eq 0) {
    if ($q.Output -match '(?i)No drivers are currently verified') {
        $activeKnown = $true
    } else {
        foreach ($m in [regex]::Matches($q.Output, '(?im)^[^:\r\n]*:\s*([\w.\-]+\.sys)\b')) {
            $n = $m.Groups[1].Value.ToLowerInvariant()
            if (-not $activeDrivers.Contains($n)) { $activeDrivers.Add($n) }
        }
        if ($q.Output -match '(?im)^[^:\r\n]*:\s*([0-9a-f]{8})\s*$') { $activeFlags = [int64][Convert]::ToUInt32($Matches[1], 16) }
        if ($activeDrivers.Count -gt 0 -and $null -ne $activeFlags) {
            $activeKnown = $true
        } else {
            $activeDrivers.Clear()
            $activeFlags = $null
        }
    }
}
$pendingKey = ($pendingFlags, (@($pendingDrivers | Sort-Object) -join ' ')) -join '|'
$activeKey = ($activeFlags, (@($activeDrivers | Sort-Object) -join ' ')) -join '|'
$rebootPending = $null
if ($activeKnown) { $rebootPending = ($pendingKey -ne $activeKey) }
$result = [ordered]@{
    pending        = [ordered]@{ flags = $pendingFlags; drivers = $pendingDrivers }
    active         = [ordered]@{ flags = $activeFlags; drivers = $activeDrivers }
    active_known   = $activeKnown
    reboot_pending = $rebootPending
}
Remove-TypeData -TypeName System.Array -ErrorAction SilentlyContinue
$json = ConvertTo-Json -InputObject $result -Compress -Depth 8
[regex]::Replace($json, '[^\x00-\x7F]', { param($m) '\u{0:x4}' -f [int][char]$m.Value })
