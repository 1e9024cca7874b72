# Operation: dmaguard_set
# Facility: HKLM\SOFTWARE\Policies\Microsoft\Windows\Kernel DMA Protection, REG_DWORD DeviceEnumerationPolicy
#   (0 block all, 1 only after login, 2 allow all); the policy takes effect after a reboot, and only
#   when Kernel DMA Protection is on. Pro/Enterprise/Education (1809+), not Home.
#   https://learn.microsoft.com/windows/client-management/mdm/policy-csp-dmaguard
# Parameters: {"policy": 0} (null deletes the value)
# Result: {"previous": int?, "policy": int?, "reboot_required": true}
param([Parameter(Mandatory = $true)][string]$ParamsBase64)
$ErrorActionPreference = 'Stop'
$ProgressPreference = 'SilentlyContinue'
$P = [Text.Encoding]::UTF8.GetString([Convert]::FromBase64String($ParamsBase64)) | ConvertFrom-Json
$key = 'HKLM:\SOFTWARE\Policies\Microsoft\Windows\Kernel DMA Protection'
$name = 'DeviceEnumerationPolicy'
function Get-Policy {
    $item = Get-ItemProperty -LiteralPath $key -Name $name -ErrorAction SilentlyContinue
    if ($null -eq $item) { return $null }
    return [int]$item.$name
}
$previous = Get-Policy
if ($null -eq $P.policy) {
    if ($null -ne $previous) { Remove-ItemProperty -LiteralPath $key -Name $name }
} else {
    $value = [int]$P.policy
    if ($value -lt 0 -or $value -gt 2) { throw "dmaguard_set: policy must be 0, 1 or 2, got $value" }
    if (-not (Test-Path -LiteralPath $key)) { [void](New-Item -Path $key -Force) }
    [void](New-ItemProperty -LiteralPath $key -Name $name -PropertyType DWord -Value $value -Force)
}
$result = [ordered]@{
    previous        = $previous
    policy          = Get-Policy
    reboot_required = $true
}
Remove-TypeData -TypeName System.Array -ErrorAction SilentlyContinue
$json = ConvertTo-Json -InputObject $result -Compress -Depth 8
[regex]::Replace($json, '[^\x00-\x7F]', { param($m) '\u{0:x4}' -f [int][char]$m.Value })
