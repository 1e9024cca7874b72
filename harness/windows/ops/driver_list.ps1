# Operation: driver_list
# Facility: Get-WindowsDriver -Online (DISM module): the third-party driver packages of the driver store
#   (what pnputil /enum-drivers lists), as objects with locale-free property names (Driver = oemN.inf,
#   OriginalFileName, ProviderName, ClassName, Version, Date, CatalogFile). pnputil's labels are localized.
#   https://learn.microsoft.com/powershell/module/dism/get-windowsdriver
# Facility: Get-AuthenticodeSignature on the package's catalog in the driver store: the signer's simple
#   name (SignerCertificate.GetNameInfo(SimpleName)), the value pnputil prints as the signer name
#   https://learn.microsoft.com/powershell/module/microsoft.powershell.security/get-authenticodesignature
#   https://learn.microsoft.com/dotnet/api/system.security.cryptography.x509certificates.x509certificate2.getnameinfo
# Parameters: {}
# Result: {"drivers": [{"published_name", "original_name", "provider", "class_name", "version", "signer"}]}
param([Parameter(Mandatory = $true)][string]$ParamsBase64)
$ErrorActionPreference = 'Stop'
$ProgressPreference = 'SilentlyContinue'
$P = [Text.Encoding]::UTF8.GetString([Convert]::FromBase64String($ParamsBase64)) | ConvertFrom-Json
$inv = [Globalization.CultureInfo]::InvariantCulture
$drivers = New-Object System.Collections.Generic.List[object]
foreach ($d in @(Get-WindowsDriver -Online -ErrorAction Stop)) {
    # OriginalFileName is the INF's path in the driver store: C:\Windows\System32\DriverStore\FileRepository\x.inf_amd64_<hash>\x.inf
    $inf = [string]$d.OriginalFileName
    $signer = $null
    if ($d.CatalogFile -and $inf) {
        $cat = Join-Path ([IO.Path]::GetDirectoryName($inf)) ([string]$d.CatalogFile)
        if ([IO.File]::Exists($cat)) {
            $sig = Get-AuthenticodeSignature -LiteralPath $cat -ErrorAction SilentlyContinue
            if ($null -ne $sig -and $null -ne $sig.SignerCertificate) {
                $signer = $sig.SignerCertificate.GetNameInfo([Security.Cryptography.X509Certificates.X509NameType]::SimpleName, $false)
            }
        }
    }
    # "MM/DD/YYYY a.b.c.d", as pnputil prints the driver version, in the invariant culture.
    $version = [string]$d.Version
    if ($d.Date -is [datetime]) { $version = $d.Date.ToString('MM/dd/yyyy', $inv) + ' ' + $version }
    $drivers.Add([ordered]@{
            published_name = [string]$d.Driver
            original_name  = $(if ($inf) { [IO.Path]::GetFileName($inf) } else { $null })
            provider       = [string]$d.ProviderName
            class_name     = [string]$d.ClassName
            version        = $version
            signer         = $signer
        })
}
$result = [ordered]@{ drivers = $drivers }
Remove-TypeData -TypeName System.Array -ErrorAction SilentlyContinue
$json = ConvertTo-Json -InputObject $result -Compress -Depth 8
[regex]::Replace($json, '[^\x00-\x7F]', { param($m) '\u{0:x4}' -f [int][char]$m.Value })
