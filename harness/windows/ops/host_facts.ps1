# Operation: host_facts
# Facility: NtQuerySystemInformation(SystemDmaGuardPolicyInformation = 202) via Add-Type; the class and its
#   one-BOOLEAN layout are undocumented (phnt headers, windows-dma.md section 3.3)
#   https://learn.microsoft.com/windows/win32/api/winternl/nf-winternl-ntquerysysteminformation
# Facility: msinfo32 /report <file> /categories +SystemSummary, line "Kernel DMA Protection" (fallback)
#   https://learn.microsoft.com/windows/security/hardware-security/kernel-dma-protection-for-thunderbolt
# Facility: Win32_OperatingSystem, Win32_Processor.VirtualizationFirmwareEnabled, Win32_ComputerSystem
#   https://learn.microsoft.com/windows/win32/cimwin32prov/win32-operatingsystem
#   https://learn.microsoft.com/windows/win32/cimwin32prov/win32-processor
# Facility: root\Microsoft\Windows\DeviceGuard Win32_DeviceGuard.AvailableSecurityProperties (3 = DMA protection)
#   https://learn.microsoft.com/windows/security/hardware-security/enable-virtualization-based-protection-of-code-integrity
# Facility: Confirm-SecureBootUEFI
#   https://learn.microsoft.com/powershell/module/secureboot/confirm-securebootuefi
# Facility: bcdedit /enum {current} (testsigning)
#   https://learn.microsoft.com/windows-hardware/drivers/install/the-testsigning-boot-configuration-option
# Facility: HKLM\SOFTWARE\Microsoft\Windows NT\CurrentVersion (UBR, EditionID);
#   HKLM\SOFTWARE\Policies\Microsoft\FVE DisableExternalDMAUnderLock;
#   HKLM\SOFTWARE\Policies\Microsoft\Windows\Kernel DMA Protection DeviceEnumerationPolicy
#   https://learn.microsoft.com/windows/client-management/mdm/policy-csp-dmaguard
# Parameters: {}
# Result: {"computer_name", "build": int, "ubr": int?, "edition", "product_name", "last_boot_utc",
#   "kdp": {"enabled": bool?, "source": "ntquery"|"msinfo32"|"unknown"}, "virtualization_firmware": bool?,
#   "iommu_dma_protection_available": bool?, "secure_boot": bool?, "test_signing": bool?,
#   "bitlocker_disable_external_dma_under_lock": int?, "dmaguard_policy": int?}
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
function Get-RegValue([string]$Path, [string]$Name) {
    $item = Get-ItemProperty -LiteralPath $Path -Name $Name -ErrorAction SilentlyContinue
    if ($null -eq $item) { return $null }
    return $item.$Name
}
function ConvertTo-UtcIso([datetime]$Value) {
    $Value.ToUniversalTime().ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", [Globalization.CultureInfo]::InvariantCulture)
}
# --- Kernel DMA Protection state: the kernel's DMA guard policy flag, else msinfo32's summary line ---
$kdp = [ordered]@{ enabled = $null; source = 'unknown' }
try {
    Add-Type -TypeDefinition @'
using System;
using System.Runtime.InteropServices;
public static class HarnessDmaGuardPolicy {
    [DllImport("ntdll.dll")]
    static extern int NtQuerySystemInformation(int infoClass, byte[] info, int length, out int returnLength);
    // SYSTEM_DMA_GUARD_POLICY_INFORMATION is one BOOLEAN. -1: class unknown to this kernel (before 1803).
    public static int Query() {
        byte[] info = new byte[1];
        int returned;
        int status = NtQuerySystemInformation(202, info, info.Length, out returned);
        if (status != 0) { return -1; }
        return info[0] != 0 ? 1 : 0;
    }
}
'@
    $q = [HarnessDmaGuardPolicy]::Query()
    if ($q -ge 0) { $kdp.enabled = ($q -eq 1); $kdp.source = 'ntquery' }
} catch {
    Write-Verbose "NtQuerySystemInformation(202) unavailable: $_"
}
if ($kdp.source -eq 'unknown') {
    # msinfo32 is a GUI program: Start-Process -Wait is the only way to wait for it; it takes seconds to
    # tens of seconds, so the wait is bounded.
    $report = Join-Path $env:TEMP ('harness-msinfo-' + [guid]::NewGuid().ToString('N') + '.txt')
    try {
        $proc = Start-Process -FilePath "$env:SystemRoot\System32\msinfo32.exe" -ArgumentList @('/report', $report, '/categories', '+SystemSummary') -PassThru -WindowStyle Hidden
        if (-not $proc.WaitForExit(180000)) { $proc.Kill() }
        if (Test-Path -LiteralPath $report) {
            # The report is UTF-16 with a BOM; "Kernel DMA Protection<TAB>On|Off" (English label only).
            foreach ($line in (Get-Content -LiteralPath $report)) {
                if ($line -match '^\s*Kernel DMA Protection\s+(On|Off)\s*$') {
                    $kdp.enabled = ($Matches[1] -eq 'On'); $kdp.source = 'msinfo32'; break
                }
            }
        }
    } catch {
        Write-Verbose "msinfo32 fallback failed: $_"
    } finally {
        Remove-Item -LiteralPath $report -Force -ErrorAction SilentlyContinue
    }
}
# --- OS identity ---
$os = Get-CimInstance -ClassName Win32_OperatingSystem
$cs = Get-CimInstance -ClassName Win32_ComputerSystem
$cv = 'HKLM:\SOFTWARE\Microsoft\Windows NT\CurrentVersion'
$ubr = Get-RegValue $cv 'UBR'
# --- Virtualization in firmware. With a hypervisor running (Hyper-V, VBS) Win32_Processor reports
# VirtualizationFirmwareEnabled = False, although the hypervisor could only start because VT-x/AMD-V is on.
$virt = $null
$cpu = @(Get-CimInstance -ClassName Win32_Processor) | Select-Object -First 1
if ($cs.HypervisorPresent) { $virt = $true }
elseif ($null -ne $cpu -and $null -ne $cpu.VirtualizationFirmwareEnabled) { $virt = [bool]$cpu.VirtualizationFirmwareEnabled }
# --- VBS "DMA protection" capability (IOMMU present); not the KDMAP state ---
$iommu = $null
try {
    $dg = Get-CimInstance -Namespace 'root\Microsoft\Windows\DeviceGuard' -ClassName Win32_DeviceGuard
    if ($null -ne $dg) { $iommu = (@($dg.AvailableSecurityProperties) -contains 3) }
} catch {
    Write-Verbose "Win32_DeviceGuard unavailable: $_"
}
# --- Secure Boot: the cmdlet throws on legacy BIOS / unsupported platforms ---
$secureBoot = $null
try { $secureBoot = [bool](Confirm-SecureBootUEFI) } catch { $secureBoot = $null }
# --- Test signing: absent from {current} means off ---
$testSigning = $null
$bcd = Invoke-Native "$env:SystemRoot\System32\bcdedit.exe" @('/enum', '{current}')
if ($bcd.ExitCode -eq 0) { $testSigning = ($bcd.Output -match '(?m)^\s*testsigning\s+Yes\s*$') }
$fve = Get-RegValue 'HKLM:\SOFTWARE\Policies\Microsoft\FVE' 'DisableExternalDMAUnderLock'
$dmaguard = Get-RegValue 'HKLM:\SOFTWARE\Policies\Microsoft\Windows\Kernel DMA Protection' 'DeviceEnumerationPolicy'
$result = [ordered]@{
    computer_name                             = $env:COMPUTERNAME
    build                                     = [int]$os.BuildNumber
    ubr                                       = $(if ($null -ne $ubr) { [int]$ubr } else { $null })
    edition                                   = [string](Get-RegValue $cv 'EditionID')
    product_name                              = [string]$os.Caption
    last_boot_utc                             = ConvertTo-UtcIso $os.LastBootUpTime
    kdp                                       = $kdp
    virtualization_firmware                   = $virt
    iommu_dma_protection_available            = $iommu
    secure_boot                               = $secureBoot
    test_signing                              = $testSigning
    bitlocker_disable_external_dma_under_lock = $(if ($null -ne $fve) { [int]$fve } else { $null })
    dmaguard_policy                           = $(if ($null -ne $dmaguard) { [int]$dmaguard } else { $null })
}
# PS 5.1's ETS Count on System.Array can make ConvertTo-Json emit {"value":[...],"Count":n}.
Remove-TypeData -TypeName System.Array -ErrorAction SilentlyContinue
$json = ConvertTo-Json -InputObject $result -Compress -Depth 8
# Non-ASCII escaped so the line survives the console code page of WinRM/OpenSSH.
[regex]::Replace($json, '[^\x00-\x7F]', { param($m) '\u{0:x4}' -f [int][char]$m.Value })
