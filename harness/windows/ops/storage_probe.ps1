# Operation: storage_probe
# Facility: Get-PnpDevice (is the device started), Get-Volume (by FileSystemLabel), Get-Partition / Get-Disk
#   (MSFT_Disk.Path is the disk's device-interface path), Get-PnpDeviceProperty DEVPKEY_Device_Parent walk
#   from the disk up to the PCIe device
#   https://learn.microsoft.com/powershell/module/storage/get-volume
#   https://learn.microsoft.com/powershell/module/storage/get-disk
#   https://learn.microsoft.com/windows-hardware/drivers/install/devpkey-device-parent
# Facility: FileStream.Flush(true) (FlushFileBuffers) for the write; CreateFileW with FILE_FLAG_NO_BUFFERING
#   for the read, so the bytes come from the device by DMA and not from the cache manager's copy in RAM
#   https://learn.microsoft.com/dotnet/api/system.io.filestream.flush
#   https://learn.microsoft.com/windows/win32/fileio/file-buffering
# Parameters: {"instance_id": "PCI\\VEN_144D&DEV_A808&SUBSYS_A801144D&REV_00\\4&1234&0&00E8", "volume_label": "HILDMA", "size_mib": 256}
# Result: {"ok": bool, "reason"?, "drive_letter"?, "disk_number": int?, "bytes": int, "write_mb_s": float?,
#   "read_mb_s": float?, "verified": bool} (MB = 10^6 bytes; the timed span excludes generating and hashing)
param([Parameter(Mandatory = $true)][string]$ParamsBase64)
$ErrorActionPreference = 'Stop'
$ProgressPreference = 'SilentlyContinue'
$P = [Text.Encoding]::UTF8.GetString([Convert]::FromBase64String($ParamsBase64)) | ConvertFrom-Json
# C# 5 (the compiler Windows PowerShell 5.1 uses). Unbuffered I/O needs sector-aligned buffers, which a
# managed byte[] is not guaranteed to be; VirtualAlloc memory is page-aligned.
Add-Type -TypeDefinition @'
using System;
using System.ComponentModel;
using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using Microsoft.Win32.SafeHandles;
public static class HarnessUncachedRead {
    [DllImport("kernel32.dll", CharSet = CharSet.Unicode, SetLastError = true)]
    static extern SafeFileHandle CreateFileW(string name, uint access, uint share, IntPtr security, uint disposition, uint flags, IntPtr template);
    [DllImport("kernel32.dll", SetLastError = true)]
    static extern bool ReadFile(SafeFileHandle file, IntPtr buffer, uint toRead, out uint read, IntPtr overlapped);
    [DllImport("kernel32.dll", SetLastError = true)]
    static extern IntPtr VirtualAlloc(IntPtr address, UIntPtr size, uint type, uint protect);
    [DllImport("kernel32.dll", SetLastError = true)]
    static extern bool VirtualFree(IntPtr address, UIntPtr size, uint type);
    // SHA-256 of the whole file; seconds = time spent inside ReadFile only.
    public static byte[] Sha256(string path, int chunk, out long total, out double seconds) {
        const uint GENERIC_READ = 0x80000000, FILE_SHARE_READ = 1, OPEN_EXISTING = 3;
        const uint FILE_FLAG_NO_BUFFERING = 0x20000000, FILE_FLAG_SEQUENTIAL_SCAN = 0x08000000;
        total = 0;
        seconds = 0;
        using (SafeFileHandle file = CreateFileW(path, GENERIC_READ, FILE_SHARE_READ, IntPtr.Zero, OPEN_EXISTING, FILE_FLAG_NO_BUFFERING | FILE_FLAG_SEQUENTIAL_SCAN, IntPtr.Zero)) {
            if (file.IsInvalid) { throw new Win32Exception(Marshal.GetLastWin32Error()); }
            IntPtr buffer = VirtualAlloc(IntPtr.Zero, new UIntPtr((uint)chunk), 0x3000, 0x04);
            if (buffer == IntPtr.Zero) { throw new Win32Exception(Marshal.GetLastWin32Error()); }
            try {
                byte[] managed = new byte[chunk];
                Stopwatch watch = new Stopwatch();
                using (SHA256 sha = SHA256.Create()) {
                    while (true) {
                        uint read;
                        watch.Start();
                        bool ok = ReadFile(file, buffer, (uint)chunk, out read, IntPtr.Zero);
                        watch.Stop();
                        if (!ok) { throw new Win32Exception(Marshal.GetLastWin32Error()); }
                        if (read == 0) { break; }
                        Marshal.Copy(buffer, managed, 0, (int)read);
                        sha.TransformBlock(managed, 0, (int)read, null, 0);
                        total += read;
                    }
                    sha.TransformFinalBlock(managed, 0, 0);
                    seconds = watch.Elapsed.TotalSeconds;
                    return sha.Hash;
                }
            } finally {
                VirtualFree(buffer, UIntPtr.Zero, 0x8000);
            }
        }
    }
}
'@
$result = [ordered]@{
    ok = $false; reason = $null; drive_letter = $null; disk_number = $null
    bytes = [int64]0; write_mb_s = $null; read_mb_s = $null; verified = $false
}
function Get-Parent([string]$InstanceId) {
    $prop = Get-PnpDeviceProperty -InstanceId $InstanceId -KeyName 'DEVPKEY_Device_Parent' -ErrorAction SilentlyContinue | Select-Object -First 1
    if ($null -eq $prop -or -not $prop.Data) { return $null }
    return [string]$prop.Data
}
# '\\?\scsi#disk&ven_x&prod_y#5&abc&0&000000#{53f56307-b6bf-11d0-94f2-00a0c91efb8b}' -> 'SCSI\DISK&VEN_X&PROD_Y\5&ABC&0&000000'
function ConvertFrom-InterfacePath([string]$Path) {
    if ($Path -notmatch '^\\\\\?\\(.+)#\{[0-9a-fA-F-]+\}$') { return $null }
    return $Matches[1].Replace('#', '\')
}
function Test-UnderDevice([string]$ChildId, [string]$AncestorId) {
    $id = $ChildId
    for ($depth = 0; $id -and $depth -lt 16; $depth++) {
        if ($id -eq $AncestorId) { return $true }
        $id = Get-Parent $id
    }
    return $false
}
$instanceId = [string]$P.instance_id
$label = [string]$P.volume_label
# Byte counts spelled out: tree-sitter-powershell does not know the 1MB-style multiplier suffixes.
$mib = [int64]1048576
$size = [int64]$P.size_mib * $mib
$chunk = [int](4 * $mib)
$dev = Get-PnpDevice -InstanceId $instanceId -ErrorAction SilentlyContinue
if ($null -eq $dev) {
    $result.reason = "device $instanceId not found"
} elseif ([string]$dev.Status -ne 'OK') {
    $result.reason = "device not started: status $($dev.Status), problem $($dev.ConfigManagerErrorCode)"
} else {
    $volume = $null
    $disk = $null
    foreach ($v in @(Get-Volume | Where-Object { $_.FileSystemLabel -eq $label })) {
        $part = @($v | Get-Partition -ErrorAction SilentlyContinue) | Select-Object -First 1
        if ($null -eq $part) { continue }
        $d = Get-Disk -Number $part.DiskNumber
        $diskId = ConvertFrom-InterfacePath ([string]$d.Path)
        if ($diskId -and (Test-UnderDevice $diskId $instanceId)) { $volume = $v; $disk = $d; break }
    }
    if ($null -eq $volume) {
        $result.reason = "no volume labelled '$label' on a disk under $instanceId"
    } elseif ($volume.SizeRemaining -lt ($size + 64 * $mib)) {
        $result.reason = "volume '$label' has $($volume.SizeRemaining) bytes free, needs $size"
    } else {
        $result.disk_number = [int]$disk.Number
        $root = $volume.Path
        if ($volume.DriveLetter -and [int][char]$volume.DriveLetter -ne 0) {
            $result.drive_letter = [string]$volume.DriveLetter
            $root = [string]$volume.DriveLetter + ':\'
        }
        # Plain concatenation: without a drive letter the root is '\\?\Volume{GUID}\', which the provider
        # cmdlets (Join-Path, Remove-Item) do not handle but .NET does.
        $file = $root.TrimEnd('\') + '\harness-dma-probe-' + [guid]::NewGuid().ToString('N') + '.bin'
        $rng = New-Object System.Security.Cryptography.RNGCryptoServiceProvider
        $sha = [System.Security.Cryptography.SHA256]::Create()
        $buffer = New-Object byte[] $chunk
        $watch = New-Object System.Diagnostics.Stopwatch
        try {
            $fs = [IO.FileStream]::new($file, [IO.FileMode]::CreateNew, [IO.FileAccess]::Write, [IO.FileShare]::None, [int]$mib)
            try {
                $written = [int64]0
                while ($written -lt $size) {
                    $n = [int][Math]::Min([int64]$chunk, $size - $written)
                    $rng.GetBytes($buffer)
                    [void]$sha.TransformBlock($buffer, 0, $n, $null, 0)
                    $watch.Start()
                    $fs.Write($buffer, 0, $n)
                    $watch.Stop()
                    $written += $n
                }
                # FlushFileBuffers: the data reaches the device before the clock stops.
                $watch.Start()
                $fs.Flush($true)
                $watch.Stop()
            } finally {
                $fs.Dispose()
            }
            [void]$sha.TransformFinalBlock($buffer, 0, 0)
            $writtenHash = [BitConverter]::ToString($sha.Hash)
            $result.bytes = $written
            if ($watch.Elapsed.TotalSeconds -gt 0) { $result.write_mb_s = [Math]::Round($written / 1e6 / $watch.Elapsed.TotalSeconds, 1) }
            $readTotal = [int64]0
            $readSeconds = [double]0
            $readHash = [BitConverter]::ToString([HarnessUncachedRead]::Sha256($file, $chunk, [ref]$readTotal, [ref]$readSeconds))
            if ($readSeconds -gt 0) { $result.read_mb_s = [Math]::Round($readTotal / 1e6 / $readSeconds, 1) }
            $result.verified = ($readTotal -eq $written -and $readHash -eq $writtenHash)
            $result.ok = $true
            if (-not $result.verified) { $result.reason = "read-back differs: wrote $written bytes, read $readTotal, SHA-256 match: $($readHash -eq $writtenHash)" }
        } catch [System.IO.IOException], [System.ComponentModel.Win32Exception], [System.UnauthorizedAccessException] {
            # The device going away or being blocked mid-probe is a result, not an infrastructure failure.
            $result.reason = 'I/O failed: ' + $_.Exception.Message
        } catch [System.Management.Automation.MethodInvocationException] {
            $result.reason = 'I/O failed: ' + $_.Exception.InnerException.Message
        } finally {
            $sha.Dispose()
            $rng.Dispose()
            try { [IO.File]::Delete($file) } catch { Write-Verbose "could not remove $file : $_" }
        }
    }
}
Remove-TypeData -TypeName System.Array -ErrorAction SilentlyContinue
$json = ConvertTo-Json -InputObject $result -Compress -Depth 8
[regex]::Replace($json, '[^\x00-\x7F]', { param($m) '\u{0:x4}' -f [int][char]$m.Value })
