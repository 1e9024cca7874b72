# Operation: service_dma_compat
# Facility: HKLM\SYSTEM\CurrentControlSet\Services\<service>\Parameters values DmaRemappingCompatible and
#   DmaRemappingOnHiberPath (REG_DWORD, written by the INF's service-install AddReg)
#   https://learn.microsoft.com/windows-hardware/drivers/pci/enabling-dma-remapping-for-device-drivers
# Parameters: {"service": "mydrv"}
# Result: {"service", "exists": bool, "dma_remapping_compatible": int?, "dma_remapping_on_hiber_path": int?}
param([Parameter(Mandatory = $true)][string]$ParamsBase64)
$ErrorActionPreference = 'Stop'
$ProgressPreference = 'SilentlyContinue'
$P = [Text.Encoding]::UTF8.GetString([Convert]::FromBase64String($ParamsBase64)) | ConvertFrom-Json
function Get-RegDword([string]$Path, [string]$Name) {
    $item = Get-ItemProperty -LiteralPath $Path -Name $Name -ErrorAction SilentlyContinue
    if ($null -eq $item) { return $null }
    return [int]$item.$Name
}
$service = [string]$P.service
if (-not $service -or $service.IndexOfAny([char[]]'\/') -ge 0) { throw "service_dma_compat: bad service name '$service'" }
$key = 'HKLM:\SYSTEM\CurrentControlSet\Services\' + $service
$params = $key + '\Parameters'
$result = [ordered]@{
    service                     = $service
    exists                      = [bool](Test-Path -LiteralPath $key)
    dma_remapping_compatible    = Get-RegDword $params 'DmaRemappingCompatible'
    dma_remapping_on_hiber_path = Get-RegDword $params 'DmaRemappingOnHiberPath'
}
Remove-TypeData -TypeName System.Array -ErrorAction SilentlyContinue
$json = ConvertTo-Json -InputObject $result -Compress -Depth 8
[regex]::Replace($json, '[^\x00-\x7F]', { param($m) '\u{0:x4}' -f [int][char]$m.Value })
