# Operation: cert_provision
# Facility: Import-Certificate -FilePath <.cer> -CertStoreLocation Cert:\LocalMachine\Root and
#   Cert:\LocalMachine\TrustedPublisher (PKI module). A test-signed driver package installs without the
#   Windows Security dialog only when its signing certificate is in Trusted Publishers and chains to a
#   certificate in Trusted Root Certification Authorities; over WinRM/SSH that dialog waits in session 0
#   https://learn.microsoft.com/powershell/module/pki/import-certificate
#   https://learn.microsoft.com/windows-hardware/drivers/install/trusted-publishers-certificate-store
#   https://learn.microsoft.com/windows-hardware/drivers/install/trusted-root-certification-authorities-certificate-store
# Facility: the Cert: drive (Test-Path Cert:\LocalMachine\<store>\<thumbprint>) for what is there
#   https://learn.microsoft.com/powershell/module/microsoft.powershell.security/about/about_certificate_provider
# Parameters: {"certificates_base64": ["<DER, base64>", ...], "thumbprints": ["<SHA-1 hex>", ...], "check_only": bool}
# Result: {"certificates": [{"thumbprint", "stores": {"Root": bool, "TrustedPublisher": bool}}], "imported": int}
param([Parameter(Mandatory = $true)][string]$ParamsBase64)
$ErrorActionPreference = 'Stop'
$ProgressPreference = 'SilentlyContinue'
$P = [Text.Encoding]::UTF8.GetString([Convert]::FromBase64String($ParamsBase64)) | ConvertFrom-Json
$checkOnly = [bool]$P.check_only
$stores = @('Root', 'TrustedPublisher')
$entries = New-Object System.Collections.Generic.List[object]
foreach ($b64 in @($P.certificates_base64)) {
    if (-not $b64) { continue }
    $bytes = [Convert]::FromBase64String([string]$b64)
    $cert = New-Object Security.Cryptography.X509Certificates.X509Certificate2(, $bytes)
    $entries.Add(@{ Thumbprint = [string]$cert.Thumbprint; Bytes = $bytes })
}
foreach ($t in @($P.thumbprints)) {
    if (-not $t) { continue }
    $entries.Add(@{ Thumbprint = ([string]$t).ToUpperInvariant(); Bytes = $null })
}
$imported = 0
$certificates = New-Object System.Collections.Generic.List[object]
foreach ($e in $entries) {
    $found = [ordered]@{}
    foreach ($store in $stores) {
        $present = Test-Path -LiteralPath ('Cert:\LocalMachine\{0}\{1}' -f $store, $e.Thumbprint)
        if (-not $present -and $null -ne $e.Bytes -and -not $checkOnly) {
            $file = Join-Path $env:TEMP ('harness-cert-{0}.cer' -f $e.Thumbprint)
            [IO.File]::WriteAllBytes($file, [byte[]]$e.Bytes)
            try {
                $null = Import-Certificate -FilePath $file -CertStoreLocation ('Cert:\LocalMachine\' + $store)
            } finally {
                Remove-Item -LiteralPath $file -Force -ErrorAction SilentlyContinue
            }
            $imported++
            $present = Test-Path -LiteralPath ('Cert:\LocalMachine\{0}\{1}' -f $store, $e.Thumbprint)
        }
        $found[$store] = [bool]$present
    }
    $certificates.Add([ordered]@{ thumbprint = $e.Thumbprint; stores = $found })
}
$result = [ordered]@{
    certificates = $certificates
    imported     = $imported
}
Remove-TypeData -TypeName System.Array -ErrorAction SilentlyContinue
$json = ConvertTo-Json -InputObject $result -Compress -Depth 8
[regex]::Replace($json, '[^\x00-\x7F]', { param($m) '\u{0:x4}' -f [int][char]$m.Value })
