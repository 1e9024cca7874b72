# Operation: crash_evidence
# Facility: Get-WinEvent -FilterHashtable on the System log: event 1001 from
#   Microsoft-Windows-WER-SystemErrorReporting (source "BugCheck": "The bugcheck was: 0x000000e6 (0x..., 0x...,
#   0x..., 0x...). A dump was saved in: C:\Windows\MEMORY.DMP") and Kernel-Power event 41
#   https://learn.microsoft.com/powershell/module/microsoft.powershell.diagnostics/get-winevent?view=powershell-5.1
#   https://learn.microsoft.com/windows-hardware/drivers/debugger/bug-check-0xe6--driver-verifier-dma-violation
# Facility: %SystemRoot%\MEMORY.DMP and %SystemRoot%\Minidump\*.dmp (or the paths configured under
#   HKLM\SYSTEM\CurrentControlSet\Control\CrashControl DumpFile / MinidumpDir)
#   https://learn.microsoft.com/windows-hardware/drivers/debugger/kernel-memory-dump
#   https://learn.microsoft.com/windows-hardware/drivers/debugger/small-memory-dump
# Facility: the last 40 lines of %windir%\inf\setupapi.dev.log
#   https://learn.microsoft.com/windows-hardware/drivers/install/setupapi-text-logs
# Parameters: {"since_utc": "2026-11-21T12:00:00.000Z"}
# Result: {"bugchecks": [{"time_utc", "stop_code": int, "parameters": [int, int, int, int], "dump_path"?}],
#   "unexpected_shutdowns": [{"time_utc"}], "dumps": [{"path", "size": int, "modified_utc"}], "setupapi_tail"}
param([Parameter(Mandatory = $true)][string]$ParamsBase64)
$ErrorActionPreference = 'Stop'
$ProgressPreference = 'SilentlyContinue'
$P = [Text.Encoding]::UTF8.GetString([Convert]::FromBase64String($ParamsBase64)) | ConvertFrom-Json
function ConvertTo-UtcIso([datetime]$Value) {
    $Value.ToUniversalTime().ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", [Globalization.CultureInfo]::InvariantCulture)
}
# PS 5.1's ConvertFrom-Json leaves ISO strings as strings.
$styles = [Globalization.DateTimeStyles]::AdjustToUniversal -bor [Globalization.DateTimeStyles]::AssumeUniversal
$since = [DateTime]::Parse([string]$P.since_utc, [Globalization.CultureInfo]::InvariantCulture, $styles)
# --- events ---
$events = @()
try {
    # Providers are checked below rather than in the filter: 1001's provider is registered under its
    # manifest name but shown with the event source "BugCheck".
    $filter = @{ LogName = 'System'; Id = @(1001, 41); StartTime = $since.ToLocalTime() }
    $events = @(Get-WinEvent -FilterHashtable $filter -ErrorAction Stop)
} catch {
    # No match is reported as an error, not as an empty result.
    if ($_.FullyQualifiedErrorId -notlike 'NoMatchingEventsFound*') { throw }
}
$bugchecks = New-Object System.Collections.Generic.List[object]
$shutdowns = New-Object System.Collections.Generic.List[object]
$hex = '0x([0-9a-fA-F]+)'
$codePattern = $hex + '\s*\(\s*' + (@($hex, $hex, $hex, $hex) -join '\s*,\s*') + '\s*\)'
foreach ($e in @($events | Sort-Object TimeCreated)) {
    if ($e.Id -eq 41 -and $e.ProviderName -eq 'Microsoft-Windows-Kernel-Power') {
        $shutdowns.Add([ordered]@{ time_utc = ConvertTo-UtcIso $e.TimeCreated })
        continue
    }
    if ($e.Id -ne 1001 -or $e.ProviderName -notin @('Microsoft-Windows-WER-SystemErrorReporting', 'BugCheck')) { continue }
    # Properties[0] is the "0x000000e6 (p1, p2, p3, p4)" text and Properties[1] the dump path; the
    # rendered message (localized around the numbers) is the fallback.
    $props = @($e.Properties | ForEach-Object { [string]$_.Value })
    $text = ($props -join ' ') + ' ' + [string]$e.Message
    $m = [regex]::Match($text, $codePattern)
    if (-not $m.Success) { continue }
    # Parameters are 64-bit pointers and flags: UInt64 so the high bit does not make them negative.
    $params = New-Object System.Collections.Generic.List[object]
    foreach ($g in 2..5) { $params.Add([Convert]::ToUInt64($m.Groups[$g].Value, 16)) }
    $dump = $null
    foreach ($candidate in $props) { if ($candidate -match '^[A-Za-z]:\\.*\.dmp$') { $dump = $candidate; break } }
    if ($null -eq $dump -and $e.Message -match '([A-Za-z]:\\[^\r\n]*?\.dmp)') { $dump = $Matches[1] }
    $bugchecks.Add([ordered]@{
            time_utc   = ConvertTo-UtcIso $e.TimeCreated
            stop_code  = [int64][Convert]::ToUInt64($m.Groups[1].Value, 16)
            parameters = $params
            dump_path  = $dump
        })
}
# --- dump files ---
$crash = Get-ItemProperty -LiteralPath 'HKLM:\SYSTEM\CurrentControlSet\Control\CrashControl' -ErrorAction SilentlyContinue
$dumpFile = Join-Path $env:SystemRoot 'MEMORY.DMP'
$miniDir = Join-Path $env:SystemRoot 'Minidump'
if ($null -ne $crash -and $crash.DumpFile) { $dumpFile = [Environment]::ExpandEnvironmentVariables([string]$crash.DumpFile) }
if ($null -ne $crash -and $crash.MinidumpDir) { $miniDir = [Environment]::ExpandEnvironmentVariables([string]$crash.MinidumpDir) }
$candidates = New-Object System.Collections.Generic.List[object]
if ([IO.File]::Exists($dumpFile)) { $candidates.Add([IO.FileInfo]::new($dumpFile)) }
if ([IO.Directory]::Exists($miniDir)) { foreach ($f in [IO.DirectoryInfo]::new($miniDir).GetFiles('*.dmp')) { $candidates.Add($f) } }
$dumps = New-Object System.Collections.Generic.List[object]
foreach ($f in $candidates) {
    if ($f.LastWriteTimeUtc -lt $since) { continue }
    $dumps.Add([ordered]@{
            path         = $f.FullName
            size         = [int64]$f.Length
            modified_utc = ConvertTo-UtcIso $f.LastWriteTimeUtc
        })
}
# --- setupapi.dev.log tail ---
$tail = ''
$log = Join-Path $env:windir 'inf\setupapi.dev.log'
if ([IO.File]::Exists($log)) { $tail = (@(Get-Content -LiteralPath $log -Tail 40) -join "`n") }
$result = [ordered]@{
    bugchecks            = $bugchecks
    unexpected_shutdowns = $shutdowns
    dumps                = $dumps
    setupapi_tail        = $tail
}
Remove-TypeData -TypeName System.Array -ErrorAction SilentlyContinue
$json = ConvertTo-Json -InputObject $result -Compress -Depth 8
[regex]::Replace($json, '[^\x00-\x7F]', { param($m) '\u{0:x4}' -f [int][char]$m.Value })
