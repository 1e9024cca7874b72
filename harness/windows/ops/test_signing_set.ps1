# Operation: test_signing_set
# Facility: bcdedit /set testsigning on|off (takes effect at the next boot; refused under Secure Boot with
#   "The value is protected by Secure Boot policy and cannot be modified or deleted")
#   https://learn.microsoft.com/windows-hardware/drivers/install/the-testsigning-boot-configuration-option
#   https://learn.microsoft.com/windows-hardware/drivers/devtest/bcdedit--set
# Parameters: {"enabled": true}
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
$bcdedit = "$env:SystemRoot\System32\bcdedit.exe"
$enabled = [bool]$P.enabled
# State before the change: absent from {current} means off. '{current}' is quoted so PowerShell does not
# read it as a script block.
$before = $null
$enum = Invoke-Native $bcdedit @('/enum', '{current}')
if ($enum.ExitCode -eq 0) { $before = ($enum.Output -match '(?m)^\s*testsigning\s+Yes\s*$') }
$word = 'off'
if ($enabled) { $word = 'on' }
$r = Invoke-Native $bcdedit @('/set', 'testsigning', $word)
$result = [ordered]@{
    exit_code       = [int]$r.ExitCode
    reboot_required = ([int]$r.ExitCode -eq 0 -and $before -ne $enabled)
    output          = $r.Output
}
Remove-TypeData -TypeName System.Array -ErrorAction SilentlyContinue
$json = ConvertTo-Json -InputObject $result -Compress -Depth 8
[regex]::Replace($json, '[^\x00-\x7F]', { param($m) '\u{0:x4}' -f [int][char]$m.Value })
