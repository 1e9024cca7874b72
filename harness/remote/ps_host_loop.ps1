# harness-ps-host: v1
# The harness's persistent PowerShell host (Windows PowerShell 5.1): started ONCE per transport
# connection as `powershell.exe -NoProfile -NonInteractive -EncodedCommand <this script>` (comment
# lines other than the first are stripped before encoding), then fed one request per stdin line:
#     <nonce> <base64 of the UTF-8 script text>
# Each script runs in a fresh PowerShell instance on ONE reused runspace (so `Add-Type` compiles
# once per connection); the answer is written in one piece: the script's output, then the end frame
#     #<harness-end:<nonce>:<exit code>:<base64 of the UTF-8 error text>>CRLF
# Exit code: `exit N` -> N; a terminating error (throw) -> 1; else the top-level pipeline's HadErrors
# (errors written inside an operation's `& {...}` wrapper do not set it; operations use 'Stop') -> 1; else 0.
# No progress records: with stderr redirected they would reach the caller as CLIXML.
# Documented APIs relied on:
#   [Console]::In.ReadLine(): TextReader.ReadLine returns $null at the end of stdin (loop ends)
#     https://learn.microsoft.com/dotnet/api/system.io.textreader.readline
#   [runspacefactory]::CreateRunspace() with no host: the runspace gets PowerShell's internal
#     default host, whose SetShouldExit does nothing, so `exit` in a script cannot end this process
#     https://learn.microsoft.com/dotnet/api/system.management.automation.runspaces.runspacefactory.createrunspace
#   [powershell]::Create(), .AddScript(string), .Invoke(input, output, PSInvocationSettings),
#   .HadErrors, .Streams.Error, .Dispose()
#     https://learn.microsoft.com/dotnet/api/system.management.automation.powershell
#   PSInvocationSettings.ExposeFlowControlExceptions = $true: "allows an unhandled flow control
#     exception to propagate to a caller invoking the PowerShell object", i.e. `exit N` reaches this
#     loop as System.Management.Automation.ExitException with .Argument = N (set only if present)
#     https://learn.microsoft.com/dotnet/api/system.management.automation.psinvocationsettings.exposeflowcontrolexceptions
#   Out-String: non-string output formatted as the console would print it
#     https://learn.microsoft.com/powershell/module/microsoft.powershell.utility/out-string
#   [Console]::OpenStandardOutput(), Stream.Write, Stream.Flush: the answer as UTF-8 bytes, whatever
#     the console code page
#     https://learn.microsoft.com/dotnet/api/system.console.openstandardoutput
$ErrorActionPreference = 'Continue'
$ProgressPreference = 'SilentlyContinue'
$utf8 = New-Object System.Text.UTF8Encoding($false)
$stdout = [Console]::OpenStandardOutput()
$rs = [runspacefactory]::CreateRunspace()
$rs.ApartmentState = [System.Threading.ApartmentState]::STA
$rs.ThreadOptions = [System.Management.Automation.Runspaces.PSThreadOptions]::ReuseThread
$rs.Open()
$settings = New-Object System.Management.Automation.PSInvocationSettings
if ($settings.PSObject.Properties['ExposeFlowControlExceptions']) { $settings.ExposeFlowControlExceptions = $true }
while ($true) {
    $line = [Console]::In.ReadLine()
    if ($null -eq $line) { break }
    $line = $line.Trim()
    $cut = $line.IndexOf(' ')
    if ($cut -lt 1) { continue }
    $nonce = $line.Substring(0, $cut)
    $out = New-Object System.Text.StringBuilder
    $err = New-Object System.Text.StringBuilder
    $code = 0
    $ps = [powershell]::Create()
    $results = New-Object 'System.Management.Automation.PSDataCollection[psobject]'
    try {
        $ps.Runspace = $rs
        $text = $utf8.GetString([Convert]::FromBase64String($line.Substring($cut + 1)))
        [void]$ps.AddScript($text)
        $in = New-Object 'System.Management.Automation.PSDataCollection[psobject]'
        $in.Complete()
        $ps.Invoke($in, $results, $settings)
        if ($ps.HadErrors) { $code = 1 }
    } catch {
        $e = $_.Exception
        while ($e -is [System.Management.Automation.MethodInvocationException] -and $null -ne $e.InnerException) { $e = $e.InnerException }
        if ($e.GetType().FullName -eq 'System.Management.Automation.ExitException') {
            $code = 1
            try { $code = [int]$e.Argument } catch { $code = 1 }
        } else {
            $code = 1
            if ($null -ne $e.ErrorRecord) { [void]$err.Append(($e.ErrorRecord | Out-String)) } else { [void]$err.AppendLine($e.Message) }
        }
    } finally {
        foreach ($r in $ps.Streams.Error) { [void]$err.Append(($r | Out-String)) }
        $ps.Dispose()
    }
    foreach ($o in $results) {
        if ($null -eq $o) { continue }
        if ($o -is [string]) { [void]$out.Append([string]$o).Append("`r`n") } else { [void]$out.Append(($o | Out-String -Width 4096)) }
    }
    $frame = '#<harness-end:' + $nonce + ':' + $code + ':' + [Convert]::ToBase64String($utf8.GetBytes($err.ToString())) + ">`r`n"
    $bytes = $utf8.GetBytes($out.ToString() + $frame)
    $stdout.Write($bytes, 0, $bytes.Length)
    $stdout.Flush()
}
$rs.Close()
