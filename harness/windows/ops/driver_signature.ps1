# Operation: driver_signature
# Facility: Get-AuthenticodeSignature (SignatureStatus / SignatureType)
#   https://learn.microsoft.com/powershell/module/microsoft.powershell.security/get-authenticodesignature?view=powershell-5.1
#   https://learn.microsoft.com/dotnet/api/system.management.automation.signaturestatus
#   https://learn.microsoft.com/dotnet/api/system.management.automation.signaturetype
# Parameters: {"paths": ["C:\\harness\\pkg\\mydrv.sys", "C:\\harness\\pkg\\mydrv.cat"], "expected_signer": "Contoso Test"}
# Result: {"files": [{"path", "status", "status_code": int, "signature_type", "signer_subject"?, "signer_matches": bool,
#   "signer_thumbprint"?}]}
param([Parameter(Mandatory = $true)][string]$ParamsBase64)
$ErrorActionPreference = 'Stop'
$ProgressPreference = 'SilentlyContinue'
$P = [Text.Encoding]::UTF8.GetString([Convert]::FromBase64String($ParamsBase64)) | ConvertFrom-Json
$expected = [string]$P.expected_signer
$files = New-Object System.Collections.Generic.List[object]
foreach ($path in @($P.paths)) {
    # A .sys that is only catalog-signed reports Catalog/Valid only once its catalog is installed in the
    # system catalog database (i.e. after pnputil /add-driver); before that it reads NotSigned.
    $sig = Get-AuthenticodeSignature -LiteralPath ([string]$path)
    $cert = $sig.SignerCertificate
    $subject = $null
    $cn = $null
    $thumb = $null
    if ($null -ne $cert) {
        $subject = [string]$cert.Subject
        $thumb = [string]$cert.Thumbprint
        $cn = $cert.GetNameInfo([Security.Cryptography.X509Certificates.X509NameType]::SimpleName, $false)
    }
    # SignatureType exists on Windows PowerShell 5.1's Signature; guarded in case of an older WMF.
    $sigType = 'None'
    if ($sig.PSObject.Properties['SignatureType']) { $sigType = [string]$sig.SignatureType }
    $files.Add([ordered]@{
            path           = [string]$path
            status         = [string]$sig.Status
            status_code    = [int]$sig.Status
            signature_type = $sigType
            signer_subject = $subject
            signer_matches = ($null -ne $cn -and $cn -ceq $expected)
            signer_thumbprint = $thumb
        })
}
$result = [ordered]@{ files = $files }
Remove-TypeData -TypeName System.Array -ErrorAction SilentlyContinue
$json = ConvertTo-Json -InputObject $result -Compress -Depth 8
[regex]::Replace($json, '[^\x00-\x7F]', { param($m) '\u{0:x4}' -f [int][char]$m.Value })
