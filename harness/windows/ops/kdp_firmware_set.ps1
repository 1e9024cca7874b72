# Operation: kdp_firmware_set
# Facility: Lenovo ThinkPad BIOS WMI in root\wmi: Lenovo_SetBiosSetting.SetBiosSetting("KernelDMAProtection,Enable")
#   then Lenovo_SaveBiosSettings.SaveBiosSettings() (no argument when no BIOS password is set); both
#   return a string ("Success", "Access Denied", ...). Enabling it forces VirtualizationTechnology and
#   VTdFeature on. A supervisor password blocks the change.
#   https://docs.lenovocdrt.com/ref/bios/settings/thinkpad/virtualization
#   Lenovo "ThinkPad BIOS Setup using WMI" deployment guide (SaveBiosSettings without a password)
# Facility: Dell BIOS WMI: root\dcim\sysman\biosattributes; the DMA protection attribute's name is read
#   from EnumerationAttribute at runtime (the one whose AttributeName matches 'dma', preferring
#   'kernel'), then BIOSAttributeInterface.SetAttribute(SecType, SecHndCount, SecHandle, AttributeName,
#   AttributeValue); Status 0 Success, 1 Failed, 2 Invalid Parameter, 3 Access Denied, 4 Not Supported,
#   5 Memory Error, 6 Protocol Error
#   https://www.configjon.com/dell-bios-settings-management-wmi/
# Facility: Get-BitLockerVolume / Suspend-BitLocker -MountPoint $env:SystemDrive -RebootCount 1 (BitLocker
#   module): a firmware change alters the platform measurements BitLocker's TPM protector is sealed to,
#   so it is suspended for one restart before the change
#   https://learn.microsoft.com/windows/security/operating-system-security/data-protection/bitlocker/bcd-settings-and-bitlocker
#   https://learn.microsoft.com/powershell/module/bitlocker/suspend-bitlocker
# Parameters: {"vendor": "lenovo-wmi"|"dell-wmi", "enabled": true}
# Result: {"vendor", "changed": bool, "reboot_required": bool, "return_value", "attribute",
#   "bitlocker_suspended": bool}
param([Parameter(Mandatory = $true)][string]$ParamsBase64)
$ErrorActionPreference = 'Stop'
$ProgressPreference = 'SilentlyContinue'
$P = [Text.Encoding]::UTF8.GetString([Convert]::FromBase64String($ParamsBase64)) | ConvertFrom-Json
function Suspend-BitLockerOnce {
    # True when the OS volume's protection was On and is now suspended for one restart.
    if (-not (Get-Command -Name Suspend-BitLocker -ErrorAction SilentlyContinue)) { return $false }
    $vol = Get-BitLockerVolume -MountPoint $env:SystemDrive -ErrorAction SilentlyContinue
    if ($null -eq $vol -or [string]$vol.ProtectionStatus -ne 'On') { return $false }
    $null = Suspend-BitLocker -MountPoint $env:SystemDrive -RebootCount 1
    return $true
}
$vendor = [string]$P.vendor
$enabled = [bool]$P.enabled
$changed = $false
$returnValue = $null
$attribute = $null
$suspended = $false
switch ($vendor) {
    'lenovo-wmi' {
        $want = 'Disable'
        if ($enabled) { $want = 'Enable' }
        $attribute = 'KernelDMAProtection'
        $current = $null
        foreach ($s in @(Get-CimInstance -Namespace 'root\wmi' -ClassName Lenovo_BiosSetting)) {
            $text = ([string]$s.CurrentSetting).Split(';')[0]
            if ($text -like 'KernelDMAProtection,*') { $current = $text.Substring($text.IndexOf(',') + 1) }
        }
        if ($null -eq $current) { throw 'kdp_firmware_set: this Lenovo BIOS has no KernelDMAProtection setting' }
        if ($current -eq $want) {
            $returnValue = $null  # already as wanted: no WMI method called
        } else {
            $suspended = [bool](Suspend-BitLockerOnce)
            $setter = Get-CimInstance -Namespace 'root\wmi' -ClassName Lenovo_SetBiosSetting
            $r = Invoke-CimMethod -InputObject $setter -MethodName SetBiosSetting -Arguments @{ parameter = ('KernelDMAProtection,' + $want) }
            $returnValue = [string]$r.return
            if ($returnValue -eq 'Success') {
                # SetBiosSetting only stages the value; SaveBiosSettings commits it for the next boot.
                # Without a BIOS password the method takes no argument.
                $saver = Get-CimInstance -Namespace 'root\wmi' -ClassName Lenovo_SaveBiosSettings
                $s = Invoke-CimMethod -InputObject $saver -MethodName SaveBiosSettings
                $returnValue = [string]$s.return
                $changed = ($returnValue -eq 'Success')
            }
        }
    }
    'dell-wmi' {
        $want = 'Disabled'
        if ($enabled) { $want = 'Enabled' }
        $all = @(Get-CimInstance -Namespace 'root\dcim\sysman\biosattributes' -ClassName EnumerationAttribute |
                Where-Object { [string]$_.AttributeName -match 'dma' })
        $attr = @($all | Where-Object { [string]$_.AttributeName -match 'kernel' }) + $all | Select-Object -First 1
        if ($null -eq $attr) { throw 'kdp_firmware_set: this Dell BIOS has no DMA protection attribute (EnumerationAttribute matching dma)' }
        $attribute = [string]$attr.AttributeName
        $current = [string](@($attr.CurrentValue) | Select-Object -First 1)
        if ($current -eq $want) {
            $returnValue = $null  # already as wanted: no WMI method called
        } else {
            $suspended = [bool](Suspend-BitLockerOnce)
            $iface = Get-CimInstance -Namespace 'root\dcim\sysman\biosattributes' -ClassName BIOSAttributeInterface
            # SecType 0 / no handle: no BIOS admin password. With one set, Dell returns Access Denied.
            $r = Invoke-CimMethod -InputObject $iface -MethodName SetAttribute -Arguments @{
                SecType = [uint32]0; SecHndCount = [uint32]0; SecHandle = [byte[]]@()
                AttributeName = $attribute; AttributeValue = $want
            }
            $names = @('Success', 'Failed', 'Invalid Parameter', 'Access Denied', 'Not Supported', 'Memory Error', 'Protocol Error')
            $status = [int]$r.Status
            $returnValue = "Status $status"
            if ($status -ge 0 -and $status -lt $names.Count) { $returnValue = $names[$status] }
            $changed = ($status -eq 0)
        }
    }
    default { throw "kdp_firmware_set: unknown vendor '$vendor' (lenovo-wmi, dell-wmi)" }
}
if ($suspended -and -not $changed) {
    $null = Resume-BitLocker -MountPoint $env:SystemDrive
    $suspended = $false
}
$result = [ordered]@{
    vendor              = $vendor
    changed             = $changed
    reboot_required     = $changed
    return_value        = $returnValue
    attribute           = $attribute
    bitlocker_suspended = $suspended
}
Remove-TypeData -TypeName System.Array -ErrorAction SilentlyContinue
$json = ConvertTo-Json -InputObject $result -Compress -Depth 8
[regex]::Replace($json, '[^\x00-\x7F]', { param($m) '\u{0:x4}' -f [int][char]$m.Value })
