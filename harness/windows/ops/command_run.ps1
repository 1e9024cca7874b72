# Operation: command_run
# Facility: cmd.exe /d /s /c "<command line>" through System.Diagnostics.Process
#   https://learn.microsoft.com/windows-server/administration/windows-commands/cmd
#   https://learn.microsoft.com/dotnet/api/system.diagnostics.processstartinfo
# Parameters: {"command": "sc.exe query mydriver"}
# Result: {"exit_code": int, "output"}
param([Parameter(Mandatory = $true)][string]$ParamsBase64)
$ErrorActionPreference = 'Stop'
$ProgressPreference = 'SilentlyContinue'
$P = [Text.Encoding]::UTF8.GetString([Convert]::FromBase64String($ParamsBase64)) | ConvertFrom-Json
# The parameter IS a cmd.exe command line, so it goes to cmd.exe, never to PowerShell. `& cmd.exe /c $x`
# would let PS 5.1's native-argument quoting re-quote a command that already contains quotes; with
# /s /c "<line>" cmd.exe strips exactly the outer pair and runs the line verbatim.
$psi = New-Object System.Diagnostics.ProcessStartInfo
$psi.FileName = "$env:SystemRoot\System32\cmd.exe"
$psi.Arguments = '/d /s /c "' + [string]$P.command + '"'
$psi.UseShellExecute = $false
$psi.CreateNoWindow = $true
$psi.RedirectStandardInput = $true
$psi.RedirectStandardOutput = $true
$psi.RedirectStandardError = $true
$proc = [System.Diagnostics.Process]::Start($psi)
# Closed stdin: a command that prompts gets EOF instead of hanging the shell.
$proc.StandardInput.Close()
# stderr read asynchronously while stdout is drained, so neither pipe fills and deadlocks the child.
$stderrTask = $proc.StandardError.ReadToEndAsync()
$stdout = $proc.StandardOutput.ReadToEnd()
$proc.WaitForExit()
$stderr = $stderrTask.Result
$output = $stdout
if ($stderr) { $output = $output + $stderr }
$result = [ordered]@{
    exit_code = [int]$proc.ExitCode
    output    = $output.TrimEnd()
}
Remove-TypeData -TypeName System.Array -ErrorAction SilentlyContinue
$json = ConvertTo-Json -InputObject $result -Compress -Depth 8
[regex]::Replace($json, '[^\x00-\x7F]', { param($m) '\u{0:x4}' -f [int][char]$m.Value })
