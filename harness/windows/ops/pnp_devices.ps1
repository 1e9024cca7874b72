# Operation: pnp_devices
# Facility: Get-PnpDevice / Get-PnpDeviceProperty (PnpDevice module)
#   https://learn.microsoft.com/powershell/module/pnpdevice/get-pnpdevice
#   https://learn.microsoft.com/powershell/module/pnpdevice/get-pnpdeviceproperty
# Facility: DEVPKEY_Device_DmaRemappingPolicy = {83DA6326-97A6-4088-9453-A1923F573B29} 18 (Int32; 2 remapping
#   capable, 1 a driver opted out, 0 or absent no directive); friendly name on 1903+, GUID form on 1803/1809
#   https://learn.microsoft.com/windows-hardware/drivers/install/devpkey-device-dmaremappingpolicy
# Facility: DEVPKEY_Device_ProblemCode, _Service, _LowerFilters, _UpperFilters, _DriverInfPath,
#   LastArrivalDate {83da6326-97a6-4088-9453-a1923f573b29} 102, LastRemovalDate ... 103;
#   class filters from HKLM\SYSTEM\CurrentControlSet\Control\Class\{ClassGuid} UpperFilters/LowerFilters
#   https://learn.microsoft.com/windows-hardware/drivers/install/devpkey-device-problemcode
#   https://learn.microsoft.com/windows-hardware/drivers/install/devpkey-device-upperfilters
# Facility: HKLM\SYSTEM\CurrentControlSet\Enum\<instance>\Device Parameters\DMA Management RemappingSupported
#   and RemappingFlags (REG_DWORD), the per-device opt-in that overrides the per-driver value on 24H2+
#   https://learn.microsoft.com/windows-hardware/drivers/pci/enabling-dma-remapping-for-device-drivers
# Parameters: {"hardware_id": "PCI\\VEN_144D&DEV_A808*", "present_only": true}
# Result: {"devices": [{"instance_id", "friendly_name"?, "class"?, "present": bool, "status", "problem_code": int,
#   "dma_policy": int?, "dma_policy_key", "service"?, "lower_filters": [...], "upper_filters": [...],
#   "driver_stack": [...], "inf_name"?, "last_arrival_utc"?, "last_removal_utc"?,
#   "dma_management": {"remapping_supported": int?, "remapping_flags": int?}?}]}
param([Parameter(Mandatory = $true)][string]$ParamsBase64)
$ErrorActionPreference = 'Stop'
$ProgressPreference = 'SilentlyContinue'
$P = [Text.Encoding]::UTF8.GetString([Convert]::FromBase64String($ParamsBase64)) | ConvertFrom-Json
$devpkeyBase = '{83DA6326-97A6-4088-9453-A1923F573B29}'
# Null when the property is absent or of type Empty (the kernel deletes the DMA policy property for 0).
function Get-DevProp([string]$InstanceId, [string]$KeyName) {
    $prop = Get-PnpDeviceProperty -InstanceId $InstanceId -KeyName $KeyName -ErrorAction SilentlyContinue | Select-Object -First 1
    if ($null -eq $prop -or $null -eq $prop.Data -or [string]$prop.Type -eq 'Empty') { return $null }
    # StringList data unrolls to its strings; callers wrap list properties in @().
    return $prop.Data
}
function ConvertTo-StringList([object]$Value) {
    $list = New-Object System.Collections.Generic.List[string]
    foreach ($v in @($Value)) { if ($v) { $list.Add([string]$v) } }
    return , $list
}
# FILETIME properties arrive as DateTime (local kind) from CIM, or as a raw FILETIME count.
function ConvertTo-UtcIso([object]$Value) {
    if ($null -eq $Value) { return $null }
    $dt = $null
    if ($Value -is [datetime]) { $dt = $Value.ToUniversalTime() }
    elseif ($Value -is [uint64] -or $Value -is [int64]) { $dt = [DateTime]::FromFileTimeUtc([int64]$Value) }
    else { return $null }
    return $dt.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", [Globalization.CultureInfo]::InvariantCulture)
}
# REG_MULTI_SZ class filters (they apply to every device of the class); unrolls to strings.
function Get-ClassFilters([string]$ClassGuid, [string]$Name) {
    if (-not $ClassGuid) { return }
    $item = Get-ItemProperty -LiteralPath ('HKLM:\SYSTEM\CurrentControlSet\Control\Class\' + $ClassGuid) -Name $Name -ErrorAction SilentlyContinue
    if ($null -ne $item) { $item.$Name }
}
$build = [int](Get-CimInstance -ClassName Win32_OperatingSystem).BuildNumber
$policyKey = $devpkeyBase + ' 18'
if ($build -ge 18362) { $policyKey = 'DEVPKEY_Device_DmaRemappingPolicy' }
$pattern = [string]$P.hardware_id
if ([bool]$P.present_only) { $all = @(Get-PnpDevice -PresentOnly -ErrorAction SilentlyContinue) }
else { $all = @(Get-PnpDevice -ErrorAction SilentlyContinue) }
# Filter before any per-device call: the instance ID first, then the HardwareID the CIM object carries. Only a
# device without HardwareID (a phantom) on the pattern's own enumerator (PCI, USB, ...) costs a property call.
$enumerator = ($pattern -split '\\', 2)[0]
$devices = New-Object System.Collections.Generic.List[object]
foreach ($d in $all) {
    $matched = ([string]$d.InstanceId -like $pattern)
    if (-not $matched) {
        $hwids = @($d.HardwareID)
        if (($hwids.Count -eq 0 -or $null -eq $hwids[0]) -and ([string]$d.InstanceId -split '\\', 2)[0] -like $enumerator) {
            $hwids = @(Get-DevProp $d.InstanceId 'DEVPKEY_Device_HardwareIds')
        }
        foreach ($h in $hwids) { if ([string]$h -like $pattern) { $matched = $true; break } }
    }
    if (-not $matched) { continue }
    $id = [string]$d.InstanceId
    $policy = Get-DevProp $id $policyKey
    $problem = Get-DevProp $id 'DEVPKEY_Device_ProblemCode'
    if ($null -eq $problem) { $problem = $d.ConfigManagerErrorCode }
    if ($null -eq $problem) { $problem = 0 }
    $service = Get-DevProp $id 'DEVPKEY_Device_Service'
    # Load order bottom-up: device lower filters, class lower filters, function driver, device upper
    # filters, class upper filters. Lists here are top-down, so class filters come first in each.
    $upper = ConvertTo-StringList (@(Get-ClassFilters $d.ClassGuid 'UpperFilters') + @(Get-DevProp $id 'DEVPKEY_Device_UpperFilters'))
    $lower = ConvertTo-StringList (@(Get-ClassFilters $d.ClassGuid 'LowerFilters') + @(Get-DevProp $id 'DEVPKEY_Device_LowerFilters'))
    $stack = New-Object System.Collections.Generic.List[string]
    foreach ($n in $upper) { $stack.Add($n) }
    if ($service) { $stack.Add([string]$service) }
    foreach ($n in $lower) { $stack.Add($n) }
    # Per-device DMA remapping opt-in (24H2+: overrides the driver's DmaRemappingCompatible).
    $dmaKey = 'HKLM:\SYSTEM\CurrentControlSet\Enum\' + $id + '\Device Parameters\DMA Management'
    $dmaManagement = $null
    $dm = Get-ItemProperty -LiteralPath $dmaKey -ErrorAction SilentlyContinue
    if ($null -ne $dm -and ($null -ne $dm.RemappingSupported -or $null -ne $dm.RemappingFlags)) {
        $dmaManagement = [ordered]@{
            remapping_supported = $(if ($null -ne $dm.RemappingSupported) { [int64]$dm.RemappingSupported } else { $null })
            remapping_flags     = $(if ($null -ne $dm.RemappingFlags) { [int64]$dm.RemappingFlags } else { $null })
        }
    }
    $status = [string]$d.Status
    if ($status -notin @('OK', 'Error', 'Degraded', 'Unknown')) { $status = 'Unknown' }
    $devices.Add([ordered]@{
            instance_id      = $id
            friendly_name    = $(if ($d.FriendlyName) { [string]$d.FriendlyName } else { $null })
            class            = $(if ($d.Class) { [string]$d.Class } else { $null })
            present          = [bool]$d.Present
            status           = $status
            problem_code     = [int]$problem
            dma_policy       = $(if ($null -ne $policy) { [int]$policy } else { $null })
            dma_policy_key   = $policyKey
            service          = $(if ($service) { [string]$service } else { $null })
            lower_filters    = $lower
            upper_filters    = $upper
            driver_stack     = $stack
            inf_name         = $(Get-DevProp $id 'DEVPKEY_Device_DriverInfPath')
            last_arrival_utc = ConvertTo-UtcIso (Get-DevProp $id ($devpkeyBase + ' 102'))
            last_removal_utc = ConvertTo-UtcIso (Get-DevProp $id ($devpkeyBase + ' 103'))
            dma_management   = $dmaManagement
        })
}
$result = [ordered]@{ devices = $devices }
Remove-TypeData -TypeName System.Array -ErrorAction SilentlyContinue
$json = ConvertTo-Json -InputObject $result -Compress -Depth 8
[regex]::Replace($json, '[^\x00-\x7F]', { param($m) '\u{0:x4}' -f [int][char]$m.Value })
