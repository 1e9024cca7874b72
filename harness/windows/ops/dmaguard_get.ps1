# Operation: dmaguard_get
# Facility: HKLM\SOFTWARE\Policies\Microsoft\Windows\Kernel DMA Protection, REG_DWORD DeviceEnumerationPolicy
#   (0 block all, 1 only after login, 2 allow all; absent = default 1). Not the Intune Graph numbering.
#   https://learn.microsoft.com/windows/client-management/mdm/policy-csp-dmaguard
# Parameters: {}
# Result: {"policy": int?}
param([Parameter(Mandatory = $true)][string]$ParamsBase64)
$ErrorActionPreference = 'Stop'
$ProgressPreference = 'SilentlyContinue'
$P = [Text.Encoding]::UTF8.GetString([Convert]::FromBase64String($ParamsBase64)) | ConvertFrom-Json
$item = Get-ItemProperty -LiteralPath 'HKLM:\SOFTWARE\Policies\Microsoft\Windows\Kernel DMA Protection' -Name 'DeviceEnumerationPolicy' -ErrorAction SilentlyContinue
$policy = $null
if ($null -ne $item) { $policy = [int]$item.DeviceEnumerationPolicy }
$result = [ordered]@{ policy = $policy }
Remove-TypeData -TypeName System.Array -ErrorAction SilentlyContinue
$json = ConvertTo-Json -InputObject $result -Compress -Depth 8
[regex]::Replace($json, '[^\x00-\x7F]', { param($m) '\u{0:x4}' -f [int][char]$m.Value })
