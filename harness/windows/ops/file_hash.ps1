# Operation: file_hash
# Facility: Get-FileHash -Algorithm SHA256
#   https://learn.microsoft.com/powershell/module/microsoft.powershell.utility/get-filehash?view=powershell-5.1
# Parameters: {"path": "C:\\harness\\x.sys"}
# Result: {"path", "exists": bool, "size": int?, "sha256": str? (lower-case hex)}
param([Parameter(Mandatory = $true)][string]$ParamsBase64)
$ErrorActionPreference = 'Stop'
$ProgressPreference = 'SilentlyContinue'
$P = [Text.Encoding]::UTF8.GetString([Convert]::FromBase64String($ParamsBase64)) | ConvertFrom-Json
$path = [string]$P.path
$result = [ordered]@{ path = $path; exists = $false; size = $null; sha256 = $null }
# File::Exists is false for directories and does not treat [ ] as wildcards.
if ([IO.File]::Exists($path)) {
    $result.exists = $true
    $result.size = [int64]([IO.FileInfo]::new($path).Length)
    $result.sha256 = (Get-FileHash -LiteralPath $path -Algorithm SHA256).Hash.ToLowerInvariant()
}
Remove-TypeData -TypeName System.Array -ErrorAction SilentlyContinue
$json = ConvertTo-Json -InputObject $result -Compress -Depth 8
[regex]::Replace($json, '[^\x00-\x7F]', { param($m) '\u{0:x4}' -f [int][char]$m.Value })
