# Operation: test_signing_set
# Facility: bcdedit /set testsigning on|off (takes effect at the next boot; refused under Secure Boot with
#   "The value is protected by Secure Boot policy and cannot be modified or deleted")
#   https://learn.microsoft.com/windows-hardware/drivers/install/the-testsigning-boot-configuration-option
#   https://learn.microsoft.com/windows-hardware/drivers/devtest/bcdedit--set
# Facility: Get-BitLockerVolume / Suspend-BitLocker -MountPoint $env:SystemDrive -RebootCount 1 (BitLocker
#   module): testsigning is in the BCD validation profile, so changing it starts BitLocker recovery at
#   the next boot unless protection is suspended; suspended for one restart, it reseals and resumes
#   https://learn.microsoft.com/windows/security/operating-system-security/data-protection/bitlocker/bcd-settings-and-bitlocker
#   https://learn.microsoft.com/powershell/module/bitlocker/suspend-bitlocker
# Parameters: {"enabled": true}
# Result: {"exit_code": int, "reboot_required": bool, "output", "bitlocker_suspended": bool}
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
function Suspend-BitLockerOnce {
    # True when the OS volume's protection was On and is now suspended for one restart.
    if (-not (Get-Command -Name Suspend-BitLocker -ErrorAction SilentlyContinue)) { return $false }
    $vol = Get-BitLockerVolume -MountPoint $env:SystemDrive -ErrorAction SilentlyContinue
    if ($null -eq $vol -or [string]$vol.ProtectionStatus -ne 'On') { return $false }
    $null = Suspend-BitLocker -MountPoint $env:SystemDrive -RebootCount 1
    return $true
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
# Suspended before the change when it is one (an unknown before-state counts as a change).
$suspended = $false
if ($before -ne $enabled) { $suspended = [bool](Suspend-BitLockerOnce) }
$r = Invoke-Native $bcdedit @('/set', 'testsigning', $word)
if ($suspended -and $r.ExitCode -ne 0) {
    $null = Resume-BitLocker -MountPoint $env:SystemDrive
    $suspended = $false
}
$result = [ordered]@{
    exit_code       = [int]$r.ExitCode
    reboot_required = ([int]$r.ExitCode -eq 0 -and $before -ne $enabled)
    output          = $r.Output
    bitlocker_suspended = $suspended
}
Remove-TypeData -TypeName System.Array -ErrorAction SilentlyContinue
$json = ConvertTo-Json -InputObject $result -Compress -Depth 8
[regex]::Replace($json, '[^\x00-\x7F]', { param($m) '\u{0:x4}' -f [int][char]$m.Value })
