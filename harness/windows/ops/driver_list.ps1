# Operation: driver_list
# Facility: pnputil /enum-drivers (Windows 10 1607+); output parsed by label, blocks start at "Published Name:"
#   https://learn.microsoft.com/windows-hardware/drivers/devtest/pnputil-command-syntax
# Parameters: {}
# Result: {"drivers": [{"published_name", "original_name", "provider", "class_name", "version", "signer"}]}
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
$r = Invoke-Native "$env:SystemRoot\System32\pnputil.exe" @('/enum-drivers')
if ($r.ExitCode -ne 0) { throw "pnputil /enum-drivers exited $($r.ExitCode): $($r.Output)" }
# English labels (the pnputil output is localized on other display languages).
$fields = @{
    'Published Name' = 'published_name'
    'Original Name'  = 'original_name'
    'Provider Name'  = 'provider'
    'Class Name'     = 'class_name'
    'Driver Version' = 'version'
    'Signer Name'    = 'signer'
}
$drivers = New-Object System.Collections.Generic.List[object]
$current = $null
foreach ($line in ($r.Output -split "`n")) {
    if ($line -notmatch '^\s*([^:]+?)\s*:\s*(.*?)\s*$') { continue }
    $label = $Matches[1]
    $value = $Matches[2]
    if (-not $fields.ContainsKey($label)) { continue }
    if ($label -eq 'Published Name') {
        $current = [ordered]@{ published_name = $value; original_name = $null; provider = $null; class_name = $null; version = $null; signer = $null }
        $drivers.Add($current)
    } elseif ($null -ne $current) {
        # "Driver Version" is "MM/DD/YYYY a.b.c.d", kept as printed.
        $current[$fields[$label]] = $value
    }
}
$result = [ordered]@{ drivers = $drivers }
Remove-TypeData -TypeName System.Array -ErrorAction SilentlyContinue
$json = ConvertTo-Json -InputObject $result -Compress -Depth 8
[regex]::Replace($json, '[^\x00-\x7F]', { param($m) '\u{0:x4}' -f [int][char]$m.Value })
