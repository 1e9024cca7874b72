# Operation: host_facts
# Facility: one Add-Type (a C# compile, about a second in a fresh PowerShell session; skipped when the
#   type is already loaded) for the three native queries below.
#   https://learn.microsoft.com/powershell/module/microsoft.powershell.utility/add-type?view=powershell-5.1
# Facility: NtQuerySystemInformation(SystemDmaGuardPolicyInformation = 202) via Add-Type; the class and its
#   one-BOOLEAN layout are undocumented (phnt headers, docs/domain.md section 3.3)
#   https://learn.microsoft.com/windows/win32/api/winternl/nf-winternl-ntquerysysteminformation
# Facility: NtQuerySystemInformation(SystemCodeIntegrityInformation = 103) via Add-Type:
#   SYSTEM_CODEINTEGRITY_INFORMATION.CodeIntegrityOptions of the running kernel; CODEINTEGRITY_OPTION_TESTSIGN
#   (0x02) = test signing in effect, CODEINTEGRITY_OPTION_DEBUGMODE_ENABLED (0x80) = kernel debugger attached
#   (documented on the same page and in winternl.h)
#   https://learn.microsoft.com/windows/win32/api/winternl/nf-winternl-ntquerysysteminformation
# Facility: RegOpenKeyExW / RegQueryInfoKeyW (lpftLastWriteTime) / RegCloseKey via Add-Type: the last-write
#   time of the DMAGuard policy key, else of its nearest existing parent (creating or deleting a subkey
#   writes the parent), compared with the boot time
#   https://learn.microsoft.com/windows/win32/api/winreg/nf-winreg-regqueryinfokeyw
#   https://learn.microsoft.com/windows/win32/api/winreg/nf-winreg-regopenkeyexw
# Facility: Win32_OperatingSystem, Win32_Processor.VirtualizationFirmwareEnabled, Win32_ComputerSystem
#   https://learn.microsoft.com/windows/win32/cimwin32prov/win32-operatingsystem
#   https://learn.microsoft.com/windows/win32/cimwin32prov/win32-processor
# Facility: root\Microsoft\Windows\DeviceGuard Win32_DeviceGuard.AvailableSecurityProperties (3 = DMA protection)
#   https://learn.microsoft.com/windows/security/hardware-security/enable-virtualization-based-protection-of-code-integrity
# Facility: Confirm-SecureBootUEFI
#   https://learn.microsoft.com/powershell/module/secureboot/confirm-securebootuefi
# Facility: BCD WMI provider (root\wmi): BcdStore.OpenStore, BcdStore.OpenObject({current} =
#   {fa926493-6f1c-4193-a414-58f0b2456d1e}), BcdObject.EnumerateElementTypes / GetElement of
#   BcdLibraryBoolean_AllowPrereleaseSignatures = 0x16000049 (the testsigning option), BcdBooleanElement.Boolean
#   https://learn.microsoft.com/previous-versions/windows/desktop/bcd/bcdobject-getelement
#   https://learn.microsoft.com/previous-versions/windows/desktop/bcd/bcdlibraryelementtypes
#   https://learn.microsoft.com/windows-hardware/drivers/install/the-testsigning-boot-configuration-option
# Facility: HKLM\SOFTWARE\Microsoft\Windows NT\CurrentVersion (UBR, EditionID);
#   HKLM\SOFTWARE\Policies\Microsoft\FVE DisableExternalDMAUnderLock;
#   HKLM\SOFTWARE\Policies\Microsoft\Windows\Kernel DMA Protection DeviceEnumerationPolicy
#   https://learn.microsoft.com/windows/client-management/mdm/policy-csp-dmaguard
# Parameters: {}
# Result: {"computer_name", "build": int, "ubr": int?, "edition", "product_name", "last_boot_utc",
#   "kdp": {"enabled": bool?, "source": "ntquery"|"unknown"}, "virtualization_firmware": bool?,
#   "iommu_dma_protection_available": bool?, "secure_boot": bool?, "test_signing": bool?,
#   "bitlocker_disable_external_dma_under_lock": int?, "dmaguard_policy": int?,
#   "code_integrity_options": int?, "test_signing_in_effect": bool?,
#   "dmaguard_policy_written": {"key", "last_write_utc", "before_boot": bool}?}
param([Parameter(Mandatory = $true)][string]$ParamsBase64)
$ErrorActionPreference = 'Stop'
$ProgressPreference = 'SilentlyContinue'
$P = [Text.Encoding]::UTF8.GetString([Convert]::FromBase64String($ParamsBase64)) | ConvertFrom-Json
function Get-RegValue([string]$Path, [string]$Name) {
    $item = Get-ItemProperty -LiteralPath $Path -Name $Name -ErrorAction SilentlyContinue
    if ($null -eq $item) { return $null }
    return $item.$Name
}
function ConvertTo-UtcIso([datetime]$Value) {
    $Value.ToUniversalTime().ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", [Globalization.CultureInfo]::InvariantCulture)
}
# --- Native queries: one Add-Type for all of them. A persistent runspace keeps the type: not compiled again.
$native = $false
try {
    if (-not ('HarnessHostFactsNative' -as [type])) {
        Add-Type -TypeDefinition @'
using System;
using System.ComponentModel;
using System.Runtime.InteropServices;
public static class HarnessHostFactsNative {
    [DllImport("ntdll.dll")]
    static extern int NtQuerySystemInformation(int infoClass, byte[] info, int length, out int returnLength);
    [DllImport("advapi32.dll", CharSet = CharSet.Unicode, ExactSpelling = true)]
    static extern int RegOpenKeyExW(IntPtr hKey, string subKey, int options, int samDesired, out IntPtr result);
    [DllImport("advapi32.dll", ExactSpelling = true)]
    static extern int RegQueryInfoKeyW(IntPtr hKey, IntPtr lpClass, IntPtr lpcchClass, IntPtr lpReserved,
        IntPtr lpcSubKeys, IntPtr lpcbMaxSubKeyLen, IntPtr lpcbMaxClassLen, IntPtr lpcValues,
        IntPtr lpcbMaxValueNameLen, IntPtr lpcbMaxValueLen, IntPtr lpcbSecurityDescriptor, out long lpftLastWriteTime);
    [DllImport("advapi32.dll", ExactSpelling = true)]
    static extern int RegCloseKey(IntPtr hKey);
    // SYSTEM_DMA_GUARD_POLICY_INFORMATION is one BOOLEAN. -1: class unknown to this kernel (before 1803).
    public static int DmaGuardPolicy() {
        byte[] info = new byte[1];
        int returned;
        int status = NtQuerySystemInformation(202, info, info.Length, out returned);
        if (status != 0) { return -1; }
        return info[0] != 0 ? 1 : 0;
    }
    // SYSTEM_CODEINTEGRITY_INFORMATION { ULONG Length; ULONG CodeIntegrityOptions; }; Length is set on input.
    public static long CodeIntegrityOptions() {
        byte[] info = new byte[8];
        BitConverter.GetBytes(8).CopyTo(info, 0);
        int returned;
        int status = NtQuerySystemInformation(103, info, info.Length, out returned);
        if (status != 0) { return -1; }
        return BitConverter.ToUInt32(info, 4);
    }
    // The last-write time (FILETIME, UTC) of HKLM\subKey; -1: no such key.
    public static long KeyLastWrite(string subKey) {
        IntPtr hklm = new IntPtr(unchecked((int)0x80000002));
        IntPtr key;
        // KEY_QUERY_VALUE (0x1) | KEY_WOW64_64KEY (0x100): the 64-bit view, also from a 32-bit PowerShell.
        int status = RegOpenKeyExW(hklm, subKey, 0, 0x0101, out key);
        if (status == 2 || status == 3) { return -1; }
        if (status != 0) { throw new Win32Exception(status); }
        try {
            long written;
            status = RegQueryInfoKeyW(key, IntPtr.Zero, IntPtr.Zero, IntPtr.Zero, IntPtr.Zero, IntPtr.Zero,
                IntPtr.Zero, IntPtr.Zero, IntPtr.Zero, IntPtr.Zero, IntPtr.Zero, out written);
            if (status != 0) { throw new Win32Exception(status); }
            return written;
        } finally {
            RegCloseKey(key);
        }
    }
}
'@
    }
    $native = $true
} catch {
    Write-Verbose "Add-Type of the native queries failed: $_"
}
# --- Kernel DMA Protection state: the kernel's DMA guard policy flag; unknown when the query fails (no
# msinfo32 fallback: a GUI program in session 0, English labels, and slower than the call's deadline) ---
$kdp = [ordered]@{ enabled = $null; source = 'unknown' }
if ($native) {
    try {
        $q = [HarnessHostFactsNative]::DmaGuardPolicy()
        if ($q -ge 0) { $kdp.enabled = ($q -eq 1); $kdp.source = 'ntquery' }
    } catch {
        Write-Verbose "NtQuerySystemInformation(202) unavailable: $_"
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
# --- Test signing in the BCD store (the next boot's value): the BCD WMI provider's boolean element
# BcdLibraryBoolean_AllowPrereleaseSignatures (0x16000049) of {current}
# ({fa926493-6f1c-4193-a414-58f0b2456d1e}); absent means off. bcdedit prints Yes/No in the display language.
$testSigning = $null
try {
    $store = ([wmiclass]'root\wmi:BcdStore').OpenStore('')
    if ($store.ReturnValue) {
        $entry = $store.Store.OpenObject('{fa926493-6f1c-4193-a414-58f0b2456d1e}')
        if ($entry.ReturnValue) {
            $testSigning = $false
            $types = @($entry.Object.EnumerateElementTypes().Types | ForEach-Object { [long]$_ })
            if ($types -contains 0x16000049) {
                $element = $entry.Object.GetElement(0x16000049)
                if ($element.ReturnValue) { $testSigning = [bool]$element.Element.Boolean }
            }
        }
    }
} catch {
    Write-Verbose "BCD WMI provider unavailable: $_"
    $testSigning = $null
}
# --- Test signing in effect: the running kernel's code integrity options. With a kernel debugger attached
# (0x80) and no 0x02, code integrity may leave TESTSIGN unreported: unknown rather than off.
$ciOptions = $null
$testSigningInEffect = $null
if ($native) {
    try {
        $ci = [HarnessHostFactsNative]::CodeIntegrityOptions()
        if ($ci -ge 0) {
            $ciOptions = [long]$ci
            if (($ci -band 0x02) -ne 0) { $testSigningInEffect = $true }
            elseif (($ci -band 0x80) -eq 0) { $testSigningInEffect = $false }
        }
    } catch {
        Write-Verbose "NtQuerySystemInformation(103) unavailable: $_"
    }
}
# --- DMAGuard: was the policy key (or, if it is missing, its nearest existing parent) last written before
# this boot? Then the value read below is the one this boot loaded.
$bootUtc = $os.LastBootUpTime.ToUniversalTime()
$guardWritten = $null
if ($native) {
    $candidates = @(
        'SOFTWARE\Policies\Microsoft\Windows\Kernel DMA Protection',
        'SOFTWARE\Policies\Microsoft\Windows',
        'SOFTWARE\Policies\Microsoft',
        'SOFTWARE\Policies'
    )
    try {
        foreach ($sub in $candidates) {
            $ft = [HarnessHostFactsNative]::KeyLastWrite($sub)
            if ($ft -ge 0) {
                $written = [DateTime]::FromFileTimeUtc($ft)
                $guardWritten = [ordered]@{
                    key            = 'HKLM\' + $sub
                    last_write_utc = ConvertTo-UtcIso $written
                    before_boot    = ($written -lt $bootUtc)
                }
                break
            }
        }
    } catch {
        Write-Verbose "RegQueryInfoKey failed: $_"
    }
}
$fve = Get-RegValue 'HKLM:\SOFTWARE\Policies\Microsoft\FVE' 'DisableExternalDMAUnderLock'
$dmaguard = Get-RegValue 'HKLM:\SOFTWARE\Policies\Microsoft\Windows\Kernel DMA Protection' 'DeviceEnumerationPolicy'
$result = [ordered]@{
    computer_name                             = $env:COMPUTERNAME
    build                                     = [int]$os.BuildNumber
    ubr                                       = $(if ($null -ne $ubr) { [int]$ubr } else { $null })
    edition                                   = [string](Get-RegValue $cv 'EditionID')
    product_name                              = [string]$os.Caption
    last_boot_utc                             = ConvertTo-UtcIso $bootUtc
    kdp                                       = $kdp
    virtualization_firmware                   = $virt
    iommu_dma_protection_available            = $iommu
    secure_boot                               = $secureBoot
    test_signing                              = $testSigning
    bitlocker_disable_external_dma_under_lock = $(if ($null -ne $fve) { [int]$fve } else { $null })
    dmaguard_policy                           = $(if ($null -ne $dmaguard) { [int]$dmaguard } else { $null })
    code_integrity_options                    = $ciOptions
    test_signing_in_effect                    = $testSigningInEffect
    dmaguard_policy_written                   = $guardWritten
}
# PS 5.1's ETS Count on System.Array can make ConvertTo-Json emit {"value":[...],"Count":n}.
Remove-TypeData -TypeName System.Array -ErrorAction SilentlyContinue
$json = ConvertTo-Json -InputObject $result -Compress -Depth 8
# Non-ASCII escaped so the line survives the console code page of WinRM/OpenSSH.
[regex]::Replace($json, '[^\x00-\x7F]', { param($m) '\u{0:x4}' -f [int][char]$m.Value })
