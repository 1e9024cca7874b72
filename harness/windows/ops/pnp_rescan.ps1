# Operation: pnp_rescan
# Facility: pnputil /scan-devices (Windows 10 2004+)
#   https://learn.microsoft.com/windows-hardware/drivers/devtest/pnputil-command-syntax
# Facility: on 1803-1909, where pnputil has no /scan-devices, CM_Locate_DevNodeW(root) +
#   CM_Reenumerate_DevNode(CM_REENUMERATE_SYNCHRONOUS) through Add-Type; exit_code is then the CONFIGRET
#   (0 = CR_SUCCESS)
#   https://learn.microsoft.com/windows/win32/api/cfgmgr32/nf-cfgmgr32-cm_reenumerate_devnode
# Parameters: {}
# Result: {"exit_code": int}
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
$build = [int](Get-CimInstance -ClassName Win32_OperatingSystem).BuildNumber
if ($build -ge 19041) {
    $r = Invoke-Native "$env:SystemRoot\System32\pnputil.exe" @('/scan-devices')
    $exitCode = [int]$r.ExitCode
} else {
    Add-Type -TypeDefinition @'
using System;
using System.Runtime.InteropServices;
public static class HarnessCfgMgr {
    [DllImport("cfgmgr32.dll", CharSet = CharSet.Unicode)]
    static extern int CM_Locate_DevNodeW(out uint devInst, string deviceId, uint flags);
    [DllImport("cfgmgr32.dll")]
    static extern int CM_Reenumerate_DevNode(uint devInst, uint flags);
    // Root devnode (deviceId null), CM_LOCATE_DEVNODE_NORMAL = 0, CM_REENUMERATE_SYNCHRONOUS = 1.
    public static int RescanRoot() {
        uint root;
        int cr = CM_Locate_DevNodeW(out root, null, 0);
        if (cr != 0) { return cr; }
        return CM_Reenumerate_DevNode(root, 1);
    }
}
'@
    $exitCode = [HarnessCfgMgr]::RescanRoot()
}
$result = [ordered]@{ exit_code = $exitCode }
Remove-TypeData -TypeName System.Array -ErrorAction SilentlyContinue
$json = ConvertTo-Json -InputObject $result -Compress -Depth 8
[regex]::Replace($json, '[^\x00-\x7F]', { param($m) '\u{0:x4}' -f [int][char]$m.Value })
