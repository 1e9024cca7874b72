# Operation: bitlocker_state
# Facility: Get-BitLockerVolume -MountPoint $env:SystemDrive (BitLocker module): ProtectionStatus (On; Off when
#   decrypted or while protection is suspended), VolumeStatus, KeyProtector.KeyProtectorType. Absent on
#   editions without the BitLocker module (available: false)
#   https://learn.microsoft.com/powershell/module/bitlocker/get-bitlockervolume
# Parameters: {}
# Result: {"available": bool, "mount_point", "protection_status"?, "volume_status"?, "key_protectors": [...]}
param([Parameter(Mandatory = $true)][string]$ParamsBase64)
$ErrorActionPreference = 'Stop'
$ProgressPreference = 'SilentlyContinue'
$P = [Text.Encoding]::UTF8.GetString([Convert]::FromBase64String($ParamsBase64)) | ConvertFrom-Json
$available = $false
$protection = $null
$volumeStatus = $null
$protectors = @()
if (Get-Command -Name Get-BitLockerVolume -ErrorAction SilentlyContinue) {
    $vol = Get-BitLockerVolume -MountPoint $env:SystemDrive -ErrorAction SilentlyContinue
    if ($null -ne $vol) {
        $available = $true
        $protection = [string]$vol.ProtectionStatus
        $volumeStatus = [string]$vol.VolumeStatus
        $protectors = @($vol.KeyProtector | ForEach-Object { [string]$_.KeyProtectorType })
    }
}
$result = [ordered]@{
    available         = $available
    mount_point       = [string]$env:SystemDrive
    protection_status = $protection
    volume_status     = $volumeStatus
    key_protectors    = $protectors
}
Remove-TypeData -TypeName System.Array -ErrorAction SilentlyContinue
$json = ConvertTo-Json -InputObject $result -Compress -Depth 8
[regex]::Replace($json, '[^\x00-\x7F]', { param($m) '\u{0:x4}' -f [int][char]$m.Value })
