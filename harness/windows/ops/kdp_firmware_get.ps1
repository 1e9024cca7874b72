# Operation: kdp_firmware_get
# Facility: Lenovo ThinkPad BIOS WMI, root\wmi Lenovo_BiosSetting.CurrentSetting ("KernelDMAProtection,Enable")
#   https://docs.lenovocdrt.com/ref/bios/settings/thinkpad/virtualization
# Facility: Dell BIOS WMI (2018+ models), root\dcim\sysman\biosattributes EnumerationAttribute
#   (CurrentValue "Enabled"/"Disabled"); the DMA protection attribute's name is not documented per
#   model, so "enabled" comes from the attribute whose name matches 'dma' (one matching 'kernel' first)
#   https://www.configjon.com/dell-bios-settings-management-wmi/
# Parameters: {"vendor": "lenovo-wmi"|"dell-wmi"}
# Result: {"vendor", "settings": {"NAME": "value"}, "enabled": bool?}
param([Parameter(Mandatory = $true)][string]$ParamsBase64)
$ErrorActionPreference = 'Stop'
$ProgressPreference = 'SilentlyContinue'
$P = [Text.Encoding]::UTF8.GetString([Convert]::FromBase64String($ParamsBase64)) | ConvertFrom-Json
$vendor = [string]$P.vendor
# Only the settings that decide IOMMU / Kernel DMA Protection are reported, not the whole BIOS.
$relevant = '(?i)dma|vtd|vt-d|directio|virtualization|amdvt|iommu|thunderbolt'
$settings = [ordered]@{}
$enabled = $null
switch ($vendor) {
    'lenovo-wmi' {
        foreach ($s in @(Get-CimInstance -Namespace 'root\wmi' -ClassName Lenovo_BiosSetting)) {
            # "Name,Value"; newer models append ";[Optional:Disable,Enable]" to CurrentSetting.
            $text = ([string]$s.CurrentSetting).Split(';')[0]
            $comma = $text.IndexOf(',')
            if ($comma -lt 1) { continue }
            $name = $text.Substring(0, $comma)
            $value = $text.Substring($comma + 1)
            if ($name -match $relevant) { $settings[$name] = $value }
            if ($name -eq 'KernelDMAProtection') { $enabled = ($value -eq 'Enable') }
        }
    }
    'dell-wmi' {
        foreach ($a in @(Get-CimInstance -Namespace 'root\dcim\sysman\biosattributes' -ClassName EnumerationAttribute)) {
            $name = [string]$a.AttributeName
            $value = [string](@($a.CurrentValue) | Select-Object -First 1)
            if ($name -match $relevant) { $settings[$name] = $value }
            if ($name -match 'dma' -and ($null -eq $enabled -or $name -match 'kernel')) { $enabled = ($value -eq 'Enabled') }
        }
    }
    default { throw "kdp_firmware_get: unknown vendor '$vendor' (lenovo-wmi, dell-wmi)" }
}
$result = [ordered]@{
    vendor   = $vendor
    settings = $settings
    enabled  = $enabled
}
Remove-TypeData -TypeName System.Array -ErrorAction SilentlyContinue
$json = ConvertTo-Json -InputObject $result -Compress -Depth 8
[regex]::Replace($json, '[^\x00-\x7F]', { param($m) '\u{0:x4}' -f [int][char]$m.Value })
