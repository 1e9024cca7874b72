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
# Facility: Kernel-Power 41's event data BugcheckCode and BugcheckParameter1..4 (EventRecord.ToXml)
#   https://learn.microsoft.com/troubleshoot/windows-client/performance/event-id-41-restart
#   https://learn.microsoft.com/dotnet/api/system.diagnostics.eventing.reader.eventrecord.toxml
# Parameters: {"since_utc": "2026-11-21T12:00:00.000Z", "report_wait_s"?: 40}
# Result: {"bugchecks": [{"time_utc", "stop_code": int, "parameters": [int, int, int, int], "dump_path"?,
#   "source": "wer-1001"|"kernel-power-41"}], "unexpected_shutdowns": [{"time_utc", "bugcheck_code": int,
#   "parameters": [int, int, int, int]}], "dumps": [{"path", "size": int, "modified_utc"}], "setupapi_tail"}
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
# --- events: 1001 (WER's report, written once WER has processed the dump: possibly minutes after the boot) and
# Kernel-Power 41 (written early in the boot; its event data carries BugcheckCode, decimal, and
# BugcheckParameter1..4, 0 for a power loss). Event data is read from the event XML: locale-free. ---
$hex = '0x([0-9a-fA-F]+)'
$codePattern = $hex + '\s*\(\s*' + (@($hex, $hex, $hex, $hex) -join '\s*,\s*') + '\s*\)'
function ConvertFrom-EventNumber([string]$Text) {
    $t = $Text.Trim()
    if ($t -match '^0x([0-9a-fA-F]+)$') { return [Convert]::ToUInt64($Matches[1], 16) }
    if ($t -match '^[0-9]+$') { return [UInt64]::Parse($t, [Globalization.CultureInfo]::InvariantCulture) }
    return [UInt64]0
}
function Read-CrashEvents {
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
    $found = [ordered]@{ bugchecks = (New-Object System.Collections.Generic.List[object]); shutdowns = (New-Object System.Collections.Generic.List[object]) }
    foreach ($e in @($events | Sort-Object TimeCreated)) {
        if ($e.Id -eq 41 -and $e.ProviderName -eq 'Microsoft-Windows-Kernel-Power') {
            $data = @{}
            foreach ($node in @(([xml]$e.ToXml()).Event.EventData.Data)) { if ($node.Name) { $data[[string]$node.Name] = [string]$node.'#text' } }
            $code = [UInt64]0
            if ($data.ContainsKey('BugcheckCode')) { $code = ConvertFrom-EventNumber $data['BugcheckCode'] }
            $params = New-Object System.Collections.Generic.List[object]
            foreach ($i in 1..4) {
                $v = [UInt64]0
                if ($data.ContainsKey("BugcheckParameter$i")) { $v = ConvertFrom-EventNumber $data["BugcheckParameter$i"] }
                $params.Add($v)
            }
            $found.shutdowns.Add([ordered]@{ time_utc = ConvertTo-UtcIso $e.TimeCreated; bugcheck_code = [int64]$code; parameters = $params })
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
        $found.bugchecks.Add([ordered]@{
                time_utc   = ConvertTo-UtcIso $e.TimeCreated
                stop_code  = [int64][Convert]::ToUInt64($m.Groups[1].Value, 16)
                parameters = $params
                dump_path  = $dump
                source     = 'wer-1001'
            })
    }
    return $found
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
foreach ($f in @($candidates | Sort-Object LastWriteTimeUtc -Descending)) {
    if ($f.LastWriteTimeUtc -lt $since) { continue }
    $dumps.Add([ordered]@{
            path         = $f.FullName
            size         = [int64]$f.Length
            modified_utc = ConvertTo-UtcIso $f.LastWriteTimeUtc
        })
}
# --- a crash without WER's report yet (a 41 with a stop code, or a new dump): poll for 1001, bounded by
# report_wait_s (default 40 s, so the call stays inside a 60 s deadline) ---
$wait = 40.0
if ($null -ne $P.report_wait_s) { $wait = [Math]::Max(0.0, [Math]::Min(300.0, [double]$P.report_wait_s)) }
$until = [DateTime]::UtcNow.AddSeconds($wait)
$ev = Read-CrashEvents
while ($ev.bugchecks.Count -eq 0 -and (@($ev.shutdowns | Where-Object { $_.bugcheck_code -ne 0 }).Count -gt 0 -or $dumps.Count -gt 0) -and [DateTime]::UtcNow -lt $until) {
    Start-Sleep -Milliseconds ([int][Math]::Max(1, [Math]::Min(2000, ($until - [DateTime]::UtcNow).TotalMilliseconds)))
    $ev = Read-CrashEvents
}
$bugchecks = $ev.bugchecks
if ($bugchecks.Count -eq 0) {
    # WER did not report within the wait: the stop code and parameters Kernel-Power 41 logged at boot.
    foreach ($s in $ev.shutdowns) {
        if ($s.bugcheck_code -eq 0) { continue }
        $bugchecks.Add([ordered]@{
                time_utc   = $s.time_utc
                stop_code  = $s.bugcheck_code
                parameters = $s.parameters
                dump_path  = $(if ($dumps.Count -gt 0) { $dumps[0].path } else { $null })
                source     = 'kernel-power-41'
            })
    }
}
# --- setupapi.dev.log tail ---
$tail = ''
$log = Join-Path $env:windir 'inf\setupapi.dev.log'
if ([IO.File]::Exists($log)) { $tail = (@(Get-Content -LiteralPath $log -Tail 40) -join "`n") }
$result = [ordered]@{
    bugchecks            = $bugchecks
    unexpected_shutdowns = $ev.shutdowns
    dumps                = $dumps
    setupapi_tail        = $tail
}
Remove-TypeData -TypeName System.Array -ErrorAction SilentlyContinue
$json = ConvertTo-Json -InputObject $result -Compress -Depth 8
[regex]::Replace($json, '[^\x00-\x7F]', { param($m) '\u{0:x4}' -f [int][char]$m.Value })
