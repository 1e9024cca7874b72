# Operation: kdp_firmware_set
# Facility: Lenovo ThinkPad BIOS WMI in root\wmi: Lenovo_SetBiosSetting.SetBiosSetting("KernelDMAProtection,Enable")
#   then Lenovo_SaveBiosSettings.SaveBiosSettings(""); both return a string ("Success", "Access Denied", ...).
#   Enabling it forces VirtualizationTechnology and VTdFeature on. A supervisor password blocks the change.
#   https://docs.lenovocdrt.com/ref/bios/settings/thinkpad/virtualization
# Facility: Dell BIOS WMI: root\dcim\sysman\biosattributes BIOSAttributeInterface.SetAttribute on
#   "KernelDmaProtection" ("Enabled"/"Disabled"); Status 0 Success, 1 Failed, 2 Invalid Parameter,
#   3 Access Denied, 4 Not Supported, 5 Memory Error, 6 Protocol Error
#   https://www.configjon.com/dell-bios-settings-management-wmi/
# Parameters: {"vendor": "lenovo-wmi"|"dell-wmi", "enabled": true}
# Result: {"vendor", "changed": bool, "reboot_required": bool, "return_value"}
param([Parameter(Mandatory = $true)][string]$ParamsBase64)
$ErrorActionPreference = 'Stop'
$ProgressPreference = 'SilentlyContinue'
$P = [Text.Encoding]::UTF8.GetString([Convert]::FromBase64String($ParamsBase64)) | ConvertFrom-Json
$vendor = [string]$P.vendor
$enabled = [bool]$P.enabled
$changed = $false
$returnValue = $null
switch ($vendor) {
    'lenovo-wmi' {
        $want = 'Disable'
        if ($enabled) { $want = 'Enable' }
        $current = $null
        foreach ($s in @(Get-CimInstance -Namespace 'root\wmi' -ClassName Lenovo_BiosSetting)) {
            $text = ([string]$s.CurrentSetting).Split(';')[0]
            if ($text -like 'KernelDMAProtection,*') { $current = $text.Substring($text.IndexOf(',') + 1) }
        }
        if ($null -eq $current) { throw 'kdp_firmware_set: this Lenovo BIOS has no KernelDMAProtection setting' }
        if ($current -eq $want) {
            $returnValue = $null  # already as wanted: no WMI method called
        } else {
            $setter = Get-CimInstance -Namespace 'root\wmi' -ClassName Lenovo_SetBiosSetting
            $r = Invoke-CimMethod -InputObject $setter -MethodName SetBiosSetting -Arguments @{ parameter = ('KernelDMAProtection,' + $want) }
            $returnValue = [string]$r.return
            if ($returnValue -eq 'Success') {
                # SetBiosSetting only stages the value; SaveBiosSettings commits it for the next boot.
                $saver = Get-CimInstance -Namespace 'root\wmi' -ClassName Lenovo_SaveBiosSettings
                $s = Invoke-CimMethod -InputObject $saver -MethodName SaveBiosSettings -Arguments @{ parameter = '' }
                $returnValue = [string]$s.return
                $changed = ($returnValue -eq 'Success')
            }
        }
    }
    'dell-wmi' {
        $want = 'Disabled'
        if ($enabled) { $want = 'Enabled' }
        $attr = @(Get-CimInstance -Namespace 'root\dcim\sysman\biosattributes' -ClassName EnumerationAttribute |
                Where-Object { $_.AttributeName -eq 'KernelDmaProtection' }) | Select-Object -First 1
        if ($null -eq $attr) { throw 'kdp_firmware_set: this Dell BIOS has no KernelDmaProtection attribute' }
        $current = [string](@($attr.CurrentValue) | Select-Object -First 1)
        if ($current -eq $want) {
            $returnValue = $null  # already as wanted: no WMI method called
        } else {
            $iface = Get-CimInstance -Namespace 'root\dcim\sysman\biosattributes' -ClassName BIOSAttributeInterface
            # SecType 0 / no handle: no BIOS admin password. With one set, Dell returns Access Denied.
            $r = Invoke-CimMethod -InputObject $iface -MethodName SetAttribute -Arguments @{
                SecType = [uint32]0; SecHndCount = [uint32]0; SecHandle = [byte[]]@()
                AttributeName = 'KernelDmaProtection'; AttributeValue = $want
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
$result = [ordered]@{
    vendor          = $vendor
    changed         = $changed
    reboot_required = $changed
    return_value    = $returnValue
}
Remove-TypeData -TypeName System.Array -ErrorAction SilentlyContinue
$json = ConvertTo-Json -InputObject $result -Compress -Depth 8
[regex]::Replace($json, '[^\x00-\x7F]', { param($m) '\u{0:x4}' -f [int][char]$m.Value })
